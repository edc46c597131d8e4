"""Tests for gptheory.experiments.architecture_claims: each verdict of Figures 11 and 12 on constructed points where
the answer is known, including the outcomes that must fail and the tests that cannot be made."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest

from gptheory.experiments import architecture_claims as claims
from gptheory.experiments.probe import CALIBRATED
from gptheory.metrics import CovarianceErrors
from gptheory.results import setting

N = 16


def _point(seed: int, err: float = 0.07, floor: float = 0.05, rel: float = 1.0, **over) -> types.SimpleNamespace:
    """A calibrated probe point as the claims read it: its configuration, errors, floor and by-gap arrays."""
    fields = {k: over.pop(k) for k in list(over) if k in ("Gamma", "block_error", "block_error_true", "gap_error",
                                                          "receptive_field")}  # fmt: skip
    cfg = CALIBRATED["smoke"].replace(**({"seed": seed, "N": N} | over))
    e = CovarianceErrors(err, err, err, err, err)
    f = CovarianceErrors(floor, floor, floor, floor, floor)
    return types.SimpleNamespace(config=cfg.to_dict(), generated=e, floor=f, paper_relative_error=rel, **fields)


def _gamma(ell: float) -> np.ndarray:
    h = np.arange(N, dtype=float)
    G = np.exp(-np.abs(h[:, None] - h[None, :]) / ell)  # an exponential kernel: gamma(h) = exp(-h / ell)
    return G


def test_versus_dit_pairs_the_squared_excess_by_seed():
    rng = np.random.default_rng(3)
    pts = []
    for seed in range(5):
        lift = rng.normal(0, 0.02)  # a seed effect every architecture shares: pairing removes it
        pts += [_point(seed, 0.07 + lift, rel=1.2, arch="dit"), _point(seed, 0.09 + lift, rel=1.6, arch="unet"),
                _point(seed, 0.07 + lift + rng.normal(0, 0.002), rel=1.2, arch="diffusers-unet")]  # fmt: skip
    v = claims.versus_dit(pts)
    assert set(v) == {"unet", "diffusers-unet"} and v["unet"].outcome == "holds" and v["unet"].n == 5
    assert v["diffusers-unet"].outcome == "inconclusive"  # the same error up to noise: not decided
    assert claims.squared_excess(pts[0]) == pytest.approx((pts[0].generated.temporal ** 2 - 0.05**2) / 0.05**2)
    assert claims.versus_dit(pts, "paper_relative_error")["unet"].estimate == pytest.approx(0.4)
    # a seed the DiT lacks is left out, not paired with another seed's DiT
    assert (
        claims.versus_dit([p for p in pts if not (setting(p, "arch") == "dit" and setting(p, "seed") == 4)])["unet"].n
        == 4
    )
    with pytest.raises(ValueError, match="DiT points"):
        claims.versus_dit([p for p in pts if setting(p, "arch") != "dit"])


def test_dit_better_needs_both_temporal_metrics_at_the_bonferroni_level():
    rng = np.random.default_rng(4)
    pts = []
    for seed in range(5):
        lift = rng.normal(0, 0.01)
        pts += [_point(seed, 0.06 + lift, arch="dit"), _point(seed, 0.08 + lift + rng.normal(0, 1e-3), arch="unet")]
    outcome, per = claims.dit_better(pts)["unet"]
    assert outcome == "holds" and set(per) == set(claims.TEMPORAL)
    assert all(v.level == pytest.approx(0.95) for v in per.values())  # all must hold: no correction needed
    swapped = [_point(setting(p, "seed"), p.generated.temporal, arch="unet" if setting(p, "arch") == "dit" else "dit")
               for p in pts]  # fmt: skip
    assert claims.dit_better(swapped)["unet"][0] == "fails"  # the UNet clearly better on both


def test_weak_gaps_are_below_the_weak_cut_and_above_the_estimators_noise():
    gamma = _gamma(2.0)[0]  # exp(-h / 2): 0.61, 0.37, 0.22, 0.14, 0.08, 0.0498, ...
    assert list(claims.correlation_gaps(gamma)) == [3, 4, 5]  # 0.61, 0.37 are strong; gamma(6) is below 0.05
    assert list(claims.correlation_gaps(gamma, high=0.5)) == [2, 3, 4, 5]
    assert claims.correlation_gaps(np.r_[1.0, np.zeros(N - 1)]).size == 0  # white data: nothing to get right


def test_weak_correlations_compare_the_weak_gaps_over_their_floor_paired_by_seed():
    G = _gamma(2.0)
    base = np.ones(N)
    pts_dit, pts_unet = [], []
    rng = np.random.default_rng(5)
    for seed in range(4):
        worse = base.copy()
        worse[3:6] = 1.5 + rng.normal(0, 0.05)  # the UNet errs at the weak gaps only
        pts_dit.append(_point(seed, Gamma=G, block_error=base * (1 + rng.normal(0, 0.02)), block_error_true=base,
                              arch="dit"))  # fmt: skip
        pts_unet.append(_point(seed, Gamma=G, block_error=worse, block_error_true=base, arch="unet"))
    v, gaps = claims.weak_correlations(pts_unet, pts_dit)
    assert list(gaps) == [3, 4, 5] and v.outcome == "holds" and v.estimate == pytest.approx(0.5, abs=0.1)
    v, _ = claims.weak_correlations(pts_dit, pts_unet)
    assert v.outcome == "fails"
    v, gaps = claims.weak_correlations([], pts_dit)  # the UNets have not shipped: nothing measured
    assert v.n == 0 and v.outcome == "inconclusive" and gaps.size == 0
    # far gaps (no correlation left) do not enter: an error there changes nothing
    for p in pts_unet:
        p.block_error = base.copy()
        p.block_error[10:] = 5.0
    v, _ = claims.weak_correlations(pts_unet, pts_dit)
    assert abs(v.estimate) < 0.1


def test_filter_jump_is_not_testable_when_nothing_lies_beyond_the_reach():
    G = _gamma(1.0)  # exp(-h): at gap 6, 0.0025, below the estimators' noise
    short = [_point(s, Gamma=G, gap_error=np.ones(N), receptive_field=5) for s in range(3)]
    long_ = [_point(s, Gamma=G, gap_error=np.ones(N), receptive_field=15) for s in range(3)]
    outcome, why = claims.filter_jump(short, long_)
    assert outcome == "inconclusive" and "not testable" in why and "0.002" in why  # the largest correlation beyond
    whole = [_point(s, Gamma=G, gap_error=np.ones(N), receptive_field=N + 3) for s in range(3)]
    outcome, why = claims.filter_jump(whole, long_)
    assert outcome == "inconclusive" and "spans every gap" in why


def test_filter_jump_holds_for_a_jump_fails_for_none_and_pairs_by_seed():
    G = _gamma(8.0)  # exp(-h / 8): every gap's correlation above the noise (0.15 at gap 15)
    rng = np.random.default_rng(6)

    def runs(jump: float, seeds=range(4)):
        short, long_ = [], []
        for s in seeds:
            e = np.ones(N) * (1 + rng.normal(0, 0.02))
            e[6:] *= jump  # the short network errs more beyond its reach of 5 gaps
            short.append(_point(s, Gamma=G, gap_error=e, receptive_field=5))
            long_.append(_point(s, Gamma=G, gap_error=np.ones(N), receptive_field=15))
        return short, long_

    v, _ = claims.filter_jump(*runs(2.0))
    assert v.outcome == "holds" and v.estimate == pytest.approx(math.log(2.0 / 1.25), abs=0.05)  # the jump over 25%
    v, _ = claims.filter_jump(*runs(1.0))
    assert v.outcome == "fails"  # established smaller than a 25% jump
    v, _ = claims.filter_jump(*runs(1.1))
    assert v.outcome == "fails"  # a clear but small jump is not the conjecture's: under 25% counts as none
    short, long_ = runs(2.0)
    v, _ = claims.filter_jump(short[1:], long_[:-1])  # seeds 1-3 against 0-2: only the common seeds pair
    assert v.n == 2
    for a, b in (([], long_), (short, []), (short, short)):  # not shipped yet, or one filter only
        outcome, why = claims.filter_jump(a, b)
        assert outcome == "inconclusive" and "not measured" in why


def test_mild_growth_fits_each_seed_and_judges_the_slopes_against_one_half():
    rng = np.random.default_rng(8)

    def pts(k: float):  # each seed's own power law with noise: the slopes differ between seeds
        return [_point(s, N=n, rel=(1 + 0.01 * s) * n**k * np.exp(rng.normal(0, 0.03))) for s in range(4)
                for n in (8, 16, 32, 64)]  # fmt: skip

    v, slopes = claims.mild_growth(pts(0.1))
    assert v.outcome == "holds" and len(set(slopes.values())) == 4
    assert all(b == pytest.approx(0.1, abs=0.06) for b in slopes.values())
    assert claims.mild_growth(pts(0.9))[0].outcome == "fails"
    assert claims.mild_growth(pts(0.5))[0].outcome == "inconclusive"  # at the line itself: not decided


def _depth_points(excess: dict[int, float], noise: float = 0.01, seeds=range(3)):
    rng = np.random.default_rng(7)
    return [_point(s, rel=1 + e + rng.normal(0, noise), depth=k) for s in seeds for k, e in excess.items()]


def test_depth_claims_improves_suffices_and_the_smallest_sufficient_depth():
    levelling = _depth_points({1: 0.8, 2: 0.4, 4: 0.1, 8: 0.05, 12: 0.04})
    assert claims.improves_with_depth(levelling).outcome == "holds"
    assert claims.suffices(levelling, 8)[0] == "holds"  # 12 blocks gain 0.01 floor, well under 0.1
    assert claims.suffices(levelling, 2)[0] == "fails"  # 12 blocks gain 0.36 floor over 2
    assert claims.suffices(levelling, 12)[0] == "inconclusive"  # nothing deeper was tried
    assert claims.smallest_sufficient(levelling) == 4  # 0.1 is within 0.1 floor of the best, 0.04
    still = _depth_points({1: 0.8, 2: 0.6, 4: 0.5, 8: 0.4, 12: 0.1})
    assert claims.suffices(still, 8)[0] == "fails" and claims.smallest_sufficient(still) == 12
    assert claims.improves_with_depth(_depth_points({1: 0.1, 12: 0.5})).outcome == "fails"


def test_capped_by_counts_the_points_stopped_at_their_cap_per_value_of_a_setting():
    stops = {(0, 1): "cap", (1, 1): "cap", (2, 1): "converged", (0, 8): "converged", (1, 8): "cap"}
    stops[0, 12] = "converged"
    pts = [types.SimpleNamespace(**vars(_point(s, depth=k)), stop_reason=why) for (s, k), why in stops.items()]
    assert claims.capped_by(pts, "depth") == {1: (2, 3), 8: (1, 2), 12: (0, 1)}
    assert list(claims.capped_by(pts, "depth")) == [1, 8, 12]  # in order of depth, for the chapter's sentence
    assert claims.capped_by(pts, "seed") == {0: (1, 3), 1: (2, 2), 2: (0, 1)}  # any setting, not only depth
    lengths = [types.SimpleNamespace(**vars(_point(0, N=n)), stop_reason=why) for n, why in ((64, "cap"), (8, "cap"))]
    assert claims.capped_by(lengths, "N") == {8: (1, 1), 64: (1, 1)}
    assert claims.capped_by([], "depth") == {}
