"""Each network's recipe (gptheory.experiments.tuning): its learning rate, chosen on its own validation loss, and
its cap."""

from __future__ import annotations

import types

import pytest

from gptheory.experiments import tuning
from gptheory.experiments.probe import CALIBRATED
from gptheory.profiles import PROFILES


def _tuned(arch: str, lr: float, seed: int, best: float) -> types.SimpleNamespace:
    cfg = CALIBRATED["smoke"].replace(arch=arch, lr=lr, seed=seed)
    return types.SimpleNamespace(config=cfg.to_dict(), best_validation=best)


def test_tuned_lr_takes_each_architectures_lowest_mean_validation_loss():
    pts = [_tuned("dit", 1e-3, 0, 0.30), _tuned("dit", 1e-3, 1, 0.10), _tuned("dit", 4e-3, 0, 0.15),
           _tuned("dit", 4e-3, 1, 0.16), _tuned("unet", 1e-3, 0, 0.5), _tuned("unet", 4e-3, 0, 0.4)]  # fmt: skip
    # the DiT's mean at 1e-3 is 0.20 (one seed lower than every 4e-3 seed), at 4e-3 0.155: the mean decides
    assert tuning.tuned_lr(pts) == {"dit": 4e-3, "unet": 4e-3}
    assert tuning.tuned_lr(pts[:4] + [_tuned("unet", 1e-3, 0, 0.3)]) == {"dit": 4e-3, "unet": 1e-3}
    # a rate without a finite validation loss (no validation curve) is never chosen, whatever the order
    for first in (True, False):
        nan = [_tuned("unet", 2e-3, 0, float("nan"))]
        assert tuning.tuned_lr(nan + pts if first else pts + nan)["unet"] == 4e-3
    with pytest.raises(ValueError, match="at least one"):
        tuning.tuned_lr([])


def test_each_architecture_trains_with_its_recipe_in_the_tuning_sweep_and_after_it():
    for p in PROFILES:
        for coords, cfg in tuning.TUNING.points(p):
            # the tuning sweep: every rate of the grid, at the architecture's own cap where it has one
            assert cfg.train.steps == tuning.CAP[p].get(coords["arch"], CALIBRATED[p].train.steps)
            assert cfg.model.arch == coords["arch"] and cfg.train.lr == coords["lr"]
        for arch in tuning.COMPARED_ARCHS:
            cfg = tuning.tuned(arch)[p]
            assert cfg.train.lr == tuning.TUNED_LR[p].get(arch, CALIBRATED[p].train.lr)
            assert cfg.train.steps == tuning.CAP[p].get(arch, CALIBRATED[p].train.steps)
            assert cfg.replace(arch="dit", lr=CALIBRATED[p].train.lr, steps=CALIBRATED[p].train.steps) == CALIBRATED[p]
    # where the base cap stopped diffusers' UNet at every rate, it has a cap of its own; the others keep the base's
    assert tuning.recipe("cpu", "diffusers-unet")["steps"] > CALIBRATED["cpu"].train.steps
    assert "steps" not in tuning.recipe("cpu", "dit") and tuning.recipe("smoke", "dit") == {}
    # overrides come after the recipe
    assert tuning.tuned("unet", levels=1)["cpu"].model.levels == 1
