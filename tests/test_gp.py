"""GaussianProcess against dense formulas, scipy.stats and torch.distributions; the kernel's conditioning as the
chapters state it."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.stats
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gptheory import DDPMSchedule, GaussianProcess, OUSchedule, kernel, kernel_matrix
from gptheory.gp import _unfold, fold_eigh

OU = OUSchedule()


def test_kernel_matrix_is_the_toeplitz_kernel():
    G = kernel_matrix(9, 1.5, 2.0)
    for i in range(9):
        for j in range(9):
            assert G[i, j] == pytest.approx(np.exp(-((abs(i - j) / 2.0) ** 1.5)), rel=1e-15)
    assert torch.equal(G, G.T) and torch.all(torch.diagonal(G) == 1)


def test_default_sigma_is_seeded_spd_with_trace_d():
    a, b, c = (GaussianProcess(4, 6, seed=s).Sigma for s in (3, 3, 4))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert torch.trace(a).item() == pytest.approx(6.0, rel=1e-12)
    assert torch.linalg.eigvalsh(a).min() > 0


def test_covariance_is_time_major_kron(gp):
    C = gp.covariance()
    i, j, a, b = gp.N - 1, 0, gp.d - 1, 0
    assert C[i * gp.d + a, j * gp.d + b] == pytest.approx(float(gp.Gamma[i, j] * gp.Sigma[a, b]))


def test_log_prob_matches_scipy(gp, gen):
    x = gp.sample(4, generator=gen)
    ref = scipy.stats.multivariate_normal(gp.mu.flatten().numpy(), gp.covariance().numpy()).logpdf(
        x.reshape(4, -1).numpy()
    )
    np.testing.assert_allclose(gp.log_prob(x).numpy(), ref, rtol=1e-9)


@pytest.mark.parametrize("schedule", [OU, DDPMSchedule()], ids=["ou", "ddpm"])
def test_diffused_log_prob_matches_torch_distributions(gp, gen, schedule):
    t = torch.tensor([0.05, 0.3, 0.9], dtype=torch.float64) * schedule.T
    x = gp.sample(3, generator=gen)
    for k in range(3):
        a, s = schedule.alpha(t[k]), schedule.sigma(t[k])
        cov = a**2 * gp.covariance() + s**2 * torch.eye(gp.N * gp.d, dtype=torch.float64)
        ref = torch.distributions.MultivariateNormal(a * gp.mu.flatten(), cov).log_prob(x[k].flatten())
        assert gp.log_prob(x[k : k + 1], t[k : k + 1], schedule).item() == pytest.approx(ref.item(), rel=1e-10)


def test_score_matches_dense_solve_and_autograd(gp, gen):
    x = 2.0 * gp.sample(5, generator=gen)
    t = torch.tensor([1e-3, 0.01, 0.5, 2.0, 9.5], dtype=torch.float64)
    s = gp.score(x, t, OU)
    eye = torch.eye(gp.N * gp.d, dtype=torch.float64)
    for k in range(5):
        M = OU.alpha(t[k]) ** 2 * gp.covariance() + OU.sigma(t[k]) ** 2 * eye
        ref = -torch.linalg.solve(M, (x[k] - OU.alpha(t[k]) * gp.mu).flatten())
        torch.testing.assert_close(s[k].flatten(), ref, rtol=1e-9, atol=1e-9 * ref.abs().max().item())
    xr = x.clone().requires_grad_(True)
    gp.log_prob(xr, t, OU).sum().backward()
    torch.testing.assert_close(xr.grad, s, rtol=1e-9, atol=1e-9 * s.abs().max().item())


def test_score_float_t_equals_tensor_t(gp, gen):
    x = gp.sample(3, generator=gen)
    torch.testing.assert_close(gp.score(x, 0.7, OU), gp.score(x, torch.full((3,), 0.7, dtype=torch.float64), OU))


def test_sample_moments(gen):
    gp = GaussianProcess(6, 2, nu=1.0, ell=2.0, mu=torch.arange(12.0).reshape(6, 2), seed=0)
    n = 40000
    x = gp.sample(n, generator=gen).reshape(n, -1)
    C = torch.cov(x.T)
    # the standard error of a covariance entry is about sqrt((C_ii C_jj + C_ij^2) / n) <= sqrt(2 max C^2 / n)
    tol = 5 * np.sqrt(2 / n) * gp.covariance().abs().max().item()
    assert (C - gp.covariance()).abs().max() < tol
    assert (x.mean(0) - gp.mu.flatten()).abs().max() < 5 * np.sqrt(gp.covariance().diagonal().max().item() / n)


def test_whitened_samples_are_standard_normal(gen):
    gp = GaussianProcess(16, 3, nu=1.5, ell=2.0, seed=1)
    x = gp.sample(4000, generator=gen)
    z = gp.to_eigenbasis(x - gp.mu) / gp.spectrum.sqrt()
    ks = scipy.stats.kstest(z.flatten().numpy(), "norm")
    assert ks.pvalue > 1e-4


def test_log_prob_rejects_singular_data_covariance():
    gp = GaussianProcess(64, 2, nu=2.0, ell=8.0)  # squared exponential: numerically singular Gamma
    with pytest.raises(ValueError, match="singular"):
        gp.log_prob(gp.sample(1))
    assert torch.isfinite(gp.log_prob(gp.sample(1), 0.01, OU)).all()


@settings(max_examples=25, deadline=None)
@given(
    N=st.integers(1, 12),
    d=st.integers(1, 5),
    nu=st.floats(0.05, 2.0),
    ell=st.floats(0.1, 20.0),
    t=st.floats(1e-3, 10.0),
)
def test_solve_inverts_the_diffused_covariance(N, d, nu, ell, t):
    gp = GaussianProcess(N, d, nu=nu, ell=ell, seed=N * 7 + d)
    y = torch.randn(2, N, d, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    a, b = OU.alpha(t) ** 2, OU.sigma(t) ** 2
    z = gp.solve(y, a, b)
    back = (a * gp.covariance() @ z.reshape(2, -1).T).T + b * z.reshape(2, -1)
    cond = float((a * gp.spectrum.max() + b) / b)
    torch.testing.assert_close(back, y.reshape(2, -1), rtol=0, atol=1e-12 * cond * y.abs().max().item())


@pytest.mark.parametrize("N", [1, 2, 3, 4, 5, 8, 33])
def test_eigenbasis_from_the_fold_is_an_eigendecomposition(N):
    gp = GaussianProcess(N, 1, nu=1.3, ell=3.0)
    G = gp.Gamma
    lam, U, _, _ = gp.eig
    eye = torch.eye(N, dtype=torch.float64)
    torch.testing.assert_close(lam, torch.linalg.eigvalsh(G), rtol=0, atol=1e-13 * N)
    torch.testing.assert_close(U.T @ U, eye, rtol=0, atol=1e-13 * N)
    torch.testing.assert_close(U @ torch.diag(lam) @ U.T, G, rtol=0, atol=1e-13 * N)
    assert fold_eigh(G).h == (N // 2 if N >= 4 else 0)  # two half-size problems whenever it pays


def test_fold_of_a_matrix_without_the_symmetry_is_one_eigh():
    A = torch.randn(6, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    G = A @ A.T + torch.eye(6, dtype=torch.float64)
    assert fold_eigh(G).h == 0
    lam, U = _unfold(fold_eigh(G))
    torch.testing.assert_close(U @ torch.diag(lam) @ U.T, G, rtol=0, atol=1e-12)


def test_score_leaves_its_input_alone(gp, gen):
    x = gp.sample(1, generator=gen)  # batch 1: a frame-major copy could alias the input
    before = x.clone()
    gp.score(x, 0.5, OU)
    assert torch.equal(x, before)


def test_kernel_bounds():
    assert kernel(0.0, 2.0, 1.0).item() == 1.0
    h = torch.arange(50.0)
    assert torch.all(kernel(h, 0.7, 3.0)[1:] < kernel(h, 0.7, 3.0)[:-1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"N": 0, "d": 2}, r"N must be a positive integer"),
        ({"N": 3.5, "d": 2}, r"N must be a positive integer"),
        ({"N": 4, "d": -1}, r"d must be a positive integer"),
        ({"N": 4, "d": 2, "nu": 2.5}, r"nu must be a real number in \(0, 2\], got 2.5"),
        ({"N": 4, "d": 2, "nu": 0.0}, r"nu must be a real number in \(0, 2\]"),
        ({"N": 4, "d": 2, "ell": 0}, r"ell must be a real number in \(0, inf\)"),
        ({"N": 4, "d": 2, "ell": float("nan")}, r"ell must be"),
        ({"N": 4, "d": 2, "Sigma": torch.tensor([[1.0, 2.0], [0.0, 1.0]])}, r"Sigma must be symmetric"),
        ({"N": 4, "d": 2, "Sigma": torch.tensor([[1.0, 2.0], [2.0, 1.0]])}, r"Sigma must be positive definite"),
        ({"N": 4, "d": 2, "Sigma": torch.eye(3)}, r"Sigma must have shape \(2, 2\), got \(3, 3\)"),
        ({"N": 4, "d": 2, "mu": torch.zeros(4, 3)}, r"mu must have shape \(4, 2\)"),
        ({"N": 4, "d": 2, "mu": torch.full((4, 2), float("inf"))}, r"mu must be finite"),
    ],
)
def test_bad_construction_is_a_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GaussianProcess(**kwargs)


def test_bad_score_inputs_are_clear_errors():
    gp = GaussianProcess(5, 2)
    x = gp.sample(2)
    with pytest.raises(ValueError, match=r"x must have shape \(batch, 5, 2\), got \(2, 5, 3\)"):
        gp.score(torch.zeros(2, 5, 3), 0.5, OU)
    with pytest.raises(ValueError, match="x must be finite"):
        gp.score(torch.full((1, 5, 2), float("nan")), 0.5, OU)
    with pytest.raises(ValueError, match=r"t must be in \(0, 10\]"):
        gp.score(x, 0.0, OU)
    with pytest.raises(ValueError, match=r"t must be in \(0, 1\] for DDPMSchedule, got 1.5"):
        gp.score(x, 1.5, DDPMSchedule())
    with pytest.raises(ValueError, match=r"t must be a float or a tensor of shape \(2,\)"):
        gp.score(x, torch.full((3,), 0.5), OU)
    with pytest.raises(ValueError, match="schedule must be given"):
        gp.log_prob(x, 0.5)


def kappa(N: int, nu: float, ell: float) -> float:
    lam = np.linalg.eigvalsh(kernel_matrix(N, nu, ell).numpy())
    return float(lam.max() / lam.min())


def test_ou_condition_number_grows_like_ell_squared():
    """gp_sequences: kappa(Gamma) of the OU kernel grows like ell^2 (limit ((1+rho)/(1-rho))^2 ~ 4 ell^2), not ell."""
    exponent = math.log(kappa(128, 1.0, 16.0) / kappa(128, 1.0, 4.0)) / math.log(4)
    assert 1.8 < exponent < 2.05
    rho = math.exp(-1 / 8)
    assert abs(kappa(512, 1.0, 8.0) / ((1 + rho) / (1 - rho)) ** 2 - 1) < 0.01  # N = 512 resolves omega ~ 1/ell
