"""One network for every diffusion time: Theorem 1 as stated, over the whole interval ``[t0, T]``.

:func:`~gptheory.construct.build_gd_transformer` takes the diffusion time as an input (the embedding writes
``alpha_t, alpha_t^2, sigma_t^2, eta_t`` into every token), so the only things that tie a network to one time are
its depth (the number of GD steps, set by ``kappa_t``) and its ranges (multiplication and clipping bounds). Here both
are sized for the worst time of the interval:

* **depth** -- :func:`worst_condition_number` finds ``max kappa_t`` over ``[t0, T]``, and Lemma 1's step count
  :func:`gptheory.unroll.predicted_steps` for it gives every time of the interval the contraction
  ``(1 - 1/kappa_t)^steps <= eps``;
* **ranges** -- :func:`gptheory.construct.builder.ranges_over` takes the larger of the end points' ranges.

:func:`build_uniform_transformer` returns that network. How it fares against one network per time is measured by
:func:`gptheory.construct.over_times.compare_over_times`.
"""

from __future__ import annotations

import math

import torch

from ..gp import DTYPE, GaussianProcess
from ..schedules import Schedule
from ..unroll import condition_number, predicted_steps
from ..validation import real_in
from .builder import build_gd_transformer
from .network import GDTransformer


def check_interval(schedule: Schedule, t0: float, T: float | None) -> tuple[float, float]:
    """Validated ``(t0, T)`` with ``0 < t0 < T <= schedule.T`` (``T=None`` is the schedule's terminal time)."""
    if not isinstance(schedule, Schedule):
        raise ValueError(f"schedule must be a Schedule (e.g. OUSchedule()), got {type(schedule).__name__}")
    T = schedule.T if T is None else real_in("T", T, 0.0, schedule.T, low_open=True)
    t0 = real_in("t0", t0, 0.0, T, low_open=True, high_open=True)
    return t0, T


def worst_condition_number(
    gp: GaussianProcess, t0: float, T: float, schedule: Schedule, J: int | None = None
) -> tuple[float, float]:
    """``(kappa_max, t_worst)``: the largest ``kappa_t`` over ``[t0, T]`` and a time where it is attained.

    With ``a = alpha_t^2`` and ``sigma_t^2 = 1 - a`` (variance preserving), and ``lam_min <= lam_max`` the extreme
    eigenvalues of ``Gamma_bar (x) Sigma``,

        kappa(a) = (1 + a (lam_max - 1)) / (1 + a (lam_min - 1)),
        d kappa / d a = (lam_max - lam_min) / (1 + a (lam_min - 1))^2 >= 0,

    so ``kappa_t`` grows with ``alpha_t^2`` and, ``alpha_t`` being monotone in ``t``, is largest at an end of the
    interval: at ``t0`` for every schedule whose signal decays. ``inf`` when the band makes the objective non-convex
    there.
    """
    t0, T = check_interval(schedule, t0, T)
    ends = torch.tensor([t0, T], dtype=DTYPE)
    kappa = condition_number(gp, ends, schedule, J)
    k = int(torch.argmax(kappa))
    return float(kappa[k]), float(ends[k])


def build_uniform_transformer(
    gp: GaussianProcess,
    t0: float,
    schedule: Schedule,
    eps: float,
    J: int | None = None,
    T: float | None = None,
    attention: str = "relu",
    mult_depth: int | None = None,
    n_std: float = 6.0,
    n_freq: int = 4,
    omega: float | None = None,
    clip: bool = True,
) -> GDTransformer:
    """One transformer for every diffusion time ``t in [t0, T]``, as Theorem 1 states it.

    The number of GD steps is Lemma 1's count for the worst condition number of the interval,
    ``predicted_steps(kappa_max, eps)``, so that ``(1 - 1/kappa_t)^steps <= eps`` at every ``t`` in it; the
    multiplication and clipping ranges hold at every ``t`` in it (``t_end`` of :func:`build_gd_transformer`). Run it
    as ``net(x, t)`` with ``x: (batch, N, d)`` and ``t`` a float or a ``(batch,)`` tensor in ``[t0, T]``.

    Args:
        gp: the Gaussian process.
        t0: the earliest diffusion time served, in ``(0, T)``.
        schedule: the forward process.
        eps: target relative error of gradient descent towards the (banded) score, in ``(0, 1)``.
        J: band of the temporal kernel (``None``: the whole kernel).
        T: the latest diffusion time served, in ``(t0, schedule.T]``; default ``schedule.T``.
        attention, mult_depth, n_std, n_freq, omega, clip: as in :func:`build_gd_transformer`.

    Returns:
        a :class:`GDTransformer` whose ``config`` also records ``t_interval = (t0, T)``, ``kappa_max``, ``t_worst``
        (where ``kappa_max`` is attained) and ``eps``. With ``mult_depth=None`` its output ``s`` satisfies
        ``||s - s_bar*|| <= (1 - 1/kappa_t)^steps ||s_bar*|| <= eps ||s_bar*||`` at every ``t`` in ``[t0, T]``, for
        inputs whose banded score ``s_bar*`` lies inside the clipping range.

    Raises:
        ValueError: ``t0``, ``T`` or ``eps`` out of range, a band that makes the objective non-convex somewhere in
            ``[t0, T]``, or any error of :func:`build_gd_transformer`.
    """
    t0, T = check_interval(schedule, t0, T)
    eps = real_in("eps", eps, 0.0, 1.0, low_open=True, high_open=True)
    kappa_max, t_worst = worst_condition_number(gp, t0, T, schedule, J)
    if not math.isfinite(kappa_max):
        raise ValueError(
            f"the objective is not convex at t={t_worst:g} with J={J} (kappa_t = inf): alpha_t^2 Gamma_bar (x) Sigma "
            f"+ sigma_t^2 I is not positive definite there; take a larger band J or a larger t0"
        )
    steps = predicted_steps(kappa_max, eps)
    net = build_gd_transformer(
        gp, t0, schedule, steps, J=J, attention=attention, mult_depth=mult_depth, n_freq=n_freq, omega=omega,
        n_std=n_std, clip=clip, t_end=T,
    )  # fmt: skip
    net.config.update({"kappa_max": kappa_max, "t_worst": t_worst, "eps": eps})
    return net
