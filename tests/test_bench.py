"""The score benchmark runs end to end and its three routes agree (no timing is asserted)."""

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
