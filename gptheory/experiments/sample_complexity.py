"""Theorem 2 and Figure 4(a): how the error of a trained DiT falls with the number ``n`` of training sequences.

Each grid point runs one trial (:func:`gptheory.trial.run_trial`: a DiT trained *to convergence* of its excess
validation loss on ``n`` sequences of one process, ``n_gen`` generated sequences, as many fresh true ones) and
measures them with :class:`gptheory.metrics.CovarianceErrors`, each set against the law it should follow and beside
its sampling floor (:mod:`gptheory.floors`):

* the DiT's samples against the law at ``t0`` (the sampler stops there), floor at ``n_gen``;
* the ``n`` training sequences and ``n_gen`` fresh true ones against the data law;
* two yardsticks fitted to the same ``n`` sequences and sampled at ``t0`` like the DiT: the Kronecker
  maximum-likelihood fit (:func:`gptheory.fitting.fit_kronecker`) and the parametric one
  (:func:`gptheory.fitting.fit_parametric`, ``nu``, ``ell`` and ``Sigma``);
* the paper's relative error on equal counts (:func:`gptheory.metrics.paper_relative_error`) and the memorisation
  ratio (:func:`gptheory.convergence.memorisation`).

Reading the sweeps, on the excess over the floor and paired by seed (:mod:`gptheory.statistics`):
:func:`excess_by_seed`, :func:`decay_verdicts` (per-seed slopes and the plateau test), :func:`order_verdicts` (the
paper's ordering at each ``n``), and the figure :func:`plot_sample_complexity`; :func:`sample_complexity` returns both
sweeps. Lemma 12 (the early-stopping perturbation) is exact here: :mod:`gptheory.early_stopping`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .. import metrics
from ..config import ExperimentConfig, ModelConfig, ProcessConfig, SamplerConfig
from ..convergence import Calibrated
from ..fitting import fit_kronecker, fit_parametric
from ..floors import excess, sampling_floor, squared_excess
from ..metrics import CovarianceErrors, Law
from ..recipe import TrainConfig
from ..results import Record, by_process, setting
from ..statistics import ordered, verdict
from ..streams import generator
from ..sweep import Sweep, run_sweep
from ..trial import calibrated, run_trial
from ..truncation import truncation_length
from ..unroll import condition_number

NAME = "sample_complexity"
BAND_TOL = 1e-2  # the tolerance of the band J reported with each point (unroll.truncation_length)


@dataclass
class SampleComplexity(Calibrated, Record):
    """One grid point of the sample-complexity sweeps.

    Attributes:
        dit: errors of the DiT's ``n_gen`` generated sequences; train: of the ``n`` training sequences;
        yardstick: of ``n_gen`` draws from the fitted ``Gamma_hat (x) Sigma_hat``; yardstick_exact: of that fit
        itself (no sampling noise); truth: of ``n_gen`` fresh true sequences (the estimator's floor at ``n_gen``).
        paper_relative_error: the paper's relative error on equal counts (see below).
        kappa, kappa_t0: condition numbers of ``Gamma (x) Sigma`` and of ``alpha^2 Gamma (x) Sigma + sigma^2 I``
        at ``t0``; J: the band of Corollary 1 at tolerance :data:`BAND_TOL`.
        train_seconds, generate_seconds, steps, final_loss: of the training run.
        Gamma_hat: the DiT samples' whitened temporal-kernel estimate ``(N, N)``.

    ``dit``, ``yardstick`` and ``parametric`` are measured against the law at ``t0`` (what a sampler stopped there
    draws), ``train`` and ``truth`` against the data law, each beside its floor:

        floor: the sampling floor of ``n_gen`` draws of the law at ``t0``; train_floor: of ``n`` draws of the data law.
        parametric: errors of ``n_gen`` draws at ``t0`` of the maximum-likelihood ``(nu, ell, Sigma)`` of the same
            ``n`` sequences (:func:`gptheory.fitting.fit_parametric`), told the kernel family;
            parametric_nu, parametric_ell: its estimates.
        paper_relative_error: the paper's relative error on ``m = min(n, n_gen)`` sequences of each
            (:func:`gptheory.metrics.paper_relative_error`), ``m`` recorded as ``relative_count``.
        memorisation: nearest-neighbour distances of the generated sequences to the training set against the fresh
            true ones (:func:`gptheory.convergence.memorisation`).
        stop_reason, best_step, validation: how training ended (:class:`gptheory.train.TrainResult`); ``steps`` is
            the step it stopped at.
    """

    NAME = NAME

    dit: CovarianceErrors
    train: CovarianceErrors
    yardstick: CovarianceErrors
    yardstick_exact: CovarianceErrors
    truth: CovarianceErrors
    paper_relative_error: float
    kappa: float
    kappa_t0: float
    J: int
    train_seconds: float
    generate_seconds: float
    steps: int
    final_loss: float
    Gamma_hat: np.ndarray
    train_floor: CovarianceErrors | None = None
    parametric: CovarianceErrors | None = None
    parametric_nu: float = math.nan
    parametric_ell: float = math.nan


def run_sample_complexity(
    config: ExperimentConfig,
    checkpoint: str | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> SampleComplexity:
    """Train on ``config.n_train`` sequences, generate ``config.sampler.n_gen``, measure (:class:`SampleComplexity`)."""
    trial = run_trial(config, checkpoint, device, progress)
    gp, data, cfg, res, x_gen = trial.gp, trial.data, trial.train_config, trial.result, trial.x_gen
    n_gen, schedule = config.sampler.n_gen, res.ema.schedule
    law, law_t0 = Law.data(gp), Law.at(gp, cfg.t0, schedule)
    G_fit, S_fit = fit_kronecker(data)
    fit = fit_parametric(data)
    kron, param = Law.kronecker(G_fit, S_fit, gp.Sigma), Law.kronecker(fit.Gamma, fit.Sigma, gp.Sigma)
    g = generator(config.seed, "yardstick")
    return SampleComplexity(
        dit=CovarianceErrors.of_samples(x_gen, law_t0),
        train=CovarianceErrors.of_samples(data, law),
        yardstick=CovarianceErrors.of_samples(kron.noised(cfg.t0, schedule).sample(n_gen, g), law_t0),
        yardstick_exact=CovarianceErrors.of_pairs(kron.pairs, kron.mean, law),
        truth=CovarianceErrors.of_samples(trial.x_true, law),
        kappa=float(gp.spectrum.max() / gp.spectrum.min().clamp(min=1e-300)),
        kappa_t0=condition_number(gp, cfg.t0, schedule),
        J=truncation_length(gp.nu, gp.ell, gp.N, BAND_TOL),
        train_seconds=res.seconds,
        generate_seconds=trial.generate_seconds,
        steps=res.steps,
        final_loss=res.log[-1]["loss"],
        Gamma_hat=metrics.temporal_kernel_whitened(metrics.pair_covariance(x_gen), gp.Sigma).numpy(),
        train_floor=sampling_floor(law, config.n_train, seed=config.seed),
        parametric=CovarianceErrors.of_samples(param.noised(cfg.t0, schedule).sample(n_gen, g), law_t0),
        parametric_nu=fit.nu,
        parametric_ell=fit.ell,
        **calibrated(trial, config),
    )


def columns(p: SampleComplexity) -> dict:
    """The scalar metrics of one row of ``results.csv``."""
    out = {}
    for part in ("dit", "train", "yardstick", "yardstick_exact", "truth", "train_floor", "parametric"):
        if getattr(p, part) is not None:
            out |= {f"{part}.{k}": v for k, v in getattr(p, part).__dict__.items()}
    keys = ("paper_relative_error", "kappa", "kappa_t0", "J", "train_seconds", "generate_seconds", "final_loss")
    keys += ("steps", "parametric_nu", "parametric_ell")
    return out | {k: getattr(p, k) for k in keys} | p.calibrated_columns()


# ---------------------------------------------------------------------------------------------- analysis
PARTS = ("dit", "yardstick", "parametric")  # the sets of n_gen draws at t0, whose floor is ``floor``


def excess_by_seed(
    points: list[SampleComplexity], metric: str = "temporal", part: str = "dit", squared: bool = False
) -> dict:
    """For each process ``(nu, ell)``, ``{n: {seed: excess}}``: the part of ``part``'s error (one of :data:`PARTS`,
    drawn at ``t0``) that the sampling floor at ``n_gen`` does not explain, :func:`gptheory.floors.excess`; with
    ``squared``, the untruncated ``error^2 - floor^2`` in units of ``floor^2`` (negative when the error is below the
    floor), the number the verdicts are drawn on: it has no zero-truncation and no logarithm to bias it."""
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS} (the sets measured against the floor at n_gen), got {part!r}")
    out: dict = {}
    for key, pts in by_process(points).items():
        for p in pts:
            err, floor = getattr(getattr(p, part), metric), getattr(p.floor, metric)
            e = squared_excess(err, floor) if squared else excess(err, floor)
            out.setdefault(key, {}).setdefault(setting(p, "n_train"), {})[setting(p, "seed")] = e
    return out


def decay_verdicts(points: list[SampleComplexity], metric: str = "temporal", margin: float = 0.2) -> dict:
    """Per process, on the squared excess (:func:`excess_by_seed` with ``squared``, paired by seed), as relative
    drops ``(e_a - e_b) / max(e_a, 1)`` (``e`` in units of the floor squared, so an excess below the floor counts as
    the floor): ``"falls"``, the verdict (:func:`gptheory.statistics.verdict`) on the drop from the smallest to the
    largest ``n``, and ``"still_falls"``, on the drop over the last segment, where a relative change inside
    ``(-margin, margin)`` is negligible (``fails`` there: a plateau, or a rise). The floor is the same at every ``n``
    (it depends on ``n_gen``), so these are drops of the squared error itself."""
    out = {}
    for key, by_n in excess_by_seed(points, metric, squared=True).items():
        ns = sorted(by_n)
        out[key] = {
            "falls": verdict(_drop(by_n, ns[0], ns[-1])),
            "still_falls": verdict(_drop(by_n, ns[-2], ns[-1]), margin=margin) if len(ns) > 2 else verdict([]),
        }
    return out


def _drop(by_n: dict, a: int, b: int) -> list[float]:
    """Per seed that has both, the relative drop ``(e_a - e_b) / max(e_a, 1)`` from ``n = a`` to ``n = b``."""
    return [(by_n[a][s] - by_n[b][s]) / max(by_n[a][s], 1.0) for s in sorted(set(by_n[a]) & set(by_n[b]))]


def versus_verdicts(points: list[SampleComplexity], other: str = "yardstick", metric: str = "temporal") -> dict:
    """For each process and ``n``, the verdict on "the DiT's error is above ``other``'s" (one of :data:`PARTS`), on
    the per-seed differences of their squared excess errors (paired by seed): ``{(key, n): Verdict}``."""
    dit, ref = excess_by_seed(points, metric, squared=True), excess_by_seed(points, metric, other, squared=True)
    out = {}
    for key in sorted(dit):
        for n in sorted(dit[key]):
            seeds = sorted(set(dit[key][n]) & set(ref[key][n]))
            out[(key, n)] = verdict([dit[key][n][s] - ref[key][n][s] for s in seeds])
    return out


def order_verdicts(points: list[SampleComplexity], axis: str, metric: str = "temporal") -> dict[int, tuple]:
    """The paper's ordering at each ``n``, as :func:`gptheory.statistics.ordered` on the per-seed squared excess
    errors in units of each kernel's floor squared (paired by seed): error decreasing in ``nu`` (``axis="nu"``) or
    increasing in ``ell`` (``"ell"``). ``{n: (outcome, [Verdict per adjacent pair])}``, the settings from "should be
    best" to "should be worst"."""
    if axis not in ("nu", "ell"):
        raise ValueError(f"axis must be 'nu' or 'ell', got {axis!r}")
    curves = excess_by_seed(points, metric, squared=True)
    fixed = {k[1] if axis == "nu" else k[0] for k in curves}  # the other setting: one value in one series
    if len(fixed) > 1:
        other = "ell" if axis == "nu" else "nu"
        raise ValueError(f"points must be one {axis} series (one {other}), got {other} in {sorted(fixed)}")
    keys = sorted(curves, key=lambda k: -k[0] if axis == "nu" else k[1])
    ns = sorted(set.intersection(*(set(curves[k]) for k in keys)))
    return {n: ordered([curves[k][n] for k in keys]) for n in ns}


def plot_sample_complexity(points: list[SampleComplexity], metric: str = "temporal"):
    """The excess of ``metric`` over its floor against ``n`` on log-log axes, one line per process (``nu``, ``ell``),
    mean over seeds with each seed drawn as a dot; the Kronecker yardstick dashed. Returns the matplotlib ``Figure``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
    dit, kron = excess_by_seed(points, metric), excess_by_seed(points, metric, "yardstick")
    for k, key in enumerate(sorted(dit)):
        ns = sorted(dit[key])
        for n in ns:
            ax.semilogx([n] * len(dit[key][n]), list(dit[key][n].values()), "o", color=f"C{k}", alpha=0.45, ms=4)
        label = f"DiT, $\\nu$={key[0]:g}, $\\ell$={key[1]:g}"
        ax.semilogx(ns, [np.mean(list(dit[key][n].values())) for n in ns], "-", color=f"C{k}", label=label)
        ax.semilogx(ns, [np.mean(list(kron[key][n].values())) for n in ns], "--", color=f"C{k}", alpha=0.7)
    ax.set_xlabel("training sequences n")
    ax.set_ylabel(f"excess {metric} error over the floor")
    ax.set_title("solid: DiT; dashed: Kronecker fit to the same n")
    ax.legend(fontsize=8)
    return fig


def sample_complexity(profile: str | None = None, progress: bool = True) -> dict:
    """Both Figure 4(a) sweeps of ``profile`` as :class:`gptheory.sweep.SweepResult` by name: shipped or cached
    points are loaded, missing ones trained (and cached)."""
    return {s.name: run_sweep(s, profile, out=None, progress=progress) for s in SWEEPS}


# ------------------------------------------------------------------------------------------------- sweeps
# Trained to convergence of the excess validation loss (gptheory.convergence): ``steps`` is the cap.
SAMPLE_COMPLEXITY = {
    "smoke": ExperimentConfig(
        process=ProcessConfig(N=8, d=2, nu=2.0, ell=1.0),
        n_train=64,
        model=ModelConfig(hidden=16, depth=2, heads=2),
        train=TrainConfig(
            steps=200, batch_size=32, lr=3e-3, warmup=5, t0=0.01, t_sampling="log_snr", precision="fp32",
            patience=2, eval_every=20, min_delta=1e-4,
        ),
        sampler=SamplerConfig(n_gen=200, sample_steps=8, record=1),
    ),
    "cpu": ExperimentConfig(
        process=ProcessConfig(N=16, d=4, nu=2.0, ell=1.0),
        n_train=1024,
        model=ModelConfig(hidden=64, depth=4, heads=4),
        train=TrainConfig(
            steps=12000, batch_size=64, lr=2e-3, warmup=150, t0=0.01, t_sampling="log_snr", precision="fp32",
            patience=6, eval_every=100, min_delta=1e-4,
        ),
        sampler=SamplerConfig(n_gen=2000, sample_steps=25, record=1),
    ),
    "gpu": ExperimentConfig(
        process=ProcessConfig(N=128, d=8, nu=2.0, ell=1.0),
        n_train=16000,
        model=ModelConfig(hidden=384, depth=12, heads=6),
        train=TrainConfig(
            steps=40000, batch_size=256, lr=5e-4, warmup=300, t0=1e-3, t_sampling="log_snr", precision="auto",
            patience=4, eval_every=250, min_delta=1e-4,
        ),
        sampler=SamplerConfig(n_gen=4000, sample_steps=50, record=1),
    ),
}  # fmt: skip
N_GRID = {"smoke": (128, 32), "cpu": (4096, 1024, 256, 64), "gpu": (64000, 16000, 4000, 1000)}  # largest first
# five paired replicates (cpu: all shipped, from one commit, .ci/regenerate_sample_complexity)
SEEDS = {"smoke": (0, 1), "cpu": (0, 1, 2, 3, 4), "gpu": (0, 1, 2, 3, 4)}
# where the band J differs between every pair compared (N = 16: J = 16, 8, 3 for the nu series and 3, 6, 11 for ell)
NU_GRID = {"smoke": (1.0, 2.0), "cpu": (0.5, 1.0, 2.0), "gpu": (0.5, 1.0, 2.0)}
ELL_GRID = {"smoke": (1.0, 2.0), "cpu": (1.0, 2.0, 4.0), "gpu": (1.0, 2.0, 4.0)}
FIXED_ELL, FIXED_NU = {"smoke": 1.0, "cpu": 1.0, "gpu": 1.0}, 2.0


def _grid(axis: str) -> dict[str, dict[str, tuple]]:
    out = {}
    for p in ("smoke", "cpu", "gpu"):
        values = {"nu": {"nu": NU_GRID[p], "ell": (FIXED_ELL[p],)}, "ell": {"nu": (FIXED_NU,), "ell": ELL_GRID[p]}}
        out[p] = {"seed": SEEDS[p], **values[axis], "n_train": N_GRID[p]}  # seed-major: each seed a full replicate
    return out


_WHAT = {"nu": "several kernel exponents nu at a fixed ell", "ell": "several bandwidths ell at a fixed nu"}
SWEEPS = tuple(
    Sweep(
        name=f"sample-complexity-{axis}",
        description=f"Figure 4(a): error against n for {_WHAT[axis]}",
        base=SAMPLE_COMPLEXITY,
        grid=_grid(axis),
        record=SampleComplexity,
        point=run_sample_complexity,
        columns=columns,
        plot=plot_sample_complexity,
    )
    for axis in ("nu", "ell")
)

__all__ = [
    "NAME",
    "SAMPLE_COMPLEXITY",
    "SWEEPS",
    "SampleComplexity",
    "columns",
    "decay_verdicts",
    "PARTS",
    "excess_by_seed",
    "order_verdicts",
    "versus_verdicts",
    "plot_sample_complexity",
    "run_sample_complexity",
    "sample_complexity",
]
