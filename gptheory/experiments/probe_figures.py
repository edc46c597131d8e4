"""Figures of the probe sweeps (:mod:`.probe`): Figures 11, 12 and 13 of Appendix D.2 and the attention
panels of the chapter "Is the attention pattern learned?".

Every function takes loaded :class:`~.probe.Probe` records (grouped by a label where several networks are
compared) and returns a matplotlib ``Figure``; the chapters show it. Means are over seeds, and each seed is drawn
where the panel has room for it.
"""

from __future__ import annotations

import numpy as np

from ..attention import gap_profile, kernel_attention
from .probe import Probe
from .probe_analysis import group, setting
from .sample_complexity import value as metric


def _lag(M: np.ndarray) -> np.ndarray:
    """Mean of ``M: (N, N)`` along each diagonal ``h >= 0``, ``(N,)`` (:func:`gptheory.attention.gap_profile`)."""
    return gap_profile(_tensor(M))[M.shape[0] - 1 :].numpy()


def kernels(models: dict[str, Probe]):
    """Figure 11, first column: the true temporal kernel and each model's estimate ``Gamma_hat`` (heat maps), and all
    of them against the lag ``h`` (diagonal means). ``models``: label -> one point (one seed)."""
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
    last.plot(_lag(first.Gamma), "k-", lw=2, label="truth")
    for k, (label, p) in enumerate(models.items()):
        last.plot(_lag(p.Gamma_hat), ".-", color=f"C{k}", label=label, alpha=0.8)
    last.set_xlabel("gap h (frames)")
    last.set_title("kernel against the gap")
    last.legend(fontsize=8)
    return fig


def pair_blocks(models: dict[str, Probe]):
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


def gap_errors(groups: dict[str, list[Probe]]):
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


def dynamics(groups: dict[str, list[Probe]]):
    """Figure 13: the temporal and spatial errors of samples generated during training against the step (mean over
    seeds, each seed faint), with the floor of as many true sequences dashed."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 2, figsize=(11, 3.8), constrained_layout=True)
    for a, (name, floor_index) in zip(ax, (("eval_temporal", 0), ("eval_spatial", 1)), strict=True):
        for k, (label, pts) in enumerate(groups.items()):
            steps = pts[0].eval_steps
            for p in pts:
                a.loglog(p.eval_steps, getattr(p, name), color=f"C{k}", alpha=0.25)
            a.loglog(steps, np.mean([getattr(p, name) for p in pts], 0), "o-", color=f"C{k}", label=label)
        floor = np.mean([p.eval_true[floor_index] for pts in groups.values() for p in pts])
        a.axhline(floor, color="k", ls="--", label="true samples")
        a.set_xlabel("training step")
        a.set_title(name.replace("eval_", "") + " error of generated sequences", fontsize=10)
    ax[0].legend(fontsize=8)
    return fig


def gap_dynamics(points: list[Probe]):
    """The temporal-kernel error at each gap (rows) against the training step (columns), mean over seeds, on a log
    colour scale; the true kernel ``gamma(h)`` beside it for reference."""
    import matplotlib.colors as colors
    import matplotlib.pyplot as plt

    E = np.mean([p.eval_gap_error for p in points], 0)  # (E, N)
    steps = points[0].eval_steps
    fig, ax = plt.subplots(1, 2, figsize=(11, 3.6), gridspec_kw={"width_ratios": [3, 1]}, constrained_layout=True)
    im = ax[0].imshow(E.T, aspect="auto", origin="lower", cmap="magma", norm=colors.LogNorm())
    ax[0].set_xticks(range(len(steps)), [str(s) for s in steps])
    ax[0].set_xlabel("training step")
    ax[0].set_ylabel("gap h")
    ax[0].set_title("RMS error of the temporal kernel at gap h", fontsize=10)
    fig.colorbar(im, ax=ax[0])
    ax[1].plot(_lag(points[0].Gamma), np.arange(E.shape[1]), "k-")
    ax[1].set_xlabel("$\\gamma(h)$")
    ax[1].set_ylim(-0.5, E.shape[1] - 0.5)
    return fig


def versus(points: list[Probe], axis: str, names: tuple[str, ...], logx: bool = False):
    """Figure 12: metrics ``names`` (dotted, e.g. ``"paper_relative_error"``) against the setting ``axis``, mean over
    seeds with each seed as a dot, one panel per metric."""
    import matplotlib.pyplot as plt

    grouped = group(points, axis)
    xs = np.array(list(grouped), dtype=float)
    fig, ax = plt.subplots(1, len(names), figsize=(5.2 * len(names), 3.8), constrained_layout=True, squeeze=False)
    for a, name in zip(ax[0], names, strict=True):
        for x, pts in grouped.items():
            a.plot([x] * len(pts), [metric(p, name) for p in pts], "o", color="C0", alpha=0.4, ms=4)
        a.plot(xs, [np.mean([metric(p, name) for p in pts]) for pts in grouped.values()], "-", color="C0")
        if name.startswith("generated."):
            true = name.replace("generated.", "true.")
            a.plot(xs, [np.mean([metric(p, true) for p in pts]) for pts in grouped.values()], "k--", label="true")
            a.legend(fontsize=8)
        a.set_xlabel(axis)
        a.set_xscale("log" if logx else "linear")
        a.set_xticks(xs, [f"{x:g}" for x in xs])
        a.set_title(name, fontsize=10)
    return fig


def similarity_along_denoising(points: list[Probe]):
    """Figures 5 and 10 at depth: every layer's kernel similarity against the sampler's time (from ``T`` on the left
    to ``t0`` on the right), mean over seeds, with the similarity at initialisation as the leftmost markers."""
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


def attention_rows(points: list[Probe], layer: int | None = None):
    """Each point's attention at ``t0`` against the gap (the gap profile of its most kernel-like layer, or of
    ``layer``), beside the row-normalised kernel of its own process; one line per point, labelled by its ``ell``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.0), constrained_layout=True)
    for k, p in enumerate(points):
        best = int(np.argmax(p.similarity[-1])) if layer is None else layer
        prof = _lag(p.attention[-1, best])
        ker = _lag(kernel_attention(_tensor(p.Gamma)).numpy())
        ell = setting(p, "ell")
        ax.plot(prof, "o-", color=f"C{k}", ms=3, label=f"$\\ell$={ell:g} (layer {best + 1})")
        ax.plot(ker, "--", color=f"C{k}", alpha=0.7)
    ax.set_xlabel("gap h (frames)")
    ax.set_ylabel("mean attention weight")
    ax.set_title("trained attention at $t_0$ (solid) and the row-normalised kernel (dashed)", fontsize=10)
    ax.legend(fontsize=8)
    return fig


def _tensor(a: np.ndarray):
    import torch

    return torch.as_tensor(np.asarray(a, dtype=np.float64))


__all__ = [
    "attention_rows",
    "dynamics",
    "gap_dynamics",
    "gap_errors",
    "kernels",
    "pair_blocks",
    "similarity_along_denoising",
    "versus",
]
