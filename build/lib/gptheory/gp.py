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
"""

from __future__ import annotations

import math
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
    def _eig_Gamma(self) -> tuple[torch.Tensor, torch.Tensor]:
        lam, U = torch.linalg.eigh(self.Gamma)
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
        return U.T.to(x) @ x @ V.to(x)

    def from_eigenbasis(self, y: torch.Tensor) -> torch.Tensor:
        """Inverse of :meth:`to_eigenbasis`: ``U y V^T``."""
        _, U, _, V = self.eig
        return U.to(y) @ y @ V.T.to(y)

    def solve(self, y: torch.Tensor, a: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
        """Apply ``(a Gamma (x) Sigma + b I)^{-1}`` to ``y: (batch, N, d)``.

        ``a`` and ``b`` are floats or ``(batch,)`` tensors (one pair per sequence). Cost
        ``O(batch (N^2 d + N d^2))``; no ``Nd x Nd`` matrix is formed.
        """
        a = torch.as_tensor(a, dtype=DTYPE).reshape(-1, 1, 1)
        b = torch.as_tensor(b, dtype=DTYPE).reshape(-1, 1, 1)
        ev = a * self.spectrum + b
        return self.from_eigenbasis(self.to_eigenbasis(y) / ev)

    # ------------------------------------------------------------------ distribution
    def covariance(self) -> torch.Tensor:
        """Dense ``kron(Gamma, Sigma): (N d, N d)``, time-major (row ``i*d + j``). For checks only."""
        return torch.kron(self.Gamma, self.Sigma)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw ``n`` sequences, ``(n, N, d)`` float64: ``x = mu + U (sqrt(lam) Z sqrt(m)) V^T``."""
        n = positive_int("n", n)
        z = torch.randn(n, self.N, self.d, generator=generator, dtype=DTYPE)
        return self.mu + self.from_eigenbasis(self.spectrum.sqrt() * z)

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
        tt = schedule.check_t(t, include_zero=False).to(DTYPE)
        if tt.dim() == 0:
            tt = tt.expand(batch)
        elif tt.shape != (batch,):
            raise ValueError(f"t must be a float or a tensor of shape ({batch},), got shape {tuple(tt.shape)}")
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
        return -self.solve(x - al[:, None, None] * self.mu, a, b)

    def marginal_covariance_spectrum(self, t: TimeLike, schedule: Schedule) -> torch.Tensor:
        """Eigenvalues ``alpha_t^2 lam_i m_j + sigma_t^2`` of ``Cov(X_t)``, shape ``(N, d)``."""
        _, a, b = self._marginal(t, schedule, 1)
        return a[0] * self.spectrum + b[0]
