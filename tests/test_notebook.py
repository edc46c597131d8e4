"""gptheory.book.notebook: glue shows nothing under a cell in the book and prints outside it, glued values are plain
numbers, glue_many, readable tables, the table of saved results with their source, and explore draws its default
without widgets."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import torch

from gptheory.book.notebook import _plain, explore, glue, glue_many, html_table, widgets_enabled
from gptheory.provenance import Provenance
from gptheory.results import Record


def test_glue_returns_nothing_so_no_stray_number_appears_under_a_cell():
    assert glue("x", 1.2345678) is None


def test_glue_prints_the_value_where_myst_nb_is_missing(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import myst_nb now raises ImportError, as in Colab
    glue("kappa_ou_4", 64.6789)
    glue("dense_ops", 1073741824)
    glue("claims_summary", html_table(["a"], [[1]]))  # a display object for another page: not printed here
    out = capsys.readouterr().out
    assert "kappa_ou_4 = 64.68" in out and "dense_ops = 1073741824" in out and "claims_summary" not in out


def test_html_table_pads_cells_keeps_markup_and_never_splits_numbers():
    rows = [[1, 0.000123456], ["0.58 / 0.11", "yes: r from 0.1 to 0.2"]]
    html = html_table(["<i>t</i>", "error"], rows, "a & b").data
    assert html.count("padding:0.25em 0.8em") == 6  # every cell (the caption has its own)
    assert "<i>t</i>" in html and "0.000123" in html and "a &amp; b" in html
    assert "color:inherit" in html.split("<caption")[1].split(">")[0]  # the output's colour, readable in dark mode
    cells = html.split("<td")[1:]
    assert all("nowrap" in c for c in cells[:3])  # numbers, and "0.58 / 0.11", stay on one line
    assert "nowrap" not in cells[3]  # a cell with words may wrap, so the table fits the page


def test_glue_many_glues_every_value_under_its_name_in_order(monkeypatch):
    from gptheory.book import notebook

    seen = []
    monkeypatch.setattr(notebook, "glue", lambda name, value: seen.append((name, value)))
    assert notebook.glue_many({"a-b": 1}, prefix="ot_", steps=12, eps=1e-3) is None
    assert seen == [("ot_a-b", 1), ("ot_steps", 12), ("ot_eps", 1e-3)]
    seen.clear()
    notebook.glue_many(N=32)  # without a prefix the names reach glue unchanged
    assert seen == [("N", 32)]


def test_glue_many_prints_like_glue_where_myst_nb_is_missing(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "myst_nb", None)
    glue_many(prefix="cpu_", depth=4, nn=1.23456)
    assert capsys.readouterr().out == "cpu_depth = 4\ncpu_nn = 1.235\n"


def _saved(folder: Path, device: str) -> Record:
    folder.mkdir(parents=True, exist_ok=True)
    prov = Provenance(device, "2025-01-01T00:00:00", "abc", "0", "code", "2", "cpu", {"n": 1}, 1.0)
    return Record(provenance=prov, path=folder / f"x-{device}.json")


def test_provenance_table_lists_each_saved_record_once_with_its_source_and_device(tmp_path, monkeypatch):
    from gptheory.book import notebook

    monkeypatch.setattr(notebook, "SHIPPED", tmp_path / "shipped")
    shipped_one = _saved(tmp_path / "shipped", "H200")
    cached_one = _saved(tmp_path / "cache", "cpu (2 threads)")
    candidates = [("smoke", None), ("cpu", cached_one), ("gpu", shipped_one), ("gpu (shipped)", shipped_one)]
    html = notebook.provenance_table(["error"], candidates, lambda r: [f"{r.provenance.wall_seconds:.0f} s"]).data
    rows = [re.sub(r"<[^>]*>", "|", row) for row in html.split("<tr>")[1:]]
    cells = [[c for c in row.split("|") if c] for row in rows]
    assert cells == [
        ["profile", "source", "error", "device"],
        ["cpu", "cache", "1 s", "cpu (2 threads)"],
        ["gpu", "shipped", "1 s", "H200"],  # the same file under a second label is not listed again
    ]


def test_glue_values_become_plain_numbers():
    assert type(_plain(np.float64(1.5))) is float
    assert type(_plain(torch.tensor(2))) is int
    assert _plain([1, 2]) == [1, 2]


def test_explore_draws_the_default_without_widgets(monkeypatch):
    monkeypatch.setenv("GPTHEORY_NO_WIDGETS", "1")
    assert not widgets_enabled()
    calls = []
    explore(lambda a, b: calls.append((a, b)), a=(0, 10, 1, 3), b=(0.0, 1.0, 0.1, 0.5))
    assert calls == [(3, 0.5)]
