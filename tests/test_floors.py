"""Tests for gptheory.floors: the closed-form floors are the Monte Carlo mean squared errors of the estimators, the
law at t0 is the noised data law, and true sequences score about 1 against their floor."""

from __future__ import annotations

import math

import pytest
import torch

from gptheory.floors import excess, monte_carlo_floor, ratios, sampling_floor, squared_excess
from gptheory.gp import GaussianProcess, random_spatial_covariance
from gptheory.metrics import CovarianceErrors, Law
from gptheory.schedules import DDPMSchedule, OUSchedule

pytestmark = pytest.mark.usefixtures("one_thread")


def draws(law: Law, m: int, g: torch.Generator) -> torch.Tensor:
    return law.sample(m, g)


@pytest.mark.parametrize(
    ("N", "d", "nu", "ell", "m", "t0"),
    [(10, 3, 1.5, 2.5, 60, None), (7, 2, 0.5, 5.0, 25, 0.02), (12, 1, 2.0, 3.0, 300, 0.005)],
)
def test_closed_form_floors_are_the_mean_squared_errors_of_the_estimators(N, d, nu, ell, m, t0):
    gp = GaussianProcess(N, d, nu=nu, ell=ell, seed=11)
    law = Law.data(gp) if t0 is None else Law.at(gp, t0, DDPMSchedule())
    floor = sampling_floor(law, m, reps=0)
    g, R = torch.Generator().manual_seed(5), 400
    ms = {k: 0.0 for k in ("temporal", "temporal_ls", "covariance")}
    for _ in range(R):
        e = CovarianceErrors.of_samples(draws(law, m, g), law)
        for k in ms:
            ms[k] += getattr(e, k) ** 2 / R
    # the mean of R squared errors, each spread like a sum of many chi-squares: 6 per cent covers 4 standard errors
    for k, v in ms.items():
        assert math.sqrt(v) == pytest.approx(getattr(floor, k), rel=0.06), k


def test_the_law_at_t0_is_the_noised_data_law():
    gp = GaussianProcess(6, 3, nu=1.0, ell=2.0, seed=2, mu=torch.ones(6, 3))
    s = OUSchedule()
    law = Law.at(gp, 0.3, s)
    a, sig = float(s.alpha(0.3)), float(s.sigma(0.3))
    torch.testing.assert_close(law.covariance(), a**2 * torch.kron(gp.Gamma, gp.Sigma) + sig**2 * torch.eye(18))
    torch.testing.assert_close(law.mean, a * gp.mu.double())
    torch.testing.assert_close(Law.data(gp).covariance(), torch.kron(gp.Gamma, gp.Sigma))


def test_true_sequences_score_about_one_against_their_floor_and_a_biased_law_does_not():
    gp = GaussianProcess(16, 4, nu=1.0, ell=4.0, seed=0)
    law = Law.at(gp, 0.01, DDPMSchedule())
    floor = sampling_floor(law, 2000, reps=8)
    x = draws(law, 2000, torch.Generator().manual_seed(9))
    r = ratios(CovarianceErrors.of_samples(x, law), floor)
    assert all(0.8 < v < 1.25 for v in r.values()), r
    # the same sequences against the data law: the early-stopping noise is a bias the floor does not explain
    biased = ratios(CovarianceErrors.of_samples(x, gp), sampling_floor(Law.data(gp), 2000, reps=0))
    assert biased["temporal"] > 1.25  # the bias is about the size of the floor at this count


def test_monte_carlo_floor_is_the_mean_and_the_closed_form_the_root_mean_square():
    gp = GaussianProcess(5, 2, nu=1.0, ell=2.0, seed=4)
    law = Law.data(gp)
    mc, cf = monte_carlo_floor(law, 30, reps=200), sampling_floor(law, 30, reps=0)
    assert mc.temporal <= cf.temporal * 1.03 and mc.temporal > 0.85 * cf.temporal  # Jensen: mean <= rms
    assert mc.spatial < cf.spatial  # one 2 x 2 frame: a visible Jensen gap
    assert math.isnan(cf.w2) and sampling_floor(law, 30, reps=4).w2 > 0


def test_excess_and_bad_counts():
    assert excess(0.05, 0.03) == pytest.approx(0.04) and excess(0.02, 0.03) == 0.0
    # the squared excess in floor units: (excess / floor)^2 above the floor, negative (not truncated) below it
    assert squared_excess(0.05, 0.03) == pytest.approx((0.04 / 0.03) ** 2)
    assert squared_excess(0.03, 0.03) == 0.0 and squared_excess(0.02, 0.03) == pytest.approx(-5 / 9)
    law = Law.data(GaussianProcess(4, 2, seed=0))
    with pytest.raises(ValueError, match="m must be at least 2"):
        sampling_floor(law, 1)


def test_the_kernel_floor_holds_for_a_law_that_is_not_a_kronecker_product():
    g = torch.Generator().manual_seed(0)
    N, d, m = 3, 2, 10
    A = torch.randn(N * d, N * d, generator=g, dtype=torch.float64)
    S = A @ A.T / (N * d) + 0.1 * torch.eye(N * d, dtype=torch.float64)  # any covariance: blocks S_ij != S_ji^T-free
    pairs = S.reshape(N, d, N, d).permute(0, 2, 1, 3)
    Sigma = random_spatial_covariance(d, seed=3)
    law = Law(pairs, torch.zeros(N, d, dtype=torch.float64), Sigma)
    floor = sampling_floor(law, m, reps=0)
    ms = {"temporal": 0.0, "temporal_ls": 0.0, "covariance": 0.0}
    R = 4000
    for _ in range(R):
        e = CovarianceErrors.of_samples(law.sample(m, g), law)
        for k in ms:
            ms[k] += getattr(e, k) ** 2 / R
    for k, v in ms.items():  # 4000 draws of a few dozen entries: the mean square to a few per cent
        assert math.sqrt(v) == pytest.approx(getattr(floor, k), rel=0.04), k
