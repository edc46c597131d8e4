"""How to cite the book and where it is published: one place for the address, files that agree, a footer that
names the build, and the workflow that publishes the site."""

from __future__ import annotations

import datetime
import shutil
import subprocess
from pathlib import Path

import pybtex.database
import pytest
import yaml
from scripts import load

from gptheory.version import __version__

ROOT = Path(__file__).resolve().parent.parent
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text())


SYNC = load(".ci/sync_repository.py")
FOOTER = load("book/_ext/build_footer.py")


def test_every_file_that_repeats_the_address_or_version_is_in_sync():
    assert SYNC.drifted() == [], "run python .ci/sync_repository.py"


def _copy(tmp_path: Path) -> Path:
    for name in ("_config.yml", "README.md", "gptheory/version.py", "CITATION.cff", "book/cite.bib"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    for md in (ROOT / "book").glob("*.md"):
        shutil.copy(md, tmp_path / "book" / md.name)
    return tmp_path


def test_moving_the_repository_is_one_edit(tmp_path):
    root = _copy(tmp_path)
    old = CONFIG["repository"]["url"]
    config = root / "_config.yml"
    config.write_text(config.read_text().replace(f"url: {old}", "url: https://github.com/Some-Lab/gp-book"))
    stale = {p.relative_to(root).as_posix() for p in SYNC.drifted(root)}
    assert {"_config.yml", "CITATION.cff", "book/cite.bib", "README.md", "book/gp_sequences.md"} <= stale
    assert SYNC.main(["--root", str(root)]) == 0 and SYNC.main(["--root", str(root), "--check"]) == 0
    old_owner = old.split("/")[-2]
    for path in [root / "_config.yml", root / "README.md", root / "CITATION.cff", *root.glob("book/*.*")]:
        assert old_owner not in path.read_text().replace(f"url: {old}", ""), path.name
    assert "baseurl: https://some-lab.github.io/gp-book/" in config.read_text()
    badge = "https://colab.research.google.com/github/Some-Lab/gp-book/blob/main/book/colab/gp_sequences.ipynb"
    assert badge in (root / "book" / "gp_sequences.md").read_text()
    assert 'repository-code: "https://github.com/Some-Lab/gp-book"' in (root / "CITATION.cff").read_text()


def test_a_new_version_reaches_the_citation(tmp_path):
    root = _copy(tmp_path)
    (root / "gptheory" / "version.py").write_text('__version__ = "9.8.7"\n')
    assert SYNC.main(["--root", str(root)]) == 0
    assert yaml.safe_load((root / "CITATION.cff").read_text())["version"] == "9.8.7"
    assert pybtex.database.parse_file(root / "book" / "cite.bib").entries["gptheory_book"].fields["version"] == "9.8.7"


def test_an_address_that_is_not_on_github_is_refused_by_name(tmp_path):
    root = _copy(tmp_path)
    config = root / "_config.yml"
    config.write_text(config.read_text().replace(CONFIG["repository"]["url"], "https://gitlab.com/a/b"))
    with pytest.raises(SystemExit, match="repository.url.*gitlab.com/a/b.*github.com/OWNER/REPO"):
        SYNC.settings(root)


def test_citation_cff_has_what_the_format_requires_and_names_the_paper():
    cff = yaml.safe_load((ROOT / "CITATION.cff").read_text())
    assert cff["cff-version"] == "1.2.0" and cff["message"] and cff["title"] and cff["authors"]
    assert cff["version"] == __version__
    assert cff["repository-code"] == CONFIG["repository"]["url"]
    assert cff["url"] == CONFIG["html"]["baseurl"]
    (paper,) = cff["references"]
    assert paper["year"] == 2025 and [a["family-names"] for a in paper["authors"]] == [
        "Fu",
        "Dou",
        "Guo",
        "Wang",
        "Chen",
    ]


def test_the_landing_page_shows_bibtex_for_the_book_and_for_the_paper():
    bib = pybtex.database.parse_file(ROOT / "book" / "cite.bib")
    assert set(bib.entries) == {"gptheory_book", "fu2025diffusion"}
    assert bib.entries["gptheory_book"].type == "misc"  # plain BibTeX styles know @misc, not biblatex's @software
    assert bib.entries["gptheory_book"].fields["version"] == __version__
    # the paper's entry is the one the chapters cite
    chapters = pybtex.database.parse_file(ROOT / "book" / "references.bib").entries["fu2025diffusion"]
    paper = bib.entries["fu2025diffusion"]
    assert paper.fields["title"] == chapters.fields["title"] and paper.fields["year"] == chapters.fields["year"]
    assert [str(p) for p in paper.persons["author"]] == [str(p) for p in chapters.persons["author"]]
    intro = (ROOT / f"{yaml.safe_load((ROOT / '_toc.yml').read_text())['root']}.md").read_text()
    assert "## How to cite" in intro and "```{literalinclude} cite.bib" in intro


def test_the_footer_names_version_commit_and_date():
    sha = "0123456789abcdef0123456789abcdef01234567"
    text = FOOTER.footer("1.2.3", sha, "https://github.com/o/r/", datetime.date(2026, 12, 5))
    assert "gptheory 1.2.3" in text and "built 2026-12-05" in text
    assert f'href="https://github.com/o/r/commit/{sha}">0123456<' in text
    dirty = FOOTER.footer("1.2.3", sha + " + local changes", "https://github.com/o/r", datetime.date(2026, 12, 5))
    assert "0123456 + local changes" in dirty
    assert "href" not in FOOTER.footer("1.2.3", "unknown", "https://github.com/o/r", datetime.date(2026, 12, 5))


def test_the_commit_comes_from_the_environment_then_git_then_unknown(tmp_path, monkeypatch):
    monkeypatch.delenv(FOOTER.COMMIT_ENV, raising=False)
    assert FOOTER.commit_of(tmp_path) == "unknown"  # not a git checkout
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.txt").write_text("one\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    for args in (["init", "-q"], ["add", "a.txt"], ["commit", "-qm", "one"]):
        subprocess.run([*git, *args], cwd=repo, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True).stdout.strip()
    assert FOOTER.commit_of(repo) == head
    (repo / "a.txt").write_text("two\n")
    assert FOOTER.commit_of(repo) == head + " + local changes"
    monkeypatch.setenv(FOOTER.COMMIT_ENV, "feedface")
    assert FOOTER.commit_of(repo) == "feedface"


def test_the_footer_extension_is_registered():
    assert CONFIG["sphinx"]["local_extensions"]["build_footer"] == "book/_ext"


def test_the_workflow_builds_with_the_book_script_and_publishes_the_html():
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "book.yml").read_text())
    assert flow[True]["push"]["branches"] == ["main"]  # YAML 1.1 reads the key `on` as True
    build = flow["jobs"]["build"]["steps"]
    assert any(step.get("run") == "bash .ci/book" for step in build)
    guard = next(step["run"] for step in build if "sync_repository" in step.get("run", ""))
    assert "github.repository" in guard and "_config.yml" in guard  # a fork with upstream's address fails
    assert any(step.get("with", {}).get("path") == "_build/html" for step in build)
    assert any("deploy-pages" in step.get("uses", "") for step in flow["jobs"]["deploy"]["steps"])
