"""Tests for gptheory.dit: shapes, the analysis path against the fast path, the q/k/v split, input checks."""

from __future__ import annotations

import math

import pytest
import torch

from gptheory.dit import DiT, LayerNorm, sinusoidal_embedding
from gptheory.gp import GaussianProcess
from gptheory.samplers import prior, sample
from gptheory.schedules import DDPMSchedule, OUSchedule

N, d, B = 12, 3, 5


def randomized(model: DiT, seed: int = 0, scale: float = 0.3) -> DiT:
    """Perturb every parameter (adaLN-Zero starts with zero output, which would make comparisons trivial)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model


def inputs(seed: int = 1, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, N, d, generator=g, dtype=dtype), torch.rand(B, generator=g, dtype=dtype)


@pytest.mark.parametrize("tokens", ["concat", "add"])
def test_shapes_and_dtype(tokens):
    model = randomized(DiT(N, d, hidden=32, depth=2, heads=4, tokens=tokens))
    x, t = inputs()
    eps = model(x, t)
    assert eps.shape == (B, N, d) and eps.dtype == torch.float32
    # float64 input (what the samplers use) comes back as float64, same values up to float32 rounding
    eps64 = model(x.double(), t.double())
    assert eps64.dtype == torch.float64
    torch.testing.assert_close(eps64.float(), eps)
    # a float time is broadcast over the batch
    torch.testing.assert_close(model(x, 0.5), model(x, torch.full((B,), 0.5)))


def test_adaln_zero_init_gives_zero_output():
    model = DiT(N, d, hidden=32, depth=2, heads=2)
    x, t = inputs()
    assert torch.count_nonzero(model(x, t)) == 0


def test_batch_items_are_independent():
    model = randomized(DiT(N, d, hidden=32, depth=2, heads=4)).double()
    x, t = inputs(dtype=torch.float64)
    torch.testing.assert_close(model(x[2:3], t[2:3]), model(x, t)[2:3], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(("tokens", "prediction"), [("concat", "eps"), ("add", "eps"), ("concat", "v")])
def test_analysis_path_equals_fast_path(tokens, prediction):
    model = randomized(DiT(N, d, hidden=32, depth=3, heads=4, tokens=tokens, prediction=prediction)).double()
    x, t = inputs(dtype=torch.float64)
    fast = model(x, t)
    slow, probs = model(x, t, return_attention=True)
    torch.testing.assert_close(slow, fast, rtol=1e-10, atol=1e-12)
    assert len(probs) == 3
    for p in probs:
        assert p.shape == (B, 4, N, N)
        assert (p >= 0).all()
        torch.testing.assert_close(p.sum(-1), torch.ones(B, 4, N, dtype=torch.float64))


def test_layer0_attention_from_split_weights():
    """Rebuild layer 0's attention probabilities by hand from the data/time split of W_q and W_k."""
    model = randomized(DiT(N, d, hidden=24, depth=2, heads=3, tokens="concat", pos_dim=8)).double()
    x, t = inputs(dtype=torch.float64)
    _, probs = model(x, t, return_attention=True)
    D, H, heads = model.data_dim, model.hidden, model.heads
    # token layout [W x_i + b ; e_i], with e_i the sin-cos features of the frame index
    e = sinusoidal_embedding(torch.arange(N), model.pos_dim).double()
    tok = torch.cat([x @ model.x_embed.weight.T + model.x_embed.bias, e.expand(B, -1, -1)], dim=-1)
    # the first block's attention modulation: chunks 0 (shift) and 1 (scale) of the adaLN output
    c = torch.nn.functional.silu(model.t_embed(t))
    shift, scale = (model.adaLN(c)[:, k * H : (k + 1) * H] for k in (0, 1))
    mu, var = tok.mean(-1, keepdim=True), tok.var(-1, unbiased=False, keepdim=True)
    u = (tok - mu) / torch.sqrt(var + 1e-6) * (1 + scale[:, None]) + shift[:, None]
    W = model.qkv_weights()[0]
    bq, bk, _ = model.blocks[0].qkv.bias.chunk(3)
    q = u[..., :D] @ W["q_x"].T + u[..., D:] @ W["q_e"].T + bq
    k = u[..., :D] @ W["k_x"].T + u[..., D:] @ W["k_e"].T + bk
    dh = H // heads
    for h in range(heads):
        qh, kh = q[..., h * dh : (h + 1) * dh], k[..., h * dh : (h + 1) * dh]
        ref = torch.softmax(qh @ kh.transpose(-1, -2) / math.sqrt(dh), dim=-1)
        torch.testing.assert_close(probs[0][:, h], ref, rtol=1e-9, atol=1e-12)


def test_qkv_weights_split_reassembles():
    model = randomized(DiT(N, d, hidden=32, depth=2, heads=4, pos_dim=12))
    parts = model.qkv_weights()
    assert len(parts) == 2
    for blk, p in zip(model.blocks, parts, strict=True):
        assert p["q_x"].shape == (32, 20) and p["k_e"].shape == (32, 12)
        W = torch.cat([torch.cat([p[f"{n}_x"], p[f"{n}_e"]], dim=1) for n in "qkv"], dim=0)
        assert torch.equal(W, blk.qkv.weight)
    with pytest.raises(ValueError, match="concat"):
        DiT(N, d, hidden=32, depth=1, heads=4, tokens="add").qkv_weights()


def test_position_embedding_inner_products_depend_on_gap_only():
    e = sinusoidal_embedding(torch.arange(20), 16).double()
    G = e @ e.T
    for gap in range(5):
        diag = torch.diagonal(G, offset=gap)
        torch.testing.assert_close(diag, diag[0].expand_as(diag), rtol=0, atol=1e-5)


def test_score_is_minus_eps_over_sigma_and_plugs_into_sampler():
    model = randomized(DiT(N, d, hidden=16, depth=1, heads=2), scale=0.05)
    schedule = DDPMSchedule()
    x, t = inputs()
    t = t.clamp(min=0.05)
    s = model.score(x, t, schedule)
    ref = -model(x, t) / schedule.sigma(t.double()).float()[:, None, None]
    torch.testing.assert_close(s, ref)
    x_T = prior(4, N, d, torch.Generator().manual_seed(0), torch.float32)
    out = sample(model.score_fn(schedule), x_T, schedule, 5, 1e-3, progress=False)
    ref = sample(lambda y, s: -model(y, s) / schedule.sigma(s.double()).float()[:, None, None], x_T, schedule, 5, 1e-3,
                 progress=False)  # fmt: skip
    torch.testing.assert_close(out, ref, rtol=0, atol=0)  # the sampler runs on exactly that score
    assert not torch.allclose(out, x_T)


@pytest.mark.parametrize(
    ("x_shape", "t", "match"),
    [
        ((B, N + 1, d), 0.5, "sequence length N=13.*N=12"),
        ((B, N, d + 2), 0.5, "frame dimension d=5.*d=3"),
        ((N, d), 0.5, r"shape \(batch, N=12, d=3\)"),
        ((B, N, d), float("nan"), "t must be a real number in"),
        ((B, N, d), torch.tensor([0.1, 0.2, float("inf"), 0.3, 0.4]), "t must be finite"),
        ((B, N, d), 1.5, r"t must be a real number in \[0, 1\]"),
        ((B, N, d), torch.full((B,), -0.1), r"t must be in \[0, 1\]"),
        ((B, N, d), torch.rand(B + 1), r"t must be a float or a tensor of shape \(5,\)"),
    ],
)
def test_input_checks(x_shape, t, match):
    model = DiT(N, d, hidden=16, depth=1, heads=2)
    with pytest.raises(ValueError, match=match):
        model(torch.randn(*x_shape), t)


def test_non_finite_x_is_rejected():
    model = DiT(N, d, hidden=16, depth=1, heads=2)
    x = torch.randn(B, N, d)
    x[1, 2, 0] = float("nan")
    with pytest.raises(ValueError, match="x must be finite, got 1 non-finite"):
        model(x, torch.rand(B))
    with pytest.raises(ValueError, match="floating-point tensor"):
        model([[1.0]], 0.5)


def test_constructor_checks():
    with pytest.raises(ValueError, match="divisible by heads"):
        DiT(N, d, hidden=30, heads=4)
    with pytest.raises(ValueError, match="tokens must be one of"):
        DiT(N, d, tokens="sum")
    with pytest.raises(ValueError, match="pos_dim must be in"):
        DiT(N, d, hidden=16, heads=2, pos_dim=16)
    with pytest.raises(ValueError, match="N must be a positive integer"):
        DiT(0, d)
    with pytest.raises(ValueError, match="activation must be one of"):
        DiT(N, d, hidden=16, heads=2, activation="relu")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_layer_norm_equals_torch_layer_norm_without_affine(dtype):
    """The fixed-unit-weight LayerNorm is DiT's parameter-free LayerNorm, values and gradients, and adds no state."""
    h = (3.0 * torch.randn(4, 7, 24, dtype=dtype) + 1.5).requires_grad_(True)
    ours, ref = LayerNorm(24).to(dtype), torch.nn.LayerNorm(24, elementwise_affine=False, eps=1e-6)
    g = torch.randn(4, 7, 24, dtype=dtype)
    (grad_ours,) = torch.autograd.grad(ours(h), h, g)
    (grad_ref,) = torch.autograd.grad(ref(h), h, g)
    torch.testing.assert_close(ours(h), ref(h))
    torch.testing.assert_close(grad_ours, grad_ref)
    assert list(ours.parameters()) == [] and ours.state_dict() == {}


def test_gelu_variants_are_close():
    """The exact GELU (default, fast on the CPU) and DiT's tanh form give nearly the same network."""
    exact = randomized(DiT(N, d, hidden=16, depth=2, heads=2), scale=0.1).double()
    approx = DiT(N, d, hidden=16, depth=2, heads=2, activation="gelu_tanh").double()
    approx.load_state_dict(exact.state_dict())
    x, t = inputs(dtype=torch.float64)
    out_e, out_a = exact(x, t), approx(x, t)
    assert not torch.equal(out_e, out_a)
    torch.testing.assert_close(out_a, out_e, rtol=0, atol=1e-2 * out_e.abs().max().item())


@pytest.mark.parametrize("schedule", [DDPMSchedule(), OUSchedule(T=6.0)], ids=["ddpm", "ou"])
def test_v_prediction_is_the_same_denoiser_with_loss_scaled_by_alpha(schedule):
    """With ``x_t = alpha x0 + sigma eps``: ``eps_hat = sigma x_t + alpha F`` and ``F - v = (eps_hat - eps) / alpha``.

    So the exact GP noise ``eps* = -sigma score*`` corresponds to the raw output ``v* = (eps* - sigma x_t) / alpha``,
    and the v-loss of any network is its noise loss divided by ``alpha_t^2``, per sequence.
    """
    model = randomized(DiT(N, d, hidden=16, depth=2, heads=2, prediction="v", schedule=schedule)).double()
    g = torch.Generator().manual_seed(3)
    gp = GaussianProcess(N, d, nu=1.5, ell=2.0, seed=1)
    x0 = gp.sample(B, generator=g)
    eps = torch.randn(B, N, d, generator=g, dtype=torch.float64)
    t = torch.linspace(0.05, 0.95, B, dtype=torch.float64) * schedule.T
    alpha, sigma = schedule.alpha(t)[:, None, None], schedule.sigma(t)[:, None, None]
    xt = schedule.add_noise(x0, t, eps)
    F_raw, eps_hat = model(xt, t, raw=True), model(xt, t)
    torch.testing.assert_close(eps_hat, sigma * xt + alpha * F_raw, rtol=1e-12, atol=1e-12)
    v = model.target(x0, eps, t)
    torch.testing.assert_close(v, alpha * eps - sigma * x0, rtol=1e-12, atol=1e-12)
    v_loss = ((F_raw - v) ** 2).sum((1, 2))
    eps_loss = ((eps_hat - eps) ** 2).sum((1, 2))
    torch.testing.assert_close(v_loss, eps_loss / alpha.flatten() ** 2, rtol=1e-9, atol=0)
    # v = alpha eps - sigma x0 is also what x_t and eps determine: x0 = (x_t - sigma eps) / alpha
    torch.testing.assert_close(v, (eps - sigma * xt) / alpha, rtol=1e-9, atol=1e-9)
    # eps-prediction models return their raw output
    plain = randomized(DiT(N, d, hidden=16, depth=2, heads=2, schedule=schedule)).double()
    assert torch.equal(plain(xt, t), plain(xt, t, raw=True)) and torch.equal(plain.target(x0, eps, t), eps)


def test_schedule_is_part_of_the_model():
    ou = DiT(N, d, hidden=16, depth=1, heads=2, prediction="v", schedule=OUSchedule(T=6.0))
    assert ou.T == 6.0 and ou.config()["schedule"] == {"name": "ou", "T": 6.0}
    rebuilt = DiT(**ou.config())
    assert rebuilt.config() == ou.config() and isinstance(rebuilt.schedule, OUSchedule)
    x, _ = inputs()
    ou(x, torch.full((B,), 5.5))  # t up to the OU horizon is accepted
    with pytest.raises(ValueError, match="differs from the model's"):
        ou.score(x, 0.5, DDPMSchedule())
    with pytest.raises(ValueError, match="differs from the model's"):
        DiT(N, d, hidden=16, depth=1, heads=2).score_fn(OUSchedule())
    torch.testing.assert_close(ou.score(x, 0.5), ou.score(x, 0.5, OUSchedule(T=6.0)))
    with pytest.raises(ValueError, match="prediction must be one of eps, v"):
        DiT(N, d, hidden=16, heads=2, prediction="x0")
    with pytest.raises(ValueError, match="schedule must be a gptheory Schedule"):
        DiT(N, d, hidden=16, heads=2, schedule="ddpm")
    with pytest.raises(ValueError, match="schedule config must be a dict with name in ou, ddpm"):
        DiT(N, d, hidden=16, heads=2, schedule={"name": "cosine"})
