"""The exact conditional law of a Gaussian-process sequence given some of its entries: imputation and forecasting.

Split the entries of ``x: (N, d)`` into observed ``o`` and missing ``m``. With ``vec(x) ~ N(mu, C)``,
``C = Gamma (x) Sigma``, the missing entries given the observed ones are Gaussian (the conditioning formula):

    x_m | x_o ~ N(m_c, C_c),   m_c = mu_m + C_mo C_oo^{-1} (x_o - mu_o),   C_c = C_mm - C_mo C_oo^{-1} C_om.

*Frame-wise* masks observe whole frames (:mod:`gptheory.masks`: forecasting, the first ``k`` frames; interpolation,
frames scattered through the sequence; a missing block). Then every block stays Kronecker,
``C_mo = Gamma_mo (x) Sigma``, and ``Sigma`` cancels from the weights:

    m_c = mu_m + (Gamma_mo Gamma_oo^{-1} (x) I)(x_o - mu_o),   C_c = Gamma_c (x) Sigma,
    Gamma_c = Gamma_mm - Gamma_mo Gamma_oo^{-1} Gamma_om,

so only ``N x N`` matrices are factorised and no ``(N d, N d)`` one is ever formed. *Entry-wise* masks (some
coordinates of a frame observed) break the Kronecker structure; they get dense Gaussian conditioning on the
``(N d, N d)`` covariance, allowed up to ``N d = MAX_DENSE`` (the gpu profile's ``N d = 1024`` fits).

Diffusing the missing entries, ``x_{m,t} = alpha_t x_m + sigma_t eps ~ N(alpha_t m_c, alpha_t^2 C_c + sigma_t^2 I)``,
so the exact conditional score at time ``t`` is ``-(alpha_t^2 C_c + sigma_t^2 I)^{-1} (x_{m,t} - alpha_t m_c)``: what a
conditional DiT must learn. It is computed in the eigenbasis of ``C_c`` (for frame-wise masks, of ``Gamma_c`` and
``Sigma``: the Kronecker solve of :mod:`gptheory.gp`), once factorised for every ``t``.

Conventions: every method takes and returns whole sequences ``(batch, N, d)``, float64. An argument ``x_obs`` is read
at its observed entries only; results keep those entries and fill the missing ones. The missing entries listed as a
vector (:meth:`Conditional.covariance`) are in time-major order, the order of ``x[:, missing_entries]``.

Numerics: ``C_oo^{-1}`` is the pseudo-inverse from the eigendecomposition of ``C_oo``, eigenvalues below
``rtol`` times the largest treated as zero (``rank`` counts the ones kept). A smooth kernel (``nu = 2``, large ``ell``)
makes ``Gamma_oo`` singular to working precision; the cut keeps the result finite and its covariance positive
semidefinite (dropping a direction can only enlarge ``C_c``). Where no eigenvalue is cut this is the inverse.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence

import torch

from .gp import GaussianProcess
from .samplers import ScoreFn
from .schedules import Schedule, TimeLike
from .validation import finite_tensor, real_in

DTYPE = torch.float64
MAX_DENSE = 2048  # the largest N d an entry-wise mask is conditioned on densely ((N d)^2 float64: 32 MiB)
RTOL = 1e-13  # default relative eigenvalue cut of the pseudo-inverse of the observed covariance


# ------------------------------------------------------------------------------------------------ conditioning
def condition_blocks(
    C_oo: torch.Tensor, C_mo: torch.Tensor, C_mm: torch.Tensor, rtol: float = RTOL
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Gaussian conditioning on blocks of a covariance: ``(K, C_c, rank)`` with the weights ``K = C_mo C_oo^+``
    ``(m, o)``, the Schur complement ``C_c = C_mm - C_mo C_oo^+ C_om`` ``(m, m)`` (symmetric by construction) and
    the rank kept in ``C_oo^+`` (eigenvalues of ``C_oo`` above ``rtol`` times its largest)."""
    w, U = torch.linalg.eigh(C_oo)
    keep = w > rtol * w.max()
    R = U[:, keep] / w[keep].sqrt()  # C_oo^+ = R R^T
    W = C_mo @ R
    return W @ R.T, C_mm - W @ W.T, int(keep.sum())


class _Frames:
    """Frame-wise conditioning: the missing part is ``(batch, N_m, d)``, the covariance ``Gamma_c (x) Sigma``."""

    def __init__(self, gp: GaussianProcess, frames_obs: torch.Tensor, rtol: float) -> None:
        self.o, self.m = frames_obs.nonzero().flatten(), (~frames_obs).nonzero().flatten()
        G = gp.Gamma
        blocks = G[self.o][:, self.o], G[self.m][:, self.o], G[self.m][:, self.m]
        self.K, Gamma_c, self.rank = condition_blocks(*blocks, rtol=rtol)
        self.Gamma_c = Gamma_c
        lc, self.Q = torch.linalg.eigh(Gamma_c)
        s, self.V = torch.linalg.eigh(gp.Sigma)
        self.spectrum = lc.clamp(min=0.0)[:, None] * s[None, :]  # eigenvalues of C_c, (N_m, d)
        self.mu, self.Sigma = gp.mu, gp.Sigma

    def gather(self, x: torch.Tensor, observed: bool = False) -> torch.Tensor:
        return x[:, self.o if observed else self.m]

    def scatter(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        x[:, self.m] = v
        return x

    def mean(self, x_obs: torch.Tensor) -> torch.Tensor:
        return self.mu[self.m] + self.K @ (self.gather(x_obs, observed=True) - self.mu[self.o])

    def to_eig(self, r: torch.Tensor) -> torch.Tensor:
        return self.Q.T @ r @ self.V

    def from_eig(self, y: torch.Tensor) -> torch.Tensor:
        return self.Q @ y @ self.V.T

    def covariance(self) -> torch.Tensor:
        return torch.kron(self.Gamma_c, self.Sigma)

    def variance(self) -> torch.Tensor:
        return torch.diagonal(self.Gamma_c)[:, None] * torch.diagonal(self.Sigma)[None, :]


class _Entries:
    """Entry-wise conditioning, dense: the missing part is ``(batch, n_m)`` in time-major order."""

    def __init__(self, gp: GaussianProcess, entries_obs: torch.Tensor, rtol: float) -> None:
        self.obs, flat = entries_obs, entries_obs.flatten()
        self.o, self.m = flat.nonzero().flatten(), (~flat).nonzero().flatten()
        C = torch.kron(gp.Gamma, gp.Sigma)
        blocks = C[self.o][:, self.o], C[self.m][:, self.o], C[self.m][:, self.m]
        self.K, self.C_c, self.rank = condition_blocks(*blocks, rtol=rtol)
        w, self.Q = torch.linalg.eigh(self.C_c)
        self.spectrum = w.clamp(min=0.0)  # (n_m,)
        self.mu = gp.mu.flatten()

    def gather(self, x: torch.Tensor, observed: bool = False) -> torch.Tensor:
        return x.flatten(1)[:, self.o if observed else self.m]

    def scatter(self, x: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        x[:, ~self.obs] = v
        return x

    def mean(self, x_obs: torch.Tensor) -> torch.Tensor:
        return self.mu[self.m] + (self.gather(x_obs, observed=True) - self.mu[self.o]) @ self.K.T

    def to_eig(self, r: torch.Tensor) -> torch.Tensor:
        return r @ self.Q

    def from_eig(self, y: torch.Tensor) -> torch.Tensor:
        return y @ self.Q.T

    def covariance(self) -> torch.Tensor:
        return self.C_c

    def variance(self) -> torch.Tensor:
        return torch.diagonal(self.C_c)


class _Diffused:
    """A conditional law pushed through the forward process to time ``t``: ``N(alpha m_c, alpha^2 C_c + sigma^2 I)``,
    diagonal in the same eigenbasis (the noise is isotropic)."""

    def __init__(self, law: _Frames | _Entries, alpha: float, s2: float) -> None:
        self.law, self.alpha, self.s2 = law, alpha, s2
        self.rank, self.K = law.rank, law.K
        self.spectrum = alpha**2 * law.spectrum + s2
        self.gather, self.scatter, self.to_eig, self.from_eig = law.gather, law.scatter, law.to_eig, law.from_eig

    def mean(self, x_obs: torch.Tensor) -> torch.Tensor:
        return self.alpha * self.law.mean(x_obs)

    def covariance(self) -> torch.Tensor:
        C = self.law.covariance()
        return self.alpha**2 * C + self.s2 * torch.eye(C.shape[0], dtype=C.dtype)

    def variance(self) -> torch.Tensor:
        return self.alpha**2 * self.law.variance() + self.s2


class Conditional:
    """The law of the missing entries of a :class:`~gptheory.gp.GaussianProcess` sequence given its observed ones.

    Args:
        gp: the process ``vec(x) ~ N(mu, Gamma (x) Sigma)`` (``N`` frames of dimension ``d``).
        observed: boolean mask, ``True`` where observed: ``(N,)`` observes whole frames (the structured path; so does
            an ``(N, d)`` mask whose rows are each all ``True`` or all ``False``), ``(N, d)`` observes single entries
            (dense conditioning, ``N d <= MAX_DENSE``). At least one entry observed and one missing.
        rtol: relative eigenvalue cut of the pseudo-inverse of the observed covariance, in ``[0, 1)``.

    Attributes:
        framewise: whether the structured (Kronecker) path is used.
        observed_entries: ``(N, d)`` bool, ``True`` where observed; ``missing_entries`` its complement.
        n_missing: the number of missing entries (the dimension of the conditional law).
        rank: eigen-directions of the observed covariance kept (``Gamma_oo`` frame-wise, ``C_oo`` entry-wise); the
            number of observed frames (entries) when no eigenvalue was cut.
        weights: the kriging weights ``Gamma_mo Gamma_oo^{-1}`` ``(N_m, N_o)`` frame-wise (each missing frame a
            combination of observed frames), ``C_mo C_oo^{-1}`` ``(n_m, n_o)`` entry-wise.
        Gamma_c: ``Gamma_mm - Gamma_mo Gamma_oo^{-1} Gamma_om`` ``(N_m, N_m)``, frame-wise only (``None`` otherwise).
    """

    def __init__(self, gp: GaussianProcess, observed: torch.Tensor | Sequence, rtol: float = RTOL) -> None:
        if not isinstance(gp, GaussianProcess):
            raise ValueError(f"gp must be a gptheory.GaussianProcess, got {type(gp).__name__}")
        self.gp, N, d = gp, gp.N, gp.d
        self.rtol = real_in("rtol", rtol, 0.0, 1.0, high_open=True)
        try:
            obs = observed if isinstance(observed, torch.Tensor) else torch.as_tensor(observed)
        except (TypeError, ValueError, RuntimeError) as err:
            raise ValueError(f"observed must be a boolean mask (True where observed), got {observed!r}") from err
        if obs.dtype != torch.bool:
            raise ValueError(f"observed must be a boolean mask (True where observed), got dtype {obs.dtype}")
        if tuple(obs.shape) not in ((N,), (N, d)):
            raise ValueError(
                f"observed must have shape (N,) = ({N},) (whole frames) or (N, d) = ({N}, {d}) (single entries), "
                f"got {tuple(obs.shape)}"
            )
        self.observed = obs.clone()
        self.observed_entries = (obs[:, None] if obs.dim() == 1 else obs).expand(N, d).clone()
        self.missing_entries = ~self.observed_entries
        n_obs = int(self.observed_entries.sum())
        if n_obs in (0, N * d):
            which = "nothing" if n_obs == 0 else f"everything (all N d = {N * d} entries)"
            raise ValueError(
                f"observed must observe at least one entry and leave one missing, got a mask observing {which}"
            )
        self.n_missing = N * d - n_obs
        rows = self.observed_entries.all(1) | self.missing_entries.all(1)
        self.framewise = bool(rows.all())
        if self.framewise:
            self._law: _Frames | _Entries = _Frames(gp, self.observed_entries[:, 0], self.rtol)
        elif N * d > MAX_DENSE:
            raise ValueError(
                f"observed: an entry-wise mask of shape (N, d) = ({N}, {d}) is conditioned densely on the (N d, N d) "
                f"covariance, allowed up to N d = {MAX_DENSE}, got N d = {N * d}; observe whole frames (a mask of "
                "shape (N,)) for the structured path"
            )
        else:
            self._law = _Entries(gp, self.observed_entries, self.rtol)
        self.rank, self.weights = self._law.rank, self._law.K
        self.Gamma_c = self._law.Gamma_c if self.framewise else None
        self.time: float | None = None  # the diffusion time of a law made by at()

    def __repr__(self) -> str:
        kind = "frame-wise" if self.framewise else "entry-wise"
        at = "" if self.time is None else f", at t={self.time:g}"
        return f"Conditional({self.gp!r}, {kind}, {self.n_missing} of {self.gp.N * self.gp.d} entries missing{at})"

    def at(self, t: float, schedule: Schedule) -> Conditional:
        """The law a sampler stopped at time ``t`` draws: the posterior of the missing entries pushed through the
        forward process of ``schedule`` to ``t``, ``N(alpha_t m_c, alpha_t^2 C_c + sigma_t^2 I)`` (observed entries
        stay as given). Samples stopped at ``t0`` are measured against ``cond.at(t0, schedule)`` (every method of
        :mod:`gptheory.posterior` takes it), as unconditional ones against :meth:`gptheory.metrics.Law.at`: the gap to
        the posterior itself is the early stopping's, not the generator's. Its mean, covariance, spectrum and draws
        are those of that law; a score belongs to the undiffused law (:meth:`score` of ``self``)."""
        if self.time is not None:
            raise ValueError(f"this law is already at t={self.time:g}; call at() on the undiffused Conditional")
        schedule = self._schedule(schedule)
        tt = schedule.check_t(real_in("t", t, 0.0, schedule.T, low_open=True)).to(DTYPE)
        out = copy.copy(self)
        out._law = _Diffused(self._law, float(schedule.alpha(tt)), float(schedule.sigma(tt)) ** 2)
        out.time, out.Gamma_c = float(tt), None
        return out

    # ------------------------------------------------------------------------------------------ inputs
    def _sequences(self, name: str, x: torch.Tensor) -> torch.Tensor:
        """``x`` as float64 ``(batch, N, d)``; an ``(N, d)`` sequence is a batch of one."""
        x = finite_tensor(name, x)
        x = x[None] if x.dim() == 2 else x
        if x.dim() != 3 or tuple(x.shape[1:]) != (self.gp.N, self.gp.d):
            raise ValueError(
                f"{name} must have shape (batch, N, d) = (batch, {self.gp.N}, {self.gp.d}), got {tuple(x.shape)}"
            )
        return x.to(DTYPE)

    def _pair(self, x: torch.Tensor, x_obs: torch.Tensor, name: str = "x_t") -> tuple[torch.Tensor, torch.Tensor]:
        """``x`` and ``x_obs`` checked, ``x_obs`` of batch 1 broadcast to the batch of ``x`` (named ``name``)."""
        x, x_obs = self._sequences(name, x), self._sequences("x_obs", x_obs)
        B = x.shape[0]
        if x_obs.shape[0] not in (1, B):
            raise ValueError(f"x_obs must have batch 1 or {B} (the batch of {name}), got batch {x_obs.shape[0]}")
        return x, x_obs.expand(B, -1, -1)

    @staticmethod
    def _schedule(schedule: object) -> Schedule:
        if not isinstance(schedule, Schedule):
            raise ValueError(f"schedule must be a gptheory Schedule (e.g. OUSchedule()), got {type(schedule).__name__}")
        return schedule

    def _times(self, t: TimeLike, schedule: Schedule, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(alpha_t, sigma_t^2)`` as ``(batch, 1, ...)`` tensors shaped to broadcast over the missing part."""
        schedule = self._schedule(schedule)
        tt = schedule.check_t(t, include_zero=False, batch=batch).to(DTYPE)
        shape = (batch,) + (1,) * (2 if self.framewise else 1)
        return schedule.alpha(tt).reshape(shape), (schedule.sigma(tt) ** 2).reshape(shape)

    # ------------------------------------------------------------------------------------------ the law
    def mean(self, x_obs: torch.Tensor) -> torch.Tensor:
        """Posterior mean: ``x_obs: (batch, N, d)`` (read at the observed entries) with the missing entries replaced by
        ``m_c = mu_m + C_mo C_oo^{-1} (x_o - mu_o)``; ``(batch, N, d)`` float64."""
        x_obs = self._sequences("x_obs", x_obs)
        return self._law.scatter(x_obs.clone(), self._law.mean(x_obs))

    def covariance(self) -> torch.Tensor:
        """Dense posterior covariance ``C_c`` of the missing entries, ``(n_missing, n_missing)``, time-major (the order
        of ``x[:, missing_entries]``). Frame-wise it is ``kron(Gamma_c, Sigma)``, formed here on request only."""
        return self._law.covariance()

    def variance(self) -> torch.Tensor:
        """Per-coordinate posterior variance ``(N, d)``, zero at observed entries."""
        return self._law.scatter(torch.zeros(1, self.gp.N, self.gp.d, dtype=DTYPE), self._law.variance()[None])[0]

    def spectrum(self) -> torch.Tensor:
        """Eigenvalues of ``C_c`` (round-off negatives clipped to 0): ``(N_m, d)`` grid ``lam_i(Gamma_c) m_j(Sigma)``
        frame-wise, ``(n_missing,)`` entry-wise."""
        return self._law.spectrum

    def condition_number(self, t: TimeLike | None = None, schedule: Schedule | None = None) -> float:
        """``kappa`` of the posterior covariance ``C_c`` (``t=None``), or of ``alpha_t^2 C_c + sigma_t^2 I`` (what the
        conditional score solves against at time ``t`` of ``schedule``); ``inf`` when ``C_c`` is singular."""
        ev = self._law.spectrum.flatten()
        if t is not None or schedule is not None:
            if schedule is None or t is None:
                raise ValueError("t and schedule must be given together (e.g. t=0.5, schedule=OUSchedule())")
            if self.time is not None:
                raise ValueError(f"this law is already at t={self.time:g}; ask the undiffused Conditional")
            schedule = self._schedule(schedule)
            tt = schedule.check_t(t, include_zero=False)
            if tt.dim() != 0:
                raise ValueError(f"t must be a single time, got shape {tuple(tt.shape)}")
            al2, s2 = float(schedule.alpha(tt)) ** 2, float(schedule.sigma(tt)) ** 2
            ev = al2 * ev + s2
        lo = float(ev.min())
        return float(ev.max()) / lo if lo > 0 else float("inf")

    def sample(self, x_obs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """One exact posterior draw per sequence of ``x_obs: (batch, N, d)``: ``m_c + C_c^{1/2} z`` at the missing
        entries (``C_c^{1/2}`` the symmetric root, unique, so a seed gives the same draws however ``eigh`` picks its
        eigenvectors), ``x_obs`` at the observed ones; ``(batch, N, d)`` float64. For ``n`` draws given one sequence
        pass ``x_obs.expand(n, N, d)``."""
        x_obs = self._sequences("x_obs", x_obs)
        law = self._law
        m_c = law.mean(x_obs)
        z = torch.randn(m_c.shape, generator=generator, dtype=DTYPE)
        draw = m_c + law.from_eig(law.spectrum.sqrt() * law.to_eig(z))
        return law.scatter(x_obs.clone(), draw)

    # ------------------------------------------------------------------------------------------ diffused
    def _residual(self, x_t, t, schedule, x_obs) -> tuple[torch.Tensor, torch.Tensor]:
        """``x_{m,t} - alpha_t m_c`` in the eigenbasis of ``C_c`` and the eigenvalues ``alpha_t^2 C_c + sigma_t^2``."""
        if self.time is not None:
            raise ValueError(f"the law at t={self.time:g} (made by at()) has no score here: use the undiffused one")
        x_t, x_obs = self._pair(x_t, x_obs)
        al, s2 = self._times(t, schedule, x_t.shape[0])
        law = self._law
        return law.to_eig(law.gather(x_t) - al * law.mean(x_obs)), al**2 * law.spectrum + s2

    def score(self, x_t: torch.Tensor, t: TimeLike, schedule: Schedule, x_obs: torch.Tensor) -> torch.Tensor:
        """Exact conditional score ``-(alpha_t^2 C_c + sigma_t^2 I)^{-1} (x_{m,t} - alpha_t m_c)`` of the noised
        missing entries.

        Args:
            x_t: ``(batch, N, d)``, read at the missing entries (the noised ones; observed entries are ignored).
            t: a float or a ``(batch,)`` tensor in ``(0, T]``.
            schedule: the forward schedule ``(alpha_t, sigma_t)``.
            x_obs: ``(batch, N, d)`` or batch 1, read at the observed entries (clean observations).

        Returns:
            ``(batch, N, d)`` float64: the score at the missing entries, zero at the observed ones.
        """
        y, ev = self._residual(x_t, t, schedule, x_obs)
        out = torch.zeros(y.shape[0], self.gp.N, self.gp.d, dtype=DTYPE)
        return self._law.scatter(out, -self._law.from_eig(y / ev))

    def log_prob(self, x_t: torch.Tensor, t: TimeLike, schedule: Schedule, x_obs: torch.Tensor) -> torch.Tensor:
        """Log-density of the noised missing entries, ``N(alpha_t m_c, alpha_t^2 C_c + sigma_t^2 I)`` at
        ``x_t[:, missing_entries]``; ``(batch,)``. Arguments as in :meth:`score`, of which it is the potential."""
        y, ev = self._residual(x_t, t, schedule, x_obs)
        dims = tuple(range(1, y.dim()))
        quad, logdet = (y**2 / ev).sum(dims), torch.log(ev).sum(dims)
        return -0.5 * (quad + logdet + self.n_missing * math.log(2 * math.pi))

    def score_fn(self, x_obs: torch.Tensor, schedule: Schedule) -> ScoreFn:
        """The conditional score as a ``score(x, t)`` for :func:`gptheory.samplers.sample` over whole sequences.

        At the missing entries it is :meth:`score` given ``x_obs``; at the observed entries it is ``-x``, the score
        of a standard normal, so the probability-flow ODE (``"euler"``, ``"heun"``) leaves them where they start and
        Euler-Maruyama moves them as pure noise. The missing part never reads them, so the sampler draws the missing
        entries from the posterior pushed to ``t0``, ``N(alpha_t0 m_c, alpha_t0^2 C_c + sigma_t0^2 I)``, whatever
        they do; paste the observations back with :meth:`keep_observed`::

            x = cond.keep_observed(sample(cond.score_fn(x_obs, ou), prior(n, N, d), ou, 64, 1e-3), x_obs)
        """
        x_obs = self._sequences("x_obs", x_obs)
        schedule = self._schedule(schedule)

        def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            s = self.score(x, t, schedule, x_obs)
            return torch.where(self.observed_entries, -x.to(DTYPE), s).to(x.dtype)

        return fn

    def keep_observed(self, x: torch.Tensor, x_obs: torch.Tensor) -> torch.Tensor:
        """``x: (batch, N, d)`` with its observed entries replaced by those of ``x_obs`` (batch 1 or ``batch``)."""
        x, x_obs = self._pair(x, x_obs, name="x")
        return torch.where(self.observed_entries, x_obs, x)
