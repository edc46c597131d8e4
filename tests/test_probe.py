"""Tests for gptheory.experiments.probe: the training-dynamics steps, one measured point of each architecture, and
every probe sweep (of :mod:`gptheory.experiments.architecture` and :mod:`gptheory.experiments.attention_learned`) run
end to end in the smoke profile (with tiny overrides)."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest
import torch

from gptheory import GaussianProcess, metrics, results
from gptheory.config import ExperimentConfig
from gptheory.convergence import STOP_REASONS
from gptheory.experiments import SWEEPS, architecture, dynamics, tuning
from gptheory.experiments import probe as probes
from gptheory.experiments import sweep as get
from gptheory.metrics import Law
from gptheory.provenance import Provenance
from gptheory.results import config_key, setting
from gptheory.sweep import provenance_summary, run_sweep
from gptheory.trial import prepare

pytestmark = pytest.mark.usefixtures("one_thread")

# about a second a point: the smoke process and network, 20 steps (one validation check), 64 sequences, 4 sampler
# steps
TINY = {"steps": 20, "n_gen": 64, "sample_steps": 4, "n_train": 128}
SEED0 = {"seed": [0]}


# ------------------------------------------------------------------------------------------ one point
def _check_common(p: probes.Probe, cfg: ExperimentConfig) -> None:
    """What every measured point satisfies, whatever the network."""
    N, d = cfg.process.N, cfg.process.d
    for part in (p.generated, p.true):
        assert all(math.isfinite(v) and v > 0 for v in part.__dict__.values()), part
    gp = GaussianProcess(N, d, nu=cfg.process.nu, ell=cfg.process.ell, seed=cfg.process.sigma_seed)
    # measured against the law at t0, whose whitened kernel is alpha^2 Gamma + sigma^2 Sigma^{-1}-trace / d
    law = Law.at(gp, cfg.train.t0, prepare(cfg).model.schedule)
    target = metrics.temporal_kernel_whitened(law.pairs, gp.Sigma)
    assert 0 < p.steps <= cfg.train.steps and p.stop_reason in STOP_REASONS and 0 < p.best_step <= p.steps
    assert p.best_validation == min(v for _, v in p.validation) and p.validation[-1][0] <= p.steps
    assert all(math.isfinite(v) and v > 0 for v in p.floor.__dict__.values())
    assert p.relative_count == min(cfg.n_train, cfg.sampler.n_gen)
    assert 0 < p.memorisation.ratio and 0 <= p.memorisation.copies <= 1
    assert np.isfinite(p.loss).all()
    assert p.Gamma.shape == p.Gamma_hat.shape == p.Gamma_hat_true.shape == (N, N) and p.Sigma.shape == (d, d)
    # the stored estimates and the stored errors are the same measurement, each against its own law
    assert metrics.relative_error(torch.from_numpy(p.Gamma_hat_true), torch.from_numpy(p.Gamma)) == pytest.approx(
        p.true.temporal, rel=1e-12)  # fmt: skip
    assert metrics.relative_error(torch.from_numpy(p.Gamma_hat), target) == pytest.approx(p.generated.temporal,
                                                                                           rel=1e-12)  # fmt: skip
    for est, gaps, truth in ((p.Gamma_hat, p.gap_error, target), (p.Gamma_hat_true, p.gap_error_true, p.Gamma)):
        np.testing.assert_allclose(gaps, metrics.gap_errors(torch.from_numpy(est), torch.as_tensor(truth)),
                                   rtol=1e-12)  # fmt: skip
        assert metrics.roughness(torch.from_numpy(est)) in (pytest.approx(p.roughness), pytest.approx(p.roughness_true))
    for arr in (p.block_error, p.block_error_true):
        assert arr.shape == (N,) and np.isfinite(arr).all()
    assert p.pair_gaps[0] == 0 and p.pair_gaps[-1] == N - 1 and (np.diff(p.pair_gaps) > 0).all()
    assert p.pair_blocks.shape == p.pair_blocks_true.shape == (len(p.pair_gaps), d, d)
    assert 0 < p.params and p.train_seconds > 0 and p.generate_seconds > 0


def _check_dit(p: probes.Probe, cfg: ExperimentConfig) -> None:
    N, D, R = cfg.process.N, cfg.model.depth, cfg.sampler.record
    K = len(p.times)
    assert K >= 2 and (np.diff(p.times) < 0).all() and p.times[-1] == pytest.approx(cfg.train.t0)
    assert p.similarity.shape == (K, D) and p.similarity_init.shape == (2, D)
    assert np.isfinite(p.similarity).all() and (np.abs(p.similarity) <= 1 + 1e-9).all()  # correlations
    assert p.fitted_ell.shape == p.diagonal_mass.shape == (D,)
    assert p.attention.shape == (min(R, K), D, N, N) and p.record_times.shape == (min(R, K),)
    np.testing.assert_allclose(p.attention.sum(-1), 1.0, rtol=1e-5)  # softmax rows, averaged: still rows
    np.testing.assert_allclose(p.diagonal_mass, np.diagonal(p.attention[-1], axis1=-2, axis2=-1).mean(-1), rtol=1e-6)
    assert p.record_times[0] == p.times[0] and p.record_times[-1] == p.times[-1]  # from T down to t0
    assert p.receptive_field == N - 1  # attention sees every frame


def _check_no_attention(p: probes.Probe) -> None:
    for name in ("times", "similarity", "similarity_init", "fitted_ell", "diagonal_mass", "record_times", "attention"):
        assert getattr(p, name).size == 0, name


def _check_dynamics(p: probes.Probe, cfg: ExperimentConfig) -> None:
    N, at = cfg.process.N, dynamics.dynamics_steps(cfg)
    at = [k for k in at if k <= p.steps]  # a run that converged stopped before the later points
    E = len(at)
    if not E:
        for name in ("eval_steps", "eval_temporal", "eval_spatial", "eval_covariance", "eval_gap_error", "eval_true",
                     "eval_gap_error_true", "eval_epochs", "eval_corr_gap", "eval_corr_spatial"):  # fmt: skip
            assert getattr(p, name).size == 0, name
        return
    assert p.eval_steps.tolist() == at
    assert p.eval_temporal.shape == p.eval_spatial.shape == p.eval_covariance.shape == (E,)
    assert p.eval_gap_error.shape == (E, N) and p.eval_true.shape == (3,) and p.eval_gap_error_true.shape == (N,)
    for arr in (p.eval_temporal, p.eval_spatial, p.eval_covariance, p.eval_gap_error, p.eval_true):
        assert np.isfinite(arr).all() and (arr >= 0).all()
    per_epoch = cfg.n_train // min(cfg.train.batch_size, cfg.n_train)
    assert p.eval_steps[0] == max(per_epoch, 1) or p.eval_steps[0] == cfg.train.steps  # from the first epoch on
    np.testing.assert_allclose(p.eval_epochs, p.eval_steps / per_epoch)
    assert p.eval_corr_gap.shape == (E, N) and p.eval_corr_spatial.shape == (E,)
    assert p.eval_corr_gap_true.shape == (N,) and math.isfinite(p.eval_corr_spatial_true)
    assert (p.eval_corr_gap[:, 0] < 1e-12).all()  # a correlation is 1 at gap 0, whatever the scale
    assert p.best_corr_gap.shape == (N,) and 0 <= p.best_corr_spatial  # the network kept, measured like the others
    if p.best_step == p.eval_steps[-1]:  # kept the last one measured: the same network, sampler stream and numbers
        np.testing.assert_allclose(p.best_corr_gap, p.eval_corr_gap[-1], rtol=1e-9, atol=1e-12)
    assert np.isfinite(p.eval_corr_gap).all() and (p.eval_corr_spatial >= 0).all()


def _same(a: probes.Probe, b: probes.Probe, skip: tuple[str, ...] = ()) -> None:
    """Every field but ``skip`` equal (arrays with their shapes; nan equal to nan)."""
    for name in a.__dataclass_fields__:
        if name in ("provenance", "path", "loaded", *skip):
            continue
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            assert x.shape == y.shape and np.array_equal(x, y, equal_nan=True), name
        elif isinstance(x, float) and math.isnan(x):
            assert math.isnan(y), name
        else:
            assert x == y, name


@pytest.fixture
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTHEORY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(results, "SHIPPED", tmp_path / "shipped")


@pytest.mark.usefixtures("private_cache")
def test_a_dit_point_measures_its_attention_and_round_trips(tmp_path):
    cfg = probes.CALIBRATED["smoke"].replace(N=8, depth=2, record=3, **TINY)  # N != 16, depth != 3: shapes follow
    p = probes.run_probe(cfg, progress=False)
    _check_common(p, cfg)
    _check_dit(p, cfg)
    _check_dynamics(p, cfg)  # eval_points = 0: no training dynamics
    cols = probes.columns(p)
    assert cols["similarity_t0_best"] == p.similarity[-1].max() and cols["receptive_field"] == 7
    p.provenance = Provenance.now(cfg.to_dict(), 1.0, "smoke", "cpu")
    back = results.read(results.write(p, tmp_path, "k"), probes.Probe)
    _same(p, back)
    assert setting(back, "depth") == 2 and setting(back, "arch") == "dit"


@pytest.mark.usefixtures("private_cache")
def test_a_unet_point_has_no_attention_its_receptive_field_and_training_dynamics(tmp_path):
    cfg = probes.CALIBRATED["smoke"].replace(N=8, arch="unet", levels=1, eval_points=3, **TINY)
    p = probes.run_probe(cfg, progress=False)
    _check_common(p, cfg)
    _check_no_attention(p)
    _check_dynamics(p, cfg)
    assert p.receptive_field == prepare(cfg)[2].max_gap
    assert "similarity_t0_best" not in probes.columns(p)
    # the measurement is deterministic under the seed: the same point again gives the same record
    _same(p, probes.run_probe(cfg, progress=False), skip=("train_seconds", "generate_seconds"))
    p.provenance = Provenance.now(cfg.to_dict(), 1.0, "smoke", "cpu")
    back = results.read(results.write(p, tmp_path, "k"), probes.Probe)
    _same(p, back)
    assert setting(back, "arch") == "unet" and setting(back, "eval_points") == 3


@pytest.mark.usefixtures("private_cache")
def test_a_calibrated_point_trains_to_convergence_and_measures_against_the_law_at_t0(tmp_path):
    # a cap of 80 steps checked every 10 (2 steps an epoch), correlations by gap in epochs
    tiny = {**TINY, "steps": 80, "eval_every": 10, "patience": 1, "eval_points": 5}
    cfg = probes.CALIBRATED["smoke"].replace(N=8, depth=2, record=3, **tiny)
    p = probes.run_probe(cfg, progress=False)
    _check_common(p, cfg)
    _check_dit(p, cfg)
    _check_dynamics(p, cfg)
    assert p.eval_steps.size >= 2 and p.eval_epochs[0] == 1  # the first measurement after one epoch
    # the generated sequences are judged against the law at t0: the true ones beside them against the data law, so
    # a generated error below the true one is possible at t0 (the law is wider by sigma_t0^2), never against Gamma
    cols = probes.columns(p)
    assert cols["stop_reason"] == p.stop_reason and cols["floor.temporal"] == p.floor.temporal
    assert cols["memorisation.ratio"] == p.memorisation.ratio
    p.provenance = Provenance.now(cfg.to_dict(), 1.0, "smoke", "cpu")
    back = results.read(results.write(p, tmp_path, "k"), probes.Probe)
    _same(p, back, skip=("floor", "memorisation", "validation"))
    assert back.floor == p.floor and back.memorisation == p.memorisation
    assert [list(v) for v in back.validation] == [list(v) for v in p.validation]


# ------------------------------------------------------------------------------------ every sweep, smoke
SWEEP_NAMES = [name for name, s in SWEEPS.items() if s.record is probes.Probe]


@pytest.fixture(scope="module")
def swept(tmp_path_factory, one_thread):
    """Every probe sweep run once into its own folder, then once more without folders (how a chapter asks for
    them), all in a private cache and with no shipped results."""
    root = tmp_path_factory.mktemp("probe-sweeps")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GPTHEORY_CACHE", str(root / "cache"))
        mp.setattr(results, "SHIPPED", root / "shipped")
        runs = {n: run_sweep(get(n), "smoke", out=root / n, axes=SEED0, progress=False, **TINY) for n in SWEEP_NAMES}
        again = {n: run_sweep(get(n), "smoke", out=None, axes=SEED0, progress=False, **TINY) for n in SWEEP_NAMES}
    return runs, again


def test_the_issue_sweeps_are_all_registered():
    assert set(SWEEP_NAMES) == {"architecture", "architecture-receptive-field", "architecture-length",
                                "architecture-depth", "architecture-lr", "attention-learned-depth",
                                "attention-learned-bandwidth", "attention-learned-white"}  # fmt: skip
    assert all(get(n).record is probes.Probe for n in SWEEP_NAMES)


@pytest.mark.parametrize("name", SWEEP_NAMES)
def test_each_sweep_runs_in_the_smoke_profile(swept, name):
    run = swept[0][name]
    sweep = get(name)
    axes = sweep.axes("smoke", **SEED0)
    own = {k: v for k, v in sweep.grid["smoke"].items() if k != "seed"}
    assert own and all(axes[k] == v for k, v in own.items())  # the sweep's own axis values, untouched
    n_points = math.prod(len(v) for v in axes.values())
    assert len(run.points) == n_points
    with open(run.out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == n_points
    metrics_cols = ("generated.temporal", "true.temporal", "generated.covariance", "paper_relative_error", "params",
                    "receptive_field", "roughness", "phase_share", "train_seconds", "device", "commit")  # fmt: skip
    for col in (*axes, *metrics_cols):
        assert col in rows[0], col
    assert json.loads((run.out / "sweep.json").read_text())["sweep"] == name
    assert (run.out / "summary.png").stat().st_size > 0
    assert len(list((run.out / "points").glob("probe-*.json"))) == n_points
    assert not list((run.out / "points").glob("*.pt"))  # finished points leave no checkpoint behind
    for (coords, rec), row in zip(run.points, rows, strict=True):
        cfg = ExperimentConfig.from_dict(rec.config)
        for k, v in coords.items():
            assert setting(rec, k) == v and str(row[k]) == str(v), (k, v)
        assert {k: setting(rec, k) for k in TINY} == TINY and rec.provenance.profile == "smoke"
        assert float(row["generated.temporal"]) == pytest.approx(rec.generated.temporal, rel=1e-12)
        _check_common(rec, cfg)
        _check_dynamics(rec, cfg)
        if cfg.model.arch == "dit":
            _check_dit(rec, cfg)
        else:
            _check_no_attention(rec)
            built = prepare(cfg)[2]
            assert rec.receptive_field == getattr(built, "max_gap", cfg.process.N - 1)


def test_what_each_sweep_varies_shows_in_its_points(swept):
    runs = swept[0]
    by = {n: {tuple(c.items()): r for c, r in runs[n].points} for n in SWEEP_NAMES}
    arch = {setting(r, "arch"): r for r in by["architecture"].values()}
    assert set(arch) == set(tuning.COMPARED_ARCHS)
    assert all(abs(r.params / arch["dit"].params - 1) <= 0.1 for r in arch.values())  # matched sizes
    for r in arch.values():  # measured in epochs from the first one on, up to where training stopped
        at = dynamics.dynamics_steps(ExperimentConfig.from_dict(r.config))
        assert len(at) == architecture.DYNAMICS_POINTS["smoke"] and r.eval_steps.tolist() == [
            k for k in at if k <= r.steps
        ]
    rf = {setting(r, "kernel_size"): r.receptive_field for r in by["architecture-receptive-field"].values()}
    assert rf[3] < rf[7]  # longer filters see further
    for r in by["architecture-length"].values():
        assert r.Gamma.shape == (setting(r, "N"),) * 2
    for r in [*by["architecture-depth"].values(), *by["attention-learned-depth"].values()]:
        assert r.similarity.shape[1] == setting(r, "depth")
    for r in by["attention-learned-bandwidth"].values():
        ell, nu = setting(r, "ell"), setting(r, "nu")
        assert r.Gamma[0, 1] == pytest.approx(math.exp(-((1 / ell) ** nu)), rel=1e-12)
    (white,) = by["attention-learned-white"].values()
    np.testing.assert_allclose(white.Gamma, np.eye(white.Gamma.shape[0]), rtol=0, atol=1e-170)  # exp(-400): I


def test_provenance_counts_a_point_shared_by_sweeps_once(swept):
    runs, again = swept
    every = [r for run in runs.values() for r in run.records()]
    distinct = {config_key(r.config) for r in every}
    assert len(distinct) < len(every)  # the base network is a point of several sweeps
    assert sum(run.computed for run in runs.values()) == len(distinct)  # ... and was trained once
    text = provenance_summary(runs.values())
    assert f"{len(distinct)} distinct trainings, {len(distinct)} of them trained in this build" in text
    assert "device cpu" in text
    # asked again without folders (as a chapter does), every point comes from the cache
    assert all(run.computed == 0 for run in again.values())
    assert f"{len(distinct)} distinct trainings, 0 of them trained in this build" in provenance_summary(again.values())
