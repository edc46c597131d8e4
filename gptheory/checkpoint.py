"""Training checkpoints on disk: the file format's version, writing (whole or not at all) and reading.

A checkpoint is the dict ``gptheory.train`` builds from a run (model and EMA weights, optimiser, generator states,
position in the data order, log; see :func:`gptheory.train.train`), saved with ``torch.save``.
:func:`load_model` rebuilds the trained network from it.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from .atomic import atomic_write
from .denoiser import Denoiser, from_config

CHECKPOINT_VERSION = 2  # 2: the model config names its schedule and prediction


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write a training state to ``path``, whole or not at all (:func:`gptheory.atomic.atomic_write`)."""
    with atomic_write(path) as fh:
        torch.save(state, fh)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`train`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or "version" not in ckpt or "model_config" not in ckpt:
        raise ValueError(f"checkpoint {path} is not a gptheory training checkpoint")
    if ckpt["version"] != CHECKPOINT_VERSION:
        raise ValueError(
            f"checkpoint {path} has format version {ckpt['version']}, this gptheory reads version "
            f"{CHECKPOINT_VERSION}; retrain, or load it with the gptheory release that wrote it"
        )
    return ckpt


def load_model(path: str | os.PathLike, ema: bool = True) -> Denoiser:
    """The EMA (default) or last-iterate model stored in a checkpoint, in eval mode on the CPU.

    The architecture is the config's ``"arch"`` (a DiT when absent; :func:`gptheory.denoiser.from_config`).
    """
    ckpt = load_checkpoint(path)
    model = from_config(ckpt["model_config"])
    model.load_state_dict(ckpt["ema" if ema else "model"])
    return model.eval()
