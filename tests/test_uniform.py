"""Theorem 1 over every t: one hand-built network for all diffusion times in [t0, T] (gptheory.construct.uniform)."""

from __future__ import annotations

import math

import pytest
import torch

from gptheory import GaussianProcess, OUSchedule
from gptheory.construct import (
    build_gd_transformer,
    build_uniform_transformer,
    compare_over_times,
    worst_condition_number,
)
from gptheory.construct.builder import ranges
from gptheory.gp import random_spatial_covariance
from gptheory.truncation import banded, is_psd
from gptheory.unroll import condition_number, predicted_steps, truncated_score

SCHED = OUSchedule()
EPS = 1e-2
# Round-off of a few thousand float64 operations per entry, relative to the size of the score.
RTOL = 1e-11
pytestmark = pytest.mark.usefixtures("one_thread")


def _with_mean(N: int, d: int) -> GaussianProcess:
    """A process with a mean and a spatial covariance below 1 on the diagonal: the offset's range
    ``sqrt(alpha_t^2 Sigma_jj + sigma_t^2)`` then grows with ``t`` and is attained at ``T``, not at ``t0``."""
    mu = torch.randn(N, d, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    return GaussianProcess(N, d, nu=1.5, ell=2.5, Sigma=0.3 * random_spatial_covariance(d, seed=2), mu=mu)


# (process, band J, attention, t0, T): a ReLU case with a band, one with a mean and no band, a softmax case (nu = 2)
CASES = {
    "relu_band": (lambda: GaussianProcess(12, 2, nu=1.0, ell=1.5, seed=1), 4, "relu", 0.3, None),
    "relu_mu": (lambda: _with_mean(10, 3), None, "relu", 0.2, 4.0),
    "softmax": (lambda: GaussianProcess(12, 2, nu=2.0, ell=2.0, seed=3), None, "softmax", 0.4, None),
}


@pytest.fixture(scope="module", params=list(CASES))
def case(request):
    make, J, attention, t0, T = CASES[request.param]
    gp = make()
    net = build_uniform_transformer(gp, t0, SCHED, EPS, J=J, T=T, attention=attention)
    return gp, J, t0, SCHED.T if T is None else T, net


def _noisy(gp: GaussianProcess, t: float | torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Draws from the diffused marginal p_t (a (n,) tensor t: one time per sequence)."""
    g = torch.Generator().manual_seed(seed)
    return SCHED.add_noise(gp.sample(n, generator=g), t, generator=g)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


def _times(t0: float, T: float) -> list[float]:
    """A log grid over [t0, T] and, between its points, times drawn at random (none of them used to build)."""
    grid = torch.logspace(math.log10(t0), math.log10(T), 6, dtype=torch.float64).tolist()
    u = torch.rand(5, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    between = (t0 * (T / t0) ** u).tolist()
    return [t0, *grid[1:-1], T, *between]


# ---------------------------------------------------------------------------------------------- the guarantee
def test_one_network_is_within_eps_at_every_time(case):
    gp, J, t0, T, net = case
    for k, t in enumerate(_times(t0, T)):
        x = _noisy(gp, t, 4, seed=k)
        band, exact = truncated_score(gp, x, t, SCHED, J), gp.score(x, t, SCHED)
        assert float(band.abs().max()) <= net.config["clip"]  # inside the clipping range: clipping cannot hurt
        out = net(x, t)
        # Lemma 1 (exact products): ||s^K - s_bar*|| <= (1 - 1/kappa_t)^K ||s_bar*|| <= eps ||s_bar*||
        bound = (1 - 1 / condition_number(gp, t, SCHED, J)) ** net.config["steps"]
        assert bound <= EPS
        assert _rel(out, band) <= bound + RTOL, t
        # to the exact score the band's own error adds (triangle inequality)
        assert _rel(out, exact) <= bound * float(band.norm() / exact.norm()) + _rel(band, exact) + RTOL, t


def test_one_network_serves_a_batch_of_mixed_times(case):
    gp, J, t0, T, net = case
    t = torch.tensor(_times(t0, T), dtype=torch.float64)
    x = _noisy(gp, t, t.numel(), seed=99)  # sequence i is a draw from p_{t_i}
    out = net(x, t)
    for i, ti in enumerate(t.tolist()):
        band = truncated_score(gp, x[i : i + 1], ti, SCHED, J)
        assert _rel(out[i : i + 1], band) <= EPS + RTOL


def test_depth_is_set_by_the_worst_kappa_over_the_interval(case):
    gp, J, t0, T, net = case
    dense = torch.linspace(t0, T, 2001, dtype=torch.float64)
    kappa = condition_number(gp, dense, SCHED, J)
    # kappa_t falls with t (it grows with alpha_t^2), so its maximum is at t0 and no interior time is worse
    assert torch.all(torch.diff(kappa) <= 1e-12 * kappa[:-1])
    cfg = net.config
    assert cfg["t_worst"] == t0 and cfg["t_interval"] == (t0, T) and cfg["eps"] == EPS
    assert cfg["kappa_max"] == pytest.approx(float(kappa.max()), rel=1e-12)
    assert cfg["steps"] == predicted_steps(float(kappa.max()), EPS)
    assert worst_condition_number(gp, t0, T, SCHED, J) == (cfg["kappa_max"], t0)


def test_ranges_hold_at_every_time_and_are_attained_at_an_end(case):
    gp, J, t0, T, net = case
    J_eff = net.config["J_eff"]
    per_t = [ranges(gp, t, SCHED, J_eff, 6.0) for t in torch.linspace(t0, T, 201, dtype=torch.float64).tolist()]
    for key, value in net.config["ranges"].items():
        seen = [r[key] for r in per_t]
        assert max(seen) <= value * (1 + 1e-12), key  # an interior maximum would break this
        assert max(seen[0], seen[-1]) == pytest.approx(value, rel=1e-12), key
    if gp.Sigma.diagonal().max() < 1:  # the offset's range is largest at T: sizing for t0 alone would not do
        assert per_t[-1]["r"] > per_t[0]["r"]


# ---------------------------------------------------------------------------------------------- the test can fail
def test_a_network_built_for_a_late_time_fails_at_t0(case):
    gp, J, t0, T, net = case
    t_late = math.sqrt(t0 * T)
    steps_late = predicted_steps(condition_number(gp, t_late, SCHED, J), EPS)
    assert steps_late < net.config["steps"]
    late = build_gd_transformer(gp, t_late, SCHED, steps_late, J=J, attention=net.config["attention"], t_end=T)
    x = _noisy(gp, t0, 4, seed=0)
    band = truncated_score(gp, x, t0, SCHED, J)
    assert _rel(late(x, t_late), truncated_score(gp, x, t_late, SCHED, J)) > 0  # (a different time, a different score)
    assert _rel(late(x, t0), band) > EPS  # too shallow for kappa_{t0}
    assert _rel(net(x, t0), band) <= EPS


# ---------------------------------------------------------------------------------------------- ReLU multiplication
def test_relu_multiplication_stays_in_range_and_within_its_error_bound():
    gp = GaussianProcess(10, 2, nu=1.0, ell=2.0, seed=4)
    J, t0, m = 3, 0.5, 10
    exact_net = build_uniform_transformer(gp, t0, SCHED, EPS, J=J)
    net = build_uniform_transformer(gp, t0, SCHED, EPS, J=J, mult_depth=m)
    cfg, L = net.config, net.layout
    R_s, R_r = cfg["ranges"]["s"], cfg["ranges"]["r"]
    G_inf = float(banded(gp.Gamma, J).abs().sum(1).max())
    # every step's products are each off by at most B C 2^{-2m-1}; per entry of s that is at most
    delta = cfg["eta_bound"] * 2.0 ** (-2 * m - 1) * ((G_inf * cfg["ranges"]["Sigma_inf"] + 1) * R_s + R_r)
    for k, t in enumerate(_times(t0, SCHED.T)):
        x = _noisy(gp, t, 3, seed=k)
        out, tokens = net(x, t, return_tokens=True)
        h = torch.stack(tokens)
        # the multiplied entries stay inside the ranges sized for the whole interval
        assert float(h[..., L["s"]].abs().max()) <= R_s and float(h[..., L["g"]].abs().max()) <= R_r, t
        # e_{k+1} = (I - eta M) e_k + delta_k with ||I - eta M|| <= 1 - 1/kappa_t: ||e|| <= min(K, kappa_t) ||delta||
        kappa = condition_number(gp, t, SCHED, J)
        tol = min(cfg["steps"], kappa) * math.sqrt(x.numel()) * delta
        assert float((out - exact_net(x, t)).norm()) <= tol, t


# ---------------------------------------------------------------------------------------------- the comparison
def test_compare_over_times_reports_one_network_against_per_time_networks():
    gp = GaussianProcess(10, 2, nu=1.0, ell=2.0, seed=6)
    rep = compare_over_times(build_uniform_transformer(gp, 0.3, SCHED, EPS, J=3), n_times=5, batch=3)
    assert len(rep.times) == 5 and rep.times[0] == 0.3 and rep.times[-1] == SCHED.T
    assert rep.steps == max(rep.steps_needed) == rep.steps_needed[0]  # the depth of the per-time network at t0
    assert rep.wasted[0] == 0 and all(w >= 0 for w in rep.wasted) and rep.wasted[-1] == rep.steps - 1
    for i in range(5):
        assert rep.err_band[i] <= rep.bound[i] + RTOL and rep.bound[i] <= EPS
        assert rep.err_per_t_band[i] <= rep.bound_per_t[i] + RTOL and rep.bound_per_t[i] <= EPS
    # the middle time's network is fine from its time on and fails at t0
    assert rep.err_ref[0] > EPS and rep.err_ref[2] == pytest.approx(rep.err_per_t[2], rel=1e-9)
    big, small = rep.largest_per_t("blocks"), rep.smallest_per_t("blocks")
    assert rep.size["blocks"] == big["blocks"] > small["blocks"] and rep.size["params"] == big["params"]


# ---------------------------------------------------------------------------------------------- bad input
def test_clear_errors():
    gp = GaussianProcess(10, 2, nu=1.0, ell=2.0, seed=6)
    for kwargs, match in (
        ({"t0": 0.0}, r"t0 must be .* in \(0, 10\)"),
        ({"t0": 10.0}, r"t0 must be .* in \(0, 10\)"),
        ({"t0": 2.0, "T": 1.0}, r"t0 must be .* in \(0, 1\)"),
        ({"T": 11.0}, r"T must be .* in \(0, 10\]"),
        ({"eps": 0.0}, r"eps must be .* in \(0, 1\)"),
        ({"eps": 1.0}, r"eps must be .* in \(0, 1\)"),
    ):
        args = {"t0": 0.5, "eps": EPS} | kwargs
        with pytest.raises(ValueError, match=match):
            build_uniform_transformer(gp, args.pop("t0"), SCHED, args.pop("eps"), **args)
    with pytest.raises(ValueError, match="schedule must be"):
        build_uniform_transformer(gp, 0.5, "ou", EPS)
    with pytest.raises(ValueError, match="n_times must be"):
        compare_over_times(build_uniform_transformer(gp, 0.5, SCHED, EPS), n_times=1)
    with pytest.raises(ValueError, match="build_uniform_transformer"):
        compare_over_times(build_gd_transformer(gp, 0.5, SCHED, 2))
    with pytest.raises(ValueError, match=r"t_end must be .* in \[0.7, 10\]"):
        build_gd_transformer(gp, 0.7, SCHED, 2, t_end=0.5)
    # a band that is indefinite: fine late, not convex at a small t0
    se = GaussianProcess(16, 2, nu=2.0, ell=4.0, seed=0)
    J = next(j for j in range(2, 16) if not is_psd(banded(se.Gamma, j)))
    with pytest.raises(ValueError, match="not convex"):
        build_uniform_transformer(se, 1e-3, SCHED, EPS, J=J)
