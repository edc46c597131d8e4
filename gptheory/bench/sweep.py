"""Sweep-throughput benchmark: ``python -m gptheory.bench sweep [--workers 2 --points 4 ...]`` prints JSON.

Runs the same grid of a sweep twice in one run, into two fresh folders with an empty cache (shipped results are
ignored): once with
``--workers`` local worker processes (``cores // workers`` torch threads each) and once point after point in
this process (torch's default threads, all cores), and reports both wall times and their ratio. The machine's
fp32 matrix-multiply rate is measured before and after, so an absolute time can be compared across machines.

The default grid is the first ``--points`` points of ``sample-complexity-nu`` in the ``cpu`` profile, trained as in
the real sweep (``--steps`` shortens them), so the benchmark takes minutes, not the full regeneration's hour.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from .. import results
from ..experiments import sweep as find_sweep
from ..provenance import device_name, matmul_gflops
from ..sweep import run_sweep


def run(name: str, profile: str, points: int, workers: int, steps: int | None) -> dict:
    sweep = find_sweep(name)
    axes = sweep.axes(profile)
    grid = sweep.points(profile, axes)[:points]
    coords = [c for c, _ in grid]
    # the chosen points as a grid: one axis per coordinate that varies among them
    chosen = {k: sorted({c[k] for c in coords}) for k in axes}
    over = {} if steps is None else {"steps": steps}
    out = {"benchmark": "sweep", "sweep": name, "profile": profile, "points": len(coords), "workers": workers}
    out["matmul_gflops_fp32_before"] = matmul_gflops(n=2048)
    times = {}
    with tempfile.TemporaryDirectory() as tmp:
        results.SHIPPED = Path(tmp) / "no-shipped-results"  # time the training, not the loading of shipped points
        for mode, kw in (("workers", {"workers": workers}), ("serial", {"workers": 1})):
            os.environ["GPTHEORY_CACHE"] = os.path.join(tmp, f"cache-{mode}")
            start = time.perf_counter()
            res = run_sweep(sweep, profile, os.path.join(tmp, mode), axes=chosen, progress=False, **kw, **over)
            times[mode] = time.perf_counter() - start
            out[f"{mode}_points_computed"] = res.computed
    out["matmul_gflops_fp32_after"] = matmul_gflops(n=2048)
    out["seconds"] = times
    out["speedup"] = times["serial"] / times["workers"]
    out["cpu"] = device_name("cpu")
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m gptheory.bench sweep", description=__doc__.split("\n\n")[0])
    p.add_argument("--sweep", default="sample-complexity-nu")
    p.add_argument("--profile", default="cpu", choices=("smoke", "cpu", "gpu"))
    p.add_argument("--points", type=int, default=4, help="how many grid points (the first ones)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--steps", type=int, default=None, help="optimiser steps per point (default: the profile's)")
    a = p.parse_args(argv)
    out = run(a.sweep, a.profile, a.points, a.workers, a.steps)
    print(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
