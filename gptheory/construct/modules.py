"""Writing residual blocks slot by slot: exact linear moves and the multiplication module (Appendix E.3).

:class:`BlockWriter` appends blocks to the network under construction:

* :meth:`BlockWriter.linear` -- add multiples of slots into other slots and clear slots, exactly, through a ReLU
  feed-forward layer (``z = relu(z) - relu(-z)``), optionally after an attention layer;
* :meth:`BlockWriter.multiply` -- multiply slots by diffusion-time scalars stored in the token: exactly with a
  bilinear layer (``mult_depth=None``), or with ReLU layers only through Yarotsky's sawtooth approximation of
  ``w^2`` (:func:`sawtooth_square`) and ``z c = (z + c)^2/4 - (z - c)^2/4``. The product error is at most
  ``B C 2^{-2m-1}`` when ``|z| <= B`` and ``0 <= c <= C``; ``m + 1`` feed-forward blocks realise it.
"""

from __future__ import annotations

import torch

from ..gp import DTYPE
from ..validation import nonneg_int
from .layers import BilinearFeedForward, Block, FeedForward, MultiHeadAttention
from .network import Layout


def _tooth(w: torch.Tensor) -> torch.Tensor:
    """Yarotsky's tooth ``g(w) = 2 relu(w) - 4 relu(w - 1/2) + 2 relu(w - 1)`` (a tent on ``[0, 1]``)."""
    return 2 * torch.relu(w) - 4 * torch.relu(w - 0.5) + 2 * torch.relu(w - 1)


def sawtooth_square(w: torch.Tensor, m: int) -> torch.Tensor:
    """Yarotsky's ReLU approximation ``f_m(w) = w - sum_{s=1}^m g_s(w) / 4^s`` of ``w^2`` on ``[0, 1]``.

    ``g_s`` is the ``s``-fold composition of the tooth (a sawtooth with ``2^{s-1}`` teeth). ``f_m`` interpolates
    ``w^2`` linearly between the points ``k / 2^m``, so ``0 <= f_m(w) - w^2 <= 2^{-2m-2}``. This is the reference
    the multiplication module is built from (and tested against).
    """
    m = nonneg_int("m", m)
    out = w.clone()
    g = w
    for s in range(1, m + 1):
        g = _tooth(g)
        out = out - g / 4**s
    return out


class BlockWriter:
    """Writes the blocks of the network, slot by slot."""

    def __init__(self, layout: Layout, mult_depth: int | None) -> None:
        self.L = layout
        self.D = layout.D
        self.m = mult_depth
        self.blocks: list[Block] = []

    # ---- exact linear maps through ReLU: z = relu(z) - relu(-z)
    def linear(
        self, moves: list[tuple[str, str, float]], clear: list[str], role: str, attn: MultiHeadAttention | None = None
    ) -> None:
        """One block whose FFN adds ``coef * slot_src`` into ``slot_dst`` for each move and zeroes the ``clear``
        slots (exactly, as ``relu(z) - relu(-z)``), after the attention layer ``attn`` when one is given."""
        M = torch.zeros(self.D, self.D, dtype=DTYPE)
        for dst, src, coef in moves:
            n = self.L[dst].stop - self.L[dst].start
            M[self.L[dst], self.L[src]] += coef * torch.eye(n, dtype=DTYPE)
        for name in clear:
            n = self.L[name].stop - self.L[name].start
            M[self.L[name], self.L[name]] -= torch.eye(n, dtype=DTYPE)
        cols = torch.nonzero(M.abs().sum(0)).flatten()
        ffn = FeedForward(self.D, 2 * len(cols))
        with torch.no_grad():
            for k, c in enumerate(cols.tolist()):
                ffn.W_1[k, c] = 1.0
                ffn.W_1[len(cols) + k, c] = -1.0
            ffn.W_2[:, : len(cols)] = M[:, cols]
            ffn.W_2[:, len(cols) :] = -M[:, cols]
        self.blocks.append(Block(attn, ffn, role))

    # ---- products z * c of a slot z (|z| <= B) with a scalar c = C c', c' in [0, 1]
    def multiply(self, products: list[tuple[str, str, int, float, float]], role: str) -> None:
        """Add ``C c'(t) * slot_src`` into ``slot_dst`` for each ``(dst, src, scalar_index, C, B)``."""
        if self.m is None:
            self._multiply_exact(products, role)
        else:
            self._multiply_relu(products, role)

    def _multiply_exact(self, products: list[tuple[str, str, int, float, float]], role: str) -> None:
        n = sum(self.L[src].stop - self.L[src].start for _, src, _, _, _ in products)
        ffn = BilinearFeedForward(self.D, n)
        row = 0
        with torch.no_grad():
            for dst, src, k, C, _ in products:
                width = self.L[src].stop - self.L[src].start
                for e in range(width):
                    ffn.W_a[row, self.L.idx("c", k)] = 1.0
                    ffn.W_b[row, self.L[src].start + e] = 1.0
                    ffn.W_O[self.L[dst].start + e, row] = C
                    row += 1
        self.blocks.append(Block(None, ffn, f"{role} (exact bilinear)"))

    def _multiply_relu(self, products: list[tuple[str, str, int, float, float]], role: str) -> None:
        m = self.m
        entries = []  # (dst index, src index, scalar index, C, B, w+ index, w- index)
        wbase = self.L["w"].start if m > 0 else 0
        for dst, src, k, C, B in products:
            for e in range(self.L[src].stop - self.L[src].start):
                wp = wbase + 2 * len(entries)
                entries.append((self.L[dst].start + e, self.L[src].start + e, self.L.idx("c", k), C, B, wp, wp + 1))
        if m > 0 and 2 * len(entries) > self.L["w"].stop - wbase:
            raise RuntimeError("multiplication buffer too small")  # construction bug, not user input
        # block 0: w+- = |z/B +- c'| / 2 in [0, 1]; dst += C B (w+ - w-)   (the "w" term of f_m)
        ffn = FeedForward(self.D, 4 * len(entries))
        with torch.no_grad():
            for q, (dst, src, ci, C, B, wp, wm) in enumerate(entries):
                for u, (sz, sc) in enumerate([(1, 1), (-1, -1), (1, -1), (-1, 1)]):  # +-(z/B + c'), +-(z/B - c')
                    ffn.W_1[4 * q + u, src] = sz / B
                    ffn.W_1[4 * q + u, ci] = sc
                    plus = u < 2
                    ffn.W_2[dst, 4 * q + u] = 0.5 * C * B * (1 if plus else -1)
                    if m > 0:
                        ffn.W_2[wp if plus else wm, 4 * q + u] = 0.5
        self.blocks.append(Block(None, ffn, f"{role} (ReLU product, level 0/{m})"))
        # blocks 1..m: w <- g(w) (the sawtooth deepens); dst -= C B (g(w+) - g(w-)) / 4^s; the last one clears w
        for s in range(1, m + 1):
            ffn = FeedForward(self.D, 6 * len(entries))
            with torch.no_grad():
                for q, (dst, _, _, C, B, wp, wm) in enumerate(entries):
                    for side, w in enumerate((wp, wm)):
                        base = 6 * q + 3 * side
                        for j, shift in enumerate((0.0, -0.5, -1.0)):
                            ffn.W_1[base + j, w] = 1.0
                            ffn.b_1[base + j] = shift
                        tooth = torch.tensor([2.0, -4.0, 2.0], dtype=DTYPE)
                        sign = 1.0 if side == 0 else -1.0
                        ffn.W_2[dst, base : base + 3] = -sign * C * B * tooth / 4**s
                        if s < m:  # w += g(w) - w, with w = relu(w) since w >= 0
                            ffn.W_2[w, base : base + 3] = tooth - torch.tensor([1.0, 0.0, 0.0], dtype=DTYPE)
                        else:  # w -= w: the buffer is empty again
                            ffn.W_2[w, base] = -1.0
            self.blocks.append(Block(None, ffn, f"{role} (ReLU product, level {s}/{m})"))
