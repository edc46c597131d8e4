"""Reading the probe sweeps (:mod:`gptheory.experiments.probe`): grouping points by a setting, means over seeds, and the
numbers behind the chapters' verdicts (when was something learned, how many blocks suffice, which way a trend goes).

Every function takes loaded :class:`~gptheory.experiments.probe.Probe` records or plain arrays; nothing here trains.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import ExperimentConfig, option_owners
from .probe import Probe
from .sample_complexity import value


def setting(p: Probe, name: str):
    """A configuration value of a point by its flat field name (``"depth"``, ``"N"``, ``"arch"``, ``"seed"``); fields
    left out of the saved configuration at their defaults (:meth:`ExperimentConfig.to_dict`) read as those."""
    owners = option_owners()
    if name not in owners:
        raise KeyError(f"no setting {name!r}; valid: {', '.join(sorted(owners))}")
    config = ExperimentConfig.from_dict(p.config)
    return getattr(getattr(config, owners[name]) if owners[name] else config, name)


def group(points: list[Probe], axis: str) -> dict:
    """The points grouped by one setting, in sorted order of its value: ``{value: [points]}``."""
    out: dict = {}
    for p in points:
        out.setdefault(setting(p, axis), []).append(p)
    return dict(sorted(out.items()))


def mean(points: list[Probe], name: str) -> float:
    """The mean over ``points`` of the metric ``name`` (dotted, :func:`~.sample_complexity.value`)."""
    return float(np.mean([value(p, name) for p in points]))


def summary(points: list[Probe], axis: str, name: str) -> dict:
    """``{value of axis: (mean, standard deviation over seeds, number of seeds)}`` of metric ``name``."""
    out = {}
    for v, pts in group(points, axis).items():
        x = np.array([value(p, name) for p in pts])
        out[v] = (float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else math.nan, len(x))
    return out


def learned_step(steps: np.ndarray, err: np.ndarray, floor: float, factor: float = 2.0) -> float:
    """When a quantity was learned during training: the first of ``steps: (E,)`` from which its error ``err: (E,)``
    stays within ``factor`` times ``max(final error, floor)``, where ``floor`` is the error of as many true sequences
    (the estimator's noise).

    ``nan`` when the first measurement is already within that band: the quantity is at its final level from the
    start (for example a weak correlation that white noise already gets right), so there is nothing to time.
    """
    steps, err = np.asarray(steps), np.asarray(err, float)
    if steps.size == 0 or steps.shape != err.shape:
        raise ValueError(f"steps and err must be non-empty and of one shape, got {steps.shape} and {err.shape}")
    band = factor * max(float(err[-1]), float(floor))
    if err[0] <= band:
        return math.nan
    above = np.nonzero(err > band)[0]
    return float(steps[above[-1] + 1]) if above[-1] + 1 < len(steps) else float(steps[-1])


def finite_median(x) -> float:
    """The median of the finite entries of ``x``; ``nan`` (without a warning) when there is none."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else math.nan


def order(first: float, second: float) -> str:
    """Whether ``first`` comes before ``second`` (two steps): ``"before"``, ``"same"``, ``"after"``, or ``"unknown"``
    when either is ``nan``."""
    if not (math.isfinite(first) and math.isfinite(second)):
        return "unknown"
    return "before" if first < second else "same" if first == second else "after"


def gap_learned_steps(p: Probe, factor: float = 2.0) -> np.ndarray:
    """:func:`learned_step` of the temporal-kernel error at each gap ``h``, ``(N,)``, against the true-sample floor
    at that gap (needs training dynamics)."""
    E, floor = p.eval_gap_error, p.eval_gap_error_true
    return np.array([learned_step(p.eval_steps, E[:, h], floor[h], factor) for h in range(E.shape[1])])


def smallest_sufficient(means: dict, tolerance: float = 0.1) -> object:
    """The smallest key of ``means: {value: mean error}`` whose error is within ``1 + tolerance`` of the best."""
    if not means:
        raise ValueError("means must hold at least one value")
    best = min(means.values())
    return min(k for k, v in means.items() if v <= (1 + tolerance) * best)


def rank_correlation(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman's rank correlation of ``x`` and ``y`` (same length); ``nan`` when either is constant."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(spearmanr(x, y).statistic)


def denoising_trend(p: Probe) -> np.ndarray:
    """Per layer, Spearman's rank correlation of the kernel similarity with the progress of denoising (the sampler's
    times from ``T`` down to ``t0``), ``(D,)``: positive when similarity rises as the noise is removed."""
    progress = np.arange(len(p.times))  # times are stored from T down to t0
    return np.array([rank_correlation(progress, p.similarity[:, k]) for k in range(p.similarity.shape[1])])


def separated(a: list[float], b: list[float]) -> bool:
    """Whether two sets of per-seed values are apart: their means differ by more than twice the larger of their
    standard errors (a rough test for a handful of seeds; ``False`` with fewer than two values on a side)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return False
    se = max(a.std(ddof=1) / math.sqrt(len(a)), b.std(ddof=1) / math.sqrt(len(b)))
    return abs(a.mean() - b.mean()) > 2 * se


__all__ = [
    "denoising_trend",
    "finite_median",
    "order",
    "gap_learned_steps",
    "group",
    "learned_step",
    "mean",
    "rank_correlation",
    "separated",
    "setting",
    "smallest_sufficient",
    "summary",
]
