"""Three ways to draw the missing frames of a sequence given its observed ones, through one sampler.

All three integrate the same probability-flow ODE (:func:`gptheory.samplers.sample`, Heun, the same time grid from
``T`` to ``t0``) over whole sequences, from the same starting noise; they differ only in the score:

1. :func:`conditional_score` -- a conditional network (:class:`gptheory.conditional_dit.ConditionalDiT`) trained on
   random masks, given the observed frames;
2. :func:`replacement_score` -- an *unconditional* network whose input has the observed frames replaced, at every
   evaluation, by those frames pushed through the forward process, ``alpha_t x_obs + sigma_t z`` (one ``z`` per draw,
   drawn once, so the path is continuous in ``t`` and the ODE well defined). Training-free and widely used, this is
   the probability-flow version of the "replacement" method of Song et al. 2021, who draw a fresh ``z`` at every step
   of the reverse SDE; the size of the bias may depend on that choice. It is known to be biased: the network's score
   of the missing part is that of the joint law at a point where the observed part is a *random* noisy version of the
   observations, not the conditional score, so the missing frames agree with the observations only through the noise;
3. :func:`exact_score` -- the exact conditional score of the process
   (:meth:`gptheory.conditional.Conditional.score_fn`): the control, which shows what the sampler alone costs.

At the observed entries each score is ``-x``, so the ODE leaves them where they start; :func:`impute` pastes the
observations back at the end. The draws are then measured against ``cond.at(t0, schedule)``, the posterior pushed to
where the sampler stops (:mod:`gptheory.posterior`).

:func:`exact_conditional_score` is the exact conditional score for a batch in which each sequence has its own frame
mask, what the validation loss of a conditional network is measured in excess of.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .conditional import Conditional
from .conditional_dit import ConditionalDiT
from .denoiser import Denoiser
from .gp import GaussianProcess
from .samplers import ScoreFn, prior, sample
from .schedules import Schedule
from .validation import finite_tensor, positive_int, real_in

METHODS = ("conditional", "replacement", "exact")


def exact_conditional_score(
    gp: GaussianProcess, schedule: Schedule
) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]:
    """``score(x_t, t, x_obs, observed)``: the exact conditional score of ``gp`` under ``schedule`` for sequences
    ``x_t: (batch, N, d)`` at times ``t: (batch,)``, each given its own ``x_obs`` where its frame mask ``observed:
    (batch, N)`` is ``True``; ``(batch, N, d)`` float64, zero at the observed entries. One
    :class:`~gptheory.conditional.Conditional` per distinct mask, kept for the next call."""
    laws: dict[bytes, Conditional] = {}

    def fn(x_t: torch.Tensor, t: torch.Tensor, x_obs: torch.Tensor, observed: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(x_t.shape, dtype=torch.float64)
        patterns, which = torch.unique(observed.cpu(), dim=0, return_inverse=True)
        for j, pattern in enumerate(patterns):
            rows = which == j
            key = pattern.numpy().tobytes()
            if key not in laws:
                laws[key] = Conditional(gp, pattern)
            out[rows] = laws[key].score(x_t[rows].cpu(), t[rows].cpu(), schedule, x_obs[rows].cpu())
        return out.to(x_t.device)

    return fn


class ExactDenoiser(Denoiser):
    """The exact unconditional denoiser of a process as a network (``eps_hat = -sigma_t score``, float64): replacement
    with a perfect score, which shows the method's own bias apart from any learning. ``gp``: the process; its
    schedule is the DiT's default."""

    ARCH = "exact"

    def __init__(self, gp: GaussianProcess) -> None:
        super().__init__(gp.N, gp.d)
        self.gp = gp
        self.register_parameter("anchor", nn.Parameter(torch.zeros((), dtype=torch.float64), requires_grad=False))

    def config(self) -> dict:
        return {"arch": self.ARCH, "N": self.N, "d": self.d}

    def network(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        sigma = self.schedule.sigma(t.to(torch.float64))[:, None, None]
        return (-sigma * self.gp.score(x.to(torch.float64), t.to(torch.float64), self.schedule)).to(x.dtype)


def conditional_score(
    model: ConditionalDiT, x_obs: torch.Tensor, observed: torch.Tensor, schedule: Schedule | None = None
) -> ScoreFn:
    """Method 1: the conditional network's score given ``x_obs: (batch, N, d)`` where ``observed: (N,)``; ``schedule``
    must be the network's (the default)."""
    return model.conditional_score_fn(x_obs, observed, schedule)


def replacement_score(
    model: Denoiser, x_obs: torch.Tensor, observed: torch.Tensor, z: torch.Tensor, schedule: Schedule | None = None
) -> ScoreFn:
    """Method 2: the unconditional ``model``'s score with the observed frames of its input replaced by
    ``alpha_t x_obs + sigma_t z`` (``x_obs, z: (batch, N, d)``, ``observed: (N,)``); ``-x`` at the observed entries."""
    schedule = model.check_schedule(schedule)
    inner = model.score_fn(schedule)
    mask = observed[None, :, None]

    def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        t64 = t.to(torch.float64)
        a = schedule.alpha(t64).to(x.dtype)[:, None, None]
        s = schedule.sigma(t64).to(x.dtype)[:, None, None]
        m = mask.to(x.device)
        noisy_obs = a * x_obs.to(x.device, x.dtype) + s * z.to(x.device, x.dtype)
        return torch.where(m, -x, inner(torch.where(m, noisy_obs, x), t))

    return fn


def exact_score(cond: Conditional, x_obs: torch.Tensor, schedule: Schedule) -> ScoreFn:
    """Method 3, the control: the exact conditional score of ``cond`` given ``x_obs: (batch, N, d)``."""
    return cond.score_fn(x_obs, schedule)


def impute(
    method: str,
    x_obs: torch.Tensor,
    observed: torch.Tensor,
    n_draws: int,
    schedule: Schedule,
    steps: int,
    t0: float,
    seed: int | torch.Generator,
    *,
    model: Denoiser | None = None,
    cond: Conditional | None = None,
    chunk: int = 4096,
) -> torch.Tensor:
    """``n_draws`` draws of the whole sequence for each of ``x_obs: (batch, N, d)``, given its frames where
    ``observed: (N,)`` (bool), by ``method`` (one of :data:`METHODS`), as ``(n_draws, batch, N, d)`` float64 on the
    CPU with the observed entries those of ``x_obs`` (the layout of :mod:`gptheory.posterior`).

    Args:
        method: ``"conditional"`` (``model`` a :class:`~gptheory.conditional_dit.ConditionalDiT`), ``"replacement"``
            (``model`` an unconditional network) or ``"exact"`` (``cond``, the process's
            :class:`~gptheory.conditional.Conditional` for ``observed``).
        schedule, steps, t0: the sampler (Heun steps of the probability-flow ODE from ``T`` to ``t0``).
        seed: the starting noise (and the replacement's ``z``), the same for every method at the same seed.
        chunk: sequences integrated at once (the draws do not depend on it).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    n_draws, chunk = positive_int("n_draws", n_draws), positive_int("chunk", chunk)
    if method == "exact":
        if not isinstance(cond, Conditional):
            raise ValueError(f"method='exact' needs cond, the Conditional of the mask, got {type(cond).__name__}")
        N, d = cond.gp.N, cond.gp.d
        if (
            not isinstance(observed, torch.Tensor)
            or tuple(observed.shape) != (N,)
            or not torch.equal(cond.observed_entries, observed.cpu()[:, None].expand(N, d))
        ):
            raise ValueError(
                f"observed must be the frame mask cond was made for, {cond.observed_entries[:, 0].tolist()}"
            )
    else:
        wanted = ConditionalDiT if method == "conditional" else Denoiser
        if not isinstance(model, wanted) or (method == "replacement" and isinstance(model, ConditionalDiT)):
            kind = "a ConditionalDiT" if method == "conditional" else "an unconditional network (DiT or UNet)"
            raise ValueError(f"method={method!r} needs model, {kind}, got {type(model).__name__}")
        N, d = model.N, model.d
    x_obs = finite_tensor("x_obs", x_obs, (None, N, d)).to(torch.float64)
    observed = observed.cpu() if isinstance(observed, torch.Tensor) else observed
    if not isinstance(observed, torch.Tensor) or observed.dtype != torch.bool or tuple(observed.shape) != (N,):
        raise ValueError(f"observed must be a boolean frame mask of shape (N,) = ({N},), got {observed!r:.60}")
    if not 0 < int(observed.sum()) < N:
        raise ValueError(f"observed must observe at least one frame and leave one missing, got {observed.tolist()}")
    real_in("t0", t0, 0.0, schedule.T, low_open=True, high_open=True)
    gen = seed if isinstance(seed, torch.Generator) else torch.Generator().manual_seed(int(seed))
    B = x_obs.shape[0]
    dtype = torch.float64 if method == "exact" else next(model.parameters()).dtype
    device = torch.device("cpu") if method == "exact" else next(model.parameters()).device
    given = x_obs[None].expand(n_draws, B, N, d).reshape(n_draws * B, N, d)
    # drawn in float64 whatever the method's dtype: torch's normal draws differ between dtypes, and every method must
    # start from the same noise (and replacement's z follows it in the stream)
    x_T = prior(n_draws * B, N, d, generator=gen, dtype=torch.float64)
    z = torch.randn(x_T.shape, generator=gen, dtype=torch.float64) if method == "replacement" else None
    x_T = x_T.to(dtype)
    out = []
    for i in range(0, n_draws * B, chunk):
        obs = given[i : i + chunk].to(device, dtype)
        if method == "exact":
            score = exact_score(cond, obs, schedule)
        elif method == "conditional":
            score = conditional_score(model, obs, observed.to(device), schedule)
        else:
            score = replacement_score(model, obs, observed.to(device), z[i : i + chunk].to(dtype), schedule)
        x = sample(score, x_T[i : i + chunk].to(device), schedule, steps, t0, method="heun", progress=False)
        out.append(x.to("cpu", torch.float64))
    x = torch.where(observed[None, :, None], given, torch.cat(out))
    return x.reshape(n_draws, B, N, d)


__all__ = [
    "METHODS",
    "ExactDenoiser",
    "conditional_score",
    "exact_conditional_score",
    "exact_score",
    "impute",
    "replacement_score",
]
