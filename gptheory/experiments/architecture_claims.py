"""The claims of Appendix D.2 (Figures 11 and 12) as verdicts: each rule once, on per-seed effects paired by seed
(:func:`gptheory.statistics.verdict`), so that the chapter's sentences and its closing table come from the same
tested functions. The training-dynamics claims (Figure 13) are :mod:`.dynamics`'.

Every function reads calibrated :class:`~.probe.Probe` records: errors are judged as excess over the
sampling floor of as many draws of the right law.

* :func:`correlation_gaps`: the gaps whose correlation is weak (the paper's "rather weak" correlations) but above
  the estimators' noise (:data:`gptheory.floors.RESOLVABLE`), not absent;
* :func:`dit_better`: "the DiT learns the temporal correlation better" on the temporal metrics, Bonferroni-corrected;
* :func:`weak_correlations`: "the UNet struggles with weak correlations" on the gaps where they are weak;
* :func:`filter_jump`: the filter-size conjecture, or why these runs cannot test it;
* :func:`mild_growth`, :func:`improves_with_depth`, :func:`suffices`: Figure 12.
"""

from __future__ import annotations

import math

import numpy as np

from .. import floors
from ..floors import RESOLVABLE
from ..results import by_seed, setting
from ..statistics import Verdict, paired, per_seed_slopes, verdict
from .probe import Probe

TEMPORAL = ("temporal", "temporal_ls")  # the metrics of "learns the temporal correlation better"
WEAK = 0.3  # correlations below this (and resolvable) are "weak"
NEGLIGIBLE_JUMP = math.log(1.25)  # an error that grows by less than 25% beyond a filter's reach has not jumped


def excess_ratio(p: Probe, metric: str) -> float:
    """How far above its floor one of ``p``'s errors is, in floors: ``error / floor - 1`` for a
    :class:`~gptheory.metrics.CovarianceErrors` metric, ``paper_relative_error - 1`` for the paper's error (a ratio on
    equal counts of training sequences, about 1 for a perfect generator). 0 is perfect."""
    if metric == "paper_relative_error":
        return p.paper_relative_error - 1.0
    return getattr(p.generated, metric) / getattr(p.floor, metric) - 1.0


def squared_excess(p: Probe, metric: str = "temporal") -> float:
    """``(error^2 - floor^2) / floor^2`` of one of ``p``'s :class:`~gptheory.metrics.CovarianceErrors` (negative below
    the floor), or its ``paper_relative_error`` as it is; the verdicts' scale."""
    if metric == "paper_relative_error":
        return p.paper_relative_error
    return floors.squared_excess(getattr(p.generated, metric), getattr(p.floor, metric))


def versus_dit(points: list[Probe], metric: str = "temporal", level: float = 0.95) -> dict[str, Verdict]:
    """ "The DiT learns better than ``arch``" on ``metric``, for every other architecture among ``points``: the
    verdict on the per-seed differences ``e(arch) - e(dit)`` of :func:`squared_excess` (paired by seed; positive
    where the DiT is better). ``{arch: Verdict}``."""
    by: dict[str, list[Probe]] = {}
    for p in points:
        by.setdefault(setting(p, "arch"), []).append(p)
    if "dit" not in by:
        raise ValueError("versus_dit needs DiT points among the points")
    dit = by_seed(by.pop("dit"), lambda p: squared_excess(p, metric))
    return {
        a: verdict(paired(by_seed(pts, lambda p: squared_excess(p, metric)), dit), level)
        for a, pts in sorted(by.items())
    }


def dit_better(points: list[Probe], level: float = 0.95) -> dict[str, tuple[str, dict[str, Verdict]]]:
    """Figure 11's "the DiT learns the temporal correlation better than ``arch``", for each other architecture, on
    the metrics of :data:`TEMPORAL`: it *holds* when it holds on every one at ``level`` (all must hold, so no
    correction is needed), *fails* when it fails on any one at ``1 - (1 - level) / 2`` (Bonferroni: two chances to
    fail). ``{arch: (outcome, {metric: Verdict at level})}``."""
    per = {m: versus_dit(points, m, level) for m in TEMPORAL}
    strict = {m: versus_dit(points, m, 1 - (1 - level) / len(TEMPORAL)) for m in TEMPORAL}
    out = {}
    for a in per[TEMPORAL[0]]:
        if all(per[m][a].outcome == "holds" for m in TEMPORAL):
            outcome = "holds"
        elif any(strict[m][a].outcome == "fails" for m in TEMPORAL):
            outcome = "fails"
        else:
            outcome = "inconclusive"
        out[a] = (outcome, {m: per[m][a] for m in TEMPORAL})
    return out


def correlation_gaps(gamma: np.ndarray, high: float = WEAK) -> np.ndarray:
    """The gaps ``h >= 1`` whose true correlation ``gamma[h]`` (``gamma: (N,)``, ``gamma[0] = 1``) is at least
    :data:`~gptheory.floors.RESOLVABLE` and below ``high``: the weak correlations."""
    gamma = np.abs(np.asarray(gamma, float))
    h = np.arange(len(gamma))
    return h[(h >= 1) & (gamma >= RESOLVABLE) & (gamma < high)]


def _gamma(p: Probe) -> np.ndarray:
    return np.asarray(p.Gamma, float)[0]  # a stationary kernel: the first row holds every gap


def weak_correlations(unet: list[Probe], dit: list[Probe]) -> tuple[Verdict, np.ndarray]:
    """ "The UNet struggles with weak correlations": per seed, the UNet's cross-frame covariance error over that of
    as many true sequences, minus the DiT's, averaged over the weak gaps (:func:`correlation_gaps`).
    Positive where the claim holds. Returns the verdict and the gaps (none when either side has no point)."""
    if not unet or not dit:
        return verdict([]), np.zeros(0, int)
    gaps = correlation_gaps(_gamma(dit[0]))
    if not gaps.size:
        return verdict([]), gaps
    unet_e, dit_e = by_seed(unet, lambda p: over_true(p, gaps)), by_seed(dit, lambda p: over_true(p, gaps))
    return verdict(paired(unet_e, dit_e)), gaps


def over_true(p: Probe, gaps: np.ndarray) -> float:
    """``p``'s cross-frame covariance error over that of as many true sequences, averaged over ``gaps``."""
    return float(np.mean(p.block_error[gaps] / p.block_error_true[gaps]))


def filter_jump(short: list[Probe], long_: list[Probe]) -> tuple[Verdict | str, str]:
    """The filter-size conjecture: a UNet whose single evaluation spans gaps up to ``rf`` only should err more,
    relative to a longer-reaching UNet, at the gaps beyond ``rf`` than within. Per seed, the log of that jump
    (``(short / long)`` kernel error beyond over within) minus :data:`NEGLIGIBLE_JUMP`: it holds when the jump is
    clearly more than 25%, fails when clearly less.
    Where no gap beyond the reach carries a resolvable correlation, there is nothing the short filter could miss and
    the test cannot be made: ``("inconclusive", why)``, as when either network has no point yet. Returns the
    verdict (or outcome word) and its reason."""
    if not short or not long_ or short is long_:
        return "inconclusive", "not measured: the short and the long filters have not both shipped"
    rf = int(short[0].receptive_field)
    gamma = _gamma(short[0])
    beyond = np.arange(rf + 1, len(gamma))
    beyond = beyond[np.abs(gamma[beyond]) >= RESOLVABLE]
    if rf + 1 >= len(gamma):
        return "inconclusive", f"not testable here: one evaluation of the short UNet spans every gap (up to {rf})"
    if not beyond.size:
        largest = float(np.abs(gamma[rf + 1 :]).max())
        return "inconclusive", (
            f"not testable here: beyond gap {rf} the true correlation is at most {largest:.1g}, below the "
            f"estimators' noise ({RESOLVABLE:g}), so a short filter has nothing to miss"
        )
    inside = np.arange(1, min(rf, len(gamma) - 1) + 1)

    def ratio(a: Probe, b: Probe, gaps: np.ndarray) -> float:
        return float(a.gap_error[gaps].mean() / b.gap_error[gaps].mean())

    longs = {int(setting(p, "seed")): p for p in long_}
    jumps = {
        int(setting(a, "seed")): math.log(ratio(a, longs[s], beyond) / ratio(a, longs[s], inside))
        for a in short
        if (s := int(setting(a, "seed"))) in longs
    }
    v = verdict([j - NEGLIGIBLE_JUMP for j in jumps.values()])
    gaps = f"{beyond.min()}-{beyond.max()}"
    return v, f"log of the short UNet's error jump at the resolvable gaps beyond its reach ({gaps}), minus log 1.25"


def mild_growth(points: list[Probe], slope: float = 0.5) -> tuple[Verdict, dict[int, float]]:
    """Figure 12 (left), "the error grows only mildly with N", read as: each seed's log-log slope of the paper's
    error in ``N`` is below ``slope`` (our reading). Effects ``slope - b`` per seed. Returns the verdict and the
    slopes."""
    xy: dict[int, list[tuple[float, float]]] = {}
    for p in points:
        xy.setdefault(int(setting(p, "seed")), []).append((float(setting(p, "N")), p.paper_relative_error))
    slopes = per_seed_slopes(xy)
    return verdict([slope - b for b in slopes.values()]), slopes


def _depths(points: list[Probe], metric: str) -> dict[int, dict[int, float]]:
    out: dict[int, dict[int, float]] = {}
    for p in points:
        out.setdefault(int(setting(p, "depth")), {})[int(setting(p, "seed"))] = excess_ratio(p, metric)
    return out


def improves_with_depth(points: list[Probe], metric: str = "paper_relative_error") -> Verdict:
    """Figure 12 (right), "the error falls as blocks are added": per seed, the excess (:func:`excess_ratio`) at the
    fewest blocks minus at the most. Positive where it holds."""
    d = _depths(points, metric)
    return verdict(paired(d[min(d)], d[max(d)]))


def suffices(points: list[Probe], blocks: int, metric: str = "paper_relative_error", margin: float = 0.1):
    """ "``blocks`` blocks suffice": more blocks than that gain less than ``margin`` floors of excess
    (:func:`excess_ratio`). The test is on the per-seed gain ``excess(blocks) - excess(deepest)``: *holds* when its
    interval lies below ``margin`` (the gain is established to be small), *fails* when it lies above ``margin``, else
    *inconclusive*. Returns ``(outcome, Verdict of the gain minus margin)``; with ``blocks`` the deepest tried, there is
    nothing deeper to compare: ``("inconclusive", None)``."""
    d = _depths(points, metric)
    if blocks not in d or blocks >= max(d):
        return "inconclusive", None
    v = verdict([margin - g for g in paired(d[blocks], d[max(d)])])  # positive: the gain is below the margin
    return v.outcome, v


def smallest_sufficient(points: list[Probe], metric: str = "paper_relative_error", tolerance: float = 0.1) -> int:
    """The fewest blocks whose mean excess (:func:`excess_ratio`, over seeds) is within ``tolerance`` floors of the
    best depth's: a description, not a verdict."""
    means = {k: float(np.mean(list(v.values()))) for k, v in _depths(points, metric).items()}
    best = min(means.values())
    return min(k for k, v in means.items() if v <= best + tolerance)


def capped_by(points: list[Probe], axis: str) -> dict[float, tuple[int, int]]:
    """Per value of the setting ``axis`` (``"depth"`` in blocks, ``"N"`` in frames ...), ``(capped, trained)``: how
    many of its points stopped at the step cap (``stop_reason == "cap"``, the validation loss still improving) out
    of how many shipped, in order of the value. A capped point's error is what the budget reaches, not what the
    network can: the chapter says so beside the length and depth verdicts."""
    out: dict[float, tuple[int, int]] = {}
    for p in points:
        capped, trained = out.get(setting(p, axis), (0, 0))
        out[setting(p, axis)] = (capped + (p.stop_reason == "cap"), trained + 1)
    return dict(sorted(out.items()))


__all__ = [
    "NEGLIGIBLE_JUMP",
    "RESOLVABLE",
    "TEMPORAL",
    "WEAK",
    "capped_by",
    "correlation_gaps",
    "dit_better",
    "excess_ratio",
    "filter_jump",
    "improves_with_depth",
    "mild_growth",
    "over_true",
    "smallest_sufficient",
    "squared_excess",
    "suffices",
    "versus_dit",
    "weak_correlations",
]
