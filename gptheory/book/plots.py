"""Figures shared by several chapters (matplotlib; the backend is left to the caller)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch


def _np(a: torch.Tensor | np.ndarray) -> np.ndarray:
    return a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)


def heatmaps(
    mats: Sequence[torch.Tensor | np.ndarray],
    titles: Sequence[str],
    cmap: str = "viridis",
    shared_scale: bool = True,
    size: float = 3.0,
    suptitle: str | None = None,
) -> plt.Figure:
    """A row of square heat maps, one per matrix, with a shared colour scale by default."""
    arrs = [_np(m) for m in mats]
    vmin = min(a.min() for a in arrs) if shared_scale else None
    vmax = max(a.max() for a in arrs) if shared_scale else None
    fig, axes = plt.subplots(1, len(arrs), figsize=(size * len(arrs) + 0.6, size), squeeze=False)
    for ax, a, title in zip(axes[0], arrs, titles, strict=True):
        im = ax.imshow(a, cmap=cmap, vmin=vmin, vmax=vmax)
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if not shared_scale:
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    if shared_scale:
        fig.colorbar(im, ax=list(axes[0]), fraction=0.046 / max(1, len(arrs) / 2), pad=0.02)
    if suptitle:
        fig.suptitle(suptitle)
    return fig
