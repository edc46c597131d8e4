"""Lemma 12 of the paper, exactly: how far early stopping at ``t0`` moves Gaussian data.

Sampling stops at a small time ``t0 > 0``, so even a perfect score gives the slightly noised law ``P_t0`` instead
of the data law ``P``. For ``P = N(mu, C)`` and a variance-preserving schedule, ``P_t0 = N(alpha mu, alpha^2 C +
sigma^2 I)`` shares the eigenvectors of ``C``, so the KL divergence and the Wasserstein-2 distance are sums over
the eigenvalues of ``C`` (:func:`early_stopping_gap`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .gp import DTYPE, GaussianProcess
from .schedules import Schedule


@dataclass
class EarlyStopping:
    """The gap between the data law ``P = N(mu, C)`` and its early-stopped law ``P_t0 = N(alpha mu, alpha^2 C +
    sigma^2 I)``, for each ``t0`` (arrays of the length of ``t0``).

    Attributes:
        t0: early-stopping times; kl: ``KL(P || P_t0)`` (nats, exact); kl_bound_sum: the per-eigenvalue bound;
        kl_bound: its worst-eigenvalue form, the lemma's shape (:func:`early_stopping_gap`); tv_bound:
        ``sqrt(kl_bound / 2)`` (Pinsker) on the total variation; w2: exact ``W2(P, P_t0)`` for zero mean.
    """

    t0: np.ndarray
    kl: np.ndarray
    kl_bound_sum: np.ndarray
    kl_bound: np.ndarray
    tv_bound: np.ndarray
    w2: np.ndarray


def early_stopping_gap(gp: GaussianProcess, t0: torch.Tensor, schedule: Schedule) -> EarlyStopping:
    """Lemma 12, exactly, in the Kronecker eigenbasis (eigenvalues ``c = lam_i m_j`` of ``C = Gamma (x) Sigma``).

    With ``b = alpha^2 c + sigma^2`` the eigenvalues of ``Cov(P_t0)`` (zero mean),

        KL(P || P_t0) = 1/2 sum_c (c/b - 1 - log(c/b)),    W2(P, P_t0)^2 = sum_c (sqrt(b) - sqrt(c))^2.

    For a variance-preserving schedule ``b / c = 1 + u_c`` with ``u_c = sigma^2 (1/c - 1)``, and
    ``log(1+u) - u/(1+u) <= u^2 / (2 min(1, 1+u)^2)`` gives the bound

        KL <= 1/4 sum_c u_c^2 / min(1, 1 + u_c)^2 <= (N d / 4) (sigma^2 / alpha^2)^2 max(1/c_min - 1, 1)^2,

    returned as ``kl_bound_sum`` and ``kl_bound`` (the lemma's form: it grows like ``t0^2 N d / c_min^2`` for small
    ``t0``, and is loose when only a few eigenvalues are small).
    """
    c = gp.spectrum.flatten().clamp(min=1e-300)
    t0 = torch.as_tensor(t0, dtype=DTYPE).reshape(-1)
    a2 = schedule.alpha(t0)[:, None] ** 2
    s2 = schedule.sigma(t0)[:, None] ** 2
    b = a2 * c + s2
    r = c / b
    kl = 0.5 * (r - 1 - torch.log(r)).sum(-1)
    w2 = ((b.sqrt() - c.sqrt()) ** 2).sum(-1).sqrt()
    u = s2 * (1 / c - 1)
    per_eigenvalue = 0.25 * (u**2 / torch.clamp(1 + u, max=1.0) ** 2).sum(-1)
    worst = max(1.0 / float(c.min()) - 1.0, 1.0)
    bound = 0.25 * c.numel() * (s2[:, 0] / a2[:, 0]) ** 2 * worst**2
    return EarlyStopping(
        t0.numpy(), kl.numpy(), per_eigenvalue.numpy(), bound.numpy(), np.sqrt(bound.numpy() / 2), w2.numpy()
    )


__all__ = ["EarlyStopping", "early_stopping_gap"]
