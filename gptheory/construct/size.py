"""How big the hand-built network is, beside the orders Theorem 1 states: :func:`size_report`, :func:`theorem_orders`,
:func:`format_size_report`."""

from __future__ import annotations

import math

import torch

from ..validation import positive_int, real_in
from .network import GDTransformer


def size_report(model: GDTransformer) -> dict[str, float | int]:
    """Sizes of the network, the quantities Theorem 1's tables bound.

    Returns a dict with ``blocks`` (residual blocks), ``attention_blocks``, ``heads`` (per attention block),
    ``heads_total``, ``width`` (token width ``D``), ``hidden`` (widest feed-forward layer), ``params`` (all weight
    and bias entries), ``nonzero`` (non-zero ones), ``param_max`` (largest magnitude, the paper's parameter bound)
    and ``param_norm`` (Euclidean norm of all parameters).
    """
    if not isinstance(model, GDTransformer):
        raise ValueError(f"model must be a GDTransformer, got {type(model).__name__}")
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    blocks = list(model.blocks)
    heads = [b.heads for b in blocks if b.heads > 0]
    return {
        "blocks": len(blocks),
        "attention_blocks": len(heads),
        "heads": max(heads) if heads else 0,
        "heads_total": sum(heads),
        "width": model.layout.D,
        "hidden": max((b.ffn.hidden for b in blocks), default=0),
        "params": int(params.numel()),
        "nonzero": int((params != 0).sum()),
        "param_max": float(params.abs().max()) if params.numel() else 0.0,
        "param_norm": float(params.norm()),
    }


def theorem_orders(kappa: float, eps: float, J: int, d: int, attention: str = "relu") -> dict[str, float]:
    """Theorem 1's orders with every constant set to 1, for comparison with :func:`size_report`.

    ``steps ~ kappa log(1/eps)`` (Lemma 1), ``blocks ~ steps * log(1/eps)`` (each step has multiplication modules of
    depth ``O(log(1/eps))``), ``heads ~ J`` per attention block (ReLU; 1 for softmax), token width ``~ d``.
    These are orders, not counts: only their growth is comparable.
    """
    kappa = real_in("kappa", kappa, 1.0, math.inf, high_open=True)
    eps = real_in("eps", eps, 0.0, 1.0, low_open=True, high_open=True)
    J = positive_int("J", J)
    d = positive_int("d", d)
    L = math.log(1.0 / eps)
    steps = kappa * L
    return {"steps": steps, "blocks": steps * L, "heads": float(J if attention == "relu" else 1), "width": float(d)}


def format_size_report(model: GDTransformer) -> str:
    """The size report as a small text table."""
    rep = size_report(model)
    cfg = model.config
    lines = [
        f"GD transformer: {cfg['attention']} attention, steps={cfg['steps']}, J={cfg['J']}, "
        f"mult_depth={'exact' if cfg['mult_depth'] is None else cfg['mult_depth']}",
        f"  blocks            {rep['blocks']:>10d}   (attention blocks {rep['attention_blocks']})",
        f"  heads per block   {rep['heads']:>10d}   (total {rep['heads_total']})",
        f"  token width D     {rep['width']:>10d}",
        f"  FFN hidden width  {rep['hidden']:>10d}",
        f"  parameters        {rep['params']:>10d}   (non-zero {rep['nonzero']})",
        f"  max |parameter|   {rep['param_max']:>10.3g}",
        f"  ||parameters||_2  {rep['param_norm']:>10.3g}",
    ]
    return "\n".join(lines)
