"""The book's MyST chapters as plain notebooks: the one conversion the Colab, student and assignment notebooks share.

    from gptheory.book.myst import Book
    book = Book(root)                       # a checkout: _config.yml, _toc.yml, book/*.md, book/references.bib
    nb = book.notebook(root / "book" / "gp_sequences.md")        # an nbformat notebook, no MyST left in it
    text = book.render(root / "book" / "gp_sequences.md", student=True)  # the student notebook, as written

The notebooks read as plain notebooks: every MyST role and directive is rewritten into plain markdown
(theorems and exercises as bold-headed paragraphs, citations as "Author (year)" text, cross-references as
links into the HTML book at ``html.baseurl``, glued numbers as their names, which the gluing cell prints
outside a book build). This works on the MyST text, chapter by chapter, in a second: QuantEcon's
sphinx-tojupyter would give the same from the Sphinx doctree, but only after a full build that executes
every chapter, and it has no rule for MyST-NB's glue roles. A role or directive without a rule here stops
the conversion with its name (:class:`MystError`), so a new chapter cannot slip raw MyST into a notebook.

Every notebook starts with the install cell built from the repository named in ``_config.yml`` (the one place
that says where gptheory is installed from; the environment variable ``GPTHEORY_PIP_SOURCE`` overrides it, e.g.
with a wheel of the checkout in the tests). Student notebooks are the chapters with every solution removed and
an answer cell after each exercise; where :mod:`gptheory.book.exercises` has a check for the exercise, the
answer cell calls it. Notebooks have no outputs and stable metadata, so a diff means the sources changed.
``.ci/sync_notebooks.py`` writes the Colab and student notebooks with this; :mod:`gptheory.book.assignment`
builds otter-grader assignments on it. Needs jupytext, nbformat, PyYAML, docutils and pybtex (the ``book`` and
``course`` extras).
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import Any

import yaml

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
INSTALL_ENV = "GPTHEORY_PIP_SOURCE"
INSTALL_CELL = """\
# Install gptheory when it is missing (Colab, a fresh kernel); {env} may name another source.
import os

try:
    import gptheory
except ModuleNotFoundError:
    source = os.environ.get("{env}", "{spec}")
    %pip install -q "{{source}}"
    import gptheory"""


class MystError(ValueError):
    """A MyST role or directive the conversion has no rule for, or a reference to nothing."""


def _anchor(label: str) -> str:
    from docutils.nodes import make_id

    return make_id(label)  # the HTML id Sphinx gives a label: chapter-gp_sequences -> chapter-gp-sequences


def _plain_title(title: str) -> str:
    return ROLE.sub(lambda m: m["content"].split("<")[0].strip(), title).strip()


def _is_install_cell(cell: Any) -> bool:
    return cell.cell_type == "code" and "%pip install" in cell.source


class Book:
    """The chapters of the Jupyter Book at ``root`` and their conversion into plain notebooks."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)
        self.book = self.root / "book"
        self.config = yaml.safe_load((self.root / "_config.yml").read_text())
        self.url = self.config["html"]["baseurl"].rstrip("/") + "/"
        repo = self.config["repository"]
        self.install_spec = f"gptheory[notebooks] @ git+{repo['url']}@{repo['branch']}"
        self.install_cell = INSTALL_CELL.format(env=INSTALL_ENV, spec=self.install_spec)

    def chapters(self) -> list[Path]:
        """Every executable chapter: a book/*.md file with a jupytext header."""
        return sorted(p for p in self.book.glob("*.md") if p.read_text().startswith("---\njupytext:"))

    def toc(self) -> list[tuple[str, str | None]]:
        """Every page of the jb-book _toc.yml in order (the root, then each chapter and its nested sections): its
        file without suffix and the caption of its part (None outside parts)."""
        toc = yaml.safe_load((self.root / "_toc.yml").read_text())
        out: list[tuple[str, str | None]] = [(toc["root"], None)]

        def walk(entries: list[dict], part: str | None) -> None:
            for entry in entries:
                if "file" in entry:
                    out.append((entry["file"], part))
                walk(entry.get("sections", []), part)

        walk(toc.get("chapters", []), None)
        for part in toc.get("parts", []):
            walk(part.get("chapters", []), part.get("caption"))
        return out

    def toc_order(self) -> list[Path]:
        """The book's pages in the order of _toc.yml (sphinx-exercise numbers exercises across the book in it)."""
        return [self.root / f"{file}.md" for file, _ in self.toc()]

    # ------------------------------------------------------------ labels, citations

    def labels(self) -> dict[str, tuple[str, str]]:
        """Every label of the book -> (url in the HTML book, link text)."""
        return self._labels

    @cached_property
    def _labels(self) -> dict[str, tuple[str, str]]:
        out: dict[str, tuple[str, str]] = {}
        for md in self.toc_order():
            text, page = md.read_text(), f"{self.url}book/{md.stem}.html"
            for m in re.finditer(r"^\(([\w:-]+)\)=[ \t]*\n+#+ (.*)$", text, re.M):
                out[m[1]] = (f"{page}#{_anchor(m[1])}", _plain_title(m[2]))
            for m in re.finditer(r"^```\{prf:(\w+)\}[ \t]*([^\n]*)\n:label: (\S+)", text, re.M):
                kind, title = m[1].capitalize(), _plain_title(m[2])
                out[m[3]] = (f"{page}#{_anchor(m[3])}", f"{kind} ({title})" if title else kind)
            for label, n in self.exercise_numbers().items():
                if f":label: {label}\n" in text:
                    out[label] = (f"{page}#{_anchor(label)}", f"Exercise {n}")
            for n, m in enumerate(EQ_LABEL.finditer(text), 1):
                out[m["label"]] = (f"{page}#equation-{_anchor(m['label'])}", f"({n})")
        return out

    def exercise_numbers(self) -> dict[str, int]:
        """Exercise label -> its number in the HTML book (one count across the book, in the order of _toc.yml)."""
        return self._exercise_numbers

    @cached_property
    def _exercise_numbers(self) -> dict[str, int]:
        found = [m[1] for md in self.toc_order() for m in re.finditer(EXERCISE_LABEL, md.read_text(), re.M)]
        return {label: n for n, label in enumerate(found, 1)}

    @cached_property
    def citations(self) -> dict[str, str]:
        """Bibliography key -> 'Author (year)' text."""
        from pybtex.database import parse_file

        out = {}
        for key, entry in parse_file(str(self.book / "references.bib")).entries.items():
            names = [" ".join(p.last_names) for p in entry.persons.get("author", [])]
            who = names[0] if len(names) == 1 else " and ".join(names) if len(names) == 2 else f"{names[0]} et al."
            out[key] = f"{who} ({entry.fields.get('year', 'n.d.')})"
        return out

    # ------------------------------------------------------------ MyST -> plain markdown

    def _role(self, m: re.Match, doc: str, glued: list[str]) -> str:
        name, content = m["name"], m["content"]
        explicit = re.fullmatch(r"(?P<text>.*?)\s*<(?P<target>[^<>]+)>", content, re.S)
        text, target = (explicit["text"], explicit["target"]) if explicit else (None, content)
        if name.startswith("glue"):
            key = content.split(":", 1)[0]
            glued.append(key)
            return f"`{key}`"
        if name in ("cite", "cite:p", "cite:t"):
            missing = [k for k in target.split(",") if k.strip() not in self.citations]
            if missing:
                raise MystError(f"{doc}: citation {missing} is not in book/references.bib")
            return "; ".join(self.citations[k.strip()] for k in target.split(","))
        if name == "doc":
            stem = target.removesuffix(".md").split("/")[-1]
            md = self.book / f"{stem}.md"
            if not md.is_file():
                raise MystError(f"{doc}: {{doc}} target {target} does not exist")
            title = re.search(r"^# (.*)$", md.read_text(), re.M)[1]
            return f"[{text or _plain_title(title)}]({self.url}book/{stem}.html)"
        if name in ("ref", "prf:ref", "eq", "numref"):
            if target not in self.labels():
                raise MystError(f"{doc}: label {target} is not defined in any chapter")
            url, label_text = self.labels()[target]
            return f"[{text or label_text}]({url})"
        if name == "math":
            return f"${content}$"
        if name in ("mod", "func", "class", "meth", "attr", "data", "obj") or name.startswith("py:"):
            return f"`{(text or target).lstrip('~')}`"  # Python objects read as code
        raise MystError(f"{doc}: no rule for the MyST role {{{name}}} (add one to gptheory/book/myst.py)")

    @staticmethod
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
        raise MystError(f"{doc}: no rule for the MyST directive {{{name}}} (add one to gptheory/book/myst.py)")

    def plain_markdown(self, text: str, doc: str, numbers: dict[str, int]) -> str:
        """One markdown cell of a chapter, without MyST syntax."""
        text = TARGET.sub("", text).replace(LOCAL_BADGE, COLAB_BADGE)
        for _ in range(5):  # directives may nest
            new = FENCE.sub(lambda m: self._directive(m, doc, numbers), text)
            if new == text:
                break
            text = new

        def equation(m: re.Match) -> str:
            return "\\tag{" + self.labels()[m["label"]][1].strip("()") + "}\n$$"

        text = EQ_LABEL.sub(equation, text)
        blocks = []
        for block in re.split(r"\n{2,}", text):  # paragraph by paragraph, so a pointer follows its numbers
            glued: list[str] = []
            block = ROLE.sub(lambda m, glued=glued: self._role(m, doc, glued), block)
            if glued:
                names = ", ".join(f"`{g}`" for g in dict.fromkeys(glued))
                block += f" *({names}: computed and printed by the code cells above.)*"
            blocks.append(block)
        return "\n\n".join(blocks).strip("\n") + "\n"

    # ------------------------------------------------------------ notebooks

    @staticmethod
    def student_text(text: str) -> str:
        """The chapter without its solutions, with an answer cell after every exercise (and its check, if any)."""
        from .exercises import CHECKS

        def answer_cell(label: str) -> str:
            check = f"\n{CHECKS[label].answer_cell()}" if label in CHECKS else ""
            return f"\n```{{code-cell}} ipython3\n{ANSWER}{check}\n```\n"

        return SOLUTION.sub("", EXERCISE.sub(lambda m: m[0] + answer_cell(m[1]), text))

    def notebook(self, md: Path, text: str | None = None) -> Any:
        """The chapter ``md`` (or ``text``, a MyST version of it) as a plain ``nbformat`` notebook: the install cell
        before the first code cell, markdown without MyST, no outputs, cell ids ``<chapter>-<index>``."""
        import jupytext
        import nbformat

        numbers = self.exercise_numbers()
        nb = jupytext.reads(md.read_text() if text is None else text, fmt="md:myst")
        cells = [c for c in nb.cells if not _is_install_cell(c)]
        first_code = next((i for i, c in enumerate(cells) if c.cell_type == "code"), len(cells))
        cells.insert(first_code, nbformat.v4.new_code_cell(self.install_cell, metadata={"tags": ["hide-cell"]}))
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
                cell.source = self.plain_markdown(cell.source, md.name, numbers).rstrip("\n")
        return nb

    def render(self, md: Path, student: bool = False) -> str:
        """The Colab notebook of the chapter ``md`` (``student``: its student notebook) as the text written to disk."""
        import nbformat

        text = self.student_text(md.read_text()) if student else None
        return nbformat.writes(self.notebook(md, text)) + "\n"
