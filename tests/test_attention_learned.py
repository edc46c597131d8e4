"""Tests for gptheory.experiments.attention_learned: its sweeps, the denoising trend on constructed inputs, and its
figures on tiny measured DiT points of two bandwidths."""

from __future__ import annotations

import math
import types

import matplotlib.pyplot as plt
import numpy as np
import pytest

from gptheory.experiments import architecture, attention_learned, tuning
from gptheory.experiments.probe import PROBE, Probe, run_probe
from gptheory.profiles import PROFILES
from gptheory.provenance import Provenance

# about a second a point: 8 frames, the smoke DiT (3 blocks), 20 steps, 64 sequences, 4 sampler steps
TINY = {"N": 8, "steps": 20, "n_gen": 64, "sample_steps": 4, "n_train": 128, "record": 3}


@pytest.fixture(scope="module")
def points(one_thread) -> list[Probe]:
    out = []
    for ell in (1.0, 2.0):
        cfg = PROBE["smoke"].replace(ell=ell, **TINY)
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
        assert base.protocol == 2 and len(by["attention-learned-depth"].grid[p]["seed"]) in (1, 5)  # five seeds
    assert math.exp(-((1 / attention_learned.WHITE_ELL) ** 1)) < 1e-8  # white in time for any nu >= 1


def test_the_entry_brings_the_base_dit_of_the_architecture_sweep(monkeypatch):
    calls = []
    monkeypatch.setattr(attention_learned, "run_sweep", lambda s, profile, out, progress: calls.append(out) or s)
    got = attention_learned.attention_learned("smoke", progress=False)
    assert list(got) == ["architecture", *(s.name for s in attention_learned.SWEEPS)]
    assert got["architecture"] is architecture.SWEEPS[0] and calls == [None] * 4


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
