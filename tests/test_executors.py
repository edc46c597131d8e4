"""Tests for gptheory.executors: every task runs once and is reported with its provenance, in this process or in
worker processes with their share of the cores."""

from __future__ import annotations

import os

import pytest
import torch

from gptheory import executors
from gptheory.config import ExperimentConfig
from gptheory.results import Result


def echo(config: ExperimentConfig, checkpoint: str | None = None, progress: bool = True) -> Result:
    """A point function (module level, so that worker processes find it by reference) that reports what it got."""
    numbers = {"seed": config.seed, "checkpoint": checkpoint, "progress": progress}
    numbers |= {"threads": torch.get_num_threads(), "pid": os.getpid()}
    return Result(result_name="echo", numbers=numbers)


def _tasks(seeds: list[int]) -> dict[int, tuple]:
    bodies = [ExperimentConfig().replace(seed=s).to_dict() for s in seeds]
    return {10 + k: (echo, body, "smoke", f"ck-{k}.pt", "code-at-start", "commit-at-start") for k, body in
            enumerate(bodies)}  # fmt: skip


def test_one_local_worker_runs_the_points_in_order_in_this_process(tmp_path):
    reported = []
    before = torch.get_num_threads()
    executors.execute(_tasks([3, 1, 2]), 1, "local", {}, tmp_path, lambda i, r: reported.append((i, r)))
    assert [i for i, _ in reported] == [10, 11, 12]
    assert [r.numbers["seed"] for _, r in reported] == [3, 1, 2]
    for k, (_, r) in enumerate(reported):
        assert r.numbers == {"seed": r.numbers["seed"], "checkpoint": f"ck-{k}.pt", "progress": False,
                             "threads": before, "pid": os.getpid()}  # fmt: skip  # torch's own thread count
        prov = r.provenance
        assert (prov.code, prov.commit, prov.profile) == ("code-at-start", "commit-at-start", "smoke")
        assert prov.config == ExperimentConfig().replace(seed=r.numbers["seed"]).to_dict() and prov.wall_seconds >= 0


def test_a_point_task_takes_the_thread_count_it_is_given():
    task = _tasks([0])[10]
    assert executors._point_task(*task, threads=1).numbers["threads"] == 1  # (conftest puts the count back)


def test_a_resumed_point_counts_the_training_time_of_its_earlier_sessions(tmp_path):
    from gptheory.checkpoint import CHECKPOINT_VERSION, save_checkpoint

    ckpt = tmp_path / "ck.pt"
    save_checkpoint({"version": CHECKPOINT_VERSION, "model_config": {}, "seconds": 1234.5}, ckpt)
    _, body, *rest = _tasks([0])[10]
    fresh = executors._point_task(echo, body, "smoke", str(tmp_path / "none.pt"), *rest[2:], threads=None)
    resumed = executors._point_task(echo, body, "smoke", str(ckpt), *rest[2:], threads=None)
    assert fresh.provenance.wall_seconds < 60  # no checkpoint: this session only
    assert 1234.5 <= resumed.provenance.wall_seconds < 1234.5 + 60  # the 1234.5 s trained before the interruption


def test_a_failing_point_stops_the_run_with_its_error(tmp_path):
    def boom(config, checkpoint=None, progress=True):
        raise RuntimeError(f"point {config.seed} failed")

    tasks = {i: (boom, *rest) for i, (_, *rest) in _tasks([5, 6]).items()}
    reported = []
    with pytest.raises(RuntimeError, match="point 5 failed"):
        executors.execute(tasks, 1, "local", {}, tmp_path, lambda i, r: reported.append(i))
    assert reported == []


def test_worker_processes_run_every_point_once_with_their_share_of_the_cores(tmp_path):
    reported = {}
    executors.execute(_tasks([0, 1, 2]), 2, "local", {}, tmp_path, lambda i, r: reported.setdefault(i, r))
    assert sorted(reported) == [10, 11, 12] and [reported[i].numbers["seed"] for i in (10, 11, 12)] == [0, 1, 2]
    assert all(r.numbers["pid"] != os.getpid() for r in reported.values())  # in other processes
    assert {r.numbers["threads"] for r in reported.values()} == {max(1, (os.cpu_count() or 1) // 2)}
    assert all(r.provenance.commit == "commit-at-start" for r in reported.values())
