"""Regenerate the Colab and student notebooks in book/colab/ from the MyST chapters (the source of truth).

    python .ci/sync_notebooks.py          # write book/colab/<chapter>.ipynb and book/colab/student/<chapter>.ipynb
    python .ci/sync_notebooks.py --check  # exit 1 and name the notebooks that drifted
    python .ci/sync_notebooks.py --student-book DIR  # write the student edition's sources to DIR (.ci/book --student)

The conversion itself -- every MyST role and directive rewritten into plain markdown, the one install cell, the
student notebooks' answer cells and checks -- is :mod:`gptheory.book.myst`, which the otter-grader assignments
(:mod:`gptheory.book.assignment`) share. This script only decides where the notebooks go and whether they drifted.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from gptheory.book import myst

ROOT = Path(__file__).resolve().parent.parent
SOURCE = myst.Book(ROOT)
COLAB = SOURCE.book / "colab"
STUDENT = COLAB / "student"


def write_student_book(out: Path) -> None:
    """The student edition's sources: the book with solutions replaced by answer cells (and checks)."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(ROOT / "book", out / "book", ignore=shutil.ignore_patterns("colab", "__pycache__"))
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, out / name)
    for md in SOURCE.chapters():
        (out / "book" / md.name).write_text(SOURCE.student_text(md.read_text()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report drift; write nothing")
    ap.add_argument("--student-book", type=Path, help="write the student edition's sources to this folder")
    args = ap.parse_args(argv)
    if args.student_book:
        write_student_book(args.student_book)
        return 0
    STUDENT.mkdir(parents=True, exist_ok=True)
    wanted = {}
    for md in SOURCE.chapters():
        wanted[COLAB / f"{md.stem}.ipynb"] = SOURCE.render(md)
        wanted[STUDENT / f"{md.stem}.ipynb"] = SOURCE.render(md, student=True)
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
