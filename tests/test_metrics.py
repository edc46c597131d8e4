"""Metrics against direct formulas: pair covariance, kernel projection, paper error, Gaussian KL and W2, the
covariance-error record and the Kronecker fit."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from gptheory import GaussianProcess, metrics
from gptheory.gp import psd_sqrt
from gptheory.metrics import (
    CovarianceErrors,
    Law,
    bures_w2,
    flat_covariance,
    gaussian_kl,
    gaussian_w2,
    pair_covariance,
    paper_relative_error,
    spatial_covariance,
    temporal_kernel,
)
from gptheory.schedules import DDPMSchedule


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
        errs.append(CovarianceErrors.of_samples(x, gp).temporal_ls)
    assert errs[0] / errs[1] == pytest.approx(4.0, rel=0.35)  # sqrt(6400 / 400) = 4


@pytest.mark.parametrize("m", [64, 256, 2000])
def test_paper_relative_error_is_about_one_for_a_perfect_generator_at_every_count(m):
    gp = GaussianProcess(12, 2, nu=2.0, ell=3.0, seed=0)
    t0 = DDPMSchedule()
    law_t0, law = Law.at(gp, 0.01, t0), Law.data(gp)
    root = psd_sqrt(law_t0.covariance())
    rel = []
    for k in range(8):
        g = torch.Generator().manual_seed(k)
        x = (torch.randn(m, 24, generator=g, dtype=torch.float64) @ root).reshape(m, 12, 2)  # a perfect sampler
        rel.append(paper_relative_error(x, law_t0, gp.sample(m, generator=g), law))  # against m training sequences
    assert 0.85 < np.exp(np.mean(np.log(rel))) < 1.15
    # a wrong kernel: over the same 8 draws its geometric mean is above 2 even at m = 64 (per draw it is not: at m = 64
    # a quarter of single draws score below 2; over 60 sets of 8 draws the lowest geometric mean was 2.04)
    other = GaussianProcess(12, 2, nu=1.0, ell=1.0, Sigma=gp.Sigma)
    bad = []
    for k in range(8):
        g = torch.Generator().manual_seed(k)
        bad.append(paper_relative_error(other.sample(m, generator=g), law, gp.sample(m, generator=g), law))
    assert np.exp(np.mean(np.log(bad))) > 1.8  # a margin below the lowest seen
    # it is the ratio of the two full-covariance errors of CovarianceErrors
    g = torch.Generator().manual_seed(100 + m)
    wrong, x_true = other.sample(m, generator=g), gp.sample(m, generator=g)
    ratio = CovarianceErrors.of_samples(wrong, law).covariance / CovarianceErrors.of_samples(x_true, law).covariance
    assert paper_relative_error(wrong, law, x_true, law) == pytest.approx(ratio, rel=1e-12)


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


def test_bures_w2_batches_the_pairs_and_takes_a_factorised_root(gen):
    A = torch.randn(6, 5, 3, generator=gen, dtype=torch.float64)
    S1 = A @ A.mT  # rank 3 of 5: singular fits, as with fewer samples than dimensions
    B = torch.randn(5, 5, generator=gen, dtype=torch.float64)
    S0 = B @ B.T + torch.eye(5, dtype=torch.float64)
    m1, m0 = torch.randn(6, 5, generator=gen, dtype=torch.float64), torch.randn(5, generator=gen, dtype=torch.float64)
    batched = bures_w2(m1, S1, m0, S0)
    assert batched.shape == (6,)
    # the two zero eigenvalues of each S0^1/2 S1 S0^1/2 come out as +-1e-15 |M| in either order of batching, and
    # their square roots (1e-7 of |M|^1/2) set the agreement
    for i in range(6):
        assert float(batched[i]) == pytest.approx(gaussian_w2(m1[i], S1[i], m0, S0), rel=1e-7)
    assert torch.allclose(bures_w2(m1, S1, m0, S0, root0=psd_sqrt(S0)), batched, rtol=1e-7, atol=0)
    # symmetric in its two laws (the Bures formula is not written symmetrically)
    assert gaussian_w2(m0, S0, m1[0], S1[0]) == pytest.approx(float(batched[0]), rel=1e-8)


def test_bad_input():
    with pytest.raises(ValueError, match=r"n >= 2"):
        pair_covariance(torch.zeros(1, 3, 2))
    with pytest.raises(ValueError, match="x must be finite"):
        pair_covariance(torch.full((3, 2, 2), float("nan")))
    with pytest.raises(ValueError, match="same shape"):
        law = Law.data(GaussianProcess(2, 1))
        paper_relative_error(torch.zeros(3, 2, 1), law, torch.zeros(4, 2, 1), law)


# ------------------------------------------------------------------------------ errors by gap, stationarity
def _toeplitz(col: torch.Tensor, row: torch.Tensor) -> torch.Tensor:
    """``T_ij = col[i - j]`` below the diagonal and ``row[j - i]`` above it (``row[0]`` is ignored)."""
    N = col.shape[0]
    i, j = torch.meshgrid(torch.arange(N), torch.arange(N), indexing="ij")
    return torch.where(i >= j, col[(i - j).clamp(min=0)], row[(j - i).clamp(min=0)])


def _periodic(N: int, period: int, gen: torch.Generator) -> torch.Tensor:
    """``Q_ij = f(i mod period, j - i)`` with random ``f``: a pattern that repeats with ``period`` along every
    diagonal and differs between diagonals."""
    f = torch.randn(period, 2 * N - 1, generator=gen, dtype=torch.float64)
    i, j = torch.meshgrid(torch.arange(N), torch.arange(N), indexing="ij")
    return f[i % period, j - i + N - 1]


def test_gap_errors_see_a_perturbation_only_at_its_gap():
    gp = GaussianProcess(9, 2, nu=1.5, ell=3.0, seed=0)
    h0, v = 3, torch.linspace(-0.2, 0.4, 9 - 3, dtype=torch.float64)
    delta = torch.diag_embed(v, offset=h0)
    expected = torch.zeros(9, dtype=torch.float64)
    expected[h0] = v.pow(2).mean().sqrt()  # the RMS over the N - h0 pairs at that gap
    torch.testing.assert_close(metrics.gap_errors(gp.Gamma + delta, gp.Gamma), expected, rtol=1e-12, atol=1e-15)
    # a symmetric perturbation (both i - j = +-h0) has the same error by gap: the estimate is read once per pair
    torch.testing.assert_close(metrics.gap_errors(gp.Gamma + delta + delta.T, gp.Gamma), expected, rtol=1e-12,
                               atol=1e-15)  # fmt: skip
    # absolute, in the units of Gamma: scaling both scales the errors
    torch.testing.assert_close(metrics.gap_errors(2.5 * (gp.Gamma + delta), 2.5 * gp.Gamma), 2.5 * expected)
    assert metrics.gap_errors(gp.Gamma, gp.Gamma).abs().max() == 0


def test_block_gap_errors_are_per_frame_spatial_errors_at_gap_zero_and_scale_free():
    gen = torch.Generator().manual_seed(5)
    N, d = 6, 3
    gp = GaussianProcess(N, d, nu=2.0, ell=2.0, seed=1)
    C = gp.covariance().reshape(N, d, N, d).permute(0, 2, 1, 3).clone()  # exact (N, N, d, d) blocks
    assert metrics.block_gap_errors(C, Law.data(gp)).abs().max() < 1e-12
    # every frame's block off by a random symmetric matrix of its own norm e_i
    e = torch.tensor([0.1, 0.3, 0.0, 0.2, 0.5, 0.1], dtype=torch.float64)
    for i in range(N):
        A = torch.randn(d, d, generator=gen, dtype=torch.float64)
        A = A + A.T
        C[i, i] += e[i] * A / torch.linalg.norm(A)
    block = metrics.block_gap_errors(C, Law.data(gp))
    norm = torch.linalg.norm(gp.Sigma)
    assert float(block[0]) == pytest.approx(float(e.pow(2).mean().sqrt() / norm), rel=1e-12)
    assert block[1:].abs().max() < 1e-12  # nothing changed off the diagonal blocks
    # the spatial error is the mean of the same per-frame ratios (Gamma_ii = 1): at most their RMS ...
    spatial = CovarianceErrors.of_pairs(C, torch.zeros(N, d, dtype=torch.float64), gp).spatial
    assert spatial == pytest.approx(float(e.mean() / norm), rel=1e-12) and spatial < float(block[0])
    # ... and equal to it when every frame is off by the same amount
    same = gp.covariance().reshape(N, d, N, d).permute(0, 2, 1, 3).clone()
    same[torch.arange(N), torch.arange(N)] += 0.3 * torch.eye(d, dtype=torch.float64) / d**0.5
    assert float(metrics.block_gap_errors(same, Law.data(gp))[0]) == pytest.approx(
        CovarianceErrors.of_pairs(same, torch.zeros(N, d, dtype=torch.float64), gp).spatial, rel=1e-12)  # fmt: skip
    # relative to ||Sigma||: a change of the units of x (C and Sigma scaled together) changes nothing
    wider = Law.kronecker(gp.Gamma, 7.0 * gp.Sigma, 7.0 * gp.Sigma)
    torch.testing.assert_close(metrics.block_gap_errors(7.0 * C, wider), block)
    # a cross-frame block at gap 2 off by D: the error at gap 2 is ||D|| / sqrt(N - 2) / ||Sigma||, on both sides
    D = 0.05 * torch.ones(d, d, dtype=torch.float64)
    cross = gp.covariance().reshape(N, d, N, d).permute(0, 2, 1, 3).clone()
    cross[1, 3] += D
    out = metrics.block_gap_errors(cross, Law.data(gp))
    assert float(out[2]) == pytest.approx(float(torch.linalg.norm(D) / (N - 2) ** 0.5 / norm), rel=1e-12)
    assert torch.cat([out[:2], out[3:]]).abs().max() < 1e-12


def test_correlation_errors_are_free_of_scale_and_see_a_wrong_correlation_at_its_gap():
    N, d = 7, 3
    gp = GaussianProcess(N, d, nu=1.5, ell=2.5, seed=3)
    law = Law.data(gp)
    gaps, spatial = metrics.correlation_errors(law.pairs, law)
    assert gaps.abs().max() < 1e-12 and spatial < 1e-12
    # every variance wrong by one factor (samples too wide early in training): no correlation error at all
    gaps, spatial = metrics.correlation_errors(2.7 * law.pairs, law)
    assert gaps.abs().max() < 1e-12 and spatial < 1e-12
    # one frame rescaled: its correlations with the others are unchanged too (correlations divide the scale out)
    D = torch.ones(N, dtype=torch.float64)
    D[2] = 3.0
    scaled = law.pairs * D[:, None, None, None] * D[None, :, None, None]
    assert metrics.correlation_errors(scaled, law)[0].abs().max() < 1e-12
    # the temporal correlation at gap 2 made 0.1 too large everywhere: the error shows at gap 2 only, of size 0.1
    G = gp.Gamma.clone() + 0.1 * (torch.diag(torch.ones(N - 2), 2) + torch.diag(torch.ones(N - 2), -2)).double()
    off = Law.kronecker(G, gp.Sigma, gp.Sigma)
    gaps, spatial = metrics.correlation_errors(off.pairs, law)
    expected = torch.zeros(N, dtype=torch.float64)
    expected[2] = 0.1
    torch.testing.assert_close(gaps, expected, rtol=1e-10, atol=1e-12)
    assert spatial < 1e-12  # each frame's covariance is still Sigma


def test_a_toeplitz_matrix_is_stationary():
    gen = torch.Generator().manual_seed(2)
    col, row = torch.randn(2, 11, generator=gen, dtype=torch.float64)
    T = _toeplitz(col, row)  # not symmetric: every diagonal is checked on its own
    assert metrics.toeplitz_residual(T).abs().max() < 1e-14
    assert metrics.roughness(T) < 1e-14
    assert math.isnan(metrics.phase_share(T, 2))  # nothing to explain: nan, not a 0/0 share
    assert math.isnan(metrics.phase_share(GaussianProcess(12, 1, nu=2.0, ell=3.0).Gamma, 4))


def test_roughness_of_one_displaced_entry():
    # T + c at (0, 0): the main diagonal's residual is c (1 - 1/N) at the entry and -c/N at the N - 1 others, so
    # its squares sum to c^2 (N - 1) / N and the RMS over the N^2 entries is c sqrt((N - 1) / N^3)
    N, c = 7, 0.3
    A = _toeplitz(torch.linspace(1, 0, N, dtype=torch.float64), torch.linspace(1, 0.5, N, dtype=torch.float64))
    A[0, 0] += c
    R = metrics.toeplitz_residual(A)
    assert float(R[0, 0]) == pytest.approx(c * (1 - 1 / N), rel=1e-12)
    assert metrics.roughness(A) == pytest.approx(c * math.sqrt((N - 1) / N**3), rel=1e-12)
    # the residual is linear and blind to any Toeplitz part: roughness is homogeneous of degree one
    assert metrics.roughness(3 * A + _toeplitz(*torch.ones(2, N, dtype=torch.float64))) == pytest.approx(
        3 * metrics.roughness(A), rel=1e-12)  # fmt: skip


@pytest.mark.parametrize("period", [2, 4])
def test_a_pattern_repeating_with_the_period_has_phase_share_one(period):
    gen = torch.Generator().manual_seed(period)
    N = 20
    T = _toeplitz(*torch.randn(2, N, generator=gen, dtype=torch.float64))
    A = T + 0.1 * _periodic(N, period, gen)
    assert metrics.roughness(A) > 0.01
    assert metrics.phase_share(A, period) == pytest.approx(1.0, abs=1e-12)
    assert metrics.phase_share(10 * A, period) == pytest.approx(1.0, abs=1e-12)  # a share: no units
    # a period-2 pattern also repeats with period 4
    if period == 2:
        assert metrics.phase_share(A, 4) == pytest.approx(1.0, abs=1e-12)
    # phases mod 3 cut across an alternating pattern: each class of m entries alternates, so its mean is at most
    # 1/m of the amplitude and it explains at most 1/m of its m squares, a share of at most about 3/L on a
    # diagonal of length L >= 6
    if period == 2:
        alt = T + 0.1 * _toeplitz(torch.ones(N, dtype=torch.float64), torch.ones(N, dtype=torch.float64)) * (
            (-1.0) ** torch.arange(N, dtype=torch.float64))[:, None]  # fmt: skip
        assert metrics.phase_share(alt, 2) == pytest.approx(1.0, abs=1e-12)
        assert metrics.phase_share(alt, 3) < 0.25


def test_phase_share_of_noise_is_the_share_of_its_degrees_of_freedom():
    # residual noise on a diagonal of length L has L - 1 degrees of freedom, of which the period's phase means take
    # period - 1: pooled over the diagonals used (L >= 2 period) the share is about sum(period - 1) / sum(L - 1)
    N, period, draws = 16, 2, 200
    gen = torch.Generator().manual_seed(0)
    lengths = [N - abs(h) for h in range(-(N - 1), N) if N - abs(h) >= 2 * period]
    expected = len(lengths) * (period - 1) / sum(L - 1 for L in lengths)
    shares = np.array(
        [metrics.phase_share(torch.randn(N, N, generator=gen, dtype=torch.float64), period) for _ in range(draws)]
    )
    # between-group over total sums of squares, pooled: its mean is the ratio of the expectations up to O(1 / dof);
    # 200 seeded draws, within 4 standard errors
    assert shares.mean() == pytest.approx(expected, abs=4 * shares.std() / draws**0.5)
    assert 0.5 * expected < shares.mean() < 1.5 * expected
    # too short for the period: no diagonal qualifies, so no share
    assert math.isnan(metrics.phase_share(torch.randn(3, 3, generator=gen, dtype=torch.float64), 2))


# ------------------------------------------------------------------------------ the covariance-error record
def test_covariance_errors_of_the_truth_are_zero_and_grow_with_a_wrong_kernel():
    gp = GaussianProcess(7, 3, nu=1.0, ell=2.0, seed=1)
    zero = torch.zeros(7, 3, dtype=torch.float64)
    exact = CovarianceErrors.of_pairs(gp.Gamma[:, :, None, None] * gp.Sigma, zero, gp)
    assert all(abs(v) < 1e-6 for v in exact.__dict__.values())
    other = GaussianProcess(7, 3, nu=1.0, ell=4.0, seed=1)  # same Sigma, wider kernel
    wrong = CovarianceErrors.of_pairs(other.Gamma[:, :, None, None] * gp.Sigma, zero, gp)
    ref = metrics.relative_error(other.Gamma, gp.Gamma)  # the whitened and LS estimates see Gamma exactly here
    assert wrong.temporal == pytest.approx(ref) and wrong.temporal_ls == pytest.approx(ref) and wrong.w2 > 0.1


def test_covariance_errors_of_samples_are_the_named_estimators():
    gp = GaussianProcess(5, 3, nu=1.0, ell=2.0, seed=4)
    x = gp.sample(300, generator=torch.Generator().manual_seed(1)).float()  # float32 in, measured in float64
    e = CovarianceErrors.of_samples(x, gp)
    C = pair_covariance(x)
    assert e == CovarianceErrors.of_pairs(C, x.double().mean(0), gp)
    white = metrics.relative_error(metrics.temporal_kernel_whitened(C, gp.Sigma), gp.Gamma)
    assert e.temporal == pytest.approx(white, rel=1e-12)  # the data law's whitened kernel is Gamma to rounding
    assert e.temporal_ls == pytest.approx(metrics.relative_error(temporal_kernel(C, gp.Sigma), gp.Gamma), rel=1e-12)
    frames = torch.stack([torch.linalg.norm(C[i, i] - gp.Sigma) / torch.linalg.norm(gp.Sigma) for i in range(5)])
    assert e.spatial == pytest.approx(float(frames.mean()), rel=1e-12)  # Gamma_ii = 1: each frame against Sigma
    full = metrics.relative_error(flat_covariance(C), gp.covariance())
    assert e.covariance == pytest.approx(full, rel=1e-12)
    fit = gaussian_w2(x.double().mean(0).flatten(), flat_covariance(C), gp.mu.flatten(), gp.covariance())
    assert e.w2 == pytest.approx(fit, rel=1e-12)


def test_relative_error_takes_tensors_or_arrays():
    a, b = np.array([[3.0, 4.0], [0.0, 0.0]]), np.array([[0.0, 0.0], [0.0, 5.0]])
    assert metrics.relative_error(a, b) == pytest.approx(math.sqrt(50) / 5)
    assert metrics.relative_error(torch.from_numpy(a), torch.from_numpy(b)) == pytest.approx(math.sqrt(50) / 5)
