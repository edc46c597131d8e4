"""The repository's scripts (``.ci/*.py``, ``book/_ext/*.py``), which are not a package, loaded as modules for the
tests that check them: ``load(".ci/print_pdf.py")``."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parent.parent


def load(relative: str) -> ModuleType:
    """The script at ``ROOT / relative``, executed once per call, registered under its file's stem (a dataclass in
    it looks its module up in ``sys.modules``)."""
    path = ROOT / relative
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module
