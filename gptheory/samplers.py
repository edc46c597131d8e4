"""Samplers for variance-preserving diffusions that take any score function ``score(x, t)``.

The forward process is ``dX = -1/2 beta(t) X dt + sqrt(beta(t)) dW`` (see :mod:`gptheory.schedules`).
Going backwards from ``T`` to the early-stopping time ``t0``:

* reverse SDE ``dY = [-1/2 beta Y - beta s(Y, t)] dt + sqrt(beta) dW`` (``dt < 0``), discretised by
  Euler-Maruyama (``method="em"``);
* probability-flow ODE ``dY/dt = -1/2 beta [Y + s(Y, t)]``, discretised by Euler (``"euler"``) or
  Heun's second-order method (``"heun"``).

``score(x, t)`` receives ``x: (batch, N, d)`` and ``t: (batch,)`` and returns ``(batch, N, d)``.
The time grid runs from ``T`` down to ``t0``, geometric by default (see :func:`time_grid`).

:func:`sample` integrates from given starting points with any score; :func:`generate` draws ``n`` sequences from a
trained network (:class:`~gptheory.denoiser.Denoiser`: the DiT or a UNet; seeded noise, in chunks, with a hook at
the end of each chunk).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from tqdm.auto import tqdm

from .profiles import autocast_dtype
from .schedules import Schedule
from .validation import finite_tensor, positive_int, real_in

if TYPE_CHECKING:
    from .denoiser import Denoiser

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
METHODS = ("euler", "heun", "em")


SPACINGS = ("log", "uniform")


def time_grid(schedule: Schedule, steps: int, t0: float, T: float | None = None, spacing: str = "log") -> torch.Tensor:
    """Decreasing times ``T = t_0 > t_1 > ... > t_steps = t0``, shape ``(steps + 1,)``, float64.

    ``spacing="log"`` (default) spaces the times geometrically: near ``t0`` the score grows like
    ``1 / sigma_t^2`` and the backward dynamics become stiff, so steps must shrink with ``t``.
    ``"uniform"`` spaces them evenly (DDPM-style).
    """
    steps = positive_int("steps", steps)
    if spacing not in SPACINGS:
        raise ValueError(f"spacing must be one of {', '.join(SPACINGS)}, got {spacing!r}")
    T = schedule.T if T is None else real_in("T", T, 0.0, schedule.T, low_open=True)
    t0 = real_in("t0", t0, 0.0, T, low_open=True, high_open=True)
    if spacing == "uniform":
        return torch.linspace(T, t0, steps + 1, dtype=torch.float64)
    return torch.logspace(torch.log10(torch.tensor(T)), torch.log10(torch.tensor(t0)), steps + 1, dtype=torch.float64)


def sample(
    score: ScoreFn,
    x_T: torch.Tensor,
    schedule: Schedule,
    steps: int,
    t0: float,
    method: str = "heun",
    T: float | None = None,
    spacing: str = "log",
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> torch.Tensor:
    """Integrate the backward process from ``x_T`` at time ``T`` to time ``t0``.

    Args:
        score: ``score(x, t) -> (batch, N, d)``, with ``t: (batch,)`` in the dtype of ``x``.
        x_T: starting points ``(batch, N, d)``; usually standard normal (see :func:`prior`).
        schedule: the forward schedule the score belongs to.
        steps: number of steps (Heun uses two score evaluations per step).
        t0: early-stopping time, ``0 < t0 < T``.
        method: ``"euler"`` or ``"heun"`` (probability-flow ODE) or ``"em"`` (reverse SDE).
        T: start time, default ``schedule.T``.
        spacing: time grid, ``"log"`` (geometric, default) or ``"uniform"``; see :func:`time_grid`.
        generator: random source for ``"em"``.
        progress: show a ``tqdm`` progress bar.

    Returns:
        ``(batch, N, d)`` samples at time ``t0``, in the dtype of ``x_T``.
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    x = finite_tensor("x_T", x_T)
    if x.dim() != 3:
        raise ValueError(f"x_T must have shape (batch, N, d), got {tuple(x.shape)}")
    ts = time_grid(schedule, steps, t0, T, spacing)
    B = x.shape[0]

    def drift(y: torch.Tensor, t: float, sde: bool) -> torch.Tensor:
        tb = torch.full((B,), t, dtype=y.dtype, device=y.device)
        beta = float(schedule.beta(torch.tensor(t, dtype=torch.float64)))
        s = score(y, tb)
        return -0.5 * beta * (y + (2.0 if sde else 1.0) * s)

    for k in tqdm(range(steps), desc=f"sampling ({method})", disable=not progress, leave=False):
        t, t_next = float(ts[k]), float(ts[k + 1])
        h = t_next - t  # negative
        if method == "em":
            beta = float(schedule.beta(torch.tensor(t, dtype=torch.float64)))
            z = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)
            x = x + h * drift(x, t, sde=True) + (beta * -h) ** 0.5 * z
        elif method == "euler":
            x = x + h * drift(x, t, sde=False)
        else:
            f0 = drift(x, t, sde=False)
            x_pred = x + h * f0
            x = x + 0.5 * h * (f0 + drift(x_pred, t_next, sde=False))
    return x


def prior(n: int, N: int, d: int, generator: torch.Generator | None = None, dtype=torch.float64) -> torch.Tensor:
    """Standard normal starting points ``(n, N, d)`` for the backward process."""
    return torch.randn(
        positive_int("n", n), positive_int("N", N), positive_int("d", d), generator=generator, dtype=dtype
    )


def generate(
    model: Denoiser,
    n: int,
    schedule: Schedule | None = None,
    steps: int = 50,
    t0: float = 1e-3,
    method: str = "heun",
    seed: int = 0,
    batch_size: int = 1000,
    precision: str = "fp32",
    progress: bool = True,
    score: ScoreFn | None = None,
    on_chunk: Callable[[torch.Tensor], None] | None = None,
) -> torch.Tensor:
    """Draw ``n`` sequences from a trained network with :func:`sample`, ``(n, N, d)`` float32 (CPU).

    The backward process of the model's schedule runs from ``T`` to ``t0`` with the model's score
    ``-eps_hat / sigma_t``, in chunks of ``batch_size``, starting from seeded standard normal noise
    (:func:`prior`), so the samples do not depend on ``batch_size``.

    Args:
        model: a :class:`~gptheory.denoiser.Denoiser` (DiT or UNet; sampled on the device its weights are on).
        precision: ``"fp32"``, ``"bf16"`` or ``"auto"`` (see :func:`gptheory.profiles.autocast_dtype`).
        score: use this ``score(x, t)`` instead of the model's (e.g. one that records something on the way;
            ``precision`` then does not apply).
        on_chunk: called with each chunk's finished samples ``(chunk, N, d)`` (on the model's device) once its
            backward process has reached ``t0`` and before the next chunk starts: the place to close per-chunk
            records, see :func:`gptheory.attention.generate_with_attention`.
    """
    schedule = model.check_schedule(schedule)
    n, batch_size = positive_int("n", n), positive_int("batch_size", batch_size)
    dev = next(model.parameters()).device
    autocast = autocast_dtype(precision, dev)
    model.eval()
    fn = model.score_fn(schedule, autocast=autocast) if score is None else score
    g = torch.Generator().manual_seed(int(seed))
    x_T = prior(n, model.N, model.d, generator=g, dtype=torch.float32)
    out = []
    for chunk in tqdm(x_T.split(batch_size), desc="generating", disable=not progress, leave=False):
        x = sample(fn, chunk.to(dev), schedule, steps, t0, method=method, progress=False)
        if on_chunk is not None:
            on_chunk(x)
        out.append(x.cpu())
    return torch.cat(out)
