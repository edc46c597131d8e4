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
from .convergence import Stopper, ValidationLoss, missing_error, quantiles
from .denoiser import Denoiser
from .gp import GaussianProcess
from .masks import STRATEGIES, draw
from .profiles import autocast_dtype
from .recipe import T_SAMPLINGS, TimeSampler, TrainConfig, lr_at, make_optimizer
from .schedules import Schedule
from .streams import generator
from .validation import finite_tensor, positive_int, real_in


class TrainingDiverged(RuntimeError):
    """The training loss became non-finite or exceeded ``TrainConfig.max_loss``."""


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
        stop_reason: ``"converged"`` (the validation loss stopped improving, ``TrainConfig.patience``) or ``"cap"``
            (all ``TrainConfig.steps`` ran, or ``stop_at`` was reached).
        validation: the validation checks ``[(step, loss), ...]`` (empty without ``patience``).
        best_step: the check with the lowest validation loss, whose EMA weights ``ema`` then holds (the last step
            without ``patience``).
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
    stop_reason: str = "cap"
    validation: list[tuple[int, float]] = field(default_factory=list)
    best_step: int = 0


def training_set(gp: GaussianProcess, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` sequences from ``gp`` as a float32 ``(n, N, d)`` tensor (seeded, the fixed training set)."""
    g = torch.Generator().manual_seed(int(seed))
    return gp.sample(positive_int("n", n), generator=g).to(torch.float32)


class _Trainer:
    """The state of one training run; :func:`train` is the public entry point."""

    def __init__(
        self,
        model: Denoiser,
        data: torch.Tensor,
        cfg: TrainConfig,
        schedule: Schedule,
        device: torch.device,
        validation: torch.Tensor | None = None,
        exact_score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ):
        self.cfg, self.schedule, self.device = cfg, schedule, device
        self.model = model.to(device).train()
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        self.data = data.to(device)
        self.n = data.shape[0]
        self.batch = min(cfg.batch_size, self.n)
        self.opt = make_optimizer(self.model, cfg)
        self.data_gen = generator(cfg.seed, "batches")
        self.noise_gen = generator(cfg.seed, "noise", device)
        self.mask_gen = generator(cfg.seed, "masks", device) if cfg.masking != "none" else None
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
        self.stop_reason = "cap"
        self.stopper = Stopper(cfg.patience, cfg.min_delta, cfg.min_lr_ratio) if cfg.patience else None
        if self.stopper is not None:
            t = self.times(quantiles(cfg.val_times).to(device)).cpu()
            noise = generator(cfg.seed, "validation_noise")
            observed = None
            if cfg.masking != "none":
                observed = draw(cfg.masking, len(validation), model.N, generator(cfg.seed, "validation_masks"))
            self.val_loss = ValidationLoss(validation, t, noise, device, exact_score, observed)

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
        if self.mask_gen is None:
            with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
                pred = self.forward(xt, t, check=False, raw=True)
            loss = F.mse_loss(pred.float(), self.model.target(x0, eps, t))
        else:  # conditional: each sequence its own mask, its observed frames given clean, its missing ones scored
            observed = draw(cfg.masking, B, self.model.N, self.mask_gen)
            with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
                pred = self.forward(xt, t, x0, observed, check=False, raw=True)
            err, count = missing_error(pred.float(), self.model.target(x0, eps, t), observed)
            loss = err / count
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.grad_clip > 0:
            gnorm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        else:
            gnorm = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in self.model.parameters()]))
        self.step += 1
        lr = lr_at(self.step, cfg, self.stopper.lr_scale if self.stopper is not None else 1.0)
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
        lr = lr_at(self.step, self.cfg, self.stopper.lr_scale if self.stopper is not None else 1.0)
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
    validation: torch.Tensor | None = None,
    exact_score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
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
        validation: held-out sequences ``(n_val, N, d)`` for the validation loss; needed when ``cfg.patience > 0``
            (training then stops once that loss has converged, see :mod:`gptheory.convergence`).
        exact_score: the data law's exact score ``score(x_t, t)`` when it is known (Gaussian data): the validation
            loss is then the excess over the exact denoiser's (:class:`gptheory.convergence.ValidationLoss`); with
            ``cfg.masking``, the exact conditional score ``score(x_t, t, x_obs, observed)``
            (:func:`gptheory.imputers.exact_conditional_score`).

    Returns:
        A :class:`TrainResult` (the model, its EMA, the log, timings).

    Raises:
        TrainingDiverged: the loss became non-finite or exceeded ``cfg.max_loss``.
    """
    from .profiles import device as default_device

    cfg = TrainConfig() if cfg is None else cfg
    if not isinstance(model, Denoiser):
        raise ValueError(f"model must be a gptheory Denoiser (DiT, UNet1D, ...), got {type(model).__name__}")
    if (model.ARCH == "conditional-dit") != (cfg.masking != "none"):
        raise ValueError(
            f"masking={cfg.masking!r} does not fit a {type(model).__name__}: a ConditionalDiT trains on random masks "
            f"(masking one of {', '.join(STRATEGIES)}), every other network with masking='none'"
        )
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

    if cfg.patience:
        if validation is None:
            raise ValueError(f"patience={cfg.patience} needs held-out validation sequences (validation=...)")
        validation = finite_tensor("validation", validation, (None, model.N, model.d)).to(torch.float32)
    tr = _Trainer(model, data, cfg, schedule, dev, validation, exact_score)
    if checkpoint is not None and resume and Path(checkpoint).exists():
        restore_training(tr, load_checkpoint(checkpoint))
    start_step, start_seconds = tr.step, tr.seconds
    wall = time.perf_counter()
    bar = tqdm(total=stop, initial=tr.step, desc="training", disable=not progress, leave=False)
    try:
        while tr.step < stop and tr.stop_reason != "converged":
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
            if tr.stopper is not None and (tr.step % cfg.eval_every == 0 or tr.step == cfg.steps):
                tr.seconds += time.perf_counter() - wall
                loss = tr.val_loss(tr.ema)
                done = tr.stopper.update(tr.step, loss, tr.ema.state_dict(), tr.val_loss.bayes)
                wall = time.perf_counter()
                if done:
                    tr.stop_reason = "converged"
                    tr.flush_log()
                    break
            if checkpoint is not None and cfg.checkpoint_every and tr.step % cfg.checkpoint_every == 0:
                tr.seconds += time.perf_counter() - wall
                wall = time.perf_counter()
                save_checkpoint(training_state(tr), checkpoint)
    finally:
        bar.close()
    finished = tr.stop_reason == "converged" or tr.step >= cfg.steps  # not an interruption (stop_at)
    if finished and tr.stopper is not None and tr.stopper.best_weights is not None:
        tr.ema.load_state_dict(tr.stopper.best_weights)  # sample from the best validated weights
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
        stop_reason=tr.stop_reason,
        validation=list(tr.stopper.history) if tr.stopper is not None else [],
        best_step=tr.stopper.best_step if finished and tr.stopper is not None else tr.step,
    )


__all__ = [
    "T_SAMPLINGS",
    "TrainConfig",
    "TrainResult",
    "TimeSampler",
    "TrainingDiverged",
    "lr_at",
    "make_optimizer",
    "train",
    "training_set",
]
