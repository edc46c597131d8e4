"""The standard layers the hand-built transformer is made of; every weight starts at zero and is written by the builder.

:class:`TokenEmbedding` (frame, positional table, diffusion-time scalars), :class:`MultiHeadAttention` (ReLU or
softmax), :class:`FeedForward` (ReLU), :class:`BilinearFeedForward` (the exact multiplication mode: the product DiT's
adaLN modulation forms), the residual :class:`Block`, and the clipping :class:`Decoder`. All float64.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..gp import DTYPE

# Heads of the ReLU attention layer are evaluated in chunks of this many to bound memory (batch x heads x N x N).
_HEAD_CHUNK = 16


class MultiHeadAttention(nn.Module):
    """Standard multi-head attention with ReLU or softmax activation (no masking, no normalisation layer).

    ``out_i = W_O concat_h [ sum_j act(q_i^h . k_j^h / sqrt(d_k))_j  v_j^h ]`` with ``q^h = W_Q^h x``,
    ``k^h = W_K^h x``, ``v^h = W_V^h x``; ``act`` is ReLU entrywise, or softmax over ``j``.

    Parameters: ``W_Q, W_K: (heads, d_k, D)``, ``W_V: (heads, d_v, D)``, ``W_O: (D, heads d_v)``.
    """

    def __init__(self, D: int, heads: int, d_k: int, d_v: int, activation: str) -> None:
        super().__init__()
        if activation not in ("relu", "softmax"):
            raise ValueError(f"activation must be 'relu' or 'softmax', got {activation!r}")
        self.activation = activation
        self.heads, self.d_k, self.d_v = heads, d_k, d_v
        self.W_Q = nn.Parameter(torch.zeros(heads, d_k, D, dtype=DTYPE))
        self.W_K = nn.Parameter(torch.zeros(heads, d_k, D, dtype=DTYPE))
        self.W_V = nn.Parameter(torch.zeros(heads, d_v, D, dtype=DTYPE))
        self.W_O = nn.Parameter(torch.zeros(D, heads * d_v, dtype=DTYPE))

    def _project(self, W: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """All heads at once: ``W: (heads, k, D)``, ``h: (batch, N, D)`` -> ``(batch, heads, N, k)``."""
        H, k, D = W.shape
        return (h @ W.reshape(H * k, D).T).unflatten(-1, (H, k)).transpose(1, 2)

    def _activate(self, q: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
        scores = q @ k.transpose(-1, -2) / math.sqrt(self.d_k)
        return torch.relu(scores) if self.activation == "relu" else torch.softmax(scores, dim=-1)

    def weights(self, h: torch.Tensor) -> torch.Tensor:
        """Activated attention scores ``(batch, heads, N, N)`` for tokens ``h: (batch, N, D)``."""
        return self._activate(self._project(self.W_Q, h), self._project(self.W_K, h))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h: (batch, N, D) -> (batch, N, D)`` (the residual is added by the block)."""
        q, k, v = self._project(self.W_Q, h), self._project(self.W_K, h), self._project(self.W_V, h)
        outs = []
        for h0 in range(0, self.heads, _HEAD_CHUNK):  # chunks of heads bound the (batch, heads, N, N) scores
            sl = slice(h0, h0 + _HEAD_CHUNK)
            outs.append(self._activate(q[:, sl], k[:, sl]) @ v[:, sl])
        cat = torch.cat(outs, dim=1).transpose(1, 2).flatten(2)  # (batch, N, heads * d_v)
        return cat @ self.W_O.T


class FeedForward(nn.Module):
    """Position-wise ReLU feed-forward layer ``W_2 relu(W_1 h + b_1) + b_2``.

    ``W_1: (hidden, D)``, ``W_2: (D, hidden)``; ``hidden = 0`` is the trivial layer.
    """

    def __init__(self, D: int, hidden: int) -> None:
        super().__init__()
        self.W_1 = nn.Parameter(torch.zeros(hidden, D, dtype=DTYPE))
        self.b_1 = nn.Parameter(torch.zeros(hidden, dtype=DTYPE))
        self.W_2 = nn.Parameter(torch.zeros(D, hidden, dtype=DTYPE))
        self.b_2 = nn.Parameter(torch.zeros(D, dtype=DTYPE))

    @property
    def hidden(self) -> int:
        return self.W_1.shape[0]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.relu(h @ self.W_1.T + self.b_1) @ self.W_2.T + self.b_2


class BilinearFeedForward(nn.Module):
    """Position-wise bilinear layer ``W_O ((W_a h) * (W_b h))``: the exact multiplication mode.

    It multiplies token entries by diffusion-time scalars stored in the same token -- the operation that DiT's
    adaLN modulation performs. ``W_a, W_b: (hidden, D)``, ``W_O: (D, hidden)``.
    """

    def __init__(self, D: int, hidden: int) -> None:
        super().__init__()
        self.W_a = nn.Parameter(torch.zeros(hidden, D, dtype=DTYPE))
        self.W_b = nn.Parameter(torch.zeros(hidden, D, dtype=DTYPE))
        self.W_O = nn.Parameter(torch.zeros(D, hidden, dtype=DTYPE))

    @property
    def hidden(self) -> int:
        return self.W_a.shape[0]

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return ((h @ self.W_a.T) * (h @ self.W_b.T)) @ self.W_O.T


class Block(nn.Module):
    """A residual transformer block ``h <- h + attn(h); h <- h + ffn(h)``; ``attn=None`` is a trivial (zero) layer."""

    def __init__(self, attn: MultiHeadAttention | None, ffn: nn.Module, role: str) -> None:
        super().__init__()
        self.attn = attn
        self.ffn = ffn
        self.role = role

    @property
    def heads(self) -> int:
        return 0 if self.attn is None else self.attn.heads

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        if self.attn is not None:
            h = h + self.attn(h)
        return h + self.ffn(h)


class TokenEmbedding(nn.Module):
    """Token ``i = W_in x_i + P_i + W_c c(t)``: the frame lifted into its slot, a fixed positional table ``P: (N, D)``
    (time embedding, mean, the constant 1, softmax position features) and the diffusion-time scalars ``c(t)``.

    ``c(t) = (alpha_t, alpha_t^2, sigma_t^2, eta_t) / bounds`` is a fixed function of ``t`` (the role DiT's timestep
    embedding plays); all products of these scalars with token entries happen inside the network.
    """

    def __init__(self, D: int, d: int, N: int, n_scalars: int) -> None:
        super().__init__()
        self.W_in = nn.Parameter(torch.zeros(D, d, dtype=DTYPE))
        self.P = nn.Parameter(torch.zeros(N, D, dtype=DTYPE))
        self.W_c = nn.Parameter(torch.zeros(D, n_scalars, dtype=DTYPE))

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``x: (batch, N, d)``, ``c: (batch, n_scalars)`` -> tokens ``(batch, N, D)``."""
        return x @ self.W_in.T + self.P + (c @ self.W_c.T)[:, None, :]


class Decoder(nn.Module):
    """Read the score slot ``W_read h_i`` and clip it entrywise to ``[-R, R]``: ``relu(z + R) - relu(z - R) - R``."""

    def __init__(self, D: int, d: int, R: float) -> None:
        super().__init__()
        self.W_read = nn.Parameter(torch.zeros(d, D, dtype=DTYPE))
        self.R = float(R)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        z = h @ self.W_read.T
        if math.isinf(self.R):
            return z
        return torch.relu(z + self.R) - torch.relu(z - self.R) - self.R
