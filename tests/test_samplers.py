"""Tests for gptheory.samplers: with the exact score, convergence orders and the law of the output; with a trained
network, generate is seeded and independent of its batch size."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gptheory import DDPMSchedule, GaussianProcess, OUSchedule, generate, prior, sample, train
from gptheory.denoiser import build_model
from gptheory.metrics import CovarianceErrors, ode_sampler_kl
from gptheory.samplers import time_grid
from gptheory.statistics import loglog_fit
from gptheory.train import TrainConfig, training_set

OU = OUSchedule()
N, d = 8, 2  # the network generate samples from: a tiny DiT trained for a few steps
MODEL = {"N": N, "d": d, "hidden": 16, "depth": 2, "heads": 2}


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    return training_set(GaussianProcess(N, d, nu=2.0, ell=3.0), 40, seed=0)


def cfg(steps: int) -> TrainConfig:
    return TrainConfig(steps=steps, batch_size=16, lr=2e-3, warmup=3, log_every=2, seed=3, precision="fp32")


@pytest.mark.parametrize(("method", "order"), [("euler", 1), ("heun", 2)])
@pytest.mark.parametrize("nu", [1.0, 2.0])
def test_ode_kl_falls_at_twice_the_method_order(method, order, nu):
    # KL is quadratic in small covariance errors, which are O(h^order): slope -2 * order in the step count
    gp = GaussianProcess(24, 3, nu=nu, ell=3.0, seed=0)
    steps = [32, 64, 128, 256]
    kl = [ode_sampler_kl(gp, OU, n, 1e-2, method=method) for n in steps]
    slope = loglog_fit(steps, kl).slope
    assert slope == pytest.approx(-2 * order, abs=0.3)
    assert all(a > b for a, b in zip(kl, kl[1:], strict=False))


def test_ode_kl_matches_a_monte_carlo_estimate():
    # with the exact p_T as start, generated covariance = U diag(g^2 v_T) U^T: check the KL's ingredients by sampling
    gp = GaussianProcess(8, 2, nu=1.0, ell=2.0, seed=0)
    steps, t0 = 6, 0.05
    n = 20000
    zT = gp.from_eigenbasis(
        gp.marginal_covariance_spectrum(OU.T, OU).sqrt() * torch.randn(n, 8, 2, dtype=torch.float64)
    )
    out = sample(lambda x, t: gp.score(x, t, OU), zT, OU, steps, t0, method="euler", progress=False)
    v_gen = gp.to_eigenbasis(out).var(0)
    r = v_gen / gp.marginal_covariance_spectrum(t0, OU)
    kl_mc = float(0.5 * (r - 1 - torch.log(r)).sum())
    kl = ode_sampler_kl(gp, OU, steps, t0, method="euler")
    assert kl > 0.05  # coarse grid: a visible error
    assert kl_mc == pytest.approx(kl, rel=0.1)


@pytest.mark.parametrize("method", ["heun", "em"])
def test_samples_reproduce_the_process(method):
    gp = GaussianProcess(16, 3, nu=1.5, ell=3.0, mu=torch.linspace(-1, 1, 48).reshape(16, 3), seed=0)
    n = 3000
    x = sample(
        lambda x, t: gp.score(x, t, OU),
        prior(n, 16, 3, generator=torch.Generator().manual_seed(0)),
        OU,
        steps=120 if method == "em" else 40,
        t0=1e-3,
        method=method,
        generator=torch.Generator().manual_seed(1),
        progress=False,
    )
    true_err = CovarianceErrors.of_samples(gp.sample(n, generator=torch.Generator().manual_seed(2)), gp)
    err = CovarianceErrors.of_samples(x, gp)
    assert err.temporal_ls < 2.0 * true_err.temporal_ls + 0.02
    assert (x.mean(0) - gp.mu).abs().max() < 5 * np.sqrt(gp.Sigma.diagonal().max().item() / n) + 0.05


def test_time_grid():
    ts = time_grid(OU, 10, 1e-3)
    assert ts[0] == OU.T and ts[-1] == pytest.approx(1e-3) and torch.all(ts[1:] < ts[:-1])
    ratios = ts[1:] / ts[:-1]
    torch.testing.assert_close(ratios, ratios.mean().expand_as(ratios))
    assert torch.allclose(
        time_grid(OU, 4, 2.0, spacing="uniform"), torch.tensor([10.0, 8.0, 6.0, 4.0, 2.0], dtype=torch.float64)
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"steps": 0}, "steps must be a positive integer"),
        ({"t0": 0.0}, r"t0 must be a real number in \(0, 10\)"),
        ({"t0": 11.0}, r"t0 must be a real number in \(0, 10\)"),
        ({"method": "rk4"}, "method must be one of euler, heun, em"),
        ({"spacing": "cosine"}, "spacing must be one of log, uniform"),
        ({"x_T": torch.zeros(3, 4)}, r"x_T must have shape \(batch, N, d\)"),
        ({"x_T": torch.full((1, 2, 2), float("nan"))}, "x_T must be finite"),
    ],
)
def test_bad_input(kwargs, match):
    args = {"score": lambda x, t: -x, "x_T": torch.zeros(1, 2, 2), "schedule": OU, "steps": 3, "t0": 0.01}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sample(**args, progress=False)


def test_generate_is_seeded_and_independent_of_the_batch_size(data):
    r = train(build_model(0, **MODEL), data, cfg(steps=4), progress=False)
    chunks: list[torch.Tensor] = []
    x = generate(r.ema, 7, DDPMSchedule(), steps=4, batch_size=3, seed=1, progress=False, on_chunk=chunks.append)
    assert x.shape == (7, N, d) and x.dtype == torch.float32 and torch.isfinite(x).all()
    assert [c.shape[0] for c in chunks] == [3, 3, 1] and torch.equal(torch.cat(chunks), x)  # the hook sees each chunk
    for batch_size in (1, 7, 100):
        other = generate(r.ema, 7, DDPMSchedule(), steps=4, batch_size=batch_size, seed=1, progress=False)
        torch.testing.assert_close(other, x, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(x, generate(r.ema, 7, DDPMSchedule(), steps=4, seed=2, progress=False))
