"""Theorem 2 and Figure 4(a): how the error of a trained DiT falls with the number ``n`` of training sequences.

Each grid point trains a DiT on ``n`` sequences of one process (:mod:`gptheory.experiments.dit_learns`' ``prepare``),
generates ``n_gen`` sequences and measures them with the estimators below, next to two references on the
same footing:

* the ``n`` training sequences themselves: the paper's normaliser (Appendix D.1), so
  ``paper_relative_error = err(generated) / err(training set)`` on the full ``(N d, N d)`` covariance;
* the *structured Gaussian yardstick*: the maximum-likelihood ``Gamma_hat (x) Sigma_hat`` of the same ``n``
  sequences (:func:`fit_kronecker`, a learner told that the covariance is a Kronecker product), measured both
  exactly and through ``n_gen`` samples, like the DiT.

Estimators, for samples ``x: (n, N, d)`` with pair covariances ``C_ij: (d, d)`` (:mod:`gptheory.metrics`):

* temporal kernel, whitened: ``Gamma_hat_ij = tr(Sigma^{-1} C_ij) / d``
  (:func:`gptheory.metrics.temporal_kernel_whitened`); and the least-squares projection
  ``<C_ij, Sigma> / ||Sigma||^2``, reported beside it;
* spatial: mean over frames of ``||C_ii - Sigma|| / ||Sigma||``;
  covariance: ``||C - Gamma (x) Sigma|| / ||Gamma (x) Sigma||``;
* ``W2`` between the Gaussian fitted to the samples (their mean and covariance) and the truth (Bures formula).

Lemma 12 (the early-stopping perturbation) is exact here: :mod:`gptheory.early_stopping`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

import numpy as np
import torch

from .. import metrics
from ..config import ExperimentConfig, ModelConfig, ProcessConfig, SamplerConfig
from ..gp import DTYPE, GaussianProcess, psd_sqrt
from ..profiles import device as default_device
from ..results import Record
from ..samplers import generate
from ..sweep import Sweep, run_sweep
from ..train import TrainConfig, train
from ..unroll import condition_number, truncation_length
from .dit_learns import prepare

NAME = "sample_complexity"
BAND_TOL = 1e-2  # the tolerance of the band J reported with each point (unroll.truncation_length)


@dataclass
class SampleErrors:
    """The errors of one set of sequences (or of one exact covariance) against the truth; see the module doc."""

    temporal: float
    temporal_ls: float
    spatial: float
    covariance: float
    w2: float


def errors(C: torch.Tensor, mean: torch.Tensor, gp: GaussianProcess) -> SampleErrors:
    """:class:`SampleErrors` of pair covariances ``C: (N, N, d, d)`` and mean ``mean: (N, d)`` against ``gp``."""
    base = metrics.errors_of_covariance(C, gp.Gamma, gp.Sigma)
    flat = metrics.flat_covariance(C)
    truth = gp.covariance()
    w2 = metrics.gaussian_w2(mean.flatten(), flat, gp.mu.flatten(), truth)
    return SampleErrors(
        temporal=metrics.relative_error(metrics.temporal_kernel_whitened(C, gp.Sigma), gp.Gamma),
        temporal_ls=base["temporal"],
        spatial=base["spatial"],
        covariance=base["covariance"],
        w2=w2,
    )


def sample_errors(x: torch.Tensor, gp: GaussianProcess) -> SampleErrors:
    """:class:`SampleErrors` of sequences ``x: (n, N, d)``."""
    x = x.to(DTYPE)
    return errors(metrics.pair_covariance(x), x.mean(0), gp)


def fit_kronecker(x: torch.Tensor, iters: int = 100, tol: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximum-likelihood ``(Gamma_hat: (N, N), Sigma_hat: (d, d))`` of ``x: (n, N, d)`` under ``vec(x - mean) ~
    N(0, Gamma (x) Sigma)`` by the flip-flop iteration (alternating the two closed-form updates):

        Gamma <- sum_k X_k Sigma^{-1} X_k^T / (n d),    Sigma <- sum_k X_k^T Gamma^{-1} X_k / (n N),

    with ``X_k`` the centred sequences. The scale is split so that ``mean(diag Gamma_hat) = 1``. Needs ``n d > N``
    and ``n N > d`` for both estimates to be invertible.
    """
    x = x.to(DTYPE)
    n, N, d = x.shape
    if n * d <= N or n * N <= d:
        raise ValueError(f"fit_kronecker needs n*d > N and n*N > d, got n={n}, N={N}, d={d}")
    xc = x - x.mean(0)
    Sigma = torch.eye(d, dtype=DTYPE)
    Gamma = torch.eye(N, dtype=DTYPE)
    for _ in range(iters):
        Gamma_new = torch.einsum("kia,ab,kjb->ij", xc, torch.linalg.inv(Sigma), xc) / (n * d)
        Sigma = torch.einsum("kia,ij,kjb->ab", xc, torch.linalg.inv(Gamma_new), xc) / (n * N)
        Sigma = 0.5 * (Sigma + Sigma.T)
        change = float((Gamma_new - Gamma).abs().max())
        Gamma = 0.5 * (Gamma_new + Gamma_new.T)
        if change < tol:
            break
    s = Gamma.diagonal().mean()
    return Gamma / s, Sigma * s


def _kron_pairs(Gamma: torch.Tensor, Sigma: torch.Tensor) -> torch.Tensor:
    """Pair covariances ``C_ij = Gamma_ij Sigma`` as ``(N, N, d, d)``."""
    return Gamma[:, :, None, None] * Sigma[None, None]


def _sample_kronecker(Gamma: torch.Tensor, Sigma: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """``n`` draws of ``N(0, Gamma (x) Sigma)``, ``(n, N, d)``, as ``Gamma^{1/2} Z Sigma^{1/2}`` (like
    :meth:`gptheory.gp.GaussianProcess.sample`)."""
    z = torch.randn(n, Gamma.shape[0], Sigma.shape[0], generator=torch.Generator().manual_seed(seed), dtype=DTYPE)
    return psd_sqrt(Gamma) @ z @ psd_sqrt(Sigma)


@dataclass
class Point(Record):
    """One grid point of the sample-complexity sweeps.

    Attributes:
        dit: errors of the DiT's ``n_gen`` generated sequences; train: of the ``n`` training sequences;
        yardstick: of ``n_gen`` draws from the fitted ``Gamma_hat (x) Sigma_hat``; yardstick_exact: of that fit
        itself (no sampling noise); truth: of ``n_gen`` fresh true sequences (the estimator's floor at ``n_gen``).
        paper_relative_error: ``dit.covariance / train.covariance`` (Appendix D.1).
        kappa, kappa_t0: condition numbers of ``Gamma (x) Sigma`` and of ``alpha^2 Gamma (x) Sigma + sigma^2 I``
        at ``t0``; J: the band of Corollary 1 at tolerance :data:`BAND_TOL`.
        train_seconds, generate_seconds, steps, final_loss: of the training run.
        Gamma_hat: the DiT samples' whitened temporal-kernel estimate ``(N, N)``.
    """

    NAME = NAME

    dit: SampleErrors
    train: SampleErrors
    yardstick: SampleErrors
    yardstick_exact: SampleErrors
    truth: SampleErrors
    paper_relative_error: float
    kappa: float
    kappa_t0: float
    J: int
    train_seconds: float
    generate_seconds: float
    steps: int
    final_loss: float
    Gamma_hat: np.ndarray


def run_point(
    config: ExperimentConfig,
    checkpoint: str | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> Point:
    """Train on ``config.n_train`` sequences, generate ``config.sampler.n_gen``, measure (:class:`Point`)."""
    dev = torch.device(device) if device is not None else default_device()
    gp, data, model, cfg = prepare(config, checkpointed=checkpoint is not None)
    res = train(model, data, cfg, checkpoint=checkpoint, device=dev, progress=progress)
    s, seed = config.sampler, config.seed
    start = time.perf_counter()
    x_gen = generate(res.ema, s.n_gen, steps=s.sample_steps, t0=cfg.t0, seed=seed + 10, progress=False)
    generate_seconds = time.perf_counter() - start
    x_true = gp.sample(s.n_gen, generator=torch.Generator().manual_seed(seed + 20))
    G_fit, S_fit = fit_kronecker(data)
    x_fit = _sample_kronecker(G_fit, S_fit, s.n_gen, seed + 30)
    dit = sample_errors(x_gen, gp)
    trn = sample_errors(data, gp)
    C_gen = metrics.pair_covariance(x_gen)
    return Point(
        dit=dit,
        train=trn,
        yardstick=sample_errors(x_fit, gp),
        yardstick_exact=errors(_kron_pairs(G_fit, S_fit), torch.zeros(gp.N, gp.d, dtype=DTYPE), gp),
        truth=sample_errors(x_true, gp),
        paper_relative_error=dit.covariance / trn.covariance,
        kappa=float(gp.spectrum.max() / gp.spectrum.min().clamp(min=1e-300)),
        kappa_t0=condition_number(gp, cfg.t0, model.schedule),
        J=truncation_length(gp.nu, gp.ell, gp.N, BAND_TOL),
        train_seconds=res.seconds,
        generate_seconds=generate_seconds,
        steps=res.steps,
        final_loss=res.log[-1]["loss"],
        Gamma_hat=metrics.temporal_kernel_whitened(C_gen, gp.Sigma).numpy(),
    )


def columns(p: Point) -> dict:
    """The scalar metrics of one row of ``results.csv``."""
    out = {}
    for part in ("dit", "train", "yardstick", "yardstick_exact", "truth"):
        out |= {f"{part}.{k}": v for k, v in getattr(p, part).__dict__.items()}
    keys = ("paper_relative_error", "kappa", "kappa_t0", "J", "train_seconds", "generate_seconds", "final_loss")
    return out | {k: getattr(p, k) for k in keys}


# ---------------------------------------------------------------------------------------------- analysis
def slope(n: np.ndarray, err: np.ndarray, level: float = 0.95) -> tuple[float, float, float]:
    """Least-squares slope of ``log err`` on ``log n`` and its ``level`` confidence interval (Student t over the
    residuals; every run counts, seeds included). Returns ``(slope, low, high)``: all ``nan`` with fewer than two
    distinct ``n``, ``nan`` bounds with fewer than three runs (no spread to estimate)."""
    from scipy import stats

    x, y = np.log(np.asarray(n, float)), np.log(np.asarray(err, float))
    if len(np.unique(x)) < 2:
        return math.nan, math.nan, math.nan
    fit = stats.linregress(x, y)
    dof = len(x) - 2
    if dof < 1 or not np.isfinite(fit.stderr):
        return float(fit.slope), math.nan, math.nan
    half = stats.t.ppf(0.5 + level / 2, dof) * fit.stderr
    return float(fit.slope), float(fit.slope - half), float(fit.slope + half)


def value(p: Point, metric: str) -> float:
    """A metric of a point by dotted name: ``"dit.temporal"``, ``"yardstick.w2"``, ``"paper_relative_error"``."""
    obj = p
    for part in metric.split("."):
        obj = getattr(obj, part)
    return float(obj)


def by_process(points: list[Point]) -> dict[tuple[float, float], list[Point]]:
    """The points grouped by their process ``(nu, ell)``, in sorted order."""
    groups: dict[tuple[float, float], list[Point]] = {}
    for p in points:
        proc = p.config["process"]
        groups.setdefault((proc["nu"], proc["ell"]), []).append(p)
    return dict(sorted(groups.items()))


def n_of(p: Point) -> int:
    return int(p.config["n_train"])


def slopes(
    points: list[Point], metric: str = "dit.temporal", level: float = 0.95, n_max: float = math.inf
) -> dict[tuple, tuple]:
    """For each process ``(nu, ell)``: the fitted log-log slope of ``metric`` against ``n`` with its interval
    (:func:`slope`), over every run (all seeds) with ``n <= n_max``."""
    out = {}
    for key, pts in by_process(points).items():
        pts = [p for p in pts if n_of(p) <= n_max]
        out[key] = slope(np.array([n_of(p) for p in pts]), np.array([value(p, metric) for p in pts]), level)
    return out


def means(points: list[Point], metric: str) -> dict[tuple, dict[int, float]]:
    """For each process ``(nu, ell)``: ``n -> mean of metric over seeds``."""
    out = {}
    for key, pts in by_process(points).items():
        ns = sorted({n_of(p) for p in pts})
        out[key] = {n: float(np.mean([value(p, metric) for p in pts if n_of(p) == n])) for n in ns}
    return out


def ordering(points: list[Point], axis: str, metric: str = "dit.temporal") -> dict[int, bool]:
    """Whether the paper's ordering holds at each ``n``: error decreasing in ``nu`` (``axis="nu"``) or increasing
    in ``ell`` (``axis="ell"``), comparing means over seeds."""
    m = means(points, metric)
    keys = sorted(m, key=lambda k: k[0] if axis == "nu" else -k[1])  # from "should be worst" to "should be best"
    ns = sorted(set.intersection(*(set(m[k]) for k in keys)))
    return {n: all(m[a][n] > m[b][n] for a, b in zip(keys, keys[1:], strict=False)) for n in ns}


def plot(points: list[Point], metric: str = "dit.temporal"):
    """Error against ``n`` on log-log axes, one line per process (``nu``, ``ell``), mean over seeds with each seed
    drawn as a dot; the yardstick dashed. Returns the matplotlib ``Figure``."""
    import matplotlib.pyplot as plt

    field = metric.split(".")[-1]
    fig, ax = plt.subplots(figsize=(6.4, 4.4), constrained_layout=True)
    for k, (key, pts) in enumerate(by_process(points).items()):
        n = np.array([n_of(p) for p in pts])
        e = np.array([value(p, metric) for p in pts])
        y = np.array([value(p, f"yardstick.{field}") for p in pts])
        ns = np.unique(n)
        ax.loglog(n, e, "o", color=f"C{k}", alpha=0.45, ms=4)
        ax.loglog(
            ns, [e[n == v].mean() for v in ns], "-", color=f"C{k}", label=f"DiT, $\\nu$={key[0]:g}, $\\ell$={key[1]:g}"
        )
        ax.loglog(ns, [y[n == v].mean() for v in ns], "--", color=f"C{k}", alpha=0.7)
    ax.set_xlabel("training sequences n")
    ax.set_ylabel(f"{metric} (relative)")
    ax.set_title("solid: DiT; dashed: structured Gaussian fit to the same n")
    ax.legend(fontsize=8)
    return fig


def sweeps(profile: str | None = None, progress: bool = True) -> dict:
    """Both Figure 4(a) sweeps of ``profile`` as :class:`gptheory.sweep.SweepResult` by name: shipped or cached
    points are loaded, missing ones trained (and cached)."""
    return {s.name: run_sweep(s, profile, out=None, progress=progress) for s in SWEEPS}


# ------------------------------------------------------------------------------------------------- sweeps
BASE = {
    "smoke": ExperimentConfig(
        process=ProcessConfig(N=8, d=2, nu=1.0, ell=2.0),
        n_train=64,
        model=ModelConfig(hidden=16, depth=2, heads=2),
        train=TrainConfig(steps=60, batch_size=32, lr=3e-3, warmup=5, t0=0.01, t_sampling="log_snr", precision="fp32"),
        sampler=SamplerConfig(n_gen=200, sample_steps=8, record=1),
    ),
    "cpu": ExperimentConfig(
        process=ProcessConfig(N=16, d=4, nu=1.0, ell=4.0),
        n_train=1024,
        model=ModelConfig(hidden=64, depth=4, heads=4),
        train=TrainConfig(
            steps=1500, batch_size=64, lr=2e-3, warmup=150, t0=0.01, t_sampling="log_snr", precision="fp32"
        ),
        sampler=SamplerConfig(n_gen=2000, sample_steps=25, record=1),
    ),
    "gpu": ExperimentConfig(
        process=ProcessConfig(N=128, d=8, nu=1.0, ell=4.0),
        n_train=16000,
        model=ModelConfig(hidden=384, depth=12, heads=6),
        train=TrainConfig(
            steps=6000, batch_size=256, lr=5e-4, warmup=300, t0=1e-3, t_sampling="log_snr", precision="auto"
        ),
        sampler=SamplerConfig(n_gen=4000, sample_steps=50, record=1),
    ),
}
N_GRID = {"smoke": (32, 128), "cpu": (64, 256, 1024, 4096), "gpu": (1000, 4000, 16000, 64000)}
SEEDS = {"smoke": (0,), "cpu": (0, 1), "gpu": (0, 1)}
NU_GRID = {"smoke": (1.0, 2.0), "cpu": (0.5, 1.0, 2.0), "gpu": (0.5, 1.0, 2.0)}
ELL_GRID = {"smoke": (2.0, 4.0), "cpu": (2.0, 4.0, 8.0), "gpu": (2.0, 4.0, 8.0)}
FIXED_ELL, FIXED_NU = {"smoke": 2.0, "cpu": 4.0, "gpu": 4.0}, 1.0


def _grid(axis: str) -> dict[str, dict[str, tuple]]:
    out = {}
    for p in ("smoke", "cpu", "gpu"):
        values = {"nu": {"nu": NU_GRID[p], "ell": (FIXED_ELL[p],)}, "ell": {"nu": (FIXED_NU,), "ell": ELL_GRID[p]}}
        out[p] = {**values[axis], "n_train": N_GRID[p], "seed": SEEDS[p]}
    return out


_WHAT = {"nu": "several kernel exponents nu at a fixed ell", "ell": "several bandwidths ell at a fixed nu"}
SWEEPS = tuple(
    Sweep(
        name=f"sample-complexity-{axis}",
        description=f"Figure 4(a): error against n for {_WHAT[axis]}",
        base=BASE,
        grid=_grid(axis),
        record=Point,
        point=run_point,
        columns=columns,
        plot=plot,
    )
    for axis in ("nu", "ell")
)

__all__ = [
    "BASE",
    "Point",
    "SWEEPS",
    "SampleErrors",
    "columns",
    "errors",
    "fit_kronecker",
    "plot",
    "run_point",
    "sample_errors",
    "by_process",
    "means",
    "ordering",
    "slope",
    "slopes",
    "sweeps",
    "value",
]
