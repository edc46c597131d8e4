"""Small statistics the chapters and experiments share, and the one rule every verdict of the book comes from.

* :func:`verdict`: from per-seed effects (paired by seed, each positive where the claim holds), the Student-t
  interval of their mean and the outcome *holds* (the interval is above zero), *fails* (below zero, or inside the
  negligible band ``(-margin, margin)``) or *inconclusive*; :func:`all_hold` joins the verdicts of a chain of claims
  (an ordering of several settings);
* a log-log fit with its interval, a rank correlation, and a median and an order that tolerate missing values.

Every function takes plain numbers or arrays (nothing trained, nothing torch).
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


OUTCOMES = ("holds", "fails", "inconclusive")


class Verdict(NamedTuple):
    """What :func:`verdict` decided: ``outcome`` (one of :data:`OUTCOMES`), the mean effect ``estimate`` and its
    ``level`` interval ``[low, high]`` over ``n`` seeds (``nan`` with fewer than two); ``dropped`` effects were not
    finite (a seed where the quantity could not be measured) and were left out; ``censored`` of the ``n`` were only
    bounded (:func:`censored_verdict`)."""

    outcome: str
    estimate: float
    low: float
    high: float
    n: int
    level: float
    dropped: int = 0
    censored: int = 0

    @property
    def seeds(self) -> str:
        """``"n = 3"``, ``"n = 1 of 2"`` when effects were dropped, ``"n = 3, 1 censored"``: how many seeds the
        verdict rests on."""
        n = f"n = {self.n}" + (f" of {self.n + self.dropped}" if self.dropped else "")
        return n + (f", {self.censored} censored" if self.censored else "")

    def interval(self, digits: int = 2) -> str:
        """``"0.12 [0.05, 0.19]"``: the estimate and its interval, for prose."""
        f = f"{{:.{digits}g}}"
        return f"{f.format(self.estimate)} [{f.format(self.low)}, {f.format(self.high)}]"


def verdict(effects: Sequence[float], level: float = 0.95, margin: float = 0.0) -> Verdict:
    """The one rule the book's verdicts come from.

    Args:
        effects: one number per seed (paired: the same seeds on both sides of a comparison), positive where the claim
            holds for that seed (``error_B - error_A`` for "A has the smaller error", a slope's negative for "falls").
            Non-finite entries are dropped.
        level: confidence level of the two-sided Student-t interval of the mean effect.
        margin: effects smaller than this in size are negligible: an interval inside ``(-margin, margin)`` *fails*
            the claim (it is established that there is no effect that matters). ``0``: only the sign is tested.

    Returns:
        A :class:`Verdict`: ``holds`` when the interval lies above 0; ``fails`` when it lies below 0 or inside
        ``(-margin, margin)``; else ``inconclusive`` (also with fewer than two finite effects).
    """
    from scipy import stats

    x = np.asarray(effects, float)
    dropped = int((~np.isfinite(x)).sum())
    x = x[np.isfinite(x)]
    n = len(x)
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    if margin < 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    if n < 2:
        est = float(x.mean()) if n else math.nan
        return Verdict("inconclusive", est, math.nan, math.nan, n, level, dropped)
    est = float(x.mean())
    half = float(stats.t.ppf(0.5 + level / 2, n - 1)) * float(x.std(ddof=1)) / math.sqrt(n)
    low, high = est - half, est + half
    if low > 0:
        outcome = "holds"
    elif high < 0 or (margin > 0 and -margin < low and high < margin):
        outcome = "fails"
    else:
        outcome = "inconclusive"
    return Verdict(outcome, est, low, high, n, level, dropped)


def censored_verdict(effects: Sequence[tuple[float, float, float]], level: float = 0.95) -> Verdict:
    """:func:`verdict` on per-seed effects known only within bounds, ``(value, low, high)`` each: the true effect lies
    in ``[low, high]`` (all three equal for an effect measured outright; a censored time, say "not learned by the last
    epoch", gives an infinite bound). The claim *holds* only if it holds with every seed at its lower bound (the
    least favourable to the claim) and *fails* only if it fails with every seed at its upper bound (an infinite bound
    rules that out), else it is *inconclusive*; the estimate and interval returned are those of the bounds that
    decided (of the values when inconclusive). A censored seed is thus counted on the side that makes the outcome
    harder to reach, never dropped; a Student-t interval is not monotone in one seed's value, so this is conservative
    in each seed's effect rather than an exact bound on the outcome. ``censored`` counts the seeds with
    ``low < high``; a non-finite value is dropped, as by :func:`verdict`."""
    e = np.asarray(effects, float).reshape(-1, 3)
    v = values = verdict(e[:, 0], level)
    lo, hi = e[np.isfinite(e[:, 0]), 1], e[np.isfinite(e[:, 0]), 2]
    v_lo = verdict(lo, level) if np.isfinite(lo).all() else None
    v_hi = verdict(hi, level) if np.isfinite(hi).all() else None
    if v_lo is not None and v_lo.outcome == "holds":
        v = v_lo
    elif v_hi is not None and v_hi.outcome == "fails":
        v = v_hi
    else:
        v = v._replace(outcome="inconclusive")
    return v._replace(censored=int((lo != hi).sum()), dropped=values.dropped)


def all_hold(verdicts: Sequence[Verdict | str]) -> str:
    """The outcome of a chain of claims (``A < B`` and ``B < C`` for an ordering), given as verdicts or as outcome
    words: ``holds`` when every link holds, ``fails`` when any fails, else ``inconclusive``."""
    outcomes = [v if isinstance(v, str) else v.outcome for v in verdicts]
    if not outcomes:
        return "inconclusive"
    if "fails" in outcomes:
        return "fails"
    return "holds" if all(o == "holds" for o in outcomes) else "inconclusive"


def ordered(values: Sequence[dict[int, float]], level: float = 0.95, margin: float = 0.0) -> tuple[str, list]:
    """The claim "the settings are in increasing order": ``values`` holds, per setting in the claimed order, its
    per-seed values ``{seed: value}``; each adjacent pair is compared on the seeds both have (paired differences
    ``next - previous``, :func:`verdict`). Returns the joined outcome (:func:`all_hold`) and the links' verdicts."""
    links = [verdict(paired(b, a), level, margin) for a, b in zip(values, values[1:], strict=False)]
    return all_hold(links), links


def paired(first: dict[int, float], second: dict[int, float]) -> list[float]:
    """``first[s] - second[s]`` for every seed ``s`` both have, in seed order: the per-seed effects of a comparison
    (common random numbers: each seed's two sides share their data and streams). A seed on one side only is left out,
    never shifted onto another seed's partner."""
    return [first[s] - second[s] for s in sorted(set(first) & set(second))]


def per_seed_slopes(xy: dict[int, Sequence[tuple[float, float]]]) -> dict[int, float]:
    """The least-squares slope of ``log y`` on ``log x`` of each seed's own points, ``{seed: [(x, y), ...]}`` ->
    ``{seed: slope}``: a fit per seed, so that the slopes are independent and :func:`verdict` can judge them (one fit
    through every seed's points has correlated residuals and no valid interval). A seed with fewer than two distinct
    positive ``x`` (or a non-positive ``y``) gets ``nan``."""
    out = {}
    for seed, pts in xy.items():
        a = np.asarray(pts, float).reshape(-1, 2)
        ok = (a[:, 0] > 0) & (a[:, 1] > 0)
        a = a[ok]
        if len(np.unique(a[:, 0])) < 2 or not ok.all():
            out[seed] = math.nan
            continue
        out[seed] = float(np.polyfit(np.log(a[:, 0]), np.log(a[:, 1]), 1)[0])
    return out


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


__all__ = [
    "OUTCOMES",
    "Fit",
    "Verdict",
    "all_hold",
    "censored_verdict",
    "ordered",
    "finite_median",
    "paired",
    "per_seed_slopes",
    "loglog_fit",
    "order",
    "rank_correlation",
    "verdict",
]
