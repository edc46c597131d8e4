"""Claims the chapters make in words, checked where a careful reader of the paper would check them."""

from __future__ import annotations

import math

import numpy as np

from gptheory import GaussianProcess, OUSchedule, kernel_matrix
from gptheory.construct import build_gd_transformer, size_report


def kappa(N: int, nu: float, ell: float) -> float:
    lam = np.linalg.eigvalsh(kernel_matrix(N, nu, ell).numpy())
    return float(lam.max() / lam.min())


def test_ou_condition_number_grows_like_ell_squared():
    """gp_sequences: kappa(Gamma) of the OU kernel grows like ell^2 (limit ((1+rho)/(1-rho))^2 ~ 4 ell^2), not ell."""
    exponent = math.log(kappa(128, 1.0, 16.0) / kappa(128, 1.0, 4.0)) / math.log(4)
    assert 1.8 < exponent < 2.05
    rho = math.exp(-1 / 8)
    assert abs(kappa(512, 1.0, 8.0) / ((1 + rho) / (1 - rho)) ** 2 - 1) < 0.01  # N = 512 resolves omega ~ 1/ell


def test_softmax_construction_needs_one_more_block_per_step_than_relu():
    """construction: against the paper's B.5, our softmax network is deeper (24 against 19 blocks at N=32, d=4,
    5 steps), by the one multiplication by Z_i per step."""
    gp, sched = GaussianProcess(32, 4, nu=2.0, ell=2.0, seed=0), OUSchedule()
    for steps in (5, 10):
        relu = size_report(build_gd_transformer(gp, 0.5, sched, steps))["blocks"]
        soft = size_report(build_gd_transformer(gp, 0.5, sched, steps, attention="softmax"))["blocks"]
        assert soft - relu == steps
    assert size_report(build_gd_transformer(gp, 0.5, sched, 5))["blocks"] == 19
