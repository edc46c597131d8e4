"""Tests for gptheory.experiments.sample_complexity: slopes, means and the ordering of the grid."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gptheory.experiments import sample_complexity as sc
from gptheory.metrics import CovarianceErrors
from gptheory.provenance import Provenance
from gptheory.results import value


def test_slopes_fit_each_process_over_every_seed_and_cut_at_n_max():
    rng = np.random.default_rng(0)
    pts = [_fake(nu, 4.0, n, nu * n**-0.5 * math.exp(rng.normal(0, 0.05))) for nu in (1.0, 2.0) for n in (64, 256, 1024)
           for _ in range(2)]  # fmt: skip
    fits = sc.slopes(pts)
    assert set(fits) == {(1.0, 4.0), (2.0, 4.0)}
    for fit in fits.values():
        assert fit.low < -0.5 < fit.high and fit.slope == pytest.approx(-0.5, abs=0.05)
    cut = sc.slopes(pts, n_max=256)  # two sizes, four runs: a slope with an interval from two residual dof
    x = np.log([64, 64, 256, 256])
    y = np.log([value(p, "dit.temporal") for p in pts if p.config["process"]["nu"] == 1.0][:4])
    assert cut[(1.0, 4.0)].slope == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-12)


def _fake(nu: float, ell: float, n: int, err: float) -> sc.SampleComplexity:
    e = CovarianceErrors(err, err, err, err, err)
    p = sc.SampleComplexity(e, e, e, e, e, 1.0, 1.0, 1.0, 1, 1.0, 1.0, 1, 1.0, np.eye(2))
    p.provenance = Provenance.now(sc.SAMPLE_COMPLEXITY["smoke"].replace(nu=nu, ell=ell, n_train=n).to_dict(), 1.0)
    return p


def test_ordering_and_means_read_the_grid():
    pts = [_fake(nu, 4.0, n, e / n**0.5) for nu, e in ((0.5, 3.0), (1.0, 2.0), (2.0, 1.0)) for n in (64, 256)]
    assert sc.ordering(pts, "nu") == {64: True, 256: True}
    pts.append(_fake(2.0, 4.0, 256, 10.0))  # a bad seed at one size: the mean there breaks the ordering
    assert sc.ordering(pts, "nu") == {64: True, 256: False}
    ell_pts = [_fake(1.0, ell, 64, ell) for ell in (2.0, 4.0, 8.0)]  # error grows with ell: the claimed order
    assert sc.ordering(ell_pts, "ell") == {64: True}
    assert sc.means(ell_pts, "dit.temporal")[(1.0, 8.0)] == {64: 8.0}
