"""Tests for gptheory.experiments.attention_learned: its sweeps, the denoising trend on constructed inputs, and its
figures on tiny measured DiT points of two bandwidths."""

from __future__ import annotations

import math
import types

import matplotlib.pyplot as plt
import numpy as np
import pytest

from gptheory.experiments import architecture, attention_learned, tuning
from gptheory.experiments.probe import CALIBRATED, Probe, run_probe
from gptheory.profiles import PROFILES
from gptheory.provenance import Provenance

# about a second a point: 8 frames, the smoke DiT (3 blocks), 20 steps (one validation check), 64 sequences, 4 sampler
# steps
TINY = {"N": 8, "steps": 20, "n_gen": 64, "sample_steps": 4, "n_train": 128, "record": 3}


@pytest.fixture(scope="module")
def points(one_thread) -> list[Probe]:
    out = []
    for ell in (1.0, 2.0):
        cfg = CALIBRATED["smoke"].replace(ell=ell, **TINY)
        p = run_probe(cfg, progress=False)
        p.provenance = Provenance.now(cfg.to_dict(), 1.0, "smoke", "cpu")
        out.append(p)
    yield out
    plt.close("all")


def test_the_sweeps_vary_depth_bandwidth_and_whiteness_on_the_probe_base():
    sweeps = attention_learned.SWEEPS
    by = {s.name: s for s in sweeps}
    assert list(by) == ["attention-learned-depth", "attention-learned-bandwidth", "attention-learned-white"]
    for p in PROFILES:
        assert by["attention-learned-depth"].grid[p]["depth"] == attention_learned.PAPER_DEPTH[p]
        assert by["attention-learned-bandwidth"].grid[p]["ell"] == attention_learned.ELL_GRID[p]
        assert by["attention-learned-white"].grid[p]["ell"] == (attention_learned.WHITE_ELL,)
        base = tuning.tuned()[p]  # the DiT's tuned recipe, trained to convergence
        assert all(s.base[p] == base for s in sweeps)
        assert base.train.patience > 0 and len(by["attention-learned-depth"].grid[p]["seed"]) in (1, 5)  # five seeds
    assert math.exp(-((1 / attention_learned.WHITE_ELL) ** 1)) < 1e-8  # white in time for any nu >= 1


def test_the_entry_brings_the_base_dit_and_the_selection_runs(monkeypatch):
    calls = []

    def fake(s, profile, out, progress, axes=None, train=True):
        calls.append((out, axes, train))
        return s

    monkeypatch.setattr(attention_learned, "run_sweep", fake)
    got = attention_learned.attention_learned("cpu", progress=False)
    assert list(got) == ["architecture", *(s.name for s in attention_learned.SWEEPS), "architecture-lr"]
    assert got["architecture"] is architecture.SWEEPS[0] and got["architecture-lr"] is tuning.TUNING
    lr = tuning.tuned()["cpu"].train.lr
    assert calls == [(None, None, False)] * 4 + [(None, {"arch": ("dit",), "lr": (lr,)}, False)]  # cpu: load only
    # the selection runs are the bandwidth sweep's base configuration on a seed the sweep does not use
    (_, sel), *_ = tuning.TUNING.points("cpu", {"arch": ("dit",), "lr": (lr,), "seed": tuning.TUNING_SEEDS["cpu"]})
    band = {s.name: s for s in attention_learned.SWEEPS}["attention-learned-bandwidth"]
    (_, same), *_ = band.points("cpu", {"ell": (sel.process.ell,), "seed": (sel.seed,)})
    assert sel == same and not set(tuning.TUNING_SEEDS["cpu"]) & set(band.grid["cpu"]["seed"])


def test_sweep_points_names_the_missing_sweep():
    runs = {"a": types.SimpleNamespace(records=lambda: [1]), "b": types.SimpleNamespace(records=lambda: [])}
    assert attention_learned.sweep_points(runs, "a") == [1]
    with pytest.raises(ValueError, match="sweep b has no points"):
        attention_learned.sweep_points(runs, "b")
    with pytest.raises(ValueError, match="no sweep 'c'"):
        attention_learned.sweep_points(runs, "c")


def test_white_gamma1_is_computed_not_underflowed():
    assert attention_learned.white_gamma1_log10(2.0) == pytest.approx(-400 / math.log(10))  # about 1e-174
    assert attention_learned.white_gamma1_log10(1.0) == pytest.approx(-20 / math.log(10))
    assert attention_learned.white_gamma1_log10(0.5, ell=1.0) == pytest.approx(-1 / math.log(10))


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_learned_in_training_compares_the_best_layers_per_seed():
    init = np.full((4, 2, 3), 0.2) + 0.01 * _rng().standard_normal((4, 2, 3))
    good = np.array([[0.3, 0.8, 0.9], [0.2, 0.85, 0.7], [0.1, 0.9, 0.8], [0.4, 0.7, 0.88]])
    v = attention_learned.learned_in_training(init, good, r_identity=0.4)
    assert v.outcome == "holds" and v.n == 4
    assert v.estimate == pytest.approx(np.mean(good.max(1) - 0.4))  # the bar is r(I) where it exceeds init
    bad = np.full((4, 3), 0.1) + 0.01 * _rng(1).standard_normal((4, 3))  # below both init and r(I)
    assert attention_learned.learned_in_training(init, bad, r_identity=0.15).outcome == "fails"
    with pytest.raises(ValueError, match="seeds"):
        attention_learned.learned_in_training(init, good[:3], 0.4)


def test_band_from_data_pairs_by_seed():
    base = {0: 0.9, 1: 0.8, 2: 0.85, 7: 0.1}
    assert attention_learned.band_from_data(base, {0: 0.1, 1: 0.2, 2: 0.15}).outcome == "holds"  # seed 7 unpaired
    assert attention_learned.band_from_data(base, {0: 0.95, 1: 0.9, 2: 0.93}).outcome == "fails"


def test_rise_and_ends_along_denoising():
    S_T = np.array([[0.1, 0.2, 0.3], [0.12, 0.18, 0.33], [0.09, 0.21, 0.29]])
    rising = S_T + np.array([0.5, 0.01, 0.3])
    assert attention_learned.rise_along_denoising(S_T, rising).outcome == "holds"
    assert attention_learned.rise_along_denoising(rising, S_T).outcome == "fails"
    S_0 = rising + 1e-3 * _rng().standard_normal(S_T.shape)
    S_0[:, 1] = S_T[:, 1] + np.array([0.02, -0.03, 0.01])  # layer 2 moves one way or the other
    ends = attention_learned.ends_apart(S_T, S_0)
    assert [e.level for e in ends] == [pytest.approx(1 - 0.05 / 3)] * 3  # Bonferroni over the layers
    assert [e.outcome for e in ends] == ["holds", "inconclusive", "holds"]
    assert attention_learned.ends_apart(S_0, S_T)[0].outcome == "fails"  # a layer that falls is apart too


def test_from_layer_three_needs_both_halves():
    r = 0.5
    ok = np.array([[0.1, 0.3, 0.7, 0.8], [0.2, 0.2, 0.6, 0.9], [0.0, 0.35, 0.75, 0.7]])
    outcome, late, early = attention_learned.from_layer(ok, r)
    assert (outcome, late.outcome, early.outcome) == ("holds", "holds", "holds")
    too_early = ok.copy()
    too_early[:, 1] = [0.7, 0.8, 0.75]  # layer 2 already clears the bar
    outcome, late, early = attention_learned.from_layer(too_early, r)
    assert (outcome, late.outcome, early.outcome) == ("fails", "holds", "fails")
    too_late = ok.copy()
    too_late[:, 3] = [0.2, 0.1, 0.3]  # layer 4 falls back below it
    outcome, late, early = attention_learned.from_layer(too_late, r)
    assert (outcome, late.outcome) == ("fails", "fails")
    outcome, late, _ = attention_learned.from_layer(ok[:, :2], r)  # no layer 3: that half cannot be tested
    assert outcome == "inconclusive" and late.n == 0


def _band_points(slope_by_seed: dict[int, float], ells=(1.0, 2.0, 4.0, 8.0), layers=3, layer=1):
    cfg = tuning.tuned()["smoke"]
    out = []
    for seed, slope in slope_by_seed.items():
        for e in ells:
            fitted = np.full(layers, 3.0)
            fitted[layer] = 1.3 * e**slope
            G = np.exp(-((np.subtract.outer(np.arange(8), np.arange(8)) / e) ** 2))
            out.append(
                types.SimpleNamespace(config=cfg.replace(ell=e, seed=seed).to_dict(), fitted_ell=fitted, Gamma=G)
            )
    return out


def test_bandwidth_slopes_widens_and_follows():
    pts = _band_points({0: 0.98, 1: 1.02, 2: 1.0, 3: 0.99})
    slopes = attention_learned.bandwidth_slopes(pts, layer=1)
    assert slopes == pytest.approx({0: 0.98, 1: 1.02, 2: 1.0, 3: 0.99})
    assert attention_learned.bandwidth_slopes(pts, layer=0) == pytest.approx({s: 0.0 for s in range(4)}, abs=1e-12)
    targets = attention_learned.target_slopes(pts)
    assert all(abs(t - 1) < 0.1 for t in targets.values())  # the fit applied to the target itself
    assert attention_learned.widens(slopes).outcome == "holds"
    assert attention_learned.follows(slopes, targets).outcome == "holds"
    # a slope of 0.1 widens but does not follow: the test against the target, not against 0, decides
    shallow = attention_learned.bandwidth_slopes(_band_points({0: 0.1, 1: 0.12, 2: 0.09, 3: 0.11}), layer=1)
    assert attention_learned.widens(shallow).outcome == "holds"
    f = attention_learned.follows(shallow, targets)
    assert f.outcome == "fails" and f.estimate == pytest.approx(
        np.mean([0.1, 0.12, 0.09, 0.11]) - np.mean(list(targets.values()))
    )
    spread = {0: 0.2, 1: 1.8, 2: 1.0, 3: 0.6}  # centred near the target but too noisy to say
    assert attention_learned.follows(spread, targets).outcome == "inconclusive"
    assert attention_learned.follows({0: 1.0}, {0: 1.0}).outcome == "inconclusive"  # one seed: no interval
    with pytest.raises(ValueError, match="margin"):
        attention_learned.follows(slopes, targets, margin=0)


def test_covers_has_an_unknown_branch():
    from gptheory.statistics import verdict

    assert attention_learned.covers(verdict([0.9, 1.1, 1.0]), 1.0) == "includes"
    assert attention_learned.covers(verdict([0.2, 0.3, 0.25]), 1.0) == "excludes"
    assert attention_learned.covers(verdict([0.9]), 1.0) == "unknown"  # nan interval: not "excludes"


def test_selection_layer_is_chosen_on_other_seeds():
    cfg = tuning.tuned()["smoke"]
    sims = {100: [[0.1, 0.2, 0.3], [0.3, 0.9, 0.5]], 101: [[0.1, 0.2, 0.3], [0.3, 0.6, 0.7]]}
    pts = [types.SimpleNamespace(config=cfg.replace(seed=s).to_dict(), similarity=np.array(v)) for s, v in sims.items()]
    assert attention_learned.selection_layer(pts, excluded_seeds=(0, 1, 2)) == 1  # mean at t0: 0.3, 0.75, 0.6
    assert attention_learned.selection_layer(pts[1:], excluded_seeds=(0,)) == 2
    with pytest.raises(ValueError, match=r"share seeds \[101\]"):
        attention_learned.selection_layer(pts, excluded_seeds=(0, 101))
    with pytest.raises(ValueError, match="no selection runs"):
        attention_learned.selection_layer([], excluded_seeds=(0,))


def test_denoising_trend_is_the_rank_correlation_with_denoising_progress(points):
    times = np.linspace(1.0, 0.01, 5)  # stored from T down to t0
    sim = np.array([[0.1, 0.9, 0.1], [0.2, 0.8, 0.5], [0.3, 0.7, 0.3], [0.4, 0.6, 0.9], [0.5, 0.5, 0.7]])
    trend = attention_learned.denoising_trend(types.SimpleNamespace(times=times, similarity=sim))
    # layer 0 rises as noise is removed, layer 1 falls, layer 2 has ranks 1 3 2 5 4: rho = 1 - 6 * 4 / (5 * 24)
    np.testing.assert_allclose(trend, [1.0, -1.0, 0.8], rtol=1e-12)
    measured = attention_learned.denoising_trend(points[0])
    assert measured.shape == (3,) and np.all(np.isnan(measured) | (np.abs(measured) <= 1))


def test_the_figures_draw_every_layer_and_point(points):
    fig = attention_learned.plot_similarity_along_denoising(points)
    (ax,) = fig.axes
    assert len(ax.get_lines()) == 3 and ax.xaxis_inverted() and ax.get_xscale() == "log"  # one line per layer
    fig = attention_learned.plot_attention_rows(points)
    (ax,) = fig.axes
    lines = ax.get_lines()
    assert len(lines) == 2 * len(points) and all(len(line.get_xdata()) == 8 for line in lines)  # N gaps each
    assert [t.get_text()[:11] for t in ax.get_legend().get_texts()] == ["$\\ell$=1 (l", "$\\ell$=2 (l"]
    plt.close("all")
