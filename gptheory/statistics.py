"""Small statistics the chapters and experiments share: a log-log fit with its interval, a rank correlation, whether
two sets of seeds are apart, and a median and an order that tolerate missing values.

Every function takes plain numbers or arrays (nothing trained, nothing torch); the verdicts of the chapters are made
of these.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np


class Fit(NamedTuple):
    """A fitted power law ``y ~ exp(intercept) x^slope``, with a confidence interval ``[low, high]`` of the slope
    (``fit[:3]`` is ``(slope, low, high)``)."""

    slope: float
    low: float
    high: float
    intercept: float


def loglog_fit(x: Sequence[float], y: Sequence[float], level: float = 0.95) -> Fit:
    """Least-squares line of ``log y`` on ``log x`` (a power law ``y ~ C x^slope``; ``x, y > 0``, same length), with
    the ``level`` confidence interval of its slope (Student t over the residuals; every point counts, seeds included).

    All four numbers are ``nan`` with fewer than two distinct ``x``; the interval is ``nan`` with fewer than three
    points (no spread to estimate).
    """
    lx, ly = np.log(np.asarray(x, float)), np.log(np.asarray(y, float))
    if len(np.unique(lx)) < 2:
        return Fit(math.nan, math.nan, math.nan, math.nan)
    slope, intercept = np.polyfit(lx, ly, 1)
    slope, intercept = float(slope), float(intercept)
    dof = len(lx) - 2
    if dof < 1:
        return Fit(slope, math.nan, math.nan, intercept)
    from scipy import stats

    residual = ly - (slope * lx + intercept)
    stderr = math.sqrt(float((residual**2).sum()) / dof / float(((lx - lx.mean()) ** 2).sum()))
    half = float(stats.t.ppf(0.5 + level / 2, dof)) * stderr
    return Fit(slope, slope - half, slope + half, intercept)


def rank_correlation(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman's rank correlation of ``x`` and ``y`` (same length); ``nan`` when either is constant."""
    from scipy.stats import spearmanr

    x, y = np.asarray(x, float), np.asarray(y, float)
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return math.nan
    return float(spearmanr(x, y).statistic)


def separated(a: Sequence[float], b: Sequence[float]) -> bool:
    """Whether two sets of per-seed values are apart: their means differ by more than twice the larger of their
    standard errors (a rough test for a handful of seeds; ``False`` with fewer than two values on a side)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    if len(a) < 2 or len(b) < 2:
        return False
    se = max(a.std(ddof=1) / math.sqrt(len(a)), b.std(ddof=1) / math.sqrt(len(b)))
    return abs(a.mean() - b.mean()) > 2 * se


def finite_median(x: Sequence[float]) -> float:
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


__all__ = ["Fit", "finite_median", "loglog_fit", "order", "rank_correlation", "separated"]
