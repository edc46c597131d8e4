"""Print the built HTML book to one PDF with headless Chromium, offline: every page of _toc.yml, in its order.

    python .ci/print_pdf.py _build/html _build/pdf/gptheory.pdf                                 # the full book
    python .ci/print_pdf.py _build/student/_build/html _build/pdf/gptheory-student.pdf --student
    bash .ci/book --pdf      # builds both editions' HTML, then prints both to _build/pdf/

Each page is opened in the headless Chromium of .ci/browser_check.py (every host but the local server
unreachable), MathJax is left to finish typesetting, every image is loaded, every solution dropdown is opened
(the full book; the student edition has none), and the page is printed through the DevTools command
Page.printToPDF with the theme's own print style (no header, sidebars or navigation) plus the few rules in
PRINT_CSS (code wraps instead of scrolling). pypdf then (.ci/pdf_join.py) joins the pages behind a title page and
a table of contents, numbers the pages, and builds the outline (bookmarks: parts, chapters, sections). Links stay links:
one to another chapter of the book jumps to its target inside the PDF (a cross-reference, a citation, an entry
of the contents), one out of the book (Colab, the repository) stays a web link, and one to an HTML page the
PDF does not have (the index, the search) goes to the published book at html.baseurl.

Needs Chromium and chromedriver (.ci/system) and pypdf (.ci/requirements.txt). Exits 1, naming the problem,
when the build is missing or a page does not print cleanly (MathJax failed, an image did not load, a solution
stayed closed).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime
import html as html_escape
import io
import sys
import time
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

from bs4 import BeautifulSoup
from pypdf import PdfReader, PdfWriter
from selenium.common.exceptions import WebDriverException

from gptheory.book import myst
from gptheory.version import __version__

sys.path.insert(0, str(Path(__file__).resolve().parent))
import browser_check  # noqa: E402  (.ci/ is not a package: the browser and the local server come from here)
from pdf_join import Page, explicit_destinations, link_inside, number_pages, outline  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BOOK = myst.Book(ROOT)  # the converter's view of the sources: _config.yml, _toc.yml and the published address
CONFIG, BASEURL = BOOK.config, BOOK.url

# A4, with room at the bottom for the page number that number_pages() writes
PAPER = {"paperWidth": 8.27, "paperHeight": 11.69, "marginTop": 0.6, "marginBottom": 0.7}
PAPER |= {"marginLeft": 0.6, "marginRight": 0.6}

# Added to the theme's print style (sphinx-book-theme's _print.scss already hides the header, the sidebars and the
# navigation, shows the page title and the page's contents): a printed page cannot scroll, so code and wide
# outputs wrap instead, nothing fades in, no box casts a shadow, and a figure, a table or a box's title is not cut
# in two.
PRINT_CSS = """
@media print {
  *, *::before, *::after { transition: none !important; animation: none !important; }
  /* Chromium rasterises a shadow: an image per box, 3 MB in all. :not(#_) outranks the theme's !important */
  *:not(#_) { box-shadow: none !important; }
  pre { white-space: pre-wrap !important; overflow-wrap: anywhere; overflow: visible !important; }
  div.highlight, div.cell_output, div.output, .cell_output pre, mjx-container[display="true"] {
    overflow: visible !important; max-height: none !important;
  }
  img, figure, table, tr, .admonition-title, mjx-container[display="true"] { break-inside: avoid; }
  /* the theme keeps a code block whole (div.highlight): keep its bordered box with it, or the box stays behind */
  div.cell_input { break-inside: avoid; }
  h1, h2, h3, h4, .admonition-title, figcaption { break-after: avoid; }
  button.toggle-button, button.copybtn, a.headerlink, .prev-next-area, .bd-footer, .bd-footer-article,
  #pst-back-to-top, .skip-link { display: none !important; }
}
"""

# Run in the page once MathJax is done. Adds PRINT_CSS, opens every solution with sphinx-togglebutton's own button,
# asks Chromium for a named destination at every section and at every id in arguments[1] (it writes one for each
# target of an in-page link, so a hidden in-page link to each is enough), points links to other pages at the
# published book (link_inside() makes those into this PDF internal), and returns the page's sections, the title
# first, with their math as text (MathJax's assistive MathML).
PREPARE = """
const [css, targets, baseurl] = arguments;
const style = document.createElement("style");
style.textContent = css;
document.head.appendChild(style);
document.querySelectorAll(".admonition.toggle.toggle-hidden > .admonition-title > button.toggle-button")
    .forEach(b => b.click());
const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
const text = el => {
    const copy = el.cloneNode(true);
    copy.querySelectorAll("a.headerlink").forEach(e => e.remove());
    copy.querySelectorAll("mjx-container").forEach(m => {
        const mml = m.querySelector("mjx-assistive-mml");
        m.replaceWith(mml ? mml.textContent : "");
    });
    return copy.textContent.replace(/\\s+/g, " ").trim();
};
const sections = [];
for (const s of article.querySelectorAll("section[id]")) {
    const h = s.querySelector(":scope > h1, :scope > h2, :scope > h3");
    if (h) sections.push([s.id, Number(h.tagName[1]), text(h)]);
}
const hidden = document.createElement("div");
hidden.style.display = "none";
for (const id of targets.concat(sections.map(s => s[0]))) {
    const a = document.createElement("a");
    a.href = "#" + id;
    hidden.appendChild(a);
}
document.body.appendChild(hidden);
for (const a of document.querySelectorAll("a[href]")) {
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || url.pathname === location.pathname) continue;
    a.href = baseurl + url.pathname.replace(/^\\//, "") + url.hash;
}
return {
    sections: sections,
    closed: document.querySelectorAll(".solution.toggle-hidden").length,
};
"""

# Run in the page laid out as it will print (fit_math). MathJax 3 does not break a displayed formula into lines, and a
# formula wider than the printed column would be cut at both edges: scale each one down to the column's width.
FIT_MATH = """
let scaled = 0;
for (const c of document.querySelectorAll('mjx-container[display="true"]')) {
    const math = c.querySelector("mjx-math"), box = c.parentElement, style = getComputedStyle(box);
    const room = box.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
    const need = math ? math.getBoundingClientRect().width : 0;
    if (room > 0 && need > room) {
        c.style.fontSize = (parseFloat(getComputedStyle(c).fontSize) * 0.98 * room / need) + "px";
        scaled++;
    }
}
return scaled;
"""


def toc_pages() -> list[Page]:
    """The root and every chapter (and nested section file) of _toc.yml, in order, with its part."""
    return [Page(file + ".html", part) for file, part in BOOK.toc()]


def cross_targets(html: Path, pages: list[Page]) -> dict[str, set[str]]:
    """For each page, the ids that links on the other pages point at (they need a destination in its PDF)."""
    rels = {p.rel for p in pages}
    targets: dict[str, set[str]] = {rel: set() for rel in rels}
    for page in pages:
        soup = BeautifulSoup((html / page.rel).read_text(), "html.parser")
        for a in soup.find_all("a", href=True):
            if urlparse(a["href"]).scheme:
                continue
            url, anchor = urldefrag(urljoin("http://book/" + page.rel, a["href"]))
            rel = unquote(urlparse(url).path).lstrip("/")
            if anchor and rel != page.rel and rel in rels:
                targets[rel].add(anchor)
    return targets


def print_page(driver, url: str, targets: set[str], student: bool) -> tuple[bytes, dict, list[str]]:
    """Load one page, make it ready to print, and print it: (the PDF, what PREPARE returned, problems)."""
    problems = []
    driver.get(url)
    browser_check.WebDriverWait(driver, 30).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )
    driver.set_script_timeout(60)
    state = driver.execute_async_script(browser_check.WAIT_MATHJAX)
    if state not in ("ok", "no MathJax"):
        problems.append(f"math not typeset ({state})")
    for _ in range(100):
        images = driver.execute_script(browser_check.IMAGES)
        if all(done for _, done, _ in images):
            break
        time.sleep(0.1)
    problems += [f"image not loaded: {src}" for src, done, width in images if not done or width == 0]
    info = driver.execute_script(PREPARE, PRINT_CSS, sorted(targets), BASEURL)
    if info["closed"]:
        problems.append(f"{info['closed']} solution dropdown(s) stayed closed")
    if student and driver.find_elements(browser_check.By.CSS_SELECTOR, "div.solution"):
        problems.append("the student edition has a solution")
    info["scaled"] = fit_math(driver)
    pdf = driver.execute_cdp_cmd("Page.printToPDF", {"printBackground": True, **PAPER})
    return base64.b64decode(pdf["data"]), info, problems


def fit_math(driver) -> int:
    """Lay the page out as it prints (print media, the paper's column width), run FIT_MATH, put the screen back."""
    width = round((PAPER["paperWidth"] - PAPER["marginLeft"] - PAPER["marginRight"]) * 96)
    driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": "print"})
    metrics = {"width": width, "height": 1200, "deviceScaleFactor": 1, "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        return driver.execute_script(FIT_MATH)
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
        driver.execute_cdp_cmd("Emulation.setEmulatedMedia", {"media": ""})


def built_from(page: Path) -> str:
    """What the page's footer says it was built from (book/_ext/build_footer.py): version, commit and date."""
    footer = BeautifulSoup(page.read_text(), "html.parser").select_one("p.build-footer")
    return footer.get_text(" ", strip=True) if footer else f"gptheory {__version__}"


def front_matter(pages: list[Page], student: bool, built: str) -> str:
    """The title page and the table of contents (part, chapter and section titles with their page numbers);
    ``built``: the build the pages came from, as their footer names it."""
    esc = html_escape.escape
    edition = "Student edition: exercises without their solutions" if student else "With the solutions"
    rows, part = [], None
    for page in pages:
        if page.part and page.part != part:
            part = page.part
            rows.append(f'<div class="part">{esc(part)}</div>')
        for i, (sid, level, title) in enumerate(page.sections):
            if level > 2 or (i and level < 2):
                continue
            index = page.anchors.get(sid, (0, 0, 0))[0] if i else 0
            number = page.first + index + 1  # page.first counts from the first chapter here
            cls = "chapter" if i == 0 else "section"
            href = esc(BASEURL + page.rel + ("#" + sid if i else ""))
            rows.append(
                f'<a class="{cls}" href="{href}"><span>{esc(title)}</span><span class="dots"></span>'
                f"<span>{number}</span></a>"
            )
    return f"""<!doctype html><html><head><meta charset="utf-8"><style>
body {{ font-family: sans-serif; color: #222; font-size: 11pt; }}
.title {{ height: 9.5in; display: flex; flex-direction: column; justify-content: center; text-align: center;
         break-after: page; }}
.title h1 {{ font-size: 30pt; font-weight: 400; margin: 0 0 1em; }}
.title p {{ margin: 0.3em; }}
h2 {{ font-size: 22pt; font-weight: 400; }}
a {{ color: inherit; text-decoration: none; }}
.toc a {{ display: flex; align-items: baseline; break-inside: avoid; }}
.toc .dots {{ flex: 1; border-bottom: 1px dotted #999; margin: 0 0.4em; }}
.part {{ font-weight: 700; margin: 1.2em 0 0.3em; break-after: avoid; }}
.chapter {{ margin: 0.5em 0 0.1em; }}
.section {{ margin: 0.05em 0 0.05em 1.5em; font-size: 10pt; color: #444; }}
</style></head><body>
<section class="title">
<h1>{esc(CONFIG["title"])}</h1>
<p>{esc(CONFIG["author"])}</p>
<p>{edition}</p>
<p>{esc(built)}, printed {datetime.date.today().isoformat()}</p>
<p>Online, with runnable notebooks: <a href="{esc(BASEURL)}">{esc(BASEURL)}</a></p>
</section>
<h2>Contents</h2>
<div class="toc">{"".join(rows)}</div>
</body></html>"""


def print_book(html: Path, out: Path, student: bool = False, verbose: bool = False) -> tuple[list[str], dict]:
    """Print the book built in `html` to `out`; return the problems and a summary (pages, bytes, seconds)."""
    start = time.time()
    pages = toc_pages()
    missing = [p.rel for p in pages if not (html / p.rel).is_file()]
    if missing:
        raise SystemExit(
            f"print_pdf: {html} has no {', '.join(missing)}: build the book first (bash .ci/book"
            f"{' --student' if student else ''})"
        )
    targets = cross_targets(html, pages)
    problems: list[str] = []
    server, base = browser_check.serve(html)
    driver = browser_check.browser()
    try:
        for page in pages:
            try:
                data, info, page_problems = print_page(driver, base + page.rel, targets[page.rel], student)
            except WebDriverException as e:  # the browser died (a renderer crash): a fresh one prints the page again
                print(f"print_pdf: {page.rel}: the browser failed ({str(e).splitlines()[0]}); retrying in a new one")
                with contextlib.suppress(WebDriverException):
                    driver.quit()
                driver = browser_check.browser()
                data, info, page_problems = print_page(driver, base + page.rel, targets[page.rel], student)
            problems += [f"{page.rel}: {p}" for p in page_problems]
            page.sections = info["sections"]
            page.title = page.sections[0][2] if page.sections else page.rel
            page.pdf = PdfReader(io.BytesIO(data))
            page.anchors = explicit_destinations(page.pdf)
            if verbose:
                print(f"  {page.rel}: {len(page.pdf.pages)} pages, {info['scaled']} wide formula(s) scaled to fit")
        writer = PdfWriter()
        first = 0
        for page in pages:
            page.first = first
            first += len(page.pdf.pages)
        # the front matter is printed last, once the page numbers are known; the chapters are numbered from 1
        front_html = front_matter(pages, student, built_from(html / pages[0].rel))
        driver.get("data:text/html;base64," + base64.b64encode(front_html.encode()).decode())
        front = PdfReader(io.BytesIO(base64.b64decode(driver.execute_cdp_cmd("Page.printToPDF", PAPER)["data"])))
    finally:
        driver.quit()
        server.shutdown()
    n_front = len(front.pages)
    writer.append(front, import_outline=False)
    for page in pages:
        page.first += n_front
        writer.append(page.pdf, import_outline=False)
    number_pages(writer, n_front)
    outline(writer, pages, 1 if n_front > 1 else 0)
    internal = link_inside(writer, pages, BASEURL)
    writer.add_metadata(
        {
            "/Title": CONFIG["title"] + (" (student edition)" if student else ""),
            "/Author": CONFIG["author"],
            "/Subject": BASEURL,
        }
    )
    writer.compress_identical_objects(remove_duplicates=True, remove_unreferenced=True)  # shared fonts, old streams
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("wb") as f:
        writer.write(f)
    summary = {
        "pages": len(writer.pages),
        "bytes": out.stat().st_size,
        "seconds": round(time.time() - start, 1),
        "internal_links": internal,
    }
    return problems, summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", type=Path, help="the built site (the folder with index.html)")
    ap.add_argument("out", type=Path, help="the PDF to write")
    ap.add_argument("--student", action="store_true", help="the student edition: no solution may be left")
    args = ap.parse_args(argv)
    html = args.html.resolve()
    if not (html / "index.html").is_file():
        print(f"print_pdf: {html}/index.html does not exist; build the book first (bash .ci/book)")
        return 1
    problems, summary = print_book(html, args.out, args.student, verbose=True)
    for p in problems:
        print("FAIL", p)
    print(
        f"{args.out}: {summary['pages']} pages, {summary['bytes'] / 1e6:.1f} MB, {summary['internal_links']} "
        f"links inside the PDF, printed in {summary['seconds']} s; {len(problems)} problems"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
