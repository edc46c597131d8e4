"""The hand-built network as a module: the token's named slots (:class:`Layout`) and :class:`GDTransformer`.

``GDTransformer`` is ``embed -> blocks -> decode``; it also computes the diffusion-time scalars the embedding reads
(:meth:`GDTransformer.time_scalars`) and shows how each attention block mixes frames
(:meth:`GDTransformer.temporal_weights`). Build one with :func:`gptheory.construct.build_gd_transformer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

from ..gp import DTYPE, GaussianProcess
from ..schedules import Schedule, TimeLike
from ..unroll import operator_bounds
from ..validation import finite_tensor
from .layers import Block, Decoder, TokenEmbedding


@dataclass
class Layout:
    """Named slots of a token: ``slots[name] = slice`` into ``0..D-1``."""

    slots: dict[str, slice] = field(default_factory=dict)
    D: int = 0

    def add(self, name: str, width: int) -> slice:
        sl = slice(self.D, self.D + width)
        self.slots[name] = sl
        self.D += width
        return sl

    def __getitem__(self, name: str) -> slice:
        return self.slots[name]

    def idx(self, name: str, k: int = 0) -> int:
        return self.slots[name].start + k


SCALARS = ("alpha", "a", "b", "eta", "Z")  # alpha_t, alpha_t^2, sigma_t^2, eta_t, softmax normaliser Z_i


class GDTransformer(nn.Module):
    """The hand-built score network: ``embed -> blocks -> decode``. Build it with :func:`build_gd_transformer`.

    ``forward(x, t=None)`` maps ``x: (batch, N, d)`` to the score estimate ``(batch, N, d)`` (float64) at diffusion
    time ``t`` (default: the time it was built for; a float or a ``(batch,)`` tensor). The multiplication ranges and
    the clipping range were sized for the build times ``config["t_interval"]``; outside them the ReLU multiplication
    may leave its range.

    Attributes:
        layout: the token's named slots; config: the construction's settings and ranges; blocks: the stack, each
        with a ``role`` string that says which part of which GD step it implements.
    """

    def __init__(
        self,
        gp: GaussianProcess,
        schedule: Schedule,
        layout: Layout,
        embed: TokenEmbedding,
        blocks: list[Block],
        decoder: Decoder,
        config: dict,
    ) -> None:
        super().__init__()
        self.gp = gp
        self.schedule = schedule
        self.layout = layout
        self.embed = embed
        self.blocks = nn.ModuleList(blocks)
        self.decoder = decoder
        self.config = config

    # ------------------------------------------------------------------ diffusion-time scalars
    def time_scalars(self, t: TimeLike | None, batch: int) -> torch.Tensor:
        """``(batch, len(SCALARS))``: ``alpha_t, alpha_t^2, sigma_t^2, eta_t`` divided by their bounds, and 0 for
        the ``Z`` column (written per position by the network itself)."""
        cfg = self.config
        tt = self.schedule.check_t(cfg["t"] if t is None else t, include_zero=False, batch=batch).to(DTYPE)
        alpha = self.schedule.alpha(tt)
        sigma2 = self.schedule.sigma(tt) ** 2
        if cfg["eta"] is None:  # 1 / lambda_max(alpha_t^2 Gamma_bar (x) Sigma + sigma_t^2 I), as gd_score takes it
            eta = 1.0 / operator_bounds(self.gp, tt, self.schedule, cfg["J_eff"])[1]
        else:
            eta = torch.full_like(tt, cfg["eta"])
        c = torch.stack([alpha, alpha**2, sigma2, eta / cfg["eta_bound"], torch.zeros_like(tt)], dim=1)
        return c.to(self.embed.P)  # the device (and dtype) the network lives on

    def embed_tokens(self, x: torch.Tensor, t: TimeLike | None = None) -> torch.Tensor:
        """Tokens ``(batch, N, D)`` before the first block."""
        x = self._check_x(x)
        return self.embed(x, self.time_scalars(t, x.shape[0]))

    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        x = finite_tensor("x", x)
        if x.dim() == 2:
            x = x[None]
        N, d = self.gp.N, self.gp.d
        if x.dim() != 3 or tuple(x.shape[1:]) != (N, d):
            raise ValueError(f"x must have shape (batch, {N}, {d}), got {tuple(x.shape)}")
        return x.to(self.embed.P)

    def forward(self, x: torch.Tensor, t: TimeLike | None = None, return_tokens: bool = False) -> torch.Tensor:
        """Score estimate ``(batch, N, d)`` for ``x: (batch, N, d)`` (with ``return_tokens``, also the token stream:
        a list of ``(batch, N, D)`` tensors, the embedding followed by the output of every block)."""
        h = self.embed_tokens(x, t)
        tokens = [h] if return_tokens else None
        for block in self.blocks:
            h = block(h)
            if tokens is not None:
                tokens.append(h)
        out = self.decoder(h)
        return (out, tokens) if return_tokens else out

    # ------------------------------------------------------------------ inspection
    def attention_blocks(self) -> list[int]:
        """Indices of the blocks with a non-trivial attention layer (one per GD step after the first)."""
        return [i for i, b in enumerate(self.blocks) if b.attn is not None]

    def temporal_weights(self, x: torch.Tensor, block: int | None = None, t: TimeLike | None = None) -> torch.Tensor:
        """The ``(N, N)`` matrix by which attention block ``block`` mixes frames, for the first sequence of ``x``.

        For ReLU attention this is ``sum_heads (output sign and gamma(k)) relu(score)``, which equals
        ``Gamma_bar``; for softmax it is ``Z_i softmax_ij``, which equals ``Gamma``. Default: the first attention block.
        """
        idx = self.attention_blocks()
        if not idx:
            raise ValueError("this network has no attention block (steps <= 1)")
        block = idx[0] if block is None else block
        if block not in idx:
            raise ValueError(f"block must be one of the attention blocks {idx}, got {block!r}")
        _, tokens = self.forward(x[:1] if x.dim() == 3 else x, t, return_tokens=True)
        h = tokens[block]
        attn = self.blocks[block].attn
        A = attn.weights(h)[0]  # (heads, N, N)
        coef = self.config["head_coef"]
        if self.config["attention"] == "softmax":
            Z = h[0, :, self.layout.idx("c", SCALARS.index("Z"))] * self.config["Z_bound"]
            return Z[:, None] * A[0]
        return torch.einsum("h,hij->ij", coef, A)
