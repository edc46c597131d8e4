"""The MyST-to-notebook conversion on a small book of its own: plain markdown, the install cell, student answer cells.

The real chapters go through the same code in tests/test_book.py (the committed notebooks are byte-identical to
what ``gptheory.book.myst`` writes)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gptheory.book.exercises import CHECKS
from gptheory.book.myst import ANSWER, Book, MystError

HEADER = "---\njupytext:\n  text_representation:\n    extension: .md\n    format_name: myst\n---\n\n"
CHAPTER = (
    HEADER + "(chapter-one)=\n# One\n\nAs {cite}`fu2025`, see {ref}`chapter-one`.\n\n"
    "```{code-cell} ipython3\nx = 1\n```\n\n## Exercises\n\n"
    "```{exercise-start}\n:label: ex-gp-ar1\n```\nFind it.\n```{exercise-end}\n```\n\n"
    "```{solution-start} ex-gp-ar1\n:class: dropdown\n```\nIt is this.\n\n"
    "```{code-cell} ipython3\ny = 2\n```\n```{solution-end}\n```\n"
)


@pytest.fixture
def book(tmp_path: Path) -> Book:
    (tmp_path / "book").mkdir()
    (tmp_path / "_config.yml").write_text(
        "html:\n  baseurl: https://example.org/b\nrepository:\n  url: https://github.com/o/r\n  branch: main\n"
    )
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/one\n")
    (tmp_path / "book" / "intro.md").write_text("# Intro\n")
    (tmp_path / "book" / "one.md").write_text(CHAPTER)
    (tmp_path / "book" / "references.bib").write_text(
        "@article{fu2025, author = {Fu, Hengyu and Dou, Zehao and Guo, Jiawei}, title = {T}, year = {2025}}\n"
    )
    return Book(tmp_path)


def test_chapters_are_the_jupytext_pages_and_exercises_are_numbered_in_toc_order(book):
    assert [p.name for p in book.chapters()] == ["one.md"]
    assert book.exercise_numbers() == {"ex-gp-ar1": 1}
    assert book.labels()["chapter-one"] == ("https://example.org/b/book/one.html#chapter-one", "One")


def test_notebook_is_plain_with_the_install_cell_before_the_first_code_cell(book):
    nb = book.notebook(book.book / "one.md")
    kinds = [c.cell_type for c in nb.cells]
    assert kinds[:3] == ["markdown", "code", "code"] and nb.cells[1].source == book.install_cell
    assert "git+https://github.com/o/r@main" in book.install_cell
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "Fu et al. (2025)" in text and "[One](https://example.org/b/book/one.html#chapter-one)" in text
    assert "**Exercise 1**" in text and "**Solution to Exercise 1**" in text and "{" not in text
    assert [c["id"] for c in nb.cells] == [f"one-{i}" for i in range(len(nb.cells))]


def test_student_notebook_has_the_answer_cell_with_its_check_and_no_solution(book):
    nb = json.loads(book.render(book.book / "one.md", student=True))
    sources = ["".join(c["source"]) for c in nb["cells"]]
    assert not any("Solution" in s or "y = 2" in s for s in sources)
    assert f"{ANSWER}\n{CHECKS['ex-gp-ar1'].answer_cell()}" in sources


@pytest.mark.parametrize("bad", ["{unknownrole}`x`", "```{unknown-directive}\nx\n```\n", "{ref}`nowhere`"])
def test_what_has_no_rule_stops_the_conversion(book, bad):
    with pytest.raises(MystError):
        book.plain_markdown(bad, "one.md", {})
