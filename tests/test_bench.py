"""The score benchmark runs end to end and its three routes agree (no timing is asserted)."""

from __future__ import annotations

import json

from gptheory.bench.__main__ import main
from gptheory.bench.score import run


def test_score_benchmark_routes_agree():
    result = run(N=24, d=3, times=3, per_time=2, repeats=1)
    assert result["sequences"] == 6
    assert result["max_rel_diff_kronecker_vs_dense"] < 1e-10
    if "linear_operator_s" in result:
        assert result["max_rel_diff_linear_operator_vs_dense"] < 1e-10
    assert all(result[k] > 0 for k in ("kronecker_eval_s", "dense_s"))


def test_cli_prints_json(capsys):
    main(["score", "--N", "16", "--d", "2", "--times", "2", "--per-time", "1", "--repeats", "1"])
    assert json.loads(capsys.readouterr().out)["N"] == 16
