"""Tests for gptheory.results: keys, round trips, the load-or-compute cache and provenance."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gptheory import results
from gptheory.results import (
    Result,
    cached,
    code_hash,
    config_key,
    device_name,
    load,
    provenance,
    read,
    save,
    ship,
    shipped,
)


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
    assert config_key(a, "1", "abc") != config_key(a, "1") != config_key(a, "1", "abd")
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
    assert json.loads(path.read_text())["key"] == config_key({"n": 3}, code=code_hash())


def test_provenance_fields():
    p = provenance({"a": 1}, 2.5, "cpu")
    assert {"device", "date", "commit", "config", "wall_seconds", "version", "code"} <= set(p)
    assert p["wall_seconds"] == 2.5 and p["config"] == {"a": 1} and p["profile"] == "cpu"
    assert p["code"] == code_hash() and len(p["code"]) == 12
    assert device_name("cpu").startswith("cpu (") and "threads" in device_name("cpu")


def test_code_hash_follows_the_source(tmp_path, monkeypatch):
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    for module in ("model", "train"):
        (pkg / f"{module}.py").write_text("x = 1\n")
    monkeypatch.setattr(results, "__file__", str(pkg / "results.py"))
    before = code_hash(("model",))
    assert code_hash(("model", "train")) != before  # every listed module counts
    (pkg / "train.py").write_text("x = 2\n")
    assert code_hash(("model",)) == before  # an unlisted one does not
    (pkg / "model.py").write_text("x = 2\n")
    assert code_hash(("model",)) != before  # an edit to a listed one does


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


def test_a_code_change_hides_cached_results_but_not_shipped_ones(monkeypatch):
    def compute(config):
        return {"value": config["x"]}, {}

    cached("local", {"x": 1}, compute)
    ship(Result("gpuish", {"v": 1}, {}, provenance({"x": 1}, 1.0, "gpu")))
    assert load("local", {"x": 1}) is not None and load("gpuish", {"x": 1}) is not None
    monkeypatch.setattr(results, "code_hash", lambda: "edited")
    assert load("local", {"x": 1}) is None  # computed by other code: recompute
    assert load("gpuish", {"x": 1}).numbers == {"v": 1}  # shipped: keyed by configuration and version only


def test_shipped_results_are_found_first_and_listed():
    ship(Result("both", {"v": "shipped"}, {}, provenance({"x": 1}, 1.0, "gpu")))
    save(Result("both", {"v": "cache"}, {}, provenance({"x": 1}, 1.0, "cpu")))
    assert load("both", {"x": 1}).numbers == {"v": "shipped"}
    assert [r.numbers for r in shipped("both")] == [{"v": "shipped"}]
    assert shipped("nothing") == []
    assert load("both", {"x": 2}) is None
