"""Three ways to draw missing frames through one sampler: the exact conditional score draws the posterior (at t0,
nominal coverage within its Monte Carlo error), replacement is biased even with the exact unconditional score, and
the conditional network's draws go through the same code."""

from __future__ import annotations

import math

import pytest
import torch

from gptheory import DDPMSchedule, GaussianProcess
from gptheory import posterior as P
from gptheory.conditional import Conditional
from gptheory.denoiser import build_model
from gptheory.imputers import ExactDenoiser, exact_conditional_score, impute
from gptheory.masks import block_mask, draw, forecast_mask

SCHEDULE = DDPMSchedule()


def _truths(gp: GaussianProcess, n: int, seed: int) -> torch.Tensor:
    return gp.sample(n, generator=torch.Generator().manual_seed(seed))


def test_the_batch_exact_score_is_each_sequences_own_conditional_score():
    gp = GaussianProcess(7, 2, nu=0.9, ell=1.6, seed=31)  # a process no other test uses
    observed = draw("mixed", 12, 7, torch.Generator().manual_seed(1))
    x_obs, x_t = _truths(gp, 12, 2), torch.randn(12, 7, 2, dtype=torch.float64)
    t = torch.linspace(0.05, 0.9, 12, dtype=torch.float64)
    got = exact_conditional_score(gp, SCHEDULE)(x_t, t, x_obs, observed)
    for b in range(12):
        want = Conditional(gp, observed[b]).score(x_t[b : b + 1], t[b : b + 1], SCHEDULE, x_obs[b : b + 1])
        assert torch.allclose(got[b], want[0], atol=1e-12)


@pytest.mark.parametrize("mask", [forecast_mask(9, 4), block_mask(9, 2, 5)], ids=["forecast", "gap"])
def test_the_exact_score_through_the_sampler_draws_the_posterior_at_t0(mask):
    """Coverage of the nominal intervals within 4 standard errors, CRPS at its floor within 5%."""
    gp = GaussianProcess(9, 2, nu=1.3, ell=2.7, seed=41)
    cond, t0 = Conditional(gp, mask), 0.01
    at = cond.at(t0, SCHEDULE)
    x_obs = _truths(gp, 200, 3)
    x = impute("exact", x_obs, mask, 99, SCHEDULE, 40, t0, 4, cond=cond)
    truth = at.sample(x_obs, generator=torch.Generator().manual_seed(5))  # truths of the law at t0
    cov = P.coverage(x, at, truth)
    for got, want, q in zip(cov.samples.mean(0), cov.expected, cov.levels, strict=True):
        assert abs(float(got - want)) < 4 * math.sqrt(q * (1 - q) / 200)
    scores = P.crps(x, at, truth)
    assert float(scores.samples.mean()) == pytest.approx(float(scores.posterior.mean()), rel=0.05)
    assert torch.equal(x[:, :, mask], x_obs[None].expand(99, -1, -1, -1)[:, :, mask])  # observations kept


def test_replacement_is_biased_even_with_the_exact_unconditional_score():
    """The mean of its draws misses the posterior mean by several floors, where the exact control sits at 1."""
    gp = GaussianProcess(10, 2, nu=1.2, ell=3.0, seed=21)
    mask, t0 = forecast_mask(10, 5), 0.01
    cond, net = Conditional(gp, mask), ExactDenoiser(gp)
    at = cond.at(t0, SCHEDULE)
    x_obs = _truths(gp, 64, 1)
    rep = P.mean_error(impute("replacement", x_obs, mask, 60, SCHEDULE, 25, t0, 3, model=net), at, x_obs)
    exact = P.mean_error(impute("exact", x_obs, mask, 60, SCHEDULE, 25, t0, 3, cond=cond), at, x_obs)
    assert abs(exact.value / exact.floor - 1) < 5 * exact.sd / exact.floor
    assert rep.value / rep.floor > 2.0


def test_the_draws_are_seeded_and_do_not_depend_on_the_chunk():
    gp = GaussianProcess(8, 2, nu=1.5, ell=2.0, seed=3)
    net = build_model(0, arch="conditional-dit", N=8, d=2, hidden=16, depth=1, heads=2).double()
    mask, x_obs = forecast_mask(8, 3), _truths(gp, 5, 0)
    a = impute("conditional", x_obs, mask, 4, SCHEDULE, 5, 0.01, 7, model=net)
    b = impute("conditional", x_obs, mask, 4, SCHEDULE, 5, 0.01, 7, model=net, chunk=3)
    assert a.shape == (4, 5, 8, 2) and torch.allclose(a, b, atol=1e-12)
    assert torch.equal(a, impute("conditional", x_obs, mask, 4, SCHEDULE, 5, 0.01, 7, model=net))  # seeded
    assert not torch.allclose(a, impute("conditional", x_obs, mask, 4, SCHEDULE, 5, 0.01, 8, model=net))


GP = GaussianProcess(8, 2, nu=1.5, ell=2.0, seed=3)
COND = Conditional(GP, forecast_mask(8, 3))
UNCOND = build_model(0, N=8, d=2, hidden=16, depth=1, heads=2)
X = torch.zeros(2, 8, 2)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: impute("inpaint", X, forecast_mask(8, 3), 2, SCHEDULE, 3, 0.01, 0, cond=COND), r"method must be one"),
        (lambda: impute("exact", X, forecast_mask(8, 3), 2, SCHEDULE, 3, 0.01, 0), r"method='exact' needs cond"),
        (lambda: impute("conditional", X, forecast_mask(8, 3), 2, SCHEDULE, 3, 0.01, 0, model=UNCOND),
         r"method='conditional' needs model, a ConditionalDiT, got DiT"),
        (lambda: impute("replacement", X, forecast_mask(8, 3), 0, SCHEDULE, 3, 0.01, 0, model=UNCOND),
         r"n_draws must be a positive integer"),
        (lambda: impute("replacement", X, torch.ones(8, dtype=torch.bool), 2, SCHEDULE, 3, 0.01, 0, model=UNCOND),
         r"observed must observe at least one frame and leave one missing"),
        (lambda: impute("replacement", X, torch.ones(7, dtype=torch.bool), 2, SCHEDULE, 3, 0.01, 0, model=UNCOND),
         r"observed must be a boolean frame mask of shape \(N,\) = \(8,\)"),
        (lambda: impute("exact", torch.zeros(2, 7, 2), forecast_mask(8, 3), 2, SCHEDULE, 3, 0.01, 0, cond=COND),
         r"x_obs must have shape"),
        (lambda: impute("exact", X, forecast_mask(8, 3), 2, SCHEDULE, 3, 0.0, 0, cond=COND), r"t0 must be"),
    ],
)  # fmt: skip
def test_bad_input_names_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_every_method_starts_from_the_same_noise_whatever_its_dtype():
    """One Heun step from T to 0.999 T barely moves a draw: the float32 network's draws and the float64 exact method's
    are then their common starting noise, to within that step."""
    gp = GaussianProcess(8, 2, nu=1.5, ell=2.0, seed=3)
    net = build_model(0, arch="conditional-dit", N=8, d=2, hidden=16, depth=1, heads=2)
    mask, x_obs = forecast_mask(8, 3), _truths(gp, 5, 0)
    a = impute("conditional", x_obs, mask, 6, SCHEDULE, 1, 0.999, 7, model=net)
    e = impute("exact", x_obs, mask, 6, SCHEDULE, 1, 0.999, 7, cond=Conditional(gp, mask))
    assert float((a - e)[:, :, 3:].abs().max()) < 0.05 and float(a[:, :, 3:].std()) > 0.5


def test_the_methods_refuse_a_mismatched_mask_or_schedule():
    from gptheory import OUSchedule

    gp = GaussianProcess(6, 2, nu=1.5, ell=2.0, seed=3)
    cond = Conditional(gp, forecast_mask(6, 2))
    with pytest.raises(ValueError, match=r"observed must be the frame mask cond was made for"):
        impute("exact", torch.zeros(1, 6, 2), forecast_mask(6, 3), 2, SCHEDULE, 3, 0.01, 0, cond=cond)
    net = build_model(0, arch="conditional-dit", N=6, d=2, hidden=16, depth=1, heads=2)
    with pytest.raises(ValueError, match=r"differs from the model's"):
        impute("conditional", torch.zeros(1, 6, 2), forecast_mask(6, 2), 2, OUSchedule(), 3, 0.01, 0, model=net)
