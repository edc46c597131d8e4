"""gptheory.book.notebook: glue shows nothing under a cell in the book and prints outside it, glued values are plain
numbers, readable tables, and explore draws its default without widgets."""

from __future__ import annotations

import sys

import numpy as np
import torch

from gptheory.book.notebook import _plain, explore, glue, html_table, widgets_enabled


def test_glue_returns_nothing_so_no_stray_number_appears_under_a_cell():
    assert glue("x", 1.2345678) is None


def test_glue_prints_the_value_where_myst_nb_is_missing(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "myst_nb", None)  # import myst_nb now raises ImportError, as in Colab
    glue("kappa_ou_4", 64.6789)
    glue("dense_ops", 1073741824)
    out = capsys.readouterr().out
    assert "kappa_ou_4 = 64.68" in out and "dense_ops = 1073741824" in out


def test_html_table_pads_cells_keeps_markup_and_never_splits_numbers():
    rows = [[1, 0.000123456], ["0.58 / 0.11", "yes: r from 0.1 to 0.2"]]
    html = html_table(["<i>t</i>", "error"], rows, "a & b").data
    assert html.count("padding:0.25em 0.8em") == 6  # every cell (the caption has its own)
    assert "<i>t</i>" in html and "0.000123" in html and "a &amp; b" in html
    cells = html.split("<td")[1:]
    assert all("nowrap" in c for c in cells[:3])  # numbers, and "0.58 / 0.11", stay on one line
    assert "nowrap" not in cells[3]  # a cell with words may wrap, so the table fits the page


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
