"""One knob for problem sizes: ``GPTHEORY_PROFILE=smoke|cpu|gpu``.

* ``smoke`` -- tiny sizes so that every chapter executes in seconds (CI).
* ``cpu``   -- the default without CUDA: faithful figures in minutes on a laptop.
* ``gpu``   -- the paper's scale; chosen automatically when CUDA is present.

Chapters and experiment drivers pick their sizes with :func:`by_profile`, so one line shows all three.
"""

from __future__ import annotations

import os
from typing import TypeVar

import torch

PROFILES = ("smoke", "cpu", "gpu")
T = TypeVar("T")


def profile() -> str:
    """The active profile: ``$GPTHEORY_PROFILE`` if set, else ``gpu`` with CUDA and ``cpu`` without."""
    name = os.environ.get("GPTHEORY_PROFILE", "").strip().lower()
    if not name:
        return "gpu" if torch.cuda.is_available() else "cpu"
    if name not in PROFILES:
        raise ValueError(f"GPTHEORY_PROFILE must be one of {', '.join(PROFILES)}, got {name!r}")
    return name


def by_profile(smoke: T, cpu: T, gpu: T, name: str | None = None) -> T:
    """Return the value for the active profile (or for ``name`` when given)."""
    name = profile() if name is None else name
    if name not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {name!r}")
    return {"smoke": smoke, "cpu": cpu, "gpu": gpu}[name]


def device() -> torch.device:
    """``cuda`` when a GPU is available, else ``cpu``."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")
