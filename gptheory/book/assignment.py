"""A chapter as an otter-grader assignment: ``python -m gptheory assignment CHAPTER --out DIR``.

:func:`write_master` writes ``DIR/<chapter>.ipynb``, a master notebook in Otter Assign's format (v1: raw cells
``# ASSIGNMENT CONFIG``, ``# BEGIN QUESTION`` ... ``# END QUESTION`` around each question, ``# BEGIN SOLUTION``
and ``# BEGIN TESTS`` blocks inside it), made from the chapter's MyST source by the conversion the Colab notebooks
use (:mod:`gptheory.book.myst`), so it reads as the chapter does:

* every exercise is a question named by its label and worth :data:`POINTS`; its prompt is the exercise;
* its solution becomes the question's solution cells: the prose as markdown, which the student notebook leaves
  out, and the code in the one answer cell, which the student notebook empties to ``# Your answer here``;
* an exercise with a check in :mod:`gptheory.book.exercises` is autograded. Its answer cell binds the answer to a
  variable of its own (``answer_<label>``: otter runs every test again after the last cell, when a shared name
  would hold the last question's answer) and calls the check, as in the student notebooks; the solution binds
  ``CHECKS[label].reference()``. The check becomes the question's tests: a public one, which ``grader.check``
  shows the student (the answer is given and of the kind asked, no points), and a hidden one, which only the
  autograder runs (the check's verdict, all the question's points);
* an exercise without a check is graded by hand (``manual: true``): otter gives the student a cell for the written
  answer and one for the code.

``otter assign --debug DIR/<chapter>.ipynb DIR/dist`` then writes the student notebook (``dist/student``) and the
autograder (``dist/autograder``, with its zip), after checking that the solutions pass every test (and, with
``--debug``, that no cell raises: otter ignores errors otherwise); ``otter run -a dist/autograder/<zip>
<chapter>.ipynb`` grades a submission here, without a container (the submission keeps the notebook's name: its otter
cell opens the file by that name). Nothing is installed while grading: the notebooks' install cell does nothing where
gptheory is importable, and the ``requirements`` of the configuration (gptheory from the book's repository) serve
only a container (Gradescope, ``otter grade``). Needs the ``course`` extra and the book's sources: in a clone,
``pip install -e ".[course]"`` (or ``--book CLONE`` from another install).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from .exercises import CHECKS
from .myst import ANSWER, EXERCISE, Book

POINTS = 1  # per question
ROOT = Path(__file__).resolve().parents[2]  # the checkout this package runs from, if it is one
SOLUTION_OF = r"```\{{solution-start\}} {label}\n.*?```\{{solution-end\}}\n```\n?"
CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n(?P<code>.*?)^```[ \t]*\n?", re.S | re.M)
SOLUTION_END = re.compile(r"```\{solution-end\}\n```\n?")


@dataclass(frozen=True)
class Question:
    """One exercise as a question: its label, whether a check grades it, and the variable its answer is bound to."""

    label: str
    autograded: bool

    @property
    def variable(self) -> str:
        """``answer_gp_ar1`` for ``ex-gp-ar1``."""
        return "answer_" + re.sub(r"\W", "_", self.label.removeprefix("ex-"))


def _raw(text: str) -> str:
    return f"\n```{{raw-cell}}\n{text}\n```\n\n"


def _code(text: str) -> str:
    return f"\n```{{code-cell}} ipython3\n{text}\n```\n\n"


def _solution_block(code: str) -> str:
    return f"# BEGIN SOLUTION NO PROMPT\n{code}\n# END SOLUTION" if code else ""


def answer_cell(question: Question, solution_code: str) -> str:
    """The question's one answer cell: what the student sees (``# Your answer here``, for an autograded question the
    binding and the check), with the chapter's solution code (and the reference answer) between otter's solution
    markers, which ``otter assign`` strips from the student notebook."""
    if not question.autograded:
        return "\n".join(filter(None, [ANSWER, _solution_block(solution_code)]))
    reference = (
        f"from gptheory.book.exercises import CHECKS\n\n{question.variable} = CHECKS[{question.label!r}].reference()"
    )
    code = f"{solution_code}\n\n{reference}" if solution_code else reference
    return f"{ANSWER}\n{CHECKS[question.label].answer_cell(question.variable, _solution_block(code))}"


def tests(question: Question) -> tuple[str, str]:
    """The public and the hidden test of an autograded question, as otter test cells (doctest format)."""
    label, var = question.label, question.variable
    public = (
        '""" # BEGIN TEST CONFIG\npoints: 0\nhidden: false\n""" # END TEST CONFIG\n'
        "from gptheory.book.exercises import CHECKS\n"
        f"assert {var} is not None, 'no answer yet: ' + CHECKS[{label!r}].asks\n"
        f"_ = CHECKS[{label!r}].verify({var})  # raises when the answer is not of the kind asked"
    )
    hidden = (
        '""" # BEGIN TEST CONFIG\nhidden: true\n""" # END TEST CONFIG\n'
        "from gptheory.book.exercises import verdict\n"
        f"ok, message = verdict({label!r}, {var})\n"
        "assert ok is True, message"
    )
    return public, hidden


def question_text(question: Question, exercise: str, solution: str) -> str:
    """The MyST of one question: the exercise, then the solution and the tests between otter's raw-cell markers."""
    config = {"name": question.label, "points": POINTS} | ({} if question.autograded else {"manual": True})
    body = SOLUTION_END.sub("", solution)
    codes = [m["code"].strip("\n") for m in CODE_CELL.finditer(body)]
    first = CODE_CELL.search(body)  # the answer cell stands where the solution's first code cell stood
    before, after = (body[: first.start()], CODE_CELL.sub("", body[first.end() :])) if first else (body, "")
    parts = [_raw("# BEGIN QUESTION\n" + yaml.safe_dump(config, sort_keys=False).strip()), exercise]
    parts += [_raw("# BEGIN SOLUTION"), before.strip() + "\n"]
    if codes or question.autograded:
        parts.append(_code(answer_cell(question, "\n\n".join(codes))))
    if after.strip():
        parts.append(after.strip() + "\n")
    parts.append(_raw("# END SOLUTION"))
    if question.autograded:
        parts += [_raw("# BEGIN TESTS"), *map(_code, tests(question)), _raw("# END TESTS")]
    return "".join(parts) + _raw("# END QUESTION")


def master_text(book: Book, md: Path) -> str:
    """The chapter ``md`` as the MyST of an otter master notebook: the configuration first, each exercise and its
    solution replaced by a question, everything else as it is."""
    text = md.read_text()
    solutions = {}
    for m in EXERCISE.finditer(text):
        found = re.search(SOLUTION_OF.format(label=re.escape(m[1])), text, re.S)
        if found is None:
            raise ValueError(f"{md.name}: exercise {m[1]} has no solution-start block")
        solutions[m[1]] = found[0]
    for solution in solutions.values():
        text = text.replace(solution, "")

    def question(m: re.Match) -> str:
        return question_text(Question(m[1], m[1] in CHECKS), m[0], solutions[m[1]])

    text = EXERCISE.sub(question, text)
    config = {
        "name": md.stem,
        "requirements": [book.install_spec],  # for a grading container only; local grading installs nothing
        "export_cell": {"pdf": False},  # a submission is the notebook: no LaTeX or browser needed to export it
    }
    end = text.index("\n---\n", 4) + len("\n---\n")  # after the jupytext header
    return text[:end] + _raw("# ASSIGNMENT CONFIG\n" + yaml.safe_dump(config, sort_keys=False).strip()) + text[end:]


def chapter_source(book: Book, chapter: str) -> Path:
    """The MyST file of ``chapter`` (its name, as in ``gp_sequences``, or its path); raises ``ValueError`` naming the
    parameter, the value and the chapters with exercises when it is not one of them."""
    name = Path(chapter).name.removesuffix(".md")
    choices = {md.stem: md for md in book.chapters() if EXERCISE.search(md.read_text())}
    if name in choices:
        return choices[name]
    why = "has no exercises" if (book.book / f"{name}.md").is_file() else f"is not a chapter of {book.book}"
    raise ValueError(f"chapter {chapter!r} {why}; chapter must be one of {', '.join(sorted(choices))}")


def write_master(chapter: str, out: Path | str, root: Path | str | None = None) -> dict:
    """Write the master notebook of ``chapter`` of the book at ``root`` (default: this checkout) to
    ``out/<chapter>.ipynb``; returns what was written: the path, the autograded and the hand-graded questions."""
    import nbformat

    root = Path(root) if root is not None else ROOT
    if not (root / "_toc.yml").is_file():
        raise ValueError(
            f"book must be a clone of the book's repository (with _toc.yml and book/), got {str(root)!r}: "
            "install gptheory from a clone (pip install -e '.[course]') or pass --book PATH_TO_CLONE"
        )
    book = Book(root)
    md = chapter_source(book, chapter)
    nb = book.notebook(md, master_text(book, md))
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a folder, got the file {str(out)!r}")
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{md.stem}.ipynb"
    path.write_text(nbformat.writes(nb) + "\n")
    labels = [m[1] for m in EXERCISE.finditer(md.read_text())]
    return {
        "chapter": md.stem,
        "master": str(path),
        "autograded": [label for label in labels if label in CHECKS],
        "manual": [label for label in labels if label not in CHECKS],
        "next": f"otter assign --debug {path} {out / 'dist'}",
    }
