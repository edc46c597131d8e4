"""One trial: the train-and-measure step every experiment of the book shares, with its random streams named here.

A trial of an :class:`~gptheory.config.ExperimentConfig` is

1. :func:`prepare`: the process (``Sigma`` seeded by ``process.sigma_seed``), its fixed training set, a freshly
   initialised network and the :class:`~gptheory.train.TrainConfig`;
2. :func:`run_trial`: training (:func:`fit`, resumable from a checkpoint, with measurements at chosen steps), generating
   ``sampler.n_gen`` sequences from the EMA weights (recording the attention of a DiT on the way when asked), and
   drawing as many fresh true sequences, the estimators' yardstick.

The experiments (:mod:`gptheory.experiments`) measure what a :class:`Trial` holds, each in its own way.

Random streams. Every random draw comes from ``config.seed`` and the name of what it draws
(:mod:`gptheory.streams`): the training set (``data``), the initial weights (``init``), inside
:func:`gptheory.train.train` the mini-batch order and the training noise (``batches``, ``noise``) and the
validation set (``validation``: :data:`N_VAL` held-out sequences when the configuration trains to convergence), the
sampler's noise (``sampler``) and the true sequences (``true``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch

from .attention import generate_with_attention
from .config import ExperimentConfig
from .convergence import memorisation
from .denoiser import build_model
from .floors import sampling_floor
from .gp import GaussianProcess
from .imputers import exact_conditional_score
from .metrics import Law, paper_relative_error
from .profiles import device as default_device
from .samplers import generate
from .streams import generator, seed_of
from .train import TrainConfig, TrainResult, train, training_set

N_VAL = 256  # held-out sequences of the validation loss, whatever n_train (they never enter training)


class Prepared(NamedTuple):
    """What :func:`prepare` returns (unpacks as ``gp, data, model, train_config``)."""

    gp: GaussianProcess
    data: torch.Tensor
    model: torch.nn.Module
    train_config: TrainConfig


def prepare(config: ExperimentConfig, checkpointed: bool = False) -> Prepared:
    """The process, its fixed training set ``(n_train, N, d)`` (stream ``data``), the freshly initialised network
    (stream ``init``) and the :class:`TrainConfig` of ``config``
    (:meth:`~gptheory.config.ExperimentConfig.train_config`; ``checkpointed``: a checkpoint every tenth of the run)."""
    p = config.process
    gp = GaussianProcess(p.N, p.d, nu=p.nu, ell=p.ell, seed=p.sigma_seed)
    data = training_set(gp, config.n_train, seed=seed_of(config.seed, "data"))
    model = build_model(seed_of(config.seed, "init"), N=p.N, d=p.d, **config.model.__dict__)
    return Prepared(gp, data, model, config.train_config(checkpointed))


@dataclass
class Trial:
    """One trained network and what it generated.

    Attributes:
        gp, data, train_config: as :func:`prepare` made them; result: what :func:`gptheory.train.train` returned
            (``result.ema`` generated the sequences; ``result.evals`` holds the measurements during training).
        x_gen: the generated sequences ``(n_gen, N, d)`` (float32); x_true: as many true ones ``(n_gen, N, d)``
            (float64, stream ``true``).
        generate_seconds: wall time of the generation (s).
        times, maps: with ``attention``: the sampler's times ``(K,)`` from ``T`` down to ``t0`` and every layer's
            attention there ``(K, depth, N, N)`` (:func:`gptheory.attention.generate_with_attention`); else ``None``.
    """

    gp: GaussianProcess
    data: torch.Tensor
    train_config: TrainConfig
    result: TrainResult
    x_gen: torch.Tensor
    x_true: torch.Tensor
    generate_seconds: float
    times: torch.Tensor | None = None
    maps: torch.Tensor | None = None

    @property
    def net(self) -> torch.nn.Module:
        """The network that generated: the EMA of the trained weights."""
        return self.result.ema


def fit(
    config: ExperimentConfig,
    prepared: Prepared,
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    *,
    on_step: Callable[[int, torch.nn.Module], dict] | None = None,
    at_steps: tuple[int, ...] | list[int] = (),
    stop_at: int | None = None,
) -> TrainResult:
    """Train the network :func:`prepare` made for ``config`` (:func:`gptheory.train.train`); when the configuration
    trains to convergence (``patience``), on :data:`N_VAL` held-out sequences (stream ``validation``) scored in
    excess of the process's exact denoiser (its exact conditional denoiser for a network trained on masks).
    ``stop_at``: stop after that many steps, as an interruption would (the first steps of the run, exactly)."""
    gp, data, model, cfg = prepared
    validation = None
    if cfg.patience:  # held-out sequences for the validation loss (gptheory.convergence)
        validation = gp.sample(N_VAL, generator=generator(config.seed, "validation"))
    return train(
        model,
        data,
        cfg,
        checkpoint=checkpoint,
        device=device,
        progress=progress,
        on_step=on_step,
        at_steps=at_steps,
        validation=validation,
        exact_score=_exact(gp, model.schedule, cfg) if validation is not None else None,
        stop_at=stop_at,
    )


def _exact(gp: GaussianProcess, schedule, cfg: TrainConfig) -> Callable[..., torch.Tensor]:
    """The exact score the validation loss is measured in excess of: the process's, or with ``masking`` its exact
    conditional score given each held-out sequence's observed frames."""
    if cfg.masking != "none":
        return exact_conditional_score(gp, schedule)
    return lambda x, t: gp.score(x, t, schedule)


def run_trial(
    config: ExperimentConfig,
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    *,
    prepared: Prepared | None = None,
    attention: bool = False,
    on_step: Callable[[int, torch.nn.Module], dict] | None = None,
    at_steps: tuple[int, ...] | list[int] = (),
) -> Trial:
    """Train the network of ``config``, generate ``config.sampler.n_gen`` sequences (stream ``sampler``) and draw as
    many true ones (stream ``true``).

    Args:
        config: the experiment's configuration.
        checkpoint: training checkpoint; an unfinished run resumes from it, a finished one is reloaded.
        device: default :func:`gptheory.profiles.device`.
        progress: ``tqdm`` bars for training.
        prepared: what :func:`prepare` made for ``config``, when the caller measured the untrained network first
            (made here otherwise).
        attention: generate with :func:`gptheory.attention.generate_with_attention` (Heun, a DiT only) and keep
            the attention maps; else :func:`gptheory.samplers.generate`.
        on_step, at_steps: measurements during training (:func:`gptheory.train.train`).
    """
    if config.train.masking != "none":
        raise ValueError(
            f"masking={config.train.masking!r}: a conditional network cannot generate sequences unconditionally; "
            "measure it with gptheory.experiments.imputation"
        )
    dev = torch.device(device) if device is not None else default_device()
    if prepared is None:
        prepared = prepare(config, checkpointed=checkpoint is not None)
    gp, data, model, cfg = prepared
    res = fit(config, prepared, checkpoint, dev, progress, on_step=on_step, at_steps=at_steps)
    s, seed = config.sampler, seed_of(config.seed, "sampler")
    times = maps = None
    start = time.perf_counter()
    if attention:
        x_gen, times, maps = generate_with_attention(
            res.ema, s.n_gen, steps=s.sample_steps, t0=cfg.t0, method="heun", seed=seed
        )
    else:
        x_gen = generate(res.ema, s.n_gen, steps=s.sample_steps, t0=cfg.t0, seed=seed, progress=False)
    generate_seconds = time.perf_counter() - start
    x_true = gp.sample(s.n_gen, generator=generator(config.seed, "true"))
    return Trial(gp, data, cfg, res, x_gen, x_true, generate_seconds, times, maps)


def calibrated(trial: Trial, config: ExperimentConfig) -> dict:
    """What every record of generated sequences measures of one trial (the fields of
    :class:`gptheory.convergence.Calibrated` and ``paper_relative_error``), as keyword arguments of the record:

    * ``floor``: the sampling floor of ``n_gen`` draws of the law at ``t0`` (what a sampler stopped there draws);
    * ``paper_relative_error``: :func:`gptheory.metrics.paper_relative_error` of the generated sequences (against
      the law at ``t0``) over as many training sequences (against the data law), ``relative_count = min(n_train,
      n_gen)`` of each;
    * ``memorisation`` of the generated sequences against the training set and the true sequences; how training
      ended (``stop_reason``, ``best_step``) and the validation curve ``validation: [[step, loss], ...]``.
    """
    gp, res, n_gen = trial.gp, trial.result, config.sampler.n_gen
    law, law_gen = Law.data(gp), Law.at(gp, trial.train_config.t0, res.ema.schedule)
    m = min(config.n_train, n_gen)
    return {
        "floor": sampling_floor(law_gen, n_gen, seed=config.seed),
        "paper_relative_error": paper_relative_error(trial.x_gen[:m], law_gen, trial.data[:m], law),
        "relative_count": m,
        "memorisation": memorisation(trial.x_gen, trial.data, trial.x_true),
        "stop_reason": res.stop_reason,
        "best_step": res.best_step,
        "validation": [list(v) for v in res.validation],
    }


__all__ = ["N_VAL", "Prepared", "Trial", "calibrated", "fit", "prepare", "run_trial"]
