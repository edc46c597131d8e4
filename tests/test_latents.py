"""Tests for the statistics of latent videos (gptheory.bouncing_ball.latents): Figure 6's
temporal correlation, the moment-matched Gaussian control, the nearest-neighbour distance."""

from __future__ import annotations

import numpy as np
import torch

from gptheory.bouncing_ball.latents import gaussian_fit, nearest_distance, temporal_correlation


def test_temporal_correlation_of_a_known_process():
    # z_t = a z_{t-1} + sqrt(1 - a^2) e_t, stationary: corr(i, j) = a^|i-j|
    g = torch.Generator().manual_seed(0)
    a, n, T = 0.8, 20000, 6
    z = torch.empty(n, T, 3, dtype=torch.float64)
    z[:, 0] = torch.randn(n, 3, generator=g, dtype=torch.float64)
    for t in range(1, T):
        z[:, t] = a * z[:, t - 1] + (1 - a * a) ** 0.5 * torch.randn(n, 3, generator=g, dtype=torch.float64)
    C = temporal_correlation(z)
    lag = np.abs(np.subtract.outer(np.arange(T), np.arange(T)))
    assert np.abs(C - a**lag).max() < 0.03  # about 4 standard errors of a correlation from 20000 x 3 samples


def test_gaussian_fit_has_the_data_moments_and_nearest_distance_finds_members():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(4000, 3, 2, generator=g) @ torch.tensor([[1.0, 0.5], [0.0, 2.0]]) + 3.0
    draws = gaussian_fit(z, 4000, seed=2)
    assert draws.shape == (4000, 3, 2)
    C_z, C_d = torch.cov(z.reshape(4000, -1).T), torch.cov(draws.reshape(4000, -1).T)
    # two sample covariances of 4000 draws: entries agree to a few times 1/sqrt(4000) of the scale (~4.5)
    assert (C_z - C_d).abs().max() < 0.4 and (z.mean(0) - draws.mean(0)).abs().max() < 0.15
    d = nearest_distance(z[:10], z)
    assert np.allclose(d, 0.0) and (nearest_distance(z[:10] + 100.0, z) > 90).all()
