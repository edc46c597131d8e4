"""Tests for gptheory.experiments.dynamics: where training is measured (log-spaced steps, from the first epoch under
the calibrated protocol), the measurement at one step (scale-free under protocol 2), and when each dependency was
learned, on constructed curves."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
import torch

from gptheory import GaussianProcess
from gptheory.experiments import dynamics
from gptheory.experiments.probe import CALIBRATED, PROBE
from gptheory.metrics import Law


@pytest.mark.parametrize("steps, points", [(20, 3), (2500, 8), (6000, 10), (300, 3), (5, 8), (1, 3), (100, 1)])
def test_eval_steps_are_log_spaced_distinct_and_end_at_the_last_step(steps, points):
    at = dynamics.eval_steps(steps, points)
    assert at == sorted(set(at)) and 1 <= len(at) <= points
    assert 1 <= at[0] and at[-1] == steps  # the final network is always measured
    if points >= 2 and steps >= 100 * points:  # no rounding collisions: every point is used, spaced by a constant ratio
        assert len(at) == points and at[0] == round(steps / 100)
        ratios = np.diff(np.log(at))
        np.testing.assert_allclose(ratios, np.log(100) / (points - 1), atol=np.log(1 + 1 / at[0]))


@pytest.mark.parametrize("steps, points, first", [(10000, 24, 32), (300, 5, 8), (60, 4, 2), (50, 3, 80)])
def test_eval_steps_from_a_first_step_start_there(steps, points, first):
    at = dynamics.eval_steps(steps, points, first)
    assert at[0] == min(first, steps) and at[-1] == steps and at == sorted(set(at))


def test_eval_steps_without_points_is_empty():
    assert dynamics.eval_steps(2500, 0) == [] and dynamics.eval_steps(10, -1) == []


@pytest.mark.parametrize("n_train, batch", [(2048, 64), (100, 64), (50, 64), (1000, 128)])
def test_an_epoch_is_n_over_the_batch_and_calibrated_dynamics_start_after_one(n_train, batch):
    cfg = CALIBRATED["smoke"].replace(n_train=n_train, batch_size=batch, steps=3000, eval_points=6)
    per_epoch = dynamics.steps_per_epoch(cfg)
    assert per_epoch == n_train // min(batch, n_train) >= 1
    at = dynamics.dynamics_steps(cfg)
    assert at[0] == per_epoch and at[-1] == 3000
    first_legacy = dynamics.dynamics_steps(PROBE["smoke"].replace(steps=3000, eval_points=6))[0]
    assert first_legacy == 30  # protocol 1: from a hundredth of the run


def test_the_measurement_at_one_step_is_scale_free_under_the_calibrated_protocol():
    gp = GaussianProcess(6, 3, nu=1.5, ell=2.0, seed=2)
    law = Law.data(gp)
    x = law.sample(4000, torch.Generator().manual_seed(0))
    plain, wide = dynamics.measure(x, law, gp.Gamma, 2), dynamics.measure(3.0 * x, law, gp.Gamma, 2)
    assert wide["covariance"] > 5 * plain["covariance"]  # a sample three times too wide is far off in covariance ...
    np.testing.assert_allclose(wide["corr_gap"], plain["corr_gap"], rtol=1e-9, atol=1e-12)  # ... not in correlation
    assert wide["corr_spatial"] == pytest.approx(plain["corr_spatial"], rel=1e-9)
    assert "corr_gap" not in dynamics.measure(x, law, gp.Gamma, 1)  # protocol 1 measured what it measured
    # the floor of as many true sequences is what the estimator's noise gives: small and at every gap but 0 positive
    assert plain["corr_gap"][0] < 1e-12 and all(0 < v < 0.1 for v in plain["corr_gap"][1:])


def test_learned_step_is_where_the_error_stays_near_its_final_level():
    steps = np.array([1, 2, 4, 8, 16])
    no_floor = 0.0
    learned_step = dynamics.learned_step
    assert learned_step(steps, np.array([8.0, 4.0, 2.0, 1.5, 1.0]), no_floor) == 4  # 2.0 <= 2 x 1.0 from step 4 on
    assert learned_step(steps, np.array([8.0, 4.0, 2.0, 1.5, 1.0]), no_floor, factor=1.6) == 8
    # non-monotone: a dip under the bar that does not last does not count; the last excursion above it does
    assert learned_step(steps, np.array([10.0, 1.0, 5.0, 1.5, 1.0]), no_floor) == 8
    assert learned_step(steps, np.array([9.0, 9.0, 9.0, 9.0, 1.0]), no_floor) == 16  # only at the end
    # scale-free: the same step in any units
    assert learned_step(steps, 1e-3 * np.array([10.0, 1.0, 5.0, 1.5, 1.0]), no_floor) == 8
    # nothing to time: within the band from the first look, and that band is the floor's (a weak correlation that
    # white noise already gets right to within the estimator's noise)
    assert math.isnan(learned_step(steps, np.array([1.0, 1.2, 0.9, 1.1, 1.0]), floor=0.6))
    # the floor of as many true sequences widens the band: an error that only wanders within the noise is not timed
    assert math.isnan(learned_step(steps, np.array([0.3, 0.2, 0.25, 0.1, 0.05]), floor=0.2))
    assert learned_step(steps, np.array([3.0, 0.5, 0.3, 0.1, 0.05]), floor=0.2) == 4  # band 0.4: 0.5 is above it
    # flat far above the floor: not learned within the run (inf), not "right from the start" (nan)
    assert learned_step(steps, np.array([1.0, 1.2, 0.9, 1.1, 1.0]), floor=0.1) == math.inf
    assert math.isnan(learned_step(steps, np.array([1.0, 1.2, 0.9, 1.1, 1.0]), floor=0.1, factor=12.0))  # 1 <= 1.2
    with pytest.raises(ValueError, match="steps and err"):
        learned_step(steps, np.array([1.0, 2.0]), 0.0)
    # by gap: one learned step per column of the (E, N) error curves, each against its own floor
    curves = np.array([[1.0, 8.0, 9.0], [1.0, 4.0, 9.0], [1.0, 1.5, 9.0], [1.0, 1.2, 5.0], [1.0, 1.0, 1.0]])
    p = types.SimpleNamespace(eval_steps=steps, eval_gap_error=curves, eval_gap_error_true=np.array([0.6, 0, 0]))
    np.testing.assert_array_equal(dynamics.gap_learned_steps(p), [np.nan, 4, 16])


def _epochs_point(epochs, corr_gap, corr_gap_true, corr_spatial, corr_spatial_true):
    corr_gap, corr_spatial = np.asarray(corr_gap, float), np.asarray(corr_spatial, float)
    return types.SimpleNamespace(eval_epochs=np.asarray(epochs, float), eval_corr_gap=corr_gap,
                                 eval_corr_gap_true=np.asarray(corr_gap_true, float), eval_corr_spatial=corr_spatial,
                                 eval_corr_spatial_true=corr_spatial_true, best_corr_gap=corr_gap[-1],
                                 best_corr_spatial=float(corr_spatial[-1]))  # fmt: skip


def test_learned_epochs_of_the_correlations_by_gap_and_of_the_frames():
    epochs = [1, 3, 10, 30, 100]
    # gap 1 settles by epoch 3, gap 2 by epoch 30 (the weak, far one later); gap 0 is a correlation of 1: no time
    corr = np.array([[0, 0.8, 0.9], [0, 0.05, 0.8], [0, 0.04, 0.5], [0, 0.03, 0.05], [0, 0.03, 0.04]])
    p = _epochs_point(epochs, corr, [0, 0.02, 0.02], [0.9, 0.1, 0.03, 0.02, 0.02], 0.02)
    np.testing.assert_array_equal(dynamics.gap_learned_epochs(p), [np.nan, 3, 30])
    assert dynamics.spatial_learned_epoch(p) == 10  # 0.03 <= 2 x max(0.02, 0.02) from epoch 10 on
    # the network kept may be an earlier one than the last measured: its error sets the final level
    p.best_corr_gap = np.array([0, 0.03, 0.3])  # gap 2's kept network: 0.3, band 0.6, reached at epoch 10
    np.testing.assert_array_equal(dynamics.gap_learned_epochs(p), [np.nan, 3, 10])
    curve = np.array([9.0, 5.0, 9.0, 4.0, 1.0])
    assert dynamics.learned_step(np.array(epochs), curve, 0.0, final=3.0) == 30  # band 6
    assert dynamics.learned_step(np.array(epochs), curve, 0.0) == 100  # band 2 from the last measurement
    legacy = types.SimpleNamespace(eval_epochs=np.zeros(0))
    for f in (dynamics.gap_learned_epochs, dynamics.spatial_learned_epoch):
        with pytest.raises(ValueError, match="protocol 2"):
            f(legacy)


def _learned_at(epochs: np.ndarray, learned: list[float], spatial: float, Gamma: np.ndarray):
    """A point whose correlation at gap h drops to its floor at epoch ``learned[h]`` and the spatial one at
    ``spatial``."""
    corr = np.array([[1.0 if e < at else 0.01 for at in learned] for e in epochs])
    corr[:, 0] = 0.0
    spatial_curve = np.array([1.0 if e < spatial else 0.01 for e in epochs])
    p = _epochs_point(epochs, corr, np.full(len(learned), 0.01), spatial_curve, 0.01)
    p.Gamma = Gamma
    return p


def test_dynamics_verdicts_hold_fail_or_stay_open_as_the_seeds_say():
    epochs = np.geomspace(1, 300, 24)
    N = 6
    Gamma = np.exp(-np.abs(np.subtract.outer(np.arange(N), np.arange(N))) / 2.0)  # gamma(h) falls with h
    rng = np.random.default_rng(0)

    def seeds(spatial, temporal_scale, weak_slope):
        out = []
        for _ in range(5):
            jitter = float(np.exp(rng.normal(0, 0.1)))
            learned = [0.0] + [float(epochs[np.searchsorted(epochs, temporal_scale * jitter * weak_slope ** h)])
                               for h in range(1, N)]  # fmt: skip
            out.append(_learned_at(epochs, learned, spatial, Gamma))
        return out

    # spatial by epoch 2, temporal around epoch 100, weaker (farther) gaps later: all three claims hold
    v = dynamics.dynamics_verdicts(seeds(2.0, 60.0, 1.3))
    assert {k: x.outcome for k, x in v.items()} == {"spatial_first": "holds", "temporal_late": "holds",
                                                     "weak_later": "holds"}  # fmt: skip
    assert all(x.n == 5 for x in v.values())
    # the temporal correlation learned by epoch 10, the far gaps first: the last two claims fail
    v = dynamics.dynamics_verdicts(seeds(2.0, 10.0, 0.7))
    assert v["temporal_late"].outcome == "fails" and v["weak_later"].outcome == "fails"
    assert v["spatial_first"].outcome == "holds"
    # one seed decides nothing
    assert {x.outcome for x in dynamics.dynamics_verdicts(seeds(2.0, 60.0, 1.3)[:1]).values()} == {"inconclusive"}
    # the median timed gap is the temporal epoch; a spatial correlation right from the first look counts as epoch 1
    p = seeds(0.5, 60.0, 1.0)[0]
    assert dynamics.temporal_learned_epoch(p) == pytest.approx(np.median(dynamics.gap_learned_epochs(p)[1:]))
    assert math.isnan(dynamics.spatial_learned_epoch(p))
    # a temporal correlation that stays flat far above its floor is not learned: no effect (the verdict's n drops),
    # where reading it as "right from the start" would have made both of the first two claims fail
    flat = seeds(2.0, 60.0, 1.3)
    for p in flat[:2]:
        p.eval_corr_gap[:, 1:] = 0.5
        p.best_corr_gap = p.eval_corr_gap[-1]
    assert dynamics.temporal_learned_epoch(flat[0]) == math.inf
    v = dynamics.dynamics_verdicts(flat)
    assert v["spatial_first"].n == v["temporal_late"].n == 3 and v["spatial_first"].outcome == "holds"
    with pytest.raises(ValueError, match="protocol 2"):
        dynamics.dynamics_verdicts([types.SimpleNamespace(eval_epochs=np.zeros(0))])
