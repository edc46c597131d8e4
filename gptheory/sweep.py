"""Many trainings: a grid of experiment configurations, run on local workers or a cluster, resumable.

A :class:`Sweep` names a base configuration per profile, a grid of flat overrides (``{"nu": (0.5, 1, 2),
"n_train": (64, 256), "seed": (0, 1)}``) and the function that turns one configuration into a typed record
(:class:`gptheory.results.Record`). :func:`run_sweep` runs every point that is not finished yet:

* a finished point is a record file in ``out/points/`` (or, without ``out``, in the shipped results or the
  local cache, :mod:`gptheory.results`); each is written atomically the moment it finishes, so an interrupted
  sweep (Ctrl-C, a killed job) loses only the points in flight, and those resume from their training
  checkpoint (``out/points/<key>.pt``, every tenth of the run);
* ``out/results.csv`` is the tidy table, one row per finished point (grid coordinates, seed, every scalar
  metric, training seconds, device, commit), rewritten after every point; ``out/sweep.json`` says which sweep
  and which base configuration the folder belongs to, so a folder is never mixed between two;
* where the points run (``local`` worker processes, ``slurm`` or ``submitit-local``) is the job of
  :mod:`gptheory.executors`.

The experiment modules define the sweeps (their ``SWEEPS`` tuple); :mod:`gptheory.experiments` collects them by name.
This module imports no experiment: a :class:`Sweep` carries its point function, an importable module-level function
that worker processes and cluster jobs receive by reference.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from . import executors, results
from .atomic import atomic_write
from .config import ExperimentConfig
from .executors import EXECUTORS
from .profiles import PROFILES, by_profile
from .provenance import code_hash, git_commit
from .results import Record, config_key
from .shipping import base_identity, one_version, scope
from .validation import positive_int


@dataclass(frozen=True)
class Sweep:
    """A named grid of trainings.

    Attributes:
        name: the command-line name (``python -m gptheory sweep NAME``).
        description: one line for ``--help``.
        base: the base configuration per profile (``{"smoke": ..., "cpu": ..., "gpu": ...}``).
        grid: per profile, the axes: flat field name -> values (see :meth:`ExperimentConfig.replace`).
        record: the record type a point produces (its ``NAME`` is the file name of each point).
        point: ``point(config, checkpoint=path | None, progress=bool) -> record``; a module-level function.
        columns: ``columns(record) -> {column: value}``, the scalar metrics of one row of ``results.csv``.
        plot: ``plot(records) -> matplotlib Figure``, the summary figure (``summary.png``).
        linked: per profile, settings tied to an axis' value: ``{"arch": {"unet": {"lr": 1e-3}}}`` gives every point
            with ``arch="unet"`` that learning rate (each network its own tuned recipe); they override the base and
            any base override, never a grid axis.
    """

    name: str
    description: str
    base: dict[str, ExperimentConfig]
    grid: dict[str, dict[str, tuple]]
    record: type[Record]
    point: Callable[..., Record]
    columns: Callable[[Record], dict]
    plot: Callable[[list[Record]], object] | None = None
    linked: dict[str, dict[str, dict]] | None = None

    def axes(self, profile: str, **override: Iterable) -> dict[str, tuple]:
        """The grid of ``profile`` with axes replaced (or added) by ``override`` (``None`` keeps an axis)."""
        axes = dict(by_profile(**self.grid, name=profile))
        for k, v in override.items():
            if v is not None:
                axes[k] = tuple(v) if isinstance(v, list | tuple) else (v,)
        return axes

    def points(
        self, profile: str, axes: dict[str, tuple] | None = None, **base_override
    ) -> list[tuple[dict, ExperimentConfig]]:
        """Every grid point as ``(coordinates, configuration)``; each configuration validates itself, so a bad
        grid value fails here, before any training, with the parameter's name and valid range."""
        base = by_profile(**self.base, name=profile).replace(**base_override)
        axes = self.axes(profile) if axes is None else axes
        names = list(axes)
        linked = by_profile(**self.linked, name=profile) if self.linked else {}
        out = []
        for values in itertools.product(*(axes[k] for k in names)):
            coords = dict(zip(names, values, strict=True))
            tied = {k: v for axis, by in linked.items() if axis in coords for k, v in by.get(coords[axis], {}).items()}
            out.append((coords, base.replace(**{**tied, **coords})))  # one step: only the whole is validated
        return out


# --------------------------------------------------------------------------------------------- the folder
def _check_out(out: Path, manifest: dict) -> None:
    """Create ``out`` or check that it belongs to this sweep and base configuration."""
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write-test"
        probe.write_text("")
        probe.unlink()
    except OSError as err:
        raise ValueError(f"--out must be a folder this process can write, got {str(out)!r} ({err.strerror})") from err
    path = out / "sweep.json"
    if not path.exists():
        with atomic_write(path) as fh:
            fh.write(json.dumps(manifest, indent=1, sort_keys=True).encode())
        return
    old = json.loads(path.read_text())
    if old.get("sweep") != manifest["sweep"]:
        raise ValueError(
            f"--out {str(out)!r} holds results of sweep {old.get('sweep')!r}, not {manifest['sweep']!r}: "
            "choose another --out"
        )
    if old.get("base") != manifest["base"] or old.get("version") != manifest["version"]:
        diff = _diff(old.get("base", {}), manifest["base"])
        if old.get("version") != manifest["version"]:
            diff.append(f"version: {old.get('version')} -> {manifest['version']}")
        raise ValueError(
            f"--out {str(out)!r} holds results of another configuration of {manifest['sweep']!r} "
            f"({'; '.join(diff[:4])}): choose another --out, or rerun with the same settings"
        )


def _diff(a: dict, b: dict, prefix: str = "") -> list[str]:
    out = []
    for k in sorted(set(a) | set(b)):
        x, y = a.get(k), b.get(k)
        if isinstance(x, dict) and isinstance(y, dict):
            out += _diff(x, y, f"{prefix}{k}.")
        elif x != y:
            out.append(f"{prefix}{k}: {x} -> {y}")
    return out


def _flat(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict):
            out |= _flat(v, f"{prefix}{k}.")
        elif not isinstance(v, list):
            out[f"{prefix}{k}"] = v
    return out


def table(sweep: Sweep, done: list[tuple[dict, Record]]) -> str:
    """``results.csv`` as text: one row per record, grid coordinates first, then the metrics and provenance."""
    rows = []
    for coords, rec in done:
        p = rec.provenance
        rows.append({**coords, **sweep.columns(rec), "wall_seconds": p.wall_seconds, "device": p.device,
                     "commit": p.commit, "date": p.date})  # fmt: skip
    if not rows:
        return ""
    names = list(dict.fromkeys(k for r in rows for k in r))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=names, lineterminator="\n")
    w.writeheader()
    w.writerows(rows)
    return buf.getvalue()


@dataclass
class SweepResult:
    """What :func:`run_sweep` returns: every finished point as ``(coordinates, record)`` in grid order, how many
    were computed in this call, the folder (or ``None``), the wall time of this call (s), and how many points of the
    grid are not finished because the call was asked not to train (``train=False``)."""

    sweep: str
    points: list[tuple[dict, Record]]
    computed: int
    out: Path | None
    seconds: float
    missing: int = 0

    def records(self) -> list[Record]:
        return [r for _, r in self.points]


def provenance_summary(runs: Iterable[SweepResult]) -> str:
    """One Markdown sentence on where the points of ``runs`` came from: how many distinct trainings (sweeps that
    share a point count it once), how many were trained in this call, their devices, commits, dates and summed
    wall time."""
    runs = list(runs)
    # one training per configuration: the same point read from two sweep folders has two paths but one key
    every = list({_identity(r): r for run in runs for r in run.records()}.values())
    trained_now = sum(run.computed for run in runs)
    missing = {run.sweep: run.missing for run in runs if run.missing}
    prov = [r.provenance for r in every if r.provenance is not None]
    devices = ", ".join(sorted({p.device for p in prov}))
    commits = ", ".join(sorted({p.commit[:10] for p in prov}))
    dates = ", ".join(sorted({p.date[:10] for p in prov}))
    wall = sum(p.wall_seconds for p in prov)
    text = (
        f"**Provenance.** {len(every)} distinct trainings, {trained_now} of them trained in this build and the rest "
        f"loaded: device {devices}; commit {commits}; dates {dates}; summed wall time {wall / 60:.1f} min."
    )
    if missing:
        text += (
            " **Not shipped yet** (not trained in this build, so every verdict below rests on the points that are): "
            + ", ".join(f"{n} of {name}'s points" for name, n in missing.items())
            + "; `python -m gptheory sweep NAME` computes them."
        )
    return text


def code_versions(runs: Iterable[SweepResult]) -> str:
    """One sentence on how many versions of the code (source hashes) the points of ``runs`` come from: one, or
    several, listed by sweep."""
    runs = list(runs)
    by = {r.sweep: sorted({x.provenance.code[:12] for x in r.records() if x.provenance}) for r in runs}
    every = sorted({c for v in by.values() for c in v})
    if len(every) <= 1:
        return f"Every point read here comes from one version of the code (source hash {''.join(every) or 'none'})."
    listed = "; ".join(f"{name}: {', '.join(v)}" for name, v in by.items() if v)
    return f"The points read here come from {len(every)} versions of the code (source hashes by sweep: {listed})."


def _identity(record: Record) -> object:
    """What makes two records the same training: their configuration and package version (the shipped key)."""
    p = record.provenance
    return id(record) if p is None else config_key(p.config, p.version)


def run_sweep(
    sweep: Sweep,
    profile: str | None = None,
    out: str | os.PathLike | None = None,
    axes: dict[str, Iterable] | None = None,
    workers: int = 1,
    executor: str = "local",
    progress: bool = True,
    ship: bool = False,
    slurm: dict | None = None,
    train: bool = True,
    **base_override,
) -> SweepResult:
    """Run every unfinished point of sweep ``name``.

    Args:
        sweep: the sweep (:func:`gptheory.experiments.sweep` finds one by name).
        profile: ``smoke``, ``cpu`` or ``gpu`` (default: the active profile).
        out: the sweep's folder (``points/``, ``results.csv``, ``summary.png``, ``sweep.json``); ``None`` keeps
            records in the local cache only (what a chapter does).
        axes: grid axes to replace or add, field name -> values (``{"nu": [0.5, 1]}``).
        workers: processes (``local``) or simultaneous array tasks (``slurm``).
        executor: ``local``, ``slurm`` or ``submitit-local``.
        progress: a ``tqdm`` bar over points (done, left, time left).
        ship: also write every record into the package's shipped results (:data:`gptheory.results.SHIPPED`), but
            those read from there, which stay as they are.
        slurm: extra ``submitit`` parameters (e.g. ``{"slurm_partition": "gpu", "timeout_min": 60}``).
        train: ``False`` only loads: unfinished points are left out of the result and counted in its ``missing``
            (a chapter reading hours of shipped training in the cpu profile).
        base_override: flat overrides of the base configuration (``steps=500``).
    """
    from .profiles import profile as active_profile

    start = time.perf_counter()
    name = sweep.name
    profile = active_profile() if profile is None else profile
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {', '.join(PROFILES)}, got {profile!r}")
    workers = positive_int("workers", workers)
    if executor not in EXECUTORS:
        raise ValueError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    grid = sweep.axes(profile, **(axes or {}))
    points = sweep.points(profile, grid, **base_override)  # validates every point before any work
    out = None if out is None else Path(out)
    folder = None if out is None else out / "points"
    if out is not None:
        base = by_profile(**sweep.base, name=profile).replace(**base_override)
        manifest = {
            "sweep": name,
            "profile": profile,
            "base": base_identity(base, grid),
            **({"linked": by_profile(**sweep.linked, name=profile)} if sweep.linked else {}),
            "version": results.__version__,
        }
        _check_out(out, manifest)

    code, commit = code_hash(sweep.point.__module__), git_commit()  # the code this sweep's points are computed by
    done: dict[int, Record] = {}
    todo: list[int] = []
    shipped_already: set[int] = set()  # read from the shipped results: --ship leaves their files as they are
    for i, (_, cfg) in enumerate(points):
        rec = _find(sweep, cfg.to_dict(), folder, code)
        if rec is not None:
            done[i] = rec
            if rec.path is not None and rec.path.parent == results.SHIPPED:
                shipped_already.add(i)
            if folder is not None and rec.path is not None and rec.path.parent != folder:
                results.write(rec, folder, config_key(cfg.to_dict()))  # bring a cached point into the folder
        else:
            todo.append(i)

    def finish(i: int, rec: Record) -> None:
        rec.loaded = False
        results.save(rec)  # the local cache, keyed by the source too
        if folder is not None:
            key = config_key(points[i][1].to_dict())
            results.write(rec, folder, key)
            _checkpoint(sweep, folder, key).unlink(missing_ok=True)  # the record is saved: drop its checkpoint
        done[i] = rec
        _write_table(sweep, points, done, out)

    missing = 0 if train else len(todo)
    if not train:
        todo = []
    if ship and todo:  # fail before hours of training, not after: what --ship would refuse at the end
        pending = (code, [points[i][1].to_dict() for i in todo])
        one_version(name, sweep.record, scope(sweep.axes(profile), grid), list(done.values()), pending)
    bar = tqdm(total=len(points), initial=len(done), desc=f"sweep {name}", unit="point", disable=not progress)
    try:
        if todo:
            tasks = {}
            for i in todo:
                body = points[i][1].to_dict()
                ckpt = None if folder is None else str(_checkpoint(sweep, folder, config_key(body)))
                tasks[i] = (sweep.point, body, profile, ckpt, code, commit)

            def report(i: int, rec: Record) -> None:
                finish(i, rec)
                bar.update(1)
                bar.set_postfix_str(f"last {points[i][0]}, {rec.provenance.wall_seconds:.0f} s")

            root = (out if out is not None else results.cache_dir()) / "submitit"
            executors.execute(tasks, workers, executor, slurm or {}, root, report)
    except KeyboardInterrupt:
        bar.close()
        _write_table(sweep, points, done, out)
        raise KeyboardInterrupt(
            f"sweep {name} interrupted: {len(done)} of {len(points)} points are finished and kept"
            + (f" in {out}" if out else "")
            + "; run the same command again to continue"
        ) from None
    bar.close()
    _write_table(sweep, points, done, out)
    finished = [(points[i][0], done[i]) for i in sorted(done)]
    if ship:
        now = code_hash(sweep.point.__module__)
        if todo and now != code:
            raise RuntimeError(
                f"the code of {sweep.point.__module__} (or a module it imports) changed while sweep {name} ran "
                f"(source hash {code[:12]} at the start, {now[:12]} now): the {len(todo)} points computed in this run "
                f"are kept{f' in {out}' if out else ' in the local cache'} but not shipped. Recompute them with the "
                "current code (remove them from points/ and run again) before shipping"
            )
        one_version(name, sweep.record, scope(sweep.axes(profile), grid), [rec for _, rec in finished])
        for i in sorted(set(done) - shipped_already):  # a shipped record is not rewritten by this version's class
            results.ship(done[i])
    if out is not None and sweep.plot is not None and finished:
        import matplotlib.pyplot as plt

        fig = sweep.plot([r for _, r in finished])
        with atomic_write(out / "summary.png") as fh:
            fig.savefig(fh, format="png", dpi=110)
        plt.close(fig)
    return SweepResult(name, finished, len(todo), out, time.perf_counter() - start, missing)


def _checkpoint(sweep: Sweep, folder: Path, key: str) -> Path:
    """Where a point's training checkpoint lives while it runs (an interrupted point resumes from it)."""
    return folder / f"{sweep.record.NAME}-{key}.pt"


def _find(sweep: Sweep, body: dict, folder: Path | None, code: str) -> Record | None:
    if folder is not None:
        path = folder / f"{sweep.record.NAME}-{config_key(body)}.json"
        if path.exists():
            return results.read(path, sweep.record)
    return results.load(sweep.record.NAME, body, sweep.record, code)


def _write_table(sweep: Sweep, points, done: dict[int, Record], out: Path | None) -> None:
    if out is None:
        return
    text = table(sweep, [(points[i][0], done[i]) for i in sorted(done)])
    with atomic_write(out / "results.csv") as fh:
        fh.write(text.encode())


__all__ = [
    "EXECUTORS",
    "Sweep",
    "SweepResult",
    "code_versions",
    "provenance_summary",
    "run_sweep",
    "table",
]
