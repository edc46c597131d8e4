"""What a generator learned: covariance estimates, the paper's relative error, Gaussian distances.

Estimators (Appendix D.1 of the paper), for samples ``x: (n, N, d)``:

* per-pair covariance ``C_ij = 1/(n-1) sum_k (x_i^k - xbar_i)(x_j^k - xbar_j)^T``, an ``(N, N, d, d)``
  array (:func:`pair_covariance`);
* the temporal kernel given the true ``Sigma``, by least squares
  ``Gamma_hat_ij = <C_ij, Sigma>_F / ||Sigma||_F^2`` (:func:`temporal_kernel`);
* the whitened temporal kernel ``Gamma_hat_ij = tr(Sigma^{-1} C_ij) / d`` (:func:`temporal_kernel_whitened`);
* the spatial covariance of each frame, ``C_ii`` (:func:`spatial_covariance`).

:class:`CovarianceErrors` is the one record of how far a set of sequences (or one exact covariance) is from the
truth: the whitened and the least-squares temporal-kernel errors, the spatial and full-covariance errors and the
Gaussian ``W2``; every experiment measures its samples with it. :func:`fit_kronecker` is the structured Gaussian
learner (the maximum-likelihood ``Gamma_hat (x) Sigma_hat``) the sample-complexity chapter measures the DiT against.

The paper-style relative error (:func:`paper_relative_error`) divides the error of an estimate
from generated samples by the error of the *same estimator on the same number of true samples*:

    rel = ||E(x_gen) - truth||_F / ||E(x_true) - truth||_F

so that a value near 1 means "as good as real data of the same size" and finite-sample noise cancels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .gp import GaussianProcess, psd_sqrt
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


def temporal_kernel_whitened(C: torch.Tensor, Sigma: torch.Tensor) -> torch.Tensor:
    """Whitened temporal kernel ``Gamma_hat_ij = tr(Sigma^{-1} C_ij) / d``, ``(N, N)``.

    Unbiased like :func:`temporal_kernel`, but every direction of ``Sigma`` counts the same: in the
    least-squares projection a direction of ``Sigma`` with eigenvalue ``m`` weighs ``m^2``, so with
    ``kappa(Sigma)`` in the hundreds it rests on about ``(sum m^2)^2 / sum m^4`` directions instead of ``d``.
    """
    Sigma = Sigma.to(DTYPE)
    return torch.einsum("ijab,ba->ij", C, torch.linalg.inv(Sigma)) / Sigma.shape[0]


def effective_directions(Sigma: torch.Tensor) -> float:
    """``(sum m^2)^2 / sum m^4`` over the eigenvalues ``m`` of ``Sigma``: how many directions the least-squares
    kernel estimate effectively averages (``d`` when ``Sigma`` is isotropic, near 1 when one direction dominates)."""
    m2 = torch.linalg.eigvalsh(Sigma.to(DTYPE)) ** 2
    return float(m2.sum() ** 2 / (m2**2).sum())


def spatial_covariance(C: torch.Tensor) -> torch.Tensor:
    """Per-frame spatial covariance estimates ``C_ii``, shape ``(N, d, d)``."""
    return torch.diagonal(C, dim1=0, dim2=1).permute(2, 0, 1)


def relative_error(estimate: torch.Tensor | np.ndarray, truth: torch.Tensor | np.ndarray) -> float:
    """``||estimate - truth||_F / ||truth||_F`` for two tensors, or two NumPy arrays, of one shape (computed in the
    library of the arguments)."""
    if isinstance(estimate, np.ndarray) and isinstance(truth, np.ndarray):
        return float(np.linalg.norm(estimate - truth) / np.linalg.norm(truth))
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


@dataclass
class CovarianceErrors:
    """How far one set of sequences (or one exact covariance) is from the truth ``Gamma (x) Sigma``; all relative
    Frobenius errors but ``w2``.

    Attributes:
        temporal: of the whitened temporal kernel (:func:`temporal_kernel_whitened`) against ``Gamma``.
        temporal_ls: of the least-squares temporal kernel (:func:`temporal_kernel`) against ``Gamma``.
        spatial: mean over frames of ``||C_ii - Gamma_ii Sigma|| / ||Gamma_ii Sigma||``.
        covariance: ``||C - Gamma (x) Sigma|| / ||Gamma (x) Sigma||`` of the full ``(N d, N d)`` covariance.
        w2: Wasserstein-2 distance between the Gaussian with the estimated mean and covariance and the truth
            (:func:`gaussian_w2`), in the units of the data.
    """

    temporal: float
    temporal_ls: float
    spatial: float
    covariance: float
    w2: float

    @classmethod
    def of_pairs(cls, C: torch.Tensor, mean: torch.Tensor, gp: GaussianProcess) -> CovarianceErrors:
        """The errors of pair covariances ``C: (N, N, d, d)`` (:func:`pair_covariance`) and a mean ``(N, d)``."""
        base = errors_of_covariance(C, gp.Gamma, gp.Sigma)
        w2 = gaussian_w2(mean.flatten(), flat_covariance(C), gp.mu.flatten(), gp.covariance())
        return cls(
            temporal=relative_error(temporal_kernel_whitened(C, gp.Sigma), gp.Gamma),
            temporal_ls=base["temporal"],
            spatial=base["spatial"],
            covariance=base["covariance"],
            w2=w2,
        )

    @classmethod
    def of_samples(cls, x: torch.Tensor, gp: GaussianProcess) -> CovarianceErrors:
        """The errors of sequences ``x: (n, N, d)`` (their pair covariances and mean, in float64)."""
        x = x.to(DTYPE)
        return cls.of_pairs(pair_covariance(x), x.mean(0), gp)


def fit_kronecker(x: torch.Tensor, iters: int = 100, tol: float = 1e-10) -> tuple[torch.Tensor, torch.Tensor]:
    """Maximum-likelihood ``(Gamma_hat: (N, N), Sigma_hat: (d, d))`` of ``x: (n, N, d)`` under ``vec(x - mean) ~
    N(0, Gamma (x) Sigma)`` by the flip-flop iteration (alternating the two closed-form updates):

        Gamma <- sum_k X_k Sigma^{-1} X_k^T / (n d),    Sigma <- sum_k X_k^T Gamma^{-1} X_k / (n N),

    with ``X_k`` the centred sequences. The scale is split so that ``mean(diag Gamma_hat) = 1``. Needs ``n d > N``
    and ``n N > d`` for both estimates to be invertible.
    """
    x = x.to(DTYPE)
    n, N, d = x.shape
    if n * d <= N or n * N <= d:
        raise ValueError(f"fit_kronecker needs n*d > N and n*N > d, got n={n}, N={N}, d={d}")
    xc = x - x.mean(0)
    Sigma = torch.eye(d, dtype=DTYPE)
    Gamma = torch.eye(N, dtype=DTYPE)
    for _ in range(iters):
        Gamma_new = torch.einsum("kia,ab,kjb->ij", xc, torch.linalg.inv(Sigma), xc) / (n * d)
        Sigma = torch.einsum("kia,ij,kjb->ab", xc, torch.linalg.inv(Gamma_new), xc) / (n * N)
        Sigma = 0.5 * (Sigma + Sigma.T)
        change = float((Gamma_new - Gamma).abs().max())
        Gamma = 0.5 * (Gamma_new + Gamma_new.T)
        if change < tol:
            break
    s = Gamma.diagonal().mean()
    return Gamma / s, Sigma * s


# ---------------------------------------------------------------------------------------- errors by gap
def gap_errors(Gamma_hat: torch.Tensor, Gamma: torch.Tensor) -> torch.Tensor:
    """Root-mean-square error of a temporal-kernel estimate along each diagonal: ``(N,)``, entry ``h`` is
    ``sqrt(mean_i (Gamma_hat_{i,i+h} - Gamma_{i,i+h})^2)`` over the ``N - h`` pairs at gap ``h`` (absolute, in the
    units of ``Gamma``, whose diagonal is 1)."""
    diff = (Gamma_hat.to(DTYPE) - Gamma.to(DTYPE)) ** 2
    N = diff.shape[-1]
    return torch.stack([torch.diagonal(diff, offset=h).mean().sqrt() for h in range(N)])


def block_gap_errors(C: torch.Tensor, Gamma: torch.Tensor, Sigma: torch.Tensor) -> torch.Tensor:
    """Error of the cross-frame covariances ``C: (N, N, d, d)`` (:func:`pair_covariance`) against ``Gamma: (N, N)``
    and ``Sigma: (d, d)`` at each gap ``h = |i - j|``: ``(N,)``, entry ``h`` is
    ``sqrt(mean_i ||C_{i,i+h} - Gamma_{i,i+h} Sigma||_F^2) / ||Sigma||_F`` (so ``h = 0`` is the spatial error of
    the frames themselves and a large ``h`` asks whether weak cross-frame correlations are right)."""
    Gamma, Sigma = Gamma.to(DTYPE), Sigma.to(DTYPE)
    diff = ((C - Gamma[:, :, None, None] * Sigma) ** 2).sum((-1, -2))  # (N, N)
    N = diff.shape[-1]
    out = torch.stack([torch.diagonal(diff, offset=h).mean().sqrt() for h in range(N)])
    return out / torch.linalg.norm(Sigma)


def toeplitz_residual(Gamma_hat: torch.Tensor) -> torch.Tensor:
    """What is left of ``Gamma_hat: (N, N)`` after each diagonal is replaced by its mean, ``(N, N)``: the part of the
    estimate that depends on the position ``i`` and not only on the gap (zero for a stationary kernel)."""
    G = Gamma_hat.to(DTYPE)
    N = G.shape[-1]
    out = torch.zeros_like(G)
    for h in range(-(N - 1), N):
        diag = torch.diagonal(G, offset=h)
        torch.diagonal(out, offset=h).copy_(diag - diag.mean())
    return out


def roughness(Gamma_hat: torch.Tensor) -> float:
    """Root-mean-square of :func:`toeplitz_residual` over the ``N^2`` entries: how far an estimate is from being
    constant along its diagonals (for true samples, the estimator's noise alone)."""
    return float(toeplitz_residual(Gamma_hat).pow(2).mean().sqrt())


def phase_share(Gamma_hat: torch.Tensor, period: int) -> float:
    """Share of the squared :func:`toeplitz_residual` that the phase ``i mod period`` of the row explains (pooled
    over the diagonals with at least ``2 period`` entries): 1 for an estimate that repeats with ``period`` along
    every diagonal ("piecewise" with the period of a network's down-sampling), about ``(period - 1) / (len - 1)``
    for noise. ``nan`` when no diagonal is long enough or the estimate is stationary to round-off."""
    R = toeplitz_residual(Gamma_hat)
    N = R.shape[-1]
    floor = 1e-20 * float(Gamma_hat.to(DTYPE).pow(2).sum())  # a stationary estimate: only round-off is left
    explained = total = 0.0
    for h in range(-(N - 1), N):
        r = torch.diagonal(R, offset=h)
        if r.numel() < 2 * period:
            continue
        i0 = max(0, -h)  # the row index of the diagonal's first entry
        phase = (torch.arange(r.numel()) + i0) % period
        means = torch.zeros(period, dtype=r.dtype).index_add_(0, phase, r) / torch.bincount(phase, minlength=period)
        explained += float((means[phase] ** 2).sum())
        total += float((r**2).sum())
    return explained / total if total > floor else math.nan


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


def gaussian_w2(m1: torch.Tensor, S1: torch.Tensor, m0: torch.Tensor, S0: torch.Tensor) -> float:
    """Wasserstein-2 distance between ``N(m1, S1)`` and ``N(m0, S0)`` (Bures formula); singular ``S`` is fine.

    ``W2^2 = ||m1 - m0||^2 + tr(S1) + tr(S0) - 2 tr((S0^{1/2} S1 S0^{1/2})^{1/2})``.
    """
    m1, S1, m0, S0 = (a.to(DTYPE) for a in (m1, S1, m0, S0))
    r0 = psd_sqrt(S0)
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
    from .samplers import sample

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
