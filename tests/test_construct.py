"""The hand-built GD transformer against gradient descent itself (gptheory.unroll.gd_score) and the exact score."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from gptheory import GaussianProcess, OUSchedule
from gptheory.construct import (
    BilinearFeedForward,
    Block,
    Decoder,
    FeedForward,
    GDTransformer,
    MultiHeadAttention,
    TokenEmbedding,
    build_gd_transformer,
    frame_embedding,
    gap_inner_products,
    resolution,
    sawtooth_square,
    size_report,
    trapezoid,
)
from gptheory.truncation import banded, is_psd
from gptheory.unroll import condition_number, gd_score

SCHED = OUSchedule()
N, d = 16, 3
# Round-off of a few hundred float64 operations per entry, relative to the size of the score.
RTOL = 1e-11
pytestmark = pytest.mark.usefixtures("one_thread")


def _noisy(gp: GaussianProcess, t: float | torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """Draws from the diffused marginal p_t (inputs the network's ranges are sized for)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(n, gp.N, gp.d, generator=g, dtype=torch.float64)
    return SCHED.add_noise(gp.sample(n, generator=g), t, noise)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.fixture(scope="module")
def gps() -> dict[str, GaussianProcess]:
    mu = torch.randn(N, d, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    return {
        "se": GaussianProcess(N, d, nu=2.0, ell=2.0, seed=1),
        "ou_mu": GaussianProcess(N, d, nu=1.0, ell=1.5, seed=2, mu=mu),
    }


# ---------------------------------------------------------------------------------------------- exact multiplication
@pytest.mark.parametrize("name", ["se", "ou_mu"])
@pytest.mark.parametrize("J", [None, 1, 4])
def test_exact_network_matches_gd_score(gps, name, J):
    gp = gps[name]
    t = 0.7
    x = _noisy(gp, t, 5)
    for steps in (0, 1, 2, 7):
        net = build_gd_transformer(gp, t, SCHED, steps, J=J)
        ref = gd_score(gp, x, t, SCHED, steps, J=J)
        out = net(x)
        assert out.shape == x.shape and out.dtype == torch.float64
        if steps == 0:
            assert torch.equal(out, torch.zeros_like(x))
        else:
            assert _rel(out, ref) < RTOL


def test_exact_network_with_given_eta_and_per_sequence_t(gps):
    gp = gps["ou_mu"]
    net = build_gd_transformer(gp, 0.5, SCHED, 6, J=3, eta=0.05)
    x = _noisy(gp, 0.5, 3)
    assert _rel(net(x), gd_score(gp, x, 0.5, SCHED, 6, J=3, eta=0.05)) < RTOL
    # t as a (batch,) tensor: the embedding recomputes alpha_t, sigma_t^2 and eta_t per sequence
    net = build_gd_transformer(gp, 0.5, SCHED, 6, J=3)
    t = torch.tensor([0.4, 0.5, 0.9], dtype=torch.float64)
    assert _rel(net(x, t), gd_score(gp, x, t, SCHED, 6, J=3)) < RTOL


def test_softmax_network_matches_gd_score(gps):
    gp = gps["se"]
    x = _noisy(gp, 0.7, 4)
    for steps in (1, 2, 6):
        net = build_gd_transformer(gp, 0.7, SCHED, steps, attention="softmax")
        assert _rel(net(x), gd_score(gp, x, 0.7, SCHED, steps)) < RTOL


# ---------------------------------------------------------------------------------------------- attention = the band
@pytest.mark.parametrize("J", [1, 3, N])
def test_relu_heads_cover_the_band_and_realise_it(gps, J):
    gp = gps["se"]
    net = build_gd_transformer(gp, 0.7, SCHED, 2, J=J)
    attn = [b for b in net.blocks if b.attn is not None]
    assert len(attn) == 1 and attn[0].attn.heads == 4 * J  # four trapezoid heads per gap 0..J-1
    W = net.temporal_weights(_noisy(gp, 0.7, 1))
    assert torch.allclose(W, banded(gp.Gamma, J), rtol=0, atol=1e-12)


def test_softmax_head_realises_the_whole_kernel(gps):
    gp = gps["se"]
    net = build_gd_transformer(gp, 0.7, SCHED, 3, attention="softmax")
    assert [b.heads for b in net.blocks if b.heads] == [1, 1]
    W = net.temporal_weights(_noisy(gp, 0.7, 1))
    assert torch.allclose(W, gp.Gamma, rtol=0, atol=1e-12)


def test_trapezoid_and_embedding_resolution():
    x = torch.linspace(-4, 4, 801, dtype=torch.float64)
    T = trapezoid(x)
    inside, outside = T[x.abs() <= 1], T[x.abs() >= 2]
    assert torch.allclose(inside, torch.ones_like(inside), rtol=0, atol=1e-15)
    # beyond x = 2 the four ReLUs cancel, exactly up to one rounding of numbers of size |x|
    assert torch.all(outside.abs() <= 1e-15 * x[x.abs() >= 2].abs()) and torch.all((T > -1e-15) & (T < 1 + 1e-15))
    for n in (2, 16, 128):  # the default frequency resolves every gap: psi strictly decreases
        psi = gap_inner_products(frame_embedding(n))
        assert torch.all(torch.diff(psi) < 0)
        assert resolution(psi, n) > 0
    # inner products depend on the gap only
    E = frame_embedding(12)
    G = E @ E.T
    for h in range(12):
        diag = torch.diagonal(G, h)
        assert torch.allclose(diag, torch.full_like(diag, float(G[0, h])), rtol=0, atol=1e-14)


# ---------------------------------------------------------------------------------------------- ReLU multiplication
def test_sawtooth_square_error_bound():
    w = torch.linspace(0, 1, 2**12 + 1, dtype=torch.float64)
    for m in range(7):
        err = sawtooth_square(w, m) - w**2
        bound = 2.0 ** (-2 * m - 2)
        assert err.min() >= -1e-15 and err.max() <= bound + 1e-15
        assert err.max() >= 0.99 * bound  # the bound is attained (at the midpoints of the 2^m pieces)


def test_one_step_relu_multiplication_within_its_bound(gps):
    # One GD step is s = -eta_t r: a single product, so the error per entry is at most C B 2^{-2m-1}.
    gp = gps["se"]
    t = 0.7
    x = _noisy(gp, t, 4)
    ref = gd_score(gp, x, t, SCHED, 1)
    for m in range(0, 9, 2):
        net = build_gd_transformer(gp, t, SCHED, 1, mult_depth=m)
        cfg = net.config
        assert float((x - SCHED.alpha(t) * gp.mu).abs().max()) <= cfg["ranges"]["r"]  # inside the module's range
        bound = cfg["eta_bound"] * cfg["ranges"]["r"] * 2.0 ** (-2 * m - 1)
        assert float((net(x) - ref).abs().max()) <= bound * (1 + 1e-9)


@pytest.mark.parametrize("attention", ["relu", "softmax"])
def test_relu_multiplication_error_shrinks_with_depth(gps, attention):
    gp = gps["se"]
    t, steps = 0.7, 6
    x = _noisy(gp, t, 4)
    ref = gd_score(gp, x, t, SCHED, steps)
    errs = [_rel(build_gd_transformer(gp, t, SCHED, steps, attention=attention, mult_depth=m)(x), ref)
            for m in (0, 3, 6, 9)]  # fmt: skip
    # each product's error is O(4^{-m}); three more levels must gain well over a factor 8 (ideal: 64)
    assert all(b < a / 8 for a, b in zip(errs, errs[1:], strict=False))
    assert errs[-1] < 1e-4


# ---------------------------------------------------------------------------------------------- Lemma 1
def test_error_to_exact_score_falls_as_lemma_1_predicts(gps):
    gp = gps["ou_mu"]
    t = 0.7
    x = _noisy(gp, t, 4)
    exact = gp.score(x, t, SCHED)
    kappa = condition_number(gp, t, SCHED)
    errs = []
    for steps in (2, 5, 10, 20):
        err = float((build_gd_transformer(gp, t, SCHED, steps)(x) - exact).norm())
        # GD from 0 with step 1/lambda_max: ||s^k - s*|| <= (1 - 1/kappa)^k ||s*||
        assert err <= (1 - 1 / kappa) ** steps * float(exact.norm()) * (1 + 1e-9)
        errs.append(err)
    assert all(b < a for a, b in zip(errs, errs[1:], strict=False))


# ---------------------------------------------------------------------------------------------- architecture
def test_is_a_transformer_with_attention_and_no_solver(gps, monkeypatch):
    gp = gps["se"]
    net = build_gd_transformer(gp, 0.7, SCHED, 4, J=3, mult_depth=2)
    allowed = (GDTransformer, TokenEmbedding, Block, MultiHeadAttention, FeedForward, BilinearFeedForward, Decoder,
               nn.ModuleList)  # fmt: skip
    kinds = {type(m) for m in net.modules()}
    assert kinds <= set(allowed), kinds - set(allowed)
    assert MultiHeadAttention in kinds
    assert net.attention_blocks() and all(net.blocks[i].attn.activation == "relu" for i in net.attention_blocks())
    x = _noisy(gp, 0.7, 2)
    expected = net(x)

    def forbidden(*args, **kwargs):
        raise AssertionError("the network must not solve, invert or factorise")

    for mod, names in ((torch.linalg, ("solve", "inv", "cholesky", "eigh", "eigvalsh", "lstsq", "pinv", "lu_factor")),
                       (torch, ("inverse", "cholesky_solve", "linalg_solve"))):  # fmt: skip
        for name in names:
            if hasattr(mod, name):
                monkeypatch.setattr(mod, name, forbidden)
    assert torch.equal(net(x), expected)


def test_size_report_counts(gps):
    gp = gps["se"]
    J, steps, m = 3, 5, 2
    net = build_gd_transformer(gp, 0.7, SCHED, steps, J=J, mult_depth=m)
    rep = size_report(net)
    # step 1: mult (m+1) + 2 linear blocks; later steps: mult (m+1), attention block, mult (m+1), update block
    assert rep["blocks"] == (m + 1) + 2 + (steps - 1) * (2 * (m + 1) + 2)
    assert rep["attention_blocks"] == steps - 1 and rep["heads"] == 4 * J and rep["heads_total"] == 4 * J * (steps - 1)
    assert rep["params"] == sum(p.numel() for p in net.parameters())
    assert 0 < rep["nonzero"] <= rep["params"] and math.isfinite(rep["param_max"]) and rep["param_norm"] > 0
    # blocks grow linearly with steps, heads with J
    rep2 = size_report(build_gd_transformer(gp, 0.7, SCHED, 2 * steps - 1, J=2 * J, mult_depth=m))
    assert rep2["blocks"] - (m + 3) == 2 * (rep["blocks"] - (m + 3)) and rep2["heads"] == 2 * rep["heads"]


def test_decoder_clips(gps):
    gp = gps["se"]
    net = build_gd_transformer(gp, 0.7, SCHED, 3)
    R = net.config["clip"]
    out = net(1e6 * torch.ones(1, N, d, dtype=torch.float64))
    assert float(out.abs().max()) <= R * (1 + 1e-12)
    assert math.isinf(build_gd_transformer(gp, 0.7, SCHED, 3, clip=False).config["clip"])


# ---------------------------------------------------------------------------------------------- errors
def test_clear_errors(gps):
    se, ou = gps["se"], gps["ou_mu"]
    with pytest.raises(ValueError, match="nu must be 2"):
        build_gd_transformer(ou, 0.7, SCHED, 3, attention="softmax")
    with pytest.raises(ValueError, match="J must be None"):
        build_gd_transformer(se, 0.7, SCHED, 3, J=4, attention="softmax")
    # a period-8 embedding cannot tell gap 1 from gap 7
    with pytest.raises(ValueError, match="cannot resolve"):
        build_gd_transformer(se, 0.7, SCHED, 3, J=2, n_freq=1, omega=2 * math.pi / 8)
    with pytest.raises(ValueError, match="attention"):
        build_gd_transformer(se, 0.7, SCHED, 3, attention="gelu")
    for kwargs in ({"steps": -1}, {"steps": 2, "mult_depth": -1}, {"steps": 2, "J": 0}, {"steps": 2, "eta": 0.0}):
        with pytest.raises(ValueError):
            build_gd_transformer(se, 0.7, SCHED, **kwargs)
    with pytest.raises(ValueError, match="t must be"):
        build_gd_transformer(se, 0.0, SCHED, 2)
    net = build_gd_transformer(se, 0.7, SCHED, 2)
    with pytest.raises(ValueError, match="shape"):
        net(torch.zeros(2, N + 1, d, dtype=torch.float64))
    with pytest.raises(ValueError, match="finite"):
        net(torch.full((1, N, d), math.nan, dtype=torch.float64))


def test_non_convex_band_is_refused():
    gp = GaussianProcess(N, d, nu=2.0, ell=4.0, seed=0)
    J = next(j for j in range(2, N) if not is_psd(banded(gp.Gamma, j)))
    with pytest.raises(ValueError, match="not convex"):
        build_gd_transformer(gp, 1e-3, SCHED, 3, J=J)


def test_softmax_construction_needs_one_more_block_per_step_than_relu():
    """construction: against the paper's B.5, our softmax network is deeper (24 against 19 blocks at N=32, d=4,
    5 steps), by the one multiplication by Z_i per step."""
    gp, sched = GaussianProcess(32, 4, nu=2.0, ell=2.0, seed=0), OUSchedule()
    for steps in (5, 10):
        relu = size_report(build_gd_transformer(gp, 0.5, sched, steps))["blocks"]
        soft = size_report(build_gd_transformer(gp, 0.5, sched, steps, attention="softmax"))["blocks"]
        assert soft - relu == steps
    assert size_report(build_gd_transformer(gp, 0.5, sched, 5))["blocks"] == 19
