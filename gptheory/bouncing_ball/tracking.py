"""Physics instead of eyeballing: find the ball in each frame and measure how it moves.

:func:`track` finds, in every frame, the connected regions brighter than ``threshold`` (a "blob"), keeps the one
with the most intensity, and returns its intensity-weighted centroid (over the blob grown by one pixel, so the
anti-aliased edge counts). A frame shows *exactly one ball* when it has one blob and that blob's intensity is
within a factor ``mass_tol`` of one rendered ball's (:func:`gptheory.bouncing_ball.videos.ball_mass`).

:func:`motion_metrics` turns tracks ``(n, T, 2)`` into the physical checks of Section 6.2's bouncing ball:

* *bounces*: on each axis, the step velocity changes sign between two steps that move at least
  ``min_step * speed`` along it. The steps between the last frame before and the first frame after a bounce may
  contain the hit and are left out of everything else.
* *speed constancy*: within each straight segment (between bounces) the relative spread ``std / mean`` of the
  step speeds, and the relative error of the segment's mean speed against the data's ``speed``.
* *reflection law*: a line ``c + v t`` is fitted to the (up to ``fit_frames``) frames before and after each
  bounce; the angle between the outgoing velocity and the incoming one mirrored at the wall is the reflection
  error (degrees), ``|v_out| / |v_in| - 1`` the loss of speed.
* *wall-hit timing*: the incoming line reaches the wall at ``t_in``, the outgoing line left it at ``t_out``; for
  elastic motion both are the hit time, so ``|t_in - t_out|`` (frames) measures whether a bounce happens when the
  speed says it should. The turning point (where the two lines cross) should lie on the wall: ``wall_gap`` (px).
* *never leaves the box*: the fraction of frames whose centre lies more than ``tol`` pixels outside
  ``[r, size - r]^2``.

On exact trajectories every error is zero up to rounding (tested); on tracked true frames it is the tracker's
sub-pixel error. Units: pixels and frames.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage

from .videos import ball_mass

_IN_PLANE = np.zeros((3, 3, 3), dtype=bool)
_IN_PLANE[1] = True  # 8-connected within a frame, never across frames


@dataclass
class Track:
    """What :func:`track` finds.

    Attributes:
        centres: ``(n, T, 2)`` intensity-weighted centroid ``(x, y)`` of the brightest blob (pixels; NaN when a
            frame has no blob).
        blobs: ``(n, T)`` number of connected regions above the threshold.
        mass: ``(n, T)`` intensity of the brightest blob grown by one pixel, over one ball's.
        one_ball: ``(n, T)`` exactly one blob, of one ball's intensity within ``mass_tol``.
    """

    centres: np.ndarray
    blobs: np.ndarray
    mass: np.ndarray
    one_ball: np.ndarray


def track(frames: torch.Tensor | np.ndarray, radius: float, threshold: float = 0.5, mass_tol: float = 0.5) -> Track:
    """Find the ball in ``frames: (n, T, H, W)`` (intensities, ideally in ``[0, 1]``); see the module docstring."""
    f = frames.detach().cpu().numpy() if isinstance(frames, torch.Tensor) else np.asarray(frames)
    if f.ndim != 4:
        raise ValueError(f"frames must have shape (n, T, H, W), got {f.shape}")
    n, T, H, W = f.shape
    f = f.reshape(n * T, H, W).astype(np.float64)
    labels, count = ndimage.label(f > threshold, structure=_IN_PLANE)
    centres = np.full((n * T, 2), np.nan)
    blobs = np.zeros(n * T, dtype=np.int64)
    mass = np.zeros(n * T)
    if count:
        idx = np.arange(1, count + 1)
        blob_mass = ndimage.sum_labels(f, labels, idx)
        frame_of = np.array([s[0].start for s in ndimage.find_objects(labels)])
        np.add.at(blobs, frame_of, 1)
        order = np.lexsort((-blob_mass, frame_of))  # per frame, the brightest blob first
        first = np.ones(count, dtype=bool)
        first[1:] = frame_of[order][1:] != frame_of[order][:-1]
        best = np.zeros(n * T, dtype=np.int64)
        best[frame_of[order][first]] = idx[order][first]
        keep = ndimage.binary_dilation(labels == best[:, None, None], structure=_IN_PLANE) & (best > 0)[:, None, None]
        w = f * keep
        total = w.sum(axis=(1, 2))
        ys, xs = np.arange(H) + 0.5, np.arange(W) + 0.5
        with np.errstate(invalid="ignore", divide="ignore"):
            centres[:, 0] = (w.sum(axis=1) * xs).sum(axis=1) / total
            centres[:, 1] = (w.sum(axis=2) * ys).sum(axis=1) / total
        centres[total <= 0] = np.nan
        mass = total / ball_mass(radius)
    one = (blobs == 1) & (np.abs(mass - 1.0) <= mass_tol)
    return Track(centres.reshape(n, T, 2), blobs.reshape(n, T), mass.reshape(n, T), one.reshape(n, T))


def _fit_line(t: np.ndarray, p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Least-squares ``p(t) = c + v t`` for ``t: (m,)``, ``p: (m, 2)`` (``m >= 2``); returns ``c, v``, each ``(2,)``."""
    A = np.stack([np.ones_like(t), t], axis=1)
    coef, *_ = np.linalg.lstsq(A, p, rcond=None)
    return coef[0], coef[1]


def clean_runs(centres: np.ndarray, size: int, radius: float, speed: float, tol: float = 0.5, min_step: float = 0.25):
    """Straight pieces of one track ``centres: (T, 2)``: maximal runs ``(first_frame, last_frame)`` of *clean* steps.

    A step ``k -> k + 1`` is dirty when a centre is missing, when frame ``k`` lies within ``speed + tol`` of a wall
    (a hit can happen during the step only there), or when it lies between two steps that move at least
    ``min_step * speed`` along an axis in opposite directions (a turn away from the walls). Between two clean runs
    the ball can have bounced; inside one it moves in a straight line if the physics is right.
    """
    T = centres.shape[0]
    lo, hi = radius, size - radius
    steps = np.diff(centres, axis=0)  # (T-1, 2)
    p = centres[:-1]
    dirty = ~np.isfinite(steps).all(axis=1) | ~np.isfinite(p).all(axis=1)
    with np.errstate(invalid="ignore"):
        near = (np.minimum(p - lo, hi - p) < speed + tol).any(axis=1)
        dirty |= near
        for axis in (0, 1):
            u = steps[:, axis]
            valid = np.flatnonzero(np.isfinite(u) & (np.abs(u) >= min_step * speed))
            for k1, k2 in zip(valid[:-1], valid[1:], strict=True):
                if np.sign(u[k1]) != np.sign(u[k2]):
                    dirty[k1 : k2 + 1] = True
    runs, k = [], 0
    while k < T - 1:
        if dirty[k]:
            k += 1
            continue
        j = k
        while j + 1 < T - 1 and not dirty[j + 1]:
            j += 1
        runs.append((k, j + 1))
        k = j + 1
    return runs


def motion_metrics(
    centres: np.ndarray,
    size: int,
    radius: float,
    speed: float,
    fit_frames: int = 4,
    tol: float = 0.5,
    min_step: float = 0.25,
) -> dict:
    """Physics of tracks ``centres: (n, T, 2)`` in a ``size`` box with a ball of ``radius`` moving at ``speed``.

    The track is cut into straight runs (:func:`clean_runs`); a line ``c + v t`` is fitted to the last
    ``fit_frames`` frames of a run and the first ``fit_frames`` of the next (when the gap between them is too short
    for two bounces on one axis, ``gap * speed < size - 2 radius``). An axis whose velocity changes sign
    between them has bounced (counted in ``bounces_per_video``). Returns a dict of floats (NaN where nothing could
    be measured): ``speed_spread`` (mean relative std of the step speed within runs), ``speed_error`` (mean
    ``|run speed / speed - 1|``), ``reflection_error_deg`` (mean angle between ``v_out`` and ``v_in`` mirrored
    on the bounced axes), ``reflection_error_deg_p90``, ``speed_change`` (mean ``||v_out| / |v_in| - 1|``),
    ``hit_timing_error`` (mean ``|t_in - t_out|``, frames) and ``wall_gap`` (mean distance of the turning point
    from the wall, px) over bounces on axes that move at least ``min_step * speed``, ``outside_fraction``
    (frames whose centre is more than ``tol`` outside the box of centres ``[r, size - r]^2``), ``max_outside``
    (px), ``tracked_fraction`` (frames with a centre), and the counts behind the means (``segments``,
    ``bounces_measured``).
    """
    c = np.asarray(centres, dtype=np.float64)
    n, T, _ = c.shape
    lo, hi = radius, size - radius
    finite = np.isfinite(c).all(axis=-1)
    with np.errstate(invalid="ignore"):
        excess = np.maximum(np.maximum(lo - c, c - hi), 0.0).max(axis=-1)
    spreads, speed_errs, refl, dspeed, timing, gaps = [], [], [], [], [], []
    n_bounces = 0
    t_all = np.arange(T, dtype=np.float64)
    for b in range(n):
        runs = clean_runs(c[b], size, radius, speed, tol, min_step)
        for s, e in runs:
            v = np.linalg.norm(np.diff(c[b, s : e + 1], axis=0), axis=1)
            if len(v) >= 2 and v.mean() > 0:
                spreads.append(v.std() / v.mean())
                speed_errs.append(abs(v.mean() / speed - 1.0))
        for (s1, e1), (s2, e2) in zip(runs[:-1], runs[1:], strict=True):
            if (s2 - e1) * speed >= hi - lo:  # the gap could hide two bounces on one axis
                continue
            fi = np.arange(max(s1, e1 - fit_frames + 1), e1 + 1)
            fo = np.arange(s2, min(e2, s2 + fit_frames - 1) + 1)
            c_in, v_in = _fit_line(t_all[fi], c[b, fi])
            c_out, v_out = _fit_line(t_all[fo], c[b, fo])
            flipped = np.sign(v_in) * np.sign(v_out) < 0
            if not flipped.any():
                continue
            n_bounces += int(flipped.sum())
            mirrored = np.where(flipped, -v_in, v_in)
            cos = mirrored @ v_out / max(np.linalg.norm(mirrored) * np.linalg.norm(v_out), 1e-12)
            refl.append(np.degrees(np.arccos(np.clip(cos, -1.0, 1.0))))
            dspeed.append(abs(np.linalg.norm(v_out) / max(np.linalg.norm(v_in), 1e-12) - 1.0))
            moving = (np.abs(v_in) >= min_step * speed) & (np.abs(v_out) >= min_step * speed)
            for axis in np.flatnonzero(flipped & moving):
                wall = hi if v_in[axis] > 0 else lo
                t_in = (wall - c_in[axis]) / v_in[axis]
                t_out = (wall - c_out[axis]) / v_out[axis]
                timing.append(abs(t_in - t_out))
                t_x = (c_out[axis] - c_in[axis]) / (v_in[axis] - v_out[axis])
                gaps.append(abs(c_in[axis] + v_in[axis] * t_x - wall))

    def mean(x: list) -> float:
        return float(np.mean(x)) if x else float("nan")

    return {
        "bounces_per_video": n_bounces / n,
        "speed_spread": mean(spreads),
        "speed_error": mean(speed_errs),
        "reflection_error_deg": mean(refl),
        "reflection_error_deg_p90": float(np.percentile(refl, 90)) if refl else float("nan"),
        "speed_change": mean(dspeed),
        "hit_timing_error": mean(timing),
        "wall_gap": mean(gaps),
        "outside_fraction": float(np.mean(np.nan_to_num(excess, nan=0.0) > tol)),
        "max_outside": float(np.nanmax(excess)) if finite.any() else float("nan"),
        "tracked_fraction": float(finite.mean()),
        "segments": len(spreads),
        "bounces_measured": len(refl),
    }


def physics(frames: torch.Tensor | np.ndarray, size: int, radius: float, speed: float) -> dict:
    """Track ``frames: (n, T, size, size)`` and measure: :func:`motion_metrics` plus ``one_ball_fraction``,
    ``no_ball_fraction`` and ``many_blobs_fraction`` (fractions of frames), and ``mass`` (mean, over one ball's)."""
    tr = track(frames, radius)
    out = motion_metrics(tr.centres, size, radius, speed)
    out["one_ball_fraction"] = float(tr.one_ball.mean())
    out["no_ball_fraction"] = float((tr.blobs == 0).mean())
    out["many_blobs_fraction"] = float((tr.blobs > 1).mean())
    out["mass"] = float(tr.mass[tr.blobs > 0].mean()) if (tr.blobs > 0).any() else float("nan")
    return out


__all__ = ["Track", "clean_runs", "motion_metrics", "physics", "track"]
