"""Training dynamics (Figure 13): what a network has learned at chosen points of its training, and when each
dependency was learned.

During training (:func:`gptheory.trial.run_trial` with ``on_step``) a :class:`~.probe.Probe` generates sequences at
:func:`dynamics_steps` and measures them; :func:`dynamics_arrays` turns those measurements into the probe's ``eval_*``
arrays. The paper counts epochs ("the temporal correlation is learned after epoch 50"), so the steps are log-spaced
from the first epoch (:func:`steps_per_epoch`) and the errors are scale-free: the correlations by gap
(:func:`gptheory.metrics.correlation_errors`), which a generator whose samples are only too wide or too narrow gets
right.

When was something learned: on the :func:`readings` up to the network that generated (never after ``best_step``: a
run may go on, or diverge, after it), :func:`learned_epoch`: when a set fraction of the quantity's own initial excess
over its final level is gone, one rule for the spatial correlation (:func:`spatial_learned_epoch`) and for each
:func:`resolvable` gap of the temporal one (:func:`gap_learned_epochs`, :func:`temporal_learned_epoch`), censored where
nothing was learned within the run. Figure 13's claims as verdicts over seeds that stay valid under that censoring,
:func:`dynamics_verdicts`; and which runs :func:`diverged` after their best step (:func:`stop_label`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
import torch

from .. import metrics
from ..attention import lag_profile
from ..config import ExperimentConfig
from ..floors import RESOLVABLE
from ..gp import GaussianProcess
from ..metrics import CovarianceErrors, Law
from ..statistics import Verdict, censored_verdict, rank_correlation

Probe = Any  # a :class:`~.probe.Probe` (that module imports this one, so it is not imported here)


def eval_steps(steps: int, points: int, first: float) -> list[int]:
    """``points`` log-spaced training steps from ``first`` (at least 1, at most ``steps``) to ``steps``, distinct and
    sorted (one point: the last step)."""
    if points <= 0:
        return []
    if points == 1:  # np.geomspace(a, b, 1) is [a]: the final network would go unmeasured
        return [steps]
    start = max(min(first, steps), 1.0)
    grid = np.geomspace(start, steps, points)
    return sorted({int(round(s)) for s in grid})


def steps_per_epoch(config: ExperimentConfig) -> int:
    """Optimiser steps in one pass over the training set (:func:`gptheory.train.train` draws ``n // batch`` batches
    from each shuffle)."""
    return config.n_train // min(config.train.batch_size, config.n_train)


def dynamics_steps(config: ExperimentConfig) -> list[int]:
    """The training steps measured for the training dynamics: :func:`eval_steps` of the cap and ``eval_points``,
    from the first epoch (the paper counts epochs). A run that converges before the cap stops measuring there."""
    return eval_steps(config.train.steps, config.sampler.eval_points, steps_per_epoch(config))


def measure(x: torch.Tensor, law: Law, target: torch.Tensor) -> dict:
    """What is measured on the sequences ``x: (n, N, d)`` generated at one step: the errors of
    :class:`~gptheory.metrics.CovarianceErrors` against ``law``, the whitened kernel's error by gap against ``target:
    (N, N)`` and the scale-free correlation errors (plain numbers and lists, kept in checkpoints)."""
    err = CovarianceErrors.of_samples(x, law)
    C = metrics.pair_covariance(x)
    out = {"temporal": err.temporal, "spatial": err.spatial, "covariance": err.covariance}
    out["gaps"] = metrics.gap_errors(metrics.temporal_kernel_whitened(C, law.Sigma), target).tolist()
    corr_gap, corr_spatial = metrics.correlation_errors(C, law)
    return out | {"corr_gap": corr_gap.tolist(), "corr_spatial": corr_spatial}


def dynamics_arrays(
    evals: list[dict], x_true: torch.Tensor, gp: GaussianProcess, per_epoch: int
) -> dict[str, np.ndarray | float]:
    """The ``eval_*`` fields of :class:`~.probe.Probe` from the measurements ``evals`` (:func:`measure`, with their
    ``step``) and as many true sequences ``x_true: (n, N, d)``, measured against the data law (the floors); the
    steps also in epochs of ``per_epoch`` steps."""
    ev = sorted(evals, key=lambda e: e["step"])
    law = Law.data(gp)
    floor = measure(x_true, law, gp.Gamma)
    steps = np.array([e["step"] for e in ev])
    return {
        "eval_steps": steps,
        "eval_temporal": np.array([e["temporal"] for e in ev]),
        "eval_spatial": np.array([e["spatial"] for e in ev]),
        "eval_covariance": np.array([e["covariance"] for e in ev]),
        "eval_gap_error": np.array([e["gaps"] for e in ev]),
        "eval_true": np.array([floor["temporal"], floor["spatial"], floor["covariance"]]),
        "eval_gap_error_true": np.array(floor["gaps"]),
        "eval_epochs": steps / per_epoch,
        "eval_corr_gap": np.array([e["corr_gap"] for e in ev]),
        "eval_corr_spatial": np.array([e["corr_spatial"] for e in ev]),
        "eval_corr_gap_true": np.array(floor["corr_gap"]),
        "eval_corr_spatial_true": floor["corr_spatial"],
    }


# ------------------------------------------------------------------------------------------- what is read
LEARNED_FRACTION = 0.8  # learned: this fraction of the initial excess over the final level is gone, for good
DIVERGED = 10.0  # a held-out loss this many times the best after the best step: the run diverged


def diverged(p: Probe, ratio: float = DIVERGED) -> bool:
    """Whether a calibrated run's held-out loss rose above ``ratio`` times its best (``best_validation``) after its
    best step (``validation``: ``[[step, loss], ...]``): the run diverged and its stopper, which only sees that the
    loss stopped improving, may still have read it as converged. The network kept is the best one either way."""
    after = [float(v) for s, v in p.validation if s > p.best_step]
    best = p.best_validation
    return bool(after) and best > 0 and max(after) > ratio * best


def stop_label(p: Probe) -> str:
    """How a calibrated run ended, for a table: ``stop_reason``, or ``"diverged after step 6000, stopped"`` when it
    :func:`diverged` after its best step."""
    return f"diverged after step {p.best_step}, stopped" if diverged(p) else p.stop_reason


class Readings(NamedTuple):
    """A calibrated point's training dynamics up to the network that generated (:func:`readings`): ``epochs: (E,)``,
    the temporal correlation's error by gap ``corr_gap: (E, N)`` and the spatial correlation's ``corr_spatial: (E,)``
    (:func:`gptheory.metrics.correlation_errors`)."""

    epochs: np.ndarray
    corr_gap: np.ndarray
    corr_spatial: np.ndarray


def readings(p: Probe, best: bool = True) -> Readings:
    """The evaluations of a calibrated point at steps up to ``best_step``, the network the sampler used (a run may go
    on after it, and even diverge); with ``best``, the generating network's own measurement (``best_corr_gap``,
    ``best_corr_spatial``) follows at its epoch when it is later than the last evaluation kept."""
    if p.eval_epochs.size == 0:
        raise ValueError("readings needs a point with training dynamics (eval_points > 0)")
    keep = p.eval_steps <= p.best_step if p.best_step > 0 else np.ones(len(p.eval_steps), bool)
    epochs, gap, spatial = p.eval_epochs[keep], p.eval_corr_gap[keep], p.eval_corr_spatial[keep]
    last = int(p.eval_steps[keep][-1]) if keep.any() else 0
    if best and p.best_step > last and np.size(p.best_corr_gap):
        epochs = np.append(epochs, p.best_step * p.eval_epochs[0] / p.eval_steps[0])
        gap, spatial = np.vstack([gap, p.best_corr_gap]), np.append(spatial, p.best_corr_spatial)
    return Readings(epochs, gap, spatial)


def resolvable(p: Probe) -> np.ndarray:
    """The gaps whose learning is timed, ``(N,)`` booleans: ``h >= 1`` with ``gamma(h) >= RESOLVABLE``."""
    gamma = lag_profile(p.Gamma)
    return (np.arange(len(gamma)) >= 1) & (gamma >= RESOLVABLE)


def sampling_noise(p: Probe) -> float:
    """The error of as many true sequences' temporal correlation at the gaps where ``gamma(h) < RESOLVABLE`` (median;
    ``nan`` without such a gap): the estimator's noise at the evaluation count, where there is nothing to learn."""
    far = (np.arange(len(p.eval_corr_gap_true)) >= 1) & ~resolvable(p)
    return float(np.median(p.eval_corr_gap_true[far])) if far.any() else math.nan


def eval_spacing(p: Probe) -> float:
    """The factor between consecutive evaluation epochs of a calibrated point, ``(last / first)^(1 / (E - 1))`` (the
    evaluations are log-spaced; ``nan`` with fewer than two)."""
    e = p.eval_epochs
    return float((e[-1] / e[0]) ** (1 / (len(e) - 1))) if len(e) > 1 else math.nan


def timeline(p: Probe) -> np.ndarray:
    """Where a point was measured, in epochs ``(E,)``: those of :func:`readings` (up to the best step, without the
    best network's own measurement, so that seeds share the grid)."""
    return readings(p, best=False).epochs


def curves(p: Probe) -> dict[str, tuple[np.ndarray, float]]:
    """Figure 13's two curves of one point, ``{"temporal": (errors (E,), floor), "spatial": ...}``, on
    :func:`timeline`: the scale-free ones, the temporal correlation's error as the RMS over the :func:`resolvable`
    gaps and the spatial correlation's."""
    r, h = readings(p, best=False), resolvable(p)
    temporal = np.sqrt((r.corr_gap[:, h] ** 2).mean(1))
    floor = float(np.sqrt((p.eval_corr_gap_true[h] ** 2).mean()))
    return {"temporal": (temporal, floor), "spatial": (r.corr_spatial, p.eval_corr_spatial_true)}


def aligned(arrays: list[np.ndarray]) -> np.ndarray:
    """Per-seed curves measured on one schedule, stacked and cut to the shortest (a run that converged earlier
    stopped measuring earlier): ``(seeds, E_min, ...)``."""
    E = min(len(a) for a in arrays)
    return np.stack([np.asarray(a)[:E] for a in arrays])


# ------------------------------------------------------------------------------------------- when learned
class Learned(NamedTuple):
    """When a quantity was learned, in epochs: ``low <= true epoch <= high``, and the ``epoch`` a verdict uses. Timed:
    all three equal. Right from the first measurement: ``(first, 0, first)`` (left-censored). Not learned by the last
    measurement: ``(last, last, inf)`` (right-censored at it)."""

    epoch: float
    low: float
    high: float

    @property
    def censored(self) -> bool:
        return self.low != self.high


def learned_epoch(
    epochs: np.ndarray, err: np.ndarray, floor: float, final: float | None = None, factor: float = 2.0,
    fraction: float = LEARNED_FRACTION,
) -> Learned:  # fmt: skip
    """When a quantity whose error ``err: (E,)`` was measured at ``epochs: (E,)`` was learned: the first epoch from
    which ``fraction`` of its initial excess ``err[0] - level`` stays gone, with ``level = max(final, floor)`` (its
    final error, ``final`` or ``err[-1]``, not below ``floor``, the error of as many true sequences). A fraction of
    the quantity's own excess, so a strong correlation (a large initial error) and a weak one are held to the same bar.

    No drop to time (``err[0] <= factor * level``): right from the start when ``level <= factor * floor``, else not
    learned within the run (flat above the floor); see :class:`Learned`.
    """
    epochs, err = np.asarray(epochs, float), np.asarray(err, float)
    if epochs.size == 0 or epochs.shape != err.shape:
        raise ValueError(f"epochs and err must be non-empty and of one shape, got {epochs.shape} and {err.shape}")
    first, last = float(epochs[0]), float(epochs[-1])
    level = max(float(err[-1] if final is None else final), float(floor))
    if err[0] <= factor * level:
        return Learned(first, 0.0, first) if level <= factor * float(floor) else Learned(last, last, math.inf)
    bar = level + (1 - fraction) * (err[0] - level)
    after = np.nonzero(err > bar)[0][-1] + 1
    if after == len(epochs):
        return Learned(last, last, math.inf)
    return Learned(float(epochs[after]), float(epochs[after]), float(epochs[after]))


def gap_learned_epochs(p: Probe, factor: float = 2.0, fraction: float = LEARNED_FRACTION) -> dict[int, Learned]:
    """:func:`learned_epoch` of the temporal correlation at each :func:`resolvable` gap ``h`` (``{h: Learned}``), on
    the :func:`readings` up to the network that generated, against the true sequences' error at that gap."""
    r = readings(p)
    return {int(h): learned_epoch(r.epochs, r.corr_gap[:, h], p.eval_corr_gap_true[h], None, factor, fraction)
            for h in np.nonzero(resolvable(p))[0]}  # fmt: skip


def spatial_learned_epoch(p: Probe, factor: float = 2.0, fraction: float = LEARNED_FRACTION) -> Learned:
    """:func:`learned_epoch` of the frames' spatial correlation, on the :func:`readings`."""
    r = readings(p)
    return learned_epoch(r.epochs, r.corr_spatial, p.eval_corr_spatial_true, None, factor, fraction)


def temporal_learned_epoch(p: Probe, factor: float = 2.0, fraction: float = LEARNED_FRACTION) -> Learned:
    """When the temporal correlation was learned: the median over the :func:`resolvable` gaps of
    :func:`gap_learned_epochs`, of each bound separately (the median is monotone, so those bound the true median);
    all ``nan`` without a resolvable gap."""
    gaps = list(gap_learned_epochs(p, factor, fraction).values())
    if not gaps:
        return Learned(math.nan, math.nan, math.nan)
    return Learned(*(float(np.median([g[k] for g in gaps])) for k in range(3)))


# ------------------------------------------------------------------------------------------- verdicts
def _log(x: float) -> float:
    return -math.inf if x == 0 else math.log(x)


def _rank_effect(gamma: np.ndarray, learned: list[Learned]) -> tuple[float, float, float]:
    """``-rho``, Spearman's rank correlation between ``gamma(h)`` and the epoch at which gap ``h`` was learned (``0``
    when every gap ties), with its bounds over the orders the censored gaps may take among themselves (a right-censored
    gap after every timed one, a left-censored one before; ties on the evaluation grid stay ties)."""
    t = np.array([g.epoch for g in learned])
    rho = rank_correlation(gamma, t)
    value = 0.0 if math.isnan(rho) else -rho
    side = np.array([(g.high == math.inf) - (g.low == 0) for g in learned], float)  # +1 right-, -1 left-censored
    if not side.any():
        return value, value, value
    strength = np.argsort(np.argsort(gamma)) / len(gamma)  # in [0, 1), larger for a stronger correlation

    def bound(sign: float) -> float:  # sign +1: the stronger gaps later within each censored block (against)
        r = rank_correlation(gamma, t * (1 + 1e-9 * side * (2 + sign * side * strength)))
        return -r

    return value, bound(1.0), bound(-1.0)


def dynamics_verdicts(
    points: list[Probe], epoch: float = 50.0, factor: float = 2.0, fraction: float = LEARNED_FRACTION
) -> dict[str, Verdict]:
    """Figure 13's three claims, each by :func:`~gptheory.statistics.censored_verdict` on one effect per point (one
    seed each, with training dynamics), positive where the claim holds, every time a :class:`Learned`
    (:func:`learned_epoch` on the :func:`readings` up to the network that generated, the same rule for space and
    time). A censored time enters at its censoring epoch, with its bound, so no seed is dropped for it:

    * ``"spatial_first"``: the spatial correlation is learned before the temporal one; effect
      ``log(temporal epoch / spatial epoch)`` (:func:`temporal_learned_epoch`, :func:`spatial_learned_epoch`). A
      temporal correlation not learned by the end (or a spatial one right from the start) makes the value a lower
      bound: the claim may hold on it, not fail; the other way round, an upper bound;
    * ``"temporal_late"``: the temporal correlation is learned after ``epoch`` (the paper's 50); effect
      ``log(temporal epoch / epoch)``: not learned by the end of a run counts at that end, a lower bound (may hold,
      not fail); right from the start, an upper bound (may fail, not hold);
    * ``"weak_later"``: weak correlations take longer; effect ``-rho``, minus Spearman's rank correlation between
      ``gamma(h)`` and the epoch at which gap ``h`` was learned, over the :func:`resolvable` gaps (at least three),
      bounded over the orders its censored gaps may take.
    """
    spatial_first, late, weak = [], [], []
    for p in points:
        if p.eval_epochs.size == 0:
            raise ValueError("dynamics_verdicts needs points with training dynamics (eval_points > 0)")
        t, s = temporal_learned_epoch(p, factor, fraction), spatial_learned_epoch(p, factor, fraction)
        spatial_first.append(
            (_log(t.epoch / s.epoch), _log(t.low / s.high), _log(t.high / s.low if s.low else math.inf))
        )
        late.append((_log(t.epoch / epoch), _log(t.low / epoch), _log(t.high / epoch)))
        gaps = gap_learned_epochs(p, factor, fraction)
        gamma = lag_profile(p.Gamma)[list(gaps)]
        weak.append(_rank_effect(gamma, list(gaps.values())) if len(gaps) >= 3 else (math.nan,) * 3)
    return {"spatial_first": censored_verdict(spatial_first), "temporal_late": censored_verdict(late),
            "weak_later": censored_verdict(weak)}  # fmt: skip


__all__ = [
    "DIVERGED",
    "LEARNED_FRACTION",
    "RESOLVABLE",
    "Learned",
    "Readings",
    "aligned",
    "curves",
    "diverged",
    "dynamics_arrays",
    "dynamics_verdicts",
    "dynamics_steps",
    "eval_spacing",
    "eval_steps",
    "gap_learned_epochs",
    "learned_epoch",
    "measure",
    "readings",
    "resolvable",
    "sampling_noise",
    "spatial_learned_epoch",
    "steps_per_epoch",
    "stop_label",
    "temporal_learned_epoch",
    "timeline",
]
