"""Tests for gptheory.profiles: the profile knob (smoke, cpu, gpu) from the environment."""

from __future__ import annotations

import pytest
import torch

from gptheory import by_profile, profile


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
