"""Tests for gptheory.recipe: the learning-rate schedule, the training-time law and the settings' checks."""

from __future__ import annotations

import math

import pytest
import torch

from gptheory.recipe import TimeSampler, TrainConfig, lr_at
from gptheory.schedules import DDPMSchedule, OUSchedule


def test_lr_schedule_warmup_then_cosine():
    c = TrainConfig(steps=110, lr=1.0, warmup=10, min_lr_ratio=0.1)
    assert lr_at(1, c) == pytest.approx(0.1) and lr_at(10, c) == pytest.approx(1.0)
    assert lr_at(60, c) == pytest.approx(0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * 0.5)))
    assert lr_at(110, c) == pytest.approx(0.1)
    lrs = [lr_at(k, c) for k in range(10, 111)]
    assert all(a >= b for a, b in zip(lrs, lrs[1:], strict=False))


@pytest.mark.parametrize("schedule", [DDPMSchedule(), OUSchedule()], ids=["ddpm", "ou"])
def test_time_sampler_uniform_in_t_or_in_log_snr(schedule):
    t0 = 0.01 * schedule.T
    u = torch.rand(20000, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    t = TimeSampler(schedule, t0, "uniform")(u)
    torch.testing.assert_close(t, t0 + (schedule.T - t0) * u)
    t = TimeSampler(schedule, t0, "log_snr")(u)
    assert t.min() >= t0 and t.max() <= schedule.T

    def lam(s):
        s = torch.as_tensor(s, dtype=torch.float64)
        return 2 * (schedule.log_alpha(s) - torch.log(schedule.sigma(s)))

    # the map u -> t is the inverse of the affine map t -> lambda(t): lambda(t) is u spread over its range
    lo, hi = lam(schedule.T), lam(t0)
    torch.testing.assert_close(lam(t), hi + (lo - hi) * u, atol=1e-3 * float(hi - lo), rtol=0)
    with pytest.raises(ValueError, match="t_sampling must be one of"):
        TrainConfig(t_sampling="cosine")


def test_convergence_settings_are_checked_where_they_enter():
    with pytest.raises(ValueError, match="patience must be"):
        TrainConfig(patience=-1)
    with pytest.raises(ValueError, match="eval_every must be"):
        TrainConfig(eval_every=0)
    with pytest.raises(ValueError, match="min_delta must be a real number in"):
        TrainConfig(min_delta=1.0)
