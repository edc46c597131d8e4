"""Tests for gptheory.denoiser: the base class every score network shares (checks, eps/v output, target, score),
checked on a network simple enough to compute by hand, and the factories that choose an architecture."""

from __future__ import annotations

import pytest
import torch

from gptheory.denoiser import Denoiser, build_model, from_config, model_class
from gptheory.dit import DiT
from gptheory.schedules import DDPMSchedule, OUSchedule
from gptheory.unet import UNet1D


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class Halve(Denoiser):
    """The raw output is ``F = w x`` with one weight ``w = 1/2`` (float32), whatever ``t``."""

    def __init__(self, N: int = 4, d: int = 2, **kw) -> None:
        super().__init__(N, d, **kw)
        self.w = torch.nn.Parameter(torch.tensor(0.5))

    def network(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        assert x.dtype == torch.float32 and t.shape == (x.shape[0],)  # cast to the weights, one time per sequence
        return self.w * x


def test_eps_and_v_outputs_convert_to_the_noise_and_the_score_by_hand():
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(3, 4, 2, generator=g, dtype=torch.float64), torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64)
    sched = OUSchedule()
    a, s = sched.alpha(t)[:, None, None], sched.sigma(t)[:, None, None]
    eps_model, v_model = Halve(schedule=sched), Halve(prediction="v", schedule=sched.config())  # a config dict too
    out = eps_model(x, t)
    assert out.dtype == torch.float64  # cast back to the input's dtype
    torch.testing.assert_close(out, 0.5 * x)
    torch.testing.assert_close(v_model(x, t), s * x + a * 0.5 * x)  # eps_hat = sigma_t x_t + alpha_t v_hat
    torch.testing.assert_close(v_model(x, t, raw=True), 0.5 * x)
    torch.testing.assert_close(v_model.score(x, t), -(s * x + a * 0.5 * x) / s)
    torch.testing.assert_close(eps_model(x, 0.5), eps_model(x, torch.full((3,), 0.5)))  # a float t is broadcast
    x0, eps = torch.randn(2, 3, 4, 2, generator=g, dtype=torch.float64)
    assert torch.equal(eps_model.target(x0, eps, t), eps)
    torch.testing.assert_close(v_model.target(x0, eps, t), a * eps - s * x0)


def test_inputs_are_checked_with_the_parameter_named():
    m = Halve()
    for x, t, match in (
        (torch.zeros(2, 4, 2, dtype=torch.long), 0.5, "x must be a floating-point tensor"),
        (torch.zeros(4, 2), 0.5, r"x must have shape \(batch, N=4, d=2\)"),
        (torch.zeros(1, 5, 2), 0.5, "x has sequence length N=5, but this model takes N=4"),
        (torch.zeros(1, 4, 3), 0.5, "x has frame dimension d=3, but this model takes d=2"),
        (torch.full((1, 4, 2), float("nan")), 0.5, "x must be finite, got 8 non-finite"),
        (torch.zeros(1, 4, 2), 1.5, r"t must be a real number in \[0, 1\]"),
    ):
        with pytest.raises(ValueError, match=match):
            m(x, t)
    with pytest.raises(ValueError, match="differs from the model's"):
        m.score(torch.zeros(1, 4, 2), 0.5, OUSchedule())
    for kw, match in (({"prediction": "x0"}, "prediction must be one of eps, v"), ({"schedule": "ou"}, "schedule")):
        with pytest.raises(ValueError, match=match):
            Halve(**kw)
    assert isinstance(m.schedule, DDPMSchedule) and m.T == 1.0  # the default schedule


def test_score_fn_is_the_score_without_gradients():
    m = Halve(prediction="v")
    x = torch.randn(2, 4, 2, requires_grad=True)
    t = torch.tensor([0.3, 0.6])
    s = m.score_fn()(x, t)
    assert not s.requires_grad and torch.equal(s, m.score(x, t).detach())


def test_model_class_names_the_architectures():
    assert model_class("dit") is DiT and model_class("unet") is UNet1D
    with pytest.raises(ValueError, match="arch must be one of dit, unet, diffusers-unet"):
        model_class("resnet")


def test_build_model_dispatches_on_arch_and_matches_the_dit_it_describes():
    kw = {"N": 32, "d": 4, "hidden": 64, "depth": 4, "heads": 4, "prediction": "v"}
    dit = build_model(0, **kw)
    assert type(dit) is DiT and "arch" not in dit.config()  # DiT configs (checkpoints, cache keys) unchanged
    unet = build_model(1, arch="unet", kernel_size=5, levels=1, **kw)
    assert isinstance(unet, UNet1D) and unet.kernel_size == 5 and unet.levels == 1 and unet.prediction == "v"
    assert abs(n_params(unet) / n_params(dit) - 1) <= 0.1
    again = build_model(1, arch="unet", kernel_size=5, levels=1, **kw)
    assert all(torch.equal(p, q) for p, q in zip(unet.parameters(), again.parameters(), strict=True))
    with pytest.raises(ValueError, match="kernel_size and levels apply to the UNets"):
        build_model(0, kernel_size=5, **kw)
    with pytest.raises(ValueError, match="arch must be one of dit, unet, diffusers-unet"):
        build_model(0, arch="resnet", **kw)


def test_from_config_rebuilds_each_architecture():
    for m in (UNet1D(8, 2, channels=4, levels=1), DiT(8, 2, hidden=16, depth=1, heads=2)):
        assert type(from_config(m.config())) is type(m) and from_config(m.config()).config() == m.config()
