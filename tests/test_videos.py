"""The bouncing-ball generator (exact physics against the closed form) and the tracker on true videos."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gptheory.bouncing_ball.tracking import clean_runs, motion_metrics, physics, track
from gptheory.bouncing_ball.videos import (
    ball_mass,
    initial_state,
    make_videos,
    random_frames,
    render,
    simulate,
    unfolded_position,
)

GEOMETRIES = [(32, 3.0, 2.0, 40), (16, 2.0, 1.5, 25), (24, 4.5, 3.7, 30)]


@pytest.mark.parametrize("size,radius,speed,T", GEOMETRIES)
def test_trajectory_matches_the_closed_form(size, radius, speed, T):
    v = make_videos(50, T, size, radius, speed, seed=3)
    p0, v0 = v.positions[:, 0], v.velocities[:, 0]
    exact = unfolded_position(p0, v0, np.arange(T, dtype=np.float64), radius, size - radius)
    np.testing.assert_allclose(v.positions, exact, rtol=0, atol=1e-10)
    # elastic: the speed never changes, and the centre never leaves [r, size - r]
    np.testing.assert_allclose(np.linalg.norm(v.velocities, axis=-1), speed, rtol=1e-12)
    assert v.positions.min() >= radius - 1e-12 and v.positions.max() <= size - radius + 1e-12
    assert len(v.hits) > 0


@pytest.mark.parametrize("size,radius,speed,T", GEOMETRIES)
def test_hit_times_put_the_ball_on_the_wall(size, radius, speed, T):
    v = make_videos(30, T, size, radius, speed, seed=4)
    p0, v0 = v.positions[:, 0], v.velocities[:, 0]
    for b, t, axis, wall in v.hits:
        b, axis = int(b), int(axis)
        at = unfolded_position(p0[b : b + 1], v0[b : b + 1], np.array([t]), radius, size - radius)[0, 0, axis]
        assert at == pytest.approx(radius if wall == 0 else size - radius, abs=1e-9)
        # between frames k and k+1 the velocity component on that axis flips sign
        k = int(np.floor(t))
        if k + 1 < T:
            assert np.sign(v.velocities[b, k, axis]) == -np.sign(v.velocities[b, k + 1, axis])
    # the number of hits per axis is the number of wall crossings of the unfolded (free) motion
    t_end = T - 1
    for b in range(30):
        free = p0[b] - radius + v0[b] * t_end
        W = size - 2 * radius
        expected = np.floor(np.where(free >= 0, free, W - free) / W).sum()
        got = sum(1 for h in v.hits if int(h[0]) == b and h[1] <= t_end)
        assert got == expected


def test_seeded_and_reproducible():
    a, b = make_videos(8, 10, seed=11), make_videos(8, 10, seed=11)
    assert torch.equal(a.frames, b.frames) and np.array_equal(a.hits, b.hits)
    c = make_videos(8, 10, seed=12)
    assert not np.allclose(a.positions, c.positions)
    p0, v0 = initial_state(2000, 32, 3.0, 2.0, seed=0)
    angles = np.arctan2(v0[:, 1], v0[:, 0])
    assert abs(np.mean(np.cos(angles))) < 0.1 and abs(np.mean(np.sin(angles))) < 0.1  # 4.5 standard errors
    assert p0.min() >= 3.0 and p0.max() <= 29.0


def test_frames_are_anti_aliased_discs_of_the_right_mass():
    frames, centres = random_frames(200, 32, 3.0, seed=1)
    assert frames.shape == (200, 32, 32) and frames.dtype == torch.float32
    assert frames.min() >= 0 and frames.max() <= 1
    values = frames[frames > 0]
    assert ((values > 0.02) & (values < 0.98)).any()  # a soft edge, not a binary disc
    mass = frames.sum((1, 2)).double() / ball_mass(3.0)
    assert torch.allclose(mass, torch.ones_like(mass), atol=0.03)  # pixel sampling of the disc: about 1 %
    # pixel (i, j) is the square [j, j+1] x [i, i+1]: a ball at (x, y) = (5.5, 20.5) lights pixel row 20, column 5
    f = render(np.array([[5.5, 20.5]]), 32, 3.0)[0]
    assert f[20, 5] == 1.0 and f[5, 20] == 0.0


def test_simulate_reflects_exactly_inside_a_frame_interval():
    # one point at x = 9.5 moving +1 per frame in [0, 10]: hits the wall at t = 0.5, at 9.5 again at t = 1
    pos, vel, hits = simulate(np.array([[9.5, 5.0]]), np.array([[1.0, 0.0]]), 3, 0.0, 10.0)
    np.testing.assert_allclose(pos[0, :, 0], [9.5, 9.5, 8.5])
    np.testing.assert_allclose(vel[0, :, 0], [1.0, -1.0, -1.0])
    np.testing.assert_allclose(hits, [[0, 0.5, 0, 1]])


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"size": 8, "radius": 4.0}, "radius"),
        ({"size": 8, "radius": 5.0}, "radius"),
        ({"radius": -1.0}, "radius"),
        ({"T": 1}, "T"),
        ({"T": 0}, "T"),
        ({"speed": 100.0}, "speed"),
        ({"size": 2}, "size"),
    ],
)
def test_bad_geometry_names_the_parameter(kwargs, name):
    args = {"n": 2, "T": 5, "size": 16, "radius": 2.0, "speed": 1.0} | kwargs
    with pytest.raises(ValueError, match=name):
        make_videos(**args)


@pytest.mark.parametrize("size,radius,speed,T", GEOMETRIES)
def test_tracker_finds_the_true_ball(size, radius, speed, T):
    v = make_videos(40, T, size, radius, speed, seed=5)
    tr = track(v.frames, radius)
    assert tr.one_ball.all() and (tr.blobs == 1).all()
    # the anti-aliased edge is sampled at pixel centres, so the centroid is not exact: measured below 0.03 px
    err = np.linalg.norm(tr.centres - v.positions, axis=-1)
    assert err.max() < 0.05
    np.testing.assert_allclose(tr.mass, 1.0, atol=0.03)  # pixel sampling of a disc: about 1 % either way


def test_tracker_counts_blobs_and_misses():
    v = make_videos(2, 4, 32, 3.0, 2.0, seed=0)
    frames = v.frames.clone()
    frames[0, 1] = 0.0  # empty frame
    frames[0, 2] = torch.maximum(frames[0, 2], render(np.array([[6.0, 6.0]]), 32, 3.0)[0])
    frames[0, 2] = torch.maximum(frames[0, 2], render(np.array([[26.0, 26.0]]), 32, 3.0)[0])
    frames[1, 3] *= 0.45  # a faint ball: under the threshold of 0.5 in every pixel is no ball
    tr = track(frames, 3.0)
    assert tr.blobs[0, 1] == 0 and np.isnan(tr.centres[0, 1]).all() and not tr.one_ball[0, 1]
    assert tr.blobs[0, 2] >= 2 and not tr.one_ball[0, 2]
    assert tr.one_ball[0, 0] and tr.one_ball[1, 0]
    assert not tr.one_ball[1, 3] and tr.blobs[1, 3] == 0


@pytest.mark.parametrize("size,radius,speed,T", GEOMETRIES)
def test_physics_of_exact_trajectories_is_exact(size, radius, speed, T):
    v = make_videos(60, T, size, radius, speed, seed=6)
    m = motion_metrics(v.positions, size, radius, speed)
    assert m["bounces_measured"] > 10 and m["segments"] > 30
    for key in ("speed_spread", "speed_error", "speed_change", "hit_timing_error", "wall_gap"):
        assert m[key] < 1e-9, key
    assert m["reflection_error_deg"] < 1e-5  # arccos near 1 loses half the digits
    assert m["outside_fraction"] == 0.0 and m["tracked_fraction"] == 1.0


def test_physics_of_tracked_true_frames_is_near_exact():
    v = make_videos(60, 40, 32, 3.0, 2.0, seed=7)
    m = physics(v.frames, 32, 3.0, 2.0)
    assert m["one_ball_fraction"] == 1.0 and m["outside_fraction"] == 0.0
    # sub-pixel centroid errors (< 0.05 px) over steps of 2 px: speeds within a few per cent, angles within degrees
    assert m["speed_spread"] < 0.03 and m["speed_error"] < 0.01
    assert m["reflection_error_deg"] < 2.0 and m["hit_timing_error"] < 0.1 and m["wall_gap"] < 0.1


def test_physics_flags_broken_motion():
    v = make_videos(40, 40, 32, 3.0, 2.0, seed=8)
    runs_exact = sum(len(clean_runs(p, 32, 3.0, 2.0)) for p in v.positions)
    # a ball that turns back at frame 19, mostly in mid-air (frames 20.. replay 19, 18, ..., 0)
    p = v.positions.copy()
    p[:, 20:] = v.positions[:, :20][:, ::-1]
    m = motion_metrics(p, 32, 3.0, 2.0)
    assert m["wall_gap"] > 1.0
    assert sum(len(clean_runs(q, 32, 3.0, 2.0)) for q in p) > runs_exact
    # and a ball that drifts out of the box
    drift = v.positions + np.linspace(0, 10, 40)[None, :, None]
    assert motion_metrics(drift, 32, 3.0, 2.0)["outside_fraction"] > 0.05


def test_the_animation_player_works_offline():
    """The in-page player must not fetch anything: its Font Awesome stylesheet (a CDN) is replaced by symbols."""
    import re

    from gptheory.bouncing_ball.figures import animation_html

    html = animation_html({"a": np.zeros((3, 8, 8)), "b": np.ones((3, 8, 8))})
    assert not re.search(r'(href|src)="https?://', html) and "<i class=" not in html
    assert "\u25b6" in html and "\u23f8" in html  # play and pause still have visible labels
