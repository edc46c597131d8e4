"""A conditional DiT: the diffusion transformer given some frames of a sequence, learning the conditional score of
the others (imputation and forecasting).

The network is the :class:`~gptheory.dit.DiT` with one change at its input, as CSDI and the imputation DiTs do it:
token ``i`` embeds three things side by side, ``[x_t,i (1 - m_i) ; x_obs,i m_i ; m_i]`` (``3 d`` numbers), the noisy
frame where it is missing, the clean observed frame where it is observed, and the mask. Its attention then relates
every missing frame to every observed one, which is what the conditioning formula does: the posterior mean is a
kernel-weighted combination of the observed frames (:class:`gptheory.conditional.Conditional`). Everything after the
input embedding, and the meaning of the output (``eps`` or ``v``, :class:`gptheory.denoiser.Denoiser`), is the DiT's.

Conventions: ``x: (batch, N, d)`` the noisy sequence (read at the missing entries), ``x_obs: (batch, N, d)`` the
clean one (read at the observed entries), ``observed: (batch, N, d)`` or ``(batch, N)`` or ``(N,)`` bool, ``True``
where observed. The output is ``(batch, N, d)``; only its missing entries mean anything, and the training loss
(:class:`gptheory.objectives.MaskedDenoising`) reads only those.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .dit import DiT
from .schedules import Schedule

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


class ConditionalDiT(DiT):
    """The DiT given observed frames and their mask (see the module's note); arguments as :class:`~gptheory.dit.DiT`.

    Call it as ``model(x, t, x_obs, observed)``; ``model(x, t)`` alone is an error (a conditional network needs what
    it is conditioned on).
    """

    ARCH = "conditional-dit"

    def __init__(self, N: int, d: int, **kwargs) -> None:
        super().__init__(N, d, **kwargs)
        self.x_embed = nn.Linear(3 * self.d, self.data_dim)  # [noisy missing ; clean observed ; mask]
        self.reset_parameters()

    def config(self) -> dict:
        """Constructor arguments with ``arch`` (:func:`gptheory.denoiser.from_config` rebuilds it)."""
        return {"arch": self.ARCH, **super().config()}

    def entries(self, observed: torch.Tensor, batch: int) -> torch.Tensor:
        """``observed`` as ``(batch, N, d)`` bool; ``(N,)``, ``(batch, N)`` (frames) or ``(batch, N, d)`` (entries),
        a batch of 1 broadcast. A clear error for any other shape or type."""
        if not isinstance(observed, torch.Tensor) or observed.dtype != torch.bool:
            raise ValueError(f"observed must be a boolean tensor (True where observed), got {observed!r:.80}")
        shape, N, d = tuple(observed.shape), self.N, self.d
        m = observed
        if m.dim() == 1:
            m = m[None]
        if m.dim() == 2:
            m = m[:, :, None].expand(-1, -1, d)
        if m.dim() != 3 or m.shape[0] not in (1, batch) or tuple(m.shape[1:]) != (N, d):
            raise ValueError(
                f"observed must have shape (N,) = ({N},), (batch, N) = ({batch}, {N}) or (batch, N, d) = "
                f"({batch}, {N}, {d}), got {shape}"
            )
        return m.expand(batch, N, d)

    def forward(  # type: ignore[override]
        self,
        x: torch.Tensor,
        t: torch.Tensor | float,
        x_obs: torch.Tensor | None = None,
        observed: torch.Tensor | None = None,
        check: bool = True,
        raw: bool = False,
    ) -> torch.Tensor:
        """Noise prediction ``eps_hat: (batch, N, d)`` at the missing entries of ``x`` given ``x_obs`` where
        ``observed`` (see the module's note); ``check``, ``raw`` as in :meth:`gptheory.denoiser.Denoiser.forward`."""
        if x_obs is None or observed is None:
            raise ValueError("a ConditionalDiT needs x_obs and observed: model(x, t, x_obs, observed)")
        if check:
            x, t = self.check_inputs(x, t)
            if not isinstance(x_obs, torch.Tensor) or not x_obs.is_floating_point() or x_obs.shape != x.shape:
                got = tuple(x_obs.shape) if isinstance(x_obs, torch.Tensor) else type(x_obs).__name__
                raise ValueError(f"x_obs must be a floating-point tensor shaped as x, {tuple(x.shape)}, got {got}")
        m = self.entries(observed, x.shape[0])
        given = torch.where(m, x_obs.to(x.dtype), 0.0)  # only the observed entries are read
        if check and not torch.isfinite(given).all():
            raise ValueError("x_obs must be finite at the observed entries")
        keep = m.to(x.dtype)
        tokens = torch.cat([x * (1 - keep), given, keep], dim=-1)
        out = super().forward(tokens, t, check=False, raw=True)
        return self.eps_from_output(out, x, t, raw)

    def conditional_score_fn(
        self, x_obs: torch.Tensor, observed: torch.Tensor, schedule: Schedule | None = None
    ) -> ScoreFn:
        """The learned conditional score as a ``score(x, t)`` for :func:`gptheory.samplers.sample` over whole
        sequences, given ``x_obs: (batch, N, d)`` (or batch 1) where ``observed``.

        At the missing entries it is ``-eps_hat / sigma_t``; at the observed ones ``-x``, the score of a standard
        normal, so the probability-flow ODE leaves them where they start (as
        :meth:`gptheory.conditional.Conditional.score_fn` does): paste the observations back at the end.
        """
        schedule = self.check_schedule(schedule)
        x_obs = x_obs.to(next(self.parameters()).dtype)

        def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            m = self.entries(observed, x.shape[0])
            obs = x_obs.expand(x.shape[0], -1, -1) if x_obs.shape[0] == 1 else x_obs
            with torch.no_grad():
                sigma = schedule.sigma(t.to(torch.float64)).to(x.dtype)[:, None, None]
                s = -self(x, t, obs.to(x.device, x.dtype), m.to(x.device), check=False) / sigma
            return torch.where(m.to(x.device), -x, s)

        return fn


__all__ = ["ConditionalDiT"]
