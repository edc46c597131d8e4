"""Tests for gptheory.book.plots: the row of heat maps the chapters share."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import torch

from gptheory.book.plots import heatmaps


def test_heatmaps_share_one_colour_scale_by_default():
    a, b = np.arange(6.0).reshape(2, 3), torch.full((2, 3), 9.0, dtype=torch.float64)  # numpy and torch alike
    fig = heatmaps([a, b], ["a", "b"], suptitle="two")
    maps = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in maps] == ["a", "b"] and fig._suptitle.get_text() == "two"
    np.testing.assert_array_equal(maps[1].images[0].get_array(), b.numpy())
    assert all(ax.images[0].get_clim() == (0.0, 9.0) for ax in maps)  # the smallest and largest of all
    assert len(fig.axes) == 3  # two maps and one shared colour bar
    plt.close(fig)


def test_heatmaps_without_a_shared_scale_have_one_colour_bar_each():
    fig = heatmaps([np.eye(3), 5 * np.eye(3)], ["I", "5 I"], shared_scale=False, size=2.0)
    maps = [ax for ax in fig.axes if ax.images]
    assert [ax.images[0].get_clim() for ax in maps] == [(0.0, 1.0), (0.0, 5.0)]
    assert len(fig.axes) == 4 and fig.get_size_inches()[0] == 2.0 * 2 + 0.6
    plt.close(fig)
