"""Open every page of a built book in headless Chromium, offline, and check what a reader sees.

    python .ci/browser_check.py _build/html                      # the full book
    python .ci/browser_check.py _build/student/_build/html --student
    python .ci/browser_check.py _build/html --screenshots DIR    # also save a PNG of every page, in both modes

Checks, on every page: math typeset by MathJax (no raw TeX left in the text, no MathJax error), every
image loaded, no console error, no cell output that is a bare number (a cell ending in a value) or shows a
local path or a raw provenance dict, every internal link pointing at a page and an anchor that exist, and that
the page reads in both of the theme's colour modes, light and dark (readability.py: with every dropdown
open, no figure with transparent pixels, no image showing the dark background through its transparent parts,
no text whose contrast with what is behind it is under readability.CONTRAST_MIN). Once per
book: solution dropdowns open when clicked (full book) or no solution is left (student edition), search
returns results, and every link the Colab and student notebooks make into the HTML book (html.baseurl)
names a page and an anchor of this build. The browser cannot reach the internet: every host except the
local server resolves to nothing, so a resource fetched from a CDN shows up as a console error.
Exits 1 with one line per problem.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import sys
import threading
import time
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

from bs4 import BeautifulSoup
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from gptheory.book import myst

sys.path.insert(0, str(Path(__file__).resolve().parent))  # .ci/ is not a package
from readability import SET_MODE, check_readability  # noqa: E402

BUILD_FOOTER = re.compile(r"gptheory \S+ · commit ([0-9a-f]{7}|unknown)")  # book/_ext/build_footer.py
ROOT = Path(__file__).resolve().parent.parent
SKIP_DIRS = {"_static", "_sources", "_images", "reports", "_sphinx_design_static", "_panels_static"}
RAW_TEX = re.compile(
    r"\\(?:frac|mathbb|mathcal|operatorname|alpha|sigma|Gamma|Sigma|nu|ell|kappa|lambda|big|left|right|sum|"
    r"begin|end|hat|bar|tfrac|sqrt|cdot|times|le|ge|top)\b|\$\$|\\\(|\\\["
)


LEAK = re.compile(r"(/tmp/|/home/|/root/|/work/|\.cache/gptheory|site-packages|\{'device': )")
BARE_NUMBER = re.compile(r"^\s*[-+]?(\d+\.?\d*(e[-+]?\d+)?|nan|inf)\s*$")
OUTPUTS = "return Array.from(document.querySelectorAll('.cell_output')).map(e => e.innerText)"


def pages(html: Path) -> list[Path]:
    return sorted(p for p in html.rglob("*.html") if not (set(p.relative_to(html).parts[:-1]) & SKIP_DIRS))


def serve(html: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(html))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


def browser() -> webdriver.Chrome:
    opts = webdriver.ChromeOptions()
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        "--disable-gpu",
        "--window-size=1280,1600",
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    ):
        opts.add_argument(arg)
    for binary in ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"):
        if Path(binary).is_file():
            opts.binary_location = binary
            break
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = (
        webdriver.ChromeService(executable_path="/usr/bin/chromedriver")
        if Path("/usr/bin/chromedriver").is_file()
        else None
    )
    return webdriver.Chrome(options=opts, service=service)


WAIT_MATHJAX = """
const done = arguments[arguments.length - 1];
if (!window.MathJax || !MathJax.startup || !MathJax.startup.promise) { done("no MathJax"); return; }
MathJax.startup.promise.then(() => done("ok")).catch(e => done("MathJax failed: " + e));
"""

VISIBLE_TEXT = """
const body = document.querySelector("main") || document.body;
const copy = body.cloneNode(true);
copy.querySelectorAll("pre, code, script, style, mjx-container, mjx-assistive-mml, .MathJax, .highlight")
    .forEach(e => e.remove());
return copy.innerText;
"""

IMAGES = """
const imgs = Array.from(document.images);
imgs.forEach(i => { i.loading = "eager"; });
return imgs.map(i => [i.getAttribute("src"), i.complete, i.naturalWidth]);
"""


def check_page(driver, url: str, rel: str) -> list[str]:
    problems = []
    driver.get(url)
    WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    if driver.find_elements(By.CSS_SELECTOR, ".math"):
        driver.set_script_timeout(60)
        state = driver.execute_async_script(WAIT_MATHJAX)
        if state != "ok":
            problems.append(f"{rel}: math not typeset ({state})")
        untypeset = driver.execute_script(
            "return Array.from(document.querySelectorAll('.math')).filter(e => !e.querySelector('mjx-container'))"
            ".map(e => e.textContent.slice(0, 60))"
        )
        for tex in untypeset[:5]:
            problems.append(f"{rel}: formula left as raw TeX: {tex!r}")
        errors = driver.execute_script(
            "return Array.from(document.querySelectorAll('mjx-merror')).map(e => e.textContent)"
        )
        for err in errors[:5]:
            problems.append(f"{rel}: MathJax error: {err}")
    text = driver.execute_script(VISIBLE_TEXT)
    for m in list(RAW_TEX.finditer(text))[:5]:
        problems.append(f"{rel}: raw TeX in the text: ...{text[max(0, m.start() - 40) : m.end() + 40]!r}...")
    for out in driver.execute_script(OUTPUTS):
        if BARE_NUMBER.match(out):
            problems.append(f"{rel}: a stray number under a code cell: {out.strip()!r}")
        if m := LEAK.search(out):
            shown = out[max(0, m.start() - 40) : m.end() + 60]
            problems.append(f"{rel}: a cell shows a local path or raw provenance: ...{shown!r}")
    for _ in range(50):
        imgs = driver.execute_script(IMAGES)
        if all(done for _, done, _ in imgs):
            break
        time.sleep(0.2)
    for src, done, width in imgs:
        if not done or width == 0:
            problems.append(f"{rel}: image not loaded: {src}")
    for entry in driver.get_log("browser"):
        if entry["level"] == "SEVERE":
            problems.append(f"{rel}: console error: {entry['message'][:300]}")
    footer = driver.execute_script(  # a redirect page (index.html) has no footer of its own
        "if (document.querySelector('meta[http-equiv=Refresh]')) return 'redirect';"
        "const f = document.querySelector('p.build-footer'); return f && f.textContent"
    )
    if footer != "redirect" and not (footer and BUILD_FOOTER.search(footer)):
        problems.append(f"{rel}: no footer naming the version and commit it was built from (got {footer!r})")
    problems += check_readability(driver, rel)
    return problems


def check_links(html: Path) -> tuple[list[str], dict[Path, set[str]]]:
    """Every internal href and its #anchor exist (static: parsed from the HTML files)."""
    ids: dict[Path, set[str]] = {}
    soups = {}
    for page in pages(html):
        soup = BeautifulSoup(page.read_text(), "html.parser")
        soups[page] = soup
        ids[page] = {t["id"] for t in soup.find_all(id=True)} | {
            t["name"] for t in soup.find_all("a", attrs={"name": True})
        }
    problems = []
    for page, soup in soups.items():
        rel = page.relative_to(html)
        for a in soup.find_all("a", href=True):
            href = a["href"]
            if urlparse(href).scheme or href.startswith(("mailto:", "javascript:", "//")):
                continue
            target, anchor = urldefrag(urljoin(page.as_uri(), href))
            path = Path(unquote(urlparse(target).path))
            if path.is_dir():
                path = path / "index.html"
            if not path.exists():
                problems.append(f"{rel}: link to a missing file: {href}")
            elif anchor and path.suffix == ".html" and anchor not in ids.get(path, _ids(path)):
                problems.append(f"{rel}: link to a missing anchor: {href}")
    return problems, ids


@functools.cache
def _ids(path: Path) -> set[str]:
    soup = BeautifulSoup(path.read_text(), "html.parser")
    return {t["id"] for t in soup.find_all(id=True)}


def check_notebook_links(html: Path, ids: dict[Path, set[str]]) -> list[str]:
    """Links from the Colab and student notebooks into the HTML book point at pages and anchors of this build."""
    base = myst.Book(ROOT).url
    problems, n = [], 0
    for nb in sorted((ROOT / "book" / "colab").rglob("*.ipynb")):
        cells = json.loads(nb.read_text())["cells"]
        text = "".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
        for url in re.findall(re.escape(base) + r"[^)\s]*", text):
            n += 1
            target, anchor = urldefrag(url)
            path = html / target.removeprefix(base)
            if not path.is_file():
                problems.append(f"{nb.relative_to(ROOT)}: link to a page the book does not have: {url}")
            elif anchor and anchor not in ids.get(path, set()):
                problems.append(f"{nb.relative_to(ROOT)}: link to an anchor the page does not have: {url}")
    print(f"notebook links into the book: {n} checked")
    return problems


def check_solutions(driver, base: str, html: Path, student: bool) -> list[str]:
    problems, opened = [], 0
    for page in pages(html):
        rel = str(page.relative_to(html))
        n_solutions = page.read_text().count('class="solution')
        if student:
            if n_solutions:
                problems.append(f"{rel}: the student edition still has {n_solutions} solution(s)")
            continue
        if not n_solutions:
            continue
        driver.get(base + rel)
        WebDriverWait(driver, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
        solutions = driver.find_elements(By.CSS_SELECTOR, "div.solution")
        for sol in solutions:
            button = sol.find_elements(By.CSS_SELECTOR, "button.toggle-button")
            body = sol.find_elements(By.CSS_SELECTOR, ".admonition-title ~ *, section")
            if not button:
                problems.append(f"{rel}: a solution without a dropdown button")
                continue
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", button[0])
            driver.execute_script("arguments[0].click()", button[0])
            try:
                WebDriverWait(driver, 5).until(lambda d, b=body: b and any(e.is_displayed() for e in b))
                opened += 1
            except WebDriverException:
                problems.append(f"{rel}: a solution dropdown did not open")
    print(f"solution dropdowns opened: {opened}")
    return problems


def check_search(driver, base: str, query: str) -> list[str]:
    driver.get(f"{base}search.html?q={query}")
    try:
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "#search-results li, ul.search li"))
    except WebDriverException:
        return [f"search for {query!r} returned no results"]
    n = len(driver.find_elements(By.CSS_SELECTOR, "#search-results li, ul.search li"))
    print(f"search for {query!r}: {n} results")
    return []


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("html", type=Path, help="the built site (the folder with index.html)")
    ap.add_argument("--student", action="store_true", help="the student edition: no solution may be left")
    ap.add_argument("--screenshots", type=Path, help="save a PNG of every page here, in light and in dark mode")
    args = ap.parse_args(argv)
    html = args.html.resolve()
    if not (html / "index.html").is_file():
        print(f"browser_check: {html}/index.html does not exist; build the book first")
        return 1
    server, base = serve(html)
    driver = browser()
    problems: list[str] = []
    try:
        all_pages = pages(html)
        for page in all_pages:
            rel = str(page.relative_to(html))
            problems += check_page(driver, base + rel, rel)
            if args.screenshots:
                args.screenshots.mkdir(parents=True, exist_ok=True)
                name = rel.replace("/", "_").removesuffix(".html")
                driver.save_screenshot(str(args.screenshots / f"{name}.png"))
                driver.execute_script(SET_MODE, "dark")
                driver.save_screenshot(str(args.screenshots / f"{name}-dark.png"))
        link_problems, ids = check_links(html)
        problems += link_problems
        problems += check_solutions(driver, base, html, args.student)
        problems += check_search(driver, base, "kernel")
        if not args.student:
            problems += check_notebook_links(html, ids)
    finally:
        driver.quit()
        server.shutdown()
    for p in problems:
        print("FAIL", p)
    print(f"browser check of {html}: {len(all_pages)} pages, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
