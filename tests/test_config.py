"""Tests for gptheory.config: typed configurations, flat overrides, and the options derived from them."""

from __future__ import annotations

import argparse
import dataclasses

import pytest

from gptheory.config import TRAIN_OPTIONS, ExperimentConfig, ProcessConfig, add_options, option_owners, options_from
from gptheory.experiments.dit_learns import DIT_LEARNS as FIGURE1
from gptheory.experiments.dit_learns import dit_learns_config as settings
from gptheory.results import config_key
from gptheory.train import TrainConfig


def test_overrides_reach_the_part_that_owns_them_and_leave_the_table_alone():
    c = settings("cpu", ell=2.0, hidden=48, lr=1e-3, seed=3, n_gen=100)
    base = FIGURE1["cpu"]
    assert c.process.ell == 2.0 and c.process.N == base.process.N and c.seed == 3
    assert c.model.hidden == 48 and c.model.depth == base.model.depth
    assert c.train.lr == 1e-3 and c.train.steps == base.train.steps and c.sampler.n_gen == 100
    assert settings("cpu", ell=None) == settings("cpu")  # None keeps the profile's value
    assert FIGURE1["cpu"].model.hidden == base.model.hidden != 48
    assert c.train_config().seed == 3  # the training is seeded by the experiment's seed


def test_bad_settings_name_the_parameter_and_the_valid_range():
    with pytest.raises(ValueError, match="unknown setting 'widht'"):
        settings("cpu", widht=3)
    with pytest.raises(ValueError, match=r"nu must be a real number in \(0, 2\], got 3"):
        settings("cpu", nu=3.0)
    with pytest.raises(ValueError, match="n_train must be a positive integer"):
        settings("cpu", n_train=0)
    with pytest.raises(ValueError, match="hidden must be divisible by heads"):
        settings("cpu", hidden=30, heads=4)
    with pytest.raises(ValueError, match="n_gen must be an integer >= 2"):
        settings("cpu", n_gen=1)
    with pytest.raises(ValueError, match="profile"):
        settings("laptop")


def test_every_field_name_is_unique_and_the_dict_round_trips():
    owners = option_owners()
    parts = [ProcessConfig, TrainConfig]
    names = [f.name for p in parts for f in dataclasses.fields(p)]
    assert {"N", "nu", "ell", "steps", "lr", "hidden", "n_gen", "n_train", "seed"} <= set(owners)
    assert "checkpoint_every" not in owners and "log_every" not in owners and len(names) > len(parts)
    c = settings("smoke", nu=1.5, steps=7)
    assert ExperimentConfig.from_dict(c.to_dict()) == c
    assert "seed" not in c.to_dict()["train"]  # the experiment's seed is the one identity of the run


def test_command_line_options_come_from_the_fields():
    p = argparse.ArgumentParser()
    add_options(p)
    a = p.parse_args(["--n-train", "64", "--nu", "1.5", "--t-sampling", "uniform", "--compile"])
    assert options_from(a) == {"n_train": 64, "nu": 1.5, "t_sampling": "uniform", "compile": True}
    flags = {o for action in p._actions for o in action.option_strings}
    assert {"--" + k.replace("_", "-") for k in option_owners()} <= flags  # one option per field, none forgotten
    with pytest.raises(SystemExit):
        p.parse_args(["--prediction", "x0"])
    many = argparse.ArgumentParser()
    add_options(many, many=("nu", "seed"), aliases={"seed": ("--seeds",)})
    assert options_from(many.parse_args(["--nu", "0.5", "1", "--seeds", "0", "1"])) == {
        "nu": [0.5, 1.0],
        "seed": [0, 1],
    }


def test_eval_points_is_left_out_at_its_default_so_older_cache_keys_stay_valid():
    base = settings("smoke")
    assert base.sampler.eval_points == 0 and "eval_points" not in base.to_dict()["sampler"]
    assert ExperimentConfig.from_dict(base.to_dict()).sampler.eval_points == 0  # filled back in
    dyn = settings("smoke", eval_points=5)
    assert dyn.to_dict()["sampler"]["eval_points"] == 5 and ExperimentConfig.from_dict(dyn.to_dict()) == dyn
    assert config_key(dyn.to_dict()) != config_key(base.to_dict())
    assert option_owners()["eval_points"] == "sampler"
    with pytest.raises(ValueError, match=r"eval_points must be a non-negative integer \(>= 0\), got -1"):
        settings("smoke", eval_points=-1)


def test_the_video_configuration_is_made_of_parts_and_derives_its_options_the_same_way():
    from gptheory.bouncing_ball.experiment import BOUNCING_BALL, bouncing_ball_config
    from gptheory.config import VideoConfig

    c = bouncing_ball_config("cpu", frames=48, steps=500, vae_lr=1e-3, hidden=32, heads=2)
    assert (c.ball.frames, c.train.steps, c.vae.vae_lr, c.model.hidden) == (48, 500, 1e-3, 32)
    assert c.ball.size == BOUNCING_BALL["cpu"].ball.size and BOUNCING_BALL["cpu"].ball.frames == 32
    assert VideoConfig.from_dict(c.to_dict()) == c and "seed" not in c.to_dict()["vae"]
    assert c.vae_config(checkpointed=True).checkpoint_every == 200 and c.train_config().seed == c.seed
    owners = option_owners(VideoConfig)
    assert owners["radius"] == "ball" and owners["vae_steps"] == "vae" and owners["t_sampling"] == "train"
    p = argparse.ArgumentParser()
    add_options(p, VideoConfig)
    a = p.parse_args(["--frames", "20", "--t-sampling", "uniform", "--compile", "--vae-beta", "0.5"])
    assert options_from(a, VideoConfig) == {"frames": 20, "t_sampling": "uniform", "compile": True, "vae_beta": 0.5}
    with pytest.raises(SystemExit):  # choices come from the field's metadata, in every command
        p.parse_args(["--precision", "fp8"])
    helps = {a.dest: a.help for a in p._actions}
    assert helps["radius"] == "ball radius (pixels)" and helps["steps"] == "optimiser steps"
    with pytest.raises(ValueError, match="latent_size must be the frame size 32 halved"):
        bouncing_ball_config("cpu", latent_size=3)
    with pytest.raises(ValueError, match="N must be divisible by 2"):  # the UNet rule, checked against the frames
        bouncing_ball_config("cpu", frames=30, arch="unet", levels=2)


def test_a_field_marked_later_stays_out_of_the_key_at_its_default_and_internal_fields_never_enter():
    base = ExperimentConfig()  # no convergence or masking settings
    body = base.to_dict()
    assert set(body["model"]).isdisjoint({"arch", "kernel_size", "levels"})
    assert set(body["train"]).isdisjoint({"seed", "log_every", "checkpoint_every"})
    assert "grad_clip" in body["train"] and set(body["sampler"]).isdisjoint({"eval_points", "n_cond", "n_draws"})
    # every keyed training field is an option, and the reverse; the convergence and masking settings enter only when set
    later = {"patience", "eval_every", "min_delta", "val_times", "masking"}
    assert set(TRAIN_OPTIONS) - later == set(body["train"]) and body["protocol"] == 2  # the one protocol, keyed
    assert base.replace(patience=3).to_dict()["train"]["patience"] == 3
    with pytest.raises(ValueError, match=r"protocol=1: the only protocol is 2 \(the first, with coupled random"):
        base.replace(protocol=1)
