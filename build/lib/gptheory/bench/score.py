"""Exact-score benchmark: ``python -m gptheory.bench score [--N 512 --d 8 ...]`` prints JSON.

Evaluates ``grad log p_t`` for a batch of sequences spread over many diffusion times three ways, on
the same inputs in the same run:

* ``kronecker`` -- :meth:`gptheory.GaussianProcess.score` (one pair of eigendecompositions, then two
  small matrix products per sequence); its one-off set-up is timed separately and included in the total;
* ``dense`` -- the textbook route: build ``alpha_t^2 Gamma (x) Sigma + sigma_t^2 I`` for each time,
  Cholesky-factor it and solve;
* ``linear_operator`` -- GPyTorch's ``KroneckerProductLinearOperator`` plus a constant diagonal,
  whose ``solve`` also works through the Kronecker eigendecomposition (skipped if not installed).

Each timing is the best of ``--repeats`` runs after an untimed warm-up (the dense route, seconds
per call, runs once after LAPACK is loaded). The largest difference to the dense result, relative to
its largest entry, is reported for each route.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable

import torch

from ..gp import GaussianProcess
from ..schedules import OUSchedule


def _best(fn: Callable[[], torch.Tensor], repeats: int, warmup: bool = True) -> tuple[float, torch.Tensor]:
    """Best wall time of ``repeats`` calls, after one untimed call (library start-up, caches)."""
    if warmup:
        fn()
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def run(N: int = 512, d: int = 8, times: int = 16, per_time: int = 4, repeats: int = 3, seed: int = 0) -> dict:
    """Time the three routes; returns the JSON-ready result dictionary."""
    schedule = OUSchedule()
    gen = torch.Generator().manual_seed(seed)
    gp = GaussianProcess(N, d, nu=1.0, ell=8.0, seed=seed)
    t_grid = torch.logspace(-2, 1, times, dtype=torch.float64)
    t = t_grid.repeat_interleave(per_time)
    x = gp.sample(times * per_time, generator=gen)
    a_t, b_t = schedule.alpha(t_grid) ** 2, schedule.sigma(t_grid) ** 2

    def kron_setup() -> torch.Tensor:
        fresh = GaussianProcess(N, d, nu=1.0, ell=8.0, Sigma=gp.Sigma)
        return fresh.eig[0]

    def kron_eval() -> torch.Tensor:
        return gp.score(x, t, schedule)

    def dense() -> torch.Tensor:
        K, eye = gp.covariance(), torch.eye(N * d, dtype=torch.float64)
        out = []
        for k in range(times):
            L = torch.linalg.cholesky(a_t[k] * K + b_t[k] * eye)
            rhs = x[k * per_time : (k + 1) * per_time].reshape(per_time, N * d).T
            out.append(-torch.cholesky_solve(rhs, L).T.reshape(per_time, N, d))
        return torch.cat(out)

    _ = gp.eig  # warm the cache used by kron_eval
    torch.linalg.cholesky(torch.eye(64, dtype=torch.float64))  # load LAPACK before any timing
    t_setup, _ = _best(kron_setup, repeats)
    t_kron, s_kron = _best(kron_eval, repeats)
    t_dense, s_dense = _best(dense, 1, warmup=False)  # seconds per call: one is plenty
    scale = s_dense.abs().max()
    result = {
        "benchmark": "exact score",
        "N": N,
        "d": d,
        "diffusion_times": times,
        "sequences": times * per_time,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "kronecker_setup_s": t_setup,
        "kronecker_eval_s": t_kron,
        "kronecker_total_s": t_setup + t_kron,
        "dense_s": t_dense,
        "speedup_vs_dense": t_dense / (t_setup + t_kron),
        "max_rel_diff_kronecker_vs_dense": float((s_kron - s_dense).abs().max() / scale),
    }
    try:
        from linear_operator.operators import ConstantDiagLinearOperator, KroneckerProductLinearOperator
    except ImportError:
        result["linear_operator"] = "not installed (pip install linear_operator)"
        return result

    def lo() -> torch.Tensor:
        out = []
        for k in range(times):
            op = KroneckerProductLinearOperator(gp.Gamma * a_t[k], gp.Sigma)
            op = op + ConstantDiagLinearOperator(b_t[k].reshape(1), diag_shape=N * d)
            rhs = x[k * per_time : (k + 1) * per_time].reshape(per_time, N * d).T
            out.append(-op.solve(rhs).T.reshape(per_time, N, d))
        return torch.cat(out)

    t_lo, s_lo = _best(lo, repeats)
    result.update(
        {
            "linear_operator_s": t_lo,
            "speedup_vs_linear_operator": t_lo / (t_setup + t_kron),
            "max_rel_diff_linear_operator_vs_dense": float((s_lo - s_dense).abs().max() / scale),
        }
    )
    return result


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m gptheory.bench score", description=__doc__.splitlines()[0])
    ap.add_argument("--N", type=int, default=512, help="frames per sequence (default 512)")
    ap.add_argument("--d", type=int, default=8, help="frame dimension (default 8)")
    ap.add_argument("--times", type=int, default=16, help="distinct diffusion times (default 16)")
    ap.add_argument("--per-time", type=int, default=4, help="sequences per diffusion time (default 4)")
    ap.add_argument("--repeats", type=int, default=3, help="timing repeats, best kept (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    for name in ("N", "d", "times", "per_time", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name.replace('_', '-')} must be a positive integer, got {getattr(args, name)}")
    print(json.dumps(run(args.N, args.d, args.times, args.per_time, args.repeats, args.seed), indent=2))


if __name__ == "__main__":
    main()
