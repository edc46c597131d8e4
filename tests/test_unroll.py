"""Checks of gptheory.unroll against independent dense references (Kronecker matrices, eigvalsh, explicit loops)."""

from __future__ import annotations

import math

import pytest
import torch

from gptheory import DDPMSchedule, GaussianProcess, OUSchedule
from gptheory.truncation import (
    banded,
    is_diagonally_dominant,
    is_psd,
    min_eigenvalue,
    truncation_length,
)
from gptheory.unroll import (
    condition_number,
    convex_band,
    gd_iterates,
    gd_score,
    operator_bounds,
    predicted_steps,
    truncated_score,
)

OU = OUSchedule()


def _dense_M(gp: GaussianProcess, J: int | None, a: float, b: float) -> torch.Tensor:
    """``a kron(Gamma_bar, Sigma) + b I`` built entry by entry from the definition of the band (no package code)."""
    N = gp.N
    Gb = torch.zeros(N, N, dtype=torch.float64)
    for i in range(N):
        for j in range(N):
            if J is None or abs(i - j) < J:
                Gb[i, j] = gp.Gamma[i, j]
    return a * torch.kron(Gb, gp.Sigma) + b * torch.eye(N * gp.d, dtype=torch.float64)


def _dense_gd(gp, x, t, schedule, steps, J, eta=None):
    """Gradient descent on vec(x) with the dense Nd x Nd matrix, one sequence at a time."""
    out = []
    tt = torch.as_tensor(t, dtype=torch.float64).expand(x.shape[0])
    for n in range(x.shape[0]):
        al = float(schedule.alpha(tt[n]))
        M = _dense_M(gp, J, al**2, float(schedule.sigma(tt[n])) ** 2)
        r = (x[n] - al * gp.mu).reshape(-1)
        step = 1.0 / float(torch.linalg.eigvalsh(M)[-1]) if eta is None else float(torch.as_tensor(eta).reshape(-1)[n])
        s = torch.zeros_like(r)
        for _ in range(steps):
            s = s - step * (M @ s + r)
        out.append(s.reshape(gp.N, gp.d))
    return torch.stack(out)


@pytest.fixture(scope="module")
def gp():
    mu = 0.3 * torch.randn(12, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    return GaussianProcess(12, 3, nu=1.5, ell=2.0, mu=mu, seed=2)


@pytest.mark.parametrize("J", [None, 3, 6])
def test_gd_score_matches_dense_gd(gp, J):
    x = gp.sample(3, torch.Generator().manual_seed(0)) + 0.5
    t = torch.tensor([0.3, 1.0, 4.0], dtype=torch.float64)
    for steps in (0, 1, 7):
        torch.testing.assert_close(
            gd_score(gp, x, t, OU, steps, J=J), _dense_gd(gp, x, t, OU, steps, J), rtol=1e-11, atol=1e-12
        )
    eta = torch.tensor([0.05, 0.1, 0.2], dtype=torch.float64)
    torch.testing.assert_close(
        gd_score(gp, x, t, OU, 5, J=J, eta=eta), _dense_gd(gp, x, t, OU, 5, J, eta), rtol=1e-11, atol=1e-12
    )


def test_gd_iterates_are_the_gd_scores(gp):
    x = gp.sample(2, torch.Generator().manual_seed(9))
    its = list(gd_iterates(gp, x, 0.7, OU, 6, J=3))
    assert len(its) == 7
    for k, s in enumerate(its):
        torch.testing.assert_close(s, gd_score(gp, x, 0.7, OU, k, J=3), rtol=0, atol=0)
    with pytest.raises(ValueError, match="steps"):
        gd_iterates(gp, x, 0.7, OU, -2)  # checked eagerly, not at the first next()


def test_gd_score_float_t_and_ddpm(gp):
    x = gp.sample(2, torch.Generator().manual_seed(3))
    sch = DDPMSchedule()
    torch.testing.assert_close(gd_score(gp, x, 0.4, sch, 6, J=4), _dense_gd(gp, x, 0.4, sch, 6, 4))


def test_gd_converges_to_score_and_truncated_score(gp):
    x = gp.sample(2, torch.Generator().manual_seed(4))
    t = torch.tensor([0.5, 2.0], dtype=torch.float64)
    exact = gp.score(x, t, OU)
    kappa = float(condition_number(gp, t, OU).max())
    k = predicted_steps(kappa, 1e-10)
    assert (gd_score(gp, x, t, OU, k) - exact).norm() <= 1e-9 * exact.norm()
    torch.testing.assert_close(truncated_score(gp, x, t, OU, None), exact, rtol=1e-12, atol=1e-12)
    # with a band: the limit is the dense solve of the banded system
    for J in (3, 5):
        ref = []
        for n in range(2):
            al = float(OU.alpha(t[n]))
            M = _dense_M(gp, J, al**2, float(OU.sigma(t[n])) ** 2)
            ref.append(-torch.linalg.solve(M, (x[n] - al * gp.mu).reshape(-1)).reshape(gp.N, gp.d))
        torch.testing.assert_close(truncated_score(gp, x, t, OU, J), torch.stack(ref), rtol=1e-10, atol=1e-12)
        kb = predicted_steps(float(condition_number(gp, t, OU, J).max()), 1e-10)
        s = gd_score(gp, x, t, OU, kb, J=J)
        assert (s - torch.stack(ref)).norm() <= 1e-9 * torch.stack(ref).norm()


@pytest.mark.parametrize("nu,ell,t", [(2.0, 1.0, 0.2), (1.0, 3.0, 0.5), (0.5, 2.0, 1.0), (2.0, 3.0, 2.0)])
def test_lemma1_rate_every_step(nu, ell, t):
    g = GaussianProcess(10, 2, nu=nu, ell=ell, seed=1)
    x = g.sample(2, torch.Generator().manual_seed(7))
    exact = g.score(x, t, OU)
    kappa = condition_number(g, t, OU)
    rate = 1.0 - 1.0 / kappa
    for k in range(0, 60, 3):
        err = (gd_score(g, x, t, OU, k) - exact).norm(dim=(1, 2))
        assert (err <= rate**k * exact.norm(dim=(1, 2)) * (1 + 1e-9) + 1e-12).all(), (k, err, rate)


def test_condition_number_matches_dense_eigvalsh(gp):
    t = torch.tensor([0.1, 1.0, 5.0], dtype=torch.float64)
    for J in (None, 2, 4, 12):
        kap = condition_number(gp, t, OU, J)
        lo, hi = operator_bounds(gp, t, OU, J)
        for n in range(3):
            al = float(OU.alpha(t[n]))
            ev = torch.linalg.eigvalsh(_dense_M(gp, J, al**2, float(OU.sigma(t[n])) ** 2))
            assert math.isclose(float(lo[n]), float(ev[0]), rel_tol=1e-9, abs_tol=1e-12)
            assert math.isclose(float(hi[n]), float(ev[-1]), rel_tol=1e-9)
            if ev[0] > 0:
                assert math.isclose(float(kap[n]), float(ev[-1] / ev[0]), rel_tol=1e-8)
    assert isinstance(condition_number(gp, 1.0, OU), float)


def test_kappa_decreases_with_t(gp):
    ts = torch.linspace(0.05, 8.0, 30, dtype=torch.float64)
    kap = condition_number(gp, ts, OU)
    assert (kap[1:] <= kap[:-1] * (1 + 1e-12)).all()


def test_indefinite_band_detected_and_rejected():
    g = GaussianProcess(48, 2, nu=2.0, ell=6.0)
    Gb = banded(g.Gamma, 8)
    assert min_eigenvalue(Gb) < -0.1 and not is_psd(Gb) and not is_diagonally_dominant(g.Gamma)
    assert is_psd(g.Gamma)  # the full kernel is PSD (singular up to round-off)
    x = g.sample(2)
    with pytest.raises(ValueError, match="not convex"):
        gd_score(g, x, 0.05, OU, 3, J=8)
    with pytest.raises(ValueError, match="not convex"):
        truncated_score(g, x, 0.05, OU, 8)
    assert math.isinf(condition_number(g, 0.05, OU, 8))


def test_bad_input(gp):
    x = gp.sample(2)
    with pytest.raises(ValueError, match="steps"):
        gd_score(gp, x, 1.0, OU, -1)
    with pytest.raises(ValueError, match="J"):
        gd_score(gp, x, 1.0, OU, 3, J=0)
    with pytest.raises(ValueError, match="eta"):
        gd_score(gp, x, 1.0, OU, 3, eta=0.0)
    with pytest.raises(ValueError, match="eta"):
        gd_score(gp, x, 1.0, OU, 3, eta=torch.tensor([0.1, -0.1]))
    with pytest.raises(ValueError, match="t must be"):
        gd_score(gp, x, 0.0, OU, 3)
    with pytest.raises(ValueError, match="x must"):
        gd_score(gp, torch.zeros(2, 5, 3), 1.0, OU, 3)
    with pytest.raises(ValueError, match="eps"):
        truncation_length(1.0, 2.0, 10, 0.0)
    with pytest.raises(ValueError, match="nu"):
        truncation_length(2.5, 2.0, 10, 0.1)
    with pytest.raises(ValueError, match="square"):
        banded(torch.zeros(3, 4), 2)
    assert torch.equal(gd_score(gp, x, 1.0, OU, 0), torch.zeros_like(x))


@pytest.mark.parametrize("J", [2, 6, 10])
def test_convex_band_is_the_smallest_band_from_J_that_keeps_the_objective_convex(J):
    gp, sched, t0 = GaussianProcess(32, 4, nu=2.0, ell=4.0, seed=0), DDPMSchedule(), 0.01
    band = convex_band(gp, t0, sched, J)
    assert band is not None and band >= J
    assert math.isfinite(condition_number(gp, t0, sched, band))
    assert all(not math.isfinite(condition_number(gp, t0, sched, j)) for j in range(J, band))
