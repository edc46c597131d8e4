"""A one-dimensional convolutional UNet over the frame axis: the attention-free peer of the DiT (paper, Figure 11).

``x: (batch, N, d)`` is read as ``d`` channels along a 1D axis of ``N`` frames. The network is

* an input convolution ``d -> C_0``;
* ``levels`` down levels: ``blocks_per_level`` residual blocks at width ``C_l = channels * 2**l``, whose output is
  kept as the level's skip, then a stride-2 convolution (kernel 3) to level ``l + 1``;
* ``blocks_per_level`` residual blocks at the bottom (``N / 2**levels`` positions);
* ``levels`` up levels: nearest-neighbour up-sampling by 2 and a convolution to ``C_l``, concatenation with the
  skip, ``blocks_per_level`` residual blocks;
* a parameter-free norm, SiLU and an output convolution ``C_0 -> d``.

Every convolution except the down-sampling one has ``kernel_size`` taps (odd, zero padding keeps the length).

**Time conditioning, as in the DiT.** The diffusion time goes through the DiT's own
:class:`~gptheory.dit.TimestepEmbedder` (``1000 t / T``, 256 sinusoids, ``Linear -> SiLU -> Linear`` to width
``channels``) and a SiLU; each residual block maps it with its own linear layer to a scale and a shift of its
second norm (``h -> norm(h) (1 + scale) + shift``, Dhariwal and Nichol's scale-shift norm, the convolutional form of
adaLN). As in adaLN-Zero these linear layers start at zero, and so do each block's second convolution and the
output convolution: every block starts as its skip path and the network starts at ``F = 0``.

**Locality.** The norms act on the channels of each frame separately (LayerNorm without parameters, as the DiT's);
a GroupNorm would pool statistics over all frames and so see the whole sequence. The network is therefore exactly
local: output frame ``i`` depends only on input frames ``j`` with ``lo <= j - i <= hi``, ``(lo, hi) =``
:attr:`UNet1D.receptive_span`, computed from the layers (see :meth:`UNet1D.receptive_span`).

:meth:`UNet1D.matched` picks the width whose parameter count is closest to a given one (the DiT's).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .denoiser import Denoiser, count_parameters
from .dit import TimestepEmbedder
from .schedules import Schedule
from .validation import halvings, odd_int, positive_int


def channel_norm(h: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Normalise ``h: (batch, C, L)`` over its ``C`` channels at each of the ``L`` positions (no parameters)."""
    return F.layer_norm(h.transpose(1, 2), h.shape[1:2], eps=eps).transpose(1, 2)


class ResBlock1D(nn.Module):
    """``(B, c_in, L) -> (B, c_out, L)``: ``h -> skip(h) + conv2(SiLU(norm(conv1(SiLU(norm(h)))) (1 + s) + b))``.

    ``scale = s, shift = b: (B, c_out)`` come from the conditioning vector ``c: (B, cond)`` through a zero-initialised
    linear map; ``conv2`` is zero-initialised too, so the block starts as ``skip`` (identity or a 1x1 convolution).
    """

    def __init__(self, c_in: int, c_out: int, kernel_size: int, cond: int) -> None:
        super().__init__()
        pad = kernel_size // 2
        self.conv1 = nn.Conv1d(c_in, c_out, kernel_size, padding=pad)
        self.mod = nn.Linear(cond, 2 * c_out)
        self.conv2 = nn.Conv1d(c_out, c_out, kernel_size, padding=pad)
        self.skip = nn.Conv1d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        for m in (self.mod, self.conv2):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        r = self.conv1(F.silu(channel_norm(h)))
        scale, shift = self.mod(c)[:, :, None].chunk(2, dim=1)
        r = self.conv2(F.silu(torch.addcmul(shift, channel_norm(r), 1 + scale)))
        return self.skip(h) + r


class UNet1D(Denoiser):
    """Convolutional, attention-free UNet over the ``N`` frames; predicts the noise ``(batch, N, d)``.

    Args:
        N: sequence length (frames); must be divisible by ``2**levels``.
        d: frame dimension (the input and output channels).
        channels: width ``C_0`` of the first level; level ``l`` has ``channels * 2**l``.
        levels: number of halvings of the frame axis (``0``: no down-sampling).
        kernel_size: taps of the convolutions along the frames (odd).
        blocks_per_level: residual blocks per level, at the bottom and on each side.
        prediction: ``"eps"`` or ``"v"`` (see :class:`~gptheory.denoiser.Denoiser`).
        schedule: the forward process (default :class:`~gptheory.schedules.DDPMSchedule`).
        freq_dim: width of the sinusoidal diffusion-time features (DiT: 256).
    """

    ARCH = "unet"

    def __init__(
        self,
        N: int,
        d: int,
        channels: int = 32,
        levels: int = 2,
        kernel_size: int = 3,
        blocks_per_level: int = 2,
        prediction: str = "v",
        schedule: Schedule | dict | None = None,
        freq_dim: int = 256,
    ) -> None:
        super().__init__(N, d, prediction, schedule)
        self.channels = positive_int("channels", channels)
        self.levels = halvings(self.N, levels)
        self.kernel_size = odd_int("kernel_size", kernel_size)
        self.blocks_per_level = positive_int("blocks_per_level", blocks_per_level)
        self.freq_dim = positive_int("freq_dim", freq_dim)
        k, pad, B, C = self.kernel_size, self.kernel_size // 2, self.blocks_per_level, self.widths
        cond = self.channels
        self.t_embed = TimestepEmbedder(cond, self.freq_dim, self.T)
        nn.init.normal_(self.t_embed.mlp[0].weight, std=0.02)  # as the DiT's
        nn.init.normal_(self.t_embed.mlp[2].weight, std=0.02)
        self.conv_in = nn.Conv1d(self.d, C[0], k, padding=pad)
        self.down = nn.ModuleList(
            nn.ModuleList(ResBlock1D(C[lv], C[lv], k, cond) for _ in range(B)) for lv in range(self.levels)
        )
        self.downsample = nn.ModuleList(
            nn.Conv1d(C[lv], C[lv + 1], 3, stride=2, padding=1) for lv in range(self.levels)
        )
        self.mid = nn.ModuleList(ResBlock1D(C[-1], C[-1], k, cond) for _ in range(B))
        self.upsample = nn.ModuleList(nn.Conv1d(C[lv + 1], C[lv], k, padding=pad) for lv in range(self.levels))
        self.up = nn.ModuleList(
            nn.ModuleList(ResBlock1D(2 * C[lv] if i == 0 else C[lv], C[lv], k, cond) for i in range(B))
            for lv in range(self.levels)
        )
        self.conv_out = nn.Conv1d(C[0], self.d, k, padding=pad)
        nn.init.zeros_(self.conv_out.weight)
        nn.init.zeros_(self.conv_out.bias)

    @property
    def widths(self) -> list[int]:
        """Channels per level, ``[C_0, ..., C_levels]`` with ``C_l = channels * 2**l``."""
        return [self.channels * 2**lv for lv in range(self.levels + 1)]

    def config(self) -> dict:
        """Constructor arguments plus ``"arch"``, enough to rebuild the model (stored in checkpoints)."""
        return {
            "arch": self.ARCH,
            "N": self.N,
            "d": self.d,
            "channels": self.channels,
            "levels": self.levels,
            "kernel_size": self.kernel_size,
            "blocks_per_level": self.blocks_per_level,
            "prediction": self.prediction,
            "schedule": self.schedule.config(),
            "freq_dim": self.freq_dim,
        }

    def network(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """Raw output ``F: (batch, N, d)`` for ``x: (batch, N, d)`` and ``t: (batch,)``."""
        c = F.silu(self.t_embed(t))
        h = self.conv_in(x.transpose(1, 2))
        skips = []
        for blocks, down in zip(self.down, self.downsample, strict=True):
            for blk in blocks:
                h = blk(h, c)
            skips.append(h)
            h = down(h)
        for blk in self.mid:
            h = blk(h, c)
        for lv in reversed(range(self.levels)):
            h = self.upsample[lv](F.interpolate(h, scale_factor=2.0, mode="nearest"))
            h = torch.cat([h, skips[lv]], dim=1)
            for blk in self.up[lv]:
                h = blk(h, c)
        return self.conv_out(F.silu(channel_norm(h))).transpose(1, 2)

    # ------------------------------------------------------------------ receptive field
    @property
    def receptive_span(self) -> tuple[int, int]:
        """``(lo, hi)``: output frame ``i`` depends only on input frames ``j`` with ``lo <= j - i <= hi``.

        Walks the deepest path (the widest) in frames of the input: a ``k``-tap convolution at level ``l``
        (one position = ``2**l`` frames) widens the span by ``(k // 2) 2**l`` on each side; the stride-2 down
        convolution from level ``l`` by ``2**l`` on each side; nearest up-sampling to level ``l`` by ``2**l``
        on the left only (position ``q`` copies ``floor(q / 2)``). Zero padding can only narrow it at the ends.
        """
        r, B = self.kernel_size // 2, self.blocks_per_level
        span = r  # conv_in, symmetric: (-span, +span) until the first up-sampling
        for lv in range(self.levels):
            span += 2 * B * r * 2**lv + 2**lv  # the level's blocks, then the down convolution
        span += 2 * B * r * 2**self.levels  # bottom blocks
        lo, hi = -span, span
        for lv in reversed(range(self.levels)):
            j = 2**lv
            lo -= j  # nearest up-sampling
            lo, hi = lo - r * j - 2 * B * r * j, hi + r * j + 2 * B * r * j  # up conv, the level's blocks
        return lo - r, hi + r  # conv_out

    @property
    def receptive_field(self) -> int:
        """Width of the receptive field in frames, ``hi - lo + 1`` (:attr:`receptive_span`)."""
        lo, hi = self.receptive_span
        return hi - lo + 1

    @property
    def max_gap(self) -> int:
        """The largest gap ``|i - j|`` (frames) at which output frame ``i`` can depend on input frame ``j``."""
        lo, hi = self.receptive_span
        return max(-lo, hi)

    # ------------------------------------------------------------------ parameter matching
    @classmethod
    def matched(cls, N: int, d: int, n_params: int, tolerance: float = 0.1, **kwargs) -> UNet1D:
        """The model of width ``channels`` whose parameter count is closest to ``n_params``.

        ``kwargs`` are the other constructor arguments. Raises ``ValueError`` when the closest count is more than
        ``tolerance`` (relative) away from ``n_params``. The search does not touch the global RNG; the returned
        model is initialised from it like a direct construction.
        """
        n_params = positive_int("n_params", n_params)
        kwargs.pop("channels", None)
        width = closest_width(
            lambda w: count_parameters(cls, N, d, channels=w, **kwargs),
            n_params,
            tolerance,
            what=f"{cls.__name__}(N={N}, d={d}, {kwargs})",
        )
        return cls(N, d, channels=width, **kwargs)


def closest_width(count: Callable[[int], int], n_params: int, tolerance: float = 0.1, what: str = "model") -> int:
    """The integer width ``w >= 1`` whose ``count(w)`` (non-decreasing in ``w``) is closest to ``n_params``.

    Doubles, then bisects; raises ``ValueError`` naming the best count when it is more than ``tolerance`` off.
    """
    lo, hi = 1, 2
    while count(hi) < n_params:
        lo, hi = hi, 2 * hi
        if hi > 2**16:
            raise ValueError(f"n_params={n_params} is beyond any width of {what}")
    while hi - lo > 1:  # count(lo) < n_params <= count(hi), or lo = 1
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if count(mid) < n_params else (lo, mid)
    best = min((lo, hi), key=lambda w: abs(count(w) - n_params))
    got = count(best)
    if abs(got - n_params) > tolerance * n_params:
        raise ValueError(
            f"no width of {what} has a parameter count within {tolerance:.0%} of n_params={n_params}: the closest "
            f"has {got} ({got / n_params - 1:+.1%}); change the other sizes or the tolerance"
        )
    return best


__all__ = ["ResBlock1D", "UNet1D", "channel_norm", "closest_width"]
