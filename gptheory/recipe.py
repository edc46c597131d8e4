"""The training recipe: its settings (:class:`TrainConfig`), how training times are drawn (:class:`TimeSampler`),
the learning-rate schedule (:func:`lr_at`) and the optimiser (:func:`make_optimizer`). The engine that runs it is
:mod:`gptheory.train`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from .masks import STRATEGIES
from .profiles import PRECISIONS
from .schedules import Schedule
from .validation import nonneg_int, one_of, option, positive_int, real_in

T_SAMPLINGS = ("uniform", "log_snr")
MASKINGS = ("none", *STRATEGIES)


@dataclass
class TrainConfig:
    """Optimisation settings (all dimensionless; ``steps`` counts optimiser updates).

    Attributes:
        steps: total number of optimiser steps (the learning-rate schedule spans these).
        batch_size: sequences per step (capped at the training-set size).
        lr: peak learning rate of AdamW.
        warmup: steps of linear warm-up from ``lr / warmup`` to ``lr``.
        min_lr_ratio: the cosine decay ends at ``min_lr_ratio * lr``.
        weight_decay: AdamW's decoupled weight decay.
        ema_decay: EMA decay; the effective decay is ``min(ema_decay, (1 + k) / (10 + k))`` at step ``k``.
        grad_clip: maximal gradient norm (``0`` turns clipping off).
        t0: early-stopping time: training times lie in ``[t0, T]``.
        t_sampling: how training times are drawn: ``"uniform"`` (``t ~ U[t0, T]``) or ``"log_snr"``
            (the log signal-to-noise ratio ``log(alpha_t^2 / sigma_t^2)`` uniform over its range on
            ``[t0, T]``; see :class:`TimeSampler`).
        seed: the experiment's seed; the data order and the noise are its streams ``batches`` and ``noise``
            (:mod:`gptheory.streams`).
        precision: ``"fp32"``, ``"bf16"`` (autocast) or ``"auto"`` (bf16 on CUDA, fp32 on the CPU).
        compile: wrap the model in ``torch.compile`` (meant for CUDA).
        log_every: steps between log entries (the divergence check runs at each).
        checkpoint_every: steps between checkpoints (``0``: only at the end or when stopped early).
        max_loss: a logged loss above this (or non-finite) stops training with :class:`TrainingDiverged`.
        patience: with ``patience > 0`` training runs to convergence of the validation loss
            (:class:`gptheory.convergence.ValidationLoss` on the held-out set given to :func:`train`), checked every
            ``eval_every`` steps: after ``patience`` checks without an improvement of ``min_delta`` times the loss's
            scale the learning rate halves, and once it would fall below ``min_lr_ratio * lr`` training stops
            (:class:`gptheory.convergence.Stopper`); ``steps`` is the cap. ``val_times``: the fixed times of the
            validation loss.
        masking: ``"none"`` (unconditional training), or the strategy of the random frame masks a conditional network
            (:class:`gptheory.conditional_dit.ConditionalDiT`) trains on, one of :data:`gptheory.masks.STRATEGIES`:
            each sequence of a mini-batch gets its own mask (stream ``masks``), the network sees its observed frames
            clean, and the loss counts its missing entries.
    """

    steps: int = field(default=2000, metadata=option("optimiser steps"))
    batch_size: int = field(default=128, metadata=option("sequences per step"))
    lr: float = field(default=1e-3, metadata=option("peak learning rate"))
    warmup: int = field(default=100, metadata=option("learning-rate warm-up steps"))
    min_lr_ratio: float = field(default=0.05, metadata=option("final / peak learning rate of the cosine decay"))
    weight_decay: float = field(default=0.0, metadata=option("AdamW's decoupled weight decay"))
    ema_decay: float = field(default=0.999, metadata=option("decay of the weights' moving average"))
    grad_clip: float = field(default=1.0, metadata=option("maximal gradient norm (0: no clipping)"))
    t0: float = field(default=1e-3, metadata=option("early-stopping time"))
    t_sampling: str = field(default="uniform", metadata=option("how training times are drawn", T_SAMPLINGS))
    seed: int = field(default=0, metadata=option("seed of the data order and noise streams", internal=True))
    precision: str = field(default="auto", metadata=option("arithmetic: auto (bf16 on CUDA), fp32 or bf16", PRECISIONS))
    compile: bool = field(default=False, metadata=option("torch.compile the model (CUDA)"))
    log_every: int = field(default=10, metadata=option("steps between log entries", internal=True))
    checkpoint_every: int = field(default=0, metadata=option("steps between checkpoints", internal=True))
    max_loss: float = field(default=100.0, metadata=option("a logged loss above this stops training"))
    patience: int = field(
        default=0,
        metadata=option("validation checks without improvement before stopping (0: train all steps)", later=True),
    )
    eval_every: int = field(default=100, metadata=option("steps between validation checks", later=True))
    min_delta: float = field(
        default=1e-4, metadata=option("validation improvement that counts, relative to the loss's scale", later=True)
    )
    val_times: int = field(default=8, metadata=option("fixed times of the validation loss", later=True))
    masking: str = field(
        default="none",
        metadata=option("random frame masks of conditional training (none: unconditional)", MASKINGS, later=True),
    )

    def __post_init__(self) -> None:
        positive_int("steps", self.steps)
        positive_int("batch_size", self.batch_size)
        real_in("lr", self.lr, 0.0, 1.0, low_open=True)
        nonneg_int("warmup", self.warmup)
        real_in("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        real_in("weight_decay", self.weight_decay, 0.0, 10.0)
        real_in("ema_decay", self.ema_decay, 0.0, 1.0, high_open=True)
        real_in("grad_clip", self.grad_clip, 0.0, math.inf, high_open=True)
        real_in("t0", self.t0, 0.0, 1.0, low_open=True, high_open=True)
        nonneg_int("seed", self.seed)
        one_of("t_sampling", self.t_sampling, T_SAMPLINGS)
        one_of("precision", self.precision, PRECISIONS)
        positive_int("log_every", self.log_every)
        nonneg_int("checkpoint_every", self.checkpoint_every)
        real_in("max_loss", self.max_loss, 0.0, math.inf, low_open=True)
        nonneg_int("patience", self.patience)
        positive_int("eval_every", self.eval_every)
        real_in("min_delta", self.min_delta, 0.0, 1.0, high_open=True)
        positive_int("val_times", self.val_times)
        one_of("masking", self.masking, MASKINGS)


def lr_at(step: int, cfg: TrainConfig, scale: float = 1.0) -> float:
    """Learning rate for optimiser step ``step`` (1-based): linear warm-up, then cosine decay over ``cfg.steps``; when
    training to convergence (``cfg.patience > 0``) the rate after warm-up is ``cfg.lr * scale`` instead, with
    ``scale`` halved on each plateau of the validation loss (:class:`gptheory.convergence.Stopper`)."""
    if cfg.warmup and step <= cfg.warmup:
        return cfg.lr * step / cfg.warmup
    if cfg.patience:
        return cfg.lr * scale
    span = max(cfg.steps - cfg.warmup, 1)
    progress = min(max(step - cfg.warmup, 0) / span, 1.0)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress)))


class TimeSampler:
    """Draw training times ``t: (B,)`` in ``[t0, T]`` from uniform numbers ``u: (B,)`` in ``[0, 1)``.

    ``"uniform"``: ``t = t0 + (T - t0) u``. ``"log_snr"``: ``lambda(t) = log(alpha_t^2 / sigma_t^2)`` is
    uniform between ``lambda(T)`` and ``lambda(t0)``, i.e. ``t`` has density ``-lambda'(t) / (lambda(t0) -
    lambda(T)) = beta_t / (sigma_t^2 (lambda(t0) - lambda(T)))``. That density is how strongly an error in
    the noise prediction at ``t`` moves the probability-flow ODE: its drift is
    ``-beta_t (x - eps_hat / sigma_t) / 2``, so an error ``delta`` in ``eps_hat`` changes a coordinate of
    size ``sigma_t`` at the relative rate ``beta_t delta / (2 sigma_t^2)``. Uniform ``t`` spends most steps
    where ``sigma_t ~ 1``; this spends them where the sampler is most sensitive (small ``t``). The inverse
    of ``lambda`` is interpolated on a 4097-point grid of ``t`` (``lambda`` is decreasing).
    """

    def __init__(self, schedule: Schedule, t0: float, method: str = "uniform", device=None) -> None:
        self.method, self.t0, self.T = one_of("t_sampling", method, T_SAMPLINGS), float(t0), float(schedule.T)
        if method == "log_snr":
            t = torch.linspace(self.t0, self.T, 4097, dtype=torch.float64)
            lam = 2 * (schedule.log_alpha(t) - torch.log(schedule.sigma(t)))
            self.t_grid, self.neg_lam = t.to(device), (-lam).to(device)  # -lambda increases with t

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        if self.method == "uniform":
            return self.t0 + (self.T - self.t0) * u
        lo, hi = self.neg_lam[0], self.neg_lam[-1]
        target = lo + (hi - lo) * u.to(torch.float64)
        k = torch.searchsorted(self.neg_lam, target).clamp(1, len(self.t_grid) - 1)
        a, b = self.neg_lam[k - 1], self.neg_lam[k]
        w = ((target - a) / (b - a).clamp(min=1e-300)).clamp(0, 1)
        t = self.t_grid[k - 1] + w * (self.t_grid[k] - self.t_grid[k - 1])
        return t.to(u.dtype)


def make_optimizer(model: torch.nn.Module, cfg: TrainConfig) -> torch.optim.AdamW:
    """AdamW over all parameters; the fused implementation where this torch has it for the device."""
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


__all__ = ["T_SAMPLINGS", "TimeSampler", "TrainConfig", "lr_at", "make_optimizer"]
