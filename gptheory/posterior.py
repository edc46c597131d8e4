"""Conditional samples measured against the exact posterior, each metric beside its sampling floor.

A conditional generator (a conditional DiT, replacement along the backward process, the exact conditional score
through a sampler) draws the missing entries of a sequence given its observed ones. On Gaussian-process data the right
answer is known: the posterior ``N(m_c, C_c)`` of :class:`gptheory.conditional.Conditional`. Each metric sets the
samples beside it and beside its *floor*, what a perfect generator (exact posterior draws, as many) scores: the error
of the mean (:func:`mean_error`, floor in closed form), ``W2`` of the Gaussian fit (:func:`gaussian_w2_to_posterior`,
floor by Monte Carlo), coverage of intervals per coordinate (:func:`coverage`) and of ellipsoids
(:func:`ellipsoid_coverage`), each exact in expectation for a perfect generator at any ``n``, the CRPS (:func:`crps`:
unbiased, so the posterior's closed form is its floor; :func:`normalised_crps`, CSDI's) and PIT values (:func:`pit`).

Conventions. Samples ``x: (n_samples, batch, N, d)``: for each of ``batch`` observed sequences, ``n_samples`` draws of
the whole sequence (:func:`posterior_draws` makes a perfect generator's); only their missing entries are read.
``x_obs: (batch, N, d)`` is read at the observed entries (what was conditioned on). ``truth: (batch, N, d)`` is the
whole sequence whose observed part was given: read at the observed entries as ``x_obs`` and at the missing ones as the
values to predict. An ``(N, d)`` sequence is a batch of one. Per-coordinate results are ``(batch, n_missing)`` in the
time-major order of ``x[..., missing_entries]`` (that of :meth:`Conditional.covariance`); put them in place with
``out[:, cond.missing_entries] = v``. Units: the data's for the mean error, ``W2`` and CRPS; shares in ``[0, 1]`` for
coverage and PIT. Everything is float64, on the CPU (samples from a GPU are moved there).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch

from .conditional import Conditional
from .gp import psd_sqrt
from .metrics import bures_w2
from .streams import generator as stream
from .validation import finite_tensor, nonneg_int, positive_int, real_in

DTYPE = torch.float64
LEVELS = (0.5, 0.9, 0.95)  # the nominal levels of the central intervals and ellipsoids


class Floored(NamedTuple):
    """A metric of the samples (``value``, data units) beside ``floor``, what a perfect generator (exact posterior
    draws, as many per sequence) scores; ``sd``, the standard deviation of ``value`` for that perfect generator at the
    same ``n_samples`` and ``batch`` (``value > floor + 4 sd``: a detected excess); ``floor_se``, the Monte Carlo
    standard error of ``floor`` (0 in closed form)."""

    value: float
    floor: float
    sd: float
    floor_se: float


class Coverage(NamedTuple):
    """Coverage at the nominal ``levels`` ``(L,)``: ``samples`` ``(batch, L)``, per sequence the share of the truth
    inside the samples' regions (intervals: of its missing coordinates; an ellipsoid: 0 or 1), to average over the
    batch; ``expected`` ``(L,)``, its exact expectation for a perfect generator at this ``n_samples``; ``posterior``
    ``(batch, L)``, the same for the exact posterior's regions (expectation ``levels``)."""

    levels: tuple[float, ...]
    samples: torch.Tensor
    expected: torch.Tensor
    posterior: torch.Tensor


class Scores(NamedTuple):
    """One score per missing coordinate of each sequence, ``(batch, n_missing)``: of the samples, of the posterior."""

    samples: torch.Tensor
    posterior: torch.Tensor


# ------------------------------------------------------------------------------------------------ inputs
def _conditional(cond: object) -> Conditional:
    if not isinstance(cond, Conditional):
        raise ValueError(f"cond must be a gptheory.conditional.Conditional, got {type(cond).__name__}")
    return cond


def _inputs(
    x: object, cond: object, seqs: object, name: str, least: int, why: str
) -> tuple[Conditional, torch.Tensor, torch.Tensor]:
    """``cond`` checked; ``x`` checked, its missing entries ``(n_samples, batch, n_missing)``; ``seqs`` (``x_obs`` or
    ``truth``, named ``name``) checked as ``(batch, N, d)``; float64."""
    cond = _conditional(cond)
    N, d = cond.gp.N, cond.gp.d
    x = finite_tensor("x", x)
    if x.dim() != 4 or tuple(x.shape[2:]) != (N, d) or x.shape[1] < 1:
        raise ValueError(
            f"x must have shape (n_samples, batch, N, d) = (n_samples, batch, {N}, {d}) with batch >= 1, "
            f"got {tuple(x.shape)}"
        )
    if x.shape[0] < least:
        raise ValueError(f"x must hold n_samples >= {least} draws per sequence ({why}), got n_samples={x.shape[0]}")
    return cond, x.to("cpu", DTYPE)[:, :, cond.missing_entries], _sequences(name, seqs, cond, x.shape[1])


def _sequences(name: str, s: object, cond: Conditional, batch: int | None) -> torch.Tensor:
    """``s`` checked as ``(batch, N, d)`` float64 (an ``(N, d)`` sequence is a batch of one; ``None``: any batch)."""
    N, d = cond.gp.N, cond.gp.d
    s = finite_tensor(name, s)
    shape = tuple(s.shape)
    s = s[None] if s.dim() == 2 else s
    if s.dim() != 3 or tuple(s.shape[1:]) != (N, d) or (s.shape[0] < 1 if batch is None else s.shape[0] != batch):
        want = f"({batch}, {N}, {d}) (batch: that of x)" if batch else f"(batch, {N}, {d})"
        raise ValueError(f"{name} must have shape (batch, N, d) = {want}, got {shape}")
    return s.to("cpu", DTYPE)


def _levels(levels: object) -> tuple[float, ...]:
    try:
        qs = tuple(levels)  # type: ignore[arg-type]
    except TypeError:
        raise ValueError(f"levels must be a non-empty sequence of reals in (0, 1), got {levels!r}") from None
    if not qs:
        raise ValueError(f"levels must be a non-empty sequence of reals in (0, 1), got {levels!r}")
    return tuple(real_in("levels", q, 0.0, 1.0, low_open=True, high_open=True) for q in qs)


def _posterior(cond: Conditional, seqs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The posterior mean ``(batch, n_missing)`` given ``seqs`` and the posterior sd ``(n_missing,)``."""
    miss = cond.missing_entries
    return cond.mean(seqs)[:, miss], cond.variance()[miss].sqrt()


def posterior_draws(
    cond: Conditional, x_obs: torch.Tensor, n_samples: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """A perfect generator: ``n_samples`` exact posterior draws for each sequence of ``x_obs: (batch, N, d)``, as
    ``(n_samples, batch, N, d)`` float64 (observed entries those of ``x_obs``), drawn with ``generator``."""
    cond, n = _conditional(cond), positive_int("n_samples", n_samples)
    x_obs = _sequences("x_obs", x_obs, cond, None)
    B, N, d = x_obs.shape
    return cond.sample(x_obs.expand(n, B, N, d).reshape(n * B, N, d), generator=generator).reshape(n, B, N, d)


# ------------------------------------------------------------------------------------------------ mean and W2
def mean_error(x: torch.Tensor, cond: Conditional, x_obs: torch.Tensor) -> Floored:
    """The RMS error of the samples' mean against the posterior mean over the missing entries, with its floor.

    ``value = sqrt(mean_b ||xbar_b - m_c,b||^2 / p)`` (``p = n_missing``, data units), ``xbar_b`` the mean of the
    ``n_samples`` draws given sequence ``b``. For ``n`` exact draws ``n ||xbar - m_c||^2 = sum_i lam_i z_i^2``
    (``lam`` the eigenvalues of ``C_c``, ``z`` standard normal), so ``floor = sqrt(tr C_c / (n p))`` exactly (the
    root of the expected square) and ``value^2`` has standard deviation ``sqrt(2 sum lam^2 / batch) / (n p)``;
    ``sd`` is that over ``2 floor`` (the delta method: rough when ``batch`` is small and one eigenvalue dominates).
    ``x``: ``(n_samples, batch, N, d)``, ``n_samples >= 1``; ``x_obs``: ``(batch, N, d)`` (see the module's note).
    """
    cond, xm, x_obs = _inputs(x, cond, x_obs, "x_obs", 1, "a mean")
    n, B, p = xm.shape
    m, _ = _posterior(cond, x_obs)
    lam = cond.spectrum().flatten()
    floor = math.sqrt(float(lam.sum()) / (n * p))
    sd_square = math.sqrt(2 * float((lam**2).sum()) / B) / (n * p)
    value = math.sqrt(float(((xm.mean(0) - m) ** 2).mean()))
    return Floored(value, floor, sd_square / (2 * floor) if floor > 0 else 0.0, 0.0)


def _fit(xm: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The Gaussian fit of ``(n, batch, p)`` draws per sequence: means ``(batch, p)``, covariances ``(batch, p, p)``
    (``1 / (n - 1)``)."""
    mean = xm.mean(0)
    r = xm - mean
    return mean, torch.einsum("kbi,kbj->bij", r, r) / (xm.shape[0] - 1)


def gaussian_w2_to_posterior(
    x: torch.Tensor,
    cond: Conditional,
    x_obs: torch.Tensor,
    reps: int = 32,
    seed: int = 0,
    generator: torch.Generator | None = None,
) -> Floored:
    """``W2`` between the Gaussian fit of the samples of each sequence and the exact posterior ``N(m_c, C_c)``,
    averaged over the batch (data units), with its floor.

    The floor is the mean ``W2`` of the fit of ``n_samples`` exact posterior draws, over ``reps`` Monte Carlo draws
    (``generator``, else stream ``"floor"`` of ``seed``). It does not depend on ``x_obs`` (``W2`` is unchanged when
    both laws move by ``m_c``), so the draws are given the first sequence. ``sd`` is their standard deviation over
    ``sqrt(batch)``, ``floor_se`` over ``sqrt(reps)``. The fit needs ``n_samples >= 2``; below ``n_samples = p + 1``
    it is singular and the floor is large, but still the right yardstick. ``x``: ``(n_samples, batch, N, d)``;
    ``x_obs``: ``(batch, N, d)``; ``reps >= 2``; ``seed >= 0``; ``generator`` (a ``torch.Generator``) overrides it.
    """
    cond, xm, x_obs = _inputs(x, cond, x_obs, "x_obs", 2, "a covariance")
    n, B, _ = xm.shape
    if positive_int("reps", reps) < 2:
        raise ValueError(f"reps must be at least 2 (a Monte Carlo floor and its spread), got {reps}")
    seed = nonneg_int("seed", seed)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    gen = generator if generator is not None else stream(seed, "floor")
    C = cond.covariance()
    root = psd_sqrt(C)
    m, _ = _posterior(cond, x_obs)
    value = bures_w2(*_fit(xm), m, C, root)
    exact = posterior_draws(cond, x_obs[:1].expand(reps, -1, -1), n, generator=gen)[:, :, cond.missing_entries]
    floors = bures_w2(*_fit(exact), m[:1], C, root)
    spread = float(floors.std())
    return Floored(float(value.mean()), float(floors.mean()), spread / math.sqrt(B), spread / math.sqrt(reps))


# ------------------------------------------------------------------------------------------------ coverage
def _order_index(q: float, n: int) -> int:
    """The lower order statistic ``i`` (1-based) of the central interval ``[X_(i), X_(n+1-i)]`` at level ``q``: the
    largest ``i`` whose interval covers a new draw with probability ``(n + 1 - 2 i) / (n + 1) >= q`` (to 1e-9)."""
    i = math.floor((n + 1) * (1 - q) / 2 + 1e-9)
    if i < 1:
        need = math.ceil(2 / (1 - q) - 1 - 1e-9)
        raise ValueError(
            f"levels: a central {q:g} interval between order statistics of the samples needs n_samples >= {need}, "
            f"got n_samples={n}"
        )
    return i


def coverage(x: torch.Tensor, cond: Conditional, truth: torch.Tensor, levels: Sequence[float] = LEVELS) -> Coverage:
    """Per-coordinate coverage: the share of the missing coordinates of each truth inside the nominal central
    intervals of the samples, and inside the exact posterior's.

    The samples' interval at level ``q`` is ``[X_(i), X_(n+1-i)]`` between their order statistics, ``i`` from
    :func:`_order_index`. Given a perfect generator, a truth and the ``n`` draws are exchangeable, so the truth's rank
    among them is uniform on ``n + 1`` places and the interval covers it with probability exactly
    ``(n + 1 - 2 i) / (n + 1)`` (``expected``; ``q`` when ``(n + 1)(1 - q) / 2`` is an integer, as for ``n = 39``,
    ``199``, ``999`` at 0.5, 0.9 and 0.95). The posterior's interval is ``m_c +- Phi^{-1}((1 + q) / 2) sd``.

    Across independent sequences a coordinate's hits are Bernoulli, so a share over ``batch`` sequences has standard
    error at most ``sqrt(q (1 - q) / batch)`` (an average over coordinates varies no more than its most variable one).
    ``x``: ``(n_samples, batch, N, d)``, ``n_samples >= 2 / (1 - q) - 1`` at every level ``q`` in ``(0, 1)``;
    ``truth``: ``(batch, N, d)``.
    """
    cond, xm, truth = _inputs(x, cond, truth, "truth", 1, "an interval")
    n, qs = xm.shape[0], _levels(levels)
    idx = [_order_index(q, n) for q in qs]
    y = truth[:, cond.missing_entries]
    s = xm.sort(0).values
    samples = torch.stack([((s[i - 1] <= y) & (y <= s[n - i])).to(DTYPE).mean(-1) for i in idx], -1)
    expected = torch.tensor([(n + 1 - 2 * i) / (n + 1) for i in idx], dtype=DTYPE)
    m, sd = _posterior(cond, truth)
    z = torch.special.ndtri(torch.tensor([(1 + q) / 2 for q in qs], dtype=DTYPE))
    posterior = ((y - m).abs()[..., None] <= z * sd[:, None]).to(DTYPE).mean(-2)
    return Coverage(qs, samples, expected, posterior)


def ellipsoid_coverage(
    x: torch.Tensor, cond: Conditional, truth: torch.Tensor, levels: Sequence[float] = LEVELS
) -> Coverage:
    """Whether each truth's missing part lies in the nominal ellipsoids: the exact posterior's and the samples'.

    Posterior: ``(y - m_c)^T C_c^+ (y - m_c) <= chi2_q(r)``, ``C_c^+`` the pseudo-inverse keeping the eigenvalues of
    ``C_c`` above ``cond.rtol`` times the largest (the Conditional's own cut), ``r`` their number. Samples: the
    Gaussian fit ``(xbar, S)`` of the ``n > r`` draws of each sequence and Hotelling's prediction ellipsoid
    ``(y - xbar)^T S^+ (y - xbar) <= (n + 1)(n - 1) r / (n (n - r)) F_q(r, n - r)`` on the ``r`` leading directions of
    ``S`` (a chi-square bound would under-cover: ``S`` is an estimate). Each covers exact truths with probability
    exactly ``q`` (the samples' for a perfect generator, at any ``n > r``), to the size of the eigenvalues cut
    (tested at ``kappa(C_c)`` about ``1e13``). ``samples`` and ``posterior`` are 0 or 1 per sequence: over independent
    sequences the share is binomial, standard error ``sqrt(q (1 - q) / batch)``. Arguments as in :func:`coverage`.
    """
    from scipy import stats

    cond, xm, truth = _inputs(x, cond, truth, "truth", 2, "a covariance")
    n, qs = xm.shape[0], _levels(levels)
    w, Q = torch.linalg.eigh(cond.covariance())
    keep = w > cond.rtol * w.max()
    r = int(keep.sum())
    if n <= r:
        raise ValueError(f"x must hold n_samples > {r} (the rank of C_c) for the samples' ellipsoid, got n_samples={n}")
    y = truth[:, cond.missing_entries]
    m, _ = _posterior(cond, truth)
    d2 = (((y - m) @ Q[:, keep]) ** 2 / w[keep]).sum(-1)
    posterior = (d2[:, None] <= torch.tensor(stats.chi2.ppf(qs, r), dtype=DTYPE)).to(DTYPE)
    mean, S = _fit(xm)
    ws, Qs = torch.linalg.eigh(S)
    e = torch.einsum("bi,bik->bk", y - mean, Qs[:, :, -r:])
    d2s = (e**2 / ws[:, -r:].clamp(min=torch.finfo(DTYPE).tiny)).sum(-1)
    bound = (n + 1) * (n - 1) * r / (n * (n - r)) * stats.f.ppf(qs, r, n - r)
    samples = (d2s[:, None] <= torch.tensor(bound, dtype=DTYPE)).to(DTYPE)
    return Coverage(qs, samples, torch.tensor(qs, dtype=DTYPE), posterior)


# ------------------------------------------------------------------------------------------------ CRPS and PIT
def _crps_normal(mean: torch.Tensor, sd: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    pos = sd > 0
    s = torch.where(pos, sd, torch.ones_like(sd))
    z = (y - mean) / s
    pdf = torch.exp(-0.5 * z**2) / math.sqrt(2 * math.pi)
    c = s * (z * (2 * torch.special.ndtr(z) - 1) + 2 * pdf - 1 / math.sqrt(math.pi))
    return torch.where(pos, c, (y - mean).abs())


def crps_gaussian(mean: torch.Tensor, sd: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CRPS of ``N(mean, sd^2)`` at ``y``, elementwise, closed form (data units):
    ``sd [z (2 Phi(z) - 1) + 2 phi(z) - 1 / sqrt(pi)]``, ``z = (y - mean) / sd``; ``|y - mean|`` where ``sd = 0``.
    ``mean``, ``sd >= 0`` and ``y`` broadcast together; float64 of their broadcast shape."""
    mean, sd, y = (finite_tensor(k, v).to(DTYPE) for k, v in (("mean", mean), ("sd", sd), ("y", y)))
    if sd.numel() and float(sd.min()) < 0:
        raise ValueError(f"sd must be >= 0 (a standard deviation), got a minimum of {float(sd.min()):g}")
    try:
        torch.broadcast_shapes(mean.shape, sd.shape, y.shape)
    except RuntimeError:
        shapes = f"{tuple(mean.shape)}, {tuple(sd.shape)} and {tuple(y.shape)}"
        raise ValueError(f"mean, sd and y must broadcast together, got shapes {shapes}") from None
    return _crps_normal(mean, sd, y)


def _crps_sorted(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    n = x.shape[0]
    s = x.sort(0).values
    w = (2 * torch.arange(1, n + 1, dtype=DTYPE) - n - 1).reshape(n, *([1] * y.dim()))
    return (x - y).abs().mean(0) - (w * s).sum(0) / (n * (n - 1))


def crps_samples(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """CRPS of the law that drew the samples ``x: (n_samples, *y.shape)`` at ``y``, elementwise (data units): the
    energy form ``E|X - y| - E|X - X'| / 2``, unbiased (the second term over the ``n (n - 1)`` pairs of distinct
    draws, not the ``n^2`` that include ``X = X'``: that one, the empirical law's CRPS, is too high by about
    ``E|X - X'| / (2 n)``). The pairs cost ``O(n log n)`` by sorting:
    ``sum_{k != l} |X_k - X_l| = 2 sum_i (2 i - n - 1) X_(i)``. ``n_samples >= 2``."""
    x, y = finite_tensor("x", x).to(DTYPE), finite_tensor("y", y).to(DTYPE)
    if x.dim() != y.dim() + 1 or tuple(x.shape[1:]) != tuple(y.shape) or x.shape[0] < 2:
        raise ValueError(
            f"x must have shape (n_samples, *y.shape) = ({', '.join(['n_samples', *map(str, y.shape)])}) with "
            f"n_samples >= 2, got {tuple(x.shape)}"
        )
    return _crps_sorted(x, y)


def crps(x: torch.Tensor, cond: Conditional, truth: torch.Tensor) -> Scores:
    """CRPS at every missing coordinate of each truth, ``(batch, n_missing)`` (data units): of the samples
    (:func:`crps_samples`, ``n_samples >= 2``) and of the exact posterior's marginal (:func:`crps_gaussian`).

    The samples' score is unbiased for the CRPS of the law they were drawn from, so for a perfect generator its
    expectation is ``posterior`` at the same truths whatever ``n_samples``: the posterior's CRPS is the floor, and a
    proper score, lower on average than any other predictive law's on truths that follow the posterior. Averaged over
    exact truths it is ``sd / sqrt(pi)`` per coordinate. Arguments as in :func:`coverage`."""
    cond, xm, truth = _inputs(x, cond, truth, "truth", 2, "pairs of draws")
    y = truth[:, cond.missing_entries]
    return Scores(_crps_sorted(xm, y), _crps_normal(*_posterior(cond, truth), y))


def normalised_crps(scores: torch.Tensor, cond: Conditional, truth: torch.Tensor) -> float:
    """CSDI's normalised CRPS: ``sum of CRPS over the missing coordinates / sum of |truth|`` over them, for
    ``scores: (batch, n_missing)`` (:func:`crps`'s ``samples`` or ``posterior``) and ``truth: (batch, N, d)``.

    Not comparable across data sets: the denominator is the truth's size about zero, not its uncertainty, so adding a
    constant to a data set changes it and not the CRPS (an offset makes any model look as good as wished), and the
    numerator cannot fall below the CRPS of the exact posterior, set by how predictable the data are (the mask, the
    kernel's smoothness, the noise), not by the model: a lower value may mean easier data. On Gaussian-process data
    set ``samples`` beside ``posterior`` instead (equal on average for a perfect generator, on any data). CSDI's
    numerator is the mean quantile loss at 0.05, 0.10, ..., 0.95, a discretisation of the CRPS; this one is exact."""
    cond = _conditional(cond)
    scores = finite_tensor("scores", scores).to(DTYPE)
    if scores.dim() != 2 or scores.shape[1] != cond.n_missing or scores.shape[0] < 1:
        raise ValueError(
            f"scores must have shape (batch, n_missing) = (batch, {cond.n_missing}), got {tuple(scores.shape)}"
        )
    size = float(_sequences("truth", truth, cond, scores.shape[0])[:, cond.missing_entries].abs().sum())
    if size == 0:
        raise ValueError("truth must not be zero at every missing entry (the normalisation divides by sum |truth|)")
    return float(scores.sum()) / size


def pit(x: torch.Tensor, cond: Conditional, truth: torch.Tensor) -> Scores:
    """Probability integral transforms of the truths' missing coordinates, ``(batch, n_missing)`` in ``[0, 1]``.

    ``samples``: the samples' empirical CDF at the truth, ``#{k: X_k <= y} / n`` (for a perfect generator ``n`` times
    it is uniform on ``0, ..., n``: the truth's rank). ``posterior``: the exact marginal's ``Phi((y - m_c) / sd)``,
    uniform on ``[0, 1]`` for exact truths. Coordinates of one sequence are dependent; a uniformity test wants one
    coordinate per sequence. Arguments as in :func:`coverage` (``n_samples >= 1``)."""
    cond, xm, truth = _inputs(x, cond, truth, "truth", 1, "a CDF")
    y = truth[:, cond.missing_entries]
    m, sd = _posterior(cond, truth)
    pos = sd > 0
    post = torch.where(pos, torch.special.ndtr((y - m) / torch.where(pos, sd, 1.0)), (y >= m).to(DTYPE))
    return Scores((xm <= y).to(DTYPE).mean(0), post)


__all__ = [
    "LEVELS",
    "Coverage",
    "Floored",
    "Scores",
    "coverage",
    "crps",
    "crps_gaussian",
    "crps_samples",
    "ellipsoid_coverage",
    "gaussian_w2_to_posterior",
    "mean_error",
    "normalised_crps",
    "pit",
    "posterior_draws",
]
