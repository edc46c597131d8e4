"""A one-dimensional diffusion transformer (DiT) for sequences ``x: (batch, N, d)``.

The architecture follows Peebles and Xie's DiT (adaLN-Zero blocks, a sinusoidal diffusion-time
embedding of width 256 followed by an MLP, a fixed sinusoidal position embedding and a final adaLN
layer), with the patchify step replaced as in the paper: one frame ``x_i in R^d`` is one token.

Two token layouts:

* ``tokens="concat"`` (default, the layout of the paper's analysis): token ``i`` is the
  concatenation ``[W x_i + b ; e_i]`` of the embedded frame (``hidden - pos_dim`` wide) and the
  frame's fixed sinusoidal time embedding ``e_i`` (``pos_dim`` wide). Every query/key/value weight
  matrix then splits column-wise into a part acting on the data coordinates and a part acting on
  the time-embedding coordinates (:meth:`DiT.qkv_weights`).
* ``tokens="add"``: the usual DiT layout ``W x_i + b + e_i`` (``e_i`` is ``hidden`` wide).

The model predicts the noise ``eps_hat(x_t, t)`` of the forward process
``x_t = alpha_t x_0 + sigma_t eps`` of its schedule (DiT's :class:`~gptheory.schedules.DDPMSchedule` by
default); the score is ``-eps_hat / sigma_t``. Everything the DiT shares with the other score networks
(input checks, the ``prediction`` choice and its conversion to ``eps_hat``, the training target, the score)
lives in the base class :class:`gptheory.denoiser.Denoiser`; this module holds only the transformer.
What the network itself outputs is chosen by ``prediction``:

* ``"eps"`` (DiT's choice): the network output ``F`` is ``eps_hat``.
* ``"v"`` (Salimans and Ho's v-parameterisation): ``F`` estimates ``v = alpha_t eps - sigma_t x_0`` and
  ``eps_hat = sigma_t x_t + alpha_t F``. The same function class, but the trainer's loss ``|F - v|^2``
  (:meth:`~gptheory.denoiser.Denoiser.target`) equals ``|eps_hat - eps|^2 / alpha_t^2``. Near ``T`` the exact
  noise is almost ``sigma_t x_t`` and the sampler's drift multiplies any error in it by the large ``beta_t``;
  with ``"v"`` that term is built in rather than rebuilt through the layers, and the network's error reaches
  ``eps_hat`` scaled by ``alpha_t``, which vanishes there (see :func:`gptheory.attention.eigen_response`).

Two attention paths give the same output: the fast one calls
``torch.nn.functional.scaled_dot_product_attention``; the analysis one
(``forward(..., return_attention=True)``) forms ``softmax(q k^T / sqrt(d_head))`` explicitly and
returns each layer's attention probabilities ``(batch, heads, N, N)``.

Speed choices (see ``python -m gptheory.bench train``): one fused ``qkv`` linear per block, one
adaLN modulation linear for all blocks and the final layer together (the concatenation of DiT's
per-block modulation weights, so the same function), ``addcmul`` for modulation and gated
residuals, the exact (erf) GELU, whose CPU kernel is much faster than the tanh approximation, a
parameter-free LayerNorm computed with a fixed unit weight (:class:`LayerNorm`), q/k/v split so that
SDPA's gradients need no extra copy, and no input checks on the training path (``check=False``).

(Over 400 lines on purpose: the whole network in one file, as DiT's ``models.py``.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .denoiser import Denoiser
from .schedules import Schedule
from .validation import one_of, positive_int, real_in

TOKENS = ("concat", "add")
ACTIVATIONS = ("gelu", "gelu_tanh")


def sinusoidal_embedding(positions: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sin-cos features ``(len(positions), dim)`` of real positions ``(n,)``.

    Column ``k < dim/2`` is ``cos(p w_k)`` and column ``dim/2 + k`` is ``sin(p w_k)`` with
    ``w_k = max_period^(-k / (dim/2))``; an odd ``dim`` gets a zero last column. Inner products
    ``<e(p), e(q)> = sum_k cos((p - q) w_k)`` depend only on the gap ``p - q``.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=positions.device) / half)
    args = positions.to(torch.float32)[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


def dit_args(
    hidden: int,
    depth: int,
    heads: int,
    tokens: str = "concat",
    pos_dim: int | None = None,
    mlp_ratio: float = 4.0,
    freq_dim: int = 256,
    activation: str = "gelu",
) -> dict:
    """The rules of the DiT's size and layout arguments, in one place: :class:`DiT` and
    :class:`gptheory.config.ModelConfig` both call this, so a configuration that passes is never rejected by the
    network. Returns the arguments with ``pos_dim`` resolved (``hidden // 2`` in the concat layout, ``hidden`` in the
    add layout); raises ``ValueError`` naming the argument, its value and the valid range.
    """
    hidden, depth, heads = positive_int("hidden", hidden), positive_int("depth", depth), positive_int("heads", heads)
    if hidden % heads:
        raise ValueError(f"hidden must be divisible by heads, got hidden={hidden} and heads={heads}")
    if one_of("tokens", tokens, TOKENS) == "concat":
        pos_dim = hidden // 2 if pos_dim is None else positive_int("pos_dim", pos_dim)
        if pos_dim >= hidden:
            raise ValueError(f"pos_dim must be in [1, {hidden - 1}] (below hidden) for tokens='concat', got {pos_dim}")
    elif pos_dim not in (None, hidden):
        raise ValueError(f"pos_dim must equal hidden={hidden} for tokens='add', got {pos_dim}")
    return {
        "hidden": hidden,
        "depth": depth,
        "heads": heads,
        "tokens": tokens,
        "pos_dim": hidden if pos_dim is None else pos_dim,
        "mlp_ratio": real_in("mlp_ratio", mlp_ratio, 0.0, 64.0, low_open=True),
        "freq_dim": positive_int("freq_dim", freq_dim),
        "activation": one_of("activation", activation, ACTIVATIONS),
    }


class TimestepEmbedder(nn.Module):
    """Diffusion time ``t: (batch,)`` in ``[0, T]`` to a ``(batch, hidden)`` conditioning vector.

    As in DiT, ``t`` is first put on the 1000-step scale (``1000 t / T``), embedded with
    ``freq_dim`` sinusoids, then passed through ``Linear -> SiLU -> Linear``.
    """

    def __init__(self, hidden: int, freq_dim: int = 256, T: float = 1.0) -> None:
        super().__init__()
        self.freq_dim = freq_dim
        self.scale = 1000.0 / T
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        emb = sinusoidal_embedding(t * self.scale, self.freq_dim)
        return self.mlp(emb.to(self.mlp[0].weight.dtype))


class LayerNorm(nn.Module):
    """LayerNorm over the last dimension without learnable parameters (DiT's ``elementwise_affine=False``).

    The same function as ``nn.LayerNorm(hidden, elementwise_affine=False)``, computed by ``F.layer_norm``
    with a fixed unit weight (a non-persistent buffer, so checkpoints do not change): PyTorch's CPU
    kernel for the case with a weight is about twice as fast, forward and backward, at these widths.
    """

    def __init__(self, hidden: int, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(hidden), persistent=False)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.layer_norm(h, self.weight.shape, self.weight, None, self.eps)


class DiTBlock(nn.Module):
    """One adaLN-Zero block: ``h += gate_a * Attn(mod(LN(h)))``; ``h += gate_m * MLP(mod(LN(h)))``.

    The six modulation vectors ``mod = (shift_a, scale_a, gate_a, shift_m, scale_m, gate_m)``, each
    ``(batch, 1, hidden)``, come from the model's fused adaLN linear.
    """

    def __init__(self, hidden: int, heads: int, mlp_ratio: float = 4.0, activation: str = "gelu") -> None:
        super().__init__()
        self.heads = heads
        self.approximate = "tanh" if activation == "gelu_tanh" else "none"
        self.head_dim = hidden // heads
        self.norm1 = LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.proj = nn.Linear(hidden, hidden)
        self.norm2 = LayerNorm(hidden)
        width = int(hidden * mlp_ratio)
        self.fc1 = nn.Linear(hidden, width)
        self.fc2 = nn.Linear(width, hidden)

    def attention(self, h: torch.Tensor, explicit: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Multi-head self-attention of ``h: (batch, N, hidden)``; probabilities only when ``explicit``."""
        B, N, H = h.shape
        # split at the "3" axis, then move heads forward: the backward stacks SDPA's gradients (laid out as
        # (B, N, heads, head_dim)) straight into the qkv layout, with no further copy
        q, k, v = (z.transpose(1, 2) for z in self.qkv(h).view(B, N, 3, self.heads, self.head_dim).unbind(2))
        if explicit:
            probs = torch.softmax((q @ k.transpose(-2, -1)) * self.head_dim**-0.5, dim=-1)
            out = probs @ v
        else:
            probs = None
            out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(B, N, H)), probs

    def forward(
        self, h: torch.Tensor, mod: Sequence[torch.Tensor], explicit: bool = False
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        shift_a, scale_a, gate_a, shift_m, scale_m, gate_m = mod
        a, probs = self.attention(torch.addcmul(shift_a, self.norm1(h), 1 + scale_a), explicit)
        h = torch.addcmul(h, gate_a, a)
        m = self.fc2(F.gelu(self.fc1(torch.addcmul(shift_m, self.norm2(h), 1 + scale_m)), approximate=self.approximate))
        return torch.addcmul(h, gate_m, m), probs


class DiT(Denoiser):
    """Diffusion transformer for ``N`` frames of dimension ``d``; predicts the noise ``(batch, N, d)``.

    Args:
        N: sequence length (number of frames, one token each).
        d: frame dimension.
        hidden: token width.
        depth: number of adaLN-Zero blocks.
        heads: attention heads (``hidden`` must be divisible by ``heads``).
        tokens: ``"concat"`` (``[W x_i + b ; e_i]``) or ``"add"`` (``W x_i + b + e_i``).
        pos_dim: width of ``e_i`` in the concat layout (default ``hidden // 2``).
        mlp_ratio: feed-forward width over ``hidden``.
        freq_dim: width of the sinusoidal diffusion-time features (DiT: 256).
        activation: feed-forward nonlinearity, ``"gelu"`` (exact, erf) or ``"gelu_tanh"`` (DiT's tanh
            approximation). The default is the exact GELU: the two differ by less than 1e-3 everywhere,
            and PyTorch's CPU kernel for the tanh form is about 3x slower (forward + backward).
        prediction: what the network outputs, ``"eps"`` (the noise) or ``"v"`` (``alpha_t eps - sigma_t x_0``);
            :meth:`forward` returns the noise prediction either way.
        schedule: the forward process ``(alpha_t, sigma_t)`` on ``[0, T]`` (a :class:`Schedule` or its
            ``config()`` dict; default :class:`~gptheory.schedules.DDPMSchedule`, DiT's).

    Attributes:
        data_dim: number of token coordinates that carry the embedded frame (``hidden - pos_dim``
            in the concat layout, ``hidden`` in the add layout).
    """

    def __init__(
        self,
        N: int,
        d: int,
        hidden: int = 128,
        depth: int = 4,
        heads: int = 4,
        tokens: str = "concat",
        pos_dim: int | None = None,
        mlp_ratio: float = 4.0,
        freq_dim: int = 256,
        activation: str = "gelu",
        prediction: str = "eps",
        schedule: Schedule | dict | None = None,
    ) -> None:
        super().__init__(N, d, prediction, schedule)
        args = dit_args(hidden, depth, heads, tokens, pos_dim, mlp_ratio, freq_dim, activation)
        self.hidden, self.depth, self.heads, self.tokens = args["hidden"], args["depth"], args["heads"], args["tokens"]
        self.pos_dim, self.mlp_ratio, self.freq_dim = args["pos_dim"], args["mlp_ratio"], args["freq_dim"]
        self.activation = args["activation"]
        self.data_dim = self.hidden - self.pos_dim if tokens == "concat" else self.hidden

        self.x_embed = nn.Linear(self.d, self.data_dim)
        self.register_buffer("pos", sinusoidal_embedding(torch.arange(self.N), self.pos_dim), persistent=False)
        self.t_embed = TimestepEmbedder(self.hidden, self.freq_dim, self.T)
        self.blocks = nn.ModuleList(
            DiTBlock(self.hidden, self.heads, self.mlp_ratio, activation) for _ in range(self.depth)
        )
        # the modulation of every block (6 vectors) and of the final layer (2) from one linear map
        self.adaLN = nn.Linear(self.hidden, (6 * self.depth + 2) * self.hidden)
        self.norm_out = LayerNorm(self.hidden)
        self.out = nn.Linear(self.hidden, self.d)
        self.reset_parameters()

    def config(self) -> dict:
        """Constructor arguments, enough to rebuild the model (stored in checkpoints)."""
        return {
            "N": self.N,
            "d": self.d,
            "hidden": self.hidden,
            "depth": self.depth,
            "heads": self.heads,
            "tokens": self.tokens,
            "pos_dim": self.pos_dim,
            "mlp_ratio": self.mlp_ratio,
            "freq_dim": self.freq_dim,
            "activation": self.activation,
            "prediction": self.prediction,
            "schedule": self.schedule.config(),
        }

    def reset_parameters(self) -> None:
        """DiT's initialisation: Xavier-uniform linears with zero bias, N(0, 0.02) time MLP, zero adaLN and output."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        for blk in self.blocks:  # xavier on the fused qkv as if it were three separate hidden x hidden maps
            for w in blk.qkv.weight.chunk(3, dim=0):
                nn.init.xavier_uniform_(w)
        nn.init.normal_(self.t_embed.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embed.mlp[2].weight, std=0.02)
        for m in (self.adaLN, self.out):
            nn.init.zeros_(m.weight)
            nn.init.zeros_(m.bias)

    # ------------------------------------------------------------------ forward
    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor | float,
        return_attention: bool = False,
        check: bool = True,
        raw: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """Noise prediction ``eps_hat: (batch, N, d)`` for ``x: (batch, N, d)`` at times ``t: (batch,)``.

        Args:
            x: noisy sequences ``x_t``; cast to the model's dtype, the output is cast back.
            t: diffusion times in ``[0, T]`` (a float is broadcast over the batch).
            return_attention: use the explicit attention path and also return the list of
                per-layer attention probabilities, each ``(batch, heads, N, N)``.
            check: validate the inputs (``False`` on the training path, where data are checked once).
            raw: return the network output ``F`` itself (``eps_hat`` or the ``v`` estimate, see
                ``prediction``), the quantity the training loss compares with :meth:`target`.
        """
        if check:
            x, t = self.check_inputs(x, t)
        in_dtype = x.dtype
        w_dtype = self.x_embed.weight.dtype
        x = x.to(w_dtype)
        B = x.shape[0]
        h = self.x_embed(x)
        pos = self.pos.to(h.dtype)
        if self.tokens == "concat":
            h = torch.cat([h, pos.expand(B, -1, -1)], dim=-1)
        else:
            h = h + pos
        c = F.silu(self.t_embed(t))
        mods = self.adaLN(c).view(B, 6 * self.depth + 2, 1, self.hidden).unbind(1)  # one split, one backward stack
        probs = []
        for i, blk in enumerate(self.blocks):
            h, p = blk(h, mods[6 * i : 6 * i + 6], explicit=return_attention)
            probs.append(p)
        shift, scale = mods[-2:]
        out = self.out(torch.addcmul(shift, self.norm_out(h), 1 + scale)).to(in_dtype)  # F: eps_hat or v_hat
        out = self.eps_from_output(out, x, t, raw)  # eps_hat = sigma_t x_t + alpha_t v_hat for prediction="v"
        if return_attention:
            return out, probs
        return out

    # ------------------------------------------------------------------ analysis
    def qkv_weights(self) -> list[dict[str, torch.Tensor]]:
        """Per layer, the query/key/value weights split into their data and time-embedding columns.

        For layer ``l`` the dict holds ``"q_x", "k_x", "v_x"`` of shape ``(hidden, data_dim)`` (acting on
        the token coordinates that start as the embedded frame) and ``"q_e", "k_e", "v_e"`` of shape
        ``(hidden, pos_dim)`` (acting on the coordinates that start as the time embedding ``e_i``),
        so ``q_x.T @ k_x`` and ``q_e.T @ k_e`` are the data-data and time-time blocks of ``W_q^T W_k``.
        Only the concat layout has this split. Detached copies.
        """
        if self.tokens != "concat":
            raise ValueError("qkv_weights needs tokens='concat' (in the 'add' layout data and time share coordinates)")
        out = []
        for blk in self.blocks:
            W = blk.qkv.weight.detach().clone()
            parts = {}
            for name, Wn in zip("qkv", W.chunk(3, dim=0), strict=True):
                parts[f"{name}_x"], parts[f"{name}_e"] = Wn[:, : self.data_dim], Wn[:, self.data_dim :]
            out.append(parts)
        return out
