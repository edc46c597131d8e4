"""Which shipped results belong to a sweep, the rule that they come from one version of the code, and what they cost.

A sweep's shipped points (:data:`gptheory.results.SHIPPED`) are the records of its type whose configuration has the
sweep's base settings and, on each grid axis, one of the sweep's values. They must all come from one version of the
code (:func:`gptheory.provenance.code_hash` in their provenance), or a curve could mix two trainings or two
measurements. :func:`gptheory.sweep.run_sweep` applies :func:`one_version` twice when it ships: before any training,
counting the points still to compute as if finished, so a run that would be refused stops at once; and at the end,
on what it computed. :func:`cost` sums, per experiment, what the shipped records took to compute: the price of
regenerating them (``python -m gptheory shipped``). :func:`adopt` takes into the shipped results the records another
checkout (the commit a regeneration runs from) shipped.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from . import results
from .atomic import atomic_write
from .config import ExperimentConfig, option_owners
from .results import Record


def scope(registered: dict[str, tuple], grid: dict[str, tuple]) -> dict[str, tuple]:
    """The values of each axis that make a shipped point one of a sweep's: the sweep's own grid (``registered``) and
    this run's (``grid``, which may be a slice of it, one seed at a time, or add values)."""
    return {a: (*registered.get(a, ()), *values) for a, values in grid.items()}


def one_version(
    name: str,
    record: type[Record],
    grid: dict[str, tuple],
    records: list[Record],
    pending: tuple[str, list[dict]] | None = None,
) -> None:
    """Refuse to ship when the shipped points of sweep ``name`` (records of type ``record`` with the same settings
    but for the ``grid``'s axes, and on those axes values of the grid: the sweep's own and this run's, see
    :func:`scope`) and ``records`` together come from more than one version of the code
    (:func:`gptheory.provenance.code_hash` in their provenance). A shipped point of another sweep that only shares the
    base (a tuning run on a seed of its own, say) is not one of this sweep's. ``pending = (code, configs)``: points
    still to be computed by source ``code``, counted as if finished (the check that runs before any training)."""
    owners = option_owners()

    def identity(config: dict) -> str:
        return json.dumps(base_identity(ExperimentConfig.from_dict(config), grid), sort_keys=True)

    def on_grid(config: dict) -> bool:
        c = ExperimentConfig.from_dict(config)
        return all(getattr(getattr(c, owners[a]) if owners[a] else c, a) in values for a, values in grid.items())

    mine = {identity(r.config) for r in records}
    if pending is not None:
        mine |= {identity(c) for c in pending[1]}
    shipped = [r for r in results.shipped(record.NAME, record) if identity(r.config) in mine and on_grid(r.config)]
    codes: dict[str, int] = {}
    commits: dict[str, set[str]] = {}
    for r in {id(r): r for r in shipped + records}.values():
        codes[r.provenance.code] = codes.get(r.provenance.code, 0) + 1
        commits.setdefault(r.provenance.code, set()).add(r.provenance.commit[:10])
    if pending is not None:
        codes[pending[0]] = codes.get(pending[0], 0) + len(pending[1])
    if len(codes) > 1:
        counts = ", ".join(
            f"{n} from {c[:12]}"
            + (f" (commit {', '.join(sorted(commits[c]))})" if c in commits else " (this checkout)")
            for c, n in codes.items()
        )
        when = "would come" if pending is None else "would come, once this run finished,"
        raise ValueError(
            f"sweep {name}'s shipped points {when} from {len(codes)} versions of the code ({counts}): run "
            "from the commit of the points already shipped (git worktree add DIR COMMIT), or regenerate the whole "
            "sweep with one version (remove the older points from gptheory/shipped/) and ship"
        )


def base_identity(base: ExperimentConfig, grid: dict[str, tuple]) -> dict:
    """The base configuration without the grid's axes (a folder may grow its grid, never change its base)."""
    body = base.to_dict()
    where = option_owners()
    for k in grid:
        (body[where[k]] if where[k] else body).pop(k, None)
    return body


@dataclass(frozen=True)
class Cost:
    """What one experiment's shipped records took to compute.

    Attributes:
        name: the record type (``probe``, ``sample_complexity`` ...); records: how many (one training, or one run of
        the experiment, each); wall_seconds: their summed wall time (s), each record's one process, every session of
        a resumed point included; codes: their source hashes; commits: their commits (10 characters); devices:
        what computed them (:func:`gptheory.provenance.device_name`).
    """

    name: str
    records: int
    wall_seconds: float
    codes: tuple[str, ...]
    commits: tuple[str, ...]
    devices: tuple[str, ...]


def cost(directory: str | os.PathLike | None = None) -> list[Cost]:
    """One :class:`Cost` per record type among the records in ``directory`` (default: the shipped ones,
    :data:`gptheory.results.SHIPPED`), in order of name. Their summed ``wall_seconds`` is the single-process time
    it takes to regenerate them on the devices named (measured there; another machine scales it by its speed)."""
    folder = results.SHIPPED if directory is None else Path(directory)
    found: dict[str, list[dict]] = {}
    for path in sorted(folder.glob("*.json")):
        body = json.loads(path.read_text())
        found.setdefault(body["name"], []).append(body["provenance"])
    return [
        Cost(
            name=name,
            records=len(provs),
            wall_seconds=sum(p["wall_seconds"] for p in provs),
            codes=tuple(sorted({p["code"] for p in provs})),
            commits=tuple(sorted({p["commit"][:10] for p in provs})),
            devices=tuple(sorted({p["device"] for p in provs})),
        )
        for name, provs in sorted(found.items())
    ]


def adopt(
    folder: str | os.PathLike, name: str, keys: set[str], directory: str | os.PathLike | None = None
) -> tuple[list[str], list[str]]:
    """Copy the records of type ``name`` in ``folder`` (another checkout's ``gptheory/shipped/``) whose configuration
    key (:func:`gptheory.results.config_key` of their configuration at this package's version) is one of ``keys``
    into ``directory`` (default :data:`gptheory.results.SHIPPED`), where the file of that name is missing or
    different: the ``.npz``, then the ``.json``, each atomically, so a reader of ``directory`` never sees half a
    record. Returns ``(copied, ignored)``: the ``.json`` names copied, and those of records with another key (points
    no grid of this checkout has), left where they are."""
    target_dir = results.SHIPPED if directory is None else Path(directory)
    copied, ignored = [], []
    for path in sorted(Path(folder).glob(f"{name}-*.json")):
        body = json.loads(path.read_text())
        if body["name"] != name:
            continue
        if results.config_key(body["provenance"]["config"]) not in keys:
            ignored.append(path.name)
            continue
        target = target_dir / path.name
        if target.exists() and target.read_bytes() == path.read_bytes():
            continue
        for part in (path.with_suffix(".npz"), path):  # the .json last: a record whose .json is there is whole
            if part.exists():
                with atomic_write(target_dir / part.name) as fh, open(part, "rb") as src:
                    shutil.copyfileobj(src, fh)
        copied.append(path.name)
    return copied, ignored


__all__ = ["Cost", "adopt", "base_identity", "cost", "one_version", "scope"]
