"""Tests for gptheory.results: keys, round trips, the load-or-compute cache and provenance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gptheory import results
from gptheory.results import Result, cached, config_key, load, provenance, read, save, shipped


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTHEORY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(results, "SHIPPED", tmp_path / "shipped")
    return tmp_path


def test_key_ignores_order_but_not_values_or_version():
    a = {"gp": {"N": 8, "ell": 2.0}, "seed": 0}
    b = {"seed": 0, "gp": {"ell": 2.0, "N": 8}}
    assert config_key(a, "1") == config_key(b, "1")
    assert config_key(a, "1") != config_key({"gp": {"N": 8, "ell": 2.5}, "seed": 0}, "1")
    assert config_key(a, "1") != config_key(a, "2")
    assert len(config_key(a)) == 16


def test_bad_configs_and_names_are_value_errors():
    with pytest.raises(ValueError, match="JSON"):
        config_key({"x": object()})
    with pytest.raises(ValueError, match="finite"):
        config_key({"x": float("nan")})
    with pytest.raises(ValueError, match="config must be a dict"):
        config_key([1, 2])
    with pytest.raises(ValueError, match="name"):
        cached("bad name!", {}, lambda c: ({}, {}))


def test_round_trip_is_exact(tmp_path):
    arrays = {"A": np.random.default_rng(0).normal(size=(3, 4)), "k": np.arange(5)}
    res = Result("demo", {"err": 0.125, "per_layer": [1.0, 2.0]}, arrays, provenance({"n": 3}, 1.5, "smoke"))
    path = save(res, tmp_path / "out")
    back = read(path)
    assert back.numbers == res.numbers and back.loaded and back.config == {"n": 3}
    for k, v in arrays.items():
        np.testing.assert_array_equal(back.arrays[k], v)
    assert json.loads(path.read_text())["key"] == config_key({"n": 3})


def test_provenance_fields():
    p = provenance({"a": 1}, 2.5, "cpu")
    assert {"device", "date", "commit", "config", "wall_seconds", "version"} <= set(p)
    assert p["wall_seconds"] == 2.5 and p["config"] == {"a": 1} and p["profile"] == "cpu"


def test_cached_computes_once_then_loads():
    calls = []

    def compute(config):
        calls.append(config)
        return {"value": config["x"] * 2}, {"arr": np.full(3, config["x"])}

    first = cached("twice", {"x": 3}, compute)
    second = cached("twice", {"x": 3}, compute)
    assert len(calls) == 1 and not first.loaded and second.loaded
    assert second.numbers == {"value": 6}
    np.testing.assert_array_equal(second.arrays["arr"], [3, 3, 3])
    cached("twice", {"x": 4}, compute)  # another configuration: computed
    cached("twice", {"x": 3}, compute, refresh=True)  # refresh: computed again
    assert len(calls) == 3


def test_shipped_results_are_found_first_and_listed(private_cache):
    res = Result("gpuish", {"v": 1}, {}, provenance({"x": 1}, 1.0, "gpu"))
    save(res, results.SHIPPED)
    found = load("gpuish", {"x": 1}, [results.SHIPPED, results.cache_dir()])
    assert found is not None and found.numbers == {"v": 1}
    assert [r.numbers for r in shipped("gpuish")] == [{"v": 1}]
    assert shipped("nothing") == []
    assert load("gpuish", {"x": 2}) is None
