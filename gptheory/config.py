"""The one typed configuration of the package's trainings, and the command-line options derived from it.

A configuration is a frozen dataclass made of *parts* (each a dataclass that validates itself when built) and a few
top-level fields; :class:`Configuration` gives every such composite the same four operations:
:meth:`~Configuration.replace` with flat overrides, :meth:`~Configuration.to_dict` (the cache key is made from it),
:meth:`~Configuration.from_dict`, and the options of :func:`add_options`. Two composites:

* :class:`ExperimentConfig` -- a DiT (or UNet) learning Gaussian-process sequences: :class:`ProcessConfig` (the data),
  :class:`ModelConfig` (the network), :class:`gptheory.train.TrainConfig` (the optimisation), :class:`SamplerConfig`
  (generation for the metrics), and at the top the training-set size ``n_train`` and the ``seed``;
* :class:`VideoConfig` -- the bouncing ball of Section 6.2: :class:`BallConfig` (the videos), :class:`VAEConfig`
  (the frame VAE), the same :class:`ModelConfig` and :class:`~gptheory.train.TrainConfig` for the latent DiT, and at
  the top ``n_train``, ``n_eval``, ``seed`` and ``sample_steps``.

Every field name is unique within a composite, so a flat override such as ``config.replace(ell=2.0, steps=500,
hidden=48)`` is unambiguous. Each field carries its help text and choices (:func:`gptheory.validation.option`), and
:func:`add_options` turns each into a command-line option (``--n-train``, ``--steps`` ...), so a new setting is one new
field and nothing else: it reaches the command line, the sweeps (:meth:`~Configuration.replace`), the cache key
(:meth:`~Configuration.to_dict`; a field marked ``later`` is left out at its default so older keys stay valid) and
the code that receives the part. Each rule is written once: :class:`ModelConfig` calls the very functions the networks
call (:func:`gptheory.dit.dit_args`, :func:`gptheory.denoiser.check_arch`), so a configuration that passes is never
rejected later by the network.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import typing
from dataclasses import dataclass, field, fields

from .denoiser import ARCHS, PREDICTIONS, SHAPE_DEFAULTS, check_arch
from .dit import ACTIVATIONS, TOKENS, dit_args
from .recipe import TrainConfig
from .validation import check_geometry, nonneg_int, one_of, option, positive_int, real_in


@dataclass(frozen=True)
class ProcessConfig:
    """The data: ``vec(x) ~ N(0, Gamma (x) Sigma)`` with ``Gamma_ij = exp(-(|i-j|/ell)^nu)``."""

    N: int = field(default=16, metadata=option("sequence length (frames)"))
    d: int = field(default=4, metadata=option("frame dimension"))
    nu: float = field(default=2.0, metadata=option("kernel exponent in (0, 2]"))
    ell: float = field(default=4.0, metadata=option("kernel bandwidth (frames)"))
    sigma_seed: int = field(default=0, metadata=option("seed of the spatial covariance Sigma"))

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
    Validated by the networks' own rules (:func:`gptheory.dit.dit_args`, :func:`gptheory.denoiser.check_arch`).
    """

    hidden: int = field(default=64, metadata=option("token width"))
    depth: int = field(default=4, metadata=option("transformer blocks"))
    heads: int = field(default=4, metadata=option("attention heads per block"))
    tokens: str = field(default="concat", metadata=option("token layout", TOKENS))
    pos_dim: int | None = field(default=None, metadata=option("width of the position part (concat layout)"))
    mlp_ratio: float = field(default=4.0, metadata=option("feed-forward width / token width"))
    activation: str = field(default="gelu", metadata=option("feed-forward activation", ACTIVATIONS))
    prediction: str = field(default="v", metadata=option("network output: noise or v", PREDICTIONS))
    arch: str = field(default="dit", metadata=option("network: the DiT or a UNet of its size", ARCHS, later=True))
    kernel_size: int = field(
        default=SHAPE_DEFAULTS["kernel_size"],
        metadata=option("taps of the UNet's convolutions along the frames (odd)", later=True),
    )
    levels: int = field(
        default=SHAPE_DEFAULTS["levels"], metadata=option("halvings of the frame axis in the UNets", later=True)
    )

    def __post_init__(self) -> None:
        dit_args(
            self.hidden, self.depth, self.heads, self.tokens, self.pos_dim, self.mlp_ratio, activation=self.activation
        )
        one_of("prediction", self.prediction, PREDICTIONS)
        check_arch(self.arch, self.kernel_size, self.levels)


@dataclass(frozen=True)
class SamplerConfig:
    """Generation for the metrics: ``n_gen`` sequences, ``sample_steps`` Heun steps of the probability-flow ODE; for
    imputation, ``n_draws`` draws given each of ``n_cond`` held-out sequences."""

    n_gen: int = field(default=2000, metadata=option("sequences to generate for the metrics"))
    sample_steps: int = field(default=30, metadata=option("Heun steps of the sampler"))
    record: int = field(default=6, metadata=option("denoising times whose attention maps are kept"))
    eval_points: int = field(
        default=0,
        metadata=option("log-spaced training steps at which samples are generated and measured (0: none)", later=True),
    )
    n_cond: int = field(default=64, metadata=option("imputation: held-out sequences conditioned on", later=True))
    n_draws: int = field(default=100, metadata=option("imputation: draws given each sequence", later=True))

    def __post_init__(self) -> None:
        nonneg_int("eval_points", self.eval_points)
        positive_int("n_cond", self.n_cond)
        if isinstance(self.n_draws, bool) or not isinstance(self.n_draws, int) or self.n_draws < 39:
            raise ValueError(
                f"n_draws must be an integer >= 39 (a central 95% interval between order statistics), got "
                f"{self.n_draws!r}"
            )
        if isinstance(self.n_gen, bool) or not isinstance(self.n_gen, int) or self.n_gen < 2:
            raise ValueError(f"n_gen must be an integer >= 2 (covariances need two samples), got {self.n_gen!r}")
        positive_int("sample_steps", self.sample_steps)
        positive_int("record", self.record)


class Configuration:
    """What every composite configuration (a frozen dataclass of parts and top-level fields) can do.

    A *part* is a field whose type is a dataclass; an *option* is a top-level field or a part's field not marked
    ``internal`` (:func:`gptheory.validation.option`). Subclasses have a ``train`` part and a top-level ``seed``.
    """

    train: TrainConfig
    seed: int

    @classmethod
    def parts(cls) -> dict[str, type]:
        """Part name -> its dataclass, in field order."""
        return {name: tp for name, tp in _hints(cls).items() if dataclasses.is_dataclass(tp)}

    @classmethod
    def options(cls) -> tuple[tuple[str, str, type, dict], ...]:
        """``(name, part, type, metadata)`` of every option in a stable order (``part`` is ``""`` at the top)."""
        return _options(cls)

    @classmethod
    def owners(cls) -> dict[str, str]:
        """Every option name -> the part that holds it (``""`` for the top level)."""
        return {name: part for name, part, _, _ in cls.options()}

    def replace(self, **overrides):
        """A copy with flat overrides by field name (``ell=2.0``, ``steps=500``); ``None`` keeps a value."""
        owners = self.owners()
        parts: dict[str, dict] = {p: {} for p in self.parts()}
        top = {}
        for k, v in overrides.items():
            if v is None:
                continue
            if k not in owners:
                raise ValueError(f"unknown setting {k!r}; valid: {', '.join(sorted(owners))}")
            (parts[owners[k]] if owners[k] else top)[k] = v
        new = {p: dataclasses.replace(getattr(self, p), **kw) for p, kw in parts.items() if kw}
        return dataclasses.replace(self, **top, **new)

    def to_dict(self) -> dict:
        """A JSON-able dict of every setting that changes the result (the cache key is made from it): the parts as
        dicts of their options, without ``internal`` fields, and without ``later`` fields at their defaults."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in self.parts():
                value = {g.name: getattr(value, g.name) for g in fields(value) if _keyed(g, getattr(value, g.name))}
            elif not _keyed(f, value):
                continue
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, body: dict):
        """Inverse of :meth:`to_dict` (fields missing from ``body`` take their defaults)."""
        parts = cls.parts()
        return cls(**{k: parts[k](**v) if k in parts else v for k, v in body.items()})

    def train_config(self, checkpointed: bool = False) -> TrainConfig:
        """The :class:`TrainConfig` to train with, seeded by ``seed``; ``checkpointed``: a checkpoint every tenth of
        the run, so an interrupted run loses at most a tenth."""
        every = max(self.train.steps // 10, 1) if checkpointed else 0
        return dataclasses.replace(self.train, seed=self.seed, checkpoint_every=every)


def _keyed(f: dataclasses.Field, value: object) -> bool:
    return not f.metadata.get("internal") and not (f.metadata.get("later") and value == f.default)


@functools.cache
def _hints(cls: type) -> dict[str, type]:
    return {f.name: typing.get_type_hints(cls)[f.name] for f in fields(cls)}


@functools.cache
def _options(cls: type) -> tuple[tuple[str, str, type, dict], ...]:
    out = []
    for name, tp in _hints(cls).items():
        if dataclasses.is_dataclass(tp):
            out += [(g.name, name, _hints(tp)[g.name], g.metadata) for g in fields(tp)]
        else:
            out += [(f.name, "", tp, f.metadata) for f in fields(cls) if f.name == name]
    return tuple(o for o in out if not o[3].get("internal"))


@dataclass(frozen=True)
class ExperimentConfig(Configuration):
    """Everything that decides a Gaussian-process experiment's result (see the module docstring)."""

    process: ProcessConfig = field(default_factory=ProcessConfig)
    n_train: int = field(default=10000, metadata=option("training-set size (sequences)"))
    seed: int = field(default=0, metadata=option("seeds the data, the model, the training noise and the sampler"))
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    protocol: int = field(
        default=2,
        metadata=option("the one protocol: independent random streams, validation-loss stopping, the law at t0", (2,)),
    )

    def __post_init__(self) -> None:
        positive_int("n_train", self.n_train)
        nonneg_int("seed", self.seed)
        if self.protocol != 2:
            raise ValueError(
                f"protocol={self.protocol!r}: the only protocol is 2 (the first, with coupled random streams and "
                "fixed budgets, was removed)"
            )
        check_arch(self.model.arch, self.model.kernel_size, self.model.levels, N=self.process.N)
        if (self.model.arch == "conditional-dit") != (self.train.masking != "none"):
            raise ValueError(
                f"arch={self.model.arch!r} with masking={self.train.masking!r}: arch='conditional-dit' trains on "
                "random masks (masking random, block, mixed or forecast), every other arch with masking='none'"
            )


# ------------------------------------------------------------------------------------ the bouncing ball (Section 6.2)
@dataclass(frozen=True)
class BallConfig:
    """The videos: a ball of ``radius`` bouncing at ``speed`` in a ``size x size`` frame, ``frames`` per video."""

    size: int = field(default=32, metadata=option("frame side (pixels)"))
    radius: float = field(default=3.0, metadata=option("ball radius (pixels)"))
    speed: float = field(default=2.0, metadata=option("ball speed (pixels per frame)"))
    frames: int = field(default=32, metadata=option("frames per video (one DiT token each)"))

    def __post_init__(self) -> None:
        check_geometry(self.size, self.radius, self.speed, self.frames, T_name="frames")


def latent_levels(size: int, latent_size: int) -> int:
    """The number of stride-2 stages from ``size`` down to ``latent_size``; a clear error when there is none."""
    size, latent_size = positive_int("size", size), positive_int("latent_size", latent_size)
    levels = round(math.log2(size / latent_size)) if latent_size < size else 0
    valid = [size >> k for k in range(1, 8) if size % (1 << k) == 0]
    if levels < 1 or latent_size << levels != size:
        raise ValueError(
            f"latent_size must be the frame size {size} halved one or more times ({', '.join(map(str, valid))}), "
            f"got latent_size={latent_size}"
        )
    return levels


@dataclass(frozen=True)
class VAEConfig:
    """The frame VAE (:mod:`gptheory.bouncing_ball.vae`): its latent map ``(latent_channels, latent_size,
    latent_size)`` and first width ``vae_width``; its training, ``vae_steps`` AdamW updates on ``vae_batch`` fresh
    frames at peak rate ``vae_lr`` with KL weight ``vae_beta``."""

    latent_size: int = field(default=4, metadata=option("side of the latent map (the frame side halved)"))
    latent_channels: int = field(default=1, metadata=option("channels of the latent map"))
    vae_width: int = field(default=8, metadata=option("channels of the VAE's first convolution"))
    vae_steps: int = field(default=2000, metadata=option("VAE optimiser steps"))
    vae_batch: int = field(default=64, metadata=option("frames per VAE step"))
    vae_lr: float = field(default=2e-3, metadata=option("VAE peak learning rate"))
    vae_beta: float = field(default=1.0, metadata=option("weight of the VAE's KL term"))
    seed: int = field(default=0, metadata=option("seed of the frames and the latent noise", internal=True))
    checkpoint_every: int = field(default=0, metadata=option("steps between checkpoints", internal=True))

    def __post_init__(self) -> None:
        for name in ("latent_size", "latent_channels", "vae_width", "vae_steps", "vae_batch"):
            positive_int(name, getattr(self, name))
        real_in("vae_lr", self.vae_lr, 0.0, 1.0, low_open=True)
        real_in("vae_beta", self.vae_beta, 0.0, 1e3)
        nonneg_int("seed", self.seed)
        nonneg_int("checkpoint_every", self.checkpoint_every)


def _video_train() -> TrainConfig:
    # Latent videos have no exact denoiser, so the validation loss is the raw one, most of it irreducible: progress
    # is counted against its first value (gptheory.convergence.Stopper), and at min_delta = 1e-4 a decline of 0.03%
    # per check never stopped (still falling at 18000 steps). 1e-3 of it per 200 steps counts as progress.
    return TrainConfig(
        steps=30000, batch_size=64, lr=2e-3, warmup=200, t0=0.01, t_sampling="log_snr", precision="fp32",
        patience=3, eval_every=200, min_delta=1e-3,
    )  # fmt: skip


@dataclass(frozen=True)
class VideoConfig(Configuration):
    """Every setting of the latent-video experiment (:mod:`gptheory.bouncing_ball.experiment`): the videos, the VAE,
    the latent DiT and its optimisation, and at the top the video counts, the seed and the sampler's Heun steps.
    The DiT trains to convergence of its validation loss (``steps`` is the cap), every draw from its own named random
    stream (:mod:`gptheory.streams`)."""

    ball: BallConfig = field(default_factory=BallConfig)
    n_train: int = field(default=6000, metadata=option("training videos"))
    n_eval: int = field(default=128, metadata=option("videos of each kind generated and measured"))
    seed: int = field(default=0, metadata=option("seeds the videos, the VAE, the DiT and the sampler"))
    vae: VAEConfig = field(default_factory=VAEConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=_video_train)
    sample_steps: int = field(default=30, metadata=option("Heun steps of the sampler"))

    def __post_init__(self) -> None:
        for name in ("n_train", "n_eval", "sample_steps"):
            positive_int(name, getattr(self, name))
        nonneg_int("seed", self.seed)
        latent_levels(self.ball.size, self.vae.latent_size)
        check_arch(self.model.arch, self.model.kernel_size, self.model.levels, N=self.ball.frames)

    @property
    def latent_dim(self) -> int:
        """Numbers per frame in the latent (one DiT token)."""
        return self.vae.latent_channels * self.vae.latent_size**2

    def vae_config(self, checkpointed: bool = False) -> VAEConfig:
        """The :class:`VAEConfig` to train with, seeded by ``seed``; ``checkpointed`` as in :meth:`train_config`."""
        every = max(self.vae.vae_steps // 10, 1) if checkpointed else 0
        return dataclasses.replace(self.vae, seed=self.seed, checkpoint_every=every)


# ------------------------------------------------------------------------------------------------- command line
def option_owners(config: type[Configuration] = ExperimentConfig) -> dict[str, str]:
    """Every overridable field name of ``config`` -> the part that holds it (``""`` for the top level)."""
    return config.owners()


def _scalar(tp) -> type:
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    return args[0] if args else tp


def add_options(
    parser: argparse.ArgumentParser,
    config: type[Configuration] = ExperimentConfig,
    many: tuple[str, ...] = (),
    aliases: dict[str, tuple[str, ...]] | None = None,
) -> None:
    """Add one ``--option`` per option of ``config`` to ``parser`` (default ``None``: keep the profile's value), with
    the field's help and choices.

    Fields named in ``many`` take one or more values (``--nu 0.5 1 2``), for sweep grids; ``aliases`` gives
    extra flags for a field (``{"seed": ("--seeds",)}``).
    """
    aliases = aliases or {}
    for name, _, tp, meta in config.options():
        kind = _scalar(tp)
        flag = ["--" + name.replace("_", "-"), *aliases.get(name, ())]
        kw: dict = {"default": None, "help": meta.get("help")}
        if kind is bool:
            parser.add_argument(*flag, dest=name, action="store_true", **kw)
            continue
        if "choices" in meta:
            kw["choices"] = meta["choices"]
        parser.add_argument(*flag, dest=name, type=kind, nargs="+" if name in many else None, **kw)


def options_from(args: argparse.Namespace, config: type[Configuration] = ExperimentConfig) -> dict:
    """The configuration overrides given on the command line (fields left at ``None`` are omitted)."""
    return {name: getattr(args, name) for name in config.owners() if getattr(args, name, None) is not None}


TRAIN_OPTIONS = tuple(name for name, part in ExperimentConfig.owners().items() if part == "train")

__all__ = [
    "BallConfig",
    "Configuration",
    "ExperimentConfig",
    "ModelConfig",
    "ProcessConfig",
    "SamplerConfig",
    "TRAIN_OPTIONS",
    "VAEConfig",
    "VideoConfig",
    "add_options",
    "latent_levels",
    "option_owners",
    "options_from",
]
