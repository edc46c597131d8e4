"""Where the points of a sweep run: in this process, in local worker processes, or as a Slurm job array.

:func:`gptheory.sweep.run_sweep` decides *which* points to run and keeps the books (folder, table, shipping); this
module only runs them. :func:`execute` takes the prepared tasks and calls ``report(i, record)`` as each finishes:

* ``"local"`` with one worker runs the points one after the other in this process (torch's own thread count);
* ``"local"`` with ``workers`` processes (spawned) gives each ``cores // workers`` torch threads, so they do not
  oversubscribe the machine;
* ``"slurm"`` submits one job array through ``submitit``; ``"submitit-local"`` runs the same path on this machine
  through submitit's local executor, to test it without a cluster.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import time
from collections.abc import Callable
from pathlib import Path

from .checkpoint import trained_seconds
from .config import ExperimentConfig
from .profiles import device as default_device
from .provenance import Provenance
from .results import Record

EXECUTORS = ("local", "slurm", "submitit-local")


def _point_task(
    point: Callable[..., Record],
    body: dict,
    profile: str,
    checkpoint: str | None,
    code: str,
    commit: str,
    threads: int | None,
) -> Record:
    """Run one grid point (``point``, a sweep's module-level point function, pickled by reference) in whatever
    process the executor chose; returns the record with its provenance.

    ``code`` and ``commit`` are those of the sweep's start (:func:`gptheory.sweep.run_sweep`), the code the workers
    imported: read from disk at the end of a long point, they could name later code than the one that computed it."""
    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    config = ExperimentConfig.from_dict(body)
    earlier = trained_seconds(checkpoint)  # a point resumed after an interruption: its earlier sessions count too
    start = time.perf_counter()
    record = point(config, checkpoint=checkpoint, progress=False)
    wall = earlier + time.perf_counter() - start
    record.provenance = Provenance.now(body, wall, profile, default_device(), code, commit)
    return record


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def execute(
    tasks: dict[int, tuple],
    workers: int,
    executor: str,
    slurm: dict,
    root: Path,
    report: Callable[[int, Record], None],
) -> None:
    """Run every task and ``report(i, record)`` each as it finishes.

    Args:
        tasks: point index -> the arguments of one point ``(point function, configuration dict, profile, checkpoint path
            or None, code hash, commit)``.
        workers: processes (``local``) or simultaneous array tasks (``slurm``).
        executor: one of :data:`EXECUTORS` (checked by the caller).
        slurm: extra ``submitit`` parameters.
        root: the folder for submitit's logs and pickles.
        report: called in this process with each finished record.
    """
    cores = os.cpu_count() or 1
    threads = max(1, cores // workers)
    if executor == "local" and workers == 1:
        for i, args in tasks.items():
            report(i, _point_task(*args, threads=None))
        return
    if executor == "local":
        ctx = multiprocessing.get_context("spawn")
        pool = cf.ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init, initargs=(threads,))
        try:
            futures = {pool.submit(_point_task, *args, None): i for i, args in tasks.items()}
            for fut in cf.as_completed(futures):
                report(futures[fut], fut.result())
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()
        return
    import submitit

    ex = submitit.AutoExecutor(folder=root, cluster="local" if executor == "submitit-local" else "slurm")
    params = {"timeout_min": 120, "cpus_per_task": threads, "slurm_array_parallelism": workers}
    if executor == "submitit-local":
        params = {"timeout_min": 120}
    ex.update_parameters(**{**params, **slurm})
    order = list(tasks)
    jobs = ex.map_array(_point_task, *zip(*(tasks[i] for i in order), strict=True), [threads] * len(order))
    pending = dict(zip(jobs, order, strict=True))
    try:
        while pending:
            for job in [j for j in pending if j.done()]:
                report(pending.pop(job), job.result())
            time.sleep(0.5)
    except BaseException:
        for job in pending:
            job.cancel(check=False)
        raise


__all__ = ["EXECUTORS", "execute"]
