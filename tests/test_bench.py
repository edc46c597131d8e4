"""Tests for gptheory.bench: the score benchmark runs end to end and its three routes agree, the train benchmark runs
at a tiny size (no timing is asserted)."""

from __future__ import annotations

import json

import pytest

from gptheory.bench.__main__ import main
from gptheory.bench.score import run


def test_score_benchmark_routes_agree():
    result = run(N=24, d=3, shapes=((3, 2), (2, 5)), repeats=1)
    assert [(s["diffusion_times"], s["per_time"], s["sequences"]) for s in result["shapes"]] == [(3, 2, 6), (2, 5, 10)]
    for shape in result["shapes"]:
        assert shape["max_rel_diff_kronecker_vs_dense"] < 1e-10
        if "linear_operator_s" in shape:
            assert shape["max_rel_diff_linear_operator_vs_dense"] < 1e-10
        assert all(shape[k] > 0 for k in ("kronecker_first_call_s", "kronecker_eval_s", "dense_s"))
    assert result["fp32_matmul_gflops"] > 0


def test_cli_runs_the_shapes_it_is_given(capsys):
    main(["score", "--N", "16", "--d", "2", "--shape", "2x1", "--shape", "1x3", "--repeats", "1"])
    out = json.loads(capsys.readouterr().out)
    assert (out["N"], out["d"]) == (16, 2)
    assert [(s["diffusion_times"], s["per_time"]) for s in out["shapes"]] == [(2, 1), (1, 3)]
    assert all(s["max_rel_diff_kronecker_vs_dense"] < 1e-10 for s in out["shapes"])


def test_cli_rejects_a_bad_shape(capsys):
    with pytest.raises(SystemExit):
        main(["score", "--shape", "8by64"])
    assert "--shape must be TIMESxPER_TIME" in capsys.readouterr().err


def test_train_benchmark_tiny(capsys):
    pytest.importorskip("diffusers")
    from gptheory.bench.train import main as bench

    out = bench(
        [
            "--hidden",
            "16",
            "--depth",
            "1",
            "--heads",
            "2",
            "--N",
            "16",
            "--d",
            "2",
            "--batch",
            "4",
            "--rounds",
            "2",
            "--steps",
            "1",
            "--warmup",
            "1",
            "--no-bf16",
        ]
    )
    assert out["fp32"]["ours"]["median_seq_per_s"] > 0 and out["fp32"]["peer"]["median_seq_per_s"] > 0
    assert "speedup_per_cpu_second" in out["fp32"]
    parts = out["breakdown_ms_per_step_ours_fp32"]
    assert {"sum of parts", "measured full step"} <= set(parts)
    bound = out["gemm_bound_fp32"]
    for name in ("ours", "peer"):
        assert 0 < out["top_ops_ms_per_step_fp32"][name]["gemm_share"] <= 1
        b = bound[name]
        assert b["step_ms"] == pytest.approx(1e3 * 4 / out["fp32"][name]["median_seq_per_s"], abs=0.06)
        assert b["gemm_ms"] + b["other_ms"] == pytest.approx(b["step_ms"], abs=0.2)
    # the ceiling assumes our non-product time vanished, so it bounds the measured speed-up of medians
    assert bound["speedup_ceiling_if_ours_had_no_other_time"] >= out["fp32"]["speedup_of_medians"] - 0.01
    assert json.loads(capsys.readouterr().out)["benchmark"] == "train"


def test_sweep_benchmark_computes_the_same_points_both_ways(monkeypatch, tmp_path, capsys):
    from gptheory import results
    from gptheory.bench.sweep import main as bench_sweep

    monkeypatch.setattr(results, "SHIPPED", results.SHIPPED)  # the benchmark points it elsewhere: put it back after
    monkeypatch.setenv("GPTHEORY_CACHE", str(tmp_path / "cache"))  # and sets the cache per mode: restored after
    out = bench_sweep(["--profile", "smoke", "--points", "2", "--workers", "2", "--steps", "2"])
    assert out["points"] == 2 and out["workers_points_computed"] == out["serial_points_computed"] == 2
    assert out["speedup"] == pytest.approx(out["seconds"]["serial"] / out["seconds"]["workers"])
    assert out["matmul_gflops_fp32_before"] > 0 and out["cpu"].startswith("cpu (")
    assert json.loads(capsys.readouterr().out) == out
