"""Tests for gptheory.checkpoint: a checkpoint is written whole, read back exactly, and a wrong file is explained."""

from __future__ import annotations

import pytest
import torch

from gptheory.checkpoint import CHECKPOINT_VERSION, load_checkpoint, load_model, save_checkpoint
from gptheory.denoiser import build_model
from gptheory.unet import UNet1D


def test_load_checkpoint_explains_what_is_wrong(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "missing.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a gptheory training checkpoint"):
        load_model(tmp_path / "other.pt")
    torch.save({"version": 1, "model_config": {}}, tmp_path / "old.pt")
    with pytest.raises(ValueError, match="format version 1, this gptheory reads version 3"):
        load_checkpoint(tmp_path / "old.pt")


@pytest.mark.parametrize(("arch", "extra"), [("dit", {}), ("unet", {"levels": 1})])
def test_load_model_rebuilds_the_network_with_the_ema_or_the_last_weights(tmp_path, arch, extra):
    kw = {"N": 8, "d": 2, "hidden": 16, "depth": 1, "heads": 2, "arch": arch, **extra}
    ema, last = build_model(0, **kw), build_model(1, **kw)  # two different sets of weights
    state = {"version": CHECKPOINT_VERSION, "model_config": ema.config()}
    state |= {"ema": ema.state_dict(), "model": last.state_dict(), "step": 3}
    save_checkpoint(state, tmp_path / "run.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["run.pt"]  # written whole, no temporary left
    assert load_checkpoint(tmp_path / "run.pt")["step"] == 3
    for use_ema, want in ((True, ema), (False, last)):
        back = load_model(tmp_path / "run.pt", ema=use_ema)
        assert type(back) is type(want) and back.config() == want.config() and not back.training
        assert all(torch.equal(p, q) for p, q in zip(back.parameters(), want.parameters(), strict=True))
    assert isinstance(load_model(tmp_path / "run.pt"), UNet1D) == (arch == "unet")
