"""The Gaussian learners the DiT is measured against: maximum-likelihood fits of ``n`` sequences ``x: (n, N, d)``.

* :func:`fit_kronecker`: ``Gamma_hat (x) Sigma_hat`` with ``Gamma_hat`` any ``N x N`` covariance (a learner told only
  that the covariance is a Kronecker product);
* :func:`fit_parametric`: ``(nu_hat, ell_hat, Sigma_hat)`` of the kernel family ``exp(-(|h| / ell)^nu)`` (a learner
  told the family: the strongest same-data estimator, two numbers and ``Sigma`` to learn).

Both centre the sequences first (the mean is estimated, as a generator has to).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .gp import DTYPE, kernel_matrix


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


@dataclass
class ParametricFit:
    """What :func:`fit_parametric` found: the kernel's ``nu`` and ``ell``, ``Sigma: (d, d)``, the profile
    log-likelihood per sequence at the optimum (nats, up to a constant) and the sequence length ``N``."""

    nu: float
    ell: float
    Sigma: torch.Tensor
    loglik: float
    N: int

    @property
    def Gamma(self) -> torch.Tensor:
        """The fitted temporal kernel ``(N, N)``."""
        return kernel_matrix(self.N, self.nu, self.ell)


def _profile(xc: torch.Tensor, nu: float, ell: float) -> tuple[float, torch.Tensor]:
    """Profile log-likelihood per sequence of centred ``xc: (n, N, d)`` at ``(nu, ell)``, with ``Sigma`` at its
    maximiser ``sum_k X_k^T Gamma^{-1} X_k / (n N)``."""
    n, N, d = xc.shape
    lam, U = torch.linalg.eigh(kernel_matrix(N, nu, ell))
    lam = lam.clamp(min=1e-12 * float(lam.max()))
    y = torch.einsum("ij,kia->kja", U, xc) / lam.sqrt()[None, :, None]  # Gamma^{-1/2} X_k in the eigenbasis
    Sigma = torch.einsum("kja,kjb->ab", y, y) / (n * N)
    Sigma = 0.5 * (Sigma + Sigma.T)
    _, logdet_S = torch.linalg.slogdet(Sigma)
    loglik = -0.5 * (d * float(torch.log(lam).sum()) + N * float(logdet_S) + N * d)
    return loglik, Sigma


def fit_parametric(x: torch.Tensor, starts: tuple[tuple[float, float], ...] = ((1.0, 2.0), (1.9, 4.0), (0.5, 8.0))):
    """Maximum-likelihood ``(nu, ell, Sigma)`` of ``x: (n, N, d)`` under ``vec(x - mean) ~ N(0, Gamma(nu, ell) (x)
    Sigma)``, ``Gamma_ij = exp(-(|i - j| / ell)^nu)``: ``Sigma`` is profiled out in closed form and ``(nu, ell)``
    found by Nelder-Mead on ``(logit(nu / 2), log ell)`` from each of ``starts``, keeping the best. Returns a
    :class:`ParametricFit`."""
    from scipy.optimize import minimize

    x = x.to(DTYPE)
    xc = x - x.mean(0)
    N = x.shape[1]

    def unpack(z):
        return 2.0 / (1.0 + math.exp(-z[0])), math.exp(z[1])

    def loss(z):
        nu, ell = unpack(z)
        return -_profile(xc, nu, ell)[0]

    best = None
    for nu0, ell0 in starts:
        z0 = np.array([math.log(nu0 / (2 - nu0)), math.log(ell0)])
        res = minimize(loss, z0, method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-8, "maxiter": 400})
        if best is None or res.fun < best.fun:
            best = res
    nu, ell = unpack(best.x)
    loglik, Sigma = _profile(xc, nu, ell)
    return ParametricFit(nu=nu, ell=ell, Sigma=Sigma, loglik=loglik, N=N)


__all__ = ["ParametricFit", "fit_kronecker", "fit_parametric"]
