"""The attention layers that mix frames by the temporal kernel (Lemmas 10 and 11) and the softmax normaliser.

* :func:`band_heads` (ReLU, Lemma 10): four heads per gap ``k < J`` whose scores are affine in the frames'
  embedding inner product ``psi(|i - j|)``; with output signs ``+, -, -, +`` they add up to the trapezoid that is
  1 at gap ``k`` and 0 at every other gap, and each is weighted by ``Gamma_0k`` -- together ``Gamma_bar``.
* :func:`kernel_head` (softmax, Lemma 11, squared-exponential kernel): one head with score
  ``(2 i j - j^2) / ell^2`` gives ``softmax_j = Gamma_ij / Z_i`` for the whole row.
* :func:`softmax_normaliser`: a feed-forward block that writes ``Z_i / Z_bound`` into the token from the position
  (piecewise-linear interpolation, exact on the grid), so that a multiplication module can restore the scale.

Each head's values are ``Sigma alpha_t^2 s_j`` (the slot ``as``), so the layer adds
``sum_j Gamma_bar_ij Sigma alpha_t^2 s_j`` -- the temporal part of one gradient-descent step.
"""

from __future__ import annotations

import math

import torch

from ..gp import DTYPE, GaussianProcess
from .layers import Block, FeedForward, MultiHeadAttention
from .network import SCALARS, Layout

# the four trapezoid heads of one gap: (score shift, output sign)
_TRAPEZOID = ((2.0, 1.0), (1.0, -1.0), (-1.0, -1.0), (-2.0, 1.0))


def band_heads(
    layout: Layout, gp: GaussianProcess, gaps: int, psi: torch.Tensor, delta: float
) -> tuple[MultiHeadAttention, list[float]]:
    """ReLU attention with ``4 gaps`` heads writing ``sum_{|i-j| < gaps} Gamma_ij Sigma (slot as)_j`` into slot ``g``.

    ``psi``: the embedding's inner product per gap; ``delta``: its :func:`~gptheory.construct.resolution`.
    Returns the layer and each head's output coefficient (sign times ``Gamma_0k``).
    """
    L, d = layout, gp.d
    d_k = L["e"].stop - L["e"].start + 1  # the embedding and the constant 1
    attn = MultiHeadAttention(L.D, 4 * gaps, d_k, d, "relu")
    scale = math.sqrt(d_k)  # cancels attention's 1 / sqrt(d_k)
    eye_k, eye_d = torch.eye(d_k - 1, dtype=DTYPE), torch.eye(d, dtype=DTYPE)
    coef = []
    with torch.no_grad():
        for gap in range(gaps):
            gam = float(gp.Gamma[0, gap])
            for u, (shift, sign) in enumerate(_TRAPEZOID):
                hh = 4 * gap + u
                # score = 4 (psi_ij - psi(gap)) / delta + shift
                attn.W_Q[hh, :-1, L["e"]] = scale * 4.0 / delta * eye_k
                attn.W_Q[hh, -1, L.idx("one")] = scale * (-4.0 * float(psi[gap]) / delta + shift)
                attn.W_K[hh, :-1, L["e"]] = eye_k
                attn.W_K[hh, -1, L.idx("one")] = 1.0
                attn.W_V[hh, :, L["as"]] = gp.Sigma
                attn.W_O[L["g"], hh * d : (hh + 1) * d] = sign * gam * eye_d
                coef.append(sign * gam)
    return attn, coef


def kernel_head(layout: Layout, gp: GaussianProcess) -> MultiHeadAttention:
    """One softmax head writing ``sum_j (Gamma_ij / Z_i) Sigma (slot as)_j`` into slot ``att`` (``nu = 2`` only)."""
    L, N, d = layout, gp.N, gp.d
    c = N**2 / gp.ell**2
    attn = MultiHeadAttention(L.D, 1, 2, d, "softmax")
    with torch.no_grad():
        # q_i . k_j = c (2 p_i p_j - p_j^2) = (2 i j - j^2) / ell^2 with p = i / N;  softmax_j = Gamma_ij / Z_i
        attn.W_Q[0, 0, L.idx("pos", 0)] = math.sqrt(2) * 2 * c
        attn.W_Q[0, 1, L.idx("one")] = math.sqrt(2) * c
        attn.W_K[0, 0, L.idx("pos", 0)] = 1.0
        attn.W_K[0, 1, L.idx("pos", 1)] = -1.0
        attn.W_V[0, :, L["as"]] = gp.Sigma
        attn.W_O[L["att"], :] = torch.eye(d, dtype=DTYPE)
    return attn


def softmax_normaliser(layout: Layout, Z: torch.Tensor, Z_bound: float) -> Block:
    """A block writing ``Z_i / Z_bound`` into the ``Z`` scalar slot from the position feature ``i / N``.

    ``Z: (N,)`` the kernel's row sums. ``sum_k kink_k relu(i - k)`` interpolates them linearly between frames.
    """
    L, N = layout, Z.shape[0]
    ffn = FeedForward(L.D, max(N - 1, 1))
    slope = torch.diff(Z, prepend=Z[:1])[1:]  # Z_{k+1} - Z_k, k = 0..N-2
    kinks = torch.diff(slope, prepend=torch.zeros(1, dtype=DTYPE))
    iZ = SCALARS.index("Z")
    with torch.no_grad():
        for k in range(N - 1):
            ffn.W_1[k, L.idx("pos", 0)] = float(N)  # relu(i - k)
            ffn.b_1[k] = -float(k)
            ffn.W_2[L.idx("c", iZ), k] = float(kinks[k]) / Z_bound
        ffn.b_2[L.idx("c", iZ)] = float(Z[0]) / Z_bound
    return Block(None, ffn, "softmax normaliser: Z_i from the position (ReLU interpolation)")
