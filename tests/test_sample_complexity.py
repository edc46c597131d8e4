"""Tests for gptheory.experiments.sample_complexity: yardstick fit, metrics, slopes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gptheory import GaussianProcess, metrics
from gptheory.experiments import sample_complexity as sc
from gptheory.provenance import Provenance


def test_errors_of_the_truth_are_zero_and_grow_with_a_wrong_kernel():
    gp = GaussianProcess(7, 3, nu=1.0, ell=2.0, seed=1)
    exact = sc.errors(gp.Gamma[:, :, None, None] * gp.Sigma, torch.zeros(7, 3, dtype=torch.float64), gp)
    assert all(abs(v) < 1e-6 for v in exact.__dict__.values())
    other = GaussianProcess(7, 3, nu=1.0, ell=4.0, seed=1)  # same Sigma, wider kernel
    wrong = sc.errors(other.Gamma[:, :, None, None] * gp.Sigma, torch.zeros(7, 3, dtype=torch.float64), gp)
    ref = metrics.relative_error(other.Gamma, gp.Gamma)  # the whitened and LS estimates see Gamma exactly here
    assert wrong.temporal == pytest.approx(ref) and wrong.temporal_ls == pytest.approx(ref) and wrong.w2 > 0.1


def test_kronecker_fit_is_a_fixed_point_of_the_likelihood_and_recovers_the_truth():
    gp = GaussianProcess(6, 3, nu=1.0, ell=2.0, seed=2)
    x = gp.sample(4000, generator=torch.Generator().manual_seed(0))
    G, S = sc.fit_kronecker(x)
    xc = x - x.mean(0)
    n, N, d = x.shape
    # the maximum-likelihood equations hold at the returned pair (the scale split cancels in each)
    G_next = torch.einsum("kia,ab,kjb->ij", xc, torch.linalg.inv(S), xc) / (n * d)
    S_next = torch.einsum("kia,ij,kjb->ab", xc, torch.linalg.inv(G), xc) / (n * N)
    assert torch.allclose(G_next, G, atol=1e-8) and torch.allclose(S_next, S, atol=1e-8)
    assert float(G.diagonal().mean()) == pytest.approx(1.0)
    # sampling error of a covariance from n d = 12000 coordinates: a few percent
    assert metrics.relative_error(G, gp.Gamma) < 0.05 and metrics.relative_error(S, gp.Sigma) < 0.05
    with pytest.raises(ValueError, match="n\\*d > N"):
        sc.fit_kronecker(x[:2])


def test_slope_recovers_a_power_law_and_its_interval_covers_it():
    rng = np.random.default_rng(0)
    n = np.repeat([64, 256, 1024, 4096], 3)
    err = 2.0 * n**-0.5 * np.exp(rng.normal(0, 0.05, n.size))
    b, lo, hi = sc.slope(n, err)
    assert lo < -0.5 < hi and b == pytest.approx(-0.5, abs=0.05)
    assert all(math.isnan(v) for v in sc.slope([64, 64], [0.1, 0.2]))  # one size: no slope


def _fake(nu: float, ell: float, n: int, err: float) -> sc.Point:
    e = sc.SampleErrors(err, err, err, err, err)
    p = sc.Point(e, e, e, e, e, 1.0, 1.0, 1.0, 1, 1.0, 1.0, 1, 1.0, np.eye(2))
    p.provenance = Provenance.now({"process": {"nu": nu, "ell": ell}, "n_train": n}, 1.0)
    return p


def test_ordering_and_means_read_the_grid():
    pts = [_fake(nu, 4.0, n, e / n**0.5) for nu, e in ((0.5, 3.0), (1.0, 2.0), (2.0, 1.0)) for n in (64, 256)]
    assert sc.ordering(pts, "nu") == {64: True, 256: True}
    pts.append(_fake(2.0, 4.0, 256, 10.0))  # a bad seed at one size: the mean there breaks the ordering
    assert sc.ordering(pts, "nu") == {64: True, 256: False}
    ell_pts = [_fake(1.0, ell, 64, ell) for ell in (2.0, 4.0, 8.0)]  # error grows with ell: the claimed order
    assert sc.ordering(ell_pts, "ell") == {64: True}
    assert sc.means(ell_pts, "dit.temporal")[(1.0, 8.0)] == {64: 8.0}
