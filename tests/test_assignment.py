"""otter-grader assignments from the chapters: the master notebook's structure, and the whole path an instructor takes
(write the master notebook, ``otter assign``, grade submissions locally with ``otter.api.grade_submission``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from gptheory.book.assignment import Question, write_master
from gptheory.book.exercises import CHECKS

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
CHAPTERS = ["gp_sequences", "truncation"]  # cheap in the smoke profile, two autograded questions each


def _raw(nb: nbformat.NotebookNode) -> list[str]:
    return [c.source.splitlines()[0] for c in nb.cells if c.cell_type == "raw"]


def test_every_exercise_becomes_a_question_and_every_check_its_tests(tmp_path):
    report = write_master("gp_sequences", tmp_path)
    nb = nbformat.read(report["master"], as_version=4)
    labels = re.findall(r"^:label: (ex-\S+)", (ROOT / "book" / "gp_sequences.md").read_text(), re.M)
    assert report["autograded"] + report["manual"] == labels and report["autograded"] == ["ex-gp-ar1", "ex-gp-kappa"]
    assert nb.cells[0].cell_type == "raw" and nb.cells[0].source.startswith("# ASSIGNMENT CONFIG\nname: gp_sequences")
    raw = _raw(nb)
    assert raw.count("# BEGIN QUESTION") == raw.count("# END QUESTION") == raw.count("# BEGIN SOLUTION") == 3
    assert raw.count("# BEGIN TESTS") == raw.count("# END TESTS") == 2  # the hand-graded ex-gp-sigma has none
    configs = [c.source for c in nb.cells if c.cell_type == "raw" and c.source.startswith("# BEGIN QUESTION")]
    assert configs[2] == "# BEGIN QUESTION\nname: ex-gp-sigma\npoints: 1\nmanual: true"
    tests = [c.source for c in nb.cells if c.cell_type == "code" and "BEGIN TEST CONFIG" in c.source]
    assert [("hidden: true" in t, "points: 0" in t) for t in tests] == [(False, True), (True, False)] * 2
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    for label in report["autograded"]:  # each answer its own variable, bound to the reference in the solution
        var = Question(label, True).variable
        assert f"{var} = CHECKS[{label!r}].reference()" in code and f"check({label!r}, {var})" in code
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "**Exercise 1**" in markdown and "**Solution to Exercise 1**" in markdown and "{solution" not in markdown


def test_answer_variables_are_distinct_identifiers():
    names = [Question(label, True).variable for label in CHECKS]
    assert all(name.isidentifier() for name in names) and len(set(names)) == len(names)
    assert Question("ex-gradient_descent-1", True).variable == "answer_gradient_descent_1"


def test_a_folder_that_is_not_the_book_is_refused(tmp_path):
    with pytest.raises(ValueError, match="book must be a clone.*--book"):
        write_master("gp_sequences", tmp_path / "out", root=tmp_path)


def test_an_out_that_is_a_file_is_refused_by_name(tmp_path):
    (tmp_path / "out").write_text("not a folder")
    with pytest.raises(ValueError, match="out must be a folder"):
        write_master("gp_sequences", tmp_path / "out")


# ------------------------------------------------------------------------------------------------ end to end


def _fill(student: Path, out: Path, answers: dict[str, str]) -> Path:
    """The student notebook with the binding ``answer_<label> = None`` replaced by ``answers[label]`` (code), written
    to ``out/`` under its own name (the notebook's otter cell opens its file by that name)."""
    nb = nbformat.read(student, as_version=4)
    for label, code in answers.items():
        binding = f"{Question(label, True).variable} = None"
        cells = [c for c in nb.cells if c.cell_type == "code" and binding in c.source]
        assert len(cells) == 1, f"the answer cell of {label}"
        line = next(line for line in cells[0].source.splitlines() if line.startswith(binding))
        cells[0].source = cells[0].source.replace(line, code)
    out.mkdir()
    nbformat.write(nb, out / student.name)
    return out / student.name


def _grade(notebook: Path, autograder: Path) -> dict[str, float]:
    """Grade locally, without a container; the question -> score, after checking that every cell ran."""
    from otter.api import grade_submission

    results = grade_submission(str(notebook), str(autograder), quiet=True)
    errors = [o for c in results.notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, [f"{e['ename']}: {e['evalue']}" for e in errors]
    return {name: results.get_score(name) for name in results.results}


@pytest.mark.filterwarnings("ignore:The inplace keyword in DataFrame.drop")  # otter 7.0's summary, on pandas 3.1
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_reference_solutions_get_full_marks_and_a_typical_mistake_loses_its_question(chapter, tmp_path, monkeypatch):
    pytest.importorskip("otter", reason='the course extra: pip install "gptheory[course]"')
    from test_exercises import WRONG  # the mistake each check is tested on

    monkeypatch.setenv("GPTHEORY_PROFILE", "smoke")
    monkeypatch.setenv("GPTHEORY_NO_WIDGETS", "1")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # the kernels' torch: on a busy 2-core machine 2 threads took 7x longer
    report = write_master(chapter, tmp_path)
    dist = tmp_path / "dist"
    # as an instructor runs it: otter assign grades the solutions too, and fails unless they get full marks or
    # (--debug) when a cell raises
    run = subprocess.run(
        [sys.executable, "-m", "otter", "assign", "--debug", report["master"], str(dist)],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    student = nbformat.read(dist / "student" / f"{chapter}.ipynb", as_version=4)
    shown = "\n".join(c.source for c in student.cells)
    assert "BEGIN SOLUTION" not in shown and ".reference()" not in shown and "Solution to Exercise" not in shown
    public = student.metadata["otter"]["tests"]
    assert sorted(public) == sorted(report["autograded"])
    assert all(not case["hidden"] for test in public.values() for case in test["suites"][0]["cases"])
    (autograder,) = (dist / "autograder").glob("*.zip")

    labels, given = report["autograded"], dist / "student" / f"{chapter}.ipynb"
    reference = {
        label: f"from gptheory.book.exercises import CHECKS\n{Question(label, True).variable} = "
        f"CHECKS[{label!r}].reference()"
        for label in labels
    }
    assert _grade(_fill(given, tmp_path / "reference", reference), autograder) == dict.fromkeys(labels, 1.0)

    wrong = labels[0]
    assert wrong in WRONG
    mistake = f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nfrom test_exercises import WRONG\n"
    mistake += f"{Question(wrong, True).variable} = WRONG[{wrong!r}]"
    scores = _grade(_fill(given, tmp_path / "wrong", reference | {wrong: mistake}), autograder)
    assert scores == {label: float(label != wrong) for label in labels}
