"""Statistics of latent videos ``z: (n, frames, latent_dim)`` for the bouncing-ball experiment: Figure 6's temporal
correlation, a Gaussian with the same first two moments (the control), and a memorisation check."""

from __future__ import annotations

import numpy as np
import torch


def temporal_correlation(z: torch.Tensor | np.ndarray) -> np.ndarray:
    """Figure 6's matrix: the correlation across videos between frames ``i`` and ``j`` of each latent coordinate,
    averaged over coordinates. ``z: (n, frames, latent_dim)`` -> ``(frames, frames)``."""
    x = torch.as_tensor(np.asarray(z), dtype=torch.float64)
    x = x - x.mean(0)
    cov = torch.einsum("nik,njk->kij", x, x) / (x.shape[0] - 1)  # (latent_dim, frames, frames)
    sd = torch.sqrt(torch.diagonal(cov, dim1=1, dim2=2).clamp(min=1e-300))
    return (cov / (sd[:, :, None] * sd[:, None, :])).mean(0).numpy()


def relative_error(A: np.ndarray, B: np.ndarray) -> float:
    """``||A - B||_F / ||B||_F``."""
    return float(np.linalg.norm(A - B) / np.linalg.norm(B))


def gaussian_fit(z: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` draws ``(n, frames, latent_dim)`` from the Gaussian with the mean and full covariance of the latent
    videos ``z: (m, frames, latent_dim)`` (a small ridge keeps the Cholesky factor finite)."""
    m, T, d = z.shape
    flat = z.reshape(m, T * d).double()
    mu = flat.mean(0)
    C = torch.cov(flat.T) + 1e-6 * torch.eye(T * d, dtype=torch.float64)
    L = torch.linalg.cholesky(C)
    g = torch.Generator().manual_seed(int(seed))
    e = torch.randn(n, T * d, generator=g, dtype=torch.float64)
    return (mu + e @ L.T).reshape(n, T, d).float()


def nearest_distance(z: torch.Tensor, data: torch.Tensor, chunk: int = 256) -> np.ndarray:
    """Euclidean distance ``(n,)`` from each latent video ``z: (n, frames, d)`` to its nearest one in ``data``."""
    flat = data.reshape(len(data), -1).double()
    out = [torch.cdist(part.reshape(len(part), -1).double(), flat).min(1).values for part in z.split(chunk)]
    return torch.cat(out).numpy()


__all__ = ["gaussian_fit", "nearest_distance", "relative_error", "temporal_correlation"]
