"""Tests for gptheory.statistics: the log-log fit against closed forms and scipy, its interval's coverage, and the
small verdict statistics on constructed inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from gptheory.statistics import finite_median, loglog_fit, order, rank_correlation, separated


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


def test_separated_needs_a_gap_beyond_the_seed_noise():
    assert separated([1.0, 1.1, 0.9], [2.0, 2.1, 1.9])
    assert not separated([1.0, 1.5, 0.5], [1.2, 1.7, 0.7])
    assert not separated([1.0], [5.0])  # one seed: no spread, no verdict


def test_rank_correlation_is_spearmans_and_nan_for_a_constant():
    assert rank_correlation([1, 2, 3, 4, 5], [1, 3, 2, 5, 4]) == pytest.approx(1 - 6 * 4 / (5 * 24), rel=1e-12)
    assert rank_correlation([1, 2, 3], [10, 100, 1000]) == pytest.approx(1.0)  # ranks only: any monotone map
    assert math.isnan(rank_correlation([1, 2, 3], [5, 5, 5]))
