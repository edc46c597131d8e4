"""Shared fixtures: small, awkward shapes by default (N != d, odd sizes, non-zero means)."""

from __future__ import annotations

import pytest
import torch

from gptheory import GaussianProcess


@pytest.fixture
def gen() -> torch.Generator:
    return torch.Generator().manual_seed(1234)


@pytest.fixture(
    params=[(7, 3, 1.0, 2.5), (13, 1, 2.0, 3.0), (5, 4, 0.5, 1.0)], ids=lambda p: f"N{p[0]}-d{p[1]}-nu{p[2]}"
)
def gp(request, gen) -> GaussianProcess:
    N, d, nu, ell = request.param
    mu = torch.randn(N, d, generator=gen, dtype=torch.float64)
    return GaussianProcess(N, d, nu=nu, ell=ell, mu=mu, seed=N + d)


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one thread for a test module (``pytestmark = pytest.mark.usefixtures("one_thread")``): the
    hand-built networks are hundreds of tiny matrix products, for which OpenMP start-up costs dominate on a busy CPU."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
