"""The chapter "Is the attention pattern learned?": the attention of trained DiTs against the kernel (Figures 5 and 10
at the paper's depth, the bandwidth question, and data white in time).

Every point is a :class:`~.probe.Probe`. The sweeps (``python -m gptheory sweep NAME``):

* ``attention-learned-depth``: the paper's 12 blocks over five seeds, every layer's attention along denoising;
* ``attention-learned-bandwidth``: does the fitted attention bandwidth follow ``ell``?
* ``attention-learned-white``: a DiT trained on data white in time (``Gamma = I``, :data:`WHITE_ELL`).

:func:`attention_learned` returns them with the ``architecture`` sweep (:mod:`.architecture`), whose DiT points are
the chapter's base network; the figures (``plot_*``) and :func:`denoising_trend` read their records. These are the
calibrated sweeps (trained to convergence, measured against the law at ``t0``).
"""

from __future__ import annotations

import numpy as np
import torch

from ..attention import kernel_attention, lag_profile
from ..profiles import PROFILES
from ..results import setting
from ..statistics import rank_correlation
from ..sweep import run_sweep
from . import architecture
from .probe import SEEDS3, SEEDS5, Probe, probe_sweep
from .tuning import tuned

WHITE_ELL = 0.05  # a bandwidth so small that Gamma = I: exp(-(1 / 0.05)^2) = exp(-400) ~ 1e-174
PAPER_DEPTH = {"smoke": (3,), "cpu": (12,), "gpu": (12,)}  # the paper's 12 blocks (smoke: its largest depth)
ELL_GRID = {"smoke": (1.0, 2.0), "cpu": (1.0, 2.0, 4.0, 8.0), "gpu": (2.0, 4.0, 8.0, 16.0)}

# The calibrated sweeps (protocol 2, issue 20): trained to convergence at the DiT's tuned learning rate
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


def attention_learned(profile: str | None = None, progress: bool = True) -> dict:
    """The ``architecture`` sweep (its DiT points are the base network) and this chapter's sweeps of ``profile`` as
    :class:`gptheory.sweep.SweepResult` by name: shipped or cached points are loaded, missing ones trained (the
    calibrated sweeps)."""
    chosen = (architecture.SWEEPS[0], *SWEEPS)
    return {s.name: run_sweep(s, profile, out=None, progress=progress) for s in chosen}


def denoising_trend(p: Probe) -> np.ndarray:
    """Per layer, Spearman's rank correlation of the kernel similarity with the progress of denoising (the sampler's
    times from ``T`` down to ``t0``), ``(D,)``: positive when similarity rises as the noise is removed."""
    progress = np.arange(len(p.times))  # times are stored from T down to t0
    return np.array([rank_correlation(progress, p.similarity[:, k]) for k in range(p.similarity.shape[1])])


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
    "PAPER_DEPTH",
    "SWEEPS",
    "WHITE_ELL",
    "attention_learned",
    "denoising_trend",
    "plot_attention_rows",
    "plot_similarity_along_denoising",
]
