"""Write every file that repeats the repository's address or the package's version, from the one place of each.

    python .ci/sync_repository.py          # rewrite what drifted
    python .ci/sync_repository.py --check  # exit 1 and name the files that drifted (.ci/test runs this)

The repository's address and branch live in ``_config.yml`` (``repository.url``, ``repository.branch``) and the
version in ``gptheory/version.py``. Everything else is derived from them here:

- ``_config.yml``'s ``html.baseurl``: the published site, ``https://OWNER.github.io/REPO/`` (GitHub Pages);
- the *Open in Colab* badge of every chapter, the student-notebook address in ``book/intro.md`` and the
  ``pip install "gptheory @ git+..."`` line of the README;
- ``CITATION.cff`` (GitHub's "Cite this repository" box, Zenodo) and ``book/cite.bib``, the BibTeX that the landing
  page's "How to cite" section shows: one entry for the book and package, one for the paper.

Moving the repository (a fork, a new owner) is one edit of ``_config.yml`` and one run of this script; the Colab
and student notebooks follow with ``python .ci/sync_notebooks.py``.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
GITHUB = re.compile(r"^https://github\.com/(?P<owner>[\w.-]+)/(?P<repo>[\w.-]+?)/?$")
COLAB = "https://colab.research.google.com/github"

# The paper, as the book cites it (book/references.bib holds the same entry for the chapters' citations).
PAPER = {
    "key": "fu2025diffusion",
    "title": "Diffusion Transformer Captures Spatial-Temporal Dependencies: A Theory for Gaussian Process Data",
    "authors": [("Hengyu", "Fu"), ("Zehao", "Dou"), ("Jiawei", "Guo"), ("Mengdi", "Wang"), ("Minshuo", "Chen")],
    "conference": "International Conference on Learning Representations (ICLR)",
    "year": 2025,
}


def settings(root: Path = ROOT) -> dict[str, str]:
    """The one place's values and what follows from them: url, branch, owner, repo, pages, title, version."""
    config = yaml.safe_load((root / "_config.yml").read_text())
    url, branch = config["repository"]["url"], config["repository"]["branch"]
    m = GITHUB.match(url)
    if m is None:
        raise SystemExit(f"_config.yml: repository.url = {url!r} is not a GitHub address https://github.com/OWNER/REPO")
    version = re.search(r'__version__ = "([^"]+)"', (root / "gptheory" / "version.py").read_text())[1]
    return {
        "url": url.rstrip("/"),
        "branch": branch,
        "owner": m["owner"],
        "repo": m["repo"],
        "pages": f"https://{m['owner'].lower()}.github.io/{m['repo']}/",
        "title": config["title"],
        "author": config["author"],
        "version": version,
    }


def citation_cff(s: dict[str, str]) -> str:
    """CITATION.cff (format 1.2.0): the book and package, with the paper as the preferred citation's companion."""
    authors = "".join(f'  - family-names: "{last}"\n    given-names: "{first}"\n' for first, last in PAPER["authors"])
    return f"""\
# Written by .ci/sync_repository.py from _config.yml and gptheory/version.py: edit those, then run it.
cff-version: 1.2.0
message: "If you use this book or the gptheory package, please cite it as below, and cite the paper it follows."
type: software
title: "gptheory: {s["title"]}"
abstract: "An executable textbook, and the Python package behind it, for the paper '{PAPER["title"]}'."
authors:
  - name: "{s["author"]}"
version: "{s["version"]}"
license: MIT
repository-code: "{s["url"]}"
url: "{s["pages"]}"
keywords: [diffusion models, transformers, Gaussian processes, Jupyter Book]
references:
  - type: conference-paper
    title: "{PAPER["title"]}"
    authors:
{_indent(authors, 4)}    conference:
      name: "{PAPER["conference"]}"
    year: {PAPER["year"]}
"""


def _indent(text: str, spaces: int) -> str:
    return "".join(" " * spaces + line + "\n" for line in text.splitlines())


def cite_bib(s: dict[str, str]) -> str:
    """The BibTeX the landing page shows: the book (with its version) and the paper."""
    paper_authors = " and ".join(f"{last}, {first}" for first, last in PAPER["authors"])
    return f"""\
@misc{{gptheory_book,
  title   = {{gptheory: {s["title"]}}},
  author  = {{{{{s["author"]}}}}},
  version = {{{s["version"]}}},
  url     = {{{s["pages"]}}},
  note    = {{Executable textbook and Python package, {s["url"]}}}
}}

@inproceedings{{{PAPER["key"]},
  title     = {{{PAPER["title"]}}},
  author    = {{{paper_authors}}},
  booktitle = {{{PAPER["conference"]}}},
  year      = {{{PAPER["year"]}}}
}}
"""


def rewrites(s: dict[str, str]) -> list[tuple[str, re.Pattern, str]]:
    """(file glob, pattern, replacement) for the places that quote the address inside a hand-written file."""
    notebooks = f"{COLAB}/{s['owner']}/{s['repo']}/blob/{s['branch']}/book/colab/"
    return [
        ("_config.yml", re.compile(r"(?<=^  baseurl: ).*$", re.M), s["pages"]),
        ("book/*.md", re.compile(re.escape(COLAB) + r"/[^)\s`]*?/book/colab/"), notebooks),
        ("README.md", re.compile(r"git\+https://github\.com/[\w.-]+/[\w.-]+"), f"git+{s['url']}"),
    ]


def expected(root: Path = ROOT) -> dict[Path, str]:
    """Every managed file's path and the text it should have."""
    s = settings(root)
    out = {root / "CITATION.cff": citation_cff(s), root / "book" / "cite.bib": cite_bib(s)}
    for glob, pattern, replacement in rewrites(s):
        for path in sorted(root.glob(glob)):
            text = out.get(path, path.read_text())
            out[path] = pattern.sub(lambda _, r=replacement: r, text)
    return out


def drifted(root: Path = ROOT) -> list[Path]:
    """The managed files whose text differs from what the one place says."""
    return [p for p, text in expected(root).items() if not p.is_file() or p.read_text() != text]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="only report the files that drifted; exit 1 if any")
    ap.add_argument("--root", type=Path, default=ROOT, help="the repository to work on (default: this one)")
    args = ap.parse_args(argv)
    stale = drifted(args.root)
    if args.check:
        for p in stale:
            print(f"{p.relative_to(args.root)} differs from _config.yml and version.py: run .ci/sync_repository.py")
        return 1 if stale else 0
    for path, text in expected(args.root).items():
        if path in stale:
            path.write_text(text)
            print(f"wrote {path.relative_to(args.root)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
