"""The chapter "Is the attention pattern learned?": the attention of trained DiTs against the kernel (Figures 5 and 10
at the paper's depth, the bandwidth question, and data white in time).

Every point is a :class:`~.probe.Probe`. The sweeps (``python -m gptheory sweep NAME``):

* ``attention-learned-depth``: the paper's 12 blocks over five seeds, every layer's attention along denoising;
* ``attention-learned-bandwidth``: does the fitted attention bandwidth follow ``ell``?
* ``attention-learned-white``: a DiT trained on data white in time (``Gamma = I``, :data:`WHITE_ELL`).

:func:`attention_learned` returns them with the ``architecture`` sweep (:mod:`.architecture`), whose DiT points are
the chapter's base network, and the ``architecture-lr`` sweep's DiT on a seed of its own (:mod:`.tuning`), on which
:func:`selection_layer` fixes the layer of (b) independently of the runs the slope is fitted on. These are the
calibrated sweeps (trained to convergence, measured against the law at ``t0``).

The chapter's verdicts are decided here, each from per-seed effects by :func:`gptheory.statistics.verdict`:
:func:`learned_in_training` (a); :func:`widens` and :func:`follows` on :func:`bandwidth_slopes` against
:func:`target_slopes` (b); :func:`band_from_data` (c); :func:`rise_along_denoising`, :func:`from_layer` and
:func:`ends_apart` (d). The figures (``plot_*``) and :func:`denoising_trend` read the records.
"""

from __future__ import annotations

import numpy as np
import torch

from ..attention import fitted_bandwidth, kernel_attention, lag_profile
from ..profiles import PROFILES
from ..profiles import profile as active_profile
from ..results import setting
from ..statistics import Verdict, all_hold, paired, per_seed_slopes, rank_correlation, verdict
from ..sweep import run_sweep
from . import architecture, tuning
from .probe import SEEDS3, SEEDS5, Probe, probe_sweep, trains
from .tuning import tuned

WHITE_ELL = 0.05  # a bandwidth so small that Gamma = I: gamma(1) = exp(-(1 / 0.05)^nu) (white_gamma1_log10)
PAPER_DEPTH = {"smoke": (3,), "cpu": (12,), "gpu": (12,)}  # the paper's 12 blocks (smoke: its largest depth)
ELL_GRID = {"smoke": (1.0, 2.0), "cpu": (1.0, 2.0, 4.0, 8.0), "gpu": (2.0, 4.0, 8.0, 16.0)}

# The calibrated sweeps (issue 20): trained to convergence at the DiT's tuned learning rate
# (tuning.tuned); five seeds where the chapter draws a verdict, three for the control.
SWEEPS = (
    probe_sweep(
        "attention-learned-depth",
        "Figures 5 and 10 at the paper's depth: attention along denoising",
        base=tuned(),
        depth=PAPER_DEPTH,
        seed=SEEDS5,
    ),
    probe_sweep(
        "attention-learned-bandwidth",
        "does the fitted attention bandwidth follow ell?",
        base=tuned(),
        ell=ELL_GRID,
        seed=SEEDS5,
    ),
    probe_sweep(
        "attention-learned-white",
        "attention of a DiT trained on data white in time (Gamma = I)",
        base=tuned(),
        ell={p: (WHITE_ELL,) for p in PROFILES},
        seed=SEEDS3,
    ),
)


SELECTION = tuning.TUNING.name  # the layer of (b) is chosen on this sweep's DiT (:func:`selection_layer`)


def attention_learned(profile: str | None = None, progress: bool = True, train: bool | None = None) -> dict:
    """The ``architecture`` sweep (its DiT points are the base network), this chapter's sweeps of ``profile`` and,
    under :data:`SELECTION`, the ``architecture-lr`` sweep's DiT at the rate the sweeps train at (the runs the layer
    of (b) is chosen on, a seed of their own: :func:`selection_layer`), as :class:`gptheory.sweep.SweepResult` by
    name: shipped or cached points are loaded, missing ones trained where ``train`` (default:
    :func:`~.probe.trains` of the profile; the cpu profile only loads)."""
    profile = active_profile() if profile is None else profile
    train = trains(profile) if train is None else train
    chosen = (architecture.SWEEPS[0], *SWEEPS)
    out = {s.name: run_sweep(s, profile, out=None, progress=progress, train=train) for s in chosen}
    lr = tuned()[profile].train.lr  # the DiT's tuned rate: the selection runs differ from the sweeps in seed only
    axes = {"arch": ("dit",), "lr": (lr,)}
    out[SELECTION] = run_sweep(tuning.TUNING, profile, out=None, axes=axes, progress=progress, train=train)
    return out


def sweep_points(runs: dict, name: str) -> list[Probe]:
    """The records of sweep ``name`` in ``runs`` (what :func:`attention_learned` returns); a ``ValueError`` naming the
    sweep (and how to run it) when it has none, rather than an ``IndexError`` further on."""
    if name not in runs:
        raise ValueError(f"no sweep {name!r} among {', '.join(runs)}")
    pts = runs[name].records()
    if not pts:
        raise ValueError(f"sweep {name} has no points in this profile: run python -m gptheory sweep {name} first")
    return pts


def white_gamma1_log10(nu: float, ell: float = WHITE_ELL) -> float:
    """``log10 gamma(1)`` of the kernel ``gamma(h) = exp(-(h / ell)^nu)``: how white the white data are (``-174`` for
    ``nu = 2`` at :data:`WHITE_ELL`), computed in logs so that it does not underflow to ``-inf``."""
    return -((1.0 / ell) ** nu) / float(np.log(10.0))


def denoising_trend(p: Probe) -> np.ndarray:
    """Per layer, Spearman's rank correlation of the kernel similarity with the progress of denoising (the sampler's
    times from ``T`` down to ``t0``), ``(D,)``: positive when similarity rises as the noise is removed."""
    progress = np.arange(len(p.times))  # times are stored from T down to t0
    return np.array([rank_correlation(progress, p.similarity[:, k]) for k in range(p.similarity.shape[1])])


# ------------------------------------------------------------------------------------------------- the verdicts
FIRST_KERNEL_LAYER = 3  # the paper: "starting from the 3rd layer" the kernel's pattern appears
FOLLOW_MARGIN = 0.25  # (b) "follows": each seed's slope within this of the target's slope, on average


def learned_in_training(init: np.ndarray, trained: np.ndarray, r_identity: float) -> Verdict:
    """(a) The kernel-like pattern is learned in training. ``init: (seeds, 2, D)``, the layers' similarity before
    training at ``t0`` and ``T``; ``trained: (seeds, D)``, after training at ``t0``, the same seeds in the same order.
    Per seed the effect is its best trained layer minus the larger of its best untrained layer and ``r_identity``
    (self-attention's similarity): :func:`~gptheory.statistics.verdict` of those."""
    init, trained = np.asarray(init, float), np.asarray(trained, float)
    if init.shape[0] != trained.shape[0]:
        raise ValueError(f"init has {init.shape[0]} seeds, trained {trained.shape[0]}")
    return verdict(trained.max(1) - np.maximum(init.max((1, 2)), r_identity))


def band_from_data(base_best: dict[int, float], white_best: dict[int, float]) -> Verdict:
    """(c) No band without temporal correlations: per seed ``{seed: r}``, the base network's best similarity to its
    kernel minus the white network's (paired by seed, :func:`~gptheory.statistics.paired`)."""
    return verdict(paired(base_best, white_best))


def rise_along_denoising(S_T: np.ndarray, S_0: np.ndarray) -> Verdict:
    """(d) The similarity rises along denoising: ``S_T, S_0: (seeds, D)``, every layer's similarity at ``T`` and at
    ``t0``; per seed the effect is the mean over layers of ``S_0 - S_T``."""
    return verdict((np.asarray(S_0, float) - np.asarray(S_T, float)).mean(1))


def ends_apart(S_T: np.ndarray, S_0: np.ndarray, level: float = 0.95) -> list[Verdict]:
    """Per layer, whether its similarity at ``t0`` differs from that at ``T`` (``S_T, S_0: (seeds, D)``, paired by
    seed): one verdict per layer at Bonferroni's level ``1 - (1 - level) / D``, so that the family of ``D`` layers
    keeps ``level``. A layer whose attention changes along ``t`` is one whose verdict is not ``inconclusive``."""
    S_T, S_0 = np.asarray(S_T, float), np.asarray(S_0, float)
    family = 1 - (1 - level) / S_0.shape[1]
    return [verdict(S_0[:, k] - S_T[:, k], level=family) for k in range(S_0.shape[1])]


def from_layer(S_0: np.ndarray, r_identity: float, first: int = FIRST_KERNEL_LAYER) -> tuple[str, Verdict, Verdict]:
    """(d) "The kernel appears from layer ``first`` on, not before", both halves per seed. ``S_0: (seeds, D)``, every
    layer's similarity at ``t0``; the bar is ``r_identity`` (self-attention's similarity: the book's reading of the
    paper's "not well-structured"). ``late``: every layer from ``first`` on clears the bar (each seed's worst margin);
    ``early``: the layers before ``first`` do not (the bar over each seed's best of them). Returns ``(outcome, late,
    early)``, the outcome holding when both halves hold (:func:`~gptheory.statistics.all_hold`); a network with fewer
    than ``first`` layers, or ``first = 1``, leaves the missing half inconclusive."""
    S_0 = np.asarray(S_0, float)
    k = first - 1
    late = verdict((S_0[:, k:] - r_identity).min(1) if S_0.shape[1] > k else [])
    early = verdict(r_identity - S_0[:, :k].max(1) if k > 0 else [])
    return all_hold([late, early]), late, early


def bandwidth_slopes(points: list[Probe], layer: int) -> dict[int, float]:
    """Per seed, the slope of ``log fitted_ell[layer]`` on ``log ell`` over that seed's points of the bandwidth sweep
    (``layer`` 0-based): ``{seed: slope}`` (:func:`~gptheory.statistics.per_seed_slopes`)."""
    xy: dict[int, list] = {}
    for p in points:
        xy.setdefault(setting(p, "seed"), []).append((setting(p, "ell"), float(p.fitted_ell[layer])))
    return per_seed_slopes(xy)


def target_slopes(points: list[Probe]) -> dict[int, float]:
    """Per seed, the slope a perfect learner would reach: the bandwidth fit (:func:`~gptheory.attention.
    fitted_bandwidth`) applied to each point's target ``D^{-1} Gamma`` instead of its attention, on the same ``ell``s
    as that seed's points: ``{seed: slope}`` (about 1, up to the fit's grid)."""
    fits: dict[bytes, float] = {}
    xy: dict[int, list] = {}
    for p in points:
        G = np.asarray(p.Gamma, np.float64)
        key = G.tobytes() + str(setting(p, "nu")).encode()
        if key not in fits:
            fits[key] = fitted_bandwidth(kernel_attention(torch.as_tensor(G)), setting(p, "nu"))
        xy.setdefault(setting(p, "seed"), []).append((setting(p, "ell"), fits[key]))
    return per_seed_slopes(xy)


def widens(slopes: dict[int, float]) -> Verdict:
    """(b) "The attention widens with ``ell``": each seed's slope (:func:`bandwidth_slopes`) above 0."""
    return verdict([slopes[s] for s in sorted(slopes)])


def follows(
    slopes: dict[int, float], targets: dict[int, float], margin: float = FOLLOW_MARGIN, level: float = 0.95
) -> Verdict:
    """(b) "The attention's width follows the kernel's": an equivalence test on ``slope - target`` per seed (paired
    by seed). ``holds`` when its ``level`` interval lies inside ``(-margin, margin)`` (the slopes are the target's to
    within the margin), ``fails`` when it lies wholly outside (beyond ``+margin`` or below ``-margin``), else
    ``inconclusive`` (also with fewer than two seeds). The interval is that of
    :func:`~gptheory.statistics.verdict`; only the outcome differs."""
    if margin <= 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    v = verdict(paired(slopes, targets), level)
    if not (np.isfinite(v.low) and np.isfinite(v.high)):
        outcome = "inconclusive"
    elif -margin < v.low and v.high < margin:
        outcome = "holds"
    elif v.low >= margin or v.high <= -margin:
        outcome = "fails"
    else:
        outcome = "inconclusive"
    return v._replace(outcome=outcome)


def covers(v: Verdict, value: float) -> str:
    """Whether ``v``'s interval includes ``value``: ``"includes"``, ``"excludes"``, or ``"unknown"`` when the interval
    is ``nan`` (fewer than two seeds)."""
    if not (np.isfinite(v.low) and np.isfinite(v.high)):
        return "unknown"
    return "includes" if v.low <= value <= v.high else "excludes"


def selection_layer(points: list[Probe], excluded_seeds) -> int:
    """The layer (0-based) of (b): the most kernel-like at ``t0`` on average over ``points``, the selection runs.
    They must be independent of the runs the slope is fitted on: a ``ValueError`` when one of their seeds is in
    ``excluded_seeds`` (those runs' seeds) or when there are none."""
    if not points:
        raise ValueError(f"no selection runs: the layer of (b) is chosen on the {SELECTION} sweep's DiT")
    clash = sorted({setting(p, "seed") for p in points} & set(excluded_seeds))
    if clash:
        raise ValueError(f"the selection runs share seeds {clash} with the runs the slope is fitted on")
    return int(np.argmax(np.mean([np.asarray(p.similarity)[-1] for p in points], 0)))


def plot_similarity_along_denoising(points: list[Probe]):
    """Figures 5 and 10 at depth: every layer's kernel similarity against the sampler's time (from ``T`` on the left
    to ``t0`` on the right), mean over seeds. Returns the ``Figure``."""
    import matplotlib.pyplot as plt

    S = np.mean([p.similarity for p in points], 0)  # (K, D)
    times = points[0].times
    D = S.shape[1]
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(7.5, 4.2), constrained_layout=True)
    for k in range(D):
        ax.semilogx(times, S[:, k], "-", color=cmap(k / max(D - 1, 1)), label=f"layer {k + 1}")
    ax.invert_xaxis()
    ax.set_xlabel("diffusion time t (denoising runs left to right)")
    ax.set_ylabel("similarity to the kernel (Pearson r)")
    ax.legend(fontsize=7, ncol=2)
    return fig


def plot_attention_rows(points: list[Probe], layer: int | None = None):
    """Each point's attention at ``t0`` against the gap (the gap profile of its most kernel-like layer, or of
    ``layer``), beside the row-normalised kernel of its own process; one line per point, labelled by its ``ell``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.0), constrained_layout=True)
    for k, p in enumerate(points):
        best = int(np.argmax(p.similarity[-1])) if layer is None else layer
        prof = lag_profile(p.attention[-1, best])
        ker = lag_profile(kernel_attention(torch.as_tensor(np.asarray(p.Gamma, dtype=np.float64))).numpy())
        ell = setting(p, "ell")
        ax.plot(prof, "o-", color=f"C{k}", ms=3, label=f"$\\ell$={ell:g} (layer {best + 1})")
        ax.plot(ker, "--", color=f"C{k}", alpha=0.7)
    ax.set_xlabel("gap h (frames)")
    ax.set_ylabel("mean attention weight")
    ax.set_title("trained attention at $t_0$ (solid) and the row-normalised kernel (dashed)", fontsize=10)
    ax.legend(fontsize=8)
    return fig


__all__ = [
    "ELL_GRID",
    "FIRST_KERNEL_LAYER",
    "FOLLOW_MARGIN",
    "PAPER_DEPTH",
    "SELECTION",
    "SWEEPS",
    "WHITE_ELL",
    "attention_learned",
    "band_from_data",
    "bandwidth_slopes",
    "covers",
    "denoising_trend",
    "ends_apart",
    "follows",
    "from_layer",
    "learned_in_training",
    "plot_attention_rows",
    "plot_similarity_along_denoising",
    "rise_along_denoising",
    "selection_layer",
    "sweep_points",
    "target_slopes",
    "white_gamma1_log10",
    "widens",
]
