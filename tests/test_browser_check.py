"""The readability check (.ci/readability.py, which .ci/browser_check.py runs on every page) fails where a reader
could not read, in either colour mode, and only there: a tiny page, opened in the same headless Chromium, with a
figure that has transparent pixels, an image transparent over the dark background, text that one mode or the other
makes unreadable, and, beside each, its readable counterpart. Needs Chromium and chromedriver (.ci/system), as
.ci/test has them."""

from __future__ import annotations

import base64
import io
import shutil
from pathlib import Path

import pytest
from PIL import Image
from scripts import load

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(
    not (shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")),
    reason="needs Chromium and chromedriver: bash .ci/system (as root) installs them",
)


CHECK = load(".ci/browser_check.py")


def _png(transparent: bool) -> str:
    """A 40 x 20 PNG as a data URI: black ink on white, or the same ink on a transparent background."""
    image = Image.new("RGBA", (40, 20), (255, 255, 255, 0 if transparent else 255))
    for x in range(5, 35):
        image.putpixel((x, 10), (0, 0, 0, 255))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


# The theme's rules that matter here, reduced: the mode is html[data-theme]; dark mode has a dark page and light text.
# "paints" reproduces the theme's white background under content images, "bare" is an image without it.
PAGE = f"""<!doctype html>
<html data-theme="light"><head><meta charset="utf-8"><style>
html[data-theme="dark"] body {{ background: #121212; color: #ced6dd; }}
html[data-theme="dark"] img.paints {{ background: #fff; }}
.index-row {{ background: #eee; }}
</style></head>
<body><div class="bd-content">
<p id="readable">Readable in both modes.</p>
<p style="color: #333">Dark grey text, for the light page only.</p>
<p style="color: #e8e8e8">Light grey text, for the dark page only.</p>
<table><tr class="index-row"><td><strong>a row in the light grey of Sphinx's index</strong></td></tr></table>
<p style="color: #000; opacity: 0.15">Faded by its opacity.</p>
<div class="cell_output"><img class="paints" alt="" src="{_png(transparent=True)}"></div>
<div class="cell_output"><img class="paints" alt="" src="{_png(transparent=False)}"></div>
<p><img class="bare" alt="" src="{_png(transparent=True)}"></p>
</div></body></html>
"""


@pytest.fixture(scope="module")
def problems(tmp_path_factory) -> list[str]:
    site = tmp_path_factory.mktemp("site")
    (site / "page.html").write_text(PAGE)
    server, base = CHECK.serve(site)
    driver = CHECK.browser()
    try:
        driver.get(base + "page.html")
        found = CHECK.check_readability(driver, "page.html")
        mode = driver.execute_script("return document.documentElement.dataset.theme")
    finally:
        driver.quit()
        server.shutdown()
    assert mode == "light"  # the check leaves the page as it found it
    return found


def _about(problems: list[str], *words: str) -> list[str]:
    return [p for p in problems if all(w in p for w in words)]


def test_text_unreadable_in_one_mode_fails_in_that_mode_only(problems):
    assert _about(problems, "dark mode", "Dark grey text")
    assert not _about(problems, "light mode", "Dark grey text")
    assert _about(problems, "light mode", "Light grey text")
    assert not _about(problems, "dark mode", "Light grey text")


def test_a_fixed_light_background_fails_under_the_dark_modes_light_text(problems):
    """What Sphinx's basic.css did to the proof index (book/_ext/static/gptheory.css fixes the book's)."""
    assert _about(problems, "dark mode", "index", "on rgb(238, 238, 238)")
    assert not _about(problems, "light mode", "index")


def test_opacity_counts(problems):
    assert _about(problems, "light mode", "Faded by its opacity") and _about(problems, "dark mode", "Faded")


def test_readable_text_passes(problems):
    assert not _about(problems, "Readable in both modes")


def test_a_figure_with_transparent_pixels_fails_once(problems):
    found = _about(problems, "a figure with transparent pixels")
    assert len(found) == 1, found  # a cell's output, once, not once per mode; the bare image is no figure
    assert "(96.2% of it)" in found[0]  # 770 of its 800 pixels


def test_an_image_transparent_over_the_dark_background_fails(problems):
    found = _about(problems, "transparent over the dark background")
    assert len(found) == 1, found  # the bare image; the figure sits on the white the theme paints under it


def test_nothing_else_fails(problems):
    expected = 2 + 1 + 2 + 1 + 1  # the two grey texts, the index row, the faded text twice, the figure, the bare image
    assert len(problems) == expected, "\n".join(problems)
