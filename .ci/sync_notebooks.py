"""Regenerate the Colab and student notebooks in book/colab/ from the MyST chapters (the source of truth).

    python .ci/sync_notebooks.py          # write book/colab/<chapter>.ipynb and book/colab/student/<chapter>.ipynb
    python .ci/sync_notebooks.py --check  # exit 1 and name the notebooks that drifted
    python .ci/sync_notebooks.py --student-book DIR  # write the student edition's sources to DIR (.ci/book --student)

The notebooks read as plain notebooks: every MyST role and directive is rewritten into plain markdown
(theorems and exercises as bold-headed paragraphs, citations as "Author (year)" text, cross-references as
links into the HTML book at ``html.baseurl``, glued numbers as their names, which the gluing cell prints
outside a book build). This works on the MyST text, chapter by chapter, in a second: QuantEcon's
sphinx-tojupyter would give the same from the Sphinx doctree, but only after a full build that executes
every chapter, and it has no rule for MyST-NB's glue roles. A role or directive without a rule here stops
the conversion with its name, so a new chapter cannot slip raw MyST into a notebook.

Every notebook starts with the install cell built from ``INSTALL_SPEC`` (the one place that says where
gptheory is installed from; the environment variable ``GPTHEORY_PIP_SOURCE`` overrides it, e.g. with a
wheel of the checkout in the tests). The student notebooks are the same chapters with every solution
removed and an answer cell after each exercise; where ``gptheory.book.exercises`` has a check for the
exercise, the answer cell calls it. Notebooks are written without outputs and with stable metadata, so a
diff means the sources changed.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from functools import cache
from pathlib import Path

import jupytext
import nbformat
import yaml

ROOT = Path(__file__).resolve().parent.parent
BOOK, COLAB = ROOT / "book", ROOT / "book" / "colab"
STUDENT = COLAB / "student"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())
BOOK_URL = CONFIG["html"]["baseurl"].rstrip("/") + "/"
INSTALL_SPEC = f"gptheory[notebooks] @ git+{CONFIG['repository']['url']}@{CONFIG['repository']['branch']}"
INSTALL_ENV = "GPTHEORY_PIP_SOURCE"
INSTALL_CELL = f"""\
# Install gptheory when it is missing (Colab, a fresh kernel); {INSTALL_ENV} may name another source.
import os

try:
    import gptheory
except ModuleNotFoundError:
    source = os.environ.get("{INSTALL_ENV}", "{INSTALL_SPEC}")
    %pip install -q "{{source}}"
    import gptheory"""

SOLUTION = re.compile(r"```\{solution-start\}.*?```\{solution-end\}\n```\n?", re.S)
EXERCISE = re.compile(r"```\{exercise-start\}\s*\n:label: (\S+)\n(?:.*?\n)*?```\{exercise-end\}\n```\n", re.M)
EXERCISE_LABEL = r"^```\{exercise-start\}[^\n]*\n:label: (\S+)"
ANSWER = "# Your answer here"
FENCE = re.compile(
    r"^(?P<fence>`{3,}|:{3,})\{(?P<name>[\w:-]+)\}[ \t]*(?P<arg>[^\n]*)\n"
    r"(?P<opts>(?::[\w-]+:[^\n]*\n)*)(?P<body>.*?)^(?P=fence)[ \t]*$\n?",
    re.S | re.M,
)
LOCAL_BADGE = "](images/colab-badge.svg)"  # the book serves its own copy, so the page reads offline
COLAB_BADGE = "](https://colab.research.google.com/assets/colab-badge.svg)"
ROLE = re.compile(r"\{(?P<name>[\w:-]+)\}`(?P<content>[^`]*)`")
TARGET = re.compile(r"^\(([\w:-]+)\)=[ \t]*\n", re.M)
EQ_LABEL = re.compile(r"^\$\$[ \t]*\((?P<label>[\w:-]+)\)[ \t]*$", re.M)
PROOF_KINDS = {
    "definition",
    "assumption",
    "lemma",
    "theorem",
    "proposition",
    "corollary",
    "remark",
    "example",
    "conjecture",
    "axiom",
    "criterion",
    "algorithm",
    "observation",
    "property",
    "proof",
}
ADMONITIONS = {"note", "tip", "warning", "important", "caution", "attention", "hint", "seealso", "admonition"}


def chapters() -> list[Path]:
    """Every executable chapter: a book/*.md file with a jupytext header."""
    return sorted(p for p in BOOK.glob("*.md") if p.read_text().startswith("---\njupytext:"))


def _toc_order() -> list[Path]:
    """The book's pages in the order of _toc.yml (sphinx-exercise numbers exercises across the book in it)."""

    def files(node) -> list[str]:
        if isinstance(node, dict):
            return ([node["file"]] if "file" in node else []) + [f for v in node.values() for f in files(v)]
        return [f for v in node for f in files(v)] if isinstance(node, list) else []

    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    return [ROOT / f"{f}.md" for f in [toc["root"], *files(toc)]]


def _anchor(label: str) -> str:
    from docutils.nodes import make_id

    return make_id(label)  # the HTML id Sphinx gives a label: chapter-gp_sequences -> chapter-gp-sequences


# ---------------------------------------------------------------- labels, citations


def _plain_title(title: str) -> str:
    return ROLE.sub(lambda m: m["content"].split("<")[0].strip(), title).strip()


@cache
def labels() -> dict[str, tuple[str, str]]:
    """Every label of the book -> (url in the HTML book, link text)."""
    out: dict[str, tuple[str, str]] = {}
    for md in _toc_order():
        text, page = md.read_text(), f"{BOOK_URL}book/{md.stem}.html"
        for m in re.finditer(r"^\(([\w:-]+)\)=[ \t]*\n+#+ (.*)$", text, re.M):
            out[m[1]] = (f"{page}#{_anchor(m[1])}", _plain_title(m[2]))
        for m in re.finditer(r"^```\{prf:(\w+)\}[ \t]*([^\n]*)\n:label: (\S+)", text, re.M):
            kind, title = m[1].capitalize(), _plain_title(m[2])
            out[m[3]] = (f"{page}#{_anchor(m[3])}", f"{kind} ({title})" if title else kind)
        for label, n in exercise_numbers().items():
            if f":label: {label}\n" in text:
                out[label] = (f"{page}#{_anchor(label)}", f"Exercise {n}")
        for n, m in enumerate(EQ_LABEL.finditer(text), 1):
            out[m["label"]] = (f"{page}#equation-{_anchor(m['label'])}", f"({n})")
    return out


@cache
def exercise_numbers() -> dict[str, int]:
    """Exercise label -> its number in the HTML book (one count across the book, in the order of _toc.yml)."""
    found = [m[1] for md in _toc_order() for m in re.finditer(EXERCISE_LABEL, md.read_text(), re.M)]
    return {label: n for n, label in enumerate(found, 1)}


@cache
def citations() -> dict[str, str]:
    """Bibliography key -> 'Author (year)' text."""
    from pybtex.database import parse_file

    out = {}
    for key, entry in parse_file(str(BOOK / "references.bib")).entries.items():
        names = [" ".join(p.last_names) for p in entry.persons.get("author", [])]
        who = names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2 else f"{names[0]} et al."
        out[key] = f"{who} ({entry.fields.get('year', 'n.d.')})"
    return out


# ---------------------------------------------------------------- MyST -> plain markdown


class MystError(ValueError):
    pass


def _role(m: re.Match, doc: str, glued: list[str]) -> str:
    name, content = m["name"], m["content"]
    explicit = re.fullmatch(r"(?P<text>.*?)\s*<(?P<target>[^<>]+)>", content, re.S)
    text, target = (explicit["text"], explicit["target"]) if explicit else (None, content)
    if name.startswith("glue"):
        key = content.split(":", 1)[0]
        glued.append(key)
        return f"`{key}`"
    if name in ("cite", "cite:p", "cite:t"):
        missing = [k for k in target.split(",") if k.strip() not in citations()]
        if missing:
            raise MystError(f"{doc}: citation {missing} is not in book/references.bib")
        return "; ".join(citations()[k.strip()] for k in target.split(","))
    if name == "doc":
        stem = target.removesuffix(".md").split("/")[-1]
        md = BOOK / f"{stem}.md"
        if not md.is_file():
            raise MystError(f"{doc}: {{doc}} target {target} does not exist")
        title = re.search(r"^# (.*)$", md.read_text(), re.M)[1]
        return f"[{text or _plain_title(title)}]({BOOK_URL}book/{stem}.html)"
    if name in ("ref", "prf:ref", "eq", "numref"):
        if target not in labels():
            raise MystError(f"{doc}: label {target} is not defined in any chapter")
        url, label_text = labels()[target]
        return f"[{text or label_text}]({url})"
    if name == "math":
        return f"${content}$"
    if name in ("mod", "func", "class", "meth", "attr", "data", "obj") or name.startswith("py:"):
        return f"`{(text or target).lstrip('~')}`"  # Python objects read as code
    raise MystError(f"{doc}: no rule for the MyST role {{{name}}} (add one to .ci/sync_notebooks.py)")


def _directive(m: re.Match, doc: str, numbers: dict[str, int]) -> str:
    name, arg, body = m["name"], m["arg"].strip(), m["body"].strip("\n")
    opts = dict(re.findall(r"^:([\w-]+):[ \t]*(.*)$", m["opts"], re.M))
    if name.startswith("prf:") and name[4:] in PROOF_KINDS:
        if name == "prf:proof":
            return f"*Proof.* {body} $\\square$\n"
        kind = name[4:].capitalize()
        return f"**{kind}{f' ({arg})' if arg else ''}.** {body}\n"
    if name in ("exercise-start", "exercise"):
        head = f"**Exercise {numbers.get(opts.get('label', ''), '')}**".replace(" **", "**")
        return f"{head}{f' ({arg})' if arg else ''}\n\n{body}\n" if body else f"{head}\n\n"
    if name in ("solution-start", "solution"):
        head = f"**Solution to Exercise {numbers.get(arg, '')}**"
        return f"{head}\n\n{body}\n" if body else f"{head}\n\n"
    if name in ("exercise-end", "solution-end"):
        return ""
    if name in ADMONITIONS:
        title = arg if name == "admonition" else name.capitalize()
        lines = [f"**{title}**", "", *body.splitlines()]
        return "\n".join(f"> {line}".rstrip() for line in lines) + "\n"
    if name == "bibliography":
        return ""
    raise MystError(f"{doc}: no rule for the MyST directive {{{name}}} (add one to .ci/sync_notebooks.py)")


def plain_markdown(text: str, doc: str, numbers: dict[str, int]) -> str:
    """One markdown cell of a chapter, without MyST syntax."""
    text = TARGET.sub("", text).replace(LOCAL_BADGE, COLAB_BADGE)
    for _ in range(5):  # directives may nest
        new = FENCE.sub(lambda m: _directive(m, doc, numbers), text)
        if new == text:
            break
        text = new

    def equation(m: re.Match) -> str:
        return "\\tag{" + labels()[m["label"]][1].strip("()") + "}\n$$"

    text = EQ_LABEL.sub(equation, text)
    blocks = []
    for block in re.split(r"\n{2,}", text):  # paragraph by paragraph, so a pointer follows its numbers
        glued: list[str] = []
        block = ROLE.sub(lambda m, glued=glued: _role(m, doc, glued), block)
        if glued:
            names = ", ".join(f"`{g}`" for g in dict.fromkeys(glued))
            block += f" *({names}: computed and printed by the code cells above.)*"
        blocks.append(block)
    return "\n\n".join(blocks).strip("\n") + "\n"


# ---------------------------------------------------------------- notebooks


def _answer_cell(label: str) -> str:
    from gptheory.book.exercises import CHECKS

    if label not in CHECKS:
        return f"\n```{{code-cell}} ipython3\n{ANSWER}\n```\n"
    return f"\n```{{code-cell}} ipython3\n{ANSWER}\n{CHECKS[label].answer_cell()}\n```\n"


def student_text(text: str) -> str:
    """The chapter without its solutions, with an answer cell after every exercise (and its check, if any)."""
    text = EXERCISE.sub(lambda m: m[0] + _answer_cell(m[1]), text)
    return SOLUTION.sub("", text)


def _is_install_cell(cell) -> bool:
    return cell.cell_type == "code" and "%pip install" in cell.source


def render(md: Path, student: bool = False) -> str:
    text = md.read_text()
    numbers = exercise_numbers()
    nb = jupytext.reads(student_text(text) if student else text, fmt="md:myst")
    cells = [c for c in nb.cells if not _is_install_cell(c)]
    first_code = next((i for i, c in enumerate(cells) if c.cell_type == "code"), len(cells))
    cells.insert(first_code, nbformat.v4.new_code_cell(INSTALL_CELL, metadata={"tags": ["hide-cell"]}))
    nb.cells = cells
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
        elif cell.cell_type == "markdown":
            cell.source = plain_markdown(cell.source, md.name, numbers).rstrip("\n")
    return nbformat.writes(nb) + "\n"


def write_student_book(out: Path) -> None:
    """The student edition's sources: the book with solutions replaced by answer cells (and checks)."""
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(ROOT / "book", out / "book", ignore=shutil.ignore_patterns("colab", "__pycache__"))
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, out / name)
    for md in chapters():
        (out / "book" / md.name).write_text(student_text(md.read_text()))


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
