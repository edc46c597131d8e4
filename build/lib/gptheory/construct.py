"""A transformer with hand-set weights that computes the score by unrolling gradient descent.

This is the construction behind Theorem 1 of the paper (Lemmas 9-11, Appendix B, and the multiplication module of
Appendix E.3), written as an ordinary ``torch.nn.Module``: a token embedding, a stack of standard residual blocks
(multi-head attention, then a feed-forward layer) and a decoder that reads the score out and clips it. No weight is
learned; every one is written down from the gradient-descent iteration

    s_i <- s_i - eta_t [ alpha_t^2 sum_{|i-j|<J} Gamma_ij Sigma s_j + sigma_t^2 s_i + (v_i - alpha_t mu_i) ],

which :func:`gptheory.unroll.gd_score` runs directly. Nothing in the network solves a linear system: it only adds,
multiplies by fixed matrices, applies ReLU (or softmax inside one attention head) and, in the exact mode, multiplies
two token entries.

Token layout (one token per frame ``i``, width ``D``; :attr:`GDTransformer.layout` names the slots):

* ``x`` -- the frame ``v_i`` (the noisy input), ``mu`` -- the mean ``mu_i`` (a fixed positional table);
* ``e`` -- a sinusoidal time embedding (ReLU attention) or ``pos`` -- the features ``(i/N, (i/N)^2)`` (softmax);
* ``one`` -- the constant 1 (attention biases); ``c`` -- the diffusion-time scalars ``alpha_t, alpha_t^2,
  sigma_t^2, eta_t`` (each divided by a known bound so it lies in ``[0, 1]``) and, for softmax, the normaliser ``Z_i``;
* ``r`` -- the offset ``v_i - alpha_t mu_i``, ``s`` -- the GD iterate, and work buffers ``as, bs, g, eg`` (``att``)
  for ``alpha_t^2 s``, ``sigma_t^2 s``, the gradient and ``eta_t`` times the gradient; ``w`` -- the multiplication
  module's scratch space.

One GD step (Lemma 10) is a multiplication module (``alpha_t^2 s``, ``sigma_t^2 s``), an attention block
(``sum_j Gamma_bar_ij Sigma alpha_t^2 s_j`` into the gradient, then a feed-forward layer that adds
``sigma_t^2 s + r``), a second multiplication module (``eta_t`` times the gradient) and a feed-forward update
``s <- s - eta_t g``. The first step (Lemma 9) starts from ``s = 0`` and needs no attention.

* ReLU attention (Lemma 10): inner products of time embeddings ``psi(|i-j|) = <e_i, e_j>`` identify the gap; four
  ReLU heads per gap ``k`` add up to a trapezoid in ``psi`` that is 1 at gap ``k`` and 0 at every other gap, so
  ``4 J`` heads give the band ``|i-j| < J`` exactly.
* Softmax attention (Lemma 11, squared-exponential kernel): the score ``(2 i j - j^2) / ell^2`` of one head gives
  ``softmax_j = Gamma_ij / Z_i`` for the whole row; a feed-forward layer writes ``Z_i`` into the token once, and a
  multiplication module restores the scale.
* Multiplication of a token entry by a diffusion-time scalar: ``mult_depth=None`` uses an exact bilinear layer
  (the operation DiT's adaLN modulation performs); ``mult_depth=m`` uses ReLU feed-forward layers only, through
  Yarotsky's sawtooth approximation of ``w^2`` on ``[0, 1]`` (error ``<= 2^{-2m-2}``) and
  ``z c = (z + c)^2/4 - (z - c)^2/4``. The product error is at most ``B C 2^{-2m-1}`` when ``|z| <= B`` and
  ``0 <= c <= C``; ``m + 1`` feed-forward blocks realise it.

Public API: :func:`build_gd_transformer`, :class:`GDTransformer`, :func:`size_report` (with
:func:`format_size_report` and :func:`theorem_orders` beside it), and the pieces the construction is made of
(:func:`sinusoidal_embedding`, :func:`gap_profile`, :func:`resolution`, :func:`trapezoid`, :func:`sawtooth_square`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .gp import DTYPE, GaussianProcess, kernel
from .schedules import Schedule, TimeLike
from .unroll import banded, operator_bounds
from .validation import finite_tensor, nonneg_int, positive_int, real_in

# A gap is resolved when its inner product psi(k) differs from psi at every other gap by more than this fraction of
# psi(0); below it the trapezoid's slopes (4 / delta) would amplify round-off beyond use, and at 0 (a periodic
# embedding) two gaps are simply the same to attention.
RESOLUTION_TOL = 1e-10

# Heads of the ReLU attention layer are evaluated in chunks of this many to bound memory (batch x heads x N x N).
_HEAD_CHUNK = 16


# ================================================================================================ the ingredients
def sinusoidal_embedding(N: int, n_freq: int = 4, omega: float | None = None) -> torch.Tensor:
    """Sinusoidal time embedding ``e_i = (cos(omega_f i), sin(omega_f i))_{f < n_freq}``, shape ``(N, 2 n_freq)``.

    Frequencies halve from ``omega`` (radians per frame): ``omega_f = omega 2^{-f}``. The inner product
    ``<e_i, e_j> = sum_f cos(omega_f (i - j))`` depends on the gap only (Assumption 1). The default
    ``omega = pi / (N - 1)`` keeps every ``omega_f (N - 1) <= pi``, where the cosines decrease: then ``<e_i, e_j>``
    strictly decreases with ``|i - j|`` and every gap is resolved. Larger ``omega`` wraps around and can make two
    gaps indistinguishable (see :func:`resolution`).
    """
    N = positive_int("N", N)
    n_freq = positive_int("n_freq", n_freq)
    if omega is None:
        omega = math.pi / max(N - 1, 1)
    omega = real_in("omega", omega, 0.0, 2 * math.pi, low_open=True)
    freqs = omega * 2.0 ** -torch.arange(n_freq, dtype=DTYPE)
    ang = torch.arange(N, dtype=DTYPE)[:, None] * freqs[None, :]
    return torch.cat([torch.cos(ang), torch.sin(ang)], dim=1)


def gap_profile(E: torch.Tensor) -> torch.Tensor:
    """``psi(g) = <e_0, e_g>`` for ``g = 0..N-1``: what an attention score sees of the gap. ``E: (N, width)``."""
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


# ================================================================================================ the layers
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


# ================================================================================================ the network
@dataclass
class Layout:
    """Named slots of a token: ``slots[name] = slice`` into ``0..D-1``."""

    slots: dict[str, slice] = field(default_factory=dict)
    D: int = 0

    def add(self, name: str, width: int) -> slice:
        sl = slice(self.D, self.D + width)
        self.slots[name] = sl
        self.D += width
        return sl

    def __getitem__(self, name: str) -> slice:
        return self.slots[name]

    def idx(self, name: str, k: int = 0) -> int:
        return self.slots[name].start + k


SCALARS = ("alpha", "a", "b", "eta", "Z")  # alpha_t, alpha_t^2, sigma_t^2, eta_t, softmax normaliser Z_i


class GDTransformer(nn.Module):
    """The hand-built score network: ``embed -> blocks -> decode``. Build it with :func:`build_gd_transformer`.

    ``forward(x, t=None)`` maps ``x: (batch, N, d)`` to the score estimate ``(batch, N, d)`` (float64) at diffusion
    time ``t`` (default: the time it was built for; a float or a ``(batch,)`` tensor). The multiplication ranges and
    the clipping range were sized for the build time; far from it the ReLU multiplication may leave its range.

    Attributes:
        layout: the token's named slots; config: the construction's settings and ranges; blocks: the stack, each
        with a ``role`` string that says which part of which GD step it implements.
    """

    def __init__(
        self,
        gp: GaussianProcess,
        schedule: Schedule,
        layout: Layout,
        embed: TokenEmbedding,
        blocks: list[Block],
        decoder: Decoder,
        config: dict,
    ) -> None:
        super().__init__()
        self.gp = gp
        self.schedule = schedule
        self.layout = layout
        self.embed = embed
        self.blocks = nn.ModuleList(blocks)
        self.decoder = decoder
        self.config = config

    # ------------------------------------------------------------------ diffusion-time scalars
    def time_scalars(self, t: TimeLike | None, batch: int) -> torch.Tensor:
        """``(batch, len(SCALARS))``: ``alpha_t, alpha_t^2, sigma_t^2, eta_t`` divided by their bounds, and 0 for
        the ``Z`` column (written per position by the network itself)."""
        cfg = self.config
        t = cfg["t"] if t is None else t
        tt = self.schedule.check_t(t, include_zero=False).to(DTYPE)
        if tt.dim() == 0:
            tt = tt.expand(batch)
        elif tt.shape != (batch,):
            raise ValueError(f"t must be a float or a tensor of shape ({batch},), got shape {tuple(tt.shape)}")
        alpha = self.schedule.alpha(tt)
        sigma2 = self.schedule.sigma(tt) ** 2
        if cfg["eta"] is None:  # 1 / lambda_max(alpha_t^2 Gamma_bar (x) Sigma + sigma_t^2 I), as gd_score takes it
            eta = 1.0 / (alpha**2 * cfg["lambda_max"] + sigma2)
        else:
            eta = torch.full_like(tt, cfg["eta"])
        c = torch.stack([alpha, alpha**2, sigma2, eta / cfg["eta_bound"], torch.zeros_like(tt)], dim=1)
        return c.to(self.embed.P)  # the device (and dtype) the network lives on

    def embed_tokens(self, x: torch.Tensor, t: TimeLike | None = None) -> torch.Tensor:
        """Tokens ``(batch, N, D)`` before the first block."""
        x = self._check_x(x)
        return self.embed(x, self.time_scalars(t, x.shape[0]))

    def _check_x(self, x: torch.Tensor) -> torch.Tensor:
        x = finite_tensor("x", x)
        if x.dim() == 2:
            x = x[None]
        N, d = self.gp.N, self.gp.d
        if x.dim() != 3 or tuple(x.shape[1:]) != (N, d):
            raise ValueError(f"x must have shape (batch, {N}, {d}), got {tuple(x.shape)}")
        return x.to(self.embed.P)

    def forward(self, x: torch.Tensor, t: TimeLike | None = None, return_tokens: bool = False) -> torch.Tensor:
        """Score estimate ``(batch, N, d)`` for ``x: (batch, N, d)`` (with ``return_tokens``, also the token stream:
        a list of ``(batch, N, D)`` tensors, the embedding followed by the output of every block)."""
        h = self.embed_tokens(x, t)
        tokens = [h] if return_tokens else None
        for block in self.blocks:
            h = block(h)
            if tokens is not None:
                tokens.append(h)
        out = self.decoder(h)
        return (out, tokens) if return_tokens else out

    # ------------------------------------------------------------------ inspection
    def attention_blocks(self) -> list[int]:
        """Indices of the blocks with a non-trivial attention layer (one per GD step after the first)."""
        return [i for i, b in enumerate(self.blocks) if b.attn is not None]

    def temporal_weights(self, x: torch.Tensor, block: int | None = None, t: TimeLike | None = None) -> torch.Tensor:
        """The ``(N, N)`` matrix by which attention block ``block`` mixes frames, for the first sequence of ``x``.

        For ReLU attention this is ``sum_heads (output sign and gamma(k)) relu(score)``, which equals
        ``Gamma_bar``; for softmax it is ``Z_i softmax_ij``, which equals ``Gamma``. Default: the first attention block.
        """
        idx = self.attention_blocks()
        if not idx:
            raise ValueError("this network has no attention block (steps <= 1)")
        block = idx[0] if block is None else block
        if block not in idx:
            raise ValueError(f"block must be one of the attention blocks {idx}, got {block!r}")
        _, tokens = self.forward(x[:1] if x.dim() == 3 else x, t, return_tokens=True)
        h = tokens[block]
        attn = self.blocks[block].attn
        A = attn.weights(h)[0]  # (heads, N, N)
        coef = self.config["head_coef"]
        if self.config["attention"] == "softmax":
            Z = h[0, :, self.layout.idx("c", SCALARS.index("Z"))] * self.config["Z_bound"]
            return Z[:, None] * A[0]
        return torch.einsum("h,hij->ij", coef, A)


# ================================================================================================ construction helpers
class _Builder:
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


def _ranges(gp: GaussianProcess, t: float, schedule: Schedule, J: int | None, n_std: float) -> dict[str, float]:
    """Bounds for the entries the multiplication module sees, ``n_std`` standard deviations under ``x ~ p_t``.

    * offset ``r = x - alpha_t mu ~ N(0, M)`` with ``M = alpha_t^2 Gamma (x) Sigma + sigma_t^2 I``: its entries have
      standard deviation ``sqrt(alpha_t^2 max_j Sigma_jj + sigma_t^2)`` at most; gradients ``g^k`` shrink from ``r``.
    * iterates ``s^k``: in the eigenbasis of the band each component grows monotonically towards the limit
      ``-M_bar^{-1} r``, whose entries have variance close to ``diag(M_bar^{-1})`` (exact without truncation).
    """
    a = float(schedule.alpha(t)) ** 2
    b = float(schedule.sigma(t)) ** 2
    std_r = math.sqrt(a * float(gp.Sigma.diagonal().max()) + b)
    lam, U = torch.linalg.eigh(banded(gp.Gamma, J))
    _, _, m, V = gp.eig
    ev = a * lam[:, None] * m[None, :] + b
    diag_inv = (U**2) @ (1.0 / ev) @ (V**2).T
    std_s = math.sqrt(float(diag_inv.max()))
    mu_max = float(gp.mu.abs().max())
    return {
        "mu": mu_max if mu_max > 0 else 1.0,
        "r": n_std * std_r,
        "s": n_std * std_s,
        "Sigma_inf": float(gp.Sigma.abs().sum(1).max()),
    }


# ================================================================================================ the builder
def build_gd_transformer(
    gp: GaussianProcess,
    t: float,
    schedule: Schedule,
    steps: int,
    J: int | None = None,
    attention: str = "relu",
    mult_depth: int | None = None,
    eta: float | None = None,
    n_freq: int = 4,
    omega: float | None = None,
    n_std: float = 6.0,
    clip: bool = True,
) -> GDTransformer:
    """Write down the transformer that runs ``steps`` gradient-descent iterations towards the score at time ``t``.

    Args:
        gp: the Gaussian process (``Gamma``, ``Sigma``, ``mu``).
        t: diffusion time the network is built for, in ``(0, T]`` (ranges are sized for it).
        schedule: the forward process.
        steps: number of GD iterations, ``>= 0`` (step 1 follows Lemma 9, later ones Lemma 10 or 11).
        J: band ``|i - j| < J`` of the temporal kernel (ReLU attention; ``None`` keeps all ``N`` gaps). Softmax
            attention realises the whole kernel and needs ``J`` None (or ``>= N``).
        attention: ``"relu"`` (``4 J`` trapezoid heads) or ``"softmax"`` (one head; squared-exponential kernel only).
        mult_depth: ``None`` for exact (bilinear) multiplication by the diffusion-time scalars; an integer
            ``m >= 0`` for the ReLU multiplication module with ``m`` sawtooth levels (``m + 1`` blocks per module,
            product error ``<= B C 2^{-2m-1}``).
        eta: step size; default ``1 / lambda_max(alpha_t^2 Gamma_bar (x) Sigma + sigma_t^2 I)`` as in
            :func:`gptheory.unroll.gd_score`, recomputed by the embedding for every ``t``.
        n_freq, omega: sinusoidal time embedding (:func:`sinusoidal_embedding`), ReLU attention only.
        n_std: the multiplication and clipping ranges are ``n_std`` standard deviations of the quantities they
            bound under ``x ~ p_t`` (see ``config["ranges"]``).
        clip: clip the output to ``[-R, R]`` with ``R`` the iterate range (the decoder of Appendix B.3.1).

    Returns:
        a :class:`GDTransformer`; with ``mult_depth=None`` its output equals ``gd_score(gp, x, t, schedule, steps,
        J, eta)`` up to round-off for inputs inside the clipping range.

    Raises:
        ValueError: bad arguments; softmax with a kernel other than the squared exponential (``nu = 2``) or with a
            band; a band the time embedding cannot resolve (:func:`resolution`); a band that makes the objective
            non-convex at ``t``.
    """
    if not isinstance(gp, GaussianProcess):
        raise ValueError(f"gp must be a GaussianProcess, got {type(gp).__name__}")
    if not isinstance(schedule, Schedule):
        raise ValueError(f"schedule must be a Schedule (e.g. OUSchedule()), got {type(schedule).__name__}")
    t = float(schedule.check_t(t, include_zero=False))
    steps = nonneg_int("steps", steps)
    J = None if J is None else positive_int("J", J)
    if attention not in ("relu", "softmax"):
        raise ValueError(f"attention must be 'relu' or 'softmax', got {attention!r}")
    mult_depth = None if mult_depth is None else nonneg_int("mult_depth", mult_depth)
    eta = None if eta is None else real_in("eta", eta, 0.0, math.inf, low_open=True, high_open=True)
    n_std = real_in("n_std", n_std, 0.0, math.inf, low_open=True, high_open=True)
    N, d = gp.N, gp.d
    J_eff = None if J is None or J >= N else J
    if attention == "softmax":
        if gp.nu != 2.0:
            raise ValueError(
                f"softmax attention (Lemma 11) realises the squared-exponential kernel only: gp.nu must be 2, got "
                f"{gp.nu:g}. Use attention='relu' for other kernels"
            )
        if J_eff is not None:
            raise ValueError(
                f"softmax attention realises the whole kernel row in one head: J must be None (or >= N = {N}), got {J}"
            )
    n_heads_gaps = N if J_eff is None else J_eff
    if attention == "relu":  # can attention see the band at all? (checked before the numbers of the band)
        E = sinusoidal_embedding(N, n_freq, omega)
        psi = gap_profile(E)
        delta = resolution(psi, n_heads_gaps)
    else:
        E, psi, delta = None, None, None
    lo, _ = operator_bounds(gp, t, schedule, J_eff)
    if float(lo) <= 0:
        raise ValueError(
            f"the objective is not convex at t={t:g} with J={J}: alpha_t^2 Gamma_bar (x) Sigma + sigma_t^2 I has "
            f"smallest eigenvalue {float(lo):.3g} <= 0; take a larger band J or a larger t"
        )

    # ---- bounds that put every scalar in [0, 1] and every multiplied entry in [-B, B]
    rng = _ranges(gp, t, schedule, J_eff, n_std)
    # lambda_max(Gamma_bar (x) Sigma): the largest of the corner products, as gptheory.unroll computes it
    lam_G = torch.linalg.eigvalsh(banded(gp.Gamma, J_eff))
    m_S = gp.eig[2]
    lam_max = max(float(lam_G[0]) * float(m_S[0]), float(lam_G[0]) * float(m_S[-1]),
                  float(lam_G[-1]) * float(m_S[0]), float(lam_G[-1]) * float(m_S[-1]))  # fmt: skip
    eta_bound = eta if eta is not None else 1.0 / min(lam_max, 1.0)  # VP schedules: lambda_max(M) >= min(lam_max, 1)
    Zrow = kernel(torch.arange(N, dtype=DTYPE)[:, None] - torch.arange(N, dtype=DTYPE)[None, :], gp.nu, gp.ell).sum(1)
    Z_bound = float(Zrow.max())

    # ---- token layout
    L = Layout()
    for name in ("x", "mu"):
        L.add(name, d)
    if attention == "relu":
        L.add("e", E.shape[1])
    else:
        L.add("pos", 2)
    L.add("one", 1)
    L.add("c", len(SCALARS))
    for name in ("r", "s", "as", "bs", "g", "eg"):
        L.add(name, d)
    if attention == "softmax":
        L.add("att", d)
    if mult_depth is not None and mult_depth > 0:
        L.add("w", 4 * d)  # sawtooth scratch: two products of d entries at once, two squares each
    D = L.D

    # ---- embedding
    embed = TokenEmbedding(D, d, N, len(SCALARS))
    with torch.no_grad():
        embed.W_in[L["x"], :] = torch.eye(d, dtype=DTYPE)
        embed.P[:, L["mu"]] = gp.mu
        embed.P[:, L.idx("one")] = 1.0
        if attention == "relu":
            embed.P[:, L["e"]] = E
        else:
            p = torch.arange(N, dtype=DTYPE) / N
            embed.P[:, L.idx("pos", 0)] = p
            embed.P[:, L.idx("pos", 1)] = p**2
        for k in range(4):  # alpha, a, b, eta/eta_bound (Z is written by the network)
            embed.W_c[L.idx("c", k), k] = 1.0

    B = _Builder(L, mult_depth)
    iA, ia, ib, ie, iZ = range(5)

    # ---- softmax: write Z_i / Z_bound into its slot once (piecewise-linear interpolation, exact on the grid)
    if attention == "softmax":
        ffn = FeedForward(D, max(N - 1, 1))
        slope = torch.diff(Zrow, prepend=Zrow[:1])[1:]  # Z_{k+1} - Z_k, k = 0..N-2
        kinks = torch.diff(slope, prepend=torch.zeros(1, dtype=DTYPE))
        with torch.no_grad():
            for k in range(N - 1):
                ffn.W_1[k, L.idx("pos", 0)] = float(N)  # relu(i - k)
                ffn.b_1[k] = -float(k)
                ffn.W_2[L.idx("c", iZ), k] = float(kinks[k]) / Z_bound
            ffn.b_2[L.idx("c", iZ)] = float(Zrow[0]) / Z_bound
        B.blocks.append(Block(None, ffn, "softmax normaliser: Z_i from the position (ReLU interpolation)"))

    # ---- step 1 (Lemma 9): s^0 = 0, so the gradient is the offset r = x - alpha_t mu
    has_mu = bool(gp.mu.abs().max() > 0)
    if steps >= 1:
        if has_mu:
            B.multiply([("as", "mu", iA, 1.0, rng["mu"])], "step 1: alpha_t mu")
            B.linear([("r", "x", 1.0), ("r", "as", -1.0), ("g", "x", 1.0), ("g", "as", -1.0)], ["as"],
                     "step 1: offset r = x - alpha_t mu, gradient g = r")  # fmt: skip
        else:
            B.linear([("r", "x", 1.0), ("g", "x", 1.0)], [], "step 1: offset r = x, gradient g = r")
        B.multiply([("eg", "g", ie, eta_bound, rng["r"])], "step 1: eta_t g")
        B.linear([("s", "eg", -1.0)], ["g", "eg"], "step 1: s = -eta_t g")

    # ---- steps 2.. (Lemma 10 / 11)
    head_coef = []
    for k in range(2, steps + 1):
        B.multiply(
            [("as", "s", ia, 1.0, rng["s"]), ("bs", "s", ib, 1.0, rng["s"])], f"step {k}: alpha_t^2 s, sigma_t^2 s"
        )
        if attention == "relu":
            H = 4 * n_heads_gaps
            d_k = L["e"].stop - L["e"].start + 1
            attn = MultiHeadAttention(D, H, d_k, d, "relu")
            scale = math.sqrt(d_k)
            head_coef = []
            with torch.no_grad():
                for gap in range(n_heads_gaps):
                    gam = float(kernel(float(gap), gp.nu, gp.ell))
                    for u, (shift, sign) in enumerate([(2.0, 1.0), (1.0, -1.0), (-1.0, -1.0), (-2.0, 1.0)]):
                        hh = 4 * gap + u
                        # score = 4 (psi_ij - psi(gap)) / delta + shift, times sqrt(d_k) for the usual 1/sqrt(d_k)
                        attn.W_Q[hh, :-1, L["e"]] = scale * 4.0 / delta * torch.eye(d_k - 1, dtype=DTYPE)
                        attn.W_Q[hh, -1, L.idx("one")] = scale * (-4.0 * float(psi[gap]) / delta + shift)
                        attn.W_K[hh, :-1, L["e"]] = torch.eye(d_k - 1, dtype=DTYPE)
                        attn.W_K[hh, -1, L.idx("one")] = 1.0
                        attn.W_V[hh, :, L["as"]] = gp.Sigma
                        attn.W_O[L["g"], hh * d : (hh + 1) * d] = sign * gam * torch.eye(d, dtype=DTYPE)
                        head_coef.append(sign * gam)
            B.linear(
                [("g", "bs", 1.0), ("g", "r", 1.0)],
                ["as", "bs"],
                f"step {k}: attention g = sum_j Gamma_bar_ij Sigma alpha_t^2 s_j; FFN g += sigma_t^2 s + r",
                attn=attn,
            )
        else:
            c = N**2 / gp.ell**2
            attn = MultiHeadAttention(D, 1, 2, d, "softmax")
            with torch.no_grad():
                # q_i . k_j = c (2 p_i p_j - p_j^2) = (2 i j - j^2) / ell^2;  softmax_j = Gamma_ij / Z_i
                attn.W_Q[0, 0, L.idx("pos", 0)] = math.sqrt(2) * 2 * c
                attn.W_Q[0, 1, L.idx("one")] = math.sqrt(2) * c
                attn.W_K[0, 0, L.idx("pos", 0)] = 1.0
                attn.W_K[0, 1, L.idx("pos", 1)] = -1.0
                attn.W_V[0, :, L["as"]] = gp.Sigma
                attn.W_O[L["att"], :] = torch.eye(d, dtype=DTYPE)
            head_coef = [1.0]
            B.linear(
                [("g", "bs", 1.0), ("g", "r", 1.0)],
                ["as", "bs"],
                f"step {k}: softmax attention att = sum_j Gamma_ij Sigma alpha_t^2 s_j / Z_i; FFN g += sigma_t^2 s + r",
                attn=attn,
            )
            B.multiply([("g", "att", iZ, Z_bound, rng["Sigma_inf"] * rng["s"])], f"step {k}: g = Z_i att")
        B.multiply([("eg", "g", ie, eta_bound, rng["r"])], f"step {k}: eta_t g")
        spent = ["g", "eg"] + (["att"] if attention == "softmax" else [])
        B.linear([("s", "eg", -1.0)], spent, f"step {k}: s -= eta_t g")

    R = rng["s"] if clip else math.inf
    decoder = Decoder(D, d, R)
    with torch.no_grad():
        decoder.W_read[:, L["s"]] = torch.eye(d, dtype=DTYPE)

    config = {
        "t": t,
        "steps": steps,
        "J": J,
        "J_eff": J_eff,
        "attention": attention,
        "mult_depth": mult_depth,
        "eta": eta,
        "eta_bound": eta_bound,
        "lambda_max": lam_max,
        "Z_bound": Z_bound,
        "delta": delta,
        "psi": psi,
        "n_std": n_std,
        "ranges": rng,
        "clip": R,
        "head_coef": torch.tensor(head_coef, dtype=DTYPE),
        "gaps": n_heads_gaps if attention == "relu" else N,
    }
    model = GDTransformer(gp, schedule, L, embed, B.blocks, decoder, config)
    model.requires_grad_(False)
    return model


# ================================================================================================ size report
def size_report(model: GDTransformer) -> dict[str, float | int]:
    """Sizes of the network, the quantities Theorem 1's tables bound.

    Returns a dict with ``blocks`` (residual blocks), ``attention_blocks``, ``heads`` (per attention block),
    ``heads_total``, ``width`` (token width ``D``), ``hidden`` (widest feed-forward layer), ``params`` (all weight
    and bias entries), ``nonzero`` (non-zero ones), ``param_max`` (largest magnitude, the paper's parameter bound)
    and ``param_norm`` (Euclidean norm of all parameters).
    """
    if not isinstance(model, GDTransformer):
        raise ValueError(f"model must be a GDTransformer, got {type(model).__name__}")
    params = torch.cat([p.detach().flatten() for p in model.parameters()])
    blocks = list(model.blocks)
    heads = [b.heads for b in blocks if b.heads > 0]
    return {
        "blocks": len(blocks),
        "attention_blocks": len(heads),
        "heads": max(heads) if heads else 0,
        "heads_total": sum(heads),
        "width": model.layout.D,
        "hidden": max((b.ffn.hidden for b in blocks), default=0),
        "params": int(params.numel()),
        "nonzero": int((params != 0).sum()),
        "param_max": float(params.abs().max()) if params.numel() else 0.0,
        "param_norm": float(params.norm()),
    }


def theorem_orders(kappa: float, eps: float, J: int, d: int, attention: str = "relu") -> dict[str, float]:
    """Theorem 1's orders with every constant set to 1, for comparison with :func:`size_report`.

    ``steps ~ kappa log(1/eps)`` (Lemma 1), ``blocks ~ steps * log(1/eps)`` (each step has multiplication modules of
    depth ``O(log(1/eps))``), ``heads ~ J`` per attention block (ReLU; 1 for softmax), token width ``~ d``.
    These are orders, not counts: only their growth is comparable.
    """
    kappa = real_in("kappa", kappa, 1.0, math.inf, high_open=True)
    eps = real_in("eps", eps, 0.0, 1.0, low_open=True, high_open=True)
    J = positive_int("J", J)
    d = positive_int("d", d)
    L = math.log(1.0 / eps)
    steps = kappa * L
    return {"steps": steps, "blocks": steps * L, "heads": float(J if attention == "relu" else 1), "width": float(d)}


def format_size_report(model: GDTransformer) -> str:
    """The size report as a small text table."""
    rep = size_report(model)
    cfg = model.config
    lines = [
        f"GD transformer: {cfg['attention']} attention, steps={cfg['steps']}, J={cfg['J']}, "
        f"mult_depth={'exact' if cfg['mult_depth'] is None else cfg['mult_depth']}",
        f"  blocks            {rep['blocks']:>10d}   (attention blocks {rep['attention_blocks']})",
        f"  heads per block   {rep['heads']:>10d}   (total {rep['heads_total']})",
        f"  token width D     {rep['width']:>10d}",
        f"  FFN hidden width  {rep['hidden']:>10d}",
        f"  parameters        {rep['params']:>10d}   (non-zero {rep['nonzero']})",
        f"  max |parameter|   {rep['param_max']:>10.3g}",
        f"  ||parameters||_2  {rep['param_norm']:>10.3g}",
    ]
    return "\n".join(lines)
