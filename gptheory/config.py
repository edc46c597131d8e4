"""Typed configurations of the experiments, and the command-line options derived from them.

An experiment is configured by one :class:`ExperimentConfig`, made of four parts that each validate
themselves when built:

* :class:`ProcessConfig` -- the Gaussian process ``(N, d, nu, ell)`` and the seed of its ``Sigma``;
* :class:`ModelConfig` -- the network: the DiT's constructor arguments, or a UNet matched to that DiT's size;
* :class:`gptheory.train.TrainConfig` -- the optimisation;
* :class:`SamplerConfig` -- how many sequences are generated for the metrics, and how.

Its top level holds the training-set size ``n_train`` and the ``seed`` of the data, the initialisation,
the training noise and the sampler. Every field name is unique across the parts, so a flat override
such as ``config.replace(ell=2.0, steps=500, hidden=48)`` is unambiguous, and :func:`add_options` turns
each field into a command-line option (``--n-train``, ``--steps`` ...) with its type and help text, so
a new setting is one new field and nothing else.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import asdict, dataclass, field, fields

from .denoiser import ARCHS, PREDICTIONS
from .dit import ACTIVATIONS, TOKENS
from .profiles import PRECISIONS
from .train import T_SAMPLINGS, TrainConfig
from .validation import nonneg_int, positive_int, real_in

ARCH_NAMES = tuple(ARCHS)
# fields added after results were shipped, per part, with their defaults: to_dict() leaves them out at these values,
# so the cache keys (hashes of to_dict()) of older results stay valid, and from_dict() fills them back in
_ADDED_LATER = {"model": {"arch": "dit", "kernel_size": 3, "levels": 2}, "sampler": {"eval_points": 0}}


def _help(text: str, **extra) -> dict:
    return {"help": text, **extra}


@dataclass(frozen=True)
class ProcessConfig:
    """The data: ``vec(x) ~ N(0, Gamma (x) Sigma)`` with ``Gamma_ij = exp(-(|i-j|/ell)^nu)``."""

    N: int = field(default=16, metadata=_help("sequence length (frames)"))
    d: int = field(default=4, metadata=_help("frame dimension"))
    nu: float = field(default=2.0, metadata=_help("kernel exponent in (0, 2]"))
    ell: float = field(default=4.0, metadata=_help("kernel bandwidth (frames)"))
    sigma_seed: int = field(default=0, metadata=_help("seed of the spatial covariance Sigma"))

    def __post_init__(self) -> None:
        positive_int("N", self.N)
        positive_int("d", self.d)
        real_in("nu", self.nu, 0.0, 2.0, low_open=True)
        real_in("ell", self.ell, 0.0, 1e6, low_open=True)
        nonneg_int("sigma_seed", self.sigma_seed)


@dataclass(frozen=True)
class ModelConfig:
    """The network: the DiT's size and layout (:class:`gptheory.dit.DiT` arguments other than ``N`` and ``d``) and
    the architecture ``arch``. For ``arch="unet"`` (:class:`gptheory.unet.UNet1D`) or ``"diffusers-unet"``
    (:class:`gptheory.diffusers_unet.DiffusersUNet1D`) the DiT fields describe the DiT whose parameter count the UNet
    matches (:func:`gptheory.denoiser.build_model`), and ``levels`` (and for ``"unet"`` ``kernel_size``) shape it.
    """

    hidden: int = field(default=64, metadata=_help("token width"))
    depth: int = field(default=4, metadata=_help("transformer blocks"))
    heads: int = field(default=4, metadata=_help("attention heads per block"))
    tokens: str = field(default="concat", metadata=_help("token layout", choices=TOKENS))
    pos_dim: int | None = field(default=None, metadata=_help("width of the position part (concat layout)"))
    mlp_ratio: float = field(default=4.0, metadata=_help("feed-forward width / token width"))
    activation: str = field(default="gelu", metadata=_help("feed-forward activation", choices=ACTIVATIONS))
    prediction: str = field(default="v", metadata=_help("network output: noise or v", choices=PREDICTIONS))
    arch: str = field(default="dit", metadata=_help("network: the DiT or a UNet of its size", choices=ARCH_NAMES))
    kernel_size: int = field(default=3, metadata=_help("taps of the UNet's convolutions along the frames (odd)"))
    levels: int = field(default=2, metadata=_help("halvings of the frame axis in the UNets"))

    def __post_init__(self) -> None:
        for name in ("hidden", "depth", "heads"):
            positive_int(name, getattr(self, name))
        if self.hidden % self.heads:
            raise ValueError(f"hidden must be divisible by heads, got hidden={self.hidden} and heads={self.heads}")
        if self.pos_dim is not None:
            positive_int("pos_dim", self.pos_dim)
        real_in("mlp_ratio", self.mlp_ratio, 0.0, 64.0, low_open=True)
        for name, options in (
            ("tokens", TOKENS),
            ("activation", ACTIVATIONS),
            ("prediction", PREDICTIONS),
            ("arch", ARCH_NAMES),
        ):
            if getattr(self, name) not in options:
                raise ValueError(f"{name} must be one of {', '.join(options)}, got {getattr(self, name)!r}")
        if positive_int("kernel_size", self.kernel_size) % 2 == 0:
            raise ValueError(f"kernel_size must be an odd positive integer (1, 3, 5, ...), got {self.kernel_size}")
        nonneg_int("levels", self.levels)
        unused = {"dit": ("kernel_size", "levels"), "diffusers-unet": ("kernel_size",), "unet": ()}[self.arch]
        for name in unused:
            if getattr(self, name) != _ADDED_LATER["model"][name]:
                raise ValueError(
                    f"{name}={getattr(self, name)} does not apply to arch={self.arch!r} (the DiT has no convolutions; "
                    f"diffusers' blocks have a fixed 5 taps); leave it at {_ADDED_LATER['model'][name]}"
                )


@dataclass(frozen=True)
class SamplerConfig:
    """Generation for the metrics: ``n_gen`` sequences, ``sample_steps`` Heun steps of the probability-flow ODE."""

    n_gen: int = field(default=2000, metadata=_help("sequences to generate for the metrics"))
    sample_steps: int = field(default=30, metadata=_help("Heun steps of the sampler"))
    record: int = field(default=6, metadata=_help("denoising times whose attention maps are kept"))
    eval_points: int = field(
        default=0, metadata=_help("log-spaced training steps at which samples are generated and measured (0: none)")
    )

    def __post_init__(self) -> None:
        nonneg_int("eval_points", self.eval_points)
        if isinstance(self.n_gen, bool) or not isinstance(self.n_gen, int) or self.n_gen < 2:
            raise ValueError(f"n_gen must be an integer >= 2 (covariances need two samples), got {self.n_gen!r}")
        positive_int("sample_steps", self.sample_steps)
        positive_int("record", self.record)


# TrainConfig fields that are not part of an experiment's identity or are set from its top level
_TRAIN_INTERNAL = ("seed", "log_every", "checkpoint_every")
TRAIN_OPTIONS = tuple(f.name for f in fields(TrainConfig) if f.name not in _TRAIN_INTERNAL)
_TRAIN_HELP = {
    "steps": "optimiser steps",
    "batch_size": "sequences per step",
    "lr": "peak learning rate",
    "warmup": "learning-rate warm-up steps",
    "t0": "early-stopping time",
    "t_sampling": "how training times are drawn",
    "precision": "arithmetic: auto (bf16 on CUDA), fp32 or bf16",
    "compile": "torch.compile the model (CUDA)",
}
_CHOICES = {"t_sampling": T_SAMPLINGS, "precision": PRECISIONS}


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that decides an experiment's result (see the module docstring)."""

    process: ProcessConfig = field(default_factory=ProcessConfig)
    n_train: int = field(default=10000, metadata=_help("training-set size (sequences)"))
    seed: int = field(default=0, metadata=_help("seeds the data, the model, the training noise and the sampler"))
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)

    def __post_init__(self) -> None:
        positive_int("n_train", self.n_train)
        nonneg_int("seed", self.seed)

    def train_config(self, checkpointed: bool = False) -> TrainConfig:
        """The :class:`TrainConfig` to train with, seeded by ``seed``; ``checkpointed``: a checkpoint every tenth of
        the run, so an interrupted run loses at most a tenth."""
        every = max(self.train.steps // 10, 1) if checkpointed else 0
        return dataclasses.replace(self.train, seed=self.seed, checkpoint_every=every)

    def replace(self, **overrides) -> ExperimentConfig:
        """A copy with flat overrides by field name (``ell=2.0``, ``steps=500``); ``None`` keeps a value."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        parts: dict[str, dict] = {"process": {}, "model": {}, "train": {}, "sampler": {}}
        top = {}
        owners = option_owners()
        for k, v in overrides.items():
            if k not in owners:
                raise ValueError(f"unknown setting {k!r}; valid: {', '.join(sorted(owners))}")
            (parts[owners[k]] if owners[k] else top)[k] = v
        new = {p: dataclasses.replace(getattr(self, p), **kw) for p, kw in parts.items() if kw}
        return dataclasses.replace(self, **top, **new)

    def to_dict(self) -> dict:
        """A JSON-able dict of every setting that changes the result (the cache key is made from it)."""
        out = asdict(self)
        for k in _TRAIN_INTERNAL:
            out["train"].pop(k)
        for part, defaults in _ADDED_LATER.items():
            for k, default in defaults.items():
                if out[part][k] == default:
                    out[part].pop(k)
        return out

    @classmethod
    def from_dict(cls, body: dict) -> ExperimentConfig:
        """Inverse of :meth:`to_dict` (fields added later may be missing: they take their defaults)."""
        return cls(
            process=ProcessConfig(**body["process"]),
            n_train=body["n_train"],
            seed=body["seed"],
            model=ModelConfig(**body["model"]),
            train=TrainConfig(**body["train"]),
            sampler=SamplerConfig(**body["sampler"]),
        )


def option_owners() -> dict[str, str]:
    """Every overridable field name -> the part that holds it (``""`` for the top level)."""
    owners = {f.name: "" for f in fields(ExperimentConfig) if f.name not in ("process", "model", "train", "sampler")}
    for part, cls in (("process", ProcessConfig), ("model", ModelConfig), ("sampler", SamplerConfig)):
        owners |= {f.name: part for f in fields(cls)}
    owners |= {name: "train" for name in TRAIN_OPTIONS}
    return owners


def _field_specs() -> list[tuple[str, type, dict]]:
    """(name, scalar type, metadata) of every overridable field, in a stable order."""
    specs = []
    for part in (ProcessConfig, None, ModelConfig, TrainConfig, SamplerConfig):
        if part is None:
            hints = typing.get_type_hints(ExperimentConfig)
            specs += [(f.name, hints[f.name], dict(f.metadata)) for f in fields(ExperimentConfig) if f.metadata]
            continue
        hints = typing.get_type_hints(part)
        for f in fields(part):
            if part is TrainConfig and f.name not in TRAIN_OPTIONS:
                continue
            meta = dict(f.metadata)
            if part is TrainConfig:
                meta = {"help": _TRAIN_HELP.get(f.name, f.name.replace("_", " "))}
                if f.name in _CHOICES:
                    meta["choices"] = _CHOICES[f.name]
            specs.append((f.name, hints[f.name], meta))
    return specs


def _scalar(tp) -> type:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if args else tp


def add_options(
    parser: argparse.ArgumentParser, many: tuple[str, ...] = (), aliases: dict[str, tuple[str, ...]] | None = None
) -> None:
    """Add one ``--option`` per configuration field to ``parser`` (default ``None``: keep the profile's value).

    Fields named in ``many`` take one or more values (``--nu 0.5 1 2``), for sweep grids; ``aliases`` gives
    extra flags for a field (``{"seed": ("--seeds",)}``).
    """
    aliases = aliases or {}
    for name, tp, meta in _field_specs():
        kind = _scalar(tp)
        flag = ["--" + name.replace("_", "-"), *aliases.get(name, ())]
        kw: dict = {"default": None, "help": meta.get("help")}
        if kind is bool:
            parser.add_argument(*flag, dest=name, action="store_true", **kw)
            continue
        if "choices" in meta:
            kw["choices"] = meta["choices"]
        parser.add_argument(*flag, dest=name, type=kind, nargs="+" if name in many else None, **kw)


def options_from(args: argparse.Namespace) -> dict:
    """The configuration overrides given on the command line (fields left at ``None`` are omitted)."""
    return {name: getattr(args, name) for name, _, _ in _field_specs() if getattr(args, name, None) is not None}


__all__ = [
    "ExperimentConfig",
    "ModelConfig",
    "ProcessConfig",
    "SamplerConfig",
    "TRAIN_OPTIONS",
    "add_options",
    "option_owners",
    "options_from",
]
