"""Figures of the bouncing-ball experiment: Figure 6 (temporal correlation of the latents), Figure 7 (frames along
one generated video), frame strips, GIF files and an in-page animation. Inputs are a
:class:`gptheory.results.Result` of :func:`~.experiment.bouncing_ball` or plain ``(T, H, W)`` videos."""

from __future__ import annotations

import os
import re

import matplotlib.pyplot as plt
import numpy as np

from ..results import Result
from .tracking import track


def _video(frames: np.ndarray) -> np.ndarray:
    """``(T, H, W)`` floats in ``[0, 1]`` from uint8 or float frames."""
    v = np.asarray(frames)
    return v.astype(np.float64) / 255.0 if v.dtype == np.uint8 else v.astype(np.float64)


def uniform_frames(T: int, count: int) -> np.ndarray:
    """``count`` frame indices spread uniformly over ``0 .. T-1`` (first and last included)."""
    return np.unique(np.round(np.linspace(0, T - 1, min(count, T))).astype(int))


def frame_strip(videos: dict[str, np.ndarray], count: int = 8, radius: float | None = None) -> plt.Figure:
    """One row per video (name -> ``(T, H, W)``), ``count`` frames chosen uniformly; with ``radius`` the tracked
    centre is marked (a red cross)."""
    rows = list(videos.items())
    T = _video(rows[0][1]).shape[0]
    idx = uniform_frames(T, count)
    fig, axes = plt.subplots(len(rows), len(idx), figsize=(1.3 * len(idx), 1.45 * len(rows)), squeeze=False)
    for r, (name, frames) in enumerate(rows):
        v = _video(frames)
        centres = track(v[None], radius).centres[0] if radius is not None else None
        for c, k in enumerate(idx):
            ax = axes[r, c]
            ax.imshow(v[k], cmap="gray", vmin=0, vmax=1)
            if centres is not None and np.isfinite(centres[k]).all():
                ax.plot(centres[k, 0] - 0.5, centres[k, 1] - 0.5, "r+", ms=6)
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"t={k}", fontsize=8)
        axes[r, 0].set_ylabel(name, fontsize=8)
    fig.tight_layout(pad=0.3)
    return fig


def plot_figure6(result: Result) -> plt.Figure:
    """Temporal correlation of the latents: training data, generated, and correlation against the lag."""
    a, num = result.arrays, result.numbers
    C_data, C_gen, C_true = a["corr_data"], a["corr_generated"], a["corr_true"]
    T = C_data.shape[0]
    fig, ax = plt.subplots(1, 3, figsize=(13, 3.8), constrained_layout=True)
    for axis, M, title in ((ax[0], C_data, "data latents"), (ax[1], C_gen, "generated latents")):
        im = axis.imshow(M, cmap="viridis", vmin=-0.5, vmax=1.0)
        axis.set_title(title)
        axis.set_xlabel("frame j")
        axis.set_ylabel("frame i")
    fig.colorbar(im, ax=ax[:2], shrink=0.8)

    def by_lag(M: np.ndarray) -> np.ndarray:
        return np.array([np.diagonal(M, h).mean() for h in range(T)])

    ax[2].plot(by_lag(C_data), "k-", label="data (training set)")
    ax[2].plot(by_lag(C_true), "C0--", label="held-out true videos")
    ax[2].plot(by_lag(C_gen), "C3.", label="generated")
    ax[2].axhline(0, color="gray", lw=0.6)
    ax[2].set_xlabel("lag (frames)")
    ax[2].set_title(f"rel. error: generated {num['correlation_error_generated']:.3f}, "
                    f"true {num['correlation_error_true']:.3f}", fontsize=9)  # fmt: skip
    ax[2].legend(fontsize=8)
    return fig


def plot_figure7(result: Result, video: int = 0, count: int = 8) -> plt.Figure:
    """Frames chosen uniformly along one generated video (the tracked centre marked)."""
    radius = result.config["ball"]["radius"]
    return frame_strip({f"generated #{video}": result.arrays["generated"][video]}, count, radius)


def save_gif(frames: np.ndarray, path: str | os.PathLike, scale: int = 4, fps: int = 10) -> None:
    """Write a ``(T, H, W)`` video as an animated GIF, each pixel drawn as ``scale x scale`` (Pillow)."""
    from PIL import Image

    v = (np.clip(_video(frames), 0, 1) * 255).round().astype(np.uint8)
    v = v.repeat(scale, axis=1).repeat(scale, axis=2)
    images = [Image.fromarray(f) for f in v]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)


def animation_html(videos: dict[str, np.ndarray], fps: int = 8) -> str:
    """An HTML/JavaScript player (matplotlib's ``to_jshtml``) of videos side by side (name -> ``(T, H, W)``)."""
    from matplotlib import animation

    names = list(videos)
    vs = [_video(videos[k]) for k in names]
    fig, axes = plt.subplots(1, len(vs), figsize=(2.2 * len(vs), 2.4), squeeze=False)
    ims = []
    for ax, name, v in zip(axes[0], names, vs, strict=True):
        ims.append(ax.imshow(v[0], cmap="gray", vmin=0, vmax=1))
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()

    def update(k: int):
        for im, v in zip(ims, vs, strict=True):
            im.set_data(v[k])
        return ims

    anim = animation.FuncAnimation(fig, update, frames=min(v.shape[0] for v in vs), interval=1000 // fps, blit=True)
    html = anim.to_jshtml(default_mode="loop")
    plt.close(fig)
    return _offline_controls(html)


# matplotlib's player draws its buttons with Font Awesome from a CDN: offline the stylesheet fails to load (a console
# error, blank buttons), so the icons become plain Unicode symbols and the stylesheet link goes
_ICONS = {
    "fa fa-play fa-flip-horizontal": "\u25c0",
    "fa fa-fast-backward": "\u23ee",
    "fa fa-step-backward": "\u23ea",
    "fa fa-pause": "\u23f8",
    "fa fa-play": "\u25b6",
    "fa fa-step-forward": "\u23e9",
    "fa fa-fast-forward": "\u23ed",
    "fa fa-minus": "\u2212",
    "fa fa-plus": "+",
}


def _offline_controls(html: str) -> str:
    """``html`` of ``to_jshtml`` without the Font Awesome stylesheet, its icons as Unicode symbols."""
    html = re.sub(r'<link rel="stylesheet"\s*href="https://[^"]*font-awesome[^"]*">', "", html)
    for cls, symbol in _ICONS.items():
        html = html.replace(f'<i class="{cls}"></i>', symbol)
    return html


__all__ = ["animation_html", "frame_strip", "plot_figure6", "plot_figure7", "save_gif", "uniform_frames"]
