"""Variance-preserving noise schedules: the pair ``(alpha_t, sigma_t)`` and the rate ``beta(t)``.

A forward process ``X_t | X_0 ~ N(alpha_t X_0, sigma_t^2 I)`` with ``alpha_t^2 + sigma_t^2 = 1`` is
the solution of ``dX_t = -1/2 beta(t) X_t dt + sqrt(beta(t)) dW_t``, where
``beta(t) = -2 d/dt log alpha_t``. Everything the samplers and the exact score need is ``log_alpha``
and ``beta``; ``alpha`` and ``sigma`` follow.

Two schedules:

* :class:`OUSchedule` -- the theory's Ornstein-Uhlenbeck process, ``beta = 1``,
  ``alpha_t = exp(-t/2)``, ``sigma_t^2 = 1 - exp(-t)``, on ``t in [0, T]``.
* :class:`DDPMSchedule` -- DiT's discrete schedule (``K = 1000`` steps, ``beta_k`` linear from
  1e-4 to 0.02, ``alphabar_k = prod_{i<=k} (1 - beta_i)``) on continuous ``t in [0, 1]``:
  ``t = k / K`` hits ``alphabar_k`` exactly and ``log alphabar`` is linear in between, with
  ``alphabar = 1`` at ``t = 0``.
"""

from __future__ import annotations

import math

import torch

from .validation import positive_int, real_in

TimeLike = float | torch.Tensor


def _as_time(t: TimeLike) -> torch.Tensor:
    if isinstance(t, torch.Tensor):
        return t if t.is_floating_point() else t.to(torch.float64)
    return torch.tensor(float(t), dtype=torch.float64)


class Schedule:
    """Base class: subclasses define ``T``, :meth:`log_alpha` and :meth:`beta`.

    All methods take ``t`` as a float or a tensor of any shape and return a tensor of that shape
    (float64 for a float input, the input's dtype otherwise).
    """

    T: float = 1.0

    def log_alpha(self, t: TimeLike) -> torch.Tensor:
        raise NotImplementedError

    def beta(self, t: TimeLike) -> torch.Tensor:
        raise NotImplementedError

    def alpha(self, t: TimeLike) -> torch.Tensor:
        """Signal scale ``alpha_t``."""
        return torch.exp(self.log_alpha(t))

    def sigma(self, t: TimeLike) -> torch.Tensor:
        """Noise scale ``sigma_t = sqrt(1 - alpha_t^2)`` (variance preserving)."""
        return torch.sqrt(-torch.expm1(2.0 * self.log_alpha(t)))

    def check_t(self, t: TimeLike, name: str = "t", include_zero: bool = True) -> torch.Tensor:
        """Return ``t`` as a tensor after checking that every entry lies in ``[0, T]``.

        With ``include_zero=False`` the range is ``(0, T]`` (the score is undefined at ``t = 0``
        when the data covariance is singular, and ``sigma_0 = 0``).
        """
        tt = _as_time(t)
        lo = "[0" if include_zero else "(0"
        rng = f"{lo}, {self.T:g}]"
        if not torch.isfinite(tt).all():
            raise ValueError(f"{name} must be finite and in {rng}, got non-finite values")
        low_bad = (tt < 0) if include_zero else (tt <= 0)
        if low_bad.any() or (tt > self.T * (1 + 1e-12)).any():
            shown = tt.item() if tt.numel() == 1 else f"values in [{tt.min().item():g}, {tt.max().item():g}]"
            raise ValueError(f"{name} must be in {rng} for {type(self).__name__}, got {shown}")
        return tt

    def config(self) -> dict:
        """Name and arguments that rebuild this schedule with :func:`from_config` (stored in checkpoints)."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(T={self.T:g})"


class OUSchedule(Schedule):
    """The Ornstein-Uhlenbeck forward process of the theory: ``alpha_t = exp(-t/2)``.

    Args:
        T: terminal time (dimensionless). ``alpha_T = exp(-T/2)``; the default ``T = 10`` leaves
            a signal fraction below 0.7 %.
    """

    def __init__(self, T: float = 10.0) -> None:
        self.T = real_in("T", T, 0.0, math.inf, low_open=True, high_open=True)

    def config(self) -> dict:
        return {"name": "ou", "T": self.T}

    def log_alpha(self, t: TimeLike) -> torch.Tensor:
        return -0.5 * _as_time(t)

    def beta(self, t: TimeLike) -> torch.Tensor:
        return torch.ones_like(_as_time(t))


class DDPMSchedule(Schedule):
    """DiT's linear-beta schedule on continuous time ``t in [0, 1]`` (``T = 1``).

    Args:
        num_steps: number of discrete steps ``K`` (DiT: 1000).
        beta_start, beta_end: the first and last per-step ``beta_k`` (DiT: 1e-4 and 0.02).

    ``alpha(k / K) ** 2`` equals DiT's ``alphas_cumprod[k - 1]`` for ``k = 1..K``.
    """

    def __init__(self, num_steps: int = 1000, beta_start: float = 1e-4, beta_end: float = 0.02) -> None:
        self.K = positive_int("num_steps", num_steps)
        b0 = real_in("beta_start", beta_start, 0.0, 1.0, low_open=True, high_open=True)
        b1 = real_in("beta_end", beta_end, 0.0, 1.0, low_open=True, high_open=True)
        self.T = 1.0
        self.beta_start, self.beta_end = b0, b1
        self.betas = torch.linspace(b0, b1, self.K, dtype=torch.float64)
        # log alphabar at t = k/K for k = 0..K (k = 0 is clean data)
        self._log_abar = torch.cat([torch.zeros(1, dtype=torch.float64), torch.cumsum(torch.log1p(-self.betas), 0)])

    def _interp(self, t: TimeLike) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        tt = _as_time(t)
        s = (tt.to(torch.float64) * self.K).clamp(0, self.K)
        k = s.floor().clamp(max=self.K - 1).long()
        return tt, s - k, k

    def log_alpha(self, t: TimeLike) -> torch.Tensor:
        tt, frac, k = self._interp(t)
        la = self._log_abar.to(tt.device)
        lab = la[k] + frac * (la[k + 1] - la[k])
        return (0.5 * lab).to(tt.dtype)

    def beta(self, t: TimeLike) -> torch.Tensor:
        # -2 d/dt log alpha = -d/dt log alphabar, constant on each step
        tt, _, k = self._interp(t)
        return (-self.K * torch.log1p(-self.betas.to(tt.device)[k])).to(tt.dtype)

    def config(self) -> dict:
        return {"name": "ddpm", "num_steps": self.K, "beta_start": self.beta_start, "beta_end": self.beta_end}

    def __repr__(self) -> str:
        return f"DDPMSchedule(num_steps={self.K})"


SCHEDULES = {"ou": OUSchedule, "ddpm": DDPMSchedule}


def from_config(config: dict) -> Schedule:
    """The schedule described by ``config`` (``{"name": "ou" | "ddpm", **arguments}``, see ``Schedule.config``)."""
    if not isinstance(config, dict) or config.get("name") not in SCHEDULES:
        raise ValueError(f"schedule config must be a dict with name in {', '.join(SCHEDULES)}, got {config!r}")
    kwargs = {k: v for k, v in config.items() if k != "name"}
    return SCHEDULES[config["name"]](**kwargs)
