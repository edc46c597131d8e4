"""Tests for the command line (``python -m gptheory``), smoke-sized."""

from __future__ import annotations

import json

import pytest

from gptheory import results
from gptheory.__main__ import main

TINY = ["--profile", "smoke", "--N", "8", "--d", "2", "--n-train", "64", "--steps", "12", "--batch-size", "16"]
TINY += ["--hidden", "16", "--depth", "1", "--heads", "2", "--n-gen", "50", "--sample-steps", "4", "--no-progress"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTHEORY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(results, "SHIPPED", tmp_path / "shipped")


def test_dit_learns_writes_metrics_and_figure(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["dit-learns", *TINY, "--warmup", "2", "--t-sampling", "uniform", "--seed", "1"]
    report = main([*args, "--out", str(out)])
    saved = json.loads((out / "metrics.json").read_text())
    for key in ("temporal", "spatial", "paper_relative_error", "train_seconds", "train_sequences_per_second", "device"):
        assert key in saved
    config = saved["provenance"]["config"]
    assert saved["steps"] == 12 and config["process"]["N"] == 8 and config["seed"] == 1 and not saved["loaded"]
    assert config["train"]["t_sampling"] == "uniform" and config["train"]["warmup"] == 2
    assert (out / "figure1.png").stat().st_size > 0
    assert len(json.loads((out / "log.json").read_text())) == 2
    assert (out / "dit_learns.pt").exists()  # the training checkpoint, for an interrupted run to resume from
    # a second run loads the saved result of this configuration: nothing is trained, the metrics are the same
    again = main([*args, "--out", str(out)])
    assert again["loaded"] and again["train_seconds"] == report["train_seconds"]
    assert again["temporal"] == report["temporal"]
    # --refresh recomputes; the finished checkpoint is reloaded, so training is not repeated
    fresh = main([*args, "--refresh", "--out", str(out)])
    assert not fresh["loaded"] and fresh["train_seconds"] == report["train_seconds"]
    assert fresh["temporal"] == report["temporal"]
    assert '"experiment": "dit_learns"' in capsys.readouterr().out


def test_train_command_writes_resumable_checkpoint(tmp_path):
    summary = main(["train", *TINY, "--out", str(tmp_path)])
    assert summary["steps"] == 12
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "log.json").exists()
    again = main(["train", *TINY, "--out", str(tmp_path)])  # already finished: resumes with nothing to do
    assert again["steps"] == 12 and again["final_loss"] == summary["final_loss"]


def test_bad_input_is_one_clear_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        main(["dit-learns", *TINY, "--N", "0", "--out", str(tmp_path)])
    assert err.value.code == 2
    assert "N must be a positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", *TINY, "--threads", "0", "--out", str(tmp_path)])
    assert "threads must be a positive integer" in capsys.readouterr().err


def test_assignment_writes_the_master_notebook_and_names_the_chapters_it_accepts(tmp_path, capsys):
    report = main(["assignment", "gp_sequences", "--out", str(tmp_path)])
    assert report["master"] == str(tmp_path / "gp_sequences.ipynb") and (tmp_path / "gp_sequences.ipynb").is_file()
    assert report["autograded"] == ["ex-gp-ar1", "ex-gp-kappa"] and report["manual"] == ["ex-gp-sigma"]
    assert '"chapter": "gp_sequences"' in capsys.readouterr().out
    for chapter, why in (("nope", "is not a chapter of"), ("intro", "has no exercises")):
        with pytest.raises(SystemExit) as err:
            main(["assignment", chapter, "--out", str(tmp_path)])
        message = capsys.readouterr().err
        assert err.value.code == 2 and f"chapter {chapter!r} {why}" in message
        assert "chapter must be one of" in message and "gp_sequences, gradient_descent" in message


def test_impute_writes_paths_per_task_the_horizon_and_metrics(tmp_path, capsys):
    out = tmp_path / "out"
    args = ["impute", "--profile", "smoke", "--steps", "40", "--n-cond", "4", "--no-progress", "--out", str(out)]
    report = main(args)
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["method"] == "conditional" and saved["steps"] <= 40
    assert set(saved["tasks"]) == {"interpolate", "forecast-half", "gap-half", "forecast-quarter"}
    for task in saved["tasks"]:
        assert (out / f"paths-{task}.png").stat().st_size > 0
        assert set(saved["ratios_to_floor"][task]) == {"conditional", "exact"}
    assert (out / "horizon.png").stat().st_size > 0
    again = main(args)  # the saved result of this configuration: nothing trained again
    assert again["loaded"] and again["ratios_to_floor"] == report["ratios_to_floor"]
    # the unconditional DiT imputes by replacement
    rep = main([*args[:-1], str(tmp_path / "rep"), "--masking", "none"])
    assert rep["method"] == "replacement" and rep["provenance"]["config"]["model"].get("arch", "dit") == "dit"
    with pytest.raises(SystemExit):
        main([*args[:-1], str(tmp_path / "bad"), "--n-draws", "10"])
    assert "n_draws must be an integer >= 39" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args[:-1], str(tmp_path / "bad"), "--masking", "random", "--arch", "dit"])
    assert "arch='dit' with masking='random'" in capsys.readouterr().err
