"""Tests for gptheory.attention against independent references (NumPy/SciPy, dense formulas, the model's own path)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from gptheory import GaussianProcess, kernel_matrix
from gptheory.attention import (
    BLOCKS,
    attention_maps,
    block_shares,
    construction_attention,
    eigen_response,
    fitted_bandwidth,
    gap_profile,
    generate_with_attention,
    kernel_attention,
    logit_shares,
    logit_terms,
    pearson,
    pick_times,
    qk_blocks,
    similarity,
    value_shares,
    variance_drift,
)
from gptheory.dit import DiT
from gptheory.samplers import generate, prior, sample
from gptheory.schedules import DDPMSchedule, OUSchedule
from gptheory.truncation import banded


def randomized(model: DiT, seed: int = 0, scale: float = 0.3) -> DiT:
    """Perturb every parameter: adaLN-Zero starts with zero gates and outputs, which would make checks trivial."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(scale * torch.randn(p.shape, generator=g, dtype=p.dtype))
    return model.eval()


# ------------------------------------------------------------------------------------------ kernel vs attention
def test_kernel_attention_is_row_stochastic_and_proportional_to_gamma():
    Gamma = kernel_matrix(11, 1.5, 3.0)
    P = kernel_attention(Gamma)
    torch.testing.assert_close(P.sum(1), torch.ones(11, dtype=P.dtype))
    ratio = P / Gamma  # each row is Gamma's row over a constant
    torch.testing.assert_close(ratio, ratio[:, :1].expand_as(ratio))


def test_pearson_matches_scipy(gen):
    A, B = torch.rand(3, 9, 9, generator=gen, dtype=torch.float64), torch.rand(3, 9, 9, generator=gen)
    r = pearson(A, B)
    for k in range(3):
        ref = stats.pearsonr(A[k].flatten().numpy(), B[k].double().flatten().numpy()).statistic
        assert r[k].item() == pytest.approx(ref, abs=1e-12)


def test_similarity_properties(gen):
    Gamma = kernel_matrix(10, 2.0, 2.5)
    P = kernel_attention(Gamma)
    assert similarity(P, Gamma).item() == pytest.approx(1.0, abs=1e-12)
    # invariant under a positive affine map, flips under a negative one, 0 for uniform attention
    assert similarity(3.0 * P + 0.2, Gamma).item() == pytest.approx(1.0, abs=1e-12)
    assert similarity(-P, Gamma).item() == pytest.approx(-1.0, abs=1e-12)
    assert similarity(torch.full((10, 10), 0.1), Gamma).item() == 0.0
    # stacks keep their leading shape; values stay in [-1, 1]
    A = torch.softmax(torch.randn(4, 2, 10, 10, generator=gen), -1)
    s = similarity(A, Gamma)
    assert s.shape == (4, 2) and (s.abs() <= 1 + 1e-12).all()


def test_similarity_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="Gamma"):
        similarity(torch.eye(5), kernel_matrix(6, 2.0, 1.0))
    with pytest.raises(ValueError, match="square"):
        similarity(torch.ones(5, 4), kernel_matrix(5, 2.0, 1.0))


def test_gap_profile_against_loop(gen):
    A = torch.rand(7, 7, generator=gen, dtype=torch.float64)
    prof = gap_profile(A)
    N = 7
    for k in range(-(N - 1), N):
        ref = np.mean([A[i, i + k].item() for i in range(N) if 0 <= i + k < N])
        assert prof[N - 1 + k].item() == pytest.approx(ref, abs=1e-14)
    # a Toeplitz matrix gives back its generating sequence
    Gamma = kernel_matrix(9, 1.0, 2.0)
    torch.testing.assert_close(gap_profile(Gamma)[8:], Gamma[0])


@pytest.mark.parametrize("nu,ell", [(2.0, 3.0), (1.0, 5.0)])
def test_fitted_bandwidth_recovers_the_kernel(nu, ell):
    P = kernel_attention(kernel_matrix(24, nu, ell))
    # the default grid is geometric with ratio (40 N)^(1/399) < 1.02: the fit lands within one grid step
    assert fitted_bandwidth(P, nu) == pytest.approx(ell, rel=0.02)


# ------------------------------------------------------------------------------------------ weights
def test_qk_blocks_and_shares_against_weight_slices():
    model = randomized(DiT(6, 3, hidden=24, depth=2, heads=3, pos_dim=8))
    blocks = qk_blocks(model)
    D = model.data_dim
    for layer, blk in zip(blocks, model.blocks, strict=True):
        Wq, Wk, _ = blk.qkv.weight.detach().double().chunk(3, dim=0)
        M = Wq.T @ Wk  # the full bilinear form, summed over heads
        torch.testing.assert_close(layer["xx"], M[:D, :D])
        torch.testing.assert_close(layer["xe"], M[:D, D:])
        torch.testing.assert_close(layer["ex"], M[D:, :D])
        torch.testing.assert_close(layer["ee"], M[D:, D:])
    shares = block_shares(blocks)
    np.testing.assert_allclose(sum(shares.values()), 1.0, rtol=1e-12)
    for i, blk in enumerate(model.blocks):
        Wq, Wk, _ = blk.qkv.weight.detach().double().chunk(3, dim=0)
        M = Wq.T @ Wk
        assert shares["ee"][i] == pytest.approx(float((M[D:, D:] ** 2).sum() / (M**2).sum()), rel=1e-10)


def test_value_shares_against_weight_slices():
    model = randomized(DiT(6, 3, hidden=16, depth=3, heads=2))
    v = value_shares(model)
    for i, blk in enumerate(model.blocks):
        Wv = blk.qkv.weight.detach().double().chunk(3, dim=0)[2]
        D = model.data_dim
        assert v[i] == pytest.approx(float((Wv[:, :D] ** 2).sum() / (Wv**2).sum()), rel=1e-10)


def test_logit_terms_rebuild_the_attention():
    model = randomized(DiT(7, 2, hidden=16, depth=2, heads=2))
    g = torch.Generator().manual_seed(3)
    x, t = torch.randn(4, 7, 2, generator=g), torch.rand(4, generator=g)
    with torch.no_grad():
        _, probs = model(x, t, return_attention=True)
    dh = model.hidden // model.heads
    for terms, p in zip(logit_terms(model, x, t), probs, strict=True):
        logits = sum(terms.values())
        torch.testing.assert_close(torch.softmax(logits / math.sqrt(dh), -1), p, atol=1e-5, rtol=1e-4)
    shares = logit_shares(model, x, t)
    np.testing.assert_allclose(sum(shares.values()), 1.0, rtol=1e-12)
    assert set(shares) == {*BLOCKS, "bias"}


def test_weight_analyses_need_the_concat_layout():
    model = DiT(5, 2, hidden=8, depth=1, heads=2, tokens="add")
    with pytest.raises(ValueError, match="concat"):
        qk_blocks(model)
    with pytest.raises(ValueError, match="concat"):
        logit_terms(model, torch.zeros(1, 5, 2), 0.5)


# ------------------------------------------------------------------------------------------ attention recording
def test_attention_maps_average_the_analysis_path():
    model = randomized(DiT(6, 2, hidden=16, depth=2, heads=2))
    x, t = torch.randn(3, 6, 2), torch.full((3,), 0.3)
    with torch.no_grad():
        _, probs = model(x, t, return_attention=True)
    maps = attention_maps(model, x, t)
    heads = attention_maps(model, x, t, heads=True)
    assert maps.shape == (2, 6, 6) and heads.shape == (2, 2, 6, 6)
    torch.testing.assert_close(maps, torch.stack([p.mean((0, 1)) for p in probs]))
    torch.testing.assert_close(maps.sum(-1), torch.ones(2, 6))


@pytest.mark.parametrize("sched", [DDPMSchedule(), OUSchedule(T=6.3)], ids=["ddpm", "ou-T-not-a-float32"])
def test_generate_with_attention_reproduces_generate(sched):
    model = randomized(DiT(5, 2, hidden=16, depth=2, heads=2, schedule=sched), scale=0.05)
    steps, t0 = 4, 1e-2
    ref = generate(model, 12, sched, steps=steps, t0=t0, seed=7, batch_size=5, progress=False)
    x, times, maps = generate_with_attention(model, 12, sched, steps=steps, t0=t0, seed=7, batch_size=5)
    torch.testing.assert_close(x, ref, atol=1e-4, rtol=1e-4)  # explicit vs fused attention: float32 round-off
    # Heun on a grid of steps + 1 times visits each of them; the record ends at t0 on the samples themselves
    assert len(times) == steps + 1 and (times.diff() < 0).all()
    assert times[0].item() == pytest.approx(sched.T) and times[-1].item() == pytest.approx(t0)
    assert maps.shape == (steps + 1, 2, 5, 5)
    torch.testing.assert_close(maps.sum(-1), torch.ones(steps + 1, 2, 5))
    torch.testing.assert_close(maps[-1], attention_maps(model, x, t0), atol=1e-5, rtol=1e-4)


def test_pick_times_spreads_and_keeps_ends():
    times = torch.linspace(1.0, 0.0, 11)
    assert pick_times(times, 3) == [0, 5, 10]
    assert pick_times(times, 50) == list(range(11))


# ------------------------------------------------------------------------------------------ the construction
def test_construction_softmax_head_is_the_row_normalised_kernel():
    gp = GaussianProcess(8, 2, nu=2.0, ell=2.0)
    torch.testing.assert_close(construction_attention(gp), gp.Gamma / gp.Gamma.sum(1, keepdim=True))


def test_construction_relu_heads_give_the_row_normalised_kernel_or_its_band():
    gp = GaussianProcess(6, 1, nu=1.0, ell=1.5)
    A = construction_attention(gp)
    torch.testing.assert_close(A, gp.Gamma / gp.Gamma.sum(1, keepdim=True), atol=1e-8, rtol=1e-8)
    for g in (gp, GaussianProcess(6, 1, nu=2.0, ell=1.5)):  # a band needs the ReLU heads, also for nu = 2
        band = banded(g.Gamma, 2)
        A = construction_attention(g, J=2)
        torch.testing.assert_close(A, band / band.sum(1, keepdim=True), atol=1e-8, rtol=1e-8)
        assert (A[(torch.arange(6)[:, None] - torch.arange(6)).abs() >= 2] == 0).all()


def test_eigen_response_and_variance_drift_predict_what_the_sampler_does():
    """A predictor that passes a fraction ``1 - a`` of the exact noise has ``delta = a`` in every direction, and the
    probability-flow sampler driven by it widens each direction's samples by exactly ``exp(variance_drift / 2)``."""
    gp = GaussianProcess(6, 2, nu=2.0, ell=2.0, seed=3)
    sched = DDPMSchedule()
    t0 = 0.02
    times = torch.logspace(math.log10(t0), 0, 200, dtype=torch.float64)

    def exact(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return -sched.sigma(t)[:, None, None] * gp.score(x, t, sched)

    assert eigen_response(exact, gp, sched, times[::20], n=64).abs().max() < 1e-9
    a = 0.03
    delta = eigen_response(lambda x, t: (1 - a) * exact(x, t), gp, sched, times, n=64)
    torch.testing.assert_close(delta, torch.full_like(delta, a), rtol=0, atol=1e-9)
    drift = variance_drift(delta, times, gp, sched)  # (N, d)
    assert (drift > 0).all()
    cum = variance_drift(delta, times, gp, sched, cumulative=True)  # (K, N, d), accumulated from T down to t
    assert cum.shape == (len(times), 6, 2) and torch.allclose(cum[0], drift) and (cum[-1] == 0).all()
    assert (cum.diff(dim=0) <= 0).all()  # a positive shortfall only ever adds variance

    x_T = prior(16, 6, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    runs = [
        sample(lambda x, t, f=f: f * gp.score(x, t, sched), x_T, sched, 200, t0, method="heun", progress=False)
        for f in (1.0, 1 - a)
    ]
    z_exact, z_short = (gp.to_eigenbasis(y) for y in runs)
    # the exact score is diagonal in this basis, so each sample's coordinate is scaled by the same factor
    torch.testing.assert_close((z_short / z_exact).log(), (drift / 2).expand_as(z_exact), rtol=0, atol=1e-3)
    with pytest.raises(ValueError, match="times must increase"):
        variance_drift(delta, times.flip(0), gp, sched)
