"""Tests for gptheory.provenance: the source a result depends on, its hash, the commit, the device, the record."""

from __future__ import annotations

import json
import subprocess

import pytest

from gptheory.provenance import Provenance, canonical_json, code_hash, dependencies, device_name, git_commit


def test_provenance_records_the_device_used():
    p = Provenance.now({"a": 1}, 2.5, "cpu", device="cpu")
    assert p.wall_seconds == 2.5 and p.config == {"a": 1} and p.profile == "cpu" and len(p.code) == 12
    assert p.device == device_name("cpu") and p.device.startswith("cpu (") and "threads" in p.device
    assert "commit" in p.summary()


def test_the_experiments_hash_covers_every_module_they_import():
    deps = dependencies("gptheory.experiments.dit_learns")
    # construct (the hand-built attention) and unroll (its operator bounds) produce saved numbers too
    assert {"gptheory.construct", "gptheory.unroll", "gptheory.dit", "gptheory.train", "gptheory.metrics"} <= set(deps)
    assert "gptheory.bench" not in deps and "gptheory" not in deps
    assert "gptheory.trial" in dependencies("gptheory.experiments.sample_complexity")


def test_code_hash_changes_when_any_dependency_changes(tmp_path):
    pkg = tmp_path / "gptheory"
    pkg.mkdir()
    (pkg / "driver.py").write_text("from .helper import f\n")
    (pkg / "helper.py").write_text("def f():\n    from . import deep\n")
    (pkg / "deep.py").write_text("x = 1\n")
    (pkg / "unrelated.py").write_text("y = 1\n")
    assert dependencies("gptheory.driver", pkg) == ["gptheory.deep", "gptheory.driver", "gptheory.helper"]
    before = code_hash("gptheory.driver", pkg)
    (pkg / "unrelated.py").write_text("y = 2\n")
    assert code_hash("gptheory.driver", pkg) == before
    (pkg / "deep.py").write_text("x = 2\n")  # two imports away, inside a function
    assert code_hash("gptheory.driver", pkg) != before


def test_canonical_json_sorts_keys_at_every_level_and_refuses_what_json_cannot_hold():
    assert canonical_json({"b": {"y": 1, "x": [2.5, True]}, "a": None}) == '{"a":null,"b":{"x":[2.5,true],"y":1}}'
    assert canonical_json({"a": 1, "b": 2}) == canonical_json({"b": 2, "a": 1})
    with pytest.raises(ValueError, match="config must be a dict"):
        canonical_json([("a", 1)])
    with pytest.raises(ValueError, match="finite"):
        canonical_json({"x": float("inf")})
    with pytest.raises(ValueError, match="JSON-able"):
        canonical_json({"x": {1, 2}})


def _git(repo, *args: str) -> str:
    run = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return run.stdout.strip()


def test_git_commit_names_the_head_and_says_when_tracked_files_changed(tmp_path):
    if subprocess.run(["git", "--version"], capture_output=True).returncode != 0:
        pytest.skip("git is not installed")
    assert git_commit(tmp_path) == "unknown"  # not a repository
    _git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("1")
    _git(tmp_path, "add", "a.txt")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = _git(tmp_path, "rev-parse", "HEAD")
    assert git_commit(tmp_path) == head
    (tmp_path / "untracked.txt").write_text("x")  # untracked files do not make the checkout dirty
    assert git_commit(tmp_path) == head
    (tmp_path / "a.txt").write_text("2")
    assert git_commit(tmp_path) == head + "+dirty"


def test_git_commit_does_not_count_the_shipped_results_as_a_change_of_the_code(tmp_path):
    if subprocess.run(["git", "--version"], capture_output=True).returncode != 0:
        pytest.skip("git is not installed")
    shipped = tmp_path / "gptheory" / "shipped"
    shipped.mkdir(parents=True)
    (shipped / "r.json").write_text("1")
    (tmp_path / "a.txt").write_text("1")
    _git(tmp_path, "init", "-q")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "one")
    head = _git(tmp_path, "rev-parse", "HEAD")
    (shipped / "r.json").write_text("2")  # a regeneration rewrites a shipped record
    (shipped / "r.json").unlink()
    assert git_commit(tmp_path) == head
    (tmp_path / "a.txt").write_text("2")  # the code changed: dirty
    assert git_commit(tmp_path) == head + "+dirty"


def test_provenance_keeps_a_copy_of_the_config_and_summarises_in_one_line():
    config = {"process": {"N": 8}, "seed": 0}
    p = Provenance.now(config, 61.4, "smoke", code="abc", commit="0123456789abcdef")
    config["process"]["N"] = 9  # a later change of the caller's dict does not reach the record
    assert p.config == {"process": {"N": 8}, "seed": 0} and p.code == "abc" and p.profile == "smoke"
    assert json.loads(json.dumps(p.__dict__)) == p.__dict__  # JSON-able as it is
    assert p.summary() == f"{p.device}, {p.date[:10]}, commit 0123456789, 61 s"
    assert p.date[4] == "-" and p.date.endswith("+00:00")  # ISO 8601, UTC
