"""Training engine for a score network (:class:`gptheory.denoiser.Denoiser`: the DiT or a UNet) on a fixed set
of Gaussian-process sequences.

One step, with the training set ``x_0`` fixed (sample size ``n`` is what the theory is about):

1. a mini-batch ``x_0: (B, N, d)`` in a seeded random order (a new permutation each epoch);
2. ``t`` in ``[t0, T]`` (``t0`` the early-stopping time; uniform, or uniform in the log
   signal-to-noise ratio, see :class:`TimeSampler`), ``eps ~ N(0, I)``,
   ``x_t = alpha_t x_0 + sigma_t eps``;
3. loss ``mean ||F(x_t, t) - target||^2`` (averaged over ``N d``) between the raw network output and
   what it estimates (:meth:`gptheory.denoiser.Denoiser.target`): the noise ``eps`` for ``prediction="eps"``,
   ``v = alpha_t eps - sigma_t x_0`` for ``prediction="v"``; either way the zero-initialised model
   starts at a loss of about 1 on unit-variance data;
4. AdamW with linear warm-up then cosine decay to ``min_lr_ratio * lr``, gradient-norm clipping,
   and an exponential moving average (EMA) of the weights, which is what is sampled from.

Determinism: model initialisation, data order and noise come from seeded generators, so two CPU
runs with the same seed give the same weights. A checkpoint holds the model, the EMA, the optimiser,
both generators' states, the current permutation and position in it, and the log, so a run that is
interrupted and resumed ends with the same weights as one that was not. What a checkpoint holds, and when a run may
resume from one, live in :mod:`gptheory.checkpoint`; sampling from the trained network in
:func:`gptheory.samplers.generate`.

A loss that becomes non-finite or exceeds ``max_loss`` raises :class:`TrainingDiverged`.
"""

from __future__ import annotations

import copy
import math
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .checkpoint import load_checkpoint, restore_training, save_checkpoint, training_state
from .denoiser import Denoiser
from .gp import GaussianProcess
from .profiles import PRECISIONS, autocast_dtype
from .schedules import Schedule
from .validation import finite_tensor, nonneg_int, one_of, option, positive_int, real_in

T_SAMPLINGS = ("uniform", "log_snr")


class TrainingDiverged(RuntimeError):
    """The training loss became non-finite or exceeded ``TrainConfig.max_loss``."""


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
        seed: seed of the model initialisation, the data order and the noise.
        precision: ``"fp32"``, ``"bf16"`` (autocast) or ``"auto"`` (bf16 on CUDA, fp32 on the CPU).
        compile: wrap the model in ``torch.compile`` (meant for CUDA).
        log_every: steps between log entries (the divergence check runs at each).
        checkpoint_every: steps between checkpoints (``0``: only at the end or when stopped early).
        max_loss: a logged loss above this (or non-finite) stops training with :class:`TrainingDiverged`.
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
    seed: int = field(default=0, metadata=option("seed of the initialisation, data order and noise", internal=True))
    precision: str = field(default="auto", metadata=option("arithmetic: auto (bf16 on CUDA), fp32 or bf16", PRECISIONS))
    compile: bool = field(default=False, metadata=option("torch.compile the model (CUDA)"))
    log_every: int = field(default=10, metadata=option("steps between log entries", internal=True))
    checkpoint_every: int = field(default=0, metadata=option("steps between checkpoints", internal=True))
    max_loss: float = field(default=100.0, metadata=option("a logged loss above this stops training"))

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


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
        model: the trained network (last iterate), in eval mode.
        ema: the EMA of the weights (sample from this one), in eval mode.
        log: one dict per logged step: ``step``, ``loss`` (mean over the interval), ``lr``,
            ``grad_norm`` (before clipping, mean over the interval), ``seconds`` (cumulative wall time).
        seconds: wall-clock training time over all sessions of this run (s).
        sequences_per_second: training throughput of this call (sequences / s).
        steps: optimiser steps done.
        device: where it trained.
        config: the :class:`TrainConfig`.
        evals: what ``on_step`` returned at each of ``at_steps``, as ``{"step": k, **returned}`` (see :func:`train`).
    """

    model: Denoiser
    ema: Denoiser
    log: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    sequences_per_second: float = 0.0
    steps: int = 0
    device: str = "cpu"
    config: TrainConfig | None = None
    evals: list[dict] = field(default_factory=list)


def training_set(gp: GaussianProcess, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` sequences from ``gp`` as a float32 ``(n, N, d)`` tensor (seeded, the fixed training set)."""
    g = torch.Generator().manual_seed(int(seed))
    return gp.sample(positive_int("n", n), generator=g).to(torch.float32)


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Learning rate for optimiser step ``step`` (1-based): linear warm-up, then cosine decay."""
    if cfg.warmup and step <= cfg.warmup:
        return cfg.lr * step / cfg.warmup
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


class _Trainer:
    """The state of one training run; :func:`train` is the public entry point."""

    def __init__(self, model: Denoiser, data: torch.Tensor, cfg: TrainConfig, schedule: Schedule, device: torch.device):
        self.cfg, self.schedule, self.device = cfg, schedule, device
        self.model = model.to(device).train()
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.data = data.to(device)
        self.n = data.shape[0]
        self.batch = min(cfg.batch_size, self.n)
        self.opt = make_optimizer(self.model, cfg)
        self.data_gen = torch.Generator().manual_seed(cfg.seed + 1)
        self.noise_gen = torch.Generator(device=device).manual_seed(cfg.seed + 2)
        self.times = TimeSampler(schedule, cfg.t0, cfg.t_sampling, device)
        self.perm = torch.randperm(self.n, generator=self.data_gen)
        self.pos = 0
        self.step = 0
        self.seconds = 0.0
        self.log: list[dict] = []
        self.evals: list[dict] = []  # what the caller's on_step measured, kept in the checkpoint
        self.amp = autocast_dtype(cfg.precision, device)
        self.forward = torch.compile(self.model) if cfg.compile else self.model
        # sum of losses / grad norms since the last log entry, kept on the device (no sync per step)
        self.acc = torch.zeros(2, device=device)
        self.last_log = 0

    # ---------------------------------------------------------------- one step
    def next_batch(self) -> torch.Tensor:
        if self.pos + self.batch > self.n:
            self.perm = torch.randperm(self.n, generator=self.data_gen)
            self.pos = 0
        idx = self.perm[self.pos : self.pos + self.batch]
        self.pos += self.batch
        return self.data[idx.to(self.device)]

    def train_step(self) -> None:
        cfg = self.cfg
        x0 = self.next_batch()
        B = x0.shape[0]
        t = self.times(torch.rand(B, generator=self.noise_gen, device=self.device))
        eps = torch.randn(x0.shape, generator=self.noise_gen, device=self.device)
        xt = self.schedule.add_noise(x0, t, eps)
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            pred = self.forward(xt, t, check=False, raw=True)
        loss = F.mse_loss(pred.float(), self.model.target(x0, eps, t))
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        else:
            gnorm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in self.model.parameters()]))
        self.step += 1
        lr = lr_at(self.step, cfg)
        for group in self.opt.param_groups:
            group["lr"] = lr
        self.opt.step()
        decay = min(cfg.ema_decay, (1 + self.step) / (10 + self.step))
        with torch.no_grad():
            for pe, pm in zip(self.ema.parameters(), self.model.parameters(), strict=True):
                pe.lerp_(pm, 1.0 - decay)
        self.acc += torch.stack([loss.detach(), gnorm.detach().float()])

    def flush_log(self) -> None:
        k = self.step - self.last_log
        if k <= 0:
            return
        self.last_log = self.step
        loss, gnorm = (self.acc / k).tolist()
        self.acc.zero_()
        lr = lr_at(self.step, self.cfg)
        self.log.append({"step": self.step, "loss": loss, "lr": lr, "grad_norm": gnorm, "seconds": self.seconds})
        if not math.isfinite(loss) or loss > self.cfg.max_loss:
            raise TrainingDiverged(
                f"training diverged at step {self.step}: mean loss over the last {k} steps is {loss:.4g} "
                f"(non-finite or above max_loss={self.cfg.max_loss:g}; a fresh model starts near 1). "
                f"Try a smaller lr (now {self.cfg.lr:g}) or a smaller grad_clip (now {self.cfg.grad_clip:g})."
            )


def train(
    model: Denoiser,
    data: torch.Tensor,
    cfg: TrainConfig | None = None,
    schedule: Schedule | None = None,
    checkpoint: str | os.PathLike | None = None,
    resume: bool = True,
    stop_at: int | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    on_step: Callable[[int, Denoiser], dict] | None = None,
    at_steps: Iterable[int] = (),
) -> TrainResult:
    """Train ``model`` (in place) to predict the noise on the fixed training set ``data: (n, N, d)``.

    Args:
        model: a :class:`~gptheory.denoiser.Denoiser` (a DiT or a UNet; its weights are the starting point; see
            :func:`build_model`).
        data: the training sequences ``(n, N, d)``; cast to float32 and checked once.
        cfg: a :class:`TrainConfig` (default settings if ``None``).
        schedule: forward schedule; default (and the only one accepted) the model's own.
        checkpoint: file to save to (every ``cfg.checkpoint_every`` steps and at the end) and, when
            it exists and ``resume`` is true, to resume from.
        resume: continue from ``checkpoint`` when the file exists.
        stop_at: stop after this many total steps, as an interruption would (the checkpoint is
            written); the learning-rate schedule still spans ``cfg.steps``.
        device: default :func:`gptheory.profiles.device`.
        progress: show a ``tqdm`` bar with the loss and the speed.
        on_step: ``on_step(step, ema) -> dict`` is called after each step in ``at_steps`` with the EMA network
            (in eval mode; put it back as you found it); the dicts it returns (plain numbers and lists) are kept in
            the checkpoint, so a resumed run keeps what was measured before the interruption, and returned as
            ``TrainResult.evals``. Its time is not counted in ``seconds``.
        at_steps: the steps (in ``[1, cfg.steps]``) after which ``on_step`` runs.

    Returns:
        A :class:`TrainResult` (the model, its EMA, the log, timings).

    Raises:
        TrainingDiverged: the loss became non-finite or exceeded ``cfg.max_loss``.
    """
    from .profiles import device as default_device

    cfg = TrainConfig() if cfg is None else cfg
    if not isinstance(model, Denoiser):
        raise ValueError(f"model must be a gptheory Denoiser (DiT, UNet1D, ...), got {type(model).__name__}")
    schedule = model.check_schedule(schedule)
    data = finite_tensor("data", data, (None, model.N, model.d)).to(torch.float32)
    real_in("t0", cfg.t0, 0.0, schedule.T, low_open=True, high_open=True)
    stop = cfg.steps if stop_at is None else min(positive_int("stop_at", stop_at), cfg.steps)
    dev = torch.device(device) if device is not None else default_device()
    at = sorted({positive_int("at_steps", k) for k in at_steps})  # no int(): 2.5 is an error, not step 2
    if at and at[-1] > cfg.steps:
        raise ValueError(f"at_steps must lie in [1, steps={cfg.steps}], got {at[-1]}")
    if at and on_step is None:
        raise ValueError("at_steps needs an on_step function to call")

    tr = _Trainer(model, data, cfg, schedule, dev)
    if checkpoint is not None and resume and Path(checkpoint).exists():
        restore_training(tr, load_checkpoint(checkpoint))
    start_step, start_seconds = tr.step, tr.seconds
    wall = time.perf_counter()
    bar = tqdm(total=stop, initial=tr.step, desc="training", disable=not progress, leave=False)
    try:
        while tr.step < stop:
            tr.train_step()
            if tr.step % cfg.log_every == 0 or tr.step == cfg.steps:
                tr.seconds += time.perf_counter() - wall
                wall = time.perf_counter()
                tr.flush_log()
                speed = (tr.step - start_step) * tr.batch / max(tr.seconds - start_seconds, 1e-9)
                bar.set_postfix(loss=f"{tr.log[-1]['loss']:.4f}", seq_s=f"{speed:.0f}")
            bar.update(1)
            if tr.step in at and all(e["step"] != tr.step for e in tr.evals):
                tr.seconds += time.perf_counter() - wall
                tr.evals.append({"step": tr.step, **on_step(tr.step, tr.ema)})
                tr.ema.eval()
                wall = time.perf_counter()
            if checkpoint is not None and cfg.checkpoint_every and tr.step % cfg.checkpoint_every == 0:
                tr.seconds += time.perf_counter() - wall
                wall = time.perf_counter()
                save_checkpoint(training_state(tr), checkpoint)
    finally:
        bar.close()
    if tr.step > start_step:  # a finished checkpoint reloaded: nothing ran, nothing to rewrite
        tr.seconds += time.perf_counter() - wall
        if checkpoint is not None:
            save_checkpoint(training_state(tr), checkpoint)
    this_call = (tr.step - start_step) * tr.batch
    return TrainResult(
        model=tr.model.eval(),
        ema=tr.ema.eval(),
        log=tr.log,
        seconds=tr.seconds,
        sequences_per_second=this_call / max(tr.seconds - start_seconds, 1e-9),
        steps=tr.step,
        device=str(dev),
        config=cfg,
        evals=list(tr.evals),
    )


__all__ = [
    "TrainConfig",
    "TrainResult",
    "TimeSampler",
    "TrainingDiverged",
    "lr_at",
    "train",
    "training_set",
]
