"""Tests for gptheory.validation: every checker names the parameter, the value and the valid range, and the rules the
networks and the configuration share are the same functions (a configuration that passes is never rejected later)."""

from __future__ import annotations

import math

import pytest
import torch

from gptheory.config import ExperimentConfig, ModelConfig
from gptheory.denoiser import build_model, check_arch
from gptheory.dit import DiT, dit_args
from gptheory.validation import finite_tensor, halvings, nonneg_int, odd_int, one_of, option, positive_int, real_in


def test_integers():
    assert positive_int("n", 3) == 3 and nonneg_int("k", 0) == 0 and odd_int("kernel_size", 5) == 5
    for bad in (0, -1, 2.0, True, "3"):
        with pytest.raises(ValueError, match=rf"n must be a positive integer \(>= 1\), got {bad!r}"):
            positive_int("n", bad)
    with pytest.raises(ValueError, match=r"k must be a non-negative integer \(>= 0\), got -1"):
        nonneg_int("k", -1)
    with pytest.raises(ValueError, match=r"kernel_size must be an odd positive integer \(1, 3, 5, ...\), got 4"):
        odd_int("kernel_size", 4)


def test_real_in_writes_the_interval_the_usual_way():
    assert real_in("nu", 2, 0.0, 2.0, low_open=True) == 2.0
    assert real_in("x", math.inf, 0.0, math.inf) == math.inf  # a closed infinite end admits inf
    with pytest.raises(ValueError, match=r"nu must be a real number in \(0, 2\], got 0.0"):
        real_in("nu", 0.0, 0.0, 2.0, low_open=True)
    with pytest.raises(ValueError, match=r"t0 must be a real number in \(0, 1\), got nan"):
        real_in("t0", float("nan"), 0.0, 1.0, low_open=True, high_open=True)
    with pytest.raises(ValueError, match=r"lr must be a real number in \[0, 1\], got 'a'"):
        real_in("lr", "a", 0.0, 1.0)


def test_one_of_and_halvings():
    assert one_of("arch", "unet", {"dit": 1, "unet": 2}) == "unet"
    with pytest.raises(ValueError, match="tokens must be one of concat, add, got 'mix'"):
        one_of("tokens", "mix", ("concat", "add"))
    with pytest.raises(ValueError, match="must be one of"):
        one_of("tokens", ["concat"], ("concat", "add"))  # unhashable input is an error, not a TypeError
    assert halvings(24, 3) == 3 and halvings(7, 0) == 0
    with pytest.raises(ValueError, match=r"N must be divisible by 2\*\*levels.*N=12 and levels=3.*levels <= 2"):
        halvings(12, 3)


def test_finite_tensor():
    x = finite_tensor("x", [[1, 2]], (None, 2))
    assert x.dtype == torch.float64 and x.shape == (1, 2)
    with pytest.raises(ValueError, match=r"x must have shape \(\*, 3\), got \(1, 2\)"):
        finite_tensor("x", x, (None, 3))
    with pytest.raises(ValueError, match="x must be finite, got 1 non-finite entries"):
        finite_tensor("x", torch.tensor([1.0, float("inf")]))
    with pytest.raises(ValueError, match="x must hold real numbers"):
        finite_tensor("x", torch.tensor([True]))


def test_option_metadata():
    assert option("help") == {"help": "help", "internal": False, "later": False}
    assert option("h", ("a", "b"), later=True)["choices"] == ("a", "b")


@pytest.mark.parametrize(
    "kw,match",
    [
        ({"pos_dim": 64}, "pos_dim must be in"),  # the rule ModelConfig used to miss: pos_dim below hidden
        ({"hidden": 30, "heads": 4}, "hidden must be divisible by heads"),
        ({"tokens": "add", "pos_dim": 8}, "pos_dim must equal hidden"),
        ({"activation": "relu"}, "activation must be one of"),
        ({"mlp_ratio": 0.0}, "mlp_ratio must be a real number"),
    ],
)
def test_the_dit_and_its_configuration_share_each_rule(kw, match):
    args = {"hidden": 64, "depth": 1, "heads": 4} | kw
    with pytest.raises(ValueError, match=match):
        dit_args(**args)
    with pytest.raises(ValueError, match=match):
        DiT(4, 2, **args)
    with pytest.raises(ValueError, match=match):
        ModelConfig(**args)


def test_a_configuration_that_passes_builds_its_network():
    with pytest.raises(ValueError, match="N must be divisible by 2"):  # caught at the configuration, not at training
        ExperimentConfig().replace(N=12, arch="unet", levels=3)
    for arch, kernel_size in (("dit", 3), ("unet", 5), ("diffusers-unet", 3)):
        config = ExperimentConfig().replace(N=16, arch=arch, kernel_size=kernel_size, levels=2)
        check_arch(config.model.arch, config.model.kernel_size, config.model.levels, N=config.process.N)
    dit = ExperimentConfig().replace(N=8, d=2, hidden=16, heads=2, depth=1)
    kw = {k: v for k, v in dit.model.__dict__.items()}
    assert build_model(0, N=8, d=2, **kw).config()["pos_dim"] == 8
    with pytest.raises(ValueError, match="kernel_size=5 does not apply to arch='dit'"):
        check_arch("dit", 5, 2)
