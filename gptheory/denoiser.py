"""What every score network of the package shares: :class:`Denoiser`, the base of the DiT and the UNets.

A denoiser maps noisy sequences ``x_t: (batch, N, d)`` at diffusion times ``t: (batch,)`` in ``[0, T]`` to the
noise prediction ``eps_hat(x_t, t): (batch, N, d)`` for the forward process ``x_t = alpha_t x_0 + sigma_t eps`` of
its schedule; its score is ``-eps_hat / sigma_t``. What the network itself outputs (``F``, "raw") is chosen by
``prediction``:

* ``"eps"``: ``F`` is ``eps_hat``;
* ``"v"`` (Salimans and Ho): ``F`` estimates ``v = alpha_t eps - sigma_t x_0``, and
  ``eps_hat = sigma_t x_t + alpha_t F``.

The trainer compares ``F`` with :meth:`Denoiser.target`. A subclass builds its layers and implements
:meth:`Denoiser.network` (``x`` in the weights' dtype to ``F``); this class checks inputs, casts, converts ``F`` to
``eps_hat`` and gives the score. :func:`model_class` and :func:`from_config` find an architecture by the ``"arch"``
key of a stored config (a config without one is a DiT's, as in checkpoints written before the key existed).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

import torch
from torch import nn

from .schedules import DDPMSchedule, Schedule
from .schedules import from_config as schedule_from_config
from .validation import halvings, nonneg_int, odd_int, one_of, positive_int, real_in

PREDICTIONS = ("eps", "v")
# architecture name -> (module, class); imported on demand (the classes import this module)
ARCHS = {
    "dit": ("gptheory.dit", "DiT"),
    "unet": ("gptheory.unet", "UNet1D"),
    "diffusers-unet": ("gptheory.diffusers_unet", "DiffusersUNet1D"),
    "conditional-dit": ("gptheory.conditional_dit", "ConditionalDiT"),  # given observed frames (imputation)
}
TRANSFORMERS = ("dit", "conditional-dit")  # built from the DiT's arguments themselves, not matched in size


class Denoiser(nn.Module):
    """Base class of the noise-predicting networks on sequences ``x: (batch, N, d)``.

    Args:
        N: sequence length (frames).
        d: frame dimension.
        prediction: what the network outputs, ``"eps"`` (the noise) or ``"v"`` (``alpha_t eps - sigma_t x_0``);
            :meth:`forward` returns the noise prediction either way.
        schedule: the forward process ``(alpha_t, sigma_t)`` on ``[0, T]`` (a :class:`Schedule` or its ``config()``
            dict; default :class:`~gptheory.schedules.DDPMSchedule`).

    Subclasses set ``ARCH`` (the name stored in configs, ``"dit"`` for the DiT, whose config leaves it out) and
    implement :meth:`network` and :meth:`config`.
    """

    ARCH = ""

    def __init__(self, N: int, d: int, prediction: str = "eps", schedule: Schedule | dict | None = None) -> None:
        super().__init__()
        self.N = positive_int("N", N)
        self.d = positive_int("d", d)
        self.prediction = one_of("prediction", prediction, PREDICTIONS)
        if schedule is None:
            schedule = DDPMSchedule()
        elif isinstance(schedule, dict):
            schedule = schedule_from_config(schedule)
        elif not isinstance(schedule, Schedule):
            raise ValueError(f"schedule must be a gptheory Schedule or its config dict, got {schedule!r:.80}")
        self.schedule = schedule
        self.T = schedule.T

    def config(self) -> dict:
        """Constructor arguments, enough to rebuild the model (stored in checkpoints)."""
        raise NotImplementedError

    def network(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The raw output ``F: (batch, N, d)`` for ``x: (batch, N, d)`` in the weights' dtype and ``t: (batch,)``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ checks
    def check_inputs(self, x: object, t: object) -> tuple[torch.Tensor, torch.Tensor]:
        """Validate ``x: (batch, N, d)`` and ``t`` (a float or ``(batch,)``); return both as tensors.

        Raises ``ValueError`` naming the parameter, what it got and what is valid.
        """
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise ValueError(f"x must be a floating-point tensor of shape (batch, {self.N}, {self.d}), got {x!r:.80}")
        if x.dim() != 3 or x.shape[0] < 1:
            raise ValueError(f"x must have shape (batch, N={self.N}, d={self.d}), got {tuple(x.shape)}")
        if x.shape[1] != self.N:
            raise ValueError(f"x has sequence length N={x.shape[1]}, but this model takes N={self.N} frames")
        if x.shape[2] != self.d:
            raise ValueError(f"x has frame dimension d={x.shape[2]}, but this model takes d={self.d}")
        if not torch.isfinite(x).all():
            bad = int((~torch.isfinite(x)).sum())
            raise ValueError(f"x must be finite, got {bad} non-finite entries (NaN or inf)")
        if not isinstance(t, torch.Tensor):
            t = torch.tensor(real_in("t", t, 0.0, self.T), dtype=x.dtype, device=x.device)
        return x, self.schedule.check_t(t, batch=x.shape[0]).to(device=x.device)

    def check_schedule(self, schedule: Schedule | None) -> Schedule:
        """``schedule``, or the model's own when ``None``; a different schedule is an error."""
        if schedule is None:
            return self.schedule
        if not isinstance(schedule, Schedule) or schedule.config() != self.schedule.config():
            raise ValueError(f"schedule {schedule!r} differs from the model's {self.schedule!r}; pass the model's")
        return schedule

    # ------------------------------------------------------------------ forward
    def forward(self, x: torch.Tensor, t: torch.Tensor | float, check: bool = True, raw: bool = False) -> torch.Tensor:
        """Noise prediction ``eps_hat: (batch, N, d)`` for ``x: (batch, N, d)`` at times ``t: (batch,)``.

        Args:
            x: noisy sequences ``x_t``; cast to the model's dtype, the output is cast back.
            t: diffusion times in ``[0, T]`` (a float is broadcast over the batch).
            check: validate the inputs (``False`` on the training path, where data are checked once).
            raw: return the network output ``F`` itself (``eps_hat`` or the ``v`` estimate, see ``prediction``),
                the quantity the training loss compares with :meth:`target`.
        """
        if check:
            x, t = self.check_inputs(x, t)
        in_dtype = x.dtype
        x = x.to(next(self.parameters()).dtype)
        return self.eps_from_output(self.network(x, t).to(in_dtype), x, t, raw)

    def eps_from_output(self, out: torch.Tensor, x: torch.Tensor, t: torch.Tensor, raw: bool = False) -> torch.Tensor:
        """The noise prediction from the raw output ``out: (batch, N, d)`` (in the output dtype) at ``x, t``.

        ``eps_hat = sigma_t x_t + alpha_t out`` for ``prediction="v"``, ``out`` itself for ``"eps"`` or when ``raw``.
        """
        if self.prediction == "v" and not raw:
            alpha, sigma = self._alpha_sigma(t, out.dtype)
            out = torch.addcmul(sigma * x.to(out.dtype), alpha, out)
        return out

    def _alpha_sigma(self, t: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        """``alpha_t, sigma_t`` of the model's schedule as ``(batch, 1, 1)`` tensors (computed in float64)."""
        t64 = t.to(torch.float64)
        return (
            self.schedule.alpha(t64).to(dtype)[:, None, None],
            self.schedule.sigma(t64).to(dtype)[:, None, None],
        )

    def target(self, x0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """What the raw network output should be for ``x_t = alpha_t x0 + sigma_t eps``: ``eps`` or ``v``.

        ``x0, eps: (batch, N, d)``, ``t: (batch,)``; ``v = alpha_t eps - sigma_t x0``.
        """
        if self.prediction == "eps":
            return eps
        alpha, sigma = self._alpha_sigma(t, eps.dtype)
        return alpha * eps - sigma * x0

    # ------------------------------------------------------------------ score
    def score(self, x: torch.Tensor, t: torch.Tensor | float, schedule: Schedule | None = None) -> torch.Tensor:
        """Score estimate ``s(x, t) = -eps_hat(x, t) / sigma_t``, ``(batch, N, d)``, in the dtype of ``x``.

        ``schedule`` defaults to the model's (another one is an error).
        """
        schedule = self.check_schedule(schedule)
        x, t = self.check_inputs(x, t)
        schedule.check_t(t, include_zero=False)
        sigma = schedule.sigma(t.to(torch.float64)).to(x.dtype)
        return -self(x, t, check=False) / sigma[:, None, None]

    def score_fn(
        self, schedule: Schedule | None = None, autocast: torch.dtype | None = None
    ) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
        """A ``score(x, t)`` closure for :func:`gptheory.samplers.sample` (no gradients, optional autocast)."""
        schedule = self.check_schedule(schedule)

        def fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            with torch.no_grad(), torch.autocast(x.device.type, dtype=autocast, enabled=autocast is not None):
                return self.score(x, t, schedule)

        return fn

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.config().items())


def count_parameters(cls: type[nn.Module], *args, **kwargs) -> int:
    """Number of parameters of ``cls(*args, **kwargs)``, built on the meta device (no memory, no RNG draws)."""
    with torch.random.fork_rng(devices=[]), torch.device("meta"):
        return sum(p.numel() for p in cls(*args, **kwargs).parameters())


def model_class(arch: str) -> type[Denoiser]:
    """The :class:`Denoiser` subclass named ``arch`` (one of ``ARCHS``)."""
    module, name = ARCHS[one_of("arch", arch, ARCHS)]
    return getattr(importlib.import_module(module), name)


def from_config(config: dict) -> Denoiser:
    """Rebuild a network from its ``config()`` dict (a DiT when the dict has no ``"arch"`` key)."""
    kwargs = dict(config)
    return model_class(kwargs.pop("arch", "dit"))(**kwargs)


# the UNets' shape arguments and the value each takes for the networks they do not apply to
SHAPE_DEFAULTS = {"kernel_size": 3, "levels": 2}
_UNUSED = {
    "dit": ("kernel_size", "levels"),
    "conditional-dit": ("kernel_size", "levels"),
    "diffusers-unet": ("kernel_size",),
    "unet": (),
}


def check_arch(arch: str = "dit", kernel_size: int = 3, levels: int = 2, N: int | None = None) -> None:
    """The rules of a network's architecture and shape arguments, in one place (:func:`build_model` and
    :class:`gptheory.config.ModelConfig` both call this): ``arch`` one of :data:`ARCHS`; ``kernel_size`` odd and
    ``levels >= 0``, each left at its default where it does not apply (the DiT has no convolutions, diffusers' blocks
    have a fixed 5 taps); with ``N`` given, a UNet's ``N`` frames must halve ``levels`` times."""
    one_of("arch", arch, ARCHS)
    odd_int("kernel_size", kernel_size)
    nonneg_int("levels", levels)
    for name in _UNUSED[arch]:
        value = {"kernel_size": kernel_size, "levels": levels}[name]
        if value != SHAPE_DEFAULTS[name]:
            raise ValueError(
                f"{name}={value} does not apply to arch={arch!r} (kernel_size and levels apply to the UNets: the DiT "
                f"has no convolutions; diffusers' blocks have a fixed 5 taps); leave it at {SHAPE_DEFAULTS[name]}"
            )
    if N is not None and arch not in TRANSFORMERS:
        halvings(N, levels)


def build_model(seed: int = 0, arch: str = "dit", kernel_size: int = 3, levels: int = 2, **model_kwargs) -> Denoiser:
    """A network initialised from ``seed`` without touching the global RNG (the fields of a ``ModelConfig``).

    ``arch="dit"`` / ``"conditional-dit"``: ``DiT(**model_kwargs)`` / ``ConditionalDiT(**model_kwargs)``.
    ``arch="unet"`` / ``"diffusers-unet"``: the
    :class:`~gptheory.unet.UNet1D` / :class:`~gptheory.diffusers_unet.DiffusersUNet1D` with ``levels`` (and
    ``kernel_size``) whose parameter count is closest to that of the DiT ``model_kwargs`` describe (within 10%, else
    ``ValueError``), with the same ``N``, ``d``, ``prediction`` and ``schedule``.
    """
    check_arch(arch, kernel_size, levels)
    if arch in TRANSFORMERS:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return model_class(arch)(**model_kwargs)
    cls = model_class(arch)
    n_params = count_parameters(model_class("dit"), **model_kwargs)
    same = {k: model_kwargs[k] for k in ("N", "d", "schedule") if k in model_kwargs}
    same["prediction"] = model_kwargs.get("prediction", "eps")  # the DiT's default
    shape = {"levels": levels} | ({"kernel_size": kernel_size} if arch == "unet" else {})
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return cls.matched(n_params=n_params, **same, **shape)


__all__ = [
    "ARCHS",
    "Denoiser",
    "PREDICTIONS",
    "SHAPE_DEFAULTS",
    "TRANSFORMERS",
    "build_model",
    "check_arch",
    "count_parameters",
    "from_config",
    "model_class",
]
