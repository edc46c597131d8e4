"""Tests for gptheory.early_stopping: Lemma 12 against dense Gaussian formulas and closed forms."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gptheory import GaussianProcess, metrics
from gptheory.early_stopping import early_stopping_gap
from gptheory.schedules import DDPMSchedule, OUSchedule


def test_lemma12_matches_the_dense_gaussian_formulas_and_the_bound_holds():
    gp = GaussianProcess(5, 2, nu=1.0, ell=1.5, seed=3)
    for schedule in (OUSchedule(), DDPMSchedule()):
        t0 = torch.tensor([1e-4, 1e-2, 0.3], dtype=torch.float64)
        gap = early_stopping_gap(gp, t0, schedule)
        C = gp.covariance()
        zero = torch.zeros(C.shape[0], dtype=torch.float64)
        for k, t in enumerate(t0):
            a, s = schedule.alpha(t), schedule.sigma(t)
            Ct = a**2 * C + s**2 * torch.eye(C.shape[0], dtype=torch.float64)
            assert gap.kl[k] == pytest.approx(metrics.gaussian_kl(zero, C, zero, Ct), rel=1e-6)
            # the dense Bures formula subtracts O(tr C) terms: at W2 ~ 1e-5 it keeps only ~1e-9 absolute accuracy
            assert gap.w2[k] == pytest.approx(metrics.gaussian_w2(zero, C, zero, Ct), rel=1e-5, abs=1e-8)
        assert np.all(gap.kl <= gap.kl_bound_sum) and np.all(gap.kl_bound_sum <= gap.kl_bound * (1 + 1e-12))
        assert np.all(np.diff(gap.kl) > 0)
        # the per-eigenvalue bound is tight for small t0 (second order in u): within 5 % at t0 = 1e-4
        assert gap.kl_bound_sum[0] == pytest.approx(gap.kl[0], rel=0.05)
    # small t0: KL ~ t0^2, so two decades of t0 are four of KL
    small = early_stopping_gap(gp, torch.tensor([1e-6, 1e-4], dtype=torch.float64), OUSchedule())
    assert math.log10(small.kl[1] / small.kl[0]) == pytest.approx(4.0, abs=0.05)


@pytest.mark.parametrize("c", [1.0, 4.0, 0.25])
def test_white_data_has_the_closed_form_gap(c):
    """``Gamma = I`` and ``Sigma = c I``: every eigenvalue is ``c``, so KL and W2 are ``N d`` times one term; at
    ``c = 1`` a variance-preserving schedule leaves the law unchanged (no gap, while the lemma's form stays > 0)."""
    N, d, sched = 6, 2, OUSchedule()
    gp = GaussianProcess(N, d, nu=2.0, ell=0.01, Sigma=c * torch.eye(d, dtype=torch.float64))  # exp(-1e4): Gamma = I
    t0 = torch.tensor([1e-3, 0.1, 1.0], dtype=torch.float64)
    gap = early_stopping_gap(gp, t0, sched)
    b = sched.alpha(t0) ** 2 * c + sched.sigma(t0) ** 2  # the eigenvalue of Cov(P_t0)
    r = c / b
    np.testing.assert_allclose(gap.kl, N * d * 0.5 * (r - 1 - torch.log(r)).numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(gap.w2, np.sqrt(N * d * ((b.sqrt() - math.sqrt(c)) ** 2).numpy()), rtol=1e-10, atol=1e-7)
    np.testing.assert_array_equal(gap.t0, t0.numpy())
    np.testing.assert_allclose(gap.tv_bound, np.sqrt(gap.kl_bound / 2), rtol=1e-15)  # Pinsker
    assert np.all(gap.kl <= gap.kl_bound_sum * (1 + 1e-12)) and np.all(gap.kl_bound > 0)
    if c == 1.0:
        assert np.abs(gap.kl).max() < 1e-14 and np.abs(gap.kl_bound_sum).max() == 0.0
