"""The recipe of Theorem 1: write down the transformer that runs gradient descent towards the score.

:func:`build_gd_transformer` follows Lemmas 9-11 step by step:

1. **layout** -- name the slots of a token (:func:`token_layout`);
2. **embed** -- put the frame, the mean, the positional features and the diffusion-time scalars into them
   (:func:`embedding`);
3. **gradient-descent steps** -- the first from ``s = 0`` needs no attention (Lemma 9, :func:`first_step`); every
   later one is a multiplication module, an attention block for the temporal sum, a second multiplication module and
   the update (Lemma 10 with ReLU heads, Lemma 11 with one softmax head; :func:`gd_step`);
4. **decode** -- read the iterate and clip it (:func:`read_out`).

The numbers the recipe needs come from the rest of the package: ``Gamma`` from the process, the extreme eigenvalues
from :func:`gptheory.unroll.kron_extremes`, and the ranges of the multiplied entries from :func:`ranges`.
"""

from __future__ import annotations

import math

import torch

from ..gp import DTYPE, GaussianProcess
from ..schedules import Schedule
from ..truncation import banded
from ..unroll import kron_extremes, operator_bounds
from ..validation import nonneg_int, positive_int, real_in
from .embedding import frame_embedding, gap_inner_products, resolution
from .heads import band_heads, kernel_head, softmax_normaliser
from .layers import Decoder, MultiHeadAttention, TokenEmbedding
from .modules import BlockWriter
from .network import SCALARS, GDTransformer, Layout

ATTENTIONS = ("relu", "softmax")
iA, ia, ib, ie, iZ = range(len(SCALARS))  # alpha_t, alpha_t^2, sigma_t^2, eta_t, Z_i


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
    t_end: float | None = None,
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
        n_freq, omega: the frames' sinusoidal embedding (:func:`~gptheory.construct.frame_embedding`), ReLU only.
        n_std: the multiplication and clipping ranges are ``n_std`` standard deviations of the quantities they
            bound under ``x ~ p_t`` (see ``config["ranges"]``).
        clip: clip the output to ``[-R, R]`` with ``R`` the iterate range (the decoder of Appendix B.3.1).
        t_end: with a time ``t_end`` in ``[t, T]``, size the ranges and check convexity for every time in
            ``[t, t_end]`` (:func:`ranges_over`) instead of ``t`` alone, so that one network serves the whole interval
            (``steps`` must then be enough for the worst ``kappa_t`` there: see
            :func:`~gptheory.construct.build_uniform_transformer`). Default: ``t`` only.

    Returns:
        a :class:`GDTransformer`; with ``mult_depth=None`` its output equals ``gd_score(gp, x, t, schedule, steps,
        J, eta)`` up to round-off for inputs inside the clipping range.

    Raises:
        ValueError: bad arguments; softmax with a kernel other than the squared exponential (``nu = 2``) or with a
            band; a band the time embedding cannot resolve (:func:`~gptheory.construct.resolution`); a band that
            makes the objective non-convex at ``t``.
    """
    t, steps, J_eff, mult_depth, eta, n_std = _check(gp, t, schedule, steps, J, attention, mult_depth, eta, n_std)
    t_end = t if t_end is None else real_in("t_end", t_end, t, schedule.T)
    gaps = gp.N if J_eff is None else J_eff
    E = psi = delta = None
    if attention == "relu":  # can attention see the band at all? (checked before the numbers of the band)
        E = frame_embedding(gp.N, n_freq, omega)
        psi = gap_inner_products(E)
        delta = resolution(psi, gaps)
    ends = torch.tensor([t, t_end], dtype=DTYPE)
    lo, _ = operator_bounds(gp, ends, schedule, J_eff)  # linear in alpha_t^2: its minimum over [t, t_end] is at an end
    if float(lo.min()) <= 0:
        t_bad = float(ends[int(torch.argmin(lo))])
        raise ValueError(
            f"the objective is not convex at t={t_bad:g} with J={J}: alpha_t^2 Gamma_bar (x) Sigma + sigma_t^2 I has "
            f"smallest eigenvalue {float(lo.min()):.3g} <= 0; take a larger band J or a larger t"
        )
    lam_max = kron_extremes(gp, J_eff)[1]
    eta_bound = eta if eta is not None else 1.0 / min(lam_max, 1.0)  # VP schedules: lambda_max(M) >= min(lam_max, 1)
    Z = gp.Gamma.sum(1)  # row sums of the kernel, the softmax normaliser
    rng = ranges_over(gp, t, t_end, schedule, J_eff, n_std)

    # 1. layout, 2. embed
    layout = token_layout(gp.d, attention, None if E is None else E.shape[1], mult_depth)
    embed = embedding(layout, gp, E)
    # 3. the gradient-descent steps
    w = BlockWriter(layout, mult_depth)
    if attention == "softmax":
        w.blocks.append(softmax_normaliser(layout, Z, float(Z.max())))
    head_coef: list[float] = []
    if steps >= 1:
        first_step(w, gp, rng, eta_bound)
    for k in range(2, steps + 1):
        if attention == "relu":
            attn, head_coef = band_heads(layout, gp, gaps, psi, delta)
        else:
            attn, head_coef = kernel_head(layout, gp), [1.0]
        gd_step(w, k, attn, rng, eta_bound, float(Z.max()))
    # 4. decode
    R = rng["s"] if clip else math.inf
    config = {
        "t": t,
        "t_interval": (t, t_end),
        "steps": steps,
        "J": J,
        "J_eff": J_eff,
        "attention": attention,
        "mult_depth": mult_depth,
        "eta": eta,
        "eta_bound": eta_bound,
        "lambda_max": lam_max,
        "Z_bound": float(Z.max()),
        "delta": delta,
        "psi": psi,
        "n_freq": n_freq,
        "omega": omega,
        "n_std": n_std,
        "ranges": rng,
        "clip": R,
        "head_coef": torch.tensor(head_coef, dtype=DTYPE),
        "gaps": gaps if attention == "relu" else gp.N,
    }
    model = GDTransformer(gp, schedule, layout, embed, w.blocks, read_out(layout, gp.d, R), config)
    model.requires_grad_(False)
    return model


# ------------------------------------------------------------------------------------------------ the four parts
def token_layout(d: int, attention: str, embedding_width: int | None, mult_depth: int | None) -> Layout:
    """The token's slots: ``x, mu`` (``d`` each), the embedding ``e`` (ReLU) or ``pos`` (softmax), ``one``, the
    scalars ``c``, then the offset ``r``, the iterate ``s`` and the work slots ``as, bs, g, eg`` (and ``att`` for
    softmax, ``w`` for the ReLU multiplication module's scratch space)."""
    L = Layout()
    L.add("x", d)
    L.add("mu", d)
    if attention == "relu":
        L.add("e", embedding_width)
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
    return L


def embedding(layout: Layout, gp: GaussianProcess, E: torch.Tensor | None) -> TokenEmbedding:
    """Token ``i`` = the frame in ``x``, ``mu_i`` in ``mu``, 1 in ``one``, the embedding ``E_i`` in ``e`` (or the
    position features ``(i/N, (i/N)^2)`` in ``pos``) and the diffusion-time scalars in ``c``."""
    L, N, d = layout, gp.N, gp.d
    embed = TokenEmbedding(L.D, d, N, len(SCALARS))
    with torch.no_grad():
        embed.W_in[L["x"], :] = torch.eye(d, dtype=DTYPE)
        embed.P[:, L["mu"]] = gp.mu
        embed.P[:, L.idx("one")] = 1.0
        if E is not None:
            embed.P[:, L["e"]] = E
        else:
            p = torch.arange(N, dtype=DTYPE) / N
            embed.P[:, L.idx("pos", 0)] = p
            embed.P[:, L.idx("pos", 1)] = p**2
        for k in (iA, ia, ib, ie):  # Z is written by the network
            embed.W_c[L.idx("c", k), k] = 1.0
    return embed


def first_step(w: BlockWriter, gp: GaussianProcess, rng: dict[str, float], eta_bound: float) -> None:
    """Lemma 9: from ``s^0 = 0`` the gradient is the offset ``r = x - alpha_t mu``, so ``s^1 = -eta_t r``."""
    if bool(gp.mu.abs().max() > 0):
        w.multiply([("as", "mu", iA, 1.0, rng["mu"])], "step 1: alpha_t mu")
        w.linear([("r", "x", 1.0), ("r", "as", -1.0), ("g", "x", 1.0), ("g", "as", -1.0)], ["as"],
                 "step 1: offset r = x - alpha_t mu, gradient g = r")  # fmt: skip
    else:
        w.linear([("r", "x", 1.0), ("g", "x", 1.0)], [], "step 1: offset r = x, gradient g = r")
    w.multiply([("eg", "g", ie, eta_bound, rng["r"])], "step 1: eta_t g")
    w.linear([("s", "eg", -1.0)], ["g", "eg"], "step 1: s = -eta_t g")


def gd_step(
    w: BlockWriter, k: int, attn: MultiHeadAttention, rng: dict[str, float], eta_bound: float, Z_bound: float
) -> None:
    """Lemmas 10/11: step ``k`` is ``alpha_t^2 s, sigma_t^2 s`` (multiplication), the attention block
    ``g = sum_j Gamma_bar_ij Sigma alpha_t^2 s_j`` with ``g += sigma_t^2 s + r`` in its feed-forward layer (softmax:
    then ``g *= Z_i``), ``eta_t g`` (multiplication) and ``s -= eta_t g``."""
    softmax = attn.activation == "softmax"
    w.multiply([("as", "s", ia, 1.0, rng["s"]), ("bs", "s", ib, 1.0, rng["s"])], f"step {k}: alpha_t^2 s, sigma_t^2 s")
    role = (
        f"step {k}: softmax attention att = sum_j Gamma_ij Sigma alpha_t^2 s_j / Z_i; FFN g += sigma_t^2 s + r"
        if softmax
        else f"step {k}: attention g = sum_j Gamma_bar_ij Sigma alpha_t^2 s_j; FFN g += sigma_t^2 s + r"
    )
    w.linear([("g", "bs", 1.0), ("g", "r", 1.0)], ["as", "bs"], role, attn=attn)
    if softmax:
        w.multiply([("g", "att", iZ, Z_bound, rng["Sigma_inf"] * rng["s"])], f"step {k}: g = Z_i att")
    w.multiply([("eg", "g", ie, eta_bound, rng["r"])], f"step {k}: eta_t g")
    w.linear([("s", "eg", -1.0)], ["g", "eg"] + (["att"] if softmax else []), f"step {k}: s -= eta_t g")


def read_out(layout: Layout, d: int, R: float) -> Decoder:
    """The decoder: the iterate slot ``s``, clipped to ``[-R, R]`` (no clipping for ``R = inf``)."""
    decoder = Decoder(layout.D, d, R)
    with torch.no_grad():
        decoder.W_read[:, layout["s"]] = torch.eye(d, dtype=DTYPE)
    return decoder


# ------------------------------------------------------------------------------------------------ the numbers
def ranges(gp: GaussianProcess, t: float, schedule: Schedule, J: int | None, n_std: float) -> dict[str, float]:
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


def ranges_over(
    gp: GaussianProcess, t: float, t_end: float, schedule: Schedule, J: int | None, n_std: float
) -> dict[str, float]:
    """:func:`ranges` that hold at every time in ``[t, t_end]``: the larger of the two end points' values.

    Why the end points suffice: every range depends on time through ``a = alpha_t^2`` only (variance preserving,
    ``sigma_t^2 = 1 - a``), and ``a`` is monotone in ``t``. The offset's variance ``a max_j Sigma_jj + 1 - a`` is
    linear in ``a``; each diagonal entry of ``M_bar^{-1}`` is a non-negative combination of ``1 / (1 + a (lam m - 1))``,
    which is convex in ``a`` wherever ``M_bar`` is positive definite, and a maximum of convex functions is convex.
    Both therefore reach their maximum over an interval of ``a`` at one of its ends; ``mu`` and ``Sigma_inf`` do not
    depend on ``t``.
    """
    lo = ranges(gp, t, schedule, J, n_std)
    if t_end == t:
        return lo
    hi = ranges(gp, t_end, schedule, J, n_std)
    return {k: max(lo[k], hi[k]) for k in lo}


def _check(gp, t, schedule, steps, J, attention, mult_depth, eta, n_std) -> tuple:
    """Validated ``(t, steps, J_eff, mult_depth, eta, n_std)``; ``J_eff`` is ``None`` for no truncation."""
    if not isinstance(gp, GaussianProcess):
        raise ValueError(f"gp must be a GaussianProcess, got {type(gp).__name__}")
    if not isinstance(schedule, Schedule):
        raise ValueError(f"schedule must be a Schedule (e.g. OUSchedule()), got {type(schedule).__name__}")
    t = float(schedule.check_t(t, include_zero=False))
    steps = nonneg_int("steps", steps)
    J = None if J is None else positive_int("J", J)
    if attention not in ATTENTIONS:
        raise ValueError(f"attention must be 'relu' or 'softmax', got {attention!r}")
    mult_depth = None if mult_depth is None else nonneg_int("mult_depth", mult_depth)
    eta = None if eta is None else real_in("eta", eta, 0.0, math.inf, low_open=True, high_open=True)
    n_std = real_in("n_std", n_std, 0.0, math.inf, low_open=True, high_open=True)
    J_eff = None if J is None or J >= gp.N else J
    if attention == "softmax":
        if gp.nu != 2.0:
            raise ValueError(
                f"softmax attention (Lemma 11) realises the squared-exponential kernel only: gp.nu must be 2, got "
                f"{gp.nu:g}. Use attention='relu' for other kernels"
            )
        if J_eff is not None:
            raise ValueError(
                f"softmax attention realises the whole kernel row in one head: J must be None (or >= N = {gp.N}), "
                f"got {J}"
            )
    return t, steps, J_eff, mult_depth, eta, n_std
