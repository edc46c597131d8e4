"""One network for all diffusion times against one network per time: errors, Lemma 1's prediction and sizes.

:func:`compare_over_times` runs a network of :func:`~gptheory.construct.build_uniform_transformer` on a log-spaced
grid of times in ``[t0, T]``, next to per-time networks built at each grid time with the steps that time's own
``kappa_t`` asks for, and returns an :class:`OverTimes`. Inputs are draws from the diffused marginal ``p_t`` (the
distribution the ranges are sized for); the same draws go into every network at a given time.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from ..gp import DTYPE
from ..unroll import condition_number, predicted_steps, truncated_score
from ..validation import positive_int
from .builder import build_gd_transformer
from .network import GDTransformer
from .size import size_report


@dataclass(frozen=True)
class OverTimes:
    """The single network over ``[t0, T]`` beside per-time networks, at grid times ``times`` (``n`` of them).

    Attributes:
        times: ``(n,)`` diffusion times, log-spaced from ``t0`` to ``T``; kappa: ``kappa_t`` at each.
        eps: the target of Lemma 1; J, attention, mult_depth: the construction.
        steps: GD steps of the single network, ``predicted_steps(max_t kappa_t, eps)``; kappa_max: that maximum.
        steps_needed: ``(n,)`` ``predicted_steps(kappa_t, eps)``, the steps of the per-time network at each time.
        err, err_per_t: ``(n,)`` relative errors ``||s - s*|| / ||s*||`` to the exact score of the single network and
            of the per-time networks (each run at its own time).
        err_band, err_per_t_band: the same against the banded score ``s_bar*`` (the limit of gradient descent), the
            quantity Lemma 1 bounds.
        bound, bound_per_t: ``(n,)`` Lemma 1's bounds on those, ``(1 - 1/kappa_t)^steps`` and
            ``(1 - 1/kappa_t)^steps_needed``.
        band_error: ``(n,)`` ``||s_bar* - s*|| / ||s*||``, the error of the band alone (0 without a band).
        t_ref, err_ref: the per-time network of the middle grid time, run at every grid time (``(n,)`` errors to the
            exact score): what happens to a network used outside the time it was built for.
        size: :func:`size_report` of the single network; sizes_per_t: ``(n,)`` reports of the per-time networks.
    """

    times: tuple[float, ...]
    kappa: tuple[float, ...]
    eps: float
    J: int | None
    attention: str
    mult_depth: int | None
    steps: int
    kappa_max: float
    steps_needed: tuple[int, ...]
    err: tuple[float, ...]
    err_per_t: tuple[float, ...]
    err_band: tuple[float, ...]
    err_per_t_band: tuple[float, ...]
    bound: tuple[float, ...]
    bound_per_t: tuple[float, ...]
    band_error: tuple[float, ...]
    t_ref: float
    err_ref: tuple[float, ...]
    size: dict
    sizes_per_t: tuple[dict, ...]

    @property
    def wasted(self) -> tuple[int, ...]:
        """``(n,)`` GD steps the single network runs beyond what each time needs, ``steps - steps_needed``."""
        return tuple(self.steps - k for k in self.steps_needed)

    def largest_per_t(self, key: str = "params") -> dict:
        """The size report of the largest per-time network by ``key`` (a :func:`size_report` field)."""
        return max(self.sizes_per_t, key=lambda rep: rep[key])

    def smallest_per_t(self, key: str = "params") -> dict:
        """The size report of the smallest per-time network by ``key``."""
        return min(self.sizes_per_t, key=lambda rep: rep[key])


def compare_over_times(
    net: GDTransformer, n_times: int = 8, batch: int = 8, seed: int = 0, progress: bool = False
) -> OverTimes:
    """Run the single network ``net`` and one per-time network at each of ``n_times`` log-spaced times.

    Args:
        net: a network of :func:`build_uniform_transformer` (its ``config`` gives the process, the interval
            ``[t0, T]``, ``eps`` and the construction, which the per-time networks share).
        n_times: grid times, ``>= 2`` (``t0`` and ``T`` included).
        batch: noisy sequences ``x ~ p_t`` per time, drawn from ``seed``.
        progress: show a progress bar over the times.

    Returns:
        an :class:`OverTimes`.
    """
    if not isinstance(net, GDTransformer) or "kappa_max" not in net.config:
        raise ValueError(f"net must be a GDTransformer from build_uniform_transformer, got {type(net).__name__}")
    n_times = positive_int("n_times", n_times)
    if n_times < 2:
        raise ValueError(f"n_times must be an integer >= 2 (both ends of [t0, T]), got {n_times}")
    batch = positive_int("batch", batch)
    gp, schedule, cfg = net.gp, net.schedule, net.config
    (t0, T), eps, J = cfg["t_interval"], cfg["eps"], cfg["J"]
    opts = {key: cfg[key] for key in ("J", "attention", "mult_depth", "n_std", "n_freq", "omega")}
    times = torch.logspace(math.log10(t0), math.log10(T), n_times, dtype=DTYPE)
    times[0], times[-1] = t0, T  # exactly the ends, not their round trip through log10
    kappa = [float(k) for k in condition_number(gp, times, schedule, J)]
    needed = [predicted_steps(k, eps) for k in kappa]
    per_t = [build_gd_transformer(gp, float(t), schedule, k, **opts) for t, k in zip(times, needed, strict=True)]
    ref = n_times // 2
    gen = torch.Generator().manual_seed(seed)

    def rel(a: torch.Tensor, b: torch.Tensor) -> float:
        return float((a - b).norm() / b.norm())

    rows = []
    for i in tqdm(range(n_times), desc="times", disable=not progress):
        t = float(times[i])
        x = schedule.add_noise(gp.sample(batch, generator=gen), t, generator=gen)
        exact, band = gp.score(x, t, schedule), truncated_score(gp, x, t, schedule, J)
        out, out_t, out_ref = net(x, t), per_t[i](x), per_t[ref](x, t)
        rows.append((rel(out, exact), rel(out_t, exact), rel(out, band), rel(out_t, band), rel(band, exact),
                     rel(out_ref, exact)))  # fmt: skip
    cols = tuple(zip(*rows, strict=True))
    steps = cfg["steps"]
    return OverTimes(
        times=tuple(float(t) for t in times),
        kappa=tuple(kappa),
        eps=eps,
        J=J,
        attention=cfg["attention"],
        mult_depth=cfg["mult_depth"],
        steps=steps,
        kappa_max=cfg["kappa_max"],
        steps_needed=tuple(needed),
        err=cols[0],
        err_per_t=cols[1],
        err_band=cols[2],
        err_per_t_band=cols[3],
        bound=tuple((1 - 1 / k) ** steps for k in kappa),
        bound_per_t=tuple((1 - 1 / k) ** n for k, n in zip(kappa, needed, strict=True)),
        band_error=cols[4],
        t_ref=float(times[ref]),
        err_ref=cols[5],
        size=size_report(net),
        sizes_per_t=tuple(size_report(m) for m in per_t),
    )
