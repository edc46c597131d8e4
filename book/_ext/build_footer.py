"""The version and commit a page was built from, in every page's footer.

A reader who quotes a number or a figure can say which build it came from, and check it against the commit:
the footer reads "gptheory 0.2.0 · commit 1a2b3c4 · built 2026-12-05", the commit linking to it in the
repository (``repository.url`` of ``_config.yml``). The commit is ``GPTHEORY_BUILD_COMMIT`` when set (``.ci/book``
sets it, because the student edition is built from a copy of the sources outside the git checkout), else what
``git`` says of the source folder, marked "+ local changes" when the checkout differs from it, else "unknown".
"""

from __future__ import annotations

import datetime
import html
import os
import re
import subprocess
from pathlib import Path

from sphinx.application import Sphinx

from gptheory.version import __version__  # the editable install of the checkout the book documents

COMMIT_ENV = "GPTHEORY_BUILD_COMMIT"


def _git(folder: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=10, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip()


def commit_of(folder: Path) -> str:
    """The full commit hash, with " + local changes" for a modified checkout, or "unknown" outside git."""
    if os.environ.get(COMMIT_ENV):
        return os.environ[COMMIT_ENV]
    head = _git(folder, "rev-parse", "HEAD")
    if not head:
        return "unknown"
    dirty = _git(folder, "status", "--porcelain", "--untracked-files=no")
    return head + (" + local changes" if dirty else "")


def footer(version: str, commit: str, repository: str, today: datetime.date) -> str:
    """The footer's HTML: version, short commit linked to the repository, build date."""
    sha = commit.split()[0]
    label = html.escape(commit.replace(sha, sha[:7]))
    if re.fullmatch(r"[0-9a-f]{40}", sha) and repository:
        label = f'<a href="{html.escape(repository.rstrip("/"))}/commit/{sha}">{label}</a>'
    return f'<p class="build-footer">gptheory {html.escape(version)} · commit {label} · built {today.isoformat()}</p>'


def _set_footer(app: Sphinx, config) -> None:
    folder = Path(app.srcdir)
    repository = config.html_theme_options.get("repository_url", "")
    text = footer(__version__, commit_of(folder), repository, datetime.date.today())
    config.html_theme_options["extra_footer"] = text


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _set_footer)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
