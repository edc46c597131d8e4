"""What a generator learned: covariance estimates, the paper's relative error, Gaussian distances.

Estimators (Appendix D.1 of the paper), for samples ``x: (n, N, d)``:

* per-pair covariance ``C_ij = 1/(n-1) sum_k (x_i^k - xbar_i)(x_j^k - xbar_j)^T``, an ``(N, N, d, d)``
  array (:func:`pair_covariance`);
* the temporal kernel given the true ``Sigma``, by least squares
  ``Gamma_hat_ij = <C_ij, Sigma>_F / ||Sigma||_F^2`` (:func:`temporal_kernel`);
* the spatial covariance of each frame, ``C_ii`` (:func:`spatial_covariance`).

The paper-style relative error (:func:`paper_relative_error`) divides the error of an estimate
from generated samples by the error of the *same estimator on the same number of true samples*:

    rel = ||E(x_gen) - truth||_F / ||E(x_true) - truth||_F

so that a value near 1 means "as good as real data of the same size" and finite-sample noise cancels.
"""

from __future__ import annotations

import math

import torch

from .validation import finite_tensor

DTYPE = torch.float64


def _samples(x: torch.Tensor) -> torch.Tensor:
    x = finite_tensor("x", x)
    if x.dim() != 3 or x.shape[0] < 2:
        raise ValueError(f"x must have shape (n, N, d) with n >= 2 samples, got {tuple(x.shape)}")
    return x.to(DTYPE)


def pair_covariance(x: torch.Tensor) -> torch.Tensor:
    """Empirical covariance of every pair of frames: ``(N, N, d, d)`` from ``x: (n, N, d)``."""
    x = _samples(x)
    xc = x - x.mean(0)
    return torch.einsum("kia,kjb->ijab", xc, xc) / (x.shape[0] - 1)


def flat_covariance(C: torch.Tensor) -> torch.Tensor:
    """Reshape an ``(N, N, d, d)`` pair covariance into the time-major ``(N d, N d)`` matrix."""
    N, _, d, _ = C.shape
    return C.permute(0, 2, 1, 3).reshape(N * d, N * d)


def temporal_kernel(C: torch.Tensor, Sigma: torch.Tensor) -> torch.Tensor:
    """Least-squares temporal kernel ``Gamma_hat_ij = <C_ij, Sigma>_F / ||Sigma||_F^2``, ``(N, N)``."""
    Sigma = Sigma.to(DTYPE)
    return torch.einsum("ijab,ab->ij", C, Sigma) / (Sigma**2).sum()


def spatial_covariance(C: torch.Tensor) -> torch.Tensor:
    """Per-frame spatial covariance estimates ``C_ii``, shape ``(N, d, d)``."""
    return torch.diagonal(C, dim1=0, dim2=1).permute(2, 0, 1)


def relative_error(estimate: torch.Tensor, truth: torch.Tensor) -> float:
    """``||estimate - truth||_F / ||truth||_F``."""
    return float(torch.linalg.norm((estimate - truth).flatten()) / torch.linalg.norm(truth.flatten()))


def covariance_errors(x: torch.Tensor, Gamma: torch.Tensor, Sigma: torch.Tensor) -> dict[str, float]:
    """Relative Frobenius errors of the temporal and spatial estimates from ``x: (n, N, d)``.

    Returns ``{"temporal": ||Gamma_hat - Gamma|| / ||Gamma||, "spatial": mean_i ||C_ii - Gamma_ii Sigma|| /
    ||Gamma_ii Sigma||, "covariance": ||C - Gamma (x) Sigma|| / ||Gamma (x) Sigma||}``.
    """
    return errors_of_covariance(pair_covariance(x), Gamma, Sigma)


def errors_of_covariance(C: torch.Tensor, Gamma: torch.Tensor, Sigma: torch.Tensor) -> dict[str, float]:
    """:func:`covariance_errors` from an already computed pair covariance ``C: (N, N, d, d)``."""
    Gamma, Sigma = Gamma.to(DTYPE), Sigma.to(DTYPE)
    S_true = torch.diagonal(Gamma)[:, None, None] * Sigma
    spatial = torch.linalg.norm((spatial_covariance(C) - S_true).flatten(1), dim=1) / torch.linalg.norm(
        S_true.flatten(1), dim=1
    )
    return {
        "temporal": relative_error(temporal_kernel(C, Sigma), Gamma),
        "spatial": float(spatial.mean()),
        "covariance": relative_error(flat_covariance(C), torch.kron(Gamma, Sigma)),
    }


def paper_relative_error(x_gen: torch.Tensor, x_true: torch.Tensor, Gamma: torch.Tensor, Sigma: torch.Tensor) -> float:
    """The paper's normalised error of the full covariance estimate.

    ``||C(x_gen) - Gamma (x) Sigma||_F / ||C(x_true) - Gamma (x) Sigma||_F``, with ``x_true`` true
    samples of the same count as ``x_gen`` (so that the sampling noise of the estimator cancels):
    1 means "as good as real data", larger is worse. It equals the ratio of the ``"covariance"`` entries of
    :func:`covariance_errors` for ``x_gen`` and ``x_true``.
    """
    if x_gen.shape != x_true.shape:
        raise ValueError(
            f"x_gen and x_true must have the same shape, got {tuple(x_gen.shape)} and {tuple(x_true.shape)}"
        )
    truth = torch.kron(Gamma.to(DTYPE), Sigma.to(DTYPE))
    err_gen = torch.linalg.norm(flat_covariance(pair_covariance(x_gen)) - truth)
    err_true = torch.linalg.norm(flat_covariance(pair_covariance(x_true)) - truth)
    return float(err_gen / err_true)


def fitted_moments(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Sample mean ``(N d,)`` and covariance ``(N d, N d)`` of ``x: (n, N, d)``, time-major."""
    x = _samples(x)
    return x.mean(0).flatten(), flat_covariance(pair_covariance(x))


def gaussian_kl(m1: torch.Tensor, S1: torch.Tensor, m0: torch.Tensor, S0: torch.Tensor) -> float:
    """``KL(N(m1, S1) || N(m0, S0))`` in nats, for dense ``(D,)`` means and ``(D, D)`` covariances.

    ``S0`` must be positive definite; when the target is a data covariance that is singular to
    working precision (smooth kernels), compare at a small diffusion time ``t0`` instead.
    """
    m1, S1, m0, S0 = (a.to(DTYPE) for a in (m1, S1, m0, S0))
    L0 = torch.linalg.cholesky(S0)
    D = S0.shape[0]
    A = torch.cholesky_solve(S1, L0)
    diff = (m1 - m0)[:, None]
    maha = float((diff * torch.cholesky_solve(diff, L0)).sum())
    sign, logdet1 = torch.linalg.slogdet(S1)
    if sign <= 0:
        return math.inf
    logdet0 = 2 * torch.log(torch.diagonal(L0)).sum()
    return 0.5 * float(torch.trace(A) + maha - D + logdet0 - logdet1)


def _psd_sqrt(S: torch.Tensor) -> torch.Tensor:
    w, Q = torch.linalg.eigh(0.5 * (S + S.T))
    return (Q * w.clamp(min=0).sqrt()) @ Q.T


def gaussian_w2(m1: torch.Tensor, S1: torch.Tensor, m0: torch.Tensor, S0: torch.Tensor) -> float:
    """Wasserstein-2 distance between ``N(m1, S1)`` and ``N(m0, S0)`` (Bures formula); singular ``S`` is fine.

    ``W2^2 = ||m1 - m0||^2 + tr(S1) + tr(S0) - 2 tr((S0^{1/2} S1 S0^{1/2})^{1/2})``.
    """
    m1, S1, m0, S0 = (a.to(DTYPE) for a in (m1, S1, m0, S0))
    r0 = _psd_sqrt(S0)
    cross = torch.linalg.eigvalsh(r0 @ S1 @ r0).clamp(min=0).sqrt().sum()
    w2sq = float(((m1 - m0) ** 2).sum() + torch.trace(S1) + torch.trace(S0) - 2 * cross)
    return math.sqrt(max(w2sq, 0.0))


def ode_sampler_kl(
    gp,
    schedule,
    steps: int,
    t0: float,
    method: str = "heun",
    T: float | None = None,
    start: str = "exact",
    spacing: str = "log",
) -> float:
    """Exact KL (nats) between what a probability-flow ODE sampler produces and the true ``p_t0``.

    With the exact score of a zero-mean Gaussian process the backward ODE is linear and acts on
    each Kronecker eigen-coordinate ``c`` (variance ``v_c(t) = alpha_t^2 lam_i m_j + sigma_t^2``)
    by a scalar gain ``g_c``. Pushing the all-ones tensor (in the eigenbasis) through
    :func:`gptheory.samplers.sample` reads every gain off in one run, so the generated law is
    ``N(0, diag(g_c^2 v_start))`` and

        KL = 1/2 sum_c (r_c - 1 - log r_c),   r_c = g_c^2 v_start,c / v_c(t0).

    Args:
        gp: a :class:`~gptheory.gp.GaussianProcess` (its mean is ignored: the map is linear).
        schedule: the forward schedule; ``steps``, ``t0``, ``method``, ``T``, ``spacing``: as in ``sample``.
        start: ``"exact"`` starts from the true ``p_T`` (pure discretisation error) or
            ``"standard"`` from ``N(0, I)`` (adds the error of the prior).
    """
    from .samplers import sample  # local import: samplers do not depend on metrics

    if start not in ("exact", "standard"):
        raise ValueError(f"start must be 'exact' or 'standard', got {start!r}")
    T = schedule.T if T is None else T
    ones = gp.from_eigenbasis(torch.ones(1, gp.N, gp.d, dtype=DTYPE))

    def score(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -gp.solve(x, schedule.alpha(t) ** 2, schedule.sigma(t) ** 2)

    g = gp.to_eigenbasis(sample(score, ones, schedule, steps, t0, method=method, T=T, spacing=spacing, progress=False))[
        0
    ]
    v_start = gp.marginal_covariance_spectrum(T, schedule) if start == "exact" else torch.ones_like(g)
    r = g**2 * v_start / gp.marginal_covariance_spectrum(t0, schedule)
    return float(0.5 * (r - 1 - torch.log(r)).sum())
