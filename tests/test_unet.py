"""Tests for the UNets of the Figure 11 comparison (gptheory.unet, gptheory.diffusers_unet) and the Denoiser base."""

from __future__ import annotations

import pytest
import torch

from gptheory.checkpoint import load_model
from gptheory.config import ExperimentConfig, ModelConfig
from gptheory.denoiser import Denoiser, build_model, count_parameters
from gptheory.dit import DiT
from gptheory.gp import GaussianProcess
from gptheory.samplers import generate
from gptheory.schedules import OUSchedule
from gptheory.train import TrainConfig, train, training_set
from gptheory.unet import UNet1D

CPU_DIT = {"N": 32, "d": 4, "hidden": 64, "depth": 4, "heads": 4, "mlp_ratio": 4.0, "tokens": "concat"}
SMOKE_DIT = {"N": 16, "d": 4, "hidden": 32, "depth": 3, "heads": 2}


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def randomise(model: torch.nn.Module, std: float = 0.3) -> torch.nn.Module:
    """Generic non-zero weights (the zero-initialised layers would hide every dependence)."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return model


@pytest.mark.parametrize(
    ("N", "d", "levels", "kernel_size", "blocks"),
    [(8, 1, 0, 1, 1), (16, 3, 2, 3, 2), (32, 4, 3, 5, 1), (12, 2, 2, 7, 1)],
)
def test_unet_maps_sequences_to_sequences(N, d, levels, kernel_size, blocks):
    m = randomise(UNet1D(N, d, channels=8, levels=levels, kernel_size=kernel_size, blocks_per_level=blocks))
    x = torch.randn(3, N, d)
    out = m(x, torch.tensor([0.1, 0.5, 0.9]))
    assert out.shape == (3, N, d) and out.dtype == torch.float32 and torch.isfinite(out).all()
    assert m(x.double(), 0.5).dtype == torch.float64  # cast in, cast back


def test_fresh_unet_outputs_zero_and_its_blocks_start_as_their_skip_path():
    m = UNet1D(16, 2, channels=8)
    x, t = torch.randn(4, 16, 2), torch.rand(4)
    assert torch.equal(m(x, t, raw=True), torch.zeros_like(x))  # output convolution starts at zero
    blk = m.mid[0]
    h, c = torch.randn(2, blk.conv1.in_channels, 5), torch.randn(2, m.channels)
    assert torch.equal(blk(h, c), h)  # zero scale/shift layer and second convolution: identity


@pytest.mark.parametrize("cls_kw", [(UNet1D, {"channels": 8}), (DiT, {"hidden": 16, "depth": 1, "heads": 2})])
def test_eps_and_v_conversion_and_target_come_from_the_base_class(cls_kw):
    cls, kw = cls_kw
    sched = OUSchedule()
    m = randomise(cls(8, 2, prediction="v", schedule=sched, **kw))
    assert isinstance(m, Denoiser)
    x0, eps, t = torch.randn(5, 8, 2), torch.randn(5, 8, 2), torch.rand(5) * 0.9 + 0.05
    a, s = sched.alpha(t.double()).float()[:, None, None], sched.sigma(t.double()).float()[:, None, None]
    xt = a * x0 + s * eps
    F = m(xt, t, raw=True)
    torch.testing.assert_close(m(xt, t), s * xt + a * F)  # eps_hat = sigma_t x_t + alpha_t v_hat
    torch.testing.assert_close(m.target(x0, eps, t), a * eps - s * x0)
    torch.testing.assert_close(m.score(xt, t), -(s * xt + a * F) / s)
    m.prediction = "eps"
    torch.testing.assert_close(m(xt, t), F)
    assert torch.equal(m.target(x0, eps, t), eps)


def test_bad_arguments_name_the_parameter_and_the_rule():
    with pytest.raises(ValueError, match=r"N must be divisible by 2\*\*levels.*N=12 and levels=3"):
        UNet1D(12, 2, levels=3)
    with pytest.raises(ValueError, match="kernel_size must be an odd positive integer.*got 4"):
        UNet1D(16, 2, kernel_size=4)
    with pytest.raises(ValueError, match="kernel_size must be a positive integer"):
        UNet1D(16, 2, kernel_size=0)
    with pytest.raises(ValueError, match="levels must be a non-negative integer"):
        UNet1D(16, 2, levels=-1)
    with pytest.raises(ValueError, match="channels must be a positive integer"):
        UNet1D(16, 2, channels=0)
    with pytest.raises(ValueError, match="prediction must be one of eps, v"):
        UNet1D(16, 2, prediction="x0")
    m = UNet1D(16, 2, channels=8)
    with pytest.raises(ValueError, match="x has sequence length N=8, but this model takes N=16"):
        m(torch.zeros(1, 8, 2), 0.5)
    with pytest.raises(ValueError, match=r"t must be a real number in \[0, 1\]"):
        m(torch.zeros(1, 16, 2), 2.0)


@pytest.mark.parametrize(("levels", "kernel_size", "blocks"), [(2, 3, 1), (1, 5, 2), (3, 3, 1), (0, 3, 1)])
def test_receptive_span_matches_a_gradient_probe(levels, kernel_size, blocks):
    """Output frame i depends on input frame j exactly for lo <= j - i <= hi (away from the ends)."""
    m = UNet1D(16, 1, channels=8, levels=levels, kernel_size=kernel_size, blocks_per_level=blocks).double()
    lo, hi = m.receptive_span
    N = 16 * ((hi - lo) // 16 + 2)  # long enough that the middle rows see the whole span
    m = randomise(UNet1D(N, 1, channels=8, levels=levels, kernel_size=kernel_size, blocks_per_level=blocks).double())
    x = torch.randn(1, N, 1, dtype=torch.float64, requires_grad=True)
    out = m(x, 0.5, raw=True)[0, :, 0]
    rows = range(N // 2 - 2**levels, N // 2 + 2**levels)  # every parity pattern of the up-sampling
    gaps = set()
    for i in rows:
        (g,) = torch.autograd.grad(out[i], x, retain_graph=True)
        gaps |= {j - i for j in g[0, :, 0].nonzero().flatten().tolist()}
    assert min(gaps) == lo and max(gaps) == hi
    assert m.receptive_field == hi - lo + 1 and m.max_gap == max(-lo, hi)


@pytest.mark.parametrize("dit", [CPU_DIT, SMOKE_DIT, {"N": 64, "d": 8, "hidden": 128, "depth": 6, "heads": 4}])
@pytest.mark.parametrize("levels", [1, 2])
def test_unet_matches_the_dit_parameter_count_within_ten_percent(dit, levels):
    target = n_params(DiT(**dit))
    m = UNet1D.matched(dit["N"], dit["d"], target, levels=levels)
    assert abs(n_params(m) / target - 1) <= 0.1
    wider = UNet1D(dit["N"], dit["d"], channels=m.channels + 1, levels=levels)
    narrower = UNet1D(dit["N"], dit["d"], channels=max(m.channels - 1, 1), levels=levels)
    assert abs(n_params(m) - target) <= min(abs(n_params(wider) - target), abs(n_params(narrower) - target))


def test_matching_fails_clearly_and_leaves_the_global_rng_alone():
    with pytest.raises(ValueError, match="no width of UNet1D.*within 10% of n_params=100"):
        UNet1D.matched(16, 2, 100)
    torch.manual_seed(5)
    a = UNet1D(16, 2, channels=9)
    torch.manual_seed(5)
    b = UNet1D.matched(16, 2, n_params(a))
    assert b.channels == 9 and all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert count_parameters(UNet1D, 16, 2, channels=9) == n_params(a)


def test_model_config_checks_the_new_fields_and_old_cache_keys_stay_valid():
    body = ExperimentConfig().to_dict()
    # the keys every shipped result's cache key was made from, before arch, kernel_size and levels existed
    assert set(body["model"]) == {
        "hidden",
        "depth",
        "heads",
        "tokens",
        "pos_dim",
        "mlp_ratio",
        "activation",
        "prediction",
    }
    assert ExperimentConfig.from_dict(body) == ExperimentConfig()
    unet = ExperimentConfig(model=ModelConfig(arch="unet", kernel_size=5))
    assert unet.to_dict()["model"]["arch"] == "unet" and unet.to_dict()["model"]["kernel_size"] == 5
    assert "levels" not in unet.to_dict()["model"] and ExperimentConfig.from_dict(unet.to_dict()) == unet
    with pytest.raises(ValueError, match="arch must be one of dit, unet, diffusers-unet, conditional-dit, got 'cnn'"):
        ModelConfig(arch="cnn")
    with pytest.raises(ValueError, match="kernel_size must be an odd positive integer.*got 2"):
        ModelConfig(arch="unet", kernel_size=2)
    with pytest.raises(ValueError, match="kernel_size=5 does not apply to arch='dit'"):
        ModelConfig(kernel_size=5)
    with pytest.raises(ValueError, match="kernel_size=5 does not apply to arch='diffusers-unet'"):
        ModelConfig(arch="diffusers-unet", kernel_size=5)


def heldout_loss(model: Denoiser, gp: GaussianProcess) -> float:
    """The training loss on 2048 fresh sequences, times and noises (the same draws for every model)."""
    g = torch.Generator().manual_seed(1)
    x0 = gp.sample(2048, generator=g).to(torch.float32)
    eps, t = torch.randn(x0.shape, generator=g), 0.05 + 0.9 * torch.rand(2048, generator=g)
    with torch.no_grad():
        return torch.nn.functional.mse_loss(
            model(model.schedule.add_noise(x0, t, eps), t, raw=True), model.target(x0, eps, t)
        ).item()


def test_unet_trains_with_the_dit_engine_samples_and_reloads(tmp_path):
    gp = GaussianProcess(16, 2, nu=2.0, ell=3.0)
    data = training_set(gp, 256, seed=0)
    m = build_model(0, arch="unet", N=16, d=2, hidden=32, depth=2, heads=2, prediction="v")
    fresh = heldout_loss(m, gp)  # F = 0: the mean of |v|^2, about 1 on unit-variance data
    cfg = TrainConfig(steps=30, batch_size=64, lr=1e-2, warmup=5, log_every=10, seed=0, precision="fp32")
    res = train(m, data, cfg, checkpoint=tmp_path / "unet.pt", progress=False)
    losses = [e["loss"] for e in res.log]
    assert losses[-1] < losses[0], losses
    # the correlated frames make v partly predictable: the trained net beats the zero output on unseen draws
    assert heldout_loss(res.model, gp) < 0.95 * fresh
    back = load_model(tmp_path / "unet.pt")
    assert isinstance(back, UNet1D) and back.config() == res.ema.config()
    assert all(torch.equal(p, q) for p, q in zip(back.parameters(), res.ema.parameters(), strict=True))
    x = generate(back, 8, steps=5, progress=False)
    assert x.shape == (8, 16, 2) and torch.isfinite(x).all()


# ---------------------------------------------------------------------- the diffusers peer
@pytest.fixture(scope="module")
def diffusers_unet():
    pytest.importorskip("diffusers")
    from gptheory.diffusers_unet import DiffusersUNet1D

    return DiffusersUNet1D


@pytest.mark.parametrize(("N", "d", "widths"), [(16, 2, (8, 16)), (32, 4, (16, 40, 72)), (24, 3, (8,))])
def test_diffusers_unet_shapes(diffusers_unet, N, d, widths):
    m = diffusers_unet(N, d, widths=widths)
    out = m(torch.randn(3, N, d), torch.tensor([0.01, 0.5, 1.0]))
    assert out.shape == (3, N, d) and torch.isfinite(out).all()


@pytest.mark.parametrize("dit", [CPU_DIT, SMOKE_DIT])
def test_diffusers_unet_matches_the_dit_and_has_no_attention(diffusers_unet, dit):
    target = n_params(DiT(**dit))
    m = diffusers_unet.matched(dit["N"], dit["d"], target, levels=2)
    assert abs(n_params(m) / target - 1) <= 0.1
    names = {type(mod).__name__ for mod in m.modules()}
    assert not any("Attention" in n or "Attn" in n for n in names) and "ResidualTemporalBlock1D" in names
    assert not any(n in names for n in ("Tanh", "Hardtanh", "Sigmoid"))  # no squashing layer


def test_diffusers_unet_sees_the_data_unclipped_and_maps_t_to_its_1000_steps(diffusers_unet):
    m = diffusers_unet(16, 2, widths=(8, 16), prediction="v")
    seen = {}
    m.unet.register_forward_pre_hook(lambda mod, args: seen.update(sample=args[0], t=args[1]))
    m.unet.register_forward_hook(lambda mod, args, out: seen.update(out=out[0]))
    x, t = 1e3 * torch.randn(2, 16, 2), torch.tensor([0.25, 1.0])
    raw = m(x, t, raw=True)
    assert torch.equal(seen["sample"], x.transpose(1, 2))  # handed over unchanged (no [-1, 1] clip, no rescale)
    assert torch.equal(raw, seen["out"].transpose(1, 2))  # and returned unchanged
    torch.testing.assert_close(seen["t"], torch.tensor([250.0, 1000.0]))
    eps_hat = m(x, t)
    assert eps_hat.abs().max() > 100  # sigma_t x_t carries the input's scale through: nothing bounds the output


def test_diffusers_unet_trains_and_reloads(diffusers_unet, tmp_path):
    data = training_set(GaussianProcess(16, 4, nu=2.0, ell=3.0), 64, seed=0)
    m = build_model(0, arch="diffusers-unet", prediction="v", **SMOKE_DIT)
    assert isinstance(m, diffusers_unet)
    cfg = TrainConfig(steps=4, batch_size=32, warmup=1, log_every=2, seed=0, precision="fp32")
    res = train(m, data, cfg, checkpoint=tmp_path / "d.pt", progress=False)
    back = load_model(tmp_path / "d.pt")
    assert isinstance(back, diffusers_unet) and back.config() == res.ema.config()
    assert all(torch.equal(p, q) for p, q in zip(back.parameters(), res.ema.parameters(), strict=True))
