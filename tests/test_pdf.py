"""The printed book (.ci/print_pdf.py): each edition's PDF has every chapter of _toc.yml in order, its math typeset
(no raw TeX in the text), its figures embedded, the solutions (full book) or none (student edition), a sane number of
pages, an outline, and links into the book that stay inside the PDF.

The PDFs are printed from built HTML books: the ones named by GPTHEORY_BOOK_HTML and GPTHEORY_STUDENT_HTML (what
.ci/test passes, from the builds it checks anyway), else both editions built here in the smoke profile (slow).
A few fast tests of the printing helpers need neither.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import unicodedata
from pathlib import Path

import pytest
from bs4 import BeautifulSoup
from pypdf import PdfReader, PdfWriter
from scripts import load

ROOT = Path(__file__).resolve().parent.parent
MIN_PAGES_PER_CHAPTER, MAX_PAGES_PER_CHAPTER = 3, 60


PRINT = load(".ci/print_pdf.py")
PAGES = PRINT.toc_pages()


def _title(page) -> str:
    """A chapter's title, from the `# ` heading of its source."""
    source = (ROOT / page.rel.removesuffix(".html")).with_suffix(".md").read_text()
    return re.search(r"^# (.+)$", source, re.M).group(1).strip()


# ---------------------------------------------------------------------------------------------------- fast tests
def test_the_pages_are_the_toc_in_order():
    files = re.findall(r"^\s*(?:root|- file):\s*(\S+)", (ROOT / "_toc.yml").read_text(), re.M)
    assert [p.rel for p in PAGES] == [f + ".html" for f in files]
    assert PAGES[0].part is None and all(p.part for p in PAGES[1:])  # the introduction, then the parts


def test_number_pages_numbers_after_the_front_matter_and_labels_alike(tmp_path):
    writer = PdfWriter()
    for _ in range(4):
        writer.add_blank_page(width=595, height=842)
    PRINT.number_pages(writer, first=1)
    path = tmp_path / "numbered.pdf"
    writer.write(path)
    reader = PdfReader(path)
    assert [p.extract_text().strip() for p in reader.pages] == ["", "1", "2", "3"]
    assert reader.page_labels == ["i", "1", "2", "3"]


def test_front_matter_lists_every_section_with_its_page(tmp_path):
    page = PRINT.Page("book/x.html", "Theory", "A chapter", [("a-chapter", 1, "A chapter"), ("two", 2, "Σ & Γ")])
    page.first, page.anchors = 4, {"two": (2, 36.0, 500.0)}
    html = PRINT.front_matter([page], student=True, built="gptheory 9.9 · commit abcdef0 · built 2026-01-02")
    assert "Student edition" in html and "Theory" in html and "commit abcdef0" in html
    assert re.search(r"A chapter</span>.*?<span>5</span>", html)  # first page 4 counts from 0, printed from 1
    assert re.search(r"Σ &amp; Γ</span>.*?<span>7</span>", html)
    assert f'href="{PRINT.BASEURL}book/x.html#two"' in html  # link_inside() makes it a link inside the PDF


def test_the_title_page_names_the_build_the_footers_name(tmp_path):
    page = tmp_path / "intro.html"
    page.write_text('<html><body><p class="build-footer">gptheory 1.0 · commit 0123456 · built 2026-01-02</p></body>')
    assert PRINT.built_from(page) == "gptheory 1.0 · commit 0123456 · built 2026-01-02"
    page.write_text("<html><body>an older build without the footer</body></html>")
    assert PRINT.built_from(page).startswith("gptheory ")  # the version alone


def test_a_missing_build_is_a_clear_error(tmp_path, capsys):
    assert PRINT.main([str(tmp_path), str(tmp_path / "book.pdf")]) == 1
    assert "build the book first" in capsys.readouterr().out
    (tmp_path / "index.html").write_text("")
    with pytest.raises(SystemExit, match="has no book/intro.html"):
        PRINT.main([str(tmp_path), str(tmp_path / "book.pdf")])


# ------------------------------------------------------------------------------------------- the printed books
EDITIONS = {"full": ("GPTHEORY_BOOK_HTML", False), "student": ("GPTHEORY_STUDENT_HTML", True)}


def _build(out: Path) -> dict[str, Path]:
    """Both editions in the smoke profile, as .ci/test builds them."""
    env = {**os.environ, "GPTHEORY_PROFILE": "smoke"}
    for args in (["--path-output", str(out)], ["--student", "--path-output", str(out / "student")]):
        run = subprocess.run(["bash", ".ci/book", *args], cwd=ROOT, env=env, capture_output=True, text=True)
        assert run.returncode == 0, (run.stdout + run.stderr)[-3000:]
    return {"full": out / "_build" / "html", "student": out / "student" / "_build" / "html"}


@pytest.fixture(scope="module")
def printed(tmp_path_factory) -> dict[str, dict]:
    """Each edition: its site, its PDF, what printing it reported, and the PDF's text (code left out: it is
    set in a monospaced font, and code may hold TeX, in a plot's labels)."""
    given = {edition: os.environ.get(var) for edition, (var, _) in EDITIONS.items()}
    if all(given.values()):
        sites = {edition: Path(path) for edition, path in given.items()}
    else:
        sites = _build(tmp_path_factory.mktemp("book"))
    out = tmp_path_factory.mktemp("pdf")
    result = {}
    for edition, (_, student) in EDITIONS.items():
        pdf = out / f"{edition}.pdf"
        problems, summary = PRINT.print_book(sites[edition], pdf, student)
        reader = PdfReader(pdf)
        texts = []
        for page in reader.pages:
            parts: list[str] = []

            def prose(text, cm, tm, font, size, parts=parts):
                if text and "Mono" not in str((font or {}).get("/BaseFont", "")):
                    parts.append(text)

            page.extract_text(visitor_text=prose)
            texts.append("".join(parts))
        result[edition] = {"site": sites[edition], "pdf": pdf, "problems": problems, "summary": summary}
        result[edition] |= {"reader": reader, "texts": texts}
    return result


@pytest.fixture(params=list(EDITIONS))
def edition(request, printed) -> dict:
    return printed[request.param] | {"name": request.param}


def test_printing_reports_no_problem(edition):
    assert not edition["problems"], "\n".join(edition["problems"])


def test_the_page_count_is_sane(printed, edition):
    n = len(edition["reader"].pages)
    assert MIN_PAGES_PER_CHAPTER * len(PAGES) <= n <= MAX_PAGES_PER_CHAPTER * len(PAGES), n
    if edition["name"] == "student":
        assert n < len(printed["full"]["reader"].pages)  # the solutions take pages


def _squash(text: str) -> str:
    """Ligatures as letters (the PDF has "ﬀ"), whitespace as one space, none after a hyphen (a title breaks there)."""
    return re.sub(r"-\s+", "-", re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text)))


def test_every_chapter_title_appears_in_order(edition):
    reader, texts = edition["reader"], edition["texts"]
    first = reader.page_labels.index("1")  # after the title page and the contents
    body = _squash(" ".join(texts[first:]))
    at = -1
    for page in PAGES:
        title = _squash(_title(page))
        found = body.find(title, at + 1)
        assert found > at, f"{title!r} is missing, or out of the order of _toc.yml"
        at = found


def test_no_raw_tex_in_the_text(edition):
    text = "\n".join(edition["texts"])
    raw = [text[max(0, m.start() - 40) : m.end() + 40] for m in PRINT.browser_check.RAW_TEX.finditer(text)]
    assert not raw, raw[:5]
    assert len(text) > 2000 * len(PAGES)  # there is text to look at: the check above cannot pass on an empty PDF


def _images(reader: PdfReader) -> set[str]:
    """The distinct raster images the PDF embeds (image XObjects, in forms too), by content."""
    found, seen = set(), set()

    def walk(resources) -> None:
        for ref in (resources or {}).get("/XObject", {}).values():
            if ref.idnum in seen:
                continue
            seen.add(ref.idnum)
            obj = ref.get_object()
            if obj.get("/Subtype") == "/Image":
                found.add(hashlib.sha1(obj.get_data()).hexdigest())
            elif obj.get("/Subtype") == "/Form":
                walk(obj.get("/Resources"))

    for page in reader.pages:
        walk(page.get("/Resources"))
    return found


def _figures(site: Path) -> set[str]:
    """The distinct raster images of the chapters' content in the HTML (SVG prints as vectors, not as images)."""
    srcs = set()
    for page in PAGES:
        article = BeautifulSoup((site / page.rel).read_text(), "html.parser").find("article")
        for img in article.find_all("img") if article else []:
            src = img.get("src", "")
            if re.search(r"\.(png|jpe?g|gif)$", src, re.I) or src.startswith(("data:image/png", "data:image/jpeg")):
                srcs.add(src)
    return srcs


def test_the_figures_are_embedded(edition):
    figures = _figures(edition["site"])
    assert len(figures) >= len(PAGES)  # the book has figures: the comparison below is not 0 >= 0
    assert len(_images(edition["reader"])) >= len(figures)


def test_the_solutions_are_in_the_full_book_only(edition):
    in_html = sum((edition["site"] / p.rel).read_text().count('class="solution') for p in PAGES)
    printed = sum(t.count("Solution to") for t in edition["texts"])
    if edition["name"] == "full":
        assert in_html > 0 and printed == in_html, (printed, in_html)
    else:
        assert in_html == 0 and printed == 0


def test_outline_and_links_stay_inside_the_pdf(edition):
    reader = edition["reader"]
    titles = set()

    def walk(items) -> None:
        for item in items:
            if isinstance(item, list):
                walk(item)
            else:
                titles.add(item.title)

    walk(reader.outline)
    assert {_title(p) for p in PAGES} <= titles
    chapters = tuple(PRINT.BASEURL + p.rel for p in PAGES)
    internal, out_of_the_pdf = 0, []
    for page in reader.pages:
        for annot in page.get("/Annots", None) or []:
            annot = annot.get_object()
            if "/Dest" in annot:
                internal += 1
            elif str(annot.get("/A", {}).get("/URI", "")).startswith(chapters):
                out_of_the_pdf.append(annot["/A"]["/URI"])
    assert internal > 10 * len(PAGES) and not out_of_the_pdf, (internal, out_of_the_pdf[:5])
