"""Tests for gptheory.experiments.architecture: its sweeps, the verdict helpers on constructed inputs, and every
figure on tiny measured points (two DiT seeds and a UNet, with training dynamics)."""

from __future__ import annotations

import copy
import math
import types

import matplotlib.pyplot as plt
import numpy as np
import pytest

from gptheory.experiments import architecture, dynamics, tuning
from gptheory.experiments.probe import CALIBRATED, PROBE, Probe, run_probe
from gptheory.metrics import CovarianceErrors
from gptheory.profiles import PROFILES
from gptheory.provenance import Provenance
from gptheory.results import setting

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


def test_the_calibrated_sweeps_compare_architectures_lengths_and_depths_each_at_its_tuned_rate():
    by = {s.name: s for s in architecture.SWEEPS}
    assert list(by) == ["architecture", "architecture-receptive-field", "architecture-length", "architecture-depth",
                        "architecture-lr"]  # fmt: skip
    for p in PROFILES:
        assert all(s.base[p].protocol == 2 and s.base[p].train.patience > 0 for s in by.values())  # to convergence
        assert by["architecture"].grid[p]["arch"] == tuning.COMPARED_ARCHS
        assert by["architecture"].base[p] == CALIBRATED[p].replace(eval_points=architecture.DYNAMICS_POINTS[p])
        # each architecture at its own rate: a point's lr is its architecture's tuned one, else the base's
        for coords, cfg in by["architecture"].points(p):
            assert cfg.train.lr == tuning.TUNED_LR[p].get(coords["arch"], CALIBRATED[p].train.lr)
        rf = by["architecture-receptive-field"].base[p]
        assert rf.model.arch == "unet" and rf.train.lr == tuning.TUNED_LR[p].get("unet", CALIBRATED[p].train.lr)
        assert by["architecture-length"].grid[p]["N"] == architecture.N_GRID[p]
        assert by["architecture-length"].base[p] == by["architecture-depth"].base[p] == tuning.tuned()[p]
        assert by["architecture-depth"].grid[p]["depth"] == architecture.DEPTH_GRID[p]
        lr_sweep = by["architecture-lr"]
        assert lr_sweep.base[p] == CALIBRATED[p]
        assert lr_sweep.grid[p]["arch"] == tuning.COMPARED_ARCHS and lr_sweep.grid[p]["lr"] == tuning.LR_GRID[p]
        # the learning rate is chosen on seeds that no comparison uses
        compared = {s for sw in architecture.SWEEPS if sw is not lr_sweep for s in sw.grid[p]["seed"]}
        assert not set(lr_sweep.grid[p]["seed"]) & compared
        assert len(by["architecture"].grid[p]["seed"]) in (1, 5)  # five seeds where verdicts are drawn (smoke: one)
    assert all(s.record is Probe and s.point is run_probe for s in architecture.SWEEPS)


def test_the_chapter_reads_the_calibrated_sweeps(monkeypatch):
    calls = []
    monkeypatch.setattr(architecture, "run_sweep", lambda s, profile, out, progress: calls.append((s, out)) or s)
    got = architecture.architecture("smoke", progress=False)
    assert [s for s, _ in calls] == list(architecture.SWEEPS) and list(got) == [s.name for s in architecture.SWEEPS]
    assert all(out is None for _, out in calls) and all(s.base["cpu"].protocol == 2 for s in architecture.SWEEPS)


def test_smallest_sufficient_takes_the_smallest_key_near_the_best():
    smallest_sufficient = architecture.smallest_sufficient
    assert smallest_sufficient({8: 0.50, 1: 1.00, 4: 0.52, 2: 0.60}) == 4  # 0.52 <= 1.1 x 0.50; 0.60 is not
    assert smallest_sufficient({8: 0.50, 1: 1.00, 4: 0.52, 2: 0.60}, tolerance=0.25) == 2
    assert smallest_sufficient({1: 0.3, 2: 0.5}) == 1  # the best itself, when it is the smallest
    with pytest.raises(ValueError, match="at least one"):
        smallest_sufficient({})


def test_gap_learned_steps_of_a_measured_point_has_one_step_per_gap(points):
    p = points["dit"][0]
    steps = dynamics.gap_learned_steps(p)
    assert steps.shape == (8,) and all(math.isnan(s) or s == math.inf or s in p.eval_steps for s in steps)


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


def test_the_dynamics_figures_of_calibrated_points_read_epochs_and_runs_that_stopped_early(one_thread):
    tiny = {**TINY, "steps": 40, "eval_every": 10, "patience": 1, "eval_points": 6}
    pts = [run_probe(CALIBRATED["smoke"].replace(seed=s, **tiny), progress=False) for s in (0, 1)]
    short = copy.copy(pts[1])  # as if the second seed had converged after its first four measurements
    for name in ("eval_steps", "eval_epochs", "eval_corr_gap", "eval_corr_spatial", "eval_temporal", "eval_spatial"):
        setattr(short, name, getattr(short, name)[:4])
    fig = architecture.plot_dynamics({"dit": [pts[0], short]})
    assert fig.axes[0].get_xlabel() == "epoch" and len(fig.axes[0].get_lines()) == 2 + 1 + 1
    assert len(fig.axes[0].get_lines()[2].get_xdata()) == 4  # the mean over the measurements both seeds have
    fig = architecture.plot_gap_dynamics([pts[0], short])
    assert fig.axes[0].get_images()[0].get_array().shape == (TINY["N"] - 1, 4)  # gaps 1.. by common measurements
    v = dynamics.dynamics_verdicts(pts)
    assert set(v) == {"spatial_first", "temporal_late", "weak_later"} and all(x.n <= 2 for x in v.values())
    plt.close("all")


def _measured(arch: str, seed: int, err: float, floor: float = 0.05, rel: float = 1.0) -> types.SimpleNamespace:
    cfg = CALIBRATED["smoke"].replace(arch=arch, seed=seed)
    errors = CovarianceErrors(err, err, err, err, err)
    return types.SimpleNamespace(config=cfg.to_dict(), protocol=2, generated=errors, paper_relative_error=rel,
                                 floor=CovarianceErrors(floor, floor, floor, floor, floor))  # fmt: skip


def test_versus_dit_pairs_the_squared_excess_by_seed():
    rng = np.random.default_rng(3)
    pts = []
    for seed in range(5):
        lift = rng.normal(0, 0.02)  # a seed effect every architecture shares: pairing removes it
        pts += [_measured("dit", seed, 0.07 + lift, rel=1.2), _measured("unet", seed, 0.09 + lift, rel=1.6),
                _measured("diffusers-unet", seed, 0.07 + lift + rng.normal(0, 0.002), rel=1.2)]  # fmt: skip
    v = architecture.versus_dit(pts)
    assert set(v) == {"unet", "diffusers-unet"} and v["unet"].outcome == "holds" and v["unet"].n == 5
    assert v["diffusers-unet"].outcome == "inconclusive"  # the same error up to noise: not decided
    assert v["unet"].estimate > 0 and architecture.squared_excess(pts[0]) == pytest.approx(
        (pts[0].generated.temporal ** 2 - 0.05**2) / 0.05**2)  # fmt: skip
    assert architecture.versus_dit(pts, "paper_relative_error")["unet"].estimate == pytest.approx(0.4)
    with pytest.raises(ValueError, match="DiT points"):
        architecture.versus_dit([p for p in pts if setting(p, "arch") != "dit"])
    legacy = types.SimpleNamespace(protocol=1)
    with pytest.raises(ValueError, match="protocol 2"):
        architecture.squared_excess(legacy)
