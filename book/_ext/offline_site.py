"""The HTML site as readers meet it: local MathJax, each script once, a quiet console, numbers as math, readable
in dark mode.

MathJax 3 is served from the built site instead of a CDN, so formulas render offline.

The MathJax files come from the pinned PyPI package ``django-static-mathjax`` (MathJax 3.2.2 as plain
static files; it needs no Django). They are copied to ``_static/mathjax/`` and ``mathjax_path`` points
there; the book's ``mathjax3_config`` (macros) applies unchanged.

``static/gptheory.css`` is added to every page: the few colour fixes that keep every text at 3:1 contrast or more in
both of the theme's colour modes (what .ci/browser_check.py checks).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx

PYTHON_EXPONENT = re.compile(r"^(?P<mantissa>[+-]?\d+(?:\.\d*)?)e(?P<exponent>[+-]?\d+)$")


def number_as_tex(text: str) -> str | None:
    """``'9.55e+03'`` -> ``'9.55 \\times 10^{3}'``, ``'1e-06'`` -> ``'10^{-6}'``; None for anything else."""
    m = PYTHON_EXPONENT.match(text.strip())
    if not m:
        return None
    mantissa, exponent = m["mantissa"].lstrip("+"), int(m["exponent"])
    if mantissa in ("1", "1.", "1.0"):
        return f"10^{{{exponent}}}"
    if mantissa in ("-1", "-1.", "-1.0"):
        return f"-10^{{{exponent}}}"
    return f"{mantissa} \\times 10^{{{exponent}}}"


def _numbers_as_math(app: Sphinx, doctree: nodes.document) -> None:
    """Glued numbers that Python wrote in exponent form (``{glue:text}`x:.2e```) are typeset as math."""
    for node in list(doctree.findall(nodes.inline)):
        if "pasted-text" in node.get("classes", []):
            tex = number_as_tex(node.astext())
            if tex is not None:
                node.replace_self(nodes.math(tex, tex))


def _es5() -> Path:
    import mathjax  # the django-static-mathjax package

    root = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (root / "tex-chtml.js").is_file():
        raise RuntimeError(f"offline_mathjax: {root}/tex-chtml.js is missing; pip install django-static-mathjax")
    return root


STATIC = Path(__file__).resolve().parent / "static"


def _use_local(app: Sphinx, config) -> None:
    _es5()  # fail early, with a clear message
    config.html_static_path.append(str(STATIC))  # gptheory.css
    config.mathjax_path = "mathjax/tex-chtml.js"  # relative paths are relative to _static/
    # pydata-sphinx-theme logs "Got invalid theme mode" on a reader's first visit when no mode is set
    config.html_context.setdefault("default_mode", "auto")


def _copy(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        shutil.copytree(_es5(), Path(app.outdir) / "_static" / "mathjax", dirs_exist_ok=True)


def _once(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Drop repeated scripts from a page.

    sphinx-thebe's inline configuration (``const THEBE_JS_URL = ...``) and sphinx-togglebutton's selector
    reach the page twice: once registered with the file name None, once re-added by the builder with the
    file name "" (Sphinx's own de-duplication compares the two as different). Every page then declared the
    constant twice and the browser logged "Identifier 'THEBE_JS_URL' has already been declared".
    """
    scripts = context.get("script_files")
    if not scripts:
        return
    seen, kept = set(), []
    for js in scripts:
        attributes = getattr(js, "attributes", {})
        # an inline script's filename is None or "" depending on who added it; its body is an attribute
        key = (str(getattr(js, "filename", js) or ""), tuple(sorted(attributes.items())))
        if key not in seen:
            seen.add(key)
            kept.append(js)
    scripts[:] = kept  # in place: later handlers (MathJax) add to this same list


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", _use_local, priority=900)
    app.connect("doctree-read", _numbers_as_math)
    # early: html-page-context stops at the first handler that returns a template name
    app.connect("html-page-context", _once, priority=100)
    app.connect("build-finished", _copy)
    app.add_css_file("gptheory.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
