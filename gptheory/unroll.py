"""The score as the last iterate of gradient descent (Section 3 of the paper: Lemma 1, Corollary 1, Remark 1).

At diffusion time ``t`` the exact score of ``p_t = N(alpha_t mu, alpha_t^2 Gamma (x) Sigma + sigma_t^2 I)`` is the
minimiser of the strongly convex quadratic

    f(s) = 1/2 s^T M s + s^T (v - alpha_t mu),        M = alpha_t^2 Gamma (x) Sigma + sigma_t^2 I,

so gradient descent from ``s = 0`` reaches it without ever inverting ``M``. Written per frame, one step is

    s_i <- s_i - eta [ alpha_t^2 sum_j Gamma_ij Sigma s_j + sigma_t^2 s_i + (v_i - alpha_t mu_i) ],

a weighted sum over frames ``j`` with weights ``Gamma_ij`` of the values ``Sigma s_j``: what one attention layer
computes. Replacing ``Gamma`` by its band ``Gamma_bar_ij = Gamma_ij 1{|i - j| < J}`` keeps only ``2J - 1`` gaps,
i.e. a bounded number of attention heads (the paper's ReLU construction spends four heads per gap).

Everything here works on ``(batch, N, d)`` tensors and never forms an ``Nd x Nd`` matrix; the only
eigen-decompositions are of the ``N x N`` band and of ``Sigma`` (``d x d``).

Public API:

* :func:`gd_score` -- ``steps`` iterations of gradient descent from zero (:func:`gd_iterates`: every iterate);
* :func:`truncated_score` -- the exact minimiser of the banded objective (the limit of :func:`gd_score`);
* :func:`condition_number`, :func:`operator_bounds`, :func:`kron_extremes` -- ``kappa`` and the extreme eigenvalues
  of ``M`` and of ``Gamma_bar (x) Sigma``;
* :func:`predicted_steps` -- Lemma 1's step count for a tolerance;

The band itself, its PSD checks and its length (Corollary 1, Remark 1) are :mod:`gptheory.truncation`.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Iterator

import torch

from .gp import DTYPE, GaussianProcess
from .schedules import Schedule, TimeLike
from .truncation import band_matvec, banded, check_J
from .validation import finite_tensor, nonneg_int, positive_int, real_in

# ---------------------------------------------------------------------------------------------- spectra
# Extreme eigenvalues of the band, per process and band width: one N x N eigvalsh, reused for every t.
_BAND_SPECTRUM: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _band_extremes(gp: GaussianProcess, J: int | None) -> tuple[float, float]:
    """``(lambda_min, lambda_max)`` of ``banded(gp.Gamma, J)``."""
    per_gp = _BAND_SPECTRUM.setdefault(gp, {})
    key = None if J is None or J >= gp.N else J
    if key not in per_gp:
        if key is None:
            lam = torch.linalg.eigvalsh(gp.Gamma)  # unclamped: the exact spectrum, round-off included
        else:
            lam = torch.linalg.eigvalsh(banded(gp.Gamma, key))
        per_gp[key] = (float(lam[0]), float(lam[-1]))
    return per_gp[key]


def kron_extremes(gp: GaussianProcess, J: int | None = None) -> tuple[float, float]:
    """Smallest and largest eigenvalue of ``Gamma_bar (x) Sigma``.

    Eigenvalues of a Kronecker product are the products ``lambda_i(Gamma_bar) m_j``; ``Sigma`` is positive definite,
    so the extremes sit at the corners ``{lambda_min, lambda_max} x {m_min, m_max}``. This stays right when the band
    is indefinite (then ``lambda_min m_max`` is the most negative product). One ``N x N`` ``eigvalsh`` per process
    and band, cached.
    """
    lam_min, lam_max = _band_extremes(gp, check_J(J))
    _, _, m, _ = gp.eig
    m_min, m_max = float(m[0]), float(m[-1])
    corners = [lam_min * m_min, lam_min * m_max, lam_max * m_min, lam_max * m_max]
    return min(corners), max(corners)


def operator_bounds(
    gp: GaussianProcess, t: TimeLike, schedule: Schedule, J: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Smallest and largest eigenvalue of ``M = alpha_t^2 Gamma_bar (x) Sigma + sigma_t^2 I``: ``alpha_t^2`` times
    :func:`kron_extremes`, plus ``sigma_t^2``.

    Returns:
        ``(lo, hi)``, each ``(batch,)`` float64 (``batch = 1`` for a float ``t``).
    """
    J = check_J(J)
    t_batch = t.numel() if isinstance(t, torch.Tensor) and t.dim() > 0 else 1
    _, a, b = gp._marginal(t, schedule, t_batch)
    lo, hi = kron_extremes(gp, J)
    return a * lo + b, a * hi + b


def condition_number(
    gp: GaussianProcess, t: TimeLike, schedule: Schedule, J: int | None = None
) -> float | torch.Tensor:
    """``kappa_t`` of ``M = alpha_t^2 Gamma_bar (x) Sigma + sigma_t^2 I`` (``Gamma_bar = Gamma`` when ``J`` is None).

    ``kappa = lambda_max(M) / lambda_min(M)``; ``inf`` when ``M`` is not positive definite (an indefinite band with
    too little noise: then there is no minimiser and no linear rate). A float ``t`` gives a float, a ``(batch,)``
    tensor gives a ``(batch,)`` tensor.
    """
    lo, hi = operator_bounds(gp, t, schedule, J)
    kappa = torch.where(lo > 0, hi / lo.clamp(min=1e-300), torch.full_like(hi, math.inf))
    if isinstance(t, torch.Tensor) and t.dim() > 0:
        return kappa
    return float(kappa[0])


def convex_band(gp: GaussianProcess, t: float, schedule: Schedule, J: int) -> int | None:
    """The smallest band ``J' >= J`` for which the truncated objective is convex at ``t`` (finite
    :func:`condition_number`); ``None`` (no truncation) when no band short of the whole kernel is. A band that meets a
    tail tolerance (:func:`truncation_length`) can still leave ``Gamma_bar`` indefinite enough that
    ``alpha_t^2 Gamma_bar (x) Sigma + sigma_t^2 I`` is not positive definite at small ``t``."""
    J = positive_int("J", J)
    for band in range(J, gp.N):
        if math.isfinite(condition_number(gp, t, schedule, band)):
            return band
    return None


def predicted_steps(kappa: float, tol: float) -> int:
    """Lemma 1's step count: the smallest ``k`` with ``(1 - 1/kappa)^k <= tol`` (about ``kappa log(1/tol)``)."""
    kappa = real_in("kappa", kappa, 1.0, math.inf, high_open=True)
    tol = real_in("tol", tol, 0.0, 1.0, low_open=True, high_open=True)
    if kappa == 1.0:
        return 1
    return max(1, math.ceil(math.log(tol) / math.log1p(-1.0 / kappa)))


# ---------------------------------------------------------------------------------------------- gradient descent
def _check_eta(eta: float | torch.Tensor, batch: int) -> torch.Tensor:
    if isinstance(eta, torch.Tensor) and eta.dim() > 0:
        eta = finite_tensor("eta", eta, (batch,)).to(DTYPE)
        if (eta <= 0).any():
            raise ValueError(f"eta must be > 0 (range (0, inf)), got smallest value {eta.min().item():g}")
        return eta
    if isinstance(eta, torch.Tensor):
        eta = eta.item()
    return torch.full((batch,), real_in("eta", eta, 0.0, math.inf, low_open=True, high_open=True), dtype=DTYPE)


def _convex_setup(
    gp: GaussianProcess, x: torch.Tensor, t: TimeLike, schedule: Schedule, J: int | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Checked ``x`` and the per-sequence ``(alpha_t, alpha_t^2, sigma_t^2, lambda_min(M), lambda_max(M))``."""
    x = gp._check_x(x)
    al, a, b = gp._marginal(t, schedule, x.shape[0])
    lo, hi = (v.expand(x.shape[0]) for v in operator_bounds(gp, t, schedule, J))
    if (lo <= 0).any():
        lam_min = _band_extremes(gp, J)[0]
        k = int(torch.argmin(lo))
        tk = float(t) if not (isinstance(t, torch.Tensor) and t.dim() > 0) else float(t[k])
        raise ValueError(
            f"the objective is not convex: the band of Gamma with J={J} has smallest eigenvalue {lam_min:.3g} < 0, and "
            f"at t={tk:g} the matrix alpha_t^2 Gamma_bar (x) Sigma + sigma_t^2 I has smallest eigenvalue "
            f"{float(lo[k]):.3g} <= 0, so gradient descent has no minimiser to reach. Take a larger J (J >= N is no "
            "truncation), a faster-decaying kernel (diagonally dominant Gamma keeps every band PSD, Remark 1), "
            "or a larger t"
        )
    return x, al, a, b, lo, hi


def gd_iterates(
    gp: GaussianProcess,
    x: torch.Tensor,
    t: TimeLike,
    schedule: Schedule,
    steps: int,
    J: int | None = None,
    eta: float | torch.Tensor | None = None,
) -> Iterator[torch.Tensor]:
    """Yield the iterates ``s^0 = 0, s^1, ..., s^steps`` of :func:`gd_score` (each ``(batch, N, d)``, float64).

    For measuring the error step by step without re-running the descent for every ``k``. Arguments and errors as
    in :func:`gd_score`; the checks run before the first iterate is yielded.
    """
    steps = nonneg_int("steps", steps)
    J = check_J(J)
    x, al, a, b, _, hi = _convex_setup(gp, x, t, schedule, J)
    eta_t = 1.0 / hi if eta is None else _check_eta(eta, x.shape[0])
    return _iterate(gp, x, al, a, b, eta_t, steps, J)


def _iterate(gp, x, al, a, b, eta_t, steps, J) -> Iterator[torch.Tensor]:
    a, b, eta_t = a[:, None, None], b[:, None, None], eta_t[:, None, None]
    offset = x - al[:, None, None] * gp.mu  # v_i - alpha_t mu_i
    Sigma = gp.Sigma
    s = torch.zeros_like(x)
    yield s
    for _ in range(steps):
        values = s @ Sigma  # row j holds (Sigma s_j)^T: Sigma is symmetric, so it is the value map
        mixed = band_matvec(gp.Gamma, values, J)  # frame i: sum_{|i-j|<J} Gamma_ij Sigma s_j
        s = s - eta_t * (a * mixed + b * s + offset)
        yield s


def gd_score(
    gp: GaussianProcess,
    x: torch.Tensor,
    t: TimeLike,
    schedule: Schedule,
    steps: int,
    J: int | None = None,
    eta: float | torch.Tensor | None = None,
) -> torch.Tensor:
    """``steps`` iterations of gradient descent from ``s = 0`` on the (banded) quadratic whose minimiser is the score.

    Each iteration is, per frame ``i`` and per sequence,

        s_i <- s_i - eta [ alpha_t^2 sum_{|i-j|<J} Gamma_ij Sigma s_j + sigma_t^2 s_i + (x_i - alpha_t mu_i) ],

    with the temporal sum done by :func:`band_matvec` (the attention step; ``Sigma`` is the value map).

    Args:
        gp: the process (``Gamma``, ``Sigma``, ``mu``).
        x: ``(batch, N, d)`` noisy sequences (a single ``(N, d)`` sequence is promoted to batch 1).
        t: diffusion time, a float or a ``(batch,)`` tensor in ``(0, T]``.
        schedule: the forward process (``alpha_t``, ``sigma_t``).
        steps: number of iterations, ``>= 0`` (0 returns zeros, the starting point).
        J: band width (``|i - j| < J`` kept), a positive integer; ``None`` keeps the full ``Gamma``.
        eta: step size, a float or ``(batch,)`` tensor ``> 0``. Default ``1 / lambda_max(M)`` per sequence, with
            ``M = alpha_t^2 Gamma_bar (x) Sigma + sigma_t^2 I`` -- the step of Lemma 1, for which the error after ``k``
            steps is at most ``(1 - 1/kappa)^k ||s*||``. Steps above ``2 / lambda_max`` diverge (allowed, not
            checked, so that divergence can be shown).

    Returns:
        ``(batch, N, d)`` float64, the ``steps``-th iterate.

    Raises:
        ValueError: bad ``steps``, ``J``, ``eta``, ``x`` or ``t``; or a band that makes ``M`` indefinite (the
            objective is then not convex and has no minimiser).
    """
    s = None
    for s in gd_iterates(gp, x, t, schedule, steps, J, eta):  # noqa: B007 -- only the last iterate is kept
        pass
    return s


def truncated_score(
    gp: GaussianProcess, x: torch.Tensor, t: TimeLike, schedule: Schedule, J: int | None = None
) -> torch.Tensor:
    """The exact minimiser ``-(alpha_t^2 Gamma_bar (x) Sigma + sigma_t^2 I)^{-1} (x - alpha_t mu)`` of the banded
    objective: where :func:`gd_score` converges. Equal to ``gp.score`` when ``J`` is None or ``J >= N``.

    Solved in the eigenbasis of ``Gamma_bar`` (one ``N x N`` ``eigh``) and of ``Sigma``. Raises like
    :func:`gd_score` when the banded objective is not convex.

    Returns:
        ``(batch, N, d)`` float64.
    """
    J = check_J(J)
    x, al, a, b, _, _ = _convex_setup(gp, x, t, schedule, J)
    lam, U = torch.linalg.eigh(banded(gp.Gamma, J))
    _, _, m, V = gp.eig
    r = U.T @ (x - al[:, None, None] * gp.mu) @ V
    ev = a[:, None, None] * (lam[:, None] * m[None, :]) + b[:, None, None]
    return -(U @ (r / ev) @ V.T)
