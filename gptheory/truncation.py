"""The band ``Gamma_bar`` of the temporal kernel and how long it must be (Corollary 1 and Remark 1 of the paper).

Gradient descent towards the score (:mod:`gptheory.unroll`) mixes frames with ``Gamma``; replacing it by its band
``Gamma_bar_ij = Gamma_ij 1{|i - j| < J}`` keeps only ``2J - 1`` gaps, i.e. a bounded number of attention heads.

* :func:`banded` -- ``Gamma_bar`` for a band ``J``;
* :func:`band_matvec` -- the attention-like temporal mixing ``sum_{|i-j|<J} Gamma_ij y_j`` of ``y: (batch, N, d)``;
* :func:`truncation_length` -- the band Corollary 1 prescribes (constant stated there); :func:`smallest_band` --
  the smallest band that actually meets a tolerance;
* :func:`min_eigenvalue`, :func:`is_psd`, :func:`is_diagonally_dominant` -- Remark 1's checks.
"""

from __future__ import annotations

import math

import torch

from .gp import DTYPE
from .validation import finite_tensor, positive_int, real_in

# Below this fraction of N the band is applied diagonal by diagonal (O(J N d)); above it a dense N x N matmul
# (O(N^2 d)) is faster in practice. Both give the same numbers (tests check both paths).
_GATHER_FRACTION = 0.25


# ---------------------------------------------------------------------------------------------- the band
def _check_square(name: str, A: object) -> torch.Tensor:
    A = finite_tensor(name, A, (None, None))
    if A.shape[0] != A.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {tuple(A.shape)}")
    return A


def check_J(J: int | None) -> int | None:
    return None if J is None else positive_int("J", J)


def banded(Gamma: torch.Tensor, J: int | None) -> torch.Tensor:
    """The band ``Gamma_bar_ij = Gamma_ij 1{|i - j| < J}`` of a square matrix.

    Args:
        Gamma: ``(N, N)``.
        J: band width, a positive integer (``J = 1`` keeps the diagonal only, ``J >= N`` keeps everything);
            ``None`` means no truncation.

    Returns:
        ``(N, N)``, a new tensor of the same dtype.
    """
    Gamma = _check_square("Gamma", Gamma)
    J = check_J(J)
    if J is None or J >= Gamma.shape[0]:
        return Gamma.clone()
    idx = torch.arange(Gamma.shape[0], device=Gamma.device)
    return Gamma * ((idx[:, None] - idx[None, :]).abs() < J)


def band_matvec(Gamma: torch.Tensor, y: torch.Tensor, J: int | None = None) -> torch.Tensor:
    """Temporal mixing ``out_i = sum_{j : |i - j| < J} Gamma_ij y_j`` for ``y: (batch, N, d)``.

    This is the attention step of one gradient-descent iteration: frame ``i`` gathers the values ``y_j`` of its
    neighbours with weights ``Gamma_ij``. For a narrow band it runs gap by gap (one shifted, weighted copy of
    ``y`` per diagonal ``h = -(J-1) .. J-1``, the way one attention head per gap would), costing ``O(J N d)``;
    otherwise it is one ``(N, N) @ (N, d)`` product per sequence. No ``Nd x Nd`` matrix is formed.

    Args:
        Gamma: ``(N, N)`` temporal weights (entries outside the band are ignored).
        y: ``(batch, N, d)`` values.
        J: band width (``None``: the full matrix).

    Returns:
        ``(batch, N, d)``.
    """
    Gamma = _check_square("Gamma", Gamma)
    J = check_J(J)
    N = Gamma.shape[0]
    if y.dim() != 3 or y.shape[1] != N:
        raise ValueError(f"y must have shape (batch, {N}, d), got {tuple(y.shape)}")
    G = Gamma.to(y)
    if J is None or J >= N:
        return G @ y
    if 2 * J - 1 > _GATHER_FRACTION * N:
        return banded(G, J) @ y
    out = torch.diagonal(G)[:, None] * y
    for h in range(1, J):
        # frame i gathers frame i - h (sub-diagonal) and frame i + h (super-diagonal)
        out[:, h:] += torch.diagonal(G, -h)[:, None] * y[:, :-h]
        out[:, :-h] += torch.diagonal(G, h)[:, None] * y[:, h:]
    return out


# ---------------------------------------------------------------------------------------------- PSD checks
def min_eigenvalue(A: torch.Tensor) -> float:
    """Smallest eigenvalue of the symmetric matrix ``A: (N, N)`` (``eigvalsh``)."""
    A = _check_square("A", A)
    return float(torch.linalg.eigvalsh(0.5 * (A + A.T).to(DTYPE))[0])


def _psd_tol(A: torch.Tensor) -> float:
    # round-off of eigvalsh on a matrix with entries of size ||A||: a few ulps times N times the scale
    return 64 * A.shape[0] * torch.finfo(DTYPE).eps * max(float(A.abs().max()), 1e-300)


def is_psd(A: torch.Tensor, tol: float | None = None) -> bool:
    """True when the symmetric ``A: (N, N)`` has no eigenvalue below ``-tol``.

    The default ``tol`` is ``64 N eps_64 max|A_ij|``, the size of eigenvalue round-off, so that a singular PSD matrix
    (e.g. a squared-exponential ``Gamma`` with large ``ell``) is not declared indefinite by rounding.
    """
    A = _check_square("A", A)
    tol = _psd_tol(A) if tol is None else real_in("tol", tol, 0.0, math.inf, high_open=True)
    return min_eigenvalue(A) >= -tol


def is_diagonally_dominant(A: torch.Tensor) -> bool:
    """Remark 1's sufficient condition: ``|A_ii| >= sum_{j != i} |A_ij|`` in every row.

    A symmetric diagonally dominant matrix with a non-negative diagonal is PSD (Gershgorin), and banding only removes
    off-diagonal mass, so every band of such a matrix is PSD too.
    """
    A = _check_square("A", A)
    diag = A.diagonal().abs()
    off = A.abs().sum(1) - diag
    return bool((diag >= off).all())


# ---------------------------------------------------------------------------------------------- Corollary 1
def truncation_length(nu: float, ell: float, N: int, eps: float) -> int:
    """The band Corollary 1 prescribes: ``J = ceil(ell * log(N / eps) ** (1 / nu))``, clipped to ``[1, N]``.

    Guarantee (the constant is 1, derived here): ``gamma(h) = exp(-(h/ell)^nu)`` decreases in ``h`` and a row of
    ``Gamma - Gamma_bar`` holds fewer than ``N`` entries, all at gaps ``h >= J``, so

        ||Gamma - Gamma_bar||_2 <= ||Gamma - Gamma_bar||_inf = max_i sum_{|i-j| >= J} gamma(|i-j|) < N gamma(J),

    and ``N exp(-(J/ell)^nu) <= eps`` exactly when ``J >= ell (log(N/eps))^{1/nu}``. For ``eps >= N`` any band works
    and ``J = 1``. ``J = N`` means no truncation at all (zero error). The bound is worst-case: the ``N`` in the log
    comes from counting the row's entries; the actual spectral error saturates in ``N``.

    Args:
        nu: kernel exponent in ``(0, 2]``.
        ell: bandwidth in frames, ``> 0``.
        N: sequence length, a positive integer.
        eps: tolerance on ``||Gamma - Gamma_bar||_inf`` (hence on the spectral norm), ``> 0``.
    """
    nu = real_in("nu", nu, 0.0, 2.0, low_open=True)
    ell = real_in("ell", ell, 0.0, math.inf, low_open=True, high_open=True)
    N = positive_int("N", N)
    eps = real_in("eps", eps, 0.0, math.inf, low_open=True, high_open=True)
    if eps >= N:
        return 1
    J = math.ceil(ell * math.log(N / eps) ** (1.0 / nu))
    return int(min(max(J, 1), N))


def _perron_root(A: torch.Tensor) -> float:
    """Largest eigenvalue of a symmetric non-negative ``A`` (its spectral norm, by Perron-Frobenius).

    Dense ``eigvalsh`` for small ``N``; above 256 rows, Lanczos (ARPACK) for the top eigenvalue only, which needs a
    few dozen ``O(N^2)`` products instead of an ``O(N^3)`` factorisation.
    """
    if A.shape[0] <= 256:
        return float(torch.linalg.eigvalsh(A)[-1])
    from scipy.sparse.linalg import eigsh

    if not A.any():
        return 0.0
    return float(eigsh(A.cpu().numpy(), k=1, which="LA", tol=1e-12, return_eigenvectors=False)[0])


def smallest_band(Gamma: torch.Tensor, eps: float) -> int:
    """Measured counterpart of :func:`truncation_length`: the smallest ``J`` with ``||Gamma - Gamma_bar||_2 <= eps``.

    For an entrywise non-negative symmetric ``Gamma`` (every kernel of Assumption 1) the tail ``Gamma - Gamma_bar``
    is non-negative and shrinks entrywise as ``J`` grows, so its spectral norm (its Perron root) is non-increasing in
    ``J`` and a bisection over ``J in [1, N]`` finds the smallest admissible band with ``O(log N)`` norms.

    Args:
        Gamma: ``(N, N)`` symmetric with non-negative entries.
        eps: tolerance on the spectral norm, ``> 0``.

    Returns:
        ``J`` in ``[1, N]`` (``N`` means no truncation is small enough short of keeping everything).
    """
    Gamma = _check_square("Gamma", Gamma)
    eps = real_in("eps", eps, 0.0, math.inf, low_open=True, high_open=True)
    if (Gamma < 0).any():
        raise ValueError("Gamma must have non-negative entries (the bisection relies on it), got a negative entry")

    def ok(J: int) -> bool:
        return _perron_root(Gamma - banded(Gamma, J)) <= eps

    lo, hi = 1, Gamma.shape[0]  # ok(N) holds: the tail is zero
    while lo < hi:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo
