"""The book's wiring: table of contents, Colab route, install cells, exercises, notebooks in sync."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from scripts import load

from gptheory.book.myst import MystError

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())


SYNC = load(".ci/sync_notebooks.py")
SOURCE = SYNC.SOURCE  # the converter of gptheory.book.myst on this checkout
CHAPTERS = SOURCE.chapters()


def _toc_files(node) -> list[str]:
    out = []
    if isinstance(node, dict):
        if "file" in node:
            out.append(node["file"])
        for value in node.values():
            out += _toc_files(value)
    elif isinstance(node, list):
        for item in node:
            out += _toc_files(item)
    return out


def test_every_chapter_is_in_the_toc_and_every_toc_entry_exists():
    listed = [TOC["root"], *_toc_files(TOC)]
    for entry in listed:
        assert (ROOT / f"{entry}.md").is_file(), f"_toc.yml lists {entry}, which does not exist"
    for md in CHAPTERS:
        assert f"book/{md.stem}" in listed, f"{md.name} is not in _toc.yml"


def test_config_essentials():
    assert CONFIG["repository"]["branch"] == "main"
    exts = CONFIG["parse"]["myst_enable_extensions"]
    assert "dollarmath" in exts and "amsmath" in exts  # amsmath without dollarmath breaks inline math
    assert {"sphinx_proof", "sphinx_exercise"} <= set(CONFIG["sphinx"]["extra_extensions"])
    assert CONFIG["execute"]["execute_notebooks"] == "force"


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_opens_in_colab_and_its_notebooks_install_gptheory(md):
    text = md.read_text()
    repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    link = f"https://colab.research.google.com/github/{repo}/blob/{CONFIG['repository']['branch']}/book/colab/{md.stem}.ipynb"
    assert link in text, f"{md.name} lacks its Colab badge ({link})"
    assert "%pip install" not in text, (
        f"{md.name} has its own install cell; .ci/sync_notebooks.py adds the one install cell to every notebook"
    )
    for nb_path in (
        ROOT / "book" / "colab" / f"{md.stem}.ipynb",
        ROOT / "book" / "colab" / "student" / f"{md.stem}.ipynb",
    ):
        nb = json.loads(nb_path.read_text())
        first_code = next(c for c in nb["cells"] if c["cell_type"] == "code")
        assert "".join(first_code["source"]) == SOURCE.install_cell
    assert f"git+{CONFIG['repository']['url']}@{CONFIG['repository']['branch']}" in SOURCE.install_spec


MYST = re.compile(
    r"\{[\w:-]+\}`"  # a role: {cite}`x`, {glue:text}`x`, {ref}`x`, {prf:ref}`x`
    r"|^\s*(?:`{3,}|:{3,})\s*\{"  # a directive fence: ```{exercise-start}, :::{note}
    r"|^\([\w:-]+\)=\s*$"  # a target: (label)=
    r"|^\$\$\s*\([\w:-]+\)"  # a labelled equation: $$ (label)
    r"|^:(?:label|class|tags|nonumber):",  # directive options left behind
    re.M,
)


@pytest.mark.parametrize(
    "nb_path",
    sorted((ROOT / "book" / "colab").rglob("*.ipynb")),
    ids=lambda p: str(p.relative_to(ROOT / "book" / "colab")),
)
def test_colab_and_student_notebooks_hold_no_myst_syntax(nb_path):
    nb = json.loads(nb_path.read_text())
    for i, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "markdown":
            found = MYST.findall("".join(cell["source"]))
            assert not found, f"{nb_path.name}, cell {i}: raw MyST {found[:3]}"


def test_the_myst_test_catches_what_jupytext_leaves():
    """The pattern above must flag the syntax a plain jupytext conversion leaves (the old notebooks)."""
    raw = "See {ref}`chapter-x` and {glue:text}`a:.3g`.\n```{exercise-start}\n:label: ex-1\n```\n(label)=\n$$ (eq-1)\n"
    assert len(MYST.findall(raw)) >= 6


def test_converter_rewrites_every_myst_construct_the_book_uses():
    numbers = SOURCE.exercise_numbers()
    first = next(iter(numbers))
    text = (
        "(sec-x)=\n# Title\n\nAs {cite}`fu2025diffusion` shows, {glue:text}`kappa:.3g` in {doc}`gp_sequences`.\n\n"
        "```{prf:lemma} A title\n:label: lem-z\n\nBody $x$.\n```\n\n```{prf:proof}\nEasy.\n```\n\n"
        f"```{{exercise-start}}\n:label: {first}\n```\nDo it.\n```{{exercise-end}}\n```\n\n"
        "```{admonition} Note well\n:class: tip\nBe careful.\n```\n"
        "See {mod}`gptheory.sweep` and {func}`~gptheory.gp.kernel`.\n"
    )
    out = SOURCE.plain_markdown(text, "test.md", numbers)
    assert not MYST.findall(out), out
    assert "Fu et al. (2025)" in out and "`kappa`" in out and "printed by the code cells above" in out
    assert f"[Gaussian-process sequences]({SOURCE.url}book/gp_sequences.html)" in out
    assert "**Lemma (A title).** Body $x$." in out and "*Proof.* Easy." in out
    assert f"**Exercise {numbers[first]}**" in out and "> **Note well**" in out
    assert "See `gptheory.sweep` and `gptheory.gp.kernel`." in out


@pytest.mark.parametrize("bad", ["{unknownrole}`x`", "```{unknown-directive}\nx\n```\n", "{ref}`no-such-label`"])
def test_converter_refuses_what_it_cannot_rewrite(bad):
    with pytest.raises(MystError):
        SOURCE.plain_markdown(bad, "test.md", {})


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_exercises_have_solutions(md):
    text = md.read_text()
    exercises = re.findall(r"```\{exercise-start\}\s*\n:label: (\S+)", text)
    solutions = re.findall(r"```\{solution-start\} (\S+)", text)
    assert len(exercises) >= 2, f"{md.name} has {len(exercises)} exercises"
    assert sorted(exercises) == sorted(solutions), f"{md.name}: exercises and solutions do not pair up"
    assert text.count("{exercise-end}") == len(exercises) and text.count("{solution-end}") == len(solutions)


def test_colab_notebooks_match_their_chapters(capsys):
    assert SYNC.main(["--check"]) == 0, capsys.readouterr().out


@pytest.mark.parametrize("md", CHAPTERS, ids=lambda p: p.stem)
def test_student_notebook_has_every_exercise_and_no_solution(md):
    from gptheory.book.exercises import CHECKS

    nb = json.loads((ROOT / "book" / "colab" / "student" / f"{md.stem}.ipynb").read_text())
    text = "".join("".join(cell["source"]) for cell in nb["cells"])
    labels = re.findall(r"```\{exercise-start\}\s*\n:label: (\S+)", md.read_text())
    assert "Solution to Exercise" not in text and "{solution" not in text
    assert text.count("**Exercise ") == len(labels) == text.count("# Your answer here")
    for label in labels:
        assert (f"check({label!r}, answer)" in text) == (label in CHECKS), f"{md.name}: the check call of {label}"


def test_every_check_belongs_to_an_exercise_of_the_book():
    from gptheory.book.exercises import CHECKS

    labels = {m for md in CHAPTERS for m in re.findall(r":label: (\S+)", md.read_text())}
    assert set(CHECKS) <= labels, f"checks for exercises that do not exist: {set(CHECKS) - labels}"


def test_student_edition_sources_have_answer_cells_instead_of_solutions(tmp_path):
    SYNC.write_student_book(tmp_path)
    for md in CHAPTERS:
        text = (tmp_path / "book" / md.name).read_text()
        n = md.read_text().count("{exercise-start}")
        assert "{solution-start}" not in text and "{solution-end}" not in text
        assert text.count("# Your answer here") == n
    assert (tmp_path / "_toc.yml").is_file() and (tmp_path / "book" / "_ext" / "offline_site.py").is_file()


def test_the_intro_maps_every_chapter_of_the_toc():
    """The map of the book stays true as chapters land: one row per chapter, no row without one."""
    intro = (ROOT / f"{TOC['root']}.md").read_text()
    mapped = re.findall(r"^\| \{doc\}`([\w/]+)`", intro, re.M)
    chapters = [Path(f).stem for f in _toc_files(TOC)]
    assert sorted(mapped) == sorted(chapters), f"intro map {mapped} against _toc.yml {chapters}"


def _load_site_extension():
    return load("book/_ext/offline_site.py")


@pytest.mark.parametrize(
    ("text", "tex"),
    [
        ("9.55e+03", r"9.55 \times 10^{3}"),
        ("1.07e+09", r"1.07 \times 10^{9}"),
        ("1e-06", "10^{-6}"),
        ("-3.2e+05", r"-3.2 \times 10^{5}"),
        ("0.5", None),
        ("64", None),
        ("layer 3", None),
    ],
)
def test_glued_numbers_in_exponent_form_become_math(text, tex):
    assert _load_site_extension().number_as_tex(text) == tex
