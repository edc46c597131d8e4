"""Regenerate the Colab notebooks in book/colab/ from the MyST chapters (the source of truth).

    python .ci/sync_notebooks.py          # write book/colab/<chapter>.ipynb for every chapter
    python .ci/sync_notebooks.py --check  # exit 1 and name the notebooks that drifted

Notebooks are written without outputs and with stable metadata, so a diff means the sources changed.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parent.parent
BOOK, COLAB = ROOT / "book", ROOT / "book" / "colab"


def chapters() -> list[Path]:
    """Every executable chapter: a book/*.md file with a jupytext header."""
    return sorted(p for p in BOOK.glob("*.md") if p.read_text().startswith("---\njupytext:"))


def render(md: Path) -> str:
    nb = jupytext.read(md)
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
    COLAB.mkdir(exist_ok=True)
    wanted = {md.stem: render(md) for md in chapters()}
    drift = [
        name
        for name, text in wanted.items()
        if not (COLAB / f"{name}.ipynb").is_file() or (COLAB / f"{name}.ipynb").read_text() != text
    ]
    stale = [p.name for p in COLAB.glob("*.ipynb") if p.stem not in wanted]
    if args.check:
        for name in drift:
            print(f"book/colab/{name}.ipynb is out of date with book/{name}.md")
        for name in stale:
            print(f"book/colab/{name} has no chapter in book/")
        if drift or stale:
            print("run: python .ci/sync_notebooks.py")
            return 1
        return 0
    for name in drift:
        (COLAB / f"{name}.ipynb").write_text(wanted[name])
        print(f"wrote book/colab/{name}.ipynb")
    for name in stale:
        (COLAB / name).unlink()
        print(f"removed book/colab/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
