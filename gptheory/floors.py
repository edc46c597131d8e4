"""Sampling floors: how far an estimate from ``m`` sequences drawn from the law itself lands, in expectation.

Every error of :class:`gptheory.metrics.CovarianceErrors` is the distance of an estimator (pair covariances, the
temporal kernels, the frames' covariances) from the same estimator applied to the law. Even sequences drawn from the
law are not at distance zero: the estimator has its own sampling noise at ``m`` sequences, the *floor*. A generated
error means something only beside the floor at the same count, and what a generator adds is the *excess*.

For ``m`` Gaussian sequences the sample covariance ``C_hat`` (mean removed, ``1/(m-1)``) is Wishart, with
``Cov(C_hat_ab, C_hat_cd) = (S_ac S_bd + S_ad S_bc) / (m - 1)``. Every estimator but ``W2`` is linear in ``C_hat``,
so its mean squared error is exact:

* full covariance: ``E||C_hat - S||^2 = ((tr S)^2 + ||S||^2) / (m - 1)``;
* a frame's covariance ``S_ii``: the same with ``S_ii``;
* a temporal kernel ``Gamma_hat_ij = tr(P C_ij)`` (``P = Sigma^{-1} / d`` whitened, ``Sigma / ||Sigma||^2``
  least squares): ``E||Gamma_hat - Gamma_S||^2 = (tr(P D P^T D) + sum_ij tr(P S_ij P S_ij)) / (m - 1)`` with
  ``D = sum_i S_ii`` (any law ``S``, any ``P``).

:func:`sampling_floor` returns these root-mean-square errors relative to the law, in the units of
:class:`CovarianceErrors`. A relative error's expectation is a little below its root mean square (Jensen), by about
``1 / (4 k)`` for an error spread over ``k`` independent directions: negligible for the kernels and the full
covariance, not for one ``d x d`` frame, so the spatial floor and ``W2`` (no closed form) are Monte Carlo means.
:func:`excess` is the part of an error that the floor does not explain. :data:`RESOLVABLE` is the smallest true
correlation the book treats as something a generator can get right or wrong, above the estimators' noise.
"""

from __future__ import annotations

import math

import torch

from .metrics import (
    CovarianceErrors,
    Law,
    flat_covariance,
    spatial_covariance,
    temporal_kernel,
    temporal_kernel_whitened,
)
from .streams import generator
from .validation import positive_int

RESOLVABLE = 0.05
"""The smallest true correlation ``gamma(h)`` the book judges a network on (the training dynamics' timed gaps, the
weak correlations of Figure 11). Below it a correlation is lost in the estimators' noise: about ``1 / sqrt(n d)`` for
``n`` sequences of ``d`` coordinates, 0.022 at the cpu profile's 500 evaluation sequences of 4 coordinates and 0.011
at its 2000 generated ones, so 0.05 is 2.3 to 4.5 noise levels (the chapters show the measured ratio)."""


def _kernel_floor(S: torch.Tensor, P: torch.Tensor, truth: torch.Tensor, m: int) -> float:
    D = torch.diagonal(S, dim1=0, dim2=1).sum(-1)  # sum_i S_ii, (d, d)
    cross = torch.einsum("ab,ijbc,cd,ijda->", P, S, P, S)  # sum_ij tr(P S_ij P S_ij)
    mse = (torch.trace(P @ D @ P.T @ D) + cross) / (m - 1)
    return math.sqrt(float(mse)) / float(torch.linalg.norm(truth))


def monte_carlo_floor(law: Law, m: int, reps: int = 16, seed: int = 0) -> CovarianceErrors:
    """Every error of :class:`~gptheory.metrics.CovarianceErrors` on ``m`` draws of ``law``, averaged over ``reps``
    Monte Carlo draws (stream ``floor`` of ``seed``): the expected errors themselves, not their root mean square."""
    g = generator(seed, "floor")
    total = dict.fromkeys(CovarianceErrors.__dataclass_fields__, 0.0)
    for _ in range(reps):
        x = law.sample(m, g)
        for k, v in CovarianceErrors.of_samples(x, law).__dict__.items():
            total[k] += v / reps
    return CovarianceErrors(**total)


def sampling_floor(law: Law, m: int, reps: int = 16, seed: int = 0) -> CovarianceErrors:
    """The floor of every estimator of :class:`~gptheory.metrics.CovarianceErrors` on ``m >= 2`` sequences drawn
    from ``law``, relative like the errors themselves: the root mean square in closed form for the temporal kernels
    and the full covariance (errors spread over many entries, where it equals the mean to a few per cent); the mean
    by :func:`monte_carlo_floor` (``reps`` draws) for ``spatial`` (a ``d x d`` frame, where Jensen's gap is 10 to
    20 per cent at small ``d``) and ``w2``. With ``reps=0`` the spatial floor is its closed-form root mean square and
    ``w2`` is ``nan``."""
    m = positive_int("m", m)
    if m < 2:
        raise ValueError(f"m must be at least 2 (a covariance needs two sequences), got {m}")
    S, Sigma = law.pairs, law.Sigma
    d = Sigma.shape[0]
    flat = flat_covariance(S)
    frames = spatial_covariance(S)  # (N, d, d)
    tr = torch.diagonal(frames, dim1=-2, dim2=-1).sum(-1)
    sq = (frames**2).sum((-2, -1))
    spatial = ((tr**2 + sq) / (m - 1)).sqrt() / sq.sqrt()
    mc = monte_carlo_floor(law, m, reps, seed) if reps else None
    return CovarianceErrors(
        temporal=_kernel_floor(S, torch.linalg.inv(Sigma) / d, temporal_kernel_whitened(S, Sigma), m),
        temporal_ls=_kernel_floor(S, Sigma / (Sigma**2).sum(), temporal_kernel(S, Sigma), m),
        spatial=mc.spatial if mc else float(spatial.mean()),
        covariance=math.sqrt((float(torch.trace(flat)) ** 2 + float((flat**2).sum())) / (m - 1))
        / float(torch.linalg.norm(flat)),
        w2=mc.w2 if mc else math.nan,
    )


def excess(error: float, floor: float) -> float:
    """The part of ``error`` its sampling ``floor`` does not explain, ``sqrt(max(error^2 - floor^2, 0))``: squared
    errors of independent parts add (exactly for the Frobenius errors; approximately for the mean of per-frame ratios
    and for ``W2``), so this estimates the systematic error of what was measured. It is 0 for about half of the draws
    of a perfect generator and small but positive for the rest, so read a single excess near the floor as
    unresolved, and draw conclusions from differences of squared errors (:mod:`gptheory.statistics`)."""
    return math.sqrt(max(error**2 - floor**2, 0.0))


def squared_excess(error: float, floor: float) -> float:
    """``(error^2 - floor^2) / floor^2``: the squared error over its floor's, in units of the floor's, untruncated
    (negative below the floor; about 0 on average for a perfect generator). Verdicts are drawn on it: it has neither
    the zero-truncation of :func:`excess` nor a logarithm to bias a mean over seeds."""
    return (error**2 - floor**2) / floor**2


def ratios(errors: CovarianceErrors, floor: CovarianceErrors) -> dict[str, float]:
    """Every error divided by its floor (about 1 for sequences drawn from the law)."""
    return {k: v / getattr(floor, k) for k, v in errors.__dict__.items()}


__all__ = ["RESOLVABLE", "excess", "monte_carlo_floor", "ratios", "sampling_floor", "squared_excess"]
