"""Tests for gptheory.train: determinism, resume equals an uninterrupted run, divergence, schedule, sampling."""

from __future__ import annotations

import math
import shutil

import pytest
import torch

from gptheory.checkpoint import load_checkpoint, load_model
from gptheory.gp import GaussianProcess
from gptheory.samplers import generate
from gptheory.schedules import DDPMSchedule, OUSchedule
from gptheory.train import (
    TimeSampler,
    TrainConfig,
    TrainingDiverged,
    build_model,
    lr_at,
    train,
    training_set,
)

N, d = 8, 2
MODEL = {"N": N, "d": d, "hidden": 16, "depth": 2, "heads": 2}


@pytest.fixture(scope="module")
def data() -> torch.Tensor:
    return training_set(GaussianProcess(N, d, nu=2.0, ell=3.0), 40, seed=0)


def cfg(**kw) -> TrainConfig:
    base = {"steps": 12, "batch_size": 16, "lr": 2e-3, "warmup": 3, "log_every": 2, "seed": 3, "precision": "fp32"}
    return TrainConfig(**{**base, **kw})


def states_equal(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_training_set_is_seeded_float32():
    gp = GaussianProcess(N, d)
    a, b = training_set(gp, 5, seed=1), training_set(gp, 5, seed=1)
    assert a.dtype == torch.float32 and a.shape == (5, N, d) and torch.equal(a, b)
    assert not torch.equal(a, training_set(gp, 5, seed=2))


def test_same_seed_same_weights_and_loss_goes_down(data):
    r1 = train(build_model(0, **MODEL), data, cfg(steps=16), progress=False, device="cpu")
    r2 = train(build_model(0, **MODEL), data, cfg(steps=16), progress=False, device="cpu")
    assert states_equal(r1.model, r2.model) and states_equal(r1.ema, r2.ema)
    assert [e["loss"] for e in r1.log] == [e["loss"] for e in r2.log]
    assert r1.log[-1]["loss"] < r1.log[0]["loss"]
    assert set(r1.log[0]) == {"step", "loss", "lr", "grad_norm", "seconds"}
    assert [e["step"] for e in r1.log] == list(range(2, 17, 2))
    assert r1.steps == 16 and r1.sequences_per_second > 0 and r1.seconds > 0
    # the EMA moved away from the initial weights but differs from the last iterate
    assert not states_equal(r1.ema, r1.model)


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(data, tmp_path):
    straight = train(build_model(0, **MODEL), data, cfg(), progress=False, device="cpu")
    ckpt = tmp_path / "run.pt"
    # 12 > 40 / 16: the interruption falls inside the second epoch, so the data order must resume too
    part = train(build_model(0, **MODEL), data, cfg(), checkpoint=ckpt, stop_at=5, progress=False, device="cpu")
    assert part.steps == 5 and load_checkpoint(ckpt)["step"] == 5
    # a fresh process would build a fresh model: its initial weights are overwritten by the checkpoint
    resumed = train(build_model(123, **MODEL), data, cfg(), checkpoint=ckpt, progress=False, device="cpu")
    assert resumed.steps == 12
    assert states_equal(resumed.model, straight.model)
    assert states_equal(resumed.ema, straight.ema)
    assert [e["loss"] for e in resumed.log] == [e["loss"] for e in straight.log]
    assert states_equal(load_model(ckpt), straight.ema)
    assert states_equal(load_model(ckpt, ema=False), straight.model)


def test_v_prediction_trains_resumes_and_reloads(data, tmp_path):
    model = {**MODEL, "prediction": "v"}
    straight = train(build_model(0, **model), data, cfg(), progress=False, device="cpu")
    ckpt = tmp_path / "v.pt"
    train(build_model(0, **model), data, cfg(), checkpoint=ckpt, stop_at=7, progress=False, device="cpu")
    resumed = train(build_model(5, **model), data, cfg(), checkpoint=ckpt, progress=False, device="cpu")
    assert states_equal(resumed.ema, straight.ema)
    loaded = load_model(ckpt)
    assert loaded.prediction == "v" and loaded.config() == straight.ema.config()
    x = generate(loaded, 3, steps=3, progress=False)
    assert torch.equal(x, generate(straight.ema, 3, steps=3, progress=False))


def test_v_prediction_learns_the_correlation():
    """At initialisation a v-model predicts ``eps_hat = sigma_t x_t``, exact only for white data. Trained on a
    correlated process, its noise prediction moves towards the exact one ``-sigma_t score*`` where the
    correlation matters most (mid-range t); a wrong target or conversion would move it away."""
    gp = GaussianProcess(N, d, nu=2.0, ell=3.0, seed=2)
    train_set = training_set(gp, 256, seed=1)
    init = build_model(0, **MODEL, prediction="v")
    cfg_v = cfg(steps=300, batch_size=32, warmup=10, lr=3e-3, t_sampling="log_snr", t0=0.01)
    res = train(build_model(0, **MODEL, prediction="v"), train_set, cfg_v, progress=False, device="cpu")
    g = torch.Generator().manual_seed(9)
    x0 = gp.sample(256, generator=g)
    schedule = DDPMSchedule()
    for t in (0.3, 0.6):
        xt = schedule.add_noise(x0, t, generator=g)
        exact = -schedule.sigma(t) * gp.score(xt, t, schedule)
        with torch.no_grad():
            err_init = (init(xt.float(), t).double() - exact).square().mean()
            err_trained = (res.ema(xt.float(), t).double() - exact).square().mean()
        # a wrong target or conversion moves it away (ratio > 1); 300 steps close 20-70 % of the gap depending on t
        assert err_trained < 0.9 * err_init, (t, float(err_trained), float(err_init))


def test_resume_with_periodic_checkpoints(data, tmp_path):
    ckpt = tmp_path / "run.pt"
    straight = train(build_model(0, **MODEL), data, cfg(), progress=False, device="cpu")
    train(build_model(0, **MODEL), data, cfg(checkpoint_every=4), checkpoint=ckpt, stop_at=9, progress=False)
    assert load_checkpoint(ckpt)["step"] == 9
    resumed = train(build_model(0, **MODEL), data, cfg(checkpoint_every=4), checkpoint=ckpt, progress=False)
    assert states_equal(resumed.model, straight.model)


def test_resume_refuses_other_settings_or_data(data, tmp_path):
    ckpt = tmp_path / "run.pt"
    train(build_model(0, **MODEL), data, cfg(), checkpoint=ckpt, stop_at=3, progress=False)
    with pytest.raises(ValueError, match="lr"):
        train(build_model(0, **MODEL), data, cfg(lr=1e-3), checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match="training set differs"):
        train(build_model(0, **MODEL), data + 1, cfg(), checkpoint=ckpt, progress=False)
    with pytest.raises(ValueError, match="does not match the model"):
        train(build_model(0, **{**MODEL, "hidden": 8}), data, cfg(), checkpoint=ckpt, progress=False)


def test_non_finite_loss_raises(data):
    model = build_model(0, **MODEL)
    with torch.no_grad():
        model.out.bias.fill_(float("nan"))
    with pytest.raises(TrainingDiverged, match="diverged at step 2.*non-finite"):
        train(model, data, cfg(), progress=False)


def test_loss_above_threshold_raises(data):
    with pytest.raises(TrainingDiverged, match="max_loss=0.01"):
        train(build_model(0, **MODEL), data, cfg(max_loss=0.01), progress=False)


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


def test_config_and_input_checks(data):
    with pytest.raises(ValueError, match="lr must be a real number in"):
        TrainConfig(lr=0.0)
    with pytest.raises(ValueError, match="precision must be one of"):
        TrainConfig(precision="fp16")
    bad = data.clone()
    bad[0, 0, 0] = float("inf")
    with pytest.raises(ValueError, match="data must be finite"):
        train(build_model(0, **MODEL), bad, cfg(), progress=False)
    with pytest.raises(ValueError, match=r"data must have shape \(\*, 8, 2\)"):
        train(build_model(0, **MODEL), data[:, :4], cfg(), progress=False)
    with pytest.raises(ValueError, match="differs from the model"):
        train(build_model(0, **MODEL), data, cfg(), schedule=OUSchedule(), progress=False)


def test_bf16_autocast_trains_on_cpu(data):
    model = build_model(0, **MODEL)
    seen: set[torch.dtype] = set()
    model.blocks[0].fc1.register_forward_hook(lambda _m, _args, out: seen.add(out.dtype))
    r = train(model, data, cfg(precision="bf16", steps=16), progress=False, device="cpu")
    assert seen == {torch.bfloat16}  # the matrix products ran under autocast ...
    assert all(p.dtype == torch.float32 for p in r.model.parameters())  # ... on float32 weights
    assert r.log[-1]["loss"] < r.log[0]["loss"]


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None, reason="inductor needs a C++ compiler")
def test_compiled_training_matches_eager(data):
    """The gpu profile's path (torch.compile, v-prediction) also runs on the CPU and follows the eager run."""
    model = {**MODEL, "prediction": "v"}
    eager = train(build_model(0, **model), data, cfg(steps=6), progress=False, device="cpu")
    compiled = train(build_model(0, **model), data, cfg(steps=6, compile=True), progress=False, device="cpu")
    torch.testing.assert_close(
        torch.tensor([e["loss"] for e in compiled.log]), torch.tensor([e["loss"] for e in eager.log]), rtol=1e-4, atol=0
    )
    for (name, pc), pe in zip(compiled.model.state_dict().items(), eager.model.state_dict().values(), strict=True):
        torch.testing.assert_close(pc, pe, rtol=0, atol=1e-5, msg=name)


def test_load_checkpoint_explains_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a gptheory training checkpoint"):
        load_model(tmp_path / "other.pt")
    torch.save({"version": 1, "model_config": {}}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="format version 1, this gptheory reads version 2"):
        load_checkpoint(tmp_path / "old.pt")


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
