"""The paper's experiments, one module per chapter, and the registry of their sweeps.

* :mod:`~gptheory.experiments.dit_learns` -- Section 6.1 / Appendix D.1: a DiT learns ``Gamma`` and ``Sigma``;
* :mod:`~gptheory.experiments.sample_complexity` -- Theorem 2 and Figure 4(a): the error against ``n``;
* :mod:`~gptheory.experiments.probe` -- one trained network measured from every side (Appendix D.2 and the
  attention chapter), with :mod:`~gptheory.experiments.probe_analysis` and :mod:`~gptheory.experiments.probe_figures`.

Each module defines its sweeps (a ``SWEEPS`` tuple of :class:`gptheory.sweep.Sweep`); :data:`SWEEPS` holds them all
by name and :func:`sweep` finds one. Importing this package imports the experiments, never the other way round.
"""

from __future__ import annotations

from ..profiles import PROFILES
from ..sweep import Sweep
from . import dit_learns, probe, sample_complexity

SWEEPS: dict[str, Sweep] = {s.name: s for s in (*dit_learns.SWEEPS, *sample_complexity.SWEEPS, *probe.SWEEPS)}


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
            lines.append(f"    {p}: {axes}")
    return "\n".join(lines)


__all__ = ["SWEEPS", "describe", "sweep"]
