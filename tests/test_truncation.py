"""Checks of gptheory.truncation against definitions and dense references: the band, its PSD checks (Remark 1), and
the band Corollary 1 prescribes against the smallest band that meets a tolerance."""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from gptheory import GaussianProcess
from gptheory.gp import kernel_matrix
from gptheory.truncation import (
    band_matvec,
    banded,
    is_diagonally_dominant,
    is_psd,
    smallest_band,
    truncation_length,
)


@pytest.fixture(scope="module")
def gp():
    mu = 0.3 * torch.randn(12, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    return GaussianProcess(12, 3, nu=1.5, ell=2.0, mu=mu, seed=2)


def test_banded_matches_definition(gp):
    for J in (1, 2, 5, 12, 40):
        ref = torch.tensor([[gp.Gamma[i, j] if abs(i - j) < J else 0.0 for j in range(12)] for i in range(12)])
        assert torch.equal(banded(gp.Gamma, J), ref.to(torch.float64))
    assert torch.equal(banded(gp.Gamma, None), gp.Gamma)


@pytest.mark.parametrize("J", [None, 1, 2, 3, 6, 12])
def test_band_matvec_both_paths(J):
    N, d = 40, 4  # J <= 6 takes the per-diagonal gather path, larger J the dense path
    G = torch.randn(N, N, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = torch.randn(3, N, d, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ref = torch.einsum("ij,bjd->bid", banded(G, J), y)
    torch.testing.assert_close(band_matvec(G, y, J), ref, rtol=1e-13, atol=1e-13)


@settings(max_examples=40, deadline=None)
@given(
    nu=st.floats(0.3, 2.0),
    ell=st.floats(0.5, 20.0),
    N=st.integers(2, 200),
    log_eps=st.floats(-10.0, 0.0),
)
def test_truncation_length_meets_eps(nu, ell, N, log_eps):
    eps = 10.0**log_eps
    J = truncation_length(nu, ell, N, eps)
    assert 1 <= J <= N
    G = kernel_matrix(N, nu, ell)
    tail = G - banded(G, J)
    assert float(tail.abs().sum(1).max()) <= eps * (1 + 1e-12)  # infinity norm
    assert float(torch.linalg.matrix_norm(tail, 2)) <= eps * (1 + 1e-9)  # spectral norm
    # minimal for the stated bound N gamma(J) <= eps: one gap less breaks it (unless J is already 1)
    if J > 1 and J < N:
        assert N * math.exp(-(((J - 1) / ell) ** nu)) > eps


@pytest.mark.parametrize("nu,ell,N,eps", [(1.0, 3.0, 40, 1e-2), (2.0, 2.0, 30, 1e-6), (0.5, 2.0, 25, 1e-1)])
def test_smallest_band_is_a_linear_scan(nu, ell, N, eps):
    G = kernel_matrix(N, nu, ell)
    norms = [float(torch.linalg.matrix_norm(G - banded(G, J), 2)) for J in range(1, N + 1)]
    J = smallest_band(G, eps)
    assert J == next(j for j, v in zip(range(1, N + 1), norms, strict=True) if v <= eps)
    assert J <= truncation_length(nu, ell, N, eps)  # Corollary 1's band is sufficient, hence never smaller


def test_smallest_band_large_n_uses_top_eigenvalue():
    G = kernel_matrix(300, 1.0, 3.0)  # above 256 rows: Lanczos instead of a dense eigvalsh
    J = smallest_band(G, 1e-3)
    norm = lambda j: float(torch.linalg.eigvalsh(G - banded(G, j))[-1])  # noqa: E731
    assert norm(J) <= 1e-3 < norm(J - 1)


def test_truncation_length_shape():
    assert truncation_length(1.0, 4.0, 100, 1e-3) == math.ceil(4.0 * math.log(1e5))
    assert truncation_length(2.0, 8.0, 64, 100.0) == 1
    assert truncation_length(0.2, 50.0, 64, 1e-6) == 64


@settings(max_examples=30, deadline=None)
@given(nu=st.floats(0.5, 2.0), ell=st.floats(0.1, 0.9), N=st.integers(2, 60))
def test_remark1_dominant_bands_are_psd(nu, ell, N):
    G = kernel_matrix(N, nu, ell)
    if is_diagonally_dominant(G):
        for J in range(1, N + 1):
            assert is_psd(banded(G, J))
