"""Tests for gptheory.bouncing_ball.figures: the offline animation player, frame strips, GIFs and Figures 6-7."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np

from gptheory.bouncing_ball.figures import frame_strip, plot_figure6, plot_figure7, save_gif, uniform_frames
from gptheory.provenance import Provenance
from gptheory.results import Result


def _disc_video(centres: np.ndarray, size: int, radius: float) -> np.ndarray:
    """``(T, size, size)`` binary discs, pixel ``(i, j)`` lit when its centre ``(j + 1/2, i + 1/2)`` is inside."""
    j, i = np.meshgrid(np.arange(size) + 0.5, np.arange(size) + 0.5)
    return np.stack([((j - x) ** 2 + (i - y) ** 2 < radius**2).astype(np.float64) for x, y in centres])


def test_uniform_frames_keep_both_ends_and_never_repeat():
    assert uniform_frames(10, 4).tolist() == [0, 3, 6, 9]
    assert uniform_frames(5, 8).tolist() == [0, 1, 2, 3, 4]  # fewer frames than asked: each once
    assert uniform_frames(1, 3).tolist() == [0]


def test_frame_strip_has_one_row_per_video_and_marks_the_tracked_centre():
    centres = np.array([[6.0, 8.0], [10.0, 9.0], [14.0, 10.0], [18.0, 11.0]])
    video = _disc_video(centres, 24, 3.0)
    fig = frame_strip({"a": video, "b": (video * 255).astype(np.uint8)}, count=3, radius=3.0)
    axes = np.array(fig.axes).reshape(2, 3)
    assert [ax.get_title() for ax in axes[0]] == ["t=0", "t=2", "t=3"] and axes[1, 0].get_ylabel() == "b"
    for ax, k in zip(axes[0], (0, 2, 3), strict=True):
        np.testing.assert_array_equal(ax.images[0].get_array(), video[k])
        (cross,) = ax.lines  # the tracked centre, in the image's pixel coordinates (centre of pixel 0 at 0)
        np.testing.assert_allclose(np.ravel(cross.get_data()), centres[k] - 0.5, atol=0.05)
    assert not frame_strip({"a": video}, count=2).axes[0].lines  # no radius: nothing tracked
    matplotlib.pyplot.close("all")


def test_save_gif_writes_every_frame_scaled_up(tmp_path):
    from PIL import Image

    video = _disc_video(np.array([[4.0, 4.0], [8.0, 5.0], [12.0, 6.0]]), 16, 2.5)
    save_gif(video, tmp_path / "v.gif", scale=3, fps=5)
    with Image.open(tmp_path / "v.gif") as gif:
        assert gif.n_frames == 3 and gif.size == (48, 48) and gif.info["duration"] == 200
        gif.seek(1)
        pixels = np.asarray(gif.convert("L"))
    np.testing.assert_array_equal(pixels[::3, ::3], (video[1] * 255).astype(np.uint8))  # each pixel a 3 x 3 square


def _result(T: int = 5) -> Result:
    lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
    arrays = {"corr_data": 0.8**lag, "corr_generated": 0.7**lag, "corr_true": 0.75**lag}
    arrays["generated"] = (255 * _disc_video(np.array([[5.0 + k, 6.0] for k in range(T)]), 16, 2.5)[None]).astype(
        np.uint8
    )
    numbers = {"correlation_error_generated": 0.123, "correlation_error_true": 0.045}
    provenance = Provenance.now({"ball": {"radius": 2.5}}, 1.0, "smoke", code="test", commit="test")
    return Result(result_name="bouncing_ball", numbers=numbers, arrays=arrays, provenance=provenance)


def test_figure6_draws_both_matrices_and_the_correlation_against_the_lag():
    res = _result()
    fig = plot_figure6(res)
    data_ax, gen_ax, lag_ax = fig.axes[:3]
    np.testing.assert_array_equal(data_ax.images[0].get_array(), res.arrays["corr_data"])
    np.testing.assert_array_equal(gen_ax.images[0].get_array(), res.arrays["corr_generated"])
    curves = {line.get_label(): line.get_ydata() for line in lag_ax.lines if not line.get_label().startswith("_")}
    np.testing.assert_allclose(curves["generated"], 0.7 ** np.arange(5))  # the mean of each diagonal
    np.testing.assert_allclose(curves["data (training set)"], 0.8 ** np.arange(5))
    assert "0.123" in lag_ax.get_title() and "0.045" in lag_ax.get_title()
    matplotlib.pyplot.close("all")


def test_figure7_is_a_strip_of_one_generated_video():
    fig = plot_figure7(_result(), video=0, count=3)
    assert len(fig.axes) == 3 and fig.axes[0].get_ylabel() == "generated #0"
    assert all(len(ax.lines) == 1 for ax in fig.axes)  # the ball is found in every frame
    matplotlib.pyplot.close("all")


def test_the_animation_player_works_offline():
    """The in-page player must not fetch anything: its Font Awesome stylesheet (a CDN) is replaced by symbols."""
    import re

    from gptheory.bouncing_ball.figures import animation_html

    html = animation_html({"a": np.zeros((3, 8, 8)), "b": np.ones((3, 8, 8))})
    assert not re.search(r'(href|src)="https?://', html) and "<i class=" not in html
    assert "\u25b6" in html and "\u23f8" in html  # play and pause still have visible labels
