"""Training dynamics (Figure 13): what a network has learned at chosen points of its training, and when each
dependency was learned.

During training (:func:`gptheory.trial.run_trial` with ``on_step``) a :class:`~.probe.Probe` generates sequences at
:func:`dynamics_steps` and measures them; :func:`dynamics_arrays` turns those measurements into the probe's ``eval_*``
arrays. The paper counts epochs ("the temporal correlation is learned after epoch 50"), so under the calibrated
protocol the steps are log-spaced from the first epoch (:func:`steps_per_epoch`) and the errors are scale-free: the
correlations by gap (:func:`gptheory.metrics.correlation_errors`), which a generator whose samples are only too wide or
too narrow gets right.

When was something learned: :func:`learned_step` (the first step from which an error stays near its final level or
the floor of as many true sequences), per gap :func:`gap_learned_steps` (the whitened kernel, protocol 1) and
:func:`gap_learned_epochs` (the temporal correlation, in epochs, protocol 2), and :func:`spatial_learned_epoch`;
Figure 13's claims as verdicts over seeds, :func:`dynamics_verdicts`.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .. import metrics
from ..attention import lag_profile
from ..config import ExperimentConfig
from ..gp import GaussianProcess
from ..metrics import CovarianceErrors, Law
from ..statistics import Verdict, rank_correlation, verdict

Probe = Any  # a :class:`~.probe.Probe` (that module imports this one, so it is not imported here)


def eval_steps(steps: int, points: int, first: float | None = None) -> list[int]:
    """``points`` log-spaced training steps from ``first`` (default ``steps / 100``, at least 1) to ``steps``, distinct
    and sorted (one point: the last step)."""
    if points <= 0:
        return []
    if points == 1:  # np.geomspace(a, b, 1) is [a]: the final network would go unmeasured
        return [steps]
    start = max(steps / 100 if first is None else min(first, steps), 1.0)
    grid = np.geomspace(start, steps, points)
    return sorted({int(round(s)) for s in grid})


def steps_per_epoch(config: ExperimentConfig) -> int:
    """Optimiser steps in one pass over the training set (:func:`gptheory.train.train` draws ``n // batch`` batches
    from each shuffle)."""
    return config.n_train // min(config.train.batch_size, config.n_train)


def dynamics_steps(config: ExperimentConfig) -> list[int]:
    """The training steps measured for the training dynamics: :func:`eval_steps` of the cap and ``eval_points``,
    from the first epoch under protocol 2 (the paper counts epochs), from a hundredth of the run under protocol 1. A
    run that converges before the cap stops measuring there."""
    first = steps_per_epoch(config) if config.protocol == 2 else None
    return eval_steps(config.train.steps, config.sampler.eval_points, first)


def measure(x: torch.Tensor, law: Law, target: torch.Tensor, protocol: int) -> dict:
    """What is measured on the sequences ``x: (n, N, d)`` generated at one step: the errors of
    :class:`~gptheory.metrics.CovarianceErrors` against ``law``, the whitened kernel's error by gap against ``target:
    (N, N)`` and, under protocol 2, the scale-free correlation errors (plain numbers and lists, kept in checkpoints)."""
    err = CovarianceErrors.of_samples(x, law)
    C = metrics.pair_covariance(x)
    out = {"temporal": err.temporal, "spatial": err.spatial, "covariance": err.covariance}
    out["gaps"] = metrics.gap_errors(metrics.temporal_kernel_whitened(C, law.Sigma), target).tolist()
    if protocol == 2:
        corr_gap, corr_spatial = metrics.correlation_errors(C, law)
        out |= {"corr_gap": corr_gap.tolist(), "corr_spatial": corr_spatial}
    return out


def dynamics_arrays(
    evals: list[dict], x_true: torch.Tensor, gp: GaussianProcess, protocol: int, per_epoch: int
) -> dict[str, np.ndarray | float]:
    """The ``eval_*`` fields of :class:`~.probe.Probe` from the measurements ``evals`` (:func:`measure`, with their
    ``step``) and as many true sequences ``x_true: (n, N, d)``, measured against the data law (the floors)."""
    ev = sorted(evals, key=lambda e: e["step"])
    law = Law.data(gp)
    floor = measure(x_true, law, gp.Gamma, protocol)
    out: dict = {
        "eval_steps": np.array([e["step"] for e in ev]),
        "eval_temporal": np.array([e["temporal"] for e in ev]),
        "eval_spatial": np.array([e["spatial"] for e in ev]),
        "eval_covariance": np.array([e["covariance"] for e in ev]),
        "eval_gap_error": np.array([e["gaps"] for e in ev]),
        "eval_true": np.array([floor["temporal"], floor["spatial"], floor["covariance"]]),
        "eval_gap_error_true": np.array(floor["gaps"]),
    }
    if protocol == 2:
        out |= {
            "eval_epochs": out["eval_steps"] / per_epoch,
            "eval_corr_gap": np.array([e["corr_gap"] for e in ev]),
            "eval_corr_spatial": np.array([e["corr_spatial"] for e in ev]),
            "eval_corr_gap_true": np.array(floor["corr_gap"]),
            "eval_corr_spatial_true": floor["corr_spatial"],
        }
    return out


def timeline(p: Probe) -> tuple[np.ndarray, str]:
    """Where a point was measured and in which unit: ``eval_epochs`` under protocol 2, ``eval_steps`` under 1."""
    return (p.eval_epochs, "epoch") if p.eval_epochs.size else (p.eval_steps, "training step")


def curves(p: Probe) -> dict[str, tuple[np.ndarray, float]]:
    """Figure 13's two curves of one point, ``{"temporal": (errors (E,), floor), "spatial": ...}``: under protocol 2
    the scale-free ones (the temporal correlation's error as the RMS over the gaps ``h >= 1`` of ``eval_corr_gap``,
    the spatial correlation's), under protocol 1 the whitened kernel's and the frames' covariance errors."""
    if p.eval_epochs.size:
        temporal = np.sqrt((p.eval_corr_gap[:, 1:] ** 2).mean(1))
        floor = float(np.sqrt((p.eval_corr_gap_true[1:] ** 2).mean()))
        return {"temporal": (temporal, floor), "spatial": (p.eval_corr_spatial, p.eval_corr_spatial_true)}
    return {"temporal": (p.eval_temporal, float(p.eval_true[0])), "spatial": (p.eval_spatial, float(p.eval_true[1]))}


def aligned(arrays: list[np.ndarray]) -> np.ndarray:
    """Per-seed curves measured on one schedule, stacked and cut to the shortest (a run that converged earlier
    stopped measuring earlier): ``(seeds, E_min, ...)``."""
    E = min(len(a) for a in arrays)
    return np.stack([np.asarray(a)[:E] for a in arrays])


# ------------------------------------------------------------------------------------------- when learned
def learned_step(
    steps: np.ndarray, err: np.ndarray, floor: float, factor: float = 2.0, final: float | None = None
) -> float:
    """When a quantity was learned during training: the first of ``steps: (E,)`` from which its error ``err: (E,)``
    stays within ``factor`` times ``max(final error, floor)``, where ``floor`` is the error of as many true sequences
    (the estimator's noise) and the final error is ``final`` (that of the network kept at the end) or ``err[-1]``.

    When the first measurement is already within that band there is no drop to time, and two cases differ:
    ``nan`` when the final error is within ``factor`` times the floor (the quantity was right from the start, for
    example a weak correlation that white noise already gets right), ``inf`` when it stays above that (flat above
    the floor: not learned within the run).
    """
    steps, err = np.asarray(steps), np.asarray(err, float)
    if steps.size == 0 or steps.shape != err.shape:
        raise ValueError(f"steps and err must be non-empty and of one shape, got {steps.shape} and {err.shape}")
    final = float(err[-1] if final is None else final)
    band = factor * max(final, float(floor))
    if err[0] <= band:
        return math.nan if final <= factor * float(floor) else math.inf
    above = np.nonzero(err > band)[0]
    return float(steps[above[-1] + 1]) if above[-1] + 1 < len(steps) else float(steps[-1])


def gap_learned_steps(p: Probe, factor: float = 2.0) -> np.ndarray:
    """:func:`learned_step` of the whitened temporal-kernel error at each gap ``h``, ``(N,)``, against the
    true-sample floor at that gap (needs training dynamics)."""
    E, floor = p.eval_gap_error, p.eval_gap_error_true
    return np.array([learned_step(p.eval_steps, E[:, h], floor[h], factor) for h in range(E.shape[1])])


def gap_learned_epochs(p: Probe, factor: float = 2.0) -> np.ndarray:
    """The epoch at which the temporal *correlation* at each gap ``h`` was learned, ``(N,)``: :func:`learned_step` of
    ``eval_corr_gap`` over ``eval_epochs`` against the true sequences' floor, the final level that of the network
    kept (``best_corr_gap``; protocol 2; gap 0 is ``nan``, a correlation is 1 there by construction)."""
    if p.eval_epochs.size == 0:
        raise ValueError("gap_learned_epochs needs a point measured in epochs (protocol 2 with eval_points > 0)")
    E, floor, final = p.eval_corr_gap, p.eval_corr_gap_true, p.best_corr_gap
    out = [learned_step(p.eval_epochs, E[:, h], floor[h], factor, final[h]) for h in range(1, E.shape[1])]
    return np.array([math.nan, *out])


def spatial_learned_epoch(p: Probe, factor: float = 2.0) -> float:
    """The epoch at which the frames' spatial correlation was learned (:func:`learned_step` of
    ``eval_corr_spatial`` over ``eval_epochs`` against the true sequences' floor; protocol 2)."""
    if p.eval_epochs.size == 0:
        raise ValueError("spatial_learned_epoch needs a point measured in epochs (protocol 2 with eval_points > 0)")
    return learned_step(p.eval_epochs, p.eval_corr_spatial, p.eval_corr_spatial_true, factor, p.best_corr_spatial)


def _or_first(epoch: float, first: float) -> float:
    """A learned epoch, with ``nan`` (right from the first measurement) read as that first epoch, its upper bound;
    ``inf`` (not learned within the run) stays."""
    return first if math.isnan(epoch) else epoch


def temporal_learned_epoch(p: Probe, factor: float = 2.0) -> float:
    """The epoch at which the temporal correlation was learned: the median over the timed gaps of
    :func:`gap_learned_epochs` (``inf`` for a gap not learned within the run; the first measured epoch when every
    gap was right from the start)."""
    gaps = gap_learned_epochs(p, factor)[1:]
    timed = gaps[~np.isnan(gaps)]
    return float(np.median(timed)) if timed.size else float(p.eval_epochs[0])


def dynamics_verdicts(points: list[Probe], epoch: float = 50.0, factor: float = 2.0) -> dict[str, Verdict]:
    """Figure 13's three claims, each by :func:`gptheory.statistics.verdict` on one effect per point (one seed each,
    protocol 2, with training dynamics), positive where the claim holds:

    * ``"spatial_first"``: the spatial correlation is learned before the temporal one; effect
      ``log(temporal epoch / spatial epoch)`` (:func:`temporal_learned_epoch`, :func:`spatial_learned_epoch`; a
      quantity right from the first measurement counts as learned then; one not learned within the run makes the
      effect infinite, which the verdict leaves out: its ``n`` counts the seeds that were timed);
    * ``"temporal_late"``: the temporal correlation is learned after ``epoch`` (the paper's 50); effect
      ``log(temporal epoch / epoch)``;
    * ``"weak_later"``: weak correlations take longer; effect ``-rho``, Spearman's rank correlation over the timed
      gaps (at least three; a gap not learned within the run ranks last) between the true correlation ``gamma(h)``
      and the gap's learned epoch.
    """
    spatial_first, late, weak = [], [], []
    for p in points:
        if p.eval_epochs.size == 0:
            raise ValueError("dynamics_verdicts needs points measured in epochs (protocol 2 with eval_points > 0)")
        first = float(p.eval_epochs[0])
        t = temporal_learned_epoch(p, factor)
        s = _or_first(spatial_learned_epoch(p, factor), first)
        spatial_first.append(math.log(t / s))
        late.append(math.log(t / epoch))
        gaps = gap_learned_epochs(p, factor)
        gamma = lag_profile(p.Gamma)
        timed = ~np.isnan(gaps)
        weak.append(-rank_correlation(gamma[timed], gaps[timed]) if timed.sum() >= 3 else math.nan)
    return {"spatial_first": verdict(spatial_first), "temporal_late": verdict(late), "weak_later": verdict(weak)}


__all__ = [
    "aligned",
    "curves",
    "dynamics_arrays",
    "dynamics_verdicts",
    "dynamics_steps",
    "eval_steps",
    "gap_learned_epochs",
    "gap_learned_steps",
    "learned_step",
    "measure",
    "spatial_learned_epoch",
    "steps_per_epoch",
    "temporal_learned_epoch",
    "timeline",
]
