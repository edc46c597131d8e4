"""What attention can see of time: the frames' sinusoidal embedding, its inner products per gap, and the trapezoid.

In the ReLU construction (Lemma 10) an attention score is an inner product of two frames' embeddings, ``<e_i, e_j>``,
which depends on the gap ``|i - j|`` only (:func:`frame_embedding`, :func:`gap_inner_products`). Four ReLU heads per
gap add up to a trapezoid (:func:`trapezoid`) that is 1 at one gap and 0 at all others, provided the embedding
separates the gaps (:func:`resolution`).
"""

from __future__ import annotations

import math

import torch

from ..gp import DTYPE
from ..validation import finite_tensor, positive_int, real_in

# A gap is resolved when its inner product psi(k) differs from psi at every other gap by more than this fraction of
# psi(0); below it the trapezoid's slopes (4 / delta) would amplify round-off beyond use, and at 0 (a periodic
# embedding) two gaps are simply the same to attention.
RESOLUTION_TOL = 1e-10


def frame_embedding(N: int, n_freq: int = 4, omega: float | None = None) -> torch.Tensor:
    """The frames' sinusoidal embedding ``e_i = (cos(omega_f i), sin(omega_f i))_{f < n_freq}``, ``(N, 2 n_freq)``.

    Frequencies halve from ``omega`` (radians per frame): ``omega_f = omega 2^{-f}``. The inner product
    ``<e_i, e_j> = sum_f cos(omega_f (i - j))`` depends on the gap only (Assumption 1). The default
    ``omega = pi / (N - 1)`` keeps every ``omega_f (N - 1) <= pi``, where the cosines decrease: then ``<e_i, e_j>``
    strictly decreases with ``|i - j|`` and every gap is resolved. Larger ``omega`` wraps around and can make two
    gaps indistinguishable (see :func:`resolution`). (DiT's embedding of positions and diffusion times is
    :func:`gptheory.dit.sinusoidal_embedding`.)
    """
    N = positive_int("N", N)
    n_freq = positive_int("n_freq", n_freq)
    if omega is None:
        omega = math.pi / max(N - 1, 1)
    omega = real_in("omega", omega, 0.0, 2 * math.pi, low_open=True)
    freqs = omega * 2.0 ** -torch.arange(n_freq, dtype=DTYPE)
    ang = torch.arange(N, dtype=DTYPE)[:, None] * freqs[None, :]
    return torch.cat([torch.cos(ang), torch.sin(ang)], dim=1)


def gap_inner_products(E: torch.Tensor) -> torch.Tensor:
    """``psi(g) = <e_0, e_g>`` for ``g = 0..N-1``: what an attention score sees of the gap. ``E: (N, width)``.

    (Not :func:`gptheory.attention.gap_profile`, which averages a trained attention map along its diagonals.)
    """
    E = finite_tensor("E", E, (None, None)).to(DTYPE)
    return E @ E[0]


def resolution(psi: torch.Tensor, J: int) -> float:
    """Smallest separation ``min_{k < J, g != k} |psi(k) - psi(g)|`` between a gap in the band and any other gap.

    The trapezoid heads for gap ``k`` are flat on ``psi(k) +- delta / 4`` and vanish beyond ``psi(k) +- delta / 2``,
    so they pick gap ``k`` exactly when this ``delta > 0``.

    Raises:
        ValueError: when ``J`` exceeds the number of gaps, or when the embedding cannot tell some gap ``k < J``
            from another gap (``delta <= RESOLUTION_TOL * psi(0)``); the message names both gaps.
    """
    psi = finite_tensor("psi", psi, (None,)).to(DTYPE)
    N = psi.shape[0]
    J = positive_int("J", J)
    if J > N:
        raise ValueError(f"J must be in [1, N] = [1, {N}] (a band |i-j| < J over {N} frames), got {J}")
    diff = (psi[:J, None] - psi[None, :]).abs()
    diff[torch.arange(J), torch.arange(J)] = math.inf
    delta = float(diff.min())
    if not delta > RESOLUTION_TOL * abs(float(psi[0])):
        flat = int(torch.argmin(diff))
        k, g = divmod(flat, N)
        raise ValueError(
            f"the time embedding cannot resolve the band J={J}: gaps {k} and {g} give inner products "
            f"{float(psi[k]):.12g} and {float(psi[g]):.12g} (separation {delta:.3g}, need > "
            f"{RESOLUTION_TOL:g} * psi(0)), so no attention head can tell them apart. Use a lower frequency "
            f"(omega <= pi / (N - 1) resolves every gap) or a smaller band"
        )
    return delta


def trapezoid(x: torch.Tensor) -> torch.Tensor:
    """``relu(x+2) - relu(x+1) - relu(x-1) + relu(x-2)``: 1 on ``[-1, 1]``, 0 outside ``(-2, 2)``, linear between.

    With ``x = 4 (psi - psi(k)) / delta`` it is the four-head indicator of gap ``k`` (Lemma 10).
    """
    r = torch.relu
    return r(x + 2) - r(x + 1) - r(x - 1) + r(x - 2)
