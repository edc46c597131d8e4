"""Tests for gptheory.experiments.dynamics: where training is measured (log-spaced steps, from the first epoch), the
measurement at one step (scale-free), and when each dependency was learned, on constructed curves."""

from __future__ import annotations

import math
import types

import numpy as np
import pytest
import torch

from gptheory import GaussianProcess
from gptheory.experiments import dynamics
from gptheory.experiments.probe import CALIBRATED
from gptheory.metrics import Law
from gptheory.statistics import censored_verdict


@pytest.mark.parametrize(
    "steps, points, first", [(20, 3, 1), (2500, 8, 25), (6000, 10, 60), (300, 3, 3), (5, 8, 1), (1, 3, 1), (100, 1, 1)]
)
def test_eval_steps_are_log_spaced_distinct_and_end_at_the_last_step(steps, points, first):
    at = dynamics.eval_steps(steps, points, first)
    assert at == sorted(set(at)) and 1 <= len(at) <= points
    assert 1 <= at[0] and at[-1] == steps  # the final network is always measured
    if points >= 2 and first >= points:  # no rounding collisions: every point is used, spaced by a constant ratio
        assert len(at) == points and at[0] == first
        ratios = np.diff(np.log(at))
        np.testing.assert_allclose(ratios, np.log(steps / first) / (points - 1), atol=np.log(1 + 1 / at[0]))


@pytest.mark.parametrize("steps, points, first", [(10000, 24, 32), (300, 5, 8), (60, 4, 2), (50, 3, 80)])
def test_eval_steps_from_a_first_step_start_there(steps, points, first):
    at = dynamics.eval_steps(steps, points, first)
    assert at[0] == min(first, steps) and at[-1] == steps and at == sorted(set(at))


def test_eval_steps_without_points_is_empty():
    assert dynamics.eval_steps(2500, 0, 25) == [] and dynamics.eval_steps(10, -1, 1) == []


@pytest.mark.parametrize("n_train, batch", [(2048, 64), (100, 64), (50, 64), (1000, 128)])
def test_an_epoch_is_n_over_the_batch_and_the_dynamics_start_after_one(n_train, batch):
    cfg = CALIBRATED["smoke"].replace(n_train=n_train, batch_size=batch, steps=3000, eval_points=6)
    per_epoch = dynamics.steps_per_epoch(cfg)
    assert per_epoch == n_train // min(batch, n_train) >= 1
    at = dynamics.dynamics_steps(cfg)
    assert at[0] == per_epoch and at[-1] == 3000


def test_the_measurement_at_one_step_is_scale_free():
    gp = GaussianProcess(6, 3, nu=1.5, ell=2.0, seed=2)
    law = Law.data(gp)
    x = law.sample(4000, torch.Generator().manual_seed(0))
    plain, wide = dynamics.measure(x, law, gp.Gamma), dynamics.measure(3.0 * x, law, gp.Gamma)
    assert wide["covariance"] > 5 * plain["covariance"]  # a sample three times too wide is far off in covariance ...
    np.testing.assert_allclose(wide["corr_gap"], plain["corr_gap"], rtol=1e-9, atol=1e-12)  # ... not in correlation
    assert wide["corr_spatial"] == pytest.approx(plain["corr_spatial"], rel=1e-9)
    # the floor of as many true sequences is what the estimator's noise gives: small and at every gap but 0 positive
    assert plain["corr_gap"][0] < 1e-12 and all(0 < v < 0.1 for v in plain["corr_gap"][1:])


# ------------------------------------------------------------------------------------------ when learned, in epochs
EPOCHS = np.geomspace(1, 300, 24)
PER_EPOCH = 10
N = 10
GAMMA = np.exp(-np.abs(np.subtract.outer(np.arange(N), np.arange(N))) / 2.0)  # gamma(h) = exp(-h/2): h <= 5 resolvable
LEVEL = 0.01  # every curve's final level and floor


def _run(learned_at, spatial_at, seed=0, noise=0.06, epochs=EPOCHS):
    """A calibrated point whose correlation at each resolvable gap ``h`` is wrong by ``gamma(h)`` (uncorrelated frames)
    until epoch ``learned_at[h]`` and at its floor after (``inf``: never), the spatial one likewise at ``spatial_at``;
    the gaps below :data:`dynamics.RESOLVABLE` are noise between the floor and ``noise`` (never "learned" by any rule
    that looks at them)."""
    gamma = np.exp(-np.arange(N) / 2.0)
    rng = np.random.default_rng(seed)
    corr = rng.uniform(LEVEL, noise, (len(epochs), N))
    for h, at in learned_at.items():
        corr[:, h] = np.where(epochs < at, gamma[h], LEVEL)
    corr[:, 0] = 0.0
    spatial = np.where(epochs < spatial_at, 0.5, LEVEL)
    steps = np.round(epochs * PER_EPOCH).astype(int)
    return types.SimpleNamespace(
        Gamma=GAMMA, eval_epochs=steps / PER_EPOCH, eval_steps=steps, eval_corr_gap=corr, eval_corr_spatial=spatial,
        eval_corr_gap_true=np.full(N, LEVEL), eval_corr_spatial_true=LEVEL, best_corr_gap=corr[-1].copy(),
        best_corr_spatial=float(spatial[-1]), best_step=int(steps[-1]), stop_reason="converged",
        validation=[[int(s), 1.0] for s in steps], best_validation=1.0,
    )  # fmt: skip


def _grid(epoch):  # the first evaluation at or after ``epoch``
    e = np.round(EPOCHS * PER_EPOCH) / PER_EPOCH
    return float(e[np.searchsorted(e, epoch)])


def test_only_gaps_whose_correlation_stands_above_the_estimators_noise_are_timed():
    p = _run({h: 80.0 for h in range(1, 6)}, 2.0)
    np.testing.assert_array_equal(np.nonzero(dynamics.resolvable(p))[0], [1, 2, 3, 4, 5])  # gamma(6) = 0.0498
    assert dynamics.sampling_noise(p) == LEVEL  # the true sequences' error where there is nothing to learn
    # the noise gaps, flat above the floor, would each read "never learned"; they are not timed at all
    assert dynamics.learned_epoch(p.eval_epochs, p.eval_corr_gap[:, 8], LEVEL).high == math.inf
    assert set(dynamics.gap_learned_epochs(p)) == {1, 2, 3, 4, 5}
    assert dynamics.temporal_learned_epoch(p) == (_grid(80),) * 3  # timed: the three numbers agree
    assert dynamics.eval_spacing(p) == pytest.approx(300 ** (1 / 23), rel=1e-2)


def test_a_quantity_is_learned_when_most_of_its_own_initial_excess_is_gone():
    epochs = np.array([1.0, 2, 4, 8, 16])
    learned_epoch = dynamics.learned_epoch
    # excess 0.9 over the level 0.1: learned once at most 0.18 of it is left (error <= 0.28), for good
    assert learned_epoch(epochs, np.array([1.0, 0.6, 0.3, 0.25, 0.1]), floor=0.1) == (8.0, 8.0, 8.0)
    assert learned_epoch(epochs, np.array([1.0, 0.2, 0.5, 0.25, 0.1]), floor=0.1) == (8.0, 8.0, 8.0)  # not a dip
    assert learned_epoch(epochs, np.array([1.0, 0.6, 0.3, 0.25, 0.1]), floor=0.1, fraction=0.5).epoch == 4.0
    # a strong and a weak correlation that fall alike are learned at the same epoch, whatever their floors
    shape = np.array([1.0, 0.7, 0.3, 0.05, 0.0])
    strong, weak = 0.002 + 0.9 * shape, 0.02 + 0.1 * shape
    assert learned_epoch(epochs, strong, 0.002) == learned_epoch(epochs, weak, 0.02) == (8.0, 8.0, 8.0)
    # the network kept sets the final level
    assert learned_epoch(epochs, np.array([1.0, 0.6, 0.3, 0.25, 0.1]), floor=0.0, final=0.25).epoch == 4.0
    # nothing to time: right from the start (left-censored) or flat above the floor (right-censored)
    start = learned_epoch(epochs, np.array([0.02, 0.015, 0.012, 0.01, 0.01]), floor=0.01)
    assert start == (1.0, 0.0, 1.0) and start.censored
    never = learned_epoch(epochs, np.array([0.5, 0.5, 0.45, 0.5, 0.5]), floor=0.01)
    assert never == (16.0, 16.0, math.inf) and never.censored
    with pytest.raises(ValueError, match="epochs and err"):
        learned_epoch(epochs, np.array([1.0, 2.0]), 0.0)


def test_learned_from_the_start_is_one_rule_for_space_and_time():
    p = _run({h: 0.0 for h in range(1, 6)}, 0.0)  # both right at the first evaluation
    first = float(p.eval_epochs[0])
    assert dynamics.spatial_learned_epoch(p) == dynamics.temporal_learned_epoch(p) == (first, 0.0, first)
    # the same curve as a gap and as the spatial correlation gets the same time
    q = _run({h: 30.0 for h in range(1, 6)}, 2.0)
    q.eval_corr_spatial, q.eval_corr_spatial_true = q.eval_corr_gap[:, 3].copy(), LEVEL
    q.best_corr_spatial = float(q.eval_corr_spatial[-1])
    assert dynamics.spatial_learned_epoch(q) == dynamics.gap_learned_epochs(q)[3]


def test_the_readings_stop_at_the_network_that_generated_and_a_divergence_after_it_is_labelled():
    p = _run({h: 20.0 for h in range(1, 6)}, 2.0)
    late = p.eval_epochs > 100  # diverged after its best network (epoch 100): back to uncorrelated frames
    p.eval_corr_gap[late, 1:6] = np.exp(-np.arange(1, 6) / 2.0)
    p.eval_corr_spatial[late] = 0.5
    p.best_step = 100 * PER_EPOCH
    p.validation = [[s, 1.0 if s <= p.best_step else 40.0] for s in p.eval_steps]
    r = dynamics.readings(p)
    assert r.epochs[-1] == 100 and (r.epochs[:-1] < 100).all()  # the best network's own measurement closes them
    np.testing.assert_array_equal(r.corr_gap[-1], p.best_corr_gap)
    assert len(dynamics.readings(p, best=False).epochs) == len(r.epochs) - 1
    assert dynamics.timeline(p)[-1] < 100 and len(dynamics.curves(p)["temporal"][0]) == len(r.epochs) - 1
    p.best_corr_gap, p.best_corr_spatial = p.eval_corr_gap[~late][-1], float(p.eval_corr_spatial[~late][-1])
    assert dynamics.temporal_learned_epoch(p) == (_grid(20),) * 3
    assert dynamics.spatial_learned_epoch(p).epoch == _grid(2)
    # read to the end of the run instead, the same network would never have learned either
    full = dynamics.learned_epoch(p.eval_epochs, p.eval_corr_gap[:, 1], LEVEL)
    assert full.high == math.inf
    assert dynamics.diverged(p) and dynamics.stop_label(p) == "diverged after step 1000, stopped"
    p.validation = [[s, 1.0 if s <= p.best_step else 1.3] for s in p.eval_steps]  # a wobble, not a divergence
    assert not dynamics.diverged(p) and dynamics.stop_label(p) == "converged"


def test_a_censored_verdict_takes_each_censored_seed_at_the_bound_least_favourable_to_the_outcome():
    exact = [(x, x, x) for x in (1.0, 1.2, 0.9, 1.1)]
    assert censored_verdict(exact) == statistics_verdict([1.0, 1.2, 0.9, 1.1])
    v = censored_verdict([*exact, (0.3, 0.3, math.inf)])  # a lower bound: can only confirm "holds"
    assert v.outcome == "holds" and v.n == 5 and v.censored == 1 and v.seeds == "n = 5, 1 censored"
    neg = [(-x, -x, -x) for x in (1.0, 1.2, 0.9, 1.1)]
    assert censored_verdict(neg).outcome == "fails"
    assert censored_verdict([*neg, (-2.0, -2.0, math.inf)]).outcome == "inconclusive"  # it could be anything above
    assert censored_verdict([*neg, (-0.5, -math.inf, -0.5)]).outcome == "fails"  # an upper bound confirms "fails"
    assert censored_verdict([*exact, (0.5, -math.inf, 0.5)]).outcome == "inconclusive"
    assert censored_verdict([*exact, (math.nan,) * 3]).seeds == "n = 4 of 5"  # unmeasurable: dropped, and said so
    v = censored_verdict([(1.0, 1.0, 1.0), (20.0, 0.9, math.inf), (1.1, 1.1, 1.1), (1.05, 1.05, 1.05)])
    assert (
        v.outcome == "holds" and v.low > 0 and v.estimate == pytest.approx((1.0 + 0.9 + 1.1 + 1.05) / 4)
    )  # the bounds'
    assert censored_verdict([(1.0, 1.0, 1.0), (20.0, 0.05, 20.0), (1.1, 1.1, 1.1)]).outcome == "inconclusive"


def statistics_verdict(x):
    from gptheory.statistics import verdict

    return verdict(x)


def _seeds(spatial, temporal, slope, n=5, never=()):
    """``n`` seeds: spatial correlation learned at ``spatial``, gap ``h`` at ``temporal * slope^(h - 3)`` (jittered),
    the seeds in ``never`` never learning the temporal correlation at all."""
    rng = np.random.default_rng(1)
    out = []
    for k in range(n):
        jitter = float(np.exp(rng.normal(0, 0.1)))
        at = {h: math.inf if k in never else temporal * jitter * slope ** (h - 3) for h in range(1, 6)}
        out.append(_run(at, spatial * jitter, seed=k))
    return out


def test_figure_13_verdicts_on_runs_whose_truth_is_known():
    v = dynamics.dynamics_verdicts(_seeds(2.0, 90.0, 1.3))  # spatial by epoch 2, temporal about 90, weak later
    assert {k: x.outcome for k, x in v.items()} == {"spatial_first": "holds", "temporal_late": "holds",
                                                     "weak_later": "holds"}  # fmt: skip
    assert all(x.n == 5 and x.censored == 0 for x in v.values())
    v = dynamics.dynamics_verdicts(_seeds(2.0, 10.0, 0.7))  # temporal about 10, the weak (far) gaps first
    assert v["temporal_late"].outcome == "fails" and v["weak_later"].outcome == "fails"
    assert v["spatial_first"].outcome == "holds"
    v = dynamics.dynamics_verdicts(_seeds(30.0, 10.0, 1.3))  # the spatial one later than the temporal one
    assert v["spatial_first"].outcome == "fails"
    # every gap learned at once: no order between strong and weak, whatever the gaps' floors
    assert dynamics.dynamics_verdicts(_seeds(2.0, 30.0, 1.0))["weak_later"].outcome != "holds"
    assert {x.outcome for x in dynamics.dynamics_verdicts(_seeds(2.0, 90.0, 1.3, n=1)).values()} == {"inconclusive"}


def test_a_run_that_never_learns_the_temporal_correlation_is_censored_not_dropped():
    # two of five seeds never learn it: each counts at its last epoch (300 > 50), a lower bound, and "late" holds
    pts = _seeds(2.0, 90.0, 1.3, never=(0, 1))
    assert dynamics.temporal_learned_epoch(pts[0]) == (300.0, 300.0, math.inf)
    v = dynamics.dynamics_verdicts(pts)
    assert v["temporal_late"].n == v["spatial_first"].n == 5 and v["temporal_late"].censored == 2
    assert v["temporal_late"].outcome == v["spatial_first"].outcome == "holds"
    assert "2 censored" in v["temporal_late"].seeds and v["weak_later"].censored == 2
    # by gap: a gap never learned comes after every timed one, in any order among the censored ones
    L, never = dynamics.Learned, dynamics.Learned(300.0, 300.0, math.inf)
    value, low, high = dynamics._rank_effect(
        np.array([0.9, 0.7, 0.5, 0.3, 0.1]), [L(10, 10, 10), L(20, 20, 20)] + [never] * 3
    )
    assert (low, high) == pytest.approx((0.6, 1.0)) and low < value < high  # strongest censored gap last, or first
    # the others learn by epoch 10, so without the two "late" fails; the censored seeds rule that out
    early = _seeds(2.0, 8.0, 1.0)
    assert dynamics.dynamics_verdicts(early)["temporal_late"].outcome == "fails"
    mixed = early[:3] + _seeds(2.0, 8.0, 1.0, never=(3, 4))[3:]
    v = dynamics.dynamics_verdicts(mixed)
    assert v["temporal_late"].outcome == "inconclusive" and v["temporal_late"].n == 5
    # a run stopped before epoch 50 without learning: censored below 50, still never a "fails"
    short = [_run({h: math.inf for h in range(1, 6)}, 2.0, seed=k, epochs=np.geomspace(1, 40, 16)) for k in range(2)]
    assert dynamics.dynamics_verdicts(early[:3] + short)["temporal_late"].outcome == "inconclusive"
    with pytest.raises(ValueError, match="eval_points > 0"):
        dynamics.dynamics_verdicts([types.SimpleNamespace(eval_epochs=np.zeros(0))])
