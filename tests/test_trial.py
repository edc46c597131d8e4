"""Tests for gptheory.trial: each draw uses its own named random stream, and the one train-and-measure step repeats
under its seed."""

from __future__ import annotations

import pytest
import torch

from gptheory.denoiser import build_model
from gptheory.experiments.dit_learns import dit_learns_config
from gptheory.samplers import generate
from gptheory.streams import generator, seed_of
from gptheory.train import training_set
from gptheory.trial import prepare, run_trial

pytestmark = pytest.mark.usefixtures("one_thread")

# a few seconds: 6 frames, one tiny DiT, a handful of steps
TINY = {"N": 6, "d": 2, "ell": 1.5, "n_train": 32, "hidden": 16, "depth": 2, "heads": 2, "steps": 3}
TINY |= {"batch_size": 16, "warmup": 1, "n_gen": 24, "sample_steps": 3, "record": 3, "seed": 3}


def test_prepare_draws_the_training_set_and_the_network_from_their_own_streams():
    config = dit_learns_config("smoke", **TINY)
    gp, data, model, cfg = prepare(config)
    assert torch.equal(data, training_set(gp, config.n_train, seed=seed_of(3, "data")))
    fresh = build_model(seed_of(3, "init"), N=6, d=2, **config.model.__dict__)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), fresh.state_dict().values(), strict=True))
    assert cfg == config.train_config() and cfg.seed == 3 and cfg.checkpoint_every == 0
    assert prepare(config, checkpointed=True).train_config.checkpoint_every == max(config.train.steps // 10, 1)
    assert (gp.N, gp.d, gp.ell) == (6, 2, 1.5)


def test_a_trial_generates_from_the_sampler_stream_and_compares_with_the_true_stream():
    config = dit_learns_config("smoke", **TINY)
    t = run_trial(config, device="cpu", progress=False)
    assert t.result.steps == 3 and t.net is t.result.ema and t.generate_seconds > 0
    assert t.times is None and t.maps is None
    assert torch.equal(t.x_true, t.gp.sample(24, generator=generator(3, "true")))
    again = generate(t.net, 24, steps=3, t0=t.train_config.t0, seed=seed_of(3, "sampler"), progress=False)
    assert torch.equal(t.x_gen, again) and t.x_gen.shape == (24, 6, 2)
    # the same trial again: the same network and the same sequences
    assert torch.equal(run_trial(config, device="cpu", progress=False).x_gen, t.x_gen)


def test_a_trial_with_attention_records_every_layer_and_measures_during_training():
    config = dit_learns_config("smoke", **TINY)
    prepared = prepare(config)
    seen = []
    t = run_trial(config, device="cpu", progress=False, prepared=prepared, attention=True,
                  on_step=lambda step, net: seen.append(step) or {"n": step}, at_steps=[2])  # fmt: skip
    assert seen == [2] and t.result.evals == [{"step": 2, "n": 2}]
    assert t.data is prepared.data and t.times.shape == (4,) and t.maps.shape == (4, 2, 6, 6)
    torch.testing.assert_close(t.maps.sum(-1), torch.ones(4, 2, 6))  # softmax rows


def test_a_conditional_configuration_is_refused_before_any_training():
    from gptheory.experiments.imputation import IMPUTATION
    from gptheory.trial import run_trial

    with pytest.raises(ValueError, match="masking='mixed': a conditional network cannot generate"):
        run_trial(IMPUTATION["smoke"], progress=False)
