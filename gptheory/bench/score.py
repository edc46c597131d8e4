"""Exact-score benchmark: ``python -m gptheory.bench score [--N 512 --d 8 --shape 16x4 --shape 8x64]`` prints JSON.

Evaluates ``grad log p_t`` for sequences spread over several diffusion times three ways, on the same inputs in the
same run, for each batch shape ``TIMESxPER_TIME`` (default: a few sequences per time, ``16x4``, and many,
``8x64``):

* ``kronecker`` -- :meth:`gptheory.GaussianProcess.score`. The headline time is the *first call on a fresh
  process*, so the one-off eigendecompositions are included; later calls (``kronecker_eval_s``) reuse them;
* ``dense`` -- the textbook route: build ``alpha_t^2 Gamma (x) Sigma + sigma_t^2 I`` for each time, Cholesky-factor
  it and solve;
* ``linear_operator`` -- GPyTorch's ``KroneckerProductLinearOperator`` plus a constant diagonal, one operator per
  time, whose ``solve`` also works through the Kronecker eigendecomposition (skipped if not installed).

Each time is the median of ``--repeats`` runs after an untimed warm-up; the dense route, seconds per call, runs
once. The largest difference to the dense result, relative to its largest entry, is reported for each route. The
machine's measured fp32 (and fp64, the precision of all three routes) matrix-product rate is reported beside the
absolute times.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import torch

from ..gp import GaussianProcess
from ..provenance import matmul_gflops
from ..schedules import OUSchedule

DEFAULT_SHAPES = ((16, 4), (8, 64))  # (diffusion times, sequences per time)


def _median(fn: Callable[[], torch.Tensor], repeats: int, warmup: bool = True) -> tuple[float, torch.Tensor]:
    """Median wall time of ``repeats`` calls (after one untimed call when ``warmup``) and the last output."""
    if warmup:
        fn()
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), out


def run_shape(gp: GaussianProcess, times: int, per_time: int, repeats: int = 3, seed: int = 0) -> dict:
    """Time the three routes on ``times * per_time`` sequences of ``gp``; the JSON-ready entry of one shape."""
    N, d = gp.N, gp.d
    schedule = OUSchedule()
    t_grid = torch.logspace(-2, 1, times, dtype=torch.float64)
    t = t_grid.repeat_interleave(per_time)
    x = gp.sample(times * per_time, generator=torch.Generator().manual_seed(seed))
    a_t, b_t = schedule.alpha(t_grid) ** 2, schedule.sigma(t_grid) ** 2

    def kron_first_call() -> torch.Tensor:  # a fresh process: its eigendecompositions are part of the call
        return GaussianProcess(N, d, nu=gp.nu, ell=gp.ell, Sigma=gp.Sigma).score(x, t, schedule)

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

    t_first, s_kron = _median(kron_first_call, repeats)
    t_eval, _ = _median(kron_eval, repeats)
    t_dense, s_dense = _median(dense, 1, warmup=False)  # seconds per call: one is plenty
    scale = s_dense.abs().max()
    result = {
        "diffusion_times": times,
        "per_time": per_time,
        "sequences": times * per_time,
        "kronecker_first_call_s": t_first,
        "kronecker_eval_s": t_eval,
        "dense_s": t_dense,
        "speedup_vs_dense": t_dense / t_first,
        "max_rel_diff_kronecker_vs_dense": float((s_kron - s_dense).abs().max() / scale),
    }
    try:
        from linear_operator.operators import ConstantDiagLinearOperator, KroneckerProductLinearOperator
    except ImportError:
        result["linear_operator"] = "not installed (pip install linear_operator, or the 'bench' extra)"
        return result

    def lo() -> torch.Tensor:
        out = []
        for k in range(times):
            op = KroneckerProductLinearOperator(gp.Gamma * a_t[k], gp.Sigma)
            op = op + ConstantDiagLinearOperator(b_t[k].reshape(1), diag_shape=N * d)
            rhs = x[k * per_time : (k + 1) * per_time].reshape(per_time, N * d).T
            out.append(-op.solve(rhs).T.reshape(per_time, N, d))
        return torch.cat(out)

    t_lo, s_lo = _median(lo, repeats)
    result.update(
        {
            "linear_operator_s": t_lo,
            "speedup_vs_linear_operator": t_lo / t_first,
            "max_rel_diff_linear_operator_vs_dense": float((s_lo - s_dense).abs().max() / scale),
        }
    )
    return result


def run(
    N: int = 512,
    d: int = 8,
    shapes: tuple[tuple[int, int], ...] = DEFAULT_SHAPES,
    repeats: int = 3,
    seed: int = 0,
) -> dict:
    """Time the three routes for every ``(diffusion times, sequences per time)`` in ``shapes``; JSON-ready."""
    gp = GaussianProcess(N, d, nu=1.0, ell=8.0, seed=seed)
    torch.linalg.cholesky(torch.eye(64, dtype=torch.float64))  # load LAPACK before any timing
    return {
        "benchmark": "exact score",
        "N": N,
        "d": d,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.processor() or platform.machine(),
        "fp32_matmul_gflops": matmul_gflops(torch.float32),
        "fp64_matmul_gflops": matmul_gflops(torch.float64),
        "shapes": [run_shape(gp, times, per_time, repeats, seed) for times, per_time in shapes],
    }


def _shape(text: str) -> tuple[int, int]:
    try:
        times, per_time = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--shape must be TIMESxPER_TIME, e.g. 8x64, got {text!r}") from None
    if times < 1 or per_time < 1:
        raise argparse.ArgumentTypeError(f"--shape needs positive counts, got {text!r}")
    return times, per_time


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m gptheory.bench score", description=__doc__.splitlines()[0])
    ap.add_argument("--N", type=int, default=512, help="frames per sequence (default 512)")
    ap.add_argument("--d", type=int, default=8, help="frame dimension (default 8)")
    ap.add_argument("--shape", type=_shape, action="append", help="TIMESxPER_TIME, repeatable (default: 16x4 and 8x64)")
    ap.add_argument("--repeats", type=int, default=3, help="timing repeats, median kept (default 3)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads for all routes (default: torch's)")
    args = ap.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            ap.error(f"--threads must be a positive integer, got {args.threads}")
        torch.set_num_threads(args.threads)
    for name in ("N", "d", "repeats"):
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be a positive integer, got {getattr(args, name)}")
    shapes = tuple(args.shape) if args.shape else DEFAULT_SHAPES
    print(json.dumps(run(args.N, args.d, shapes, args.repeats, args.seed), indent=2))


if __name__ == "__main__":
    main()
