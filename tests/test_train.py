"""Tests for gptheory.train: determinism, resume equals an uninterrupted run, divergence, schedule, sampling."""

from __future__ import annotations

import importlib
import shutil
import types

import numpy as np
import pytest
import torch

from gptheory.checkpoint import load_checkpoint, load_model
from gptheory.denoiser import build_model
from gptheory.gp import GaussianProcess
from gptheory.samplers import generate
from gptheory.schedules import DDPMSchedule, OUSchedule
from gptheory.train import TrainConfig, TrainingDiverged, train, training_set

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


# ------------------------------------------------------------------------- measurements during training
AT = [12, 2, 5, 5, 9]  # unsorted, with a repeat: measured once each, in order, the last at the final step


class Recorder:
    """An ``on_step`` that keeps a copy of the network it was given, runs it, and returns a tag and a number."""

    def __init__(self, tag: str):
        self.tag, self.calls, self.nets, self.states = tag, [], [], {}

    def __call__(self, step: int, net: torch.nn.Module) -> dict:
        self.calls.append(step)
        self.nets.append(net)
        self.states[step] = {k: v.clone() for k, v in net.state_dict().items()}
        assert not net.training  # handed over in eval mode
        net.train()  # a careless caller: train() must put it back
        torch.randn(3)  # and draws from the global RNG, which the training must not depend on
        x = torch.ones(2, N, d)
        with torch.no_grad():
            out = net(x, torch.full((2,), 0.5))
        return {"tag": self.tag, "mean": float(out.mean())}


@pytest.mark.usefixtures("one_thread")
def test_on_step_runs_at_the_requested_steps_with_the_ema_and_leaves_training_alone(data):
    plain = train(build_model(0, **MODEL), data, cfg(), progress=False, device="cpu")
    rec = Recorder("a")
    at = [np.int64(k) for k in AT]  # as numpy gives them (dynamics.eval_steps of a config)
    res = train(build_model(0, **MODEL), data, cfg(), progress=False, device="cpu", on_step=rec, at_steps=at)
    assert rec.calls == [2, 5, 9, 12]
    assert all(net is res.ema for net in rec.nets) and not res.ema.training
    assert [e["step"] for e in res.evals] == [2, 5, 9, 12] and {e["tag"] for e in res.evals} == {"a"}
    # what it saw at the last step is the EMA that is returned, and the measurements did not change the training
    assert all(torch.equal(v, res.ema.state_dict()[k]) for k, v in rec.states[12].items())
    assert states_equal(res.model, plain.model) and states_equal(res.ema, plain.ema)
    assert [e["loss"] for e in res.log] == [e["loss"] for e in plain.log]
    # at an earlier step it saw that step's EMA: the EMA of a run stopped there
    early = train(build_model(0, **MODEL), data, cfg(), stop_at=5, progress=False, device="cpu")
    assert all(torch.equal(v, early.ema.state_dict()[k]) for k, v in rec.states[5].items())
    assert not all(torch.equal(v, rec.states[12][k]) for k, v in rec.states[5].items())
    assert train(build_model(0, **MODEL), data, cfg(steps=3), progress=False, device="cpu").evals == []


@pytest.mark.usefixtures("one_thread")
def test_measurements_survive_an_interruption_and_are_not_repeated(data, tmp_path):
    straight = train(build_model(0, **MODEL), data, cfg(), progress=False, device="cpu", on_step=Recorder("x"),
                     at_steps=AT)  # fmt: skip
    ckpt = tmp_path / "run.pt"
    first = Recorder("first")
    part = train(build_model(0, **MODEL), data, cfg(), checkpoint=ckpt, stop_at=5, progress=False, device="cpu",
                 on_step=first, at_steps=AT)  # fmt: skip
    assert first.calls == [2, 5] and [e["step"] for e in part.evals] == [2, 5]  # the stop step is measured too
    assert [e["step"] for e in load_checkpoint(ckpt)["evals"]] == [2, 5]
    second = Recorder("second")
    resumed = train(build_model(7, **MODEL), data, cfg(), checkpoint=ckpt, progress=False, device="cpu",
                    on_step=second, at_steps=AT)  # fmt: skip
    assert second.calls == [9, 12]  # nothing measured before the interruption is measured again
    assert [(e["step"], e["tag"]) for e in resumed.evals] == [(2, "first"), (5, "first"), (9, "second"),
                                                               (12, "second")]  # fmt: skip
    # the same numbers as the uninterrupted run, and the same final weights
    assert [e["mean"] for e in resumed.evals] == [e["mean"] for e in straight.evals]
    assert states_equal(resumed.model, straight.model) and states_equal(resumed.ema, straight.ema)
    # a finished checkpoint reloaded: nothing runs, the measurements come back
    again = Recorder("again")
    done = train(build_model(7, **MODEL), data, cfg(), checkpoint=ckpt, progress=False, device="cpu",
                 on_step=again, at_steps=AT)  # fmt: skip
    assert again.calls == [] and done.evals == resumed.evals


@pytest.mark.usefixtures("one_thread")
def test_the_time_spent_measuring_is_not_training_time(data, monkeypatch):
    # a clock that advances one millisecond per reading, and a thousand seconds during each measurement
    clock = [0.0]

    def perf_counter() -> float:
        clock[0] += 1e-3
        return clock[0]

    def slow(step: int, net: torch.nn.Module) -> dict:
        clock[0] += 1000.0
        return {}

    train_module = importlib.import_module("gptheory.train")  # the package re-exports the function train
    monkeypatch.setattr(train_module, "time", types.SimpleNamespace(perf_counter=perf_counter))
    res = train(build_model(0, **MODEL), data, cfg(), progress=False, device="cpu", on_step=slow, at_steps=AT)
    assert clock[0] > 4000  # the four measurements did take their (fake) time
    assert 0 < res.seconds < 1 and all(e["seconds"] < 1 for e in res.log)
    assert res.sequences_per_second > 12 * 16  # 12 steps of 16 sequences in under a (fake) second


def test_bad_measurement_steps_name_the_parameter(data):
    model = build_model(0, **MODEL)
    with pytest.raises(ValueError, match=r"at_steps must be a positive integer \(>= 1\), got 0"):
        train(model, data, cfg(), progress=False, on_step=Recorder("x"), at_steps=[0, 3])
    with pytest.raises(ValueError, match=r"at_steps must be a positive integer \(>= 1\), got 2.5"):
        train(model, data, cfg(), progress=False, on_step=Recorder("x"), at_steps=[2.5])  # not silently step 2
    with pytest.raises(ValueError, match=r"at_steps must lie in \[1, steps=12\], got 13"):
        train(model, data, cfg(), progress=False, on_step=Recorder("x"), at_steps=[3, 13])
    with pytest.raises(ValueError, match="at_steps needs an on_step function"):
        train(model, data, cfg(), progress=False, at_steps=[3])
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), build_model(0, **MODEL).parameters(),
                                                 strict=True))  # fmt: skip  # nothing trained before the errors


def test_conditional_training_resumes_exactly(data, tmp_path):
    from gptheory.imputers import exact_conditional_score

    gp = GaussianProcess(N, d, nu=2.0, ell=3.0)
    held = training_set(gp, 24, seed=5)
    conditional = {**MODEL, "arch": "conditional-dit"}
    c = cfg(masking="mixed", patience=5, eval_every=4)
    kw = {
        "progress": False,
        "device": "cpu",
        "validation": held,
        "exact_score": exact_conditional_score(gp, DDPMSchedule()),
    }
    straight = train(build_model(0, **conditional), data, c, **kw)
    ckpt = tmp_path / "cond.pt"
    train(build_model(0, **conditional), data, c, checkpoint=ckpt, stop_at=7, **kw)
    resumed = train(build_model(9, **conditional), data, c, checkpoint=ckpt, **kw)
    assert states_equal(resumed.ema, straight.ema) and resumed.validation == straight.validation


def test_masking_and_the_network_must_agree(data):
    with pytest.raises(ValueError, match="masking='mixed' does not fit a DiT"):
        train(build_model(0, **MODEL), data, cfg(masking="mixed"), progress=False)
    with pytest.raises(ValueError, match="masking='none' does not fit a ConditionalDiT"):
        train(build_model(0, **MODEL, arch="conditional-dit"), data, cfg(), progress=False)
    with pytest.raises(ValueError, match="masking must be one of none, random, block, mixed, forecast"):
        cfg(masking="frames")
