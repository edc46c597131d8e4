"""Gaussian-process sequences ``vec(x) ~ N(mu, Gamma (x) Sigma)`` and their exact diffusion score.

A sequence ``x: (N, d)`` has ``N`` frames of dimension ``d``. Frames are correlated in time through
the temporal kernel ``Gamma: (N, N)``, ``Gamma_ij = gamma(|i - j|)`` with
``gamma(h) = exp(-(|h| / ell) ** nu)``, and each frame has spatial covariance ``Sigma: (d, d)``:
``Cov(x_i, x_j) = Gamma_ij Sigma``. Stacked time-major, the covariance is ``kron(Gamma, Sigma)``.

All exact computation runs in the Kronecker eigenbasis. With ``Gamma = U diag(lam) U^T`` and
``Sigma = V diag(m) V^T``, every matrix ``a Gamma (x) Sigma + b I`` is ``(U (x) V) diag(a lam_i m_j + b)
(U (x) V)^T``, so solving against it costs two small matrix products per sequence,
``O(N^2 d + N d^2)``, instead of an ``O((N d)^3)`` factorisation. The two eigendecompositions are
computed once per process and reused for every diffusion time.

Speed: for a batch, each rotation by ``U`` is *one* matrix product over all sequences side by side
(frame-major layout), and ``Gamma``'s Toeplitz symmetry halves it: ``U`` splits into symmetric and
antisymmetric eigenvectors, two ``N/2`` blocks (:func:`fold_eigh`). ``python -m gptheory.bench score``
compares this against dense Cholesky and ``linear_operator``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import torch

from .schedules import Schedule, TimeLike
from .validation import finite_tensor, positive_int, real_in

DTYPE = torch.float64


def kernel(h: torch.Tensor | float, nu: float, ell: float) -> torch.Tensor:
    """The correlation function ``gamma(h) = exp(-(|h| / ell) ** nu)`` of Assumption 1.

    Args:
        h: time gaps (any shape, in frames).
        nu: decay exponent in ``(0, 2]`` (2: squared exponential, 1: Ornstein-Uhlenbeck).
        ell: bandwidth in frames, ``> 0``.
    """
    nu = real_in("nu", nu, 0.0, 2.0, low_open=True)
    ell = real_in("ell", ell, 0.0, math.inf, low_open=True, high_open=True)
    h = torch.as_tensor(h, dtype=DTYPE)
    return torch.exp(-((h.abs() / ell) ** nu))


def kernel_matrix(N: int, nu: float, ell: float) -> torch.Tensor:
    """Symmetric Toeplitz ``Gamma: (N, N)``, ``Gamma_ij = gamma(|i - j|)`` on the integer grid."""
    N = positive_int("N", N)
    idx = torch.arange(N, dtype=DTYPE)
    return kernel(idx[:, None] - idx[None, :], nu, ell)


def random_spatial_covariance(d: int, seed: int = 0) -> torch.Tensor:
    """The experiments' spatial covariance: ``Sigma = A A^T`` with ``A: (d, d)`` standard Gaussian.

    Scaled so that ``trace(Sigma) = d`` (unit average variance per coordinate); this is our
    convention, the paper leaves the scale open.
    """
    d = positive_int("d", d)
    g = torch.Generator().manual_seed(int(seed))
    A = torch.randn(d, d, generator=g, dtype=DTYPE)
    S = A @ A.T
    return S * (d / torch.trace(S))


def psd_sqrt(S: torch.Tensor) -> torch.Tensor:
    """The symmetric square root ``S^{1/2} = Q diag(sqrt(w)) Q^T`` of a symmetric PSD ``S: (k, k)`` (round-off
    negatives clipped to 0). It is unique, so it does not depend on how an eigensolver picks the eigenvectors."""
    w, Q = torch.linalg.eigh(0.5 * (S + S.T))
    return (Q * w.clamp(min=0).sqrt()) @ Q.T


def _left(A: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``A @ x_b`` for every matrix ``x_b: (N, k)`` of ``x: (..., N, k)`` as one GEMM.

    The matrices are laid side by side, ``A @ [x_1 | x_2 | ...]``: one ``(M, N) @ (N, batch k)`` product runs
    near the machine's matrix-product rate, where ``A @ x`` would broadcast ``A`` into a batched product of many
    thin ``(N, k)`` blocks (several times slower for ``k = d`` of a few).
    """
    lead, (N, k) = x.shape[:-2], x.shape[-2:]
    side = x.reshape(-1, N, k).transpose(0, 1).reshape(N, -1)  # (N, batch k)
    return (A @ side).view(A.shape[0], -1, k).transpose(0, 1).reshape(*lead, A.shape[0], k)


@dataclass(frozen=True)
class _Fold:
    """The eigenbasis of a symmetric Toeplitz ``Gamma`` split by symmetry (see :func:`fold_eigh`).

    Rows of the folded layout are the frames in the order ``order`` (``h`` first frames, the middle frame when ``N``
    is odd, then the ``h`` last frames reversed). In it, ``U^T x`` is a butterfly (rows ``k`` and ``N - 1 - k`` of the
    layout replaced by their sum and difference) followed by ``W_s^T`` on the first ``N - h`` rows and ``W_a^T`` on the
    last ``h``: half the multiply-adds of one ``(N, N)`` product. ``lam`` lists the eigenvalues in that order.
    """

    h: int
    order: torch.Tensor  # (N,) frame of each folded row
    inverse: torch.Tensor  # (N,) folded row of each frame
    W_s: torch.Tensor  # (N - h, N - h), symmetric eigenvectors, rows scaled by 1/sqrt 2 (the middle one by 1)
    W_a: torch.Tensor  # (h, h), antisymmetric eigenvectors scaled by 1/sqrt 2
    lam: torch.Tensor  # (N,) eigenvalues: symmetric ones, then antisymmetric ones


def fold_eigh(Gamma: torch.Tensor) -> _Fold:
    """Eigendecomposition of a symmetric Toeplitz ``Gamma: (N, N)`` from two half-size eigenproblems.

    A symmetric Toeplitz matrix is centrosymmetric (``J Gamma J = Gamma``, ``J`` the exchange matrix). With
    ``Gamma = [[A, c, B], [c^T, g, c^T J], [B^T, J c, J A J]]`` (``c, g`` only for odd ``N``), the orthogonal
    ``Q = [[I, 0, I], [0, sqrt 2, 0], [J, 0, -J]] / sqrt 2`` makes ``Q^T Gamma Q`` block diagonal with the blocks
    ``[[A + B J, sqrt 2 c], [sqrt 2 c^T, g]]`` (symmetric eigenvectors) and ``A - B J`` (antisymmetric ones): two
    ``eigh`` of size ``N / 2`` cost a quarter of one of size ``N``, and applying ``U`` costs half. A matrix without
    this symmetry (or ``N < 4``) gets one plain ``eigh`` (``h = 0``: no antisymmetric block).
    """
    N = Gamma.shape[0]
    if N < 4 or not torch.equal(Gamma, Gamma.flip(0, 1)) or not torch.equal(Gamma, Gamma.T):
        lam, U = torch.linalg.eigh(Gamma)
        ident = torch.arange(N)
        return _Fold(0, ident, ident, U, U[:0, :0], lam)
    h, r = N // 2, math.sqrt(0.5)
    A, BJ = Gamma[:h, :h], Gamma[:h, N - h :].flip(1)
    S = torch.empty(N - h, N - h, dtype=Gamma.dtype, device=Gamma.device)
    S[:h, :h] = A + BJ
    if N % 2:
        S[:h, h] = S[h, :h] = math.sqrt(2) * Gamma[:h, h]
        S[h, h] = Gamma[h, h]
    lam_s, W_s = torch.linalg.eigh(S)
    lam_a, W_a = torch.linalg.eigh(A - BJ)
    W_s[:h] *= r
    order = torch.cat([torch.arange(N - h), torch.arange(N - 1, N - h - 1, -1)])
    return _Fold(h, order, torch.argsort(order), W_s, r * W_a, torch.cat([lam_s, lam_a]))


def _unfold(f: _Fold) -> tuple[torch.Tensor, torch.Tensor]:
    """The dense ``(lam, U)`` of a :class:`_Fold`, eigenvalues ascending like ``torch.linalg.eigh``, rows of ``U`` in
    frame order: ``U = Q blockdiag(W_s, W_a)`` (see :func:`fold_eigh`)."""
    N, h = f.order.shape[0], f.h
    U = torch.zeros(N, N, dtype=f.W_s.dtype, device=f.W_s.device)  # Q blockdiag(W_s, W_a), rows folded
    U[: N - h, : N - h], U[N - h :, : N - h] = f.W_s, f.W_s[:h]
    U[:h, N - h :], U[N - h :, N - h :] = f.W_a, -f.W_a
    order = torch.argsort(f.lam)
    return f.lam[order], U[f.inverse][:, order]


def _butterfly(top: torch.Tensor, bottom: torch.Tensor) -> None:
    """In place: ``top, bottom <- top + bottom, top - bottom`` (two passes, no temporary)."""
    top.add_(bottom)
    torch.sub(top, bottom, alpha=2.0, out=bottom)


def _check_spd(name: str, S: torch.Tensor) -> torch.Tensor:
    if not torch.allclose(S, S.T, rtol=1e-10, atol=1e-12 * float(S.abs().max().clamp(min=1.0))):
        raise ValueError(f"{name} must be symmetric; max |{name} - {name}^T| = {(S - S.T).abs().max().item():.3g}")
    ev = torch.linalg.eigvalsh(S)
    if ev.min() <= 1e-12 * ev.max().clamp(min=1e-300):
        raise ValueError(
            f"{name} must be positive definite (all eigenvalues > 0), got smallest eigenvalue {ev.min().item():.3g}"
        )
    return 0.5 * (S + S.T)


class GaussianProcess:
    """A stationary Gaussian process over ``N`` frames of dimension ``d``.

    Args:
        N: number of frames (sequence length), a positive integer.
        d: frame dimension, a positive integer.
        nu: kernel exponent in ``(0, 2]``.
        ell: kernel bandwidth in frames, ``> 0``.
        Sigma: spatial covariance ``(d, d)``, symmetric positive definite. Default: a seeded
            draw ``A A^T`` scaled to trace ``d`` (see :func:`random_spatial_covariance`).
        mu: mean ``(N, d)``. Default: zero.
        seed: seed for the default ``Sigma``.

    Attributes:
        Gamma: ``(N, N)`` temporal correlation, float64.
        Sigma: ``(d, d)`` spatial covariance, float64.
        mu: ``(N, d)`` mean, float64.
    """

    def __init__(
        self,
        N: int,
        d: int,
        nu: float = 2.0,
        ell: float = 4.0,
        Sigma: torch.Tensor | None = None,
        mu: torch.Tensor | None = None,
        seed: int = 0,
    ) -> None:
        self.N = positive_int("N", N)
        self.d = positive_int("d", d)
        self.nu = real_in("nu", nu, 0.0, 2.0, low_open=True)
        self.ell = real_in("ell", ell, 0.0, math.inf, low_open=True, high_open=True)
        self.seed = int(seed)
        self.Gamma = kernel_matrix(self.N, self.nu, self.ell)
        if Sigma is None:
            self.Sigma = random_spatial_covariance(self.d, seed)
        else:
            self.Sigma = _check_spd("Sigma", finite_tensor("Sigma", Sigma, (self.d, self.d)).to(DTYPE))
        if mu is None:
            self.mu = torch.zeros(self.N, self.d, dtype=DTYPE)
        else:
            self.mu = finite_tensor("mu", mu, (self.N, self.d)).to(DTYPE).clone()

    def __repr__(self) -> str:
        return f"GaussianProcess(N={self.N}, d={self.d}, nu={self.nu:g}, ell={self.ell:g}, seed={self.seed})"

    # ------------------------------------------------------------------ eigenbasis
    @cached_property
    def _fold(self) -> _Fold:
        return fold_eigh(self.Gamma)

    @cached_property
    def _eig_Gamma(self) -> tuple[torch.Tensor, torch.Tensor]:
        lam, U = _unfold(self._fold)
        return lam.clamp(min=0.0), U  # round-off can push tiny eigenvalues below zero

    @cached_property
    def _eig_Sigma(self) -> tuple[torch.Tensor, torch.Tensor]:
        m, V = torch.linalg.eigh(self.Sigma)
        return m, V

    @property
    def eig(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(lam, U, m, V)``: eigenpairs of ``Gamma`` (``lam: (N,)``, ``U: (N, N)``) and ``Sigma``."""
        lam, U = self._eig_Gamma
        m, V = self._eig_Sigma
        return lam, U, m, V

    @property
    def spectrum(self) -> torch.Tensor:
        """Eigenvalues of ``Gamma (x) Sigma`` as an ``(N, d)`` grid ``lam_i m_j``."""
        lam, _, m, _ = self.eig
        return lam[:, None] * m[None, :]

    def to_eigenbasis(self, x: torch.Tensor) -> torch.Tensor:
        """Coordinates ``U^T x V`` of ``x: (..., N, d)`` in the Kronecker eigenbasis."""
        _, U, _, V = self.eig
        return _left(U.T.to(x), x @ V.to(x))

    def from_eigenbasis(self, y: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_eigenbasis`: ``U y V^T``."""
        _, U, _, V = self.eig
        return _left(U.to(y), y @ V.T.to(y))

    def solve(self, y: torch.Tensor, a: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
        """Apply ``(a Gamma (x) Sigma + b I)^{-1}`` to ``y: (batch, N, d)``.

        ``a`` and ``b`` are floats or ``(batch,)`` tensors (one pair per sequence). Cost
        ``O(batch (N^2 d + N d^2))``; no ``Nd x Nd`` matrix is formed.
        """
        return self._solve_folded(self._folded(y.to(DTYPE)), a, b)

    def _folded(self, x: torch.Tensor) -> torch.Tensor:
        """A new contiguous ``(N, batch, d)`` copy of ``x: (batch, N, d)``, frames in the order of :class:`_Fold`."""
        return torch.index_select(x.transpose(0, 1), 0, self._fold.order.to(x.device))

    def _solve_folded(
        self, r: torch.Tensor, a: torch.Tensor | float, b: torch.Tensor | float, sign: float = 1.0
    ) -> torch.Tensor:
        """``sign (a Gamma (x) Sigma + b I)^{-1}`` applied to every sequence of ``r: (N, batch, d)`` (folded frame-major
        layout, see :meth:`_folded`; overwritten), returned as a ``(batch, N, d)`` view.

        In this layout every rotation is one plain matrix product over all sequences at once: ``V`` acts on the
        ``(N batch, d)`` rows, ``W_s^T`` and ``W_a^T`` (the two halves of ``U^T``, after a butterfly) on the
        ``(N / 2, batch d)`` column blocks. ``A @ x`` with ``x: (batch, N, d)`` would instead broadcast ``A`` into a
        batched product of ``batch`` thin blocks, several times slower.
        """
        f = self._fold
        m, V = self._eig_Sigma
        N, B, d = r.shape
        n, h = N - f.h, f.h
        a = torch.as_tensor(a, dtype=DTYPE).reshape(-1)[None, :, None]  # (1, batch or 1, 1)
        b = torch.as_tensor(b, dtype=DTYPE).reshape(-1)[None, :, None]
        ev = torch.addcmul(b, a, (f.lam.clamp(min=0.0)[:, None] * m)[:, None, :])  # a lam_i m_j + b, (N, batch, d)
        z = (r.view(N * B, d) @ V).view(N, B, d)
        _butterfly(z[:h], z[n:])
        c = torch.empty_like(z)  # U^T z, in the two blocks
        torch.mm(f.W_s.T, z[:n].view(n, B * d), out=c[:n].view(n, B * d))
        torch.mm(f.W_a.T, z[n:].view(h, B * d), out=c[n:].view(h, B * d))
        c /= ev
        torch.mm(f.W_s, c[:n].view(n, B * d), out=z[:n].view(n, B * d))  # U c, back into z
        torch.mm(f.W_a, c[n:].view(h, B * d), out=z[n:].view(h, B * d))
        _butterfly(z[:h], z[n:])
        out = (z.view(N * B, d) @ (sign * V.T)).view(N, B, d)
        return torch.index_select(out, 0, f.inverse).transpose(0, 1)

    # ------------------------------------------------------------------ distribution
    def covariance(self) -> torch.Tensor:
        """Dense ``kron(Gamma, Sigma): (N d, N d)``, time-major (row ``i*d + j``). For checks only."""
        return torch.kron(self.Gamma, self.Sigma)

    @cached_property
    def roots(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(Gamma^{1/2}: (N, N), Sigma^{1/2}: (d, d))``, the symmetric square roots (:func:`psd_sqrt`)."""
        return psd_sqrt(self.Gamma), psd_sqrt(self.Sigma)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` sequences, ``(n, N, d)`` float64: ``x = mu + Gamma^{1/2} Z Sigma^{1/2}``, ``Z`` standard normal.

        The symmetric square roots are unique, so a seed gives the same sequences however the eigenvectors used
        elsewhere are computed.
        """
        n = positive_int("n", n)
        z = torch.randn(n, self.N, self.d, generator=generator, dtype=DTYPE)
        A, B = self.roots
        return self.mu + A @ z @ B

    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        x = finite_tensor("x", x)
        if x.dim() == 2:
            x = x[None]
        if x.dim() != 3 or tuple(x.shape[1:]) != (self.N, self.d):
            raise ValueError(f"x must have shape (batch, {self.N}, {self.d}), got {tuple(x.shape)}")
        return x.to(DTYPE)

    def _marginal(
        self, t: TimeLike | None, schedule: Schedule | None, batch: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(alpha_t, alpha_t^2, sigma_t^2)`` as ``(batch,)`` tensors; ``t=None`` is the data itself."""
        if t is None:
            one = torch.ones(batch, dtype=DTYPE)
            return one, one, torch.zeros(batch, dtype=DTYPE)
        if schedule is None:
            raise ValueError("schedule must be given together with t (e.g. gptheory.OUSchedule())")
        tt = schedule.check_t(t, include_zero=False, batch=batch).to(DTYPE)
        al = schedule.alpha(tt)
        return al, al**2, schedule.sigma(tt) ** 2

    def log_prob(self, x: torch.Tensor, t: TimeLike | None = None, schedule: Schedule | None = None) -> torch.Tensor:
        """Log-density of ``x: (batch, N, d)``, shape ``(batch,)``.

        Without ``t`` this is the data distribution ``N(mu, Gamma (x) Sigma)``; with ``t`` and a
        schedule it is the diffused marginal ``p_t = N(alpha_t mu, alpha_t^2 Gamma (x) Sigma + sigma_t^2 I)``.
        """
        x = self._check_x(x)
        al, a, b = self._marginal(t, schedule, x.shape[0])
        ev = a[:, None, None] * self.spectrum + b[:, None, None]
        if t is None and ev.min() <= 1e-12 * ev.max():
            raise ValueError(
                "the data covariance Gamma (x) Sigma is singular to working precision "
                f"(smallest eigenvalue {ev.min().item():.3g}); evaluate log_prob at a time t > 0 instead"
            )
        y = self.to_eigenbasis(x - al[:, None, None] * self.mu)
        quad = (y**2 / ev).sum((-2, -1))
        return -0.5 * (quad + torch.log(ev).sum((-2, -1)) + self.N * self.d * math.log(2 * math.pi))

    def score(self, x: torch.Tensor, t: TimeLike, schedule: Schedule) -> torch.Tensor:
        """Exact score ``grad log p_t(x) = -(alpha_t^2 Gamma (x) Sigma + sigma_t^2 I)^{-1} (x - alpha_t mu)``.

        Args:
            x: ``(batch, N, d)``.
            t: a float or a ``(batch,)`` tensor in ``(0, T]``.
            schedule: an :class:`~gptheory.schedules.Schedule`.

        Returns:
            ``(batch, N, d)``, float64.
        """
        x = self._check_x(x)
        al, a, b = self._marginal(t, schedule, x.shape[0])
        r = self._folded(x)
        if self.mu.any():
            r.addcmul_(self.mu[self._fold.order, None, :], al[None, :, None], value=-1.0)  # x - alpha_t mu
        return self._solve_folded(r, a, b, sign=-1.0)

    def marginal_covariance_spectrum(self, t: TimeLike, schedule: Schedule) -> torch.Tensor:
        """Eigenvalues ``alpha_t^2 lam_i m_j + sigma_t^2`` of ``Cov(X_t)``, shape ``(N, d)``."""
        _, a, b = self._marginal(t, schedule, 1)
        return a[0] * self.spectrum + b[0]
