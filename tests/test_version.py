"""Tests for gptheory.version: one version string, read by the package, the build and the result keys."""

from __future__ import annotations

import re
from pathlib import Path

import gptheory
from gptheory import version
from gptheory.results import config_key


def test_the_version_is_one_string_everywhere():
    assert re.fullmatch(r"\d+\.\d+\.\d+", version.__version__)  # what setuptools reads (pyproject: dynamic version)
    assert gptheory.__version__ == version.__version__
    pyproject = (Path(__file__).resolve().parent.parent / "pyproject.toml").read_text()
    assert 'version = { attr = "gptheory.version.__version__" }' in pyproject


def test_result_keys_change_with_the_version():
    config = {"process": {"N": 8}, "seed": 0}
    assert config_key(config) == config_key(config, version.__version__) != config_key(config, "0.0.0")
