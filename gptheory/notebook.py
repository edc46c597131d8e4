"""Small helpers for the book's chapters: numbers into prose, and optional widgets.

The chapters run in three places -- the book build (MyST-NB), Colab and CI (nbmake, no widget
front end) -- and these helpers behave sensibly in all of them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


def glue(name: str, value: Any) -> Any:
    """Hand ``value`` to MyST-NB's ``glue`` under ``name`` (shown in the prose with ``{glue:text}``).

    Outside a book build (Colab, a plain kernel) MyST-NB may be missing: then nothing is stored.
    NumPy and torch scalars are turned into plain Python numbers first, so that format specs such as
    ``:.3g`` work in the prose. Returns ``value`` so that a cell can glue and print in one line.
    """
    value = _plain(value)
    try:
        from myst_nb import glue as _glue
    except ImportError:
        return value
    _glue(name, value, display=False)
    return value


def _plain(value: Any) -> Any:
    """A Python ``int``/``float`` for NumPy or torch scalars (0-d arrays and tensors included)."""
    # np.float64 subclasses float but reprs as "np.float64(...)", which MyST-NB cannot format: test the exact type
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0 and type(value) not in (int, float, bool):
        return value.item()
    return value


def widgets_enabled() -> bool:
    """True when sliders can be shown: ipywidgets is installed and we are not in a headless run.

    Headless runs (CI, the book build) set ``CI`` or ``GPTHEORY_NO_WIDGETS``.
    """
    if os.environ.get("GPTHEORY_NO_WIDGETS") or os.environ.get("CI"):
        return False
    try:
        import ipywidgets  # noqa: F401
    except ImportError:
        return False
    return True


def explore(plot: Callable[..., Any], **sliders: tuple) -> None:
    """Draw ``plot(**defaults)`` and, where widgets are available, attach sliders to it.

    Each keyword is ``name=(low, high, step, default)``. The static figure for the defaults is
    always drawn first, so a page built without a widget front end still shows it.
    """
    defaults = {k: v[3] for k, v in sliders.items()}
    if not widgets_enabled():
        plot(**defaults)
        return
    import ipywidgets as w

    controls = {}
    for k, (lo, hi, step, default) in sliders.items():
        cls = w.IntSlider if all(isinstance(v, int) for v in (lo, hi, step, default)) else w.FloatSlider
        controls[k] = cls(min=lo, max=hi, step=step, value=default, description=k, continuous_update=False)
    w.interact(plot, **controls)


def html_table(header: list[str], rows: list[list[str]]):
    """A plain HTML table (``IPython.display.HTML``): the book renders cell outputs as CommonMark, which has no
    tables. ``header``: column titles; ``rows``: lists of cell texts."""
    from IPython.display import HTML

    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return HTML(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
