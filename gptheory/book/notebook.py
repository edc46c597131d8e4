"""Small helpers for the book's chapters: numbers into prose, tables, and optional widgets.

``glue``/``glue_many`` hand numbers to the prose, ``html_table`` draws a table, ``provenance_table`` lists the saved
results of an experiment with where each came from (shipped or the local cache), ``explore`` adds sliders.

The chapters run in three places -- the book build (MyST-NB), Colab and CI (nbmake, no widget
front end) -- and these helpers behave sensibly in all of them.
"""

from __future__ import annotations

import html
import os
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from gptheory.results import SHIPPED, Record


def glue(name: str, value: Any) -> None:
    """Hand ``value`` to MyST-NB's ``glue`` under ``name`` (shown in the prose with ``{glue:text}``).

    In a book build nothing is shown under the cell: the number appears only in the prose. Where
    MyST-NB is missing (Colab, a plain kernel) the prose of the notebook names the value instead, and
    this prints ``name = value`` so that the reader finds it under the cell. NumPy and torch scalars are
    turned into plain Python numbers first, so that format specs such as ``:.3g`` work in the prose.
    Returns nothing, so a cell that ends with a glue shows no stray full-precision number.
    """
    value = _plain(value)
    try:
        from myst_nb import glue as _glue
    except ImportError:
        if isinstance(value, (int, float, str)):  # a display object (a summary for another page) is not named here
            print(f"{name} = {value:.4g}" if isinstance(value, float) else f"{name} = {value}")
        return
    _glue(name, value, display=False)


def glue_many(values: Mapping[str, Any] | None = None, /, *, prefix: str = "", **named: Any) -> None:
    """:func:`glue` every ``name: value`` of ``values`` and then of the keywords, each name behind ``prefix``.

    ``glue_many(prefix="ot_", steps=12)`` glues ``ot_steps``; a mapping carries names that are not identifiers.
    Returns nothing, like :func:`glue`.
    """
    for name, value in {**(values or {}), **named}.items():
        glue(prefix + name, value)


def _plain(value: Any) -> Any:
    """A Python ``int``/``float`` for NumPy or torch scalars (0-d arrays and tensors included)."""
    # np.float64 subclasses float but reprs as "np.float64(...)", which MyST-NB cannot format: test the exact type
    if hasattr(value, "item") and getattr(value, "ndim", 0) == 0 and type(value) not in (int, float, bool):
        return value.item()
    return value


def html_table(header: Sequence[str], rows: Sequence[Sequence[Any]], caption: str | None = None) -> Any:
    """A readable HTML table for a cell's output: padded cells, numbers right-aligned and never split.

    ``header`` and the cells are inserted as HTML, so they may hold markup such as
    ``W<sub>q</sub><sup>⊤</sup>`` (pass only text the chapter writes itself); the caption is escaped.
    Floats are shown with 3 significant digits. A cell without words ("0.58 / 0.11", "16, 2, 3") never
    wraps; a cell with words may, so a wide table still fits the page, and scrolls sideways if it cannot.
    The book renders cell outputs as CommonMark, which has no tables; Colab shows the same HTML.
    """
    from IPython.display import HTML

    def cell(tag: str, value: Any) -> str:
        text = f"{value:.3g}" if isinstance(value, float) else str(value)
        wordless = not re.search(r"[A-Za-z]{2,}", re.sub(r"<[^>]*>", "", text))
        style = "padding:0.25em 0.8em;" + ("text-align:right;white-space:nowrap" if wordless else "text-align:left")
        return f'<{tag} style="{style}">{text}</{tag}>'

    head = "".join(cell("th", h) for h in header)
    body = "".join("<tr>" + "".join(cell("td", v) for v in row) + "</tr>" for row in rows)
    # the caption takes the output's colour: the theme's muted grey for captions is 1.7:1 on the light background
    # the theme gives an HTML output in dark mode
    style = "caption-side:top;padding:0.3em;color:inherit"
    cap = f"<caption style='{style}'>{html.escape(caption)}</caption>" if caption else ""
    table = (
        f'<table style="border-collapse:collapse;margin:0.5em 0">{cap}'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
    )
    return HTML(f'<div style="overflow-x:auto">{table}</div>')


def provenance_table(
    columns: Sequence[str],
    candidates: Iterable[tuple[str, Record | None]],
    row: Callable[[Any], Sequence[Any]],
) -> Any:
    """The table of an experiment's saved results: one row per distinct record among ``candidates``.

    ``candidates`` are ``(label, record or None)`` pairs, e.g. ``(profile, load(...))``; a missing record, or one
    whose file an earlier candidate already showed, is skipped. Each row is the label, where the record came from
    (``"shipped"`` with the package or the local ``"cache"``), ``row(record)`` under ``columns``, and the device it
    was made on.
    """
    lines, seen = [], []
    for label, record in candidates:
        if record is None or record.path in seen:
            continue
        seen.append(record.path)
        source = "shipped" if record.path.parent == SHIPPED else "cache"
        lines.append([label, source, *row(record), record.provenance.device])
    return html_table(["profile", "source", *columns, "device"], lines)


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
