"""The paper's experiments, one module per chapter, and the registry of their sweeps.

* :mod:`~gptheory.experiments.calibration` -- the exact score through the same sampler and metrics: every ratio to
  the sampling floor must be about 1 before a number judges a network (``python -m gptheory calibrate``);
* :mod:`~gptheory.experiments.dit_learns` -- Section 6.1 / Appendix D.1: a DiT learns ``Gamma`` and ``Sigma``;
* :mod:`~gptheory.experiments.sample_complexity` -- Theorem 2 and Figure 4(a): the error against ``n``;
* :mod:`~gptheory.experiments.probe` -- one trained network measured from every side, the point of the next two;
* :mod:`~gptheory.experiments.dynamics` -- training dynamics: where training is measured, and when each dependency
  was learned (Figure 13);
* :mod:`~gptheory.experiments.tuning` -- each network's own recipe for the comparisons: its learning rate, chosen on
  its own validation loss, and its cap;
* :mod:`~gptheory.experiments.architecture` -- Appendix D.2 (Figures 11-13): the DiT against UNets, length, depth;
* :mod:`~gptheory.experiments.architecture_claims` -- Figures 11 and 12's claims as verdicts, each rule once;
* :mod:`~gptheory.experiments.attention_learned` -- is the attention pattern learned (Figures 5 and 10 at depth)?
* :mod:`~gptheory.experiments.imputation` -- beyond the paper: imputation and forecasting against the exact posterior,
  read by :mod:`~gptheory.experiments.imputation_analysis` (its verdicts and figures).

Each chapter's module defines its sweeps, named after the chapter (a ``SWEEPS`` tuple of
:class:`gptheory.sweep.Sweep`); :data:`SWEEPS` holds them all by name and :func:`sweep` finds one;
:func:`sweep_costs` says how much of each grid has shipped and what it took to compute.
Importing this package imports the experiments, never the other way round.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from .. import results
from ..profiles import PROFILES
from ..sweep import Sweep
from . import architecture, attention_learned, dit_learns, imputation, sample_complexity

SWEEPS: dict[str, Sweep] = {
    s.name: s
    for module in (dit_learns, sample_complexity, architecture, attention_learned, imputation)
    for s in module.SWEEPS
}


def sweep(name: str) -> Sweep:
    """The sweep called ``name``; a clear error listing the valid names otherwise."""
    if name not in SWEEPS:
        raise ValueError(f"sweep must be one of {', '.join(sorted(SWEEPS))}, got {name!r}")
    return SWEEPS[name]


def describe() -> str:
    """Every sweep with its grid per profile, for ``--help``."""
    lines = []
    for s in SWEEPS.values():
        lines.append(f"{s.name}: {s.description}")
        for p in PROFILES:
            axes = ", ".join(f"{k}={list(v)}" for k, v in s.grid[p].items())
            tied = "; ".join(f"{a}={v}: {o}" for a, by in (s.linked or {}).get(p, {}).items() for v, o in by.items())
            lines.append(f"    {p}: {axes}" + (f" (with {tied})" if tied else ""))
    return "\n".join(lines)


@dataclass(frozen=True)
class SweepCost:
    """How much of one sweep's grid has shipped: ``points`` in the grid, ``shipped`` of them, and their summed wall
    time ``wall_seconds`` (s, one process each, as recorded). A point two sweeps share counts in both."""

    sweep: str
    points: int
    shipped: int
    wall_seconds: float


def sweep_costs(profile: str = "cpu") -> list[SweepCost]:
    """One :class:`SweepCost` per registered sweep, for its grid in ``profile``, from the shipped results
    (:data:`gptheory.results.SHIPPED`)."""
    out = []
    for s in SWEEPS.values():
        paths = [results.shipped_path(s.record.NAME, config.to_dict()) for _, config in s.points(profile)]
        walls = [json.loads(p.read_text())["provenance"]["wall_seconds"] for p in paths if p.exists()]
        out.append(SweepCost(s.name, len(paths), len(walls), sum(walls)))
    return out


__all__ = ["SWEEPS", "SweepCost", "describe", "sweep", "sweep_costs"]
