"""The bouncing-ball generator (exact physics against the closed form)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

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
