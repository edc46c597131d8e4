"""Tests for gptheory.statistics: the log-log fit against closed forms and scipy, its interval's coverage, and the
small verdict statistics on constructed inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from gptheory.statistics import (
    all_hold,
    finite_median,
    loglog_fit,
    order,
    ordered,
    paired,
    per_seed_slopes,
    rank_correlation,
    verdict,
)


def test_loglog_fit_of_an_exact_power_law_is_exact_with_no_spread():
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    fit = loglog_fit(x, 3.0 * x**-0.5)
    assert fit.slope == pytest.approx(-0.5, rel=1e-12) and fit.intercept == pytest.approx(math.log(3.0), rel=1e-12)
    assert fit.low == pytest.approx(-0.5, rel=1e-9) and fit.high == pytest.approx(-0.5, rel=1e-9)
    assert fit[:3] == (fit.slope, fit.low, fit.high)


def test_loglog_fit_interval_is_the_student_t_interval_of_known_residuals():
    lx = np.log([1.0, 2.0, 4.0, 8.0, 16.0, 32.0])
    # residuals orthogonal to 1 and log x: the least-squares line is exactly (a, b), and the residuals are e
    e = np.array([1.0, -1.0, -1.0, 1.0, 1.0, -1.0])
    e -= np.polyval(np.polyfit(lx, e, 1), lx)
    a, b = 0.7, -1.3
    fit = loglog_fit(np.exp(lx), np.exp(a + b * lx + 0.1 * e))
    assert fit.slope == pytest.approx(b, rel=1e-12) and fit.intercept == pytest.approx(a, rel=1e-12)
    dof = len(lx) - 2
    se = math.sqrt((0.1 * e) @ (0.1 * e) / dof / ((lx - lx.mean()) ** 2).sum())
    half = stats.t.ppf(0.975, dof) * se
    assert fit.low == pytest.approx(b - half, rel=1e-12) and fit.high == pytest.approx(b + half, rel=1e-12)
    narrow = loglog_fit(np.exp(lx), np.exp(a + b * lx + 0.1 * e), level=0.5)
    assert fit.low < narrow.low < b < narrow.high < fit.high


def test_loglog_fit_agrees_with_scipy_and_its_interval_covers_the_slope_as_often_as_it_says():
    rng = np.random.default_rng(0)
    n = np.repeat([64, 256, 1024, 4096], 3)
    covered = 0
    for _ in range(400):
        err = 2.0 * n**-0.5 * np.exp(rng.normal(0, 0.05, n.size))
        fit = loglog_fit(n, err)
        covered += fit.low < -0.5 < fit.high
    ref = stats.linregress(np.log(n), np.log(err))
    half = stats.t.ppf(0.975, n.size - 2) * ref.stderr
    np.testing.assert_allclose(fit[:3], (ref.slope, ref.slope - half, ref.slope + half), rtol=1e-10)
    assert 0.92 <= covered / 400 <= 0.98  # binomial(400, 0.95): sd 0.011


def test_loglog_fit_without_enough_points():
    assert all(math.isnan(v) for v in loglog_fit([64, 64], [0.1, 0.2]))  # one size: no slope
    two = loglog_fit([1.0, 10.0], [1.0, 0.1])  # a line through two points: no spread to estimate
    assert two.slope == pytest.approx(-1.0) and math.isnan(two.low) and math.isnan(two.high)


def test_order_and_finite_median_handle_missing_values():
    assert order(1, 2) == "before" and order(2, 2) == "same" and order(3, 2) == "after"
    assert order(math.nan, 2) == "unknown"
    assert finite_median([1.0, math.nan, 3.0]) == 2.0 and math.isnan(finite_median([math.nan]))


def test_verdict_covers_the_true_mean_at_its_level_and_decides_by_the_interval():
    rng = np.random.default_rng(0)
    hits = 0
    for _ in range(2000):
        v = verdict(rng.normal(0.3, 1.0, size=5), level=0.9)
        hits += v.low <= 0.3 <= v.high
    assert abs(hits / 2000 - 0.9) < 0.02  # 2000 draws: a coverage estimate good to 0.007 (sd)
    assert verdict([1.0, 1.2, 0.9, 1.1]).outcome == "holds"
    assert verdict([-1.0, -1.2, -0.9, -1.1]).outcome == "fails"
    assert verdict([1.0, -1.0, 0.5, -0.4]).outcome == "inconclusive"
    # two seeds: the 95% multiplier is 12.7, so a clear-looking gap is not enough
    assert verdict([1.0, 0.5]).outcome == "inconclusive"
    assert verdict([0.01, 0.012, 0.011, 0.009], margin=0.05).outcome == "holds"  # positive beats negligible
    assert verdict([0.01, -0.012, 0.011, -0.009], margin=0.05).outcome == "fails"  # established negligible
    v = verdict([1.0])
    assert v.outcome == "inconclusive" and np.isnan(v.low) and v.n == 1
    v = verdict([1.0, np.nan, 1.1, np.inf])
    assert (v.n, v.dropped, v.seeds) == (2, 2, "n = 2 of 4")  # the unmeasured seeds are counted, not hidden
    assert verdict([1.0, 1.1]).seeds == "n = 2"
    with pytest.raises(ValueError, match="level must lie in"):
        verdict([1.0, 2.0], level=1.0)


def test_ordered_compares_adjacent_settings_on_their_common_seeds():
    low, mid, high = {0: 1.0, 1: 1.2, 2: 0.9}, {0: 2.0, 1: 2.1, 2: 2.0, 3: 9.0}, {0: 3.0, 1: 3.3, 2: 2.9}
    outcome, links = ordered([low, mid, high])
    assert outcome == "holds" and [v.n for v in links] == [3, 3]  # seed 3 has no partner on either side
    assert ordered([high, mid, low])[0] == "fails"
    assert ordered([low, {0: 1.5, 1: 0.8, 2: 1.2}])[0] == "inconclusive"


def test_paired_differences_match_seeds_never_positions():
    a, b = {0: 5.0, 2: 7.0, 3: 9.0}, {0: 1.0, 1: 100.0, 3: 2.0}
    assert paired(a, b) == [4.0, 7.0]  # seeds 0 and 3; seed 2 and seed 1 have no partner
    assert paired(a, {}) == []


def test_per_seed_slopes_recover_each_seeds_own_power_law():
    rng = np.random.default_rng(1)
    x = np.array([8.0, 16.0, 32.0, 64.0])
    xy = {s: list(zip(x, 3.0 * x**k, strict=True)) for s, k in ((0, 0.5), (1, -1.0), (4, 0.0))}
    slopes = per_seed_slopes(xy)
    assert slopes[0] == pytest.approx(0.5, abs=1e-12) and slopes[1] == pytest.approx(-1.0, abs=1e-12)
    assert slopes[4] == pytest.approx(0.0, abs=1e-12)
    noisy = per_seed_slopes({0: list(zip(x, x**0.3 * np.exp(0.01 * rng.standard_normal(4)), strict=True))})
    assert noisy[0] == pytest.approx(0.3, abs=0.05)
    bad = per_seed_slopes({0: [(8.0, 1.0)], 1: [(8.0, 1.0), (8.0, 2.0)], 2: [(8.0, 1.0), (16.0, -1.0)]})
    assert all(math.isnan(v) for v in bad.values())  # one x, one distinct x, a non-positive y


def test_all_hold_joins_a_chain_of_claims():
    h, f, i = verdict([1, 1.1, 0.9]), verdict([-1, -1.1, -0.9]), verdict([1, -1, 0.2])
    assert all_hold([h, h]) == "holds" and all_hold([h, i]) == "inconclusive" and all_hold([h, i, f]) == "fails"
    assert all_hold([]) == "inconclusive"


def test_rank_correlation_is_spearmans_and_nan_for_a_constant():
    assert rank_correlation([1, 2, 3, 4, 5], [1, 3, 2, 5, 4]) == pytest.approx(1 - 6 * 4 / (5 * 24), rel=1e-12)
    assert rank_correlation([1, 2, 3], [10, 100, 1000]) == pytest.approx(1.0)  # ranks only: any monotone map
    assert math.isnan(rank_correlation([1, 2, 3], [5, 5, 5]))
