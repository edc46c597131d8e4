"""The book's wiring: table of contents, Colab route, install cells, exercises, notebooks in sync."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())


def _load_sync():
    spec = importlib.util.spec_from_file_location("sync_notebooks", ROOT / ".ci" / "sync_notebooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SYNC = _load_sync()
CHAPTERS = SYNC.chapters()


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
def test_chapter_opens_in_colab_and_installs_itself(md):
    text = md.read_text()
    repo = CONFIG["repository"]["url"].removeprefix("https://github.com/")
    link = f"https://colab.research.google.com/github/{repo}/blob/{CONFIG['repository']['branch']}/book/colab/{md.stem}.ipynb"
    assert link in text, f"{md.name} lacks its Colab badge ({link})"
    assert (ROOT / "book" / "colab" / f"{md.stem}.ipynb").is_file()
    first_code = text.split("```{code-cell} ipython3", 1)[1].split("```", 1)[0]
    assert (
        "import gptheory" in first_code and "except ModuleNotFoundError" in first_code and "%pip install" in first_code
    )
    assert f"git+{CONFIG['repository']['url']}" in first_code


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
    nb = json.loads((ROOT / "book" / "colab" / "student" / f"{md.stem}.ipynb").read_text())
    text = "".join("".join(cell["source"]) for cell in nb["cells"])
    n_exercises = md.read_text().count("{exercise-start}")
    assert "{solution-start}" not in text and "{solution-end}" not in text
    assert text.count("{exercise-start}") == n_exercises == text.count("# Your answer here")
