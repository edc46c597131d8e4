"""A library peer of :class:`gptheory.unet.UNet1D`: diffusers' ``UNet1DModel`` as a ``Denoiser``.

diffusers' default ``UNet1DModel`` (the Dance Diffusion audio layout) mixes self-attention blocks
(``AttnDownBlock1D``, ``UNetMidBlock1D``, ``AttnUpBlock1D``) into its convolutions and concatenates the time features
to the input (hence its ``extra_in_channels``), so it is not the attention-free network the comparison needs. Its
other layout, the one of Janner et al.'s "Planning with Diffusion" (``diffuser``; the ``UNet1DModel`` of diffusers'
value-guided RL pipeline), is attention-free and conditions every block on the diffusion time, and is used here:

* ``levels + 1`` ``DownResnetBlock1D`` (``layers_per_block=1``: two ``ResidualTemporalBlock1D`` each, the last block
  without down-sampling; down-sampling is a stride-2 convolution), ``MidResTemporalBlock1D``, ``levels``
  ``UpResnetBlock1D`` (transposed-convolution up-sampling, skip connections by concatenation) and ``OutConv1DBlock``;
* each ``ResidualTemporalBlock1D`` is ``Conv1d(5 taps) -> GroupNorm(8) -> Mish`` twice, with the time features
  added (a shift, no scale) between the two, and a 1x1-convolution residual path;
* time: ``Timesteps`` (sinusoids of width ``widths[0]``, ``flip_sin_to_cos=False``, ``freq_shift=1``) and
  ``TimestepEmbedding`` (``Linear -> Mish -> Linear``), as in that pipeline's checkpoints.

**Time.** diffusers' schedulers count ``1000`` discrete training steps, and ``Timesteps`` is built for that range
(periods up to ``10000``). Our ``t in [0, T]`` is passed as the continuous timestep ``1000 t / T`` (not rounded),
the same scale the DiT's :class:`~gptheory.dit.TimestepEmbedder` uses.

**No clipping or rescaling.** Clipping of ``x_0`` estimates to ``[-1, 1]`` (``clip_sample``) lives in diffusers'
schedulers and pipelines, which are not used: the package's own samplers (:mod:`gptheory.samplers`) drive this
network, and :meth:`DiffusersUNet1D.network` hands ``x`` to ``UNet1DModel`` unchanged and returns its output
unchanged. Two properties of the library's layers remain and are documented rather than changed: the output block
ends in ``GroupNorm -> Mish -> 1x1 conv``, so the raw output's overall size does not grow with the input's (fine for
``prediction="v"``, whose target has unit variance on unit-variance data, and whose ``sigma_t x_t`` term carries the
input's scale); and GroupNorm pools its statistics over all frames, so unlike :class:`~gptheory.unet.UNet1D` every
output frame depends (weakly) on every input frame: there is no finite receptive field.

**Widths.** GroupNorm(8) needs every width to be a multiple of 8, and doubling widths from such a base change the
parameter count by about 2x per step of 8. :meth:`DiffusersUNet1D.matched` therefore uses near-doubling widths
``C_l = 8 round(w 2**l / 8)`` over a fine grid of bases ``w``, which move the count in steps of about 10-15%.
The library's own initialisation is kept (its output layer does not start at zero).
"""

from __future__ import annotations

import math

import torch

from .denoiser import Denoiser, count_parameters
from .schedules import Schedule
from .unet import closest_width
from .validation import halvings, nonneg_int, positive_int

GROUPS = 8  # diffusers' Conv1dBlock normalises with GroupNorm(8, width)


def near_doubling_widths(w: float, levels: int) -> tuple[int, ...]:
    """``(C_0, ..., C_levels)`` with ``C_l`` the multiple of 8 nearest to ``w 2**l`` (at least 8)."""
    return tuple(max(GROUPS, GROUPS * math.floor(w * 2**lv / GROUPS + 0.5)) for lv in range(levels + 1))


class DiffusersUNet1D(Denoiser):
    """diffusers' attention-free ``UNet1DModel`` (the RL "diffuser" layout) on ``x: (batch, N, d)``.

    Args:
        N: sequence length (frames); must be divisible by ``2**(len(widths) - 1)``.
        d: frame dimension (the input and output channels).
        widths: channels per level ``(C_0, ..., C_levels)``, each a multiple of 8; ``levels = len(widths) - 1``
            halvings of the frame axis.
        prediction: ``"eps"`` or ``"v"`` (see :class:`~gptheory.denoiser.Denoiser`).
        schedule: the forward process (default :class:`~gptheory.schedules.DDPMSchedule`).

    The convolutions have diffusers' fixed 5 taps. Needs the ``diffusers`` package (``pip install 'gptheory[bench]'``).
    """

    ARCH = "diffusers-unet"

    def __init__(
        self,
        N: int,
        d: int,
        widths: tuple[int, ...] | list[int] = (16, 32, 64),
        prediction: str = "v",
        schedule: Schedule | dict | None = None,
    ) -> None:
        super().__init__(N, d, prediction, schedule)
        if isinstance(widths, int | str) or len(widths) < 1:
            raise ValueError(f"widths must be a non-empty sequence of multiples of {GROUPS}, got {widths!r}")
        self.widths = tuple(positive_int("widths[i]", w) for w in widths)
        if any(w % GROUPS for w in self.widths):
            raise ValueError(f"every width must be a multiple of {GROUPS} (diffusers' GroupNorm), got {self.widths}")
        self.levels = halvings(self.N, len(self.widths) - 1)  # levels = len(widths) - 1
        try:
            from diffusers import UNet1DModel
        except ImportError:  # pragma: no cover - diffusers is pinned for the tests
            raise ImportError("DiffusersUNet1D needs diffusers: pip install 'gptheory[bench]'") from None
        self.unet = UNet1DModel(
            sample_size=self.N,
            in_channels=self.d,
            out_channels=self.d,
            extra_in_channels=0,
            time_embedding_type="positional",
            use_timestep_embedding=True,
            flip_sin_to_cos=False,
            freq_shift=1.0,
            down_block_types=("DownResnetBlock1D",) * (self.levels + 1),
            up_block_types=("UpResnetBlock1D",) * self.levels,
            mid_block_type="MidResTemporalBlock1D",
            out_block_type="OutConv1DBlock",
            block_out_channels=self.widths,
            act_fn="mish",
            norm_num_groups=GROUPS,
            layers_per_block=1,
        )

    def config(self) -> dict:
        """Constructor arguments plus ``"arch"``, enough to rebuild the model (stored in checkpoints)."""
        return {
            "arch": self.ARCH,
            "N": self.N,
            "d": self.d,
            "widths": list(self.widths),
            "prediction": self.prediction,
            "schedule": self.schedule.config(),
        }

    def network(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Raw output ``F: (batch, N, d)``: ``UNet1DModel(x^T, 1000 t / T)^T``, nothing clipped or rescaled."""
        return self.unet(x.transpose(1, 2), t * (1000.0 / self.T), return_dict=False)[0].transpose(1, 2)

    @classmethod
    def matched(
        cls, N: int, d: int, n_params: int, levels: int = 2, tolerance: float = 0.1, **kwargs
    ) -> DiffusersUNet1D:
        """The model with near-doubling ``widths`` (:func:`near_doubling_widths`) whose parameter count is closest to
        ``n_params``; ``ValueError`` when it is more than ``tolerance`` (relative) away.

        The bases ``w`` run over a grid of step ``8 / 2**(levels + 1)``, fine enough that every width tuple of the
        family is reached. The search does not touch the global RNG.
        """
        n_params, levels = positive_int("n_params", n_params), nonneg_int("levels", levels)
        step = GROUPS / 2 ** (levels + 1)

        def count(k: int) -> int:
            return count_parameters(cls, N, d, widths=near_doubling_widths(k * step, levels), **kwargs)

        k = closest_width(count, n_params, tolerance, what=f"{cls.__name__}(N={N}, d={d}, levels={levels})")
        return cls(N, d, widths=near_doubling_widths(k * step, levels), **kwargs)


__all__ = ["DiffusersUNet1D", "near_doubling_widths"]
