"""Tests for gptheory.experiments.architecture: its sweeps, the verdict helpers on constructed inputs, and every
figure on tiny measured points (two DiT seeds and a UNet, with training dynamics)."""

from __future__ import annotations

import math
import types

import matplotlib.pyplot as plt
import numpy as np
import pytest

from gptheory.experiments import architecture
from gptheory.experiments.probe import PROBE, Probe, run_probe
from gptheory.profiles import PROFILES
from gptheory.provenance import Provenance

# about a second a point: 8 frames, the smoke network, 20 steps, 64 sequences, 4 sampler steps, 3 evaluations
TINY = {"N": 8, "steps": 20, "n_gen": 64, "sample_steps": 4, "n_train": 128, "eval_points": 3}


@pytest.fixture(scope="module")
def points(one_thread) -> dict[str, list[Probe]]:
    out: dict[str, list[Probe]] = {}
    for label, over in (("dit", {"seed": 0}), ("dit", {"seed": 1}), ("unet", {"arch": "unet", "levels": 1})):
        cfg = PROBE["smoke"].replace(**TINY, **over)
        p = run_probe(cfg, progress=False)
        p.provenance = Provenance.now(cfg.to_dict(), 1.0, "smoke", "cpu")
        out.setdefault(label, []).append(p)
    yield out
    plt.close("all")


def test_the_sweeps_compare_architectures_lengths_and_depths_on_the_probe_base():
    by = {s.name: s for s in architecture.SWEEPS}
    assert list(by) == ["architecture", "architecture-receptive-field", "architecture-length", "architecture-depth"]
    for p in PROFILES:
        assert by["architecture"].grid[p]["arch"] == architecture.COMPARED_ARCHS
        assert by["architecture"].base[p] == PROBE[p].replace(eval_points=architecture.EVAL_POINTS[p])
        assert by["architecture-receptive-field"].base[p].model.arch == "unet"
        assert (
            by["architecture-length"].grid[p]["N"] == architecture.N_GRID[p]
            and by["architecture-length"].base[p] == PROBE[p]
        )
        assert by["architecture-depth"].grid[p]["depth"] == architecture.DEPTH_GRID[p]
    assert all(s.record is Probe and s.point is run_probe for s in architecture.SWEEPS)


def test_the_entry_asks_for_every_sweep_of_the_chapter_without_a_folder(monkeypatch):
    calls = []
    monkeypatch.setattr(architecture, "run_sweep", lambda s, profile, out, progress: calls.append((s.name, out)) or s)
    got = architecture.architecture("smoke", progress=False)
    assert list(got) == [s.name for s in architecture.SWEEPS] and all(out is None for _, out in calls)


def test_learned_step_is_where_the_error_stays_near_its_final_level():
    steps = np.array([1, 2, 4, 8, 16])
    no_floor = 0.0
    learned_step = architecture.learned_step
    assert learned_step(steps, np.array([8.0, 4.0, 2.0, 1.5, 1.0]), no_floor) == 4  # 2.0 <= 2 x 1.0 from step 4 on
    assert learned_step(steps, np.array([8.0, 4.0, 2.0, 1.5, 1.0]), no_floor, factor=1.6) == 8
    # non-monotone: a dip under the bar that does not last does not count; the last excursion above it does
    assert learned_step(steps, np.array([10.0, 1.0, 5.0, 1.5, 1.0]), no_floor) == 8
    assert learned_step(steps, np.array([9.0, 9.0, 9.0, 9.0, 1.0]), no_floor) == 16  # only at the end
    # scale-free: the same step in any units
    assert learned_step(steps, 1e-3 * np.array([10.0, 1.0, 5.0, 1.5, 1.0]), no_floor) == 8
    # nothing to time: within the band from the first look (a weak correlation that white noise already gets right)
    assert math.isnan(learned_step(steps, np.array([1.0, 1.2, 0.9, 1.1, 1.0]), no_floor))
    # the floor of as many true sequences widens the band: an error that only wanders within the noise is not timed
    assert math.isnan(learned_step(steps, np.array([0.3, 0.2, 0.25, 0.1, 0.05]), floor=0.2))
    assert learned_step(steps, np.array([3.0, 0.5, 0.3, 0.1, 0.05]), floor=0.2) == 4  # band 0.4: 0.5 is above it
    with pytest.raises(ValueError, match="steps and err"):
        learned_step(steps, np.array([1.0, 2.0]), 0.0)
    # by gap: one learned step per column of the (E, N) error curves, each against its own floor
    curves = np.array([[1.0, 8.0, 9.0], [1.0, 4.0, 9.0], [1.0, 1.5, 9.0], [1.0, 1.2, 5.0], [1.0, 1.0, 1.0]])
    p = types.SimpleNamespace(eval_steps=steps, eval_gap_error=curves, eval_gap_error_true=np.zeros(3))
    np.testing.assert_array_equal(architecture.gap_learned_steps(p), [np.nan, 4, 16])


def test_smallest_sufficient_takes_the_smallest_key_near_the_best():
    smallest_sufficient = architecture.smallest_sufficient
    assert smallest_sufficient({8: 0.50, 1: 1.00, 4: 0.52, 2: 0.60}) == 4  # 0.52 <= 1.1 x 0.50; 0.60 is not
    assert smallest_sufficient({8: 0.50, 1: 1.00, 4: 0.52, 2: 0.60}, tolerance=0.25) == 2
    assert smallest_sufficient({1: 0.3, 2: 0.5}) == 1  # the best itself, when it is the smallest
    with pytest.raises(ValueError, match="at least one"):
        smallest_sufficient({})


def test_gap_learned_steps_of_a_measured_point_has_one_step_per_gap(points):
    p = points["dit"][0]
    steps = architecture.gap_learned_steps(p)
    assert steps.shape == (8,) and all(math.isnan(s) or s in p.eval_steps for s in steps)


def test_the_figures_draw_every_model_and_gap(points):
    models = {label: pts[0] for label, pts in points.items()}
    fig = architecture.plot_kernels(models)
    assert len(fig.axes) == 3 + 1 + 1  # truth and two estimates, the lag panel, one colour bar
    assert len(fig.axes[3].get_lines()) == 3 and fig.axes[3].get_xlabel() == "gap h (frames)"
    gaps = points["dit"][0].pair_gaps
    fig = architecture.plot_pair_blocks(models)
    assert len(fig.axes) == 3 * len(gaps)  # truth and two models by the gaps
    fig = architecture.plot_gap_errors(points)
    assert len(fig.axes) == 2 and all(len(a.get_lines()) >= 3 for a in fig.axes)  # two networks and the floor
    assert fig.axes[0].get_yscale() == "log"
    fig = architecture.plot_dynamics(points)
    # per panel: each seed faint, the mean of each network, the true-sample floor
    assert len(fig.axes) == 2 and len(fig.axes[0].get_lines()) == (2 + 1) + (1 + 1) + 1
    fig = architecture.plot_gap_dynamics(points["dit"])
    assert len(fig.axes) == 3 and fig.axes[0].get_images()[0].get_array().shape == (8, 3)  # gaps by evaluations
    every = [p for pts in points.values() for p in pts]
    fig = architecture.plot_versus(every, "seed", ("paper_relative_error", "generated.temporal"))
    assert len(fig.axes) == 2 and fig.axes[1].get_legend() is not None  # the true-sample line of a generated metric
    plt.close("all")
