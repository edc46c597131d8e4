"""Tests for gptheory.fitting: the Kronecker fit solves its likelihood equations, and the parametric fit recovers
the kernel's exponent and bandwidth on processes of several shapes."""

from __future__ import annotations

import pytest
import torch

from gptheory import metrics
from gptheory.fitting import fit_kronecker, fit_parametric
from gptheory.gp import GaussianProcess


def test_kronecker_fit_is_a_fixed_point_of_the_likelihood_and_recovers_the_truth():
    gp = GaussianProcess(6, 3, nu=1.0, ell=2.0, seed=2)
    x = gp.sample(4000, generator=torch.Generator().manual_seed(0))
    G, S = fit_kronecker(x)
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
        fit_kronecker(x[:2])


@pytest.mark.parametrize(("N", "d", "nu", "ell"), [(12, 3, 1.3, 2.5), (20, 2, 0.7, 1.5), (9, 4, 1.9, 3.0)])
def test_parametric_fit_recovers_the_kernel_and_sigma(N, d, nu, ell):
    gp = GaussianProcess(N, d, nu=nu, ell=ell, seed=7)
    x = gp.sample(3000, generator=torch.Generator().manual_seed(1))
    fit = fit_parametric(x)
    # 3000 sequences pin two parameters to about a per cent (their Fisher information grows with n N d)
    assert fit.nu == pytest.approx(nu, rel=0.05) and fit.ell == pytest.approx(ell, rel=0.05)
    assert metrics.relative_error(fit.Sigma, gp.Sigma) < 0.05
    assert fit.Gamma.shape == (N, N) and torch.allclose(fit.Gamma.diagonal(), torch.ones(N, dtype=torch.float64))
