"""Beyond the paper: imputation and forecasting, measured against the exact posterior.

Each grid point trains one network on ``n`` sequences of one process, to convergence of its validation loss:

* a conditional DiT (``arch="conditional-dit"``, :class:`gptheory.conditional_dit.ConditionalDiT`) on random frame
  masks of strategy ``masking`` (:mod:`gptheory.masks`), its validation loss in excess of the exact conditional
  denoiser; it imputes by method ``"conditional"``;
* or, at ``masking="none"``, an unconditional DiT, which imputes by replacement (``"replacement"``).

Then, for every task of :func:`tasks` (forecasting, interpolation, a missing block: fixed frame masks of rising
difficulty), it draws ``n_draws`` completions of each of ``n_cond`` held-out sequences (stream ``conditioning``) with
the network's method and with the exact conditional score through the same sampler (``"exact"``, the control), from
the same starting noise (stream ``imputer``; :func:`gptheory.imputers.impute`), and measures both against the
posterior pushed to ``t0`` (:meth:`gptheory.conditional.Conditional.at`; the truths' missing frames are pushed there
too), each metric beside its floor (:mod:`gptheory.posterior`): :class:`Scores`.

The sweeps: ``imputation-masking`` (the unconditional DiT by replacement, and conditional DiTs trained on random,
block and mixed masks) and ``imputation-n`` (the mixed-mask DiT against ``n``); :func:`imputation` returns both.
Reading them (verdicts paired by seed, tables, figures): :mod:`gptheory.experiments.imputation_analysis`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import posterior as post
from ..conditional import Conditional
from ..config import ExperimentConfig, ModelConfig, ProcessConfig, SamplerConfig
from ..imputers import impute
from ..masks import block_mask, forecast_mask, interpolation_mask
from ..profiles import device as default_device
from ..profiles import profile as active_profile
from ..recipe import TrainConfig
from ..results import Record, cached, setting
from ..streams import generator, seed_of
from ..sweep import Sweep, run_sweep
from ..trial import fit, prepare

NAME = "imputation"
PIT_BINS = 10
PATHS = 8  # draws of one sequence kept per task and method, for figures


def tasks(N: int) -> dict[str, torch.Tensor]:
    """The fixed frame masks every point is measured on (``N >= 8`` frames): interpolation from every fourth frame,
    a missing middle half, forecasting the second half from the first, and the last three quarters from the first
    quarter. On the book's processes (``N >= 16``) they get harder in this order: the posterior variance per missing
    coordinate grows."""
    if isinstance(N, bool) or not isinstance(N, int) or N < 8:
        raise ValueError(
            f"N must be an integer >= 8 for the imputation tasks (every fourth frame, quarters), got {N!r}"
        )
    return {
        "interpolate": interpolation_mask(N, list(range(0, N, 4))),
        "gap-half": block_mask(N, N // 4, N // 2),
        "forecast-half": forecast_mask(N, N // 2),
        "forecast-quarter": forecast_mask(N, N // 4),
    }


@dataclass
class Scores:
    """One method on one task, each metric beside what a perfect generator (exact draws, as many) scores.

    Attributes:
        mean_error, mean_floor, mean_sd: RMS error of the draws' mean against the posterior mean
            (:func:`gptheory.posterior.mean_error`), its floor and the floor's spread, data units.
        w2, w2_floor, w2_sd: ``W2`` of each sequence's Gaussian fit to the posterior, averaged over sequences
            (:func:`gptheory.posterior.gaussian_w2_to_posterior`).
        coverage, coverage_expected: per level of :data:`gptheory.posterior.LEVELS`, the share of missing
            coordinates inside the draws' central intervals, and its exact expectation for a perfect generator.
        ellipsoid, ellipsoid_expected: the share of sequences inside the draws' prediction ellipsoids, and ``levels``.
        crps, crps_posterior: the mean CRPS of the draws and of the exact posterior (its floor) at the same truths.
        normalised_crps, normalised_crps_posterior: CSDI's normalised CRPS of each.
        pit: the histogram of the draws' PIT values (:data:`PIT_BINS` bins over ``[0, 1]``, counts).
        frame_crps, frame_crps_posterior: mean CRPS per missing frame (in frame order), the draws' and the posterior's.
        seconds: wall time of the draws (s).
    """

    mean_error: float
    mean_floor: float
    mean_sd: float
    w2: float
    w2_floor: float
    w2_sd: float
    coverage: list[float]
    coverage_expected: list[float]
    ellipsoid: list[float]
    ellipsoid_expected: list[float]
    crps: float
    crps_posterior: float
    normalised_crps: float
    normalised_crps_posterior: float
    pit: list[int]
    frame_crps: list[float]
    frame_crps_posterior: list[float]
    seconds: float


@dataclass
class Task:
    """One frame mask: ``observed`` (``N`` bools), the condition numbers of the posterior covariance ``C_c`` and of
    the law at ``t0``, the missing frames (in order) and each method's :class:`Scores` by name."""

    observed: list[bool]
    kappa: float
    kappa_t0: float
    missing_frames: list[int]
    methods: dict[str, Scores] = field(default_factory=dict)


@dataclass
class Imputation(Record):
    """One grid point: the network's method (``"conditional"`` or ``"replacement"``), every task of :func:`tasks`
    by name, and how training went (``train_seconds``, ``steps``, ``stop_reason``, ``best_step``, the validation
    curve ``[[step, excess loss], ...]``). ``paths``: the first held-out sequence of each task, ``"<task>.truth"``
    ``(N, d)``, and :data:`PATHS` of its draws by each method, ``"<task>.<method>"`` ``(PATHS, N, d)``."""

    NAME = NAME

    method: str
    tasks: dict[str, Task]
    train_seconds: float
    steps: int
    stop_reason: str
    best_step: int
    validation: list
    paths: dict[str, np.ndarray] = field(default_factory=dict)


def measure(
    x: torch.Tensor, at: Conditional, x_obs: torch.Tensor, truth: torch.Tensor, seconds: float, seed: int
) -> Scores:
    """:class:`Scores` of the draws ``x: (n_draws, batch, N, d)`` given ``x_obs`` against ``at`` (the posterior at
    ``t0``) with ``truth`` pushed to ``t0``; ``seed`` seeds the ``W2`` floor's Monte Carlo draws. The ellipsoid needs
    more draws than missing entries; with fewer its shares are ``nan``."""
    mean = post.mean_error(x, at, x_obs)
    w2 = post.gaussian_w2_to_posterior(x, at, x_obs, seed=seed)
    cov = post.coverage(x, at, truth)
    if x.shape[0] > at.n_missing:
        ell = post.ellipsoid_coverage(x, at, truth)
        ellipsoid, ellipsoid_expected = ell.samples.mean(0).tolist(), ell.expected.tolist()
    else:
        ellipsoid = ellipsoid_expected = [math.nan] * len(cov.levels)
    crps = post.crps(x, at, truth)
    pit = post.pit(x, at, truth).samples
    frames = at.missing_entries.any(1).nonzero().flatten()
    d = at.gp.d
    per_frame = crps.samples.reshape(crps.samples.shape[0], len(frames), d).mean((0, 2))
    per_frame_post = crps.posterior.reshape(crps.posterior.shape[0], len(frames), d).mean((0, 2))
    return Scores(
        mean_error=mean.value, mean_floor=mean.floor, mean_sd=mean.sd,
        w2=w2.value, w2_floor=w2.floor, w2_sd=w2.sd,
        coverage=cov.samples.mean(0).tolist(), coverage_expected=cov.expected.tolist(),
        ellipsoid=ellipsoid, ellipsoid_expected=ellipsoid_expected,
        crps=float(crps.samples.mean()), crps_posterior=float(crps.posterior.mean()),
        normalised_crps=post.normalised_crps(crps.samples, at, truth),
        normalised_crps_posterior=post.normalised_crps(crps.posterior, at, truth),
        pit=torch.histc(pit.float(), PIT_BINS, 0.0, 1.0).long().tolist(),
        frame_crps=per_frame.tolist(), frame_crps_posterior=per_frame_post.tolist(),
        seconds=seconds,
    )  # fmt: skip


def pushed_truth(truth: torch.Tensor, at: Conditional, schedule, t0: float, gen: torch.Generator) -> torch.Tensor:
    """``truth: (batch, N, d)`` with its missing entries pushed to ``t0`` (``alpha x + sigma eps``): draws of ``at``."""
    t = torch.tensor(t0, dtype=torch.float64)
    a, s = float(schedule.alpha(t)), float(schedule.sigma(t))
    noisy = a * truth + s * torch.randn(truth.shape, generator=gen, dtype=torch.float64)
    return torch.where(at.missing_entries, noisy, truth)


def run_imputation(
    config: ExperimentConfig,
    checkpoint: str | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    only: tuple[str, ...] | None = None,
) -> Imputation:
    """Train the network of ``config`` and measure it on every task of :func:`tasks` (:class:`Imputation`), or on
    the tasks named in ``only`` (a check that re-runs a point: each task's draws and scores do not depend on the
    others)."""
    if not config.train.patience:
        raise ValueError(
            f"an imputation point trains to convergence: patience must be > 0, got {config.train.patience}"
        )
    chosen = {k: v for k, v in tasks(config.process.N).items() if only is None or k in only}
    if only is not None and (not only or set(only) - set(chosen)):
        raise ValueError(f"only must name some of the tasks {', '.join(tasks(config.process.N))}, got {only!r}")
    prepared = prepare(config, checkpointed=checkpoint is not None)
    res = fit(config, prepared, checkpoint, device, progress)
    gp, net, s, t0 = prepared.gp, res.ema, config.sampler, prepared.train_config.t0
    method = "conditional" if config.train.masking != "none" else "replacement"
    truth = gp.sample(s.n_cond, generator=generator(config.seed, "conditioning"))
    out, paths = {}, {}
    for name, observed in chosen.items():
        cond = Conditional(gp, observed)
        at = cond.at(t0, net.schedule)
        pushed = pushed_truth(truth, at, net.schedule, t0, generator(config.seed, "pushed"))
        task = Task(
            observed=observed.tolist(),
            kappa=cond.condition_number(),
            kappa_t0=at.condition_number(),
            missing_frames=(~observed).nonzero().flatten().tolist(),
        )
        for m in (method, "exact"):
            start = time.perf_counter()
            x = impute(
                m, truth, observed, s.n_draws, net.schedule, s.sample_steps, t0,
                seed_of(config.seed, "imputer"), model=net if m != "exact" else None, cond=cond,
            )  # fmt: skip
            task.methods[m] = measure(x, at, truth, pushed, time.perf_counter() - start, config.seed)
            paths[f"{name}.{m}"] = x[:PATHS, 0].numpy()
        paths[f"{name}.truth"] = truth[0].numpy()
        out[name] = task
    return Imputation(
        method=method,
        tasks=out,
        train_seconds=res.seconds,
        steps=res.steps,
        stop_reason=res.stop_reason,
        best_step=res.best_step,
        validation=[list(v) for v in res.validation],
        paths=paths,
    )


def imputation_config(profile: str | None = None, **overrides) -> ExperimentConfig:
    """The base configuration of ``profile`` (default: the active one) with flat overrides by field name
    (``imputation_config("cpu", masking="random", n_train=256)``); ``masking="none"`` gives the unconditional DiT."""
    name = active_profile() if profile is None else profile
    tied = UNCONDITIONAL[name]["masking"].get(overrides.get("masking"), {})  # the sweeps' own tie of arch to masking
    return IMPUTATION[name].replace(**{**tied, **overrides})


def imputation_point(
    profile: str | None = None,
    *,
    refresh: bool = False,
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    **overrides,
) -> Imputation:
    """The :class:`Imputation` record of ``imputation_config(profile, **overrides)``: loaded when a shipped or cached
    one matches (:func:`gptheory.results.cached`), else trained (resuming from ``checkpoint``) and measured."""
    name = active_profile() if profile is None else profile
    config = imputation_config(name, **overrides)
    dev = torch.device(device) if device is not None else default_device()

    def compute(body: dict) -> Imputation:
        return run_imputation(config, checkpoint=None if checkpoint is None else str(checkpoint), device=dev,
                              progress=progress)  # fmt: skip

    return cached(NAME, config.to_dict(), compute, Imputation, refresh, profile=name, device=dev)


def columns(p: Imputation) -> dict:
    """One row of ``results.csv``: per task and method the mean error, W2 and CRPS over their floors, 90% coverage."""
    out: dict = {"method": p.method, "steps": p.steps, "stop_reason": p.stop_reason, "train_seconds": p.train_seconds}
    for name, task in p.tasks.items():
        out[f"{name}.kappa"] = task.kappa
        for m, sc in task.methods.items():
            out[f"{name}.{m}.mean_ratio"] = sc.mean_error / sc.mean_floor
            out[f"{name}.{m}.w2_ratio"] = sc.w2 / sc.w2_floor
            out[f"{name}.{m}.crps_ratio"] = sc.crps / sc.crps_posterior
            out[f"{name}.{m}.coverage90"] = sc.coverage[1]
    return out


# ---------------------------------------------------------------------------------------------- analysis
METRICS = ("w2", "crps", "mean_error")  # measured beside a floor: the verdicts are drawn on the ratio to it


def ratio(scores: Scores, metric: str) -> float:
    """``metric`` (one of :data:`METRICS`) of ``scores`` over its floor: 1 for a perfect generator."""
    if metric not in METRICS:
        raise ValueError(f"metric must be one of {', '.join(METRICS)}, got {metric!r}")
    floor = {"w2": scores.w2_floor, "crps": scores.crps_posterior, "mean_error": scores.mean_floor}[metric]
    return getattr(scores, metric) / floor


def plot_summary(points: list[Imputation]):
    """The sweeps' summary figure: the network's ``W2`` over its floor per task, per masking and ``n`` (seed mean)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), constrained_layout=True)
    names = list(points[0].tasks)
    groups: dict = {}
    for p in points:
        groups.setdefault((p.provenance.config["train"].get("masking", "none"), setting(p, "n_train")), []).append(p)
    for k, (key, pts) in enumerate(sorted(groups.items())):
        ys = [np.mean([ratio(p.tasks[t].methods[p.method], "w2") for p in pts]) for t in names]
        ax.plot(range(len(names)), ys, "o-", color=f"C{k}", label=f"masking={key[0]}, n={key[1]}")
    ax.axhline(1.0, color="k", lw=0.8, ls=":")
    ax.set_xticks(range(len(names)), names, rotation=15)
    ax.set_ylabel("W2 / floor")
    ax.legend(fontsize=8)
    return fig


def imputation(profile: str | None = None, progress: bool = True) -> dict:
    """Both imputation sweeps of ``profile`` as :class:`gptheory.sweep.SweepResult` by name: shipped or cached
    points are loaded, missing ones trained (and cached)."""
    return {s.name: run_sweep(s, profile, out=None, progress=progress) for s in SWEEPS}


# ------------------------------------------------------------------------------------------------- sweeps
# Trained to convergence of the excess validation loss: ``steps`` is the cap. The base is the
# conditional DiT on mixed masks; ``masking="none"`` gives the unconditional DiT (the linked ``arch``).
IMPUTATION = {
    "smoke": ExperimentConfig(
        process=ProcessConfig(N=8, d=2, nu=1.5, ell=2.0),
        n_train=64,
        model=ModelConfig(hidden=16, depth=2, heads=2, arch="conditional-dit"),
        train=TrainConfig(
            steps=150, batch_size=32, lr=3e-3, warmup=5, t0=0.01, t_sampling="log_snr", precision="fp32",
            patience=2, eval_every=25, min_delta=1e-4, masking="mixed",
        ),
        sampler=SamplerConfig(sample_steps=8, record=1, n_cond=8, n_draws=40),
    ),
    "cpu": ExperimentConfig(
        process=ProcessConfig(N=16, d=4, nu=1.5, ell=4.0),
        n_train=1024,
        model=ModelConfig(hidden=64, depth=4, heads=4, arch="conditional-dit"),
        train=TrainConfig(
            steps=10000, batch_size=64, lr=2e-3, warmup=150, t0=0.01, t_sampling="log_snr", precision="fp32",
            patience=6, eval_every=100, min_delta=1e-4, masking="mixed",
        ),
        sampler=SamplerConfig(sample_steps=25, record=1, n_cond=64, n_draws=100),
    ),
    "gpu": ExperimentConfig(
        process=ProcessConfig(N=64, d=4, nu=1.5, ell=8.0),
        n_train=16000,
        model=ModelConfig(hidden=256, depth=8, heads=8, arch="conditional-dit"),
        train=TrainConfig(
            steps=40000, batch_size=256, lr=5e-4, warmup=300, t0=1e-3, t_sampling="log_snr", precision="auto",
            patience=4, eval_every=250, min_delta=1e-4, masking="mixed",
        ),
        sampler=SamplerConfig(sample_steps=50, record=1, n_cond=256, n_draws=400),
    ),
}  # fmt: skip
SEEDS = {"smoke": (0, 1), "cpu": (0, 1, 2), "gpu": (0, 1, 2)}
MASKINGS = {p: ("none", "random", "block", "mixed") for p in SEEDS}
N_GRID = {"smoke": (32, 64), "cpu": (256, 1024, 4096), "gpu": (4000, 16000, 64000)}
UNCONDITIONAL = {p: {"masking": {"none": {"arch": "dit"}}} for p in SEEDS}  # replacement needs the unconditional DiT

SWEEPS = (
    Sweep(
        name="imputation-masking",
        description="imputation: replacement with the unconditional DiT against conditional DiTs per masking",
        base=IMPUTATION,
        grid={p: {"seed": SEEDS[p], "masking": MASKINGS[p]} for p in SEEDS},
        record=Imputation,
        point=run_imputation,
        columns=columns,
        plot=plot_summary,
        linked=UNCONDITIONAL,
    ),
    Sweep(
        name="imputation-n",
        description="imputation: the mixed-mask conditional DiT against the number of training sequences n",
        base=IMPUTATION,
        grid={p: {"seed": SEEDS[p], "n_train": N_GRID[p]} for p in SEEDS},
        record=Imputation,
        point=run_imputation,
        columns=columns,
        plot=plot_summary,
    ),
)

__all__ = [
    "IMPUTATION",
    "METRICS",
    "NAME",
    "SWEEPS",
    "Imputation",
    "Scores",
    "Task",
    "columns",
    "imputation",
    "imputation_config",
    "imputation_point",
    "measure",
    "plot_summary",
    "pushed_truth",
    "ratio",
    "run_imputation",
    "tasks",
]
