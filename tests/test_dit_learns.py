"""Tests for gptheory.experiments.dit_learns: the configuration table, the driver end to end (tiny), load-or-train."""

from __future__ import annotations

import pytest
import torch

from gptheory import GaussianProcess, metrics, results
from gptheory.experiments.dit_learns import dit_learns, dit_learns_config, run_dit_learns
from gptheory.metrics import Law
from gptheory.streams import generator
from gptheory.trial import prepare

# a few seconds: 6 frames, one tiny model, a handful of steps
TINY = {"N": 6, "d": 2, "ell": 1.5, "n_train": 32, "hidden": 16, "depth": 2, "heads": 2, "steps": 3}
TINY |= {"batch_size": 16, "warmup": 1, "n_gen": 24, "sample_steps": 3, "record": 3}


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTHEORY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(results, "SHIPPED", tmp_path / "shipped")
    return tmp_path


def test_run_end_to_end_tiny():
    s = dit_learns_config("smoke", **TINY)
    assert s.train.patience > 0  # trained to convergence, measured against the law at t0
    r = run_dit_learns(s, device="cpu", progress=False)
    # Heun with 3 steps visits 4 times; 3 of them keep full maps
    assert r.attention.shape == (3, 2, 6, 6) and r.similarity.shape == (4, 2)
    assert r.similarity_construction == pytest.approx(1.0)
    assert r.steps == 3 and len(r.time_share) == 2 and r.qk["ee"].shape[0] == 2
    assert all(0 <= v <= 1 for v in r.time_share + r.value_data_share)
    # the true sequences: their own named stream, measured against the data law with the same estimator
    gp = GaussianProcess(6, 2, nu=2.0, ell=1.5, seed=s.process.sigma_seed)
    x_true = gp.sample(24, generator=generator(s.seed, "true"))
    xc = x_true - x_true.mean(0)
    C01 = xc[:, 0].T @ xc[:, 1] / 23
    ref = float((C01 * gp.Sigma).sum() / (gp.Sigma**2).sum())
    assert r.Gamma_hat_true[0, 1] == pytest.approx(ref, rel=1e-10)
    # Figure 1's temporal error is the least-squares one (temporal_ls), measured on the stored estimate
    G_true = torch.from_numpy(r.Gamma_hat_true)
    assert r.errors_true.temporal_ls == pytest.approx(metrics.relative_error(G_true, gp.Gamma), rel=1e-12)
    # the generated ones against the law at t0, whose least-squares kernel is not Gamma
    law = Law.at(gp, s.train.t0, prepare(s).model.schedule)
    target = metrics.temporal_kernel(law.pairs, gp.Sigma)
    G_gen = torch.from_numpy(r.Gamma_hat_generated)
    assert r.errors_generated.temporal_ls == pytest.approx(metrics.relative_error(G_gen, target), rel=1e-12)
    assert r.ratio_temporal == r.errors_generated.temporal_ls / r.floor.temporal_ls  # the ratio is to the floor
    assert r.relative_count == 24 and r.stop_reason in ("cap", "converged") and 0 < r.best_step <= r.steps
    assert 0 < r.memorisation.ratio
    # deterministic under the seed
    again = run_dit_learns(s, device="cpu", progress=False)
    assert again.errors_generated == r.errors_generated


def test_dit_learns_trains_once_and_not_after_a_code_change(private_cache, monkeypatch):
    first = dit_learns("smoke", device="cpu", progress=False, **TINY)
    second = dit_learns("smoke", device="cpu", progress=False, **TINY)
    assert not first.loaded and second.loaded and second.parts()[0] == first.parts()[0]
    assert second.config == dit_learns_config("smoke", **TINY).to_dict() and second.provenance.profile == "smoke"
    assert not dit_learns("smoke", device="cpu", progress=False, **{**TINY, "seed": 1}).loaded
    # edited model/training/experiment source: the old local result must not be reused
    monkeypatch.setattr(results, "code_hash", lambda *a, **k: "edited")
    assert not dit_learns("smoke", device="cpu", progress=False, **TINY).loaded


def test_the_cpu_configuration_finds_its_shipped_calibrated_result():
    """The cpu chapter loads Figure 1's run instead of training it at build time: the shipped record is found by the
    key of today's configuration, trained to convergence, and measured against the law at t0 beside its floor."""
    from gptheory.experiments.dit_learns import NAME, DitLearns

    res = results.load(NAME, dit_learns_config("cpu").to_dict(), DitLearns)
    assert res is not None and res.provenance.profile == "cpu"
    assert res.stop_reason == "converged" and res.best_step <= res.steps < dit_learns_config("cpu").train.steps
    assert res.floor is not None and res.provenance.commit != "unknown" and "+dirty" not in res.provenance.commit
