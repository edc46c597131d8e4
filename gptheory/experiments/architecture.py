"""Appendix D.2, the chapter "Does the architecture matter?": the DiT against UNets, and the error against the
sequence length and the depth (Figures 11, 12 and 13).

Every point is a :class:`~.probe.Probe` (one trained network measured from every side). The sweeps
(``python -m gptheory sweep NAME``):

* ``architecture``: the DiT against a UNet of the same size and diffusers' ``UNet1DModel`` (:data:`COMPARED_ARCHS`),
  with training dynamics (Figures 11 and 13);
* ``architecture-receptive-field``: one-level UNets with short (``k=3``) and long (``k=7``) convolutions, the
  filter-size question of Figure 11;
* ``architecture-length`` and ``architecture-depth``: the error against the sequence length ``N`` and the number of
  blocks (Figure 12);
* ``architecture-lr``: each architecture's learning rate chosen on its own validation loss from one grid
  (:data:`LR_GRID`, :func:`tuned_lr`), trained to convergence (:data:`~.probe.CALIBRATED`) on a seed the
  comparisons do not use (:data:`TUNING_SEEDS`), so that the UNets do not inherit a recipe tuned on the DiT.

These are the calibrated sweeps (trained to convergence, each network at its own tuned rate,
:data:`TUNED_LR`, measured against the law at ``t0``). :func:`architecture` returns the chapter's sweeps; the figures
(``plot_*``) read their records; the verdicts on the paper's claims are :mod:`.architecture_claims`' (Figures 11
and 12) and :mod:`.dynamics`' (Figure 13).
"""

from __future__ import annotations

import numpy as np

from ..attention import lag_profile
from ..profiles import PROFILES
from ..profiles import profile as active_profile
from ..results import group, value
from ..sweep import run_sweep
from . import dynamics
from .probe import CALIBRATED, SEEDS3, SEEDS5, Probe, probe_sweep, trains
from .tuning import COMPARED_ARCHS, TUNING, recipe, tuned

N_GRID = {"smoke": (8, 16), "cpu": (8, 16, 32, 64), "gpu": (32, 64, 128, 256)}

# ------------------------------------------------------------------------------------------ the calibrated sweeps
# Every network trained to convergence of its excess validation loss (the stopping rule: dit_learns.DIT_LEARNS) with its
# own recipe (learning rate and cap, :mod:`.tuning`), and measured against the law at t0 beside its sampling floor.
# The comparisons run five seeds; the length and depth sweeps three (only a large effect decides their verdicts).
DYNAMICS_POINTS = {"smoke": 3, "cpu": 24, "gpu": 24}  # training-dynamics measurements, log-spaced from the first epoch
# 12 blocks in the cpu grid: something deeper than the 8 we read in App. D.2, so that "8 suffice" can fail (the 12-block
# points are attention-learned-depth's, the same trainings)
DEPTH_GRID = {"smoke": (1, 3), "cpu": (1, 2, 4, 8, 12), "gpu": (2, 4, 8, 12, 16)}
# The filter-size sweep's verdict is "not testable" in the cpu profile whatever the seeds: at N = 32, ell = 4 no gap
# beyond the 3-tap UNet's reach carries a resolvable correlation (the law says so, :func:`.architecture_claims.
# filter_jump`). Four seeds show its table; a fifth would cost two trainings and decide nothing.
RECEPTIVE_FIELD_SEEDS = {**SEEDS5, "cpu": SEEDS5["cpu"][:4]}


SWEEPS = (
    probe_sweep(
        "architecture",
        "Figures 11 and 13: the DiT against a UNet of the same size and diffusers' UNet1DModel, each at its own tuned "
        "learning rate, with training dynamics in epochs",
        base={p: c.replace(eval_points=DYNAMICS_POINTS[p]) for p, c in CALIBRATED.items()},
        linked={p: {"arch": {a: recipe(p, a) for a in COMPARED_ARCHS}} for p in PROFILES},
        arch={p: COMPARED_ARCHS for p in PROFILES},
        seed=SEEDS5,
    ),
    probe_sweep(
        "architecture-receptive-field",
        "Figure 11's filter-size question: one-level UNets with short (k=3) and long (k=7) convolutions",
        base=tuned("unet", levels=1),
        kernel_size={p: (3, 7) for p in PROFILES},
        seed=RECEPTIVE_FIELD_SEEDS,
    ),
    probe_sweep(
        "architecture-length",
        "Figure 12 (left): the error against the sequence length N",
        base=tuned(),
        N=N_GRID,
        seed=SEEDS3,
    ),
    probe_sweep(
        "architecture-depth",
        "Figure 12 (right): the error against the number of blocks",
        base=tuned(),
        depth=DEPTH_GRID,
        seed=SEEDS3,
    ),
    TUNING,
)


def architecture(profile: str | None = None, progress: bool = True, train: bool | None = None) -> dict:
    """The chapter's sweeps of ``profile`` (:data:`SWEEPS`, the calibrated ones, with ``architecture-lr``) as
    :class:`gptheory.sweep.SweepResult` by name: shipped or cached points are loaded, missing ones trained (and
    cached) where ``train`` (default: :func:`~.probe.trains` of the profile; the cpu profile only loads)."""
    profile = active_profile() if profile is None else profile
    train = trains(profile) if train is None else train
    return {s.name: run_sweep(s, profile, out=None, progress=progress, train=train) for s in SWEEPS}


# ---------------------------------------------------------------------------------------------- figures
def plot_kernels(models: dict[str, Probe]):
    """Figure 11, first column: the true temporal kernel and each model's estimate ``Gamma_hat`` (heat maps), and all
    of them against the lag ``h`` (diagonal means). ``models``: label -> one point (one seed). Returns the Figure."""
    import matplotlib.pyplot as plt

    first = next(iter(models.values()))
    panels = {"truth": first.Gamma, **{k: p.Gamma_hat for k, p in models.items()}}
    fig, ax = plt.subplots(1, len(panels) + 1, figsize=(3.4 * (len(panels) + 1), 3.3), constrained_layout=True)
    lim = float(np.abs(first.Gamma).max())
    for a, (label, M) in zip(ax, panels.items(), strict=False):
        im = a.imshow(M, cmap="viridis", vmin=-0.15 * lim, vmax=lim)
        a.set_title(label)
        a.set_xlabel("frame j")
    ax[0].set_ylabel("frame i")
    fig.colorbar(im, ax=ax[: len(panels)], shrink=0.8)
    last = ax[-1]
    last.plot(lag_profile(first.Gamma), "k-", lw=2, label="truth")
    for k, (label, p) in enumerate(models.items()):
        last.plot(lag_profile(p.Gamma_hat), ".-", color=f"C{k}", label=label, alpha=0.8)
    last.set_xlabel("gap h (frames)")
    last.set_title("kernel against the gap")
    last.legend(fontsize=8)
    return fig


def plot_pair_blocks(models: dict[str, Probe]):
    """Figure 11, other columns: the cross-frame covariances ``C_{0,h}: (d, d)`` at a few gaps ``h``, the truth
    ``Gamma_{0h} Sigma`` in the first row and each model's estimate below, on one colour scale per gap."""
    import matplotlib.pyplot as plt

    first = next(iter(models.values()))
    gaps = first.pair_gaps
    rows = {"truth": np.stack([first.Gamma[0, h] * first.Sigma for h in gaps])}
    rows |= {k: p.pair_blocks for k, p in models.items()}
    fig, ax = plt.subplots(len(rows), len(gaps), figsize=(2.3 * len(gaps), 2.1 * len(rows)), constrained_layout=True)
    for j, h in enumerate(gaps):
        lim = float(np.abs(rows["truth"][j]).max()) or 1.0
        for i, (label, blocks) in enumerate(rows.items()):
            a = ax[i, j]
            a.imshow(blocks[j], cmap="RdBu_r", vmin=-lim, vmax=lim)
            a.set_xticks([])
            a.set_yticks([])
            if i == 0:
                a.set_title(f"$C_{{0,{h}}}$, $\\gamma$={first.Gamma[0, h]:.2g}", fontsize=10)
            if j == 0:
                a.set_ylabel(label)
    return fig


def plot_gap_errors(groups: dict[str, list[Probe]]):
    """Errors by gap, mean over seeds: of the temporal kernel (left) and of the cross-frame covariances (right), with
    the true-sample floor dashed and each network's receptive field as a dotted vertical line."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    for a, (gen, true, title) in zip(
        ax,
        (("gap_error", "gap_error_true", "temporal kernel, RMS error at gap h"),
         ("block_error", "block_error_true", "cross-frame covariance $C_{i,i+h}$, error / $\\|\\Sigma\\|$")),
        strict=True,
    ):  # fmt: skip
        for k, (label, pts) in enumerate(groups.items()):
            a.semilogy(np.mean([getattr(p, gen) for p in pts], 0), ".-", color=f"C{k}", label=label)
            rf = pts[0].receptive_field
            if rf < pts[0].Gamma.shape[0] - 1:
                a.axvline(rf, color=f"C{k}", ls=":", alpha=0.8)
        a.semilogy(np.mean([getattr(p, true) for pts in groups.values() for p in pts], 0), "k--", label="true samples")
        a.set_xlabel("gap h (frames)")
        a.set_title(title, fontsize=10)
    ax[0].legend(fontsize=8)
    return fig


def plot_dynamics(groups: dict[str, list[Probe]]):
    """Figure 13: the temporal and spatial errors of samples generated during training (:func:`.dynamics.curves`:
    scale-free correlations against the epoch, up to the network that generated), each seed faint and the mean over
    seeds, with the floor of as many true sequences dashed."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    for a, name in zip(ax, ("temporal", "spatial"), strict=True):
        floors = []
        for k, (label, pts) in enumerate(groups.items()):
            x = max((dynamics.timeline(p) for p in pts), key=len)
            ys = [dynamics.curves(p)[name][0] for p in pts]
            for p, y in zip(pts, ys, strict=True):
                a.loglog(dynamics.timeline(p), y, color=f"C{k}", alpha=0.25)
            mean = dynamics.aligned(ys).mean(0)
            a.loglog(x[: len(mean)], mean, "o-", color=f"C{k}", label=label)
            floors += [dynamics.curves(p)[name][1] for p in pts]
        a.axhline(float(np.mean(floors)), color="k", ls="--", label="true samples")
        a.set_xlabel("epoch")
        a.set_title(f"{name} error of generated sequences", fontsize=10)
    ax[0].legend(fontsize=8)
    return fig


def plot_gap_dynamics(points: list[Probe]):
    """The error of the temporal correlation at each gap ``h >= 1`` (rows; it is 1 at gap 0, nothing to show there)
    against the epoch (columns), up to the network that generated (:func:`.dynamics.readings`), mean over seeds on
    their common measurements, on a log colour scale; the true kernel ``gamma(h)`` beside it, dotted at the smallest
    correlation timed (:data:`.dynamics.RESOLVABLE`)."""
    import matplotlib.colors as colors
    import matplotlib.pyplot as plt

    E = dynamics.aligned([dynamics.readings(p, best=False).corr_gap[:, 1:] for p in points]).mean(0)
    x, h0 = dynamics.timeline(points[0]), 1
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [3, 1]}, constrained_layout=True)
    im = ax[0].imshow(E.T, aspect="auto", origin="lower", cmap="magma", norm=colors.LogNorm(),
                      extent=(-0.5, E.shape[0] - 0.5, h0 - 0.5, h0 + E.shape[1] - 0.5))  # fmt: skip
    ticks = range(0, E.shape[0], max(1, E.shape[0] // 8))
    ax[0].set_xticks(list(ticks), [f"{x[i]:.3g}" for i in ticks])
    ax[0].set_xlabel("epoch")
    ax[0].set_ylabel("gap h")
    ax[0].set_title("RMS error of the temporal correlation at gap h", fontsize=10)
    fig.colorbar(im, ax=ax[0])
    ax[1].plot(lag_profile(points[0].Gamma), np.arange(points[0].Gamma.shape[0]), "k-")
    ax[1].set_xlabel("$\\gamma(h)$")
    ax[1].axvline(dynamics.RESOLVABLE, color="k", ls=":", lw=0.8)  # the gaps timed lie on its right
    ax[1].set_ylim(h0 - 0.5, points[0].Gamma.shape[0] - 0.5)
    return fig


def plot_versus(points: list[Probe], axis: str, names: tuple[str, ...], logx: bool = False):
    """Figure 12: metrics ``names`` (dotted, e.g. ``"paper_relative_error"``) against the setting ``axis``, mean over
    seeds with each seed as a dot, one panel per metric."""
    import matplotlib.pyplot as plt

    grouped = group(points, axis)
    xs = np.array(list(grouped), dtype=float)
    fig, ax = plt.subplots(1, len(names), figsize=(5.2 * len(names), 3.8), constrained_layout=True, squeeze=False)
    for a, name in zip(ax[0], names, strict=True):
        for x, pts in grouped.items():
            a.plot([x] * len(pts), [value(p, name) for p in pts], "o", color="C0", alpha=0.4, ms=4)
        a.plot(xs, [np.mean([value(p, name) for p in pts]) for pts in grouped.values()], "-", color="C0")
        if name.startswith("generated."):
            true = name.replace("generated.", "true.")
            a.plot(xs, [np.mean([value(p, true) for p in pts]) for pts in grouped.values()], "k--", label="true")
            a.legend(fontsize=8)
        a.set_xlabel(axis)
        a.set_xscale("log" if logx else "linear")
        a.set_xticks(xs, [f"{x:g}" for x in xs])
        a.set_title(name, fontsize=10)
    return fig


__all__ = [
    "DEPTH_GRID",
    "DYNAMICS_POINTS",
    "N_GRID",
    "SWEEPS",
    "architecture",
    "plot_dynamics",
    "plot_gap_dynamics",
    "plot_gap_errors",
    "plot_kernels",
    "plot_pair_blocks",
    "plot_versus",
]
