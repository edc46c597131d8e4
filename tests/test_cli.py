"""Tests for the command line (``python -m gptheory``), the figure1 driver and the train benchmark, smoke-sized."""

from __future__ import annotations

import json

import pytest
import torch

from gptheory.__main__ import main
from gptheory.experiments import figure1, figure1_settings, kernel_by_lag

TINY = ["--profile", "smoke", "--N", "8", "--d", "2", "--n-train", "64", "--steps", "12", "--batch-size", "16"]
TINY += ["--hidden", "16", "--depth", "1", "--heads", "2", "--n-gen", "50", "--sample-steps", "4", "--no-progress"]


def test_reproduce_figure1_writes_metrics_and_figure(tmp_path, capsys):
    report = main(["reproduce", "figure1", *TINY, "--seed", "1", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("temporal", "spatial", "paper_relative_error", "train_seconds", "train_sequences_per_second", "device"):
        assert key in saved
    assert saved["steps"] == 12 and saved["settings"]["N"] == 8 and saved["settings"]["seed"] == 1
    assert (tmp_path / "figure1.png").stat().st_size > 0
    assert len(json.loads((tmp_path / "log.json").read_text())) == 2
    # a second run reuses the finished checkpoint: same training time, same samples, same metrics
    again = main(["reproduce", "figure1", *TINY, "--seed", "1", "--out", str(tmp_path)])
    assert again["train_seconds"] == report["train_seconds"] and again["temporal"] == report["temporal"]
    assert '"experiment": "figure1"' in capsys.readouterr().out


def test_train_command_writes_resumable_checkpoint(tmp_path):
    summary = main(["train", *TINY, "--out", str(tmp_path)])
    assert summary["steps"] == 12
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "log.json").exists()
    again = main(["train", *TINY, "--out", str(tmp_path)])  # already finished: resumes with nothing to do
    assert again["steps"] == 12 and again["final_loss"] == summary["final_loss"]


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["reproduce", "figure1", *TINY, "--N", "0", "--out", str(tmp_path)])
    assert err.value.code == 2
    assert "N must be a positive integer" in capsys.readouterr().err


def test_figure1_result_arrays():
    res = figure1(
        "smoke",
        N=8,
        d=2,
        n_train=64,
        steps=6,
        batch_size=16,
        hidden=16,
        depth=1,
        heads=2,
        n_gen=40,
        sample_steps=3,
        progress=False,
        device="cpu",
    )
    assert res.Gamma.shape == res.Gamma_gen.shape == res.Gamma_true.shape == (8, 8)
    assert res.Sigma_gen.shape == (2, 2) and res.x_gen.shape == (40, 8, 2)
    assert res.metrics["true_samples"]["temporal"] >= 0
    torch.testing.assert_close(kernel_by_lag(res.Gamma)[0], torch.tensor(1.0, dtype=torch.float64))
    with pytest.raises(ValueError, match="unknown setting"):
        figure1_settings("smoke", widht=3)


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
    assert json.loads(capsys.readouterr().out)["benchmark"] == "train"
