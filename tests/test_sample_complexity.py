"""Tests for gptheory.experiments.sample_complexity: Lemma 12, slopes, means and the ordering of the grid."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gptheory import GaussianProcess, metrics
from gptheory.early_stopping import early_stopping_gap
from gptheory.experiments import sample_complexity as sc
from gptheory.metrics import CovarianceErrors
from gptheory.provenance import Provenance
from gptheory.results import value
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


def test_slopes_fit_each_process_over_every_seed_and_cut_at_n_max():
    rng = np.random.default_rng(0)
    pts = [_fake(nu, 4.0, n, nu * n**-0.5 * math.exp(rng.normal(0, 0.05))) for nu in (1.0, 2.0) for n in (64, 256, 1024)
           for _ in range(2)]  # fmt: skip
    fits = sc.slopes(pts)
    assert set(fits) == {(1.0, 4.0), (2.0, 4.0)}
    for fit in fits.values():
        assert fit.low < -0.5 < fit.high and fit.slope == pytest.approx(-0.5, abs=0.05)
    cut = sc.slopes(pts, n_max=256)  # two sizes, four runs: a slope with an interval from two residual dof
    x = np.log([64, 64, 256, 256])
    y = np.log([value(p, "dit.temporal") for p in pts if p.config["process"]["nu"] == 1.0][:4])
    assert cut[(1.0, 4.0)].slope == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-12)


def _fake(nu: float, ell: float, n: int, err: float) -> sc.SampleComplexity:
    e = CovarianceErrors(err, err, err, err, err)
    p = sc.SampleComplexity(e, e, e, e, e, 1.0, 1.0, 1.0, 1, 1.0, 1.0, 1, 1.0, np.eye(2))
    p.provenance = Provenance.now(sc.SAMPLE_COMPLEXITY["smoke"].replace(nu=nu, ell=ell, n_train=n).to_dict(), 1.0)
    return p


def test_ordering_and_means_read_the_grid():
    pts = [_fake(nu, 4.0, n, e / n**0.5) for nu, e in ((0.5, 3.0), (1.0, 2.0), (2.0, 1.0)) for n in (64, 256)]
    assert sc.ordering(pts, "nu") == {64: True, 256: True}
    pts.append(_fake(2.0, 4.0, 256, 10.0))  # a bad seed at one size: the mean there breaks the ordering
    assert sc.ordering(pts, "nu") == {64: True, 256: False}
    ell_pts = [_fake(1.0, ell, 64, ell) for ell in (2.0, 4.0, 8.0)]  # error grows with ell: the claimed order
    assert sc.ordering(ell_pts, "ell") == {64: True}
    assert sc.means(ell_pts, "dit.temporal")[(1.0, 8.0)] == {64: 8.0}
