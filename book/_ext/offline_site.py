"""The HTML site as readers meet it offline: local MathJax, each script included once, a quiet console.

MathJax 3 is served from the built site instead of a CDN, so formulas render offline.

The MathJax files come from the pinned PyPI package ``django-static-mathjax`` (MathJax 3.2.2 as plain
static files; it needs no Django). They are copied to ``_static/mathjax/`` and ``mathjax_path`` points
there; the book's ``mathjax3_config`` (macros) applies unchanged.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from sphinx.application import Sphinx


def _es5() -> Path:
    import mathjax  # the django-static-mathjax package

    root = Path(mathjax.__file__).parent / "static" / "mathjax" / "es5"
    if not (root / "tex-chtml.js").is_file():
        raise RuntimeError(f"offline_mathjax: {root}/tex-chtml.js is missing; pip install django-static-mathjax")
    return root


def _use_local(app: Sphinx, config) -> None:
    _es5()  # fail early, with a clear message
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
    # early: html-page-context stops at the first handler that returns a template name
    app.connect("html-page-context", _once, priority=100)
    app.connect("build-finished", _copy)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
