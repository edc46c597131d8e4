"""Metrics against direct formulas: pair covariance, kernel projection, paper error, Gaussian KL and W2."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gptheory import GaussianProcess
from gptheory.metrics import (
    covariance_errors,
    flat_covariance,
    gaussian_kl,
    gaussian_w2,
    pair_covariance,
    paper_relative_error,
    spatial_covariance,
    temporal_kernel,
)


def test_pair_covariance_matches_numpy_cov(gen):
    x = torch.randn(50, 4, 3, generator=gen, dtype=torch.float64)
    ref = np.cov(x.reshape(50, -1).numpy(), rowvar=False)
    np.testing.assert_allclose(flat_covariance(pair_covariance(x)).numpy(), ref, rtol=1e-12, atol=1e-14)


def test_estimators_recover_exact_kron():
    gp = GaussianProcess(6, 3, nu=1.0, ell=2.0, seed=0)
    C = gp.covariance().reshape(6, 3, 6, 3).permute(0, 2, 1, 3)  # exact (N, N, d, d) blocks
    torch.testing.assert_close(temporal_kernel(C, gp.Sigma), gp.Gamma)
    torch.testing.assert_close(spatial_covariance(C), gp.Sigma.expand(6, 3, 3))


def test_relative_errors_shrink_like_root_n():
    gp = GaussianProcess(10, 2, nu=1.5, ell=2.0, seed=0)
    errs = []
    for n, seed in [(400, 0), (6400, 1)]:
        x = gp.sample(n, generator=torch.Generator().manual_seed(seed))
        errs.append(covariance_errors(x, gp.Gamma, gp.Sigma)["temporal"])
    assert errs[0] / errs[1] == pytest.approx(4.0, rel=0.35)  # sqrt(6400 / 400) = 4


def test_paper_relative_error_is_one_for_true_samples_and_large_for_wrong_ones():
    gp = GaussianProcess(12, 2, nu=2.0, ell=3.0, seed=0)
    rel_true = [
        paper_relative_error(
            gp.sample(2000, generator=torch.Generator().manual_seed(2 * k)),
            gp.sample(2000, generator=torch.Generator().manual_seed(2 * k + 1)),
            gp.Gamma,
            gp.Sigma,
        )
        for k in range(6)
    ]
    assert 0.7 < np.exp(np.mean(np.log(rel_true))) < 1.4
    wrong = GaussianProcess(12, 2, nu=1.0, ell=1.0, Sigma=gp.Sigma).sample(2000)
    assert paper_relative_error(wrong, gp.sample(2000), gp.Gamma, gp.Sigma) > 5
    # the same number as the ratio of covariance_errors' "covariance" entries (what the experiment driver uses)
    x_true = gp.sample(2000)
    ratio = (
        covariance_errors(wrong, gp.Gamma, gp.Sigma)["covariance"]
        / covariance_errors(x_true, gp.Gamma, gp.Sigma)["covariance"]
    )
    assert paper_relative_error(wrong, x_true, gp.Gamma, gp.Sigma) == pytest.approx(ratio, rel=1e-12)


def test_gaussian_kl_matches_torch_distributions(gen):
    A, B = torch.randn(2, 5, 5, generator=gen, dtype=torch.float64)
    S1, S0 = A @ A.T + 0.1 * torch.eye(5, dtype=torch.float64), B @ B.T + 0.1 * torch.eye(5, dtype=torch.float64)
    m1, m0 = torch.randn(2, 5, generator=gen, dtype=torch.float64)
    ref = torch.distributions.kl_divergence(
        torch.distributions.MultivariateNormal(m1, S1), torch.distributions.MultivariateNormal(m0, S0)
    )
    assert gaussian_kl(m1, S1, m0, S0) == pytest.approx(ref.item(), rel=1e-10)
    assert gaussian_kl(m0, S0, m0, S0) == pytest.approx(0.0, abs=1e-10)


def test_gaussian_w2_special_cases(gen):
    m = torch.randn(4, generator=gen, dtype=torch.float64)
    S = torch.diag(torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=torch.float64))
    # commuting covariances: W2^2 = |dm|^2 + sum (sqrt(a) - sqrt(b))^2
    S2 = torch.diag(torch.tensor([4.0, 1.0, 3.0, 0.0], dtype=torch.float64))
    expected = np.sqrt(float((m**2).sum() + ((S.diagonal().sqrt() - S2.diagonal().sqrt()) ** 2).sum()))
    assert gaussian_w2(m, S, torch.zeros(4, dtype=torch.float64), S2) == pytest.approx(expected, rel=1e-10)
    assert gaussian_w2(m, S, m, S) == pytest.approx(0.0, abs=1e-7)


def test_bad_input():
    with pytest.raises(ValueError, match=r"n >= 2"):
        pair_covariance(torch.zeros(1, 3, 2))
    with pytest.raises(ValueError, match="x must be finite"):
        pair_covariance(torch.full((3, 2, 2), float("nan")))
    with pytest.raises(ValueError, match="same shape"):
        paper_relative_error(torch.zeros(3, 2, 1), torch.zeros(4, 2, 1), torch.eye(2), torch.eye(1))
