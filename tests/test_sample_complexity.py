"""Tests for gptheory.experiments.sample_complexity: a calibrated point, and the verdicts read from a grid."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gptheory.experiments import sample_complexity as sc
from gptheory.gp import GaussianProcess
from gptheory.metrics import CovarianceErrors, Law
from gptheory.provenance import Provenance
from gptheory.results import setting
from gptheory.schedules import DDPMSchedule
from gptheory.streams import generator
from gptheory.trial import run_trial


def test_a_calibrated_point_measures_against_the_law_at_t0_beside_its_floors_and_records_how_training_ended():
    config = sc.SAMPLE_COMPLEXITY["smoke"].replace(patience=2, eval_every=10, steps=120, n_train=40)
    p = sc.run_sample_complexity(config, progress=False, device="cpu")
    assert p.stop_reason in ("converged", "cap") and 10 <= p.best_step <= p.steps <= 120
    assert [s for s, _ in p.validation] == list(range(10, p.steps + 1, 10))
    assert p.relative_count == 40 and p.floor.temporal > 0 and p.train_floor.temporal > p.floor.temporal  # 40 < 200
    # the DiT's errors are against the law at t0 (the trial repeats under its seed)
    trial = run_trial(config, progress=False, device="cpu")
    gp = GaussianProcess(8, 2, nu=2.0, ell=1.0)
    law_t0 = Law.at(gp, config.train.t0, DDPMSchedule())
    assert p.dit == CovarianceErrors.of_samples(trial.x_gen, law_t0)
    assert p.truth == CovarianceErrors.of_samples(gp.sample(200, generator=generator(0, "true")), gp)
    assert 0 < p.parametric_nu <= 2 and p.parametric_ell > 0 and p.memorisation.ratio > 0


def _calibrated(nu: float, ell: float, n: int, seed: int, err: float, floor: float = 0.03) -> sc.SampleComplexity:
    e, f = CovarianceErrors(err, err, err, err, err), CovarianceErrors(floor, floor, floor, floor, floor)
    p = sc.SampleComplexity(e, e, e, e, e, 1.0, 1.0, 1.0, 1, 1.0, 1.0, 1, 1.0, np.eye(2), floor=f)
    config = sc.SAMPLE_COMPLEXITY["smoke"].replace(nu=nu, ell=ell, n_train=n, seed=seed)
    p.provenance = Provenance.now(config.to_dict(), 1.0)
    return p


def test_calibrated_verdicts_read_squared_excess_errors_paired_by_seed():
    rng = np.random.default_rng(1)
    floor = 0.03
    pts = []
    for seed in range(5):
        lift = rng.normal(0, 0.03)  # a seed effect shared by every process: pairing removes it
        for nu, c in ((0.5, 3.0), (1.0, 2.0), (2.0, 1.0)):
            for n in (64, 256, 1024, 4096):
                ex = c * min(n, 1024) ** -0.5 * math.exp(lift + rng.normal(0, 0.02))  # falls, then a plateau
                pts.append(_calibrated(nu, 1.0, n, seed, math.hypot(ex, floor), floor))
    ns = (64, 256, 1024, 4096)
    first = pts[8]  # seed 0, nu = 2, n = 64
    assert sc.excess_by_seed(pts)[(2.0, 1.0)][64][0] == pytest.approx(math.sqrt(first.dit.temporal**2 - floor**2))
    squared = sc.excess_by_seed(pts, squared=True)[(2.0, 1.0)][64][0]
    assert squared == pytest.approx(first.dit.temporal**2 / floor**2 - 1)
    d = sc.decay_verdicts(pts)
    assert all(v["falls"].outcome == "holds" for v in d.values())
    assert all(v["still_falls"].outcome == "fails" for v in d.values())  # the plateau from 1024 on
    orders = sc.order_verdicts(pts, "nu")
    assert set(orders) == {64, 256, 1024, 4096} and all(o == "holds" for o, _ in orders.values())
    assert all(len(links) == 2 and links[0].n == 5 for _, links in orders.values())
    # an ordering is of one series: a point of the ell series (nu = 2 at ell = 4) among them is refused, not ranked
    mixed = [*pts, _calibrated(2.0, 4.0, 64, 0, 0.1, floor)]
    with pytest.raises(ValueError, match="one nu series"):
        sc.order_verdicts(mixed, "nu")
    with pytest.raises(ValueError, match="axis must be"):
        sc.order_verdicts(pts, "N")
    with pytest.raises(ValueError, match="one ell series"):  # the nu series read as an ell series: nu varies
        sc.order_verdicts(pts, "ell")
    versus = sc.versus_verdicts(pts)  # the fake records' yardstick equals the DiT: no difference to establish
    assert len(versus) == 12 and {v.outcome for v in versus.values()} == {"inconclusive"}
    # a yardstick better than the DiT at nu = 0.5, worse at nu = 2, by less than the seed-shared lift moves either:
    # paired by seed, both signs are established
    for p in pts:
        lift = 0.02 * (setting(p, "seed") - 2)
        p.dit = CovarianceErrors(*[math.hypot(0.05 + lift, floor)] * 5)
        gap = {0.5: -0.01, 1.0: 0.0, 2.0: 0.01}[setting(p, "nu")] + 1e-3 * (setting(p, "seed") % 2)
        p.yardstick = CovarianceErrors(*[math.hypot(0.05 + lift + gap, floor)] * 5)
    versus = sc.versus_verdicts(pts)
    assert all(versus[((0.5, 1.0), n)].outcome == "holds" and versus[((0.5, 1.0), n)].estimate > 0 for n in ns)
    assert all(versus[((2.0, 1.0), n)].outcome == "fails" for n in ns)
    assert versus[((1.0, 1.0), 64)].n == 5
    with pytest.raises(ValueError, match="part must be one of"):
        sc.excess_by_seed(pts, part="train")
