"""Tests for gptheory.results: keys, typed round trips, the load-or-compute cache, and reading many records (by
setting and metric)."""

from __future__ import annotations

import json
import types
from dataclasses import dataclass, field

import numpy as np
import pytest

from gptheory import results
from gptheory.experiments.dit_learns import DIT_LEARNS
from gptheory.provenance import Provenance
from gptheory.results import (
    Record,
    Result,
    by_process,
    cached,
    config_key,
    group,
    load,
    mean,
    read,
    save,
    setting,
    ship,
    shipped,
    summary,
    value,
)

SMOKE = DIT_LEARNS["smoke"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTHEORY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(results, "SHIPPED", tmp_path / "shipped")
    return tmp_path


@dataclass
class Pair:
    a: float
    b: list[float]


@dataclass
class Demo(Record):
    NAME = "demo"
    err: float
    pair: Pair
    per_layer: dict[str, list[float]]
    A: np.ndarray
    blocks: dict[str, np.ndarray] = field(default_factory=dict)


def _demo() -> Demo:
    rng = np.random.default_rng(0)
    return Demo(
        0.125, Pair(1.5, [2.0, 3.0]), {"x": [1.0]}, rng.normal(size=(3, 4)), {"q": np.arange(5), "k": np.eye(2)}
    )


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


def test_typed_round_trip_is_exact_and_arrays_go_to_the_npz(tmp_path):
    rec = _demo()
    rec.provenance = Provenance.now({"n": 3}, 1.5, "smoke")
    path = save(rec, tmp_path / "out")
    body = json.loads(path.read_text())
    assert set(body["numbers"]) == {"err", "pair", "per_layer"}  # no array in the JSON
    back = read(path, Demo)
    (n1, a1), (n2, a2) = back.parts(), rec.parts()
    assert n1 == n2 and back.loaded and back.config == {"n": 3} and isinstance(back.pair, Pair)
    assert set(a1) == {"A", "blocks.q", "blocks.k"} == set(a2)
    for k in a1:
        np.testing.assert_array_equal(a1[k], a2[k])
    np.testing.assert_array_equal(back.blocks["q"], np.arange(5))
    assert back.provenance == rec.provenance and body["key"] == config_key({"n": 3}, code=rec.provenance.code)


def test_cached_computes_once_then_loads():
    calls = []

    def compute(config):
        calls.append(config)
        return {"value": config["x"] * 2}, {"arr": np.full(3, config["x"])}

    first = cached("twice", {"x": 3}, compute)
    second = cached("twice", {"x": 3}, compute)
    assert len(calls) == 1 and not first.loaded and second.loaded and second.name == "twice"
    assert second.numbers == {"value": 6}
    np.testing.assert_array_equal(second.arrays["arr"], [3, 3, 3])
    cached("twice", {"x": 4}, compute)  # another configuration: computed
    cached("twice", {"x": 3}, compute, refresh=True)  # refresh: computed again
    assert len(calls) == 3


def test_a_code_change_hides_cached_results_but_not_shipped_ones(monkeypatch):
    def compute(config):
        return {"value": config["x"]}, {}

    cached("local", {"x": 1}, compute)
    ship(Result(result_name="gpuish", numbers={"v": 1}, provenance=Provenance.now({"x": 1}, 1.0, "gpu")))
    assert load("local", {"x": 1}) is not None and load("gpuish", {"x": 1}) is not None
    monkeypatch.setattr(results, "code_hash", lambda *a, **k: "edited")
    assert load("local", {"x": 1}) is None  # computed by other code: recompute
    assert load("gpuish", {"x": 1}).numbers == {"v": 1}  # shipped: keyed by configuration and version only


def test_shipped_results_are_found_first_and_listed():
    ship(Result(result_name="both", numbers={"v": "shipped"}, provenance=Provenance.now({"x": 1}, 1.0, "gpu")))
    save(Result(result_name="both", numbers={"v": "cache"}, provenance=Provenance.now({"x": 1}, 1.0, "cpu")))
    assert load("both", {"x": 1}).numbers == {"v": "shipped"}
    assert [r.numbers for r in shipped("both")] == [{"v": "shipped"}]
    assert shipped("nothing") == []
    assert load("both", {"x": 2}) is None


# --------------------------------------------------------------------------------------- reading many records
def _point(err: float, **settings) -> types.SimpleNamespace:
    """A stand-in record: one nested metric and the configuration of DIT_LEARNS["smoke"] with ``settings``."""
    return types.SimpleNamespace(dit=types.SimpleNamespace(temporal=err), config=SMOKE.replace(**settings).to_dict())


def test_setting_reads_any_field_including_those_left_out_at_their_defaults():
    cfg = SMOKE.replace(depth=2, N=8, seed=3)
    p = types.SimpleNamespace(config=cfg.to_dict())
    assert setting(p, "depth") == 2 and setting(p, "N") == 8 and setting(p, "seed") == 3
    assert setting(p, "steps") == cfg.train.steps and setting(p, "n_gen") == cfg.sampler.n_gen
    # fields added later are absent from the stored configuration at their defaults, yet are settings like any other
    assert "arch" not in p.config["model"] and setting(p, "arch") == "dit"
    unet = types.SimpleNamespace(config=cfg.replace(arch="unet", kernel_size=3, levels=1).to_dict())
    assert setting(unet, "arch") == "unet" and setting(unet, "levels") == 1
    assert setting(unet, "kernel_size") == 3 and setting(p, "eval_points") == 0
    with pytest.raises(KeyError, match="no setting 'width'"):
        setting(p, "width")


def test_value_group_mean_and_summary_read_records_by_setting_and_metric():
    pts = [_point(e, nu=nu, ell=ell, seed=s) for nu, ell, e, s in
           ((2.0, 4.0, 1.0, 0), (1.0, 8.0, 2.0, 0), (1.0, 4.0, 3.0, 0), (1.0, 4.0, 5.0, 1))]  # fmt: skip
    assert value(pts[0], "dit.temporal") == 1.0 and isinstance(value(pts[0], "dit.temporal"), float)
    by_nu = group(pts, "nu")
    assert list(by_nu) == [1.0, 2.0] and by_nu[1.0] == pts[1:]  # sorted keys, records in their order
    assert list(by_process(pts)) == [(1.0, 4.0), (1.0, 8.0), (2.0, 4.0)] == list(group(pts, "nu", "ell"))
    assert by_process(pts)[(1.0, 4.0)] == pts[2:]
    assert mean(pts[2:], "dit.temporal") == 4.0
    s = summary(pts, "ell", "dit.temporal")
    assert s[4.0] == (3.0, pytest.approx(2.0), 3) and s[8.0][0] == 2.0 and np.isnan(s[8.0][1]) and s[8.0][2] == 1


def test_an_array_field_added_later_with_a_default_reads_from_older_records():
    @dataclass
    class Old(Record):
        NAME = "evolving"
        a: np.ndarray

    @dataclass
    class New(Record):
        NAME = "evolving"
        a: np.ndarray
        b: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))

    numbers, arrays = Old(a=np.arange(3.0)).parts()
    back = New.from_parts(numbers, arrays)
    np.testing.assert_array_equal(back.a, np.arange(3.0))
    assert back.b.shape == (0, 3)  # the default, not an error
    with pytest.raises(KeyError):  # an array without a default is still required
        New.from_parts(numbers, {})
