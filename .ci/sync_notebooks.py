"""Regenerate the Colab notebooks in book/colab/ from the MyST chapters (the source of truth).

    python .ci/sync_notebooks.py          # write book/colab/<chapter>.ipynb and book/colab/student/<chapter>.ipynb
    python .ci/sync_notebooks.py --check  # exit 1 and name the notebooks that drifted

The student notebooks are the same chapters with every solution removed and an empty answer cell after
each exercise, for handing a chapter out as an assignment. Notebooks are written without outputs and
with stable metadata, so a diff means the sources changed.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
BOOK, COLAB = ROOT / "book", ROOT / "book" / "colab"
STUDENT = COLAB / "student"
SOLUTION = re.compile(r"```\{solution-start\}.*?```\{solution-end\}\n```\n?", re.S)
EXERCISE_END = "```{exercise-end}\n```\n"
ANSWER = "\n```{code-cell} ipython3\n# Your answer here\n```\n"


def chapters() -> list[Path]:
    """Every executable chapter: a book/*.md file with a jupytext header."""
    return sorted(p for p in BOOK.glob("*.md") if p.read_text().startswith("---\njupytext:"))


def student_text(text: str) -> str:
    """The chapter without its solutions, with an empty answer cell after every exercise."""
    return SOLUTION.sub("", text.replace(EXERCISE_END, EXERCISE_END + ANSWER))


def render(md: Path, student: bool = False) -> str:
    text = md.read_text()
    nb = jupytext.reads(student_text(text) if student else text, fmt="md:myst")
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
        "colab": {"provenance": [], "name": md.stem},
    }
    for i, cell in enumerate(nb.cells):
        cell.metadata.pop("lines_to_next_cell", None)
        cell["id"] = f"{md.stem[:40]}-{i}"
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return nbformat.writes(nb) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report drift; write nothing")
    args = ap.parse_args(argv)
    STUDENT.mkdir(parents=True, exist_ok=True)
    wanted = {}
    for md in chapters():
        wanted[COLAB / f"{md.stem}.ipynb"] = render(md)
        wanted[STUDENT / f"{md.stem}.ipynb"] = render(md, student=True)
    drift = [p for p, text in wanted.items() if not p.is_file() or p.read_text() != text]
    stale = [p for p in [*COLAB.glob("*.ipynb"), *STUDENT.glob("*.ipynb")] if p not in wanted]
    if args.check:
        for p in drift:
            print(f"{p.relative_to(ROOT)} is out of date with book/{p.stem}.md")
        for p in stale:
            print(f"{p.relative_to(ROOT)} has no chapter in book/")
        if drift or stale:
            print("run: python .ci/sync_notebooks.py")
            return 1
        return 0
    for p in drift:
        p.write_text(wanted[p])
        print(f"wrote {p.relative_to(ROOT)}")
    for p in stale:
        p.unlink()
        print(f"removed {p.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
