"""Training checkpoints: what one holds, when a run may resume from it, and the file on disk.

A checkpoint is the dict :func:`training_state` builds from a run of :func:`gptheory.train.train` (model and EMA
weights, optimiser, generator states, position in the data order, log), saved with ``torch.save`` whole or not at
all; :func:`restore_training` puts a run back where it left off, and :func:`load_model` rebuilds the trained network.
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write
from .denoiser import Denoiser, from_config

CHECKPOINT_VERSION = 3  # 2: the model config names its schedule and prediction; 3: convergence settings and state
# training settings that may differ between an interrupted run and its resumption
RESUMABLE_CHANGES = {"log_every", "checkpoint_every", "compile"}


def training_state(tr: Any) -> dict:
    """The checkpoint of a training run in progress (``tr``: the trainer of :func:`gptheory.train.train`)."""
    return {
        "version": CHECKPOINT_VERSION,
        "model_config": tr.model.config(),
        "train_config": asdict(tr.cfg),
        "data_check": _data_check(tr.data),
        "model": {k: v.detach().cpu() for k, v in tr.model.state_dict().items()},
        "ema": {k: v.detach().cpu() for k, v in tr.ema.state_dict().items()},
        "optimizer": _to_cpu(tr.opt.state_dict()),
        "data_gen": tr.data_gen.get_state(),
        "noise_gen": tr.noise_gen.get_state().cpu(),
        "mask_gen": tr.mask_gen.get_state().cpu() if tr.mask_gen is not None else None,
        "perm": tr.perm.clone(),
        "pos": tr.pos,
        "step": tr.step,
        "seconds": tr.seconds,
        "log": list(tr.log),
        "evals": list(tr.evals),
        "last_log": tr.last_log,
        "acc": tr.acc.detach().cpu(),
        "stopper": tr.stopper.state() if tr.stopper is not None else None,
        "stop_reason": tr.stop_reason,
    }


def restore_training(tr: Any, ckpt: dict) -> None:
    """Put the run ``tr`` back where the checkpoint ``ckpt`` left it; ``ValueError`` when the model, a setting that
    decides the result (all but :data:`RESUMABLE_CHANGES`) or the training set differs."""
    if ckpt["model_config"] != tr.model.config():
        raise ValueError(
            f"checkpoint model {ckpt['model_config']} does not match the model to train {tr.model.config()}"
        )
    mine, defaults = asdict(tr.cfg), asdict(type(tr.cfg)())  # a setting added since the checkpoint: its default
    diff = {k: (ckpt["train_config"].get(k, defaults[k]), v) for k, v in mine.items() if k not in RESUMABLE_CHANGES}
    diff = {k: pair for k, pair in diff.items() if _norm(pair[0]) != _norm(pair[1])}
    if diff:
        raise ValueError(f"cannot resume: training settings differ from the checkpoint's (saved, now): {diff}")
    if ckpt["data_check"] != _data_check(tr.data):
        raise ValueError("cannot resume: the training set differs from the one in the checkpoint")
    tr.model.load_state_dict(ckpt["model"])
    tr.ema.load_state_dict(ckpt["ema"])
    tr.opt.load_state_dict(ckpt["optimizer"])
    tr.data_gen.set_state(ckpt["data_gen"])
    tr.noise_gen.set_state(ckpt["noise_gen"].to(tr.noise_gen.get_state().device))
    if tr.mask_gen is not None:
        tr.mask_gen.set_state(ckpt["mask_gen"].to(tr.mask_gen.get_state().device))
    tr.perm, tr.pos, tr.step = ckpt["perm"].clone(), int(ckpt["pos"]), int(ckpt["step"])
    tr.seconds, tr.log = float(ckpt["seconds"]), list(ckpt["log"])
    tr.evals = list(ckpt.get("evals", []))
    tr.last_log, tr.acc = int(ckpt["last_log"]), ckpt["acc"].to(tr.device)
    if tr.stopper is not None and ckpt.get("stopper") is not None:
        tr.stopper.load(ckpt["stopper"])
    tr.stop_reason = ckpt.get("stop_reason", "cap")


def _to_cpu(obj):
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return obj


def _norm(v):
    return list(v) if isinstance(v, tuple) else v


def _data_check(data: torch.Tensor) -> list:
    d = data.detach().double().cpu()
    return [list(d.shape), float(d.sum()), float((d * d).sum())]


def save_checkpoint(state: dict, path: str | os.PathLike) -> None:
    """Write a training state to ``path``, whole or not at all (:func:`gptheory.atomic.atomic_write`)."""
    with atomic_write(path) as fh:
        torch.save(state, fh)


def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a checkpoint written by :func:`gptheory.train.train`."""
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


def trained_seconds(path: str | os.PathLike | None) -> float:
    """The training time (s) already spent by the run whose checkpoint is ``path``: 0 when there is none (a fresh
    start). A resumed point adds it to the wall time of its last session, so that its provenance counts them all."""
    if path is None or not Path(path).is_file():
        return 0.0
    return float(load_checkpoint(path)["seconds"])


def load_model(path: str | os.PathLike, ema: bool = True) -> Denoiser:
    """The EMA (default) or last-iterate model stored in a checkpoint, in eval mode on the CPU.

    The architecture is the config's ``"arch"`` (a DiT when absent; :func:`gptheory.denoiser.from_config`).
    """
    ckpt = load_checkpoint(path)
    model = from_config(ckpt["model_config"])
    model.load_state_dict(ckpt["ema" if ema else "model"])
    return model.eval()
