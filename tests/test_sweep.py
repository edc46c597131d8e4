"""Tests for gptheory.sweep: a grid of trainings that resumes, never mixes folders, and fails early on bad input."""

from __future__ import annotations

import csv
import dataclasses
import json

import pytest

from gptheory import executors, results, sweep
from gptheory.__main__ import main
from gptheory.experiments import SWEEPS, sweep_costs
from gptheory.experiments import sweep as find_sweep
from gptheory.experiments.sample_complexity import SampleComplexity
from gptheory.shipping import adopt, cost, scope
from gptheory.sweep import run_sweep

SC_NU, SC_ELL = find_sweep("sample-complexity-nu"), find_sweep("sample-complexity-ell")

# two seconds a point: the smoke process with a handful of steps and samples
TINY = {"steps": 4, "n_gen": 30, "sample_steps": 2}
AXES = {"nu": [1.0, 2.0], "n_train": [32], "seed": [0]}


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTHEORY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(results, "SHIPPED", tmp_path / "shipped")


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_registry_names_every_sweep_and_its_grid():
    names = set(SWEEPS)
    assert {"dit-learns", "sample-complexity-nu", "sample-complexity-ell"} <= names
    for s in SWEEPS.values():
        assert set(s.grid) == {"smoke", "cpu", "gpu"} and set(s.base) == {"smoke", "cpu", "gpu"}
    cpu = SWEEPS["sample-complexity-nu"].grid["cpu"]
    n = cpu["n_train"]  # the floor: 4 sizes over 16x, 3 kernels, 2 seeds
    assert len(n) >= 4 and max(n) / min(n) >= 16 and len(cpu["nu"]) >= 3 and len(cpu["seed"]) >= 2
    assert len(SWEEPS["sample-complexity-ell"].grid["cpu"]["ell"]) >= 3


def test_linked_settings_follow_their_axis_value_and_never_override_the_grid():
    linked = {"nu": {1.0: {"lr": 1e-4, "steps": 7}, 2.0: {"lr": 5e-3}}, "absent_axis": {1: {"lr": 9.0}}}
    demo = dataclasses.replace(SC_NU, linked={p: linked for p in ("smoke", "cpu", "gpu")})
    axes = {"nu": (1.0, 2.0, 0.5), "n_train": (32,), "seed": (0,)}
    pts = {c["nu"]: cfg for c, cfg in demo.points("smoke", axes, steps=11, lr=3e-3)}
    assert (pts[1.0].train.lr, pts[1.0].train.steps) == (1e-4, 7)  # the link beats the base override ...
    assert (pts[2.0].train.lr, pts[2.0].train.steps) == (5e-3, 11)  # ... setting by setting
    assert (pts[0.5].train.lr, pts[0.5].train.steps) == (3e-3, 11)  # a value without a link keeps the base
    tied_to_grid = dataclasses.replace(SC_NU, linked={p: {"seed": {0: {"nu": 0.7}}} for p in ("smoke", "cpu", "gpu")})
    assert {cfg.process.nu for _, cfg in tied_to_grid.points("smoke", axes)} == {1.0, 2.0, 0.5}  # the grid wins


def test_a_sweep_writes_a_tidy_table_and_a_second_run_does_no_work(tmp_path):
    out = tmp_path / "sweep"
    first = run_sweep(SC_NU, "smoke", out, axes=AXES, progress=False, **TINY)
    assert first.computed == 2 and len(first.points) == 2
    rows = _rows(out / "results.csv")
    assert [float(r["nu"]) for r in rows] == [1.0, 2.0] and {r["seed"] for r in rows} == {"0"}
    for col in ("n_train", "dit.temporal", "train.covariance", "yardstick.temporal", "paper_relative_error"):
        assert col in rows[0]
    assert {"train_seconds", "device", "commit"} <= set(rows[0])
    assert (out / "summary.png").stat().st_size > 0
    p = first.points[0][1]
    assert isinstance(p, SampleComplexity)
    assert p.relative_count == min(p.config["n_train"], p.config["sampler"]["n_gen"])
    again = run_sweep(SC_NU, "smoke", out, axes=AXES, progress=False, **TINY)
    assert again.computed == 0 and [r.dit for r in again.records()] == [r.dit for r in first.records()]
    # a larger grid reuses the finished points
    more = run_sweep(SC_NU, "smoke", out, axes={**AXES, "seed": [0, 1]}, progress=False, **TINY)
    assert more.computed == 2 and len(_rows(out / "results.csv")) == 4


def test_a_sweep_that_may_not_train_loads_what_is_finished_and_counts_the_rest(tmp_path, monkeypatch):
    from gptheory.experiments import probe

    def no_training(*args, **kw):
        raise AssertionError("train=False trained a point")

    first = run_sweep(SC_NU, "smoke", None, axes={**AXES, "nu": [1.0]}, progress=False, **TINY)  # one point cached
    monkeypatch.setattr(executors, "execute", no_training)
    part = run_sweep(SC_NU, "smoke", None, axes=AXES, progress=False, train=False, **TINY)
    assert (part.computed, part.missing, len(part.points)) == (0, 1, 1)
    assert part.records()[0].dit == first.records()[0].dit
    text = sweep.provenance_summary([part])
    assert "1 distinct trainings, 0 of them trained" in text and f"1 of {SC_NU.name}'s points" in text
    assert "Not shipped yet" not in sweep.provenance_summary([first])  # a complete sweep says nothing of the kind
    assert not probe.trains("cpu") and probe.trains("smoke") and probe.trains("gpu")  # hours on a CPU: load only
    assert sweep.code_versions([part]).startswith("Every point read here comes from one version")
    other = dataclasses.replace(part, sweep="other", points=[({}, dataclasses.replace(first.records()[0]))])
    other.points[0][1].provenance = dataclasses.replace(first.records()[0].provenance, code="f" * 64)
    two = sweep.code_versions([part, other])
    assert two.startswith("The points read here come from 2 versions") and "other: ffffffffffff" in two


def test_an_interrupted_sweep_keeps_finished_points(tmp_path, monkeypatch):
    out = tmp_path / "sweep"
    real = executors._point_task
    calls = []

    def stop_at_second(*args, **kw):
        calls.append(args)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(executors, "_point_task", stop_at_second)
    with pytest.raises(KeyboardInterrupt, match="1 of 2 points are finished and kept"):
        run_sweep(SC_NU, "smoke", out, axes=AXES, progress=False, **TINY)
    assert len(_rows(out / "results.csv")) == 1
    assert not [p for p in out.rglob("*.tmp")]  # nothing half-written
    monkeypatch.setattr(executors, "_point_task", real)
    resumed = run_sweep(SC_NU, "smoke", out, axes=AXES, progress=False, **TINY)
    assert resumed.computed == 1 and len(_rows(out / "results.csv")) == 2


def test_workers_and_the_submitit_path_give_the_same_points(tmp_path):
    serial = run_sweep(SC_NU, "smoke", tmp_path / "a", axes=AXES, progress=False, **TINY)
    for p in results.cache_dir().glob("*.json"):  # empty the cache, so the pool computes the points again
        p.unlink()
    pool = run_sweep(SC_NU, "smoke", tmp_path / "b", axes=AXES, workers=2, progress=False, **TINY)
    assert pool.computed == 2
    for (c1, r1), (c2, r2) in zip(serial.points, pool.points, strict=True):
        assert c1 == c2 and r1.dit.temporal == pytest.approx(r2.dit.temporal, rel=1e-4)
        assert r2.provenance.device.endswith("1 threads)")  # two workers on two cores: one thread each
    pytest.importorskip("submitit")
    for p in results.cache_dir().glob("*.json"):
        p.unlink()
    sub = run_sweep(SC_NU, "smoke", tmp_path / "c", axes=AXES, executor="submitit-local", progress=False, **TINY)
    assert sub.computed == 2 and len(_rows(tmp_path / "c" / "results.csv")) == 2
    assert sub.points[1][1].dit.temporal == pytest.approx(serial.points[1][1].dit.temporal, rel=1e-4)


def test_bad_input_fails_before_any_work_and_names_the_parameter(tmp_path):
    with pytest.raises(ValueError, match="sweep must be one of .*sample-complexity-nu"):
        find_sweep("sample-complexity")
    with pytest.raises(ValueError, match=r"nu must be a real number in \(0, 2\], got 3"):
        run_sweep(SC_NU, "smoke", tmp_path / "bad", axes={"nu": [1.0, 3.0]}, progress=False)
    assert not (tmp_path / "bad").exists()  # nothing written for a grid that cannot run
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ValueError, match="--out must be a folder this process can write"):
        run_sweep(SC_NU, "smoke", blocker / "sub", axes=AXES, progress=False, **TINY)
    out = tmp_path / "used"
    run_sweep(SC_NU, "smoke", out, axes={**AXES, "nu": [1.0]}, progress=False, **TINY)
    with pytest.raises(ValueError, match="holds results of sweep 'sample-complexity-nu', not 'sample-complexity-ell'"):
        run_sweep(SC_ELL, "smoke", out, progress=False, **TINY)
    with pytest.raises(ValueError, match=r"another configuration .*train.steps: 4 -> 5"):
        run_sweep(SC_NU, "smoke", out, axes={**AXES, "nu": [1.0]}, progress=False, **{**TINY, "steps": 5})
    assert len(_rows(out / "results.csv")) == 1  # the finished point is untouched


def test_sweep_command_line(tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["sweep", "sample-complexity-ell", "--profile", "smoke", "--out", str(out), "--no-progress"]
    args += [
        "--steps",
        "4",
        "--n-gen",
        "30",
        "--sample-steps",
        "2",
        "--n-train",
        "32",
        "--ell",
        "2",
        "4",
        "--seeds",
        "0",
    ]
    report = main(args)
    assert report["points"] == 2 and report["computed_now"] == 2
    assert json.loads((out / "sweep.json").read_text())["sweep"] == "sample-complexity-ell"
    assert main(args)["computed_now"] == 0
    with pytest.raises(SystemExit) as err:
        main(["sweep", "nope", "--profile", "smoke", "--out", str(out)])
    assert err.value.code == 2 and "sweep must be one of" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args[:-2], "--seeds", "-1"])
    assert "seed must be a non-negative integer" in capsys.readouterr().err


def test_ship_refuses_points_computed_by_code_that_changed_while_the_sweep_ran(tmp_path, monkeypatch):
    hashes = iter(["code-at-start", "code-edited-meanwhile"])
    monkeypatch.setattr(sweep, "code_hash", lambda module: next(hashes))
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="changed while sweep sample-complexity-nu ran"):
        run_sweep(SC_NU, "smoke", out, axes=AXES, progress=False, ship=True, **TINY)
    assert not list((tmp_path / "shipped").glob("*.json"))  # nothing shipped
    kept = [results.read(p, SampleComplexity) for p in (out / "points").glob("*.json")]
    assert len(kept) == 2 and {p.provenance.code for p in kept} == {"code-at-start"}  # the code that computed them


def test_provenance_names_the_code_and_commit_of_the_sweeps_start(tmp_path, monkeypatch):
    monkeypatch.setattr(sweep, "git_commit", lambda: "commit-at-start")
    res = run_sweep(SC_NU, "smoke", tmp_path / "out", axes=AXES, progress=False, **TINY)
    assert {r.provenance.commit for r in res.records()} == {"commit-at-start"}


def test_ship_refuses_a_sweep_whose_points_would_span_two_versions_of_the_code_before_any_training(
    tmp_path, monkeypatch
):
    monkeypatch.setattr(sweep, "code_hash", lambda module: "version-one")
    monkeypatch.setattr(sweep, "git_commit", lambda: "commit-one")
    run_sweep(SC_NU, "smoke", tmp_path / "a", axes=AXES, progress=False, ship=True, **TINY)
    assert len(list((tmp_path / "shipped").glob("*.json"))) == 2
    monkeypatch.setattr(sweep, "code_hash", lambda module: "version-two")
    # the message names both versions, the commit of the shipped points and the way out
    match = (
        r"would come, once this run finished, from 2 versions of the code \(2 from version-one \(commit commit-one\)"
    )
    with pytest.raises(ValueError, match=match + r".*git worktree add DIR COMMIT"):
        run_sweep(SC_NU, "smoke", tmp_path / "b", axes={**AXES, "seed": [1]}, progress=False, ship=True, **TINY)
    assert not list((tmp_path / "b").glob("points/*"))  # refused before a single point trained
    assert len(list((tmp_path / "shipped").glob("*.json"))) == 2  # nothing more shipped
    # without --ship the same run goes ahead (a local study may mix versions; only the shipped curves may not)
    res = run_sweep(SC_NU, "smoke", tmp_path / "b", axes={**AXES, "seed": [1]}, progress=False, **TINY)
    assert res.computed == 2 and len(list((tmp_path / "shipped").glob("*.json"))) == 2
    # and the points already in the folder, now computed by version two, are refused at the end as before
    with pytest.raises(ValueError, match="would come from 2 versions of the code"):
        run_sweep(SC_NU, "smoke", tmp_path / "b", axes={**AXES, "seed": [1]}, progress=False, ship=True, **TINY)


def test_a_point_of_another_sweep_sharing_the_base_off_this_grid_does_not_count_as_this_sweeps(tmp_path, monkeypatch):
    # a tuning run on a seed of its own ships first, with one version of the code ...
    monkeypatch.setattr(sweep, "code_hash", lambda module: "version-one")
    run_sweep(SC_NU, "smoke", tmp_path / "tuning", axes={**AXES, "seed": [100]}, progress=False, ship=True, **TINY)
    # ... then the sweep proper, from the next commit: its seeds (0 and 1 in smoke) never included seed 100
    monkeypatch.setattr(sweep, "code_hash", lambda module: "version-two")
    run_sweep(SC_NU, "smoke", tmp_path / "proper", axes=AXES, progress=False, ship=True, **TINY)
    assert len(list((tmp_path / "shipped").glob("*.json"))) == 4


def test_a_sweeps_scope_is_its_own_grid_and_this_runs_values():
    grid = SC_NU.axes("smoke")
    one_seed = scope(grid, {"seed": (7,)})  # a run on a seed of its own widens the seed axis only
    assert one_seed == {"seed": (*grid["seed"], 7)}
    assert scope(grid, {"nu": grid["nu"]}) == {"nu": grid["nu"] * 2}  # repeats are harmless


def test_the_cost_of_shipped_results_sums_their_records_per_experiment(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sweep, "git_commit", lambda: "0123456789abcdef")
    res = run_sweep(SC_NU, "smoke", tmp_path / "a", axes=AXES, progress=False, ship=True, **TINY)
    [c] = cost()
    assert (c.name, c.records, c.commits, len(c.codes)) == (SampleComplexity.NAME, 2, ("0123456789",), 1)
    assert c.wall_seconds == pytest.approx(sum(r.provenance.wall_seconds for r in res.records()))
    report = main(["shipped", "--workers", "2", "--threads", "1"])
    assert report["records"] == 2 and report["wall_seconds_per_worker"] == pytest.approx(c.wall_seconds / 2)
    assert report["matmul_gflops_here"]["fp32"] > 0 and json.loads(capsys.readouterr().out)["records"] == 2
    with pytest.raises(SystemExit) as err:
        main(["shipped", "--workers", "0"])
    assert err.value.code == 2 and "workers must be a positive integer" in capsys.readouterr().err
    # grouped by record type, whatever the file names; devices, codes and commits listed once each
    other = tmp_path / "other"
    other.mkdir()
    for i, (name, seconds, code) in enumerate([("b", 3.0, "x"), ("a", 1.5, "y"), ("b", 4.0, "z"), ("b", 1.0, "x")]):
        prov = {"wall_seconds": seconds, "code": code, "commit": f"c{i % 2}" * 8, "device": "cpu"}
        (other / f"rec-{i}.json").write_text(json.dumps({"name": name, "provenance": prov}))
    a, b = cost(other)
    assert (a.name, a.records, a.wall_seconds, a.codes) == ("a", 1, 1.5, ("y",))
    assert (b.name, b.records, b.wall_seconds, b.codes, b.devices) == ("b", 3, 8.0, ("x", "z"), ("cpu",))
    assert b.commits == ("c0c0c0c0c0", "c1c1c1c1c1")


def test_adopt_takes_whole_records_of_known_points_from_another_checkout_and_leaves_the_rest(tmp_path):
    res = run_sweep(SC_NU, "smoke", tmp_path / "a", axes=AXES, progress=False, ship=True, **TINY)
    there, here = tmp_path / "shipped", tmp_path / "here"  # another checkout's shipped folder, and this one's
    here.mkdir()
    first, second = sorted(there.glob("*.json"))
    keys = {results.config_key(r.provenance.config) for r in res.records()}
    (here / first.name).write_bytes(first.read_bytes())  # already here and identical: left as it is
    copied, ignored = adopt(there, SampleComplexity.NAME, keys, here)
    assert (copied, ignored) == ([second.name], [])
    for part in (second, second.with_suffix(".npz")):  # the arrays come with the numbers
        assert part.exists() and (here / part.name).read_bytes() == part.read_bytes()
    assert sorted(p.name for p in here.iterdir()) == sorted([first.name, second.name, second.with_suffix(".npz").name])
    # a record that differs replaces this checkout's; one of a point no grid here has stays where it is
    (here / first.name).write_text("{}")
    second_key = json.loads(second.read_text())["key"]
    copied, ignored = adopt(there, SampleComplexity.NAME, keys - {second_key}, here)
    assert (copied, ignored) == ([first.name], [second.name])
    assert (here / first.name).read_bytes() == first.read_bytes()
    assert adopt(there, "imputation", keys, here) == ([], [])  # another record type: nothing


def test_ship_writes_the_points_of_its_folder_and_leaves_shipped_records_untouched(tmp_path, monkeypatch):
    run_sweep(SC_NU, "smoke", tmp_path / "a", axes=AXES, progress=False, **TINY)  # computed, not shipped
    written = []
    ship = results.ship
    monkeypatch.setattr(results, "ship", lambda rec: written.append(ship(rec)))
    run_sweep(SC_NU, "smoke", tmp_path / "a", axes=AXES, progress=False, ship=True, **TINY)
    assert len(written) == 2  # the folder's finished points ship without training again
    before = {p: p.read_bytes() for p in (tmp_path / "shipped").iterdir()}
    written.clear()
    res = run_sweep(SC_NU, "smoke", tmp_path / "b", axes=AXES, progress=False, ship=True, **TINY)
    assert res.computed == 0 and written == []  # read from the shipped results: not written again
    assert {p: p.read_bytes() for p in (tmp_path / "shipped").iterdir()} == before


def test_sweep_costs_count_each_grids_shipped_points_and_their_time(tmp_path):
    shipped = tmp_path / "shipped"  # the fixture's shipped folder
    shipped.mkdir()
    (_, first), (_, second) = SC_NU.points("smoke")[:2]
    for config, seconds in ((first, 30.0), (second, 12.5)):
        key = results.config_key(config.to_dict())
        body = {"name": SampleComplexity.NAME, "provenance": {"wall_seconds": seconds}}
        (shipped / f"{SampleComplexity.NAME}-{key}.json").write_text(json.dumps(body))
    costs = {c.sweep: c for c in sweep_costs("smoke")}
    assert set(costs) == set(SWEEPS)
    nu = costs[SC_NU.name]
    assert (nu.points, nu.shipped, nu.wall_seconds) == (len(SC_NU.points("smoke")), 2, 42.5)
    assert costs["architecture"].shipped == 0  # another grid, other keys
