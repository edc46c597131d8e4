"""Schedules: closed forms, DiT's discrete DDPM table, and the VP identity beta = -2 d log alpha / dt."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gptheory import DDPMSchedule, OUSchedule
from gptheory.schedules import from_config


def test_ou_closed_form():
    s = OUSchedule()
    t = torch.linspace(0, 10, 11, dtype=torch.float64)
    torch.testing.assert_close(s.alpha(t), torch.exp(-t / 2))
    torch.testing.assert_close(s.sigma(t) ** 2, 1 - torch.exp(-t))


def test_ddpm_hits_dits_table():
    s = DDPMSchedule()
    alphas_cumprod = np.cumprod(1.0 - np.linspace(1e-4, 0.02, 1000, dtype=np.float64))  # DiT's gaussian_diffusion
    k = torch.arange(1, 1001, dtype=torch.float64)
    np.testing.assert_allclose(s.alpha(k / 1000).numpy() ** 2, alphas_cumprod, rtol=1e-12)
    assert s.alpha(0.0).item() == 1.0 and s.sigma(0.0).item() == 0.0


@pytest.mark.parametrize("schedule", [OUSchedule(T=5.0), DDPMSchedule()], ids=["ou", "ddpm"])
def test_variance_preserving_and_beta_is_log_alpha_rate(schedule):
    # mid-step points: DDPM's beta is constant on each of its 1000 steps and jumps at k / 1000
    t = (torch.arange(13, 970, 26, dtype=torch.float64) + 0.5) / 1000 * schedule.T
    torch.testing.assert_close(schedule.alpha(t) ** 2 + schedule.sigma(t) ** 2, torch.ones_like(t))
    h = 1e-7 * schedule.T
    numeric = -2 * (schedule.log_alpha(t + h) - schedule.log_alpha(t - h)) / (2 * h)
    torch.testing.assert_close(schedule.beta(t), numeric, rtol=1e-5, atol=0)


def test_dtype_follows_input():
    s = DDPMSchedule()
    assert s.alpha(torch.tensor([0.5], dtype=torch.float32)).dtype == torch.float32
    assert s.alpha(0.5).dtype == torch.float64


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: OUSchedule(T=0), r"T must be a real number in \(0, inf\)"),
        (lambda: DDPMSchedule(num_steps=0), "num_steps must be a positive integer"),
        (lambda: DDPMSchedule(beta_end=1.5), r"beta_end must be a real number in \(0, 1\)"),
        (lambda: OUSchedule().check_t(-0.1), r"t must be in \[0, 10\]"),
        (lambda: DDPMSchedule().check_t(torch.tensor([0.2, float("nan")])), "t must be finite"),
    ],
)
def test_bad_input(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.parametrize(
    "schedule", [OUSchedule(T=5.0), DDPMSchedule(num_steps=500, beta_end=0.03)], ids=["ou", "ddpm"]
)
def test_config_round_trip(schedule):
    rebuilt = from_config(schedule.config())
    assert type(rebuilt) is type(schedule) and rebuilt.config() == schedule.config()
    t = torch.linspace(0, schedule.T, 11, dtype=torch.float64)
    assert torch.equal(rebuilt.log_alpha(t), schedule.log_alpha(t))
    with pytest.raises(ValueError, match="name in ou, ddpm"):
        from_config({"name": "vp"})


def test_add_noise_is_the_forward_process():
    sched = DDPMSchedule()
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(2, 3, 5, 4, generator=g, dtype=torch.float64)
    t = torch.tensor([0.2, 0.7, 0.9], dtype=torch.float64)
    want = sched.alpha(t)[:, None, None] * x0 + sched.sigma(t)[:, None, None] * eps
    torch.testing.assert_close(sched.add_noise(x0, t, eps), want, rtol=0, atol=0)
    torch.testing.assert_close(sched.add_noise(x0, 0.7, eps), sched.add_noise(x0, torch.full((3,), 0.7), eps))
    drawn = sched.add_noise(x0, 0.7, generator=torch.Generator().manual_seed(5))  # eps ~ N(0, I) from the generator
    torch.testing.assert_close(
        drawn,
        sched.add_noise(x0, 0.7, torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)),
    )


def test_check_t_broadcasts_one_time_per_sequence():
    sched = OUSchedule()
    assert sched.check_t(0.5, batch=4).shape == (4,)
    assert torch.equal(sched.check_t(torch.tensor([1.0, 2.0]), batch=2), torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"t must be a float or a tensor of shape \(3,\), got shape \(2,\)"):
        sched.check_t(torch.tensor([1.0, 2.0]), batch=3)
