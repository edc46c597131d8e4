"""Measurements on a trained :class:`gptheory.dit.DiT`: does attention find the temporal kernel ``Gamma``?

Everything here reads a trained model (and, for attention, inputs to run it on) and returns numbers and small
arrays; nothing is trained. The pieces follow Section 6.1 and Appendix D.1 of the paper:

* **Attention against the kernel.** Attention rows sum to one, ``Gamma``'s rows do not, so the map an attention
  layer would need in order to apply the kernel is the row-normalised ``P = D^{-1} Gamma`` with
  ``D = diag(Gamma 1)`` (:func:`kernel_attention`). This is exactly the softmax attention of the hand-built
  transformer (Lemma 11, :mod:`gptheory.construct`). The similarity (:func:`similarity`) is the Pearson
  correlation of the ``N^2`` entries of an attention map ``A`` with those of ``P``:

      r(A, P) = sum_ij (A_ij - mean A)(P_ij - mean P) / (N^2 std(A) std(P)).

  Why Pearson rather than a cosine: both maps are non-negative, so the cosine of *uniform* attention with ``P``
  is already large and hides the absence of any pattern, while Pearson centres both maps and gives uniform
  attention ``0`` (defined as ``0`` when ``A`` is constant); it is unchanged by a global rescaling, and it is
  bounded by 1 with equality iff ``A`` is an affine image of ``P``. A purely local pattern -- every frame attends
  only to itself -- already correlates with any decaying kernel; :func:`similarity` of the identity is the
  yardstick a kernel-like layer has to beat (reported by the chapter).
* **Gap profile** (:func:`gap_profile`): an attention map averaged along its diagonals, ``a(k) = mean_i A_{i,i+k}``,
  the trained analogue of the construction's weights over gaps; :func:`fitted_bandwidth` reads off the bandwidth
  ``ell`` of the kernel whose row-normalised map is closest to ``A``.
* **Query-key blocks** (:func:`qk_blocks`, Figures 4(b) and 8): with tokens ``[x-part; e-part]`` the bilinear form
  ``W_q^T W_k`` (all heads summed, as the paper plots it) splits into data-data, data-time, time-data and
  time-time blocks; :func:`block_shares` gives each block's share of the squared Frobenius norm (the four add to 1).
  :func:`logit_shares` does the same for the logits the layer actually forms on given inputs (input scales included).
* **Value emphasis** (:func:`value_shares`, Figure 9): ``||V_x||_F^2 / (||V_x||_F^2 + ||V_e||_F^2)`` per layer.
* **The noise prediction per eigen-direction** (:func:`eigen_response`, :func:`variance_drift`): how much of each
  direction of the process a noise predictor passes through at each time, and the variance this adds to samples.
* **Attention along the backward process** (:func:`generate_with_attention`, Figures 5 and 10): sample as
  :func:`gptheory.samplers.generate` does and record every layer's attention (mean over sequences and heads) at each
  time the sampler evaluates the network.

:func:`gptheory.experiments.dit_learns.run_dit_learns` is the experiment that trains a DiT and applies all of the above
to it.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from .dit import DiT
from .gp import DTYPE, GaussianProcess, kernel_matrix
from .samplers import generate
from .schedules import DDPMSchedule, Schedule
from .validation import finite_tensor, positive_int, real_in

BLOCKS = ("xx", "xe", "ex", "ee")  # (query part, key part): x = data coordinates, e = time-embedding coordinates


# ============================================================================ attention maps against the kernel
def _square(name: str, A: object) -> torch.Tensor:
    A = finite_tensor(name, A)
    if A.dim() < 2 or A.shape[-1] != A.shape[-2]:
        raise ValueError(f"{name} must be a square matrix or a stack of them (..., N, N), got {tuple(A.shape)}")
    return A.to(DTYPE)


def kernel_attention(Gamma: torch.Tensor) -> torch.Tensor:
    """The row-stochastic map ``P = D^{-1} Gamma`` (``D = diag(Gamma 1)``), ``(N, N)``: what attention must form
    to apply the kernel, and the softmax attention of the hand-built transformer (Lemma 11)."""
    Gamma = _square("Gamma", Gamma)
    rows = Gamma.sum(-1, keepdim=True)
    if (rows <= 0).any():
        raise ValueError("Gamma must have positive row sums to be turned into attention weights")
    return Gamma / rows


def pearson(A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of the entries of ``A`` and ``B`` over their last two axes, ``(...)``.

    Defined as 0 where one of the two is constant (no pattern to correlate).
    """
    A, B = torch.broadcast_tensors(_square("A", A), _square("B", B))
    a = A.flatten(-2) - A.flatten(-2).mean(-1, keepdim=True)
    b = B.flatten(-2) - B.flatten(-2).mean(-1, keepdim=True)
    na, nb = a.norm(dim=-1), b.norm(dim=-1)
    tiny = 1e-12 * (A.flatten(-2).abs().amax(-1) + B.flatten(-2).abs().amax(-1)).clamp(min=1e-300)
    r = (a * b).sum(-1) / (na * nb).clamp(min=1e-300)
    return torch.where((na > tiny) & (nb > tiny), r, torch.zeros_like(r))


def similarity(A: torch.Tensor, Gamma: torch.Tensor) -> torch.Tensor:
    """Similarity of attention maps ``A: (..., N, N)`` to the kernel: ``pearson(A, kernel_attention(Gamma))``.

    In ``[-1, 1]``; 1 iff ``A`` is an affine image of the row-normalised kernel, 0 for uniform attention.
    """
    A = _square("A", A)
    P = kernel_attention(Gamma)
    if A.shape[-1] != P.shape[-1]:
        raise ValueError(f"A is {A.shape[-1]} x {A.shape[-1]} but Gamma is {P.shape[-1]} x {P.shape[-1]}")
    return pearson(A, P)


def gap_profile(A: torch.Tensor) -> torch.Tensor:
    """Diagonal means ``a(k) = mean_i A_{i, i+k}`` for gaps ``k = -(N-1), ..., N-1``.

    Returns ``(..., 2N - 1)``; gap ``k`` sits at index ``N - 1 + k``.
    """
    A = _square("A", A)
    N = A.shape[-1]
    return torch.stack([torch.diagonal(A, offset=k, dim1=-2, dim2=-1).mean(-1) for k in range(-(N - 1), N)], dim=-1)


def lag_profile(M) -> np.ndarray:
    """A matrix ``M: (N, N)`` (array or tensor) averaged along each diagonal ``h >= 0`` in float64, ``(N,)``: a
    kernel, or an attention map, as a function of the lag (the second half of :func:`gap_profile`)."""
    A = torch.as_tensor(np.asarray(M, dtype=np.float64))
    return gap_profile(A)[A.shape[-1] - 1 :].numpy()


def fitted_bandwidth(A: torch.Tensor, nu: float, ells: torch.Tensor | None = None) -> float:
    """The bandwidth ``ell`` whose row-normalised kernel ``kernel_attention(kernel_matrix(N, nu, ell))`` is closest to
    ``A: (N, N)`` in Frobenius norm (grid search; default grid: 400 geometric points from 0.1 to 4N frames)."""
    A = _square("A", A)
    if A.dim() != 2:
        raise ValueError(f"A must be one (N, N) map, got shape {tuple(A.shape)}")
    nu = real_in("nu", nu, 0.0, 2.0, low_open=True)
    N = A.shape[0]
    ells = torch.logspace(math.log10(0.1), math.log10(4 * N), 400, dtype=DTYPE) if ells is None else ells
    errs = torch.stack([(kernel_attention(kernel_matrix(N, nu, float(e))) - A).norm() for e in ells])
    return float(ells[int(errs.argmin())])


# ============================================================================ weights: query-key and value
def qk_blocks(model: DiT) -> list[dict[str, torch.Tensor]]:
    """Per layer, the four blocks of ``W_q^T W_k`` (summed over heads): ``"xx" = Q_x^T K_x`` (data_dim x data_dim),
    ``"xe" = Q_x^T K_e``, ``"ex" = Q_e^T K_x``, ``"ee" = Q_e^T K_e`` (pos_dim x pos_dim). The attention logit of
    token ``i`` on ``j`` is ``h_i^T W_q^T W_k h_j / sqrt(d_head)`` (plus bias terms). Float64."""
    out = []
    for w in model.qkv_weights():
        q = {"x": w["q_x"].to(DTYPE), "e": w["q_e"].to(DTYPE)}  # float64: the shares compare small numbers
        k = {"x": w["k_x"].to(DTYPE), "e": w["k_e"].to(DTYPE)}
        out.append({b: q[b[0]].T @ k[b[1]] for b in BLOCKS})
    return out


def block_shares(blocks: list[dict[str, torch.Tensor]]) -> dict[str, np.ndarray]:
    """Each block's share of the squared Frobenius norm of its layer's full matrix: ``{block: (depth,)}`` (sum 1)."""
    sq = {b: np.array([float((layer[b].double() ** 2).sum()) for layer in blocks]) for b in BLOCKS}
    total = sum(sq.values())
    return {b: sq[b] / np.maximum(total, 1e-300) for b in BLOCKS}


def value_shares(model: DiT) -> np.ndarray:
    """Per layer, the data part's value-weight share ``||V_x||_F^2 / (||V_x||_F^2 + ||V_e||_F^2)``, ``(depth,)``."""
    out = []
    for w in model.qkv_weights():
        vx, ve = float((w["v_x"].double() ** 2).sum()), float((w["v_e"].double() ** 2).sum())
        out.append(vx / max(vx + ve, 1e-300))
    return np.array(out)


def qkv_inputs(model: DiT, x: torch.Tensor, t: torch.Tensor | float) -> list[torch.Tensor]:
    """What each layer's ``qkv`` map receives (normalised, modulated tokens): ``(batch, N, hidden)`` per layer."""
    seen: list[torch.Tensor] = []
    hooks = [blk.qkv.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach())) for blk in model.blocks]
    try:
        with torch.no_grad():
            model(x, t)
    finally:
        for h in hooks:
            h.remove()
    return seen


def logit_terms(model: DiT, x: torch.Tensor, t: torch.Tensor | float) -> list[dict[str, torch.Tensor]]:
    """Per layer, the attention logits ``q_i . k_j`` (before ``1/sqrt(d_head)``) split by where query and key come from.

    With ``u = [u_x; u_e]`` the layer's input (data and time-embedding coordinates), ``q_x = W_{q,x} u_x``,
    ``q_e = W_{q,e} u_e`` and likewise for keys, the terms are ``"xx" = q_x . k_x``, ``"xe" = q_x . k_e``,
    ``"ex" = q_e . k_x``, ``"ee" = q_e . k_e`` and ``"bias"`` (everything involving the biases). Each is
    ``(batch, heads, N, N)``; their sum over the five terms is the logit the layer forms.
    """
    if model.tokens != "concat":
        raise ValueError("logit_terms needs tokens='concat' (in the 'add' layout data and time share coordinates)")
    H, dh, D, W_ = model.heads, model.hidden // model.heads, model.data_dim, model.hidden
    out = []
    for u, blk in zip(qkv_inputs(model, x, t), model.blocks, strict=True):
        W, bias = blk.qkv.weight.detach(), blk.qkv.bias.detach()
        Wq, Wk, bq, bk = W[:W_], W[W_ : 2 * W_], bias[:W_], bias[W_ : 2 * W_]

        def heads(z: torch.Tensor) -> torch.Tensor:
            return z.unflatten(-1, (H, dh)).transpose(1, 2)  # (batch, N, hidden) -> (batch, heads, N, d_head)

        q = {"x": heads(u[..., :D] @ Wq[:, :D].T), "e": heads(u[..., D:] @ Wq[:, D:].T)}
        k = {"x": heads(u[..., :D] @ Wk[:, :D].T), "e": heads(u[..., D:] @ Wk[:, D:].T)}
        terms = {b: q[b[0]] @ k[b[1]].transpose(-1, -2) for b in BLOCKS}
        full_q = q["x"] + q["e"] + heads(bq.expand(*u.shape))
        full_k = k["x"] + k["e"] + heads(bk.expand(*u.shape))
        terms["bias"] = full_q @ full_k.transpose(-1, -2) - sum(terms[b] for b in BLOCKS)
        out.append(terms)
    return out


def logit_shares(model: DiT, x: torch.Tensor, t: torch.Tensor | float) -> dict[str, np.ndarray]:
    """Per layer, each term's share of the attention logits formed on inputs ``x`` at times ``t`` (:func:`logit_terms`).

    Every term is centred along ``j`` (softmax ignores what is constant in ``j``), and its share is its squared norm
    over sequences, heads and ``(i, j)`` divided by the sum of the five. Returns ``{term: (depth,)}``, summing to 1.
    Unlike :func:`block_shares` this sees the scale of the inputs each block of weights acts on.
    """
    sq: dict[str, list[float]] = {b: [] for b in (*BLOCKS, "bias")}
    for terms in logit_terms(model, x, t):
        for b, T in terms.items():
            sq[b].append(float(((T - T.mean(-1, keepdim=True)).double() ** 2).sum()))
    arr = {b: np.array(v) for b, v in sq.items()}
    total = sum(arr.values())
    return {b: v / np.maximum(total, 1e-300) for b, v in arr.items()}


# ============================================================================ attention maps from the network
def attention_maps(model: DiT, x: torch.Tensor, t: torch.Tensor | float, heads: bool = False) -> torch.Tensor:
    """Every layer's attention on inputs ``x: (batch, N, d)`` at times ``t``, averaged over the batch (and the heads
    unless ``heads``): ``(depth, N, N)`` or ``(depth, heads, N, N)``, float32 on the CPU."""
    with torch.no_grad():
        _, probs = model(x, t, return_attention=True)
    maps = torch.stack([p.float().mean(0) for p in probs])  # (depth, heads, N, N)
    return (maps if heads else maps.mean(1)).cpu()


def generate_with_attention(
    model: DiT,
    n: int,
    schedule: Schedule | None = None,
    steps: int = 50,
    t0: float = 1e-3,
    method: str = "heun",
    seed: int = 0,
    batch_size: int = 1000,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sample like :func:`gptheory.samplers.generate` (same seed, same starting noise) and record attention on the way.

    At every time ``t`` at which the sampler evaluates the network, each layer's attention is averaged over the
    ``n`` sequences and the heads; when a time is visited twice (Heun's predictor evaluates ``t_{k+1}`` on its
    predicted state before the trajectory reaches it) the later, on-trajectory visit is kept. The record at ``t0``
    is taken on the finished samples.

    Returns:
        ``samples: (n, N, d)`` float32, ``times: (K,)`` float64, decreasing from ``T`` to ``t0``, and
        ``maps: (K, depth, N, N)`` float32.
    """
    schedule = model.check_schedule(schedule)
    n = positive_int("n", n)
    sums: dict[float, torch.Tensor] = {}
    chunk_maps: dict[float, torch.Tensor] = {}  # this chunk's maps by time; a later visit of a time replaces it

    def score(y: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            eps_hat, probs = model(y, t, return_attention=True, check=False)
        chunk_maps[float(t[0])] = torch.stack([p.float().sum(0).mean(0) for p in probs]).cpu()  # (depth, N, N)
        return -eps_hat / schedule.sigma(t.to(torch.float64)).to(y.dtype)[:, None, None]

    def end_of_chunk(x: torch.Tensor) -> None:
        score(x, torch.full((x.shape[0],), float(t0), dtype=x.dtype, device=x.device))  # t0 on the finished samples
        for key, m in chunk_maps.items():
            sums[key] = sums[key] + m if key in sums else m
        chunk_maps.clear()

    samples = generate(
        model, n, schedule, steps, t0, method, seed, batch_size, progress=False, score=score, on_chunk=end_of_chunk
    )
    times = sorted(sums, reverse=True)
    maps = torch.stack([sums[k] / n for k in times])
    return samples, torch.tensor(times, dtype=torch.float64), maps


# ============================================================================ the noise prediction, per eigen-direction
def eigen_response(
    eps_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    gp: GaussianProcess,
    schedule: Schedule,
    times: torch.Tensor,
    n: int = 2048,
    seed: int = 0,
) -> torch.Tensor:
    """Relative shortfall ``delta: (K, N, d)`` of a noise predictor's response in each eigen-direction of the process.

    For Gaussian data the exact noise is linear: in the eigenbasis ``z = U^T (x_t - alpha_t mu) V`` of
    ``Gamma (x) Sigma`` (eigenvalues ``lambda_i m_j``) it is ``eps*_ij = c*_ij z_ij`` with
    ``c* = sigma_t / (alpha_t^2 lambda_i m_j + sigma_t^2)``. For ``eps_fn(x, t) -> (n, N, d)`` (e.g. a trained
    :class:`DiT`) the least-squares coefficient ``c_ij`` of its output on ``z_ij`` over ``n`` fresh sequences at each
    time in ``times: (K,)`` gives ``delta = 1 - c / c*``: ``0`` is exact, ``delta > 0`` passes too little through.
    """
    times = finite_tensor("times", times, (None,)).to(DTYPE)
    n = positive_int("n", n)
    L = gp.spectrum
    g = torch.Generator().manual_seed(int(seed))
    x0 = gp.sample(n, generator=g)
    out = []
    for t in times:
        alpha, sigma = schedule.alpha(t), schedule.sigma(t)
        xt = schedule.add_noise(x0, t, generator=g)
        eps = eps_fn(xt, torch.full((n,), float(t), dtype=DTYPE)).to(DTYPE)
        z = gp.to_eigenbasis(xt - alpha * gp.mu)
        c = (gp.to_eigenbasis(eps) * z).sum(0) / (z * z).sum(0)
        out.append(1 - c * (alpha**2 * L + sigma**2) / sigma)
    return torch.stack(out)


def variance_drift(
    delta: torch.Tensor, times: torch.Tensor, gp: GaussianProcess, schedule: Schedule, cumulative: bool = False
) -> torch.Tensor:
    """Log of the factor by which the probability-flow sampler inflates each eigen-direction's variance, ``(N, d)``.

    In direction ``ij`` the backward ODE ``dx/dt = -beta_t/2 (x - eps_hat/sigma_t)`` with
    ``eps_hat = (1 - delta) c* z`` grows ``log|x|`` by ``beta_t delta / (2 v_t)`` per unit of time more than the exact
    one (``v_t = alpha_t^2 lambda_i m_j + sigma_t^2``, the marginal variance), so the generated variance carries the
    factor ``exp(int beta_t delta / v_t dt)``, integrated over ``times`` (increasing; trapezoidal rule). Exact for a
    linear predictor with the given ``delta``; for a network, its linear part. With ``cumulative`` the result is
    ``(K, N, d)``: entry ``k`` integrates from ``times[k]`` to ``times[-1]``, i.e. what the backward process has
    added by the time it reaches ``times[k]`` (entry 0 is the total, the last entry 0).
    """
    times = finite_tensor("times", times, (None,)).to(DTYPE)
    if delta.shape[0] != times.shape[0] or times.shape[0] < 2 or (times.diff() <= 0).any():
        raise ValueError(f"times must increase and match delta's first axis ({delta.shape[0]}), got {times.shape[0]}")
    L = gp.spectrum
    alpha, sigma = schedule.alpha(times)[:, None, None], schedule.sigma(times)[:, None, None]
    rate = schedule.beta(times)[:, None, None] / (alpha**2 * L + sigma**2) * delta.to(DTYPE)
    if not cumulative:
        return torch.trapezoid(rate, times, dim=0)
    from_start = torch.cumulative_trapezoid(rate, times, dim=0)  # int from times[0] to times[k], k >= 1
    total = from_start[-1]
    return torch.cat([total[None], total - from_start])


def pick_times(times: torch.Tensor, k: int) -> list[int]:
    """``k`` indices into the decreasing ``times`` spread evenly over the backward process (first and last included)."""
    K = len(times)
    k = min(positive_int("k", k), K)
    return sorted({round(i * (K - 1) / max(k - 1, 1)) for i in range(k)})


# ============================================================================ the hand-built transformer's attention
def construction_attention(
    gp: GaussianProcess, t: float = 0.5, schedule: Schedule | None = None, J: int | None = None
) -> torch.Tensor:
    """The attention map of the hand-built transformer (:func:`gptheory.construct.build_gd_transformer`), ``(N, N)``.

    For the squared-exponential kernel (``nu = 2``) without a band this is the probability map of its single softmax
    head (Lemma 11), which is ``kernel_attention(Gamma)``; otherwise the ReLU construction mixes frames by the band
    ``Gamma_bar`` (``|i - j| < J``; ``J=None`` keeps every gap), returned row-normalised so that it is comparable with
    attention. The map does not depend on the input or on ``t``: the construction's queries and keys read positions
    only.
    """
    from .construct import build_gd_transformer

    schedule = DDPMSchedule() if schedule is None else schedule
    x = torch.zeros(1, gp.N, gp.d, dtype=DTYPE)
    if gp.nu == 2.0 and (J is None or J >= gp.N):
        net = build_gd_transformer(gp, t, schedule, steps=2, attention="softmax")
        b = net.attention_blocks()[0]
        _, tokens = net(x, return_tokens=True)
        return net.blocks[b].attn.weights(tokens[b])[0, 0].detach()
    net = build_gd_transformer(gp, t, schedule, steps=2, J=J, attention="relu")
    W = net.temporal_weights(x).detach()
    return W / W.sum(-1, keepdim=True)


__all__ = [
    "BLOCKS",
    "attention_maps",
    "block_shares",
    "construction_attention",
    "fitted_bandwidth",
    "gap_profile",
    "eigen_response",
    "generate_with_attention",
    "kernel_attention",
    "lag_profile",
    "logit_shares",
    "logit_terms",
    "pearson",
    "pick_times",
    "qk_blocks",
    "qkv_inputs",
    "similarity",
    "value_shares",
    "variance_drift",
]
