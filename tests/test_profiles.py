"""The profile knob and the notebook helpers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gptheory import by_profile, profile
from gptheory.book.notebook import _plain, explore, widgets_enabled


def test_profile_from_environment(monkeypatch):
    for name in ("smoke", "cpu", "gpu"):
        monkeypatch.setenv("GPTHEORY_PROFILE", name)
        assert profile() == name
        assert by_profile(smoke=1, cpu=2, gpu=3) == {"smoke": 1, "cpu": 2, "gpu": 3}[name]
    monkeypatch.delenv("GPTHEORY_PROFILE")
    assert profile() == ("gpu" if torch.cuda.is_available() else "cpu")


def test_bad_profile_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("GPTHEORY_PROFILE", "huge")
    with pytest.raises(ValueError, match=r"GPTHEORY_PROFILE must be one of smoke, cpu, gpu, got 'huge'"):
        profile()
    with pytest.raises(ValueError, match="profile must be one of"):
        by_profile(1, 2, 3, name="tiny")


def test_glue_values_become_plain_numbers():
    assert type(_plain(np.float64(1.5))) is float
    assert type(_plain(torch.tensor(2))) is int
    assert _plain([1, 2]) == [1, 2]


def test_explore_draws_the_default_without_widgets(monkeypatch):
    monkeypatch.setenv("GPTHEORY_NO_WIDGETS", "1")
    assert not widgets_enabled()
    calls = []
    explore(lambda a, b: calls.append((a, b)), a=(0, 10, 1, 3), b=(0.0, 1.0, 0.1, 0.5))
    assert calls == [(3, 0.5)]
