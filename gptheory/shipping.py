"""Which shipped results belong to a sweep, and the rule that they come from one version of the code.

A sweep's shipped points (:data:`gptheory.results.SHIPPED`) are the records of its type whose configuration has the
sweep's base settings and, on each grid axis, one of the sweep's values. They must all come from one version of the
code (:func:`gptheory.provenance.code_hash` in their provenance), or a curve could mix two trainings or two
measurements. :func:`gptheory.sweep.run_sweep` applies :func:`one_version` twice when it ships: before any training,
counting the points still to compute as if finished, so a run that would be refused stops at once; and at the end,
on what it computed.
"""

from __future__ import annotations

import json

from . import results
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


__all__ = ["base_identity", "one_version", "scope"]
