"""Tests for gptheory.experiments.calibration: the exact score through the DiT's sampler scores at the floor of every
metric on processes no other test uses, a coarse sampler does not, and the command prints it."""

from __future__ import annotations

import json

import pytest

from gptheory.__main__ import main
from gptheory.experiments.calibration import calibrate, calibration_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize(
    "process", [{"N": 20, "d": 3, "nu": 1.4, "ell": 2.2}, {"N": 11, "d": 5, "nu": 0.8, "ell": 1.3, "sigma_seed": 4}]
)
def test_the_exact_score_scores_at_the_floor_of_every_metric(process):
    c = calibrate(calibration_config("cpu", n_gen=800, repeats=8, seed=3, **process))
    # 8 runs: the mean ratio is known to about spread / sqrt(8) <= 0.1 (see c.spread)
    assert all(0.8 < r < 1.25 for r in c.ratio.values()), c.ratio
    assert all(0.8 < r < 1.25 for r in c.paper_relative_error.values()), c.paper_relative_error
    assert set(c.paper_relative_error) == {64, 256, 1024, 4096}


def test_a_coarse_sampler_and_the_wrong_law_show_as_ratios_above_one():
    coarse = calibrate(calibration_config("cpu", N=12, d=4, nu=1.0, ell=3.0, sample_steps=3, n_gen=800))
    assert coarse.ratio["temporal"] > 1.5  # three Heun steps: a discretisation error the floor does not explain
    fine = calibrate(calibration_config("cpu", N=12, d=4, nu=1.0, ell=3.0, n_gen=800))
    assert fine.against_data["temporal"] > 1.1 > fine.ratio["temporal"] * 0.95  # the data law is the wrong target


def test_the_command_prints_json_and_names_bad_input(capsys, tmp_path):
    out = main(["calibrate", "--profile", "smoke", "--nu", "1.5", "--repeats", "2", "--out", str(tmp_path)])
    printed = json.loads(capsys.readouterr().out)
    assert printed["ratio"] == pytest.approx(out["ratio"]) and "worst_ratio" in printed
    assert json.loads((tmp_path / "calibration.json").read_text())["config"]["process"]["nu"] == 1.5
    with pytest.raises(SystemExit):
        main(["calibrate", "--profile", "smoke", "--t0", "2"])
    assert "t0 must be" in capsys.readouterr().err
