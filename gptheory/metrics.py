"""What a generator learned: covariance estimates, the paper's relative error, Gaussian distances.

Estimators (Appendix D.1 of the paper), for samples ``x: (n, N, d)``:

* per-pair covariance ``C_ij = 1/(n-1) sum_k (x_i^k - xbar_i)(x_j^k - xbar_j)^T``, an ``(N, N, d, d)``
  array (:func:`pair_covariance`);
* the temporal kernel given the true ``Sigma``, by least squares
  ``Gamma_hat_ij = <C_ij, Sigma>_F / ||Sigma||_F^2`` (:func:`temporal_kernel`);
* the whitened temporal kernel ``Gamma_hat_ij = tr(Sigma^{-1} C_ij) / d`` (:func:`temporal_kernel_whitened`);
* the spatial covariance of each frame, ``C_ii`` (:func:`spatial_covariance`).

:class:`Law` is what a set of sequences is measured against: the data law ``N(mu, Gamma (x) Sigma)``, or the law at
the early-stopping time ``t0``, ``N(alpha mu, alpha^2 Gamma (x) Sigma + sigma^2 I)``, which is what a sampler
stopped at ``t0`` draws even with the exact score (Theorem 2 bounds the distance to it; Lemma 12,
:mod:`gptheory.early_stopping`, the rest). :class:`CovarianceErrors` is the one record of how far a set of sequences
(or one exact covariance) is from a law: the whitened and the least-squares temporal-kernel errors, the spatial and
full-covariance errors and the Gaussian ``W2``, each estimator compared with the same estimator applied to the law;
every experiment measures its samples with it, and :mod:`gptheory.floors` gives each its sampling floor.
The learners measured beside the DiT (a Kronecker and a parametric maximum-likelihood fit) are in
:mod:`gptheory.fitting`.

:func:`paper_relative_error` is the paper's relative error (Appendix D.1), defined once: the full-covariance error
of ``m`` sequences against their law divided by that of ``m`` training sequences against the data law (equal
counts), so that a perfect generator scores about 1 at every ``m``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .gp import GaussianProcess, psd_sqrt
from .schedules import Schedule
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


@dataclass(frozen=True)
class Law:
    """A zero- or nonzero-mean Gaussian law of sequences that samples are measured against.

    Attributes:
        pairs: its pair covariances ``(N, N, d, d)`` (block ``(i, j)`` is ``Cov(x_i, x_j)``), float64.
        mean: its mean ``(N, d)``.
        Sigma: the process's spatial covariance ``(d, d)``, the one the temporal-kernel estimators use.
    """

    pairs: torch.Tensor
    mean: torch.Tensor
    Sigma: torch.Tensor

    @classmethod
    def data(cls, gp: GaussianProcess) -> Law:
        """The data law ``N(mu, Gamma (x) Sigma)`` of ``gp``."""
        Sigma = gp.Sigma.to(DTYPE)
        return cls(gp.Gamma.to(DTYPE)[:, :, None, None] * Sigma, gp.mu.to(DTYPE), Sigma)

    @classmethod
    def at(cls, gp: GaussianProcess, t0: float, schedule: Schedule) -> Law:
        """The law at time ``t0`` of ``schedule``: ``N(alpha mu, alpha^2 Gamma (x) Sigma + sigma^2 I)``, what a
        sampler stopped at ``t0`` draws with the exact score."""
        return cls.data(gp).noised(t0, schedule)

    def covariance(self) -> torch.Tensor:
        """The dense ``(N d, N d)`` covariance, time-major."""
        return flat_covariance(self.pairs)

    def sample(self, n: int, generator: torch.Generator) -> torch.Tensor:
        """``n`` draws ``(n, N, d)`` (float64), through the symmetric square root of the dense covariance."""
        N, _, d, _ = self.pairs.shape
        z = torch.randn(n, N * d, generator=generator, dtype=DTYPE)
        return (z @ psd_sqrt(self.covariance())).reshape(n, N, d) + self.mean

    @classmethod
    def kronecker(cls, Gamma: torch.Tensor, Sigma: torch.Tensor, Sigma_true: torch.Tensor) -> Law:
        """The zero-mean law ``N(0, Gamma (x) Sigma)`` (a fitted one, say), measured with the estimators of a process
        whose spatial covariance is ``Sigma_true``."""
        Gamma, Sigma = Gamma.to(DTYPE), Sigma.to(DTYPE)
        pairs = Gamma[:, :, None, None] * Sigma
        return cls(pairs, torch.zeros(Gamma.shape[0], Sigma.shape[0], dtype=DTYPE), Sigma_true.to(DTYPE))

    def noised(self, t0: float, schedule: Schedule) -> Law:
        """This law pushed to time ``t0`` of ``schedule``: ``N(alpha m, alpha^2 S + sigma^2 I)``."""
        a, s = float(schedule.alpha(t0)), float(schedule.sigma(t0))
        N, _, d, _ = self.pairs.shape
        eye = torch.eye(N, dtype=DTYPE)[:, :, None, None] * torch.eye(d, dtype=DTYPE)
        return type(self)(a**2 * self.pairs + s**2 * eye, a * self.mean, self.Sigma)


@dataclass
class CovarianceErrors:
    """How far one set of sequences (or one exact covariance) is from a :class:`Law`; all relative Frobenius errors
    but ``w2``. Each estimate is compared with the same estimator applied to the law, so sequences drawn from the law
    score the estimator's sampling noise only (:func:`gptheory.floors.sampling_floor`).

    Attributes:
        temporal: of the whitened temporal kernel (:func:`temporal_kernel_whitened`).
        temporal_ls: of the least-squares temporal kernel (:func:`temporal_kernel`).
        spatial: mean over frames ``i`` of ``||C_ii - S_ii|| / ||S_ii||`` (``S`` the law's pair covariances).
        covariance: ``||C - S|| / ||S||`` of the full ``(N d, N d)`` covariance.
        w2: Wasserstein-2 distance between the Gaussian with the estimated mean and covariance and the law
            (:func:`gaussian_w2`), in the units of the data.
    """

    temporal: float
    temporal_ls: float
    spatial: float
    covariance: float
    w2: float

    @classmethod
    def of_pairs(cls, C: torch.Tensor, mean: torch.Tensor, law: Law | GaussianProcess) -> CovarianceErrors:
        """The errors of pair covariances ``C: (N, N, d, d)`` (:func:`pair_covariance`) and a mean ``(N, d)``
        against ``law`` (a process stands for its data law, :meth:`Law.data`)."""
        law = Law.data(law) if isinstance(law, GaussianProcess) else law
        S, Sigma = law.pairs, law.Sigma
        spatial_true = spatial_covariance(S)
        spatial = torch.linalg.norm((spatial_covariance(C) - spatial_true).flatten(1), dim=1)
        w2 = gaussian_w2(mean.flatten(), flat_covariance(C), law.mean.flatten(), law.covariance())
        return cls(
            temporal=relative_error(temporal_kernel_whitened(C, Sigma), temporal_kernel_whitened(S, Sigma)),
            temporal_ls=relative_error(temporal_kernel(C, Sigma), temporal_kernel(S, Sigma)),
            spatial=float((spatial / torch.linalg.norm(spatial_true.flatten(1), dim=1)).mean()),
            covariance=relative_error(flat_covariance(C), flat_covariance(S)),
            w2=w2,
        )

    @classmethod
    def of_samples(cls, x: torch.Tensor, law: Law | GaussianProcess) -> CovarianceErrors:
        """The errors of sequences ``x: (n, N, d)`` (their pair covariances and mean, in float64) against ``law``."""
        x = x.to(DTYPE)
        return cls.of_pairs(pair_covariance(x), x.mean(0), law)


# ---------------------------------------------------------------------------------------- errors by gap
def gap_errors(Gamma_hat: torch.Tensor, Gamma: torch.Tensor) -> torch.Tensor:
    """Root-mean-square error of a temporal-kernel estimate along each diagonal: ``(N,)``, entry ``h`` is
    ``sqrt(mean_i (Gamma_hat_{i,i+h} - Gamma_{i,i+h})^2)`` over the ``N - h`` pairs at gap ``h`` (absolute, in the
    units of ``Gamma``, whose diagonal is 1)."""
    diff = (Gamma_hat.to(DTYPE) - Gamma.to(DTYPE)) ** 2
    N = diff.shape[-1]
    return torch.stack([torch.diagonal(diff, offset=h).mean().sqrt() for h in range(N)])


def block_gap_errors(C: torch.Tensor, law: Law) -> torch.Tensor:
    """Error of the cross-frame covariances ``C: (N, N, d, d)`` (:func:`pair_covariance`) against the pair
    covariances ``S`` of ``law`` at each gap ``h = |i - j|``: ``(N,)``, entry ``h`` is
    ``sqrt(mean_i ||C_{i,i+h} - S_{i,i+h}||_F^2) / ||Sigma||_F`` (for the data law ``S_ij = Gamma_ij Sigma``; ``h = 0``
    is the spatial error of the frames themselves and a large ``h`` asks whether weak cross-frame correlations are
    right)."""
    diff = ((C.to(DTYPE) - law.pairs) ** 2).sum((-1, -2))  # (N, N)
    N = diff.shape[-1]
    out = torch.stack([torch.diagonal(diff, offset=h).mean().sqrt() for h in range(N)])
    return out / torch.linalg.norm(law.Sigma)


def correlation(M: torch.Tensor) -> torch.Tensor:
    """The correlation matrices of covariance matrices ``M: (..., n, n)``: ``M_ij / sqrt(M_ii M_jj)``, free of scale
    (a generator whose samples are too wide or too narrow by one factor has the right correlations)."""
    M = M.to(DTYPE)
    s = torch.diagonal(M, dim1=-2, dim2=-1).clamp(min=1e-300).sqrt()
    return M / (s[..., :, None] * s[..., None, :])


def correlation_errors(C: torch.Tensor, law: Law) -> tuple[torch.Tensor, float]:
    """Scale-free errors of pair covariances ``C: (N, N, d, d)`` against ``law``: the RMS error at each gap ``h`` of
    the temporal correlation, :func:`correlation` of the whitened kernel (:func:`temporal_kernel_whitened`), ``(N,)``
    (by :func:`gap_errors`); and the spatial one, the mean over frames of ``||corr(C_ii) - corr(S_ii)||_F`` divided by
    ``||corr(S_ii)||_F``."""
    G, K = temporal_kernel_whitened(C, law.Sigma), temporal_kernel_whitened(law.pairs, law.Sigma)
    R, R_law = correlation(spatial_covariance(C)), correlation(spatial_covariance(law.pairs))
    spatial = torch.linalg.norm((R - R_law).flatten(1), dim=1) / torch.linalg.norm(R_law.flatten(1), dim=1)
    return gap_errors(correlation(G), correlation(K)), float(spatial.mean())


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


def paper_relative_error(x: torch.Tensor, law: Law, x_ref: torch.Tensor, law_ref: Law) -> float:
    """The paper's relative error (Appendix D.1), the one definition every chapter uses:

        ||C(x) - S|| / ||C(x_ref) - S_ref||    (full (N d, N d) covariances, Frobenius)

    with ``x: (m, N, d)`` measured against its law ``S`` (for a sampler stopped at ``t0``, :meth:`Law.at`) and as
    many reference sequences ``x_ref: (m, N, d)`` (the training data: "an equal amount of training data") against
    theirs (:meth:`Law.data`). Both errors are then the estimator's sampling noise at the same count, so a perfect
    generator scores about 1 at every ``m``; larger is worse.
    """
    if x.shape != x_ref.shape:
        raise ValueError(
            f"x and x_ref must have the same shape (equal counts), got {tuple(x.shape)} and {tuple(x_ref.shape)}"
        )
    err = torch.linalg.norm(flat_covariance(pair_covariance(x) - law.pairs))
    err_ref = torch.linalg.norm(flat_covariance(pair_covariance(x_ref) - law_ref.pairs))
    return float(err / err_ref)


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


def bures_w2(
    m1: torch.Tensor, S1: torch.Tensor, m0: torch.Tensor, S0: torch.Tensor, root0: torch.Tensor | None = None
) -> torch.Tensor:
    """Wasserstein-2 distances between ``N(m1, S1)`` and ``N(m0, S0)`` (Bures formula), batched over the leading
    dimensions of ``m1: (..., p)`` and ``S1: (..., p, p)`` (``m0`` broadcasts); singular covariances are fine.

    ``W2^2 = ||m1 - m0||^2 + tr(S1) + tr(S0) - 2 tr((S0^{1/2} S1 S0^{1/2})^{1/2})``. ``root0 = S0^{1/2}`` may be
    passed when it is already factorised (one target, many fits). Returns ``(...)`` in float64.
    """
    m1, S1, m0, S0 = (a.to(DTYPE) for a in (m1, S1, m0, S0))
    r0 = psd_sqrt(S0) if root0 is None else root0.to(DTYPE)
    M = r0 @ S1 @ r0
    cross = torch.linalg.eigvalsh(0.5 * (M + M.mT)).clamp(min=0).sqrt().sum(-1)
    trace = torch.diagonal(S1, dim1=-2, dim2=-1).sum(-1) + torch.trace(S0)
    return (((m1 - m0) ** 2).sum(-1) + trace - 2 * cross).clamp(min=0).sqrt()


def gaussian_w2(m1: torch.Tensor, S1: torch.Tensor, m0: torch.Tensor, S0: torch.Tensor) -> float:
    """Wasserstein-2 distance between ``N(m1, S1)`` and ``N(m0, S0)`` (one pair, :func:`bures_w2`), data units."""
    return float(bures_w2(m1, S1, m0, S0))


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
