"""Bouncing-ball videos (Section 6.2): an exact, seeded generator with anti-aliased grayscale frames.

A ball of radius ``r`` (pixels) moves in the square box that is the frame, ``[0, size]^2`` in pixel units (pixel
``(i, j)`` covers ``[j, j + 1] x [i, i + 1]``: ``x`` is the column, ``y`` the row). Its centre stays in
``[r, size - r]^2``. It starts at a uniformly random centre, moves at ``speed`` pixels per frame in a uniformly
random direction and reflects elastically off the walls: at a hit the velocity component normal to the wall
changes sign, the other is kept, so the speed never changes.

:func:`simulate` steps the motion frame by frame and resolves each wall hit *inside* the frame interval (the
exact reflected position ``2 w - x`` and the exact hit time), so the trajectory has no time-step error; the
closed form it must match is the triangle wave :func:`unfolded_position` (the tests compare the two).
:func:`render` draws discs with an anti-aliased edge: a pixel's intensity is ``clip(r + 1/2 - dist, 0, 1)``, with
``dist`` the distance from the pixel's centre to the ball's centre -- about the fraction of the pixel the disc
covers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..validation import check_geometry, nonneg_int, positive_int


@dataclass
class Videos:
    """Bouncing-ball videos and their true motion.

    Attributes:
        frames: ``(n, T, size, size)`` float32 intensities in ``[0, 1]``.
        positions: ``(n, T, 2)`` float64 true centres ``(x, y)`` in pixels, at the frame times ``0, 1, ..., T-1``.
        velocities: ``(n, T, 2)`` float64 velocity (pixels per frame) right after each frame time.
        hits: ``(m, 4)`` float64, one row per wall hit: video index, exact hit time (frames), axis (0: x, 1: y),
            wall (0: low ``r``, 1: high ``size - r``).
        size, radius, speed: the geometry (pixels, pixels, pixels per frame).
    """

    frames: torch.Tensor
    positions: np.ndarray
    velocities: np.ndarray
    hits: np.ndarray
    size: int
    radius: float
    speed: float

    @property
    def T(self) -> int:
        return self.frames.shape[1]


def initial_state(n: int, size: int, radius: float, speed: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded start: centres ``(n, 2)`` uniform in ``[r, size - r]^2`` and velocities ``(n, 2)`` of norm ``speed``
    in a uniform direction."""
    rng = np.random.default_rng(nonneg_int("seed", seed))
    p0 = rng.uniform(radius, size - radius, size=(positive_int("n", n), 2))
    angle = rng.uniform(0.0, 2 * np.pi, size=n)
    v0 = speed * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return p0, v0


def simulate(p0: np.ndarray, v0: np.ndarray, T: int, low: float, high: float):
    """Exact elastic motion of points in ``[low, high]^2``, sampled at frame times ``0 .. T-1``.

    Each frame interval moves every point by its velocity; a coordinate that passes a wall is reflected about it
    (``x -> 2 w - x``), its velocity component flips, and the hit time ``k + (w - x_k) / v`` is recorded. With
    ``|v| < high - low`` a coordinate hits at most one wall per interval, so this is exact.

    Returns ``positions (n, T, 2)``, ``velocities (n, T, 2)`` and ``hits (m, 4)`` as in :class:`Videos`.
    """
    n = p0.shape[0]
    pos = np.empty((n, T, 2))
    vel = np.empty((n, T, 2))
    p, v = p0.astype(np.float64).copy(), v0.astype(np.float64).copy()
    hits = []
    for k in range(T):
        pos[:, k], vel[:, k] = p, v
        q = p + v
        for wall, w in ((0, low), (1, high)):
            crossed = q < w if wall == 0 else q > w
            for b, a in zip(*np.nonzero(crossed), strict=True):
                hits.append((b, k + (w - p[b, a]) / v[b, a], a, wall))
            q = np.where(crossed, 2 * w - q, q)
            v = np.where(crossed, -v, v)
        p = q
    hits_arr = np.array(sorted(hits), dtype=np.float64).reshape(-1, 4)
    return pos, vel, hits_arr


def unfolded_position(p0: np.ndarray, v0: np.ndarray, t: np.ndarray, low: float, high: float) -> np.ndarray:
    """The closed form of elastic motion in ``[low, high]``: the free motion ``p0 + v0 t`` folded by the triangle
    wave of period ``2 (high - low)``. ``p0, v0: (n, 2)``, ``t: (T,)`` -> ``(n, T, 2)``."""
    W = high - low
    u = np.mod(p0[:, None, :] - low + v0[:, None, :] * t[None, :, None], 2 * W)
    return low + np.where(u <= W, u, 2 * W - u)


def render(positions: np.ndarray | torch.Tensor, size: int, radius: float, chunk: int = 4096) -> torch.Tensor:
    """Anti-aliased discs: ``positions (..., 2)`` (pixels) -> frames ``(..., size, size)`` float32 in ``[0, 1]``.

    Intensity ``clip(radius + 1/2 - |c_ij - p|, 0, 1)`` at pixel centres ``c_ij = (j + 1/2, i + 1/2)``.
    """
    p = torch.as_tensor(positions, dtype=torch.float32)
    lead = p.shape[:-1]
    p = p.reshape(-1, 2)
    c = torch.arange(size, dtype=torch.float32) + 0.5
    out = []
    for part in p.split(chunk):
        dx = c[None, None, :] - part[:, 0, None, None]
        dy = c[None, :, None] - part[:, 1, None, None]
        out.append((radius + 0.5 - torch.sqrt(dx * dx + dy * dy)).clamp_(0.0, 1.0))
    frames = torch.cat(out) if out else torch.zeros(0, size, size)
    return frames.reshape(*lead, size, size)


def make_videos(n: int, T: int, size: int = 32, radius: float = 3.0, speed: float = 2.0, seed: int = 0) -> Videos:
    """``n`` seeded bouncing-ball videos of ``T`` frames of ``size x size`` pixels (see the module docstring).

    Raises ``ValueError`` naming the parameter for a ball that does not fit the frame (``2 radius >= size``),
    fewer than 2 frames, or a speed outside ``(0, size - 2 radius)``.
    """
    size, radius, speed = check_geometry(size, radius, speed, T)
    p0, v0 = initial_state(positive_int("n", n), size, radius, speed, seed)
    pos, vel, hits = simulate(p0, v0, T, radius, size - radius)
    return Videos(render(pos, size, radius), pos, vel, hits, size, radius, speed)


def random_frames(n: int, size: int, radius: float, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    """``n`` single frames ``(n, size, size)`` with the ball at uniform random centres ``(n, 2)`` (VAE training)."""
    check_geometry(size, radius, 1e-9)
    rng = np.random.default_rng(nonneg_int("seed", seed))
    centres = rng.uniform(radius, size - radius, size=(positive_int("n", n), 2))
    return render(centres, size, radius), centres


def ball_mass(radius: float) -> float:
    """Total intensity of the rendered profile ``clip(r + 1/2 - dist, 0, 1)`` integrated over the plane:
    ``pi r^2 + pi / 12`` (a pixel sum matches it up to the sampling of the edge)."""
    return math.pi * radius * radius + math.pi / 12


__all__ = [
    "Videos",
    "ball_mass",
    "initial_state",
    "make_videos",
    "random_frames",
    "render",
    "simulate",
    "unfolded_position",
]
