"""The imputation experiment (smoke-sized): a point measures the network's method and the exact control on every
task against the posterior at t0, the record round-trips, and the verdicts read paired seeds."""

from __future__ import annotations

import dataclasses
import math

import matplotlib
import pytest

from gptheory import GaussianProcess, results
from gptheory.conditional import Conditional
from gptheory.experiments import SWEEPS
from gptheory.experiments.imputation import (
    IMPUTATION,
    Imputation,
    Scores,
    Task,
    columns,
    imputation_config,
    imputation_point,
    ratio,
    run_imputation,
    tasks,
)
from gptheory.experiments.imputation_analysis import (
    COVERAGE_MARGIN,
    coverage_gap,
    excess_by_seed,
    frame_ratios,
    kappa_verdicts,
    label,
    mean_ratio,
    plot_horizon,
    plot_paths,
    replacement_on_exact_score,
    summary,
    verdicts,
)
from gptheory.provenance import Provenance

matplotlib.use("Agg")


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTHEORY_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(results, "SHIPPED", tmp_path / "shipped")


def test_the_tasks_observe_some_frames_and_get_harder():
    for N in (8, 16, 64):
        assert all(0 < int(m.sum()) < N for m in tasks(N).values())
    for profile in ("cpu", "gpu"):  # harder: more posterior variance per missing coordinate
        p = IMPUTATION[profile].process
        gp = GaussianProcess(p.N, p.d, nu=p.nu, ell=p.ell, seed=p.sigma_seed)
        spread = []
        for m in tasks(p.N).values():
            c = Conditional(gp, m)
            spread.append(float(c.variance()[c.missing_entries].mean()))
        assert spread == sorted(spread), spread


@pytest.fixture(scope="module")
def point(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GPTHEORY_CACHE", str(cache))
        mp.setattr(results, "SHIPPED", cache / "shipped")
        return imputation_point("smoke", steps=60, progress=False)


def test_a_point_measures_both_methods_on_every_task_against_the_posterior(point):
    assert point.method == "conditional" and set(point.tasks) == set(tasks(8))
    for name, task in point.tasks.items():
        assert set(task.methods) == {"conditional", "exact"} and task.kappa >= 1 and task.kappa_t0 <= task.kappa
        exact = task.methods["exact"]
        # the control is at its floor (smoke sizes: loose), the network above it after 60 steps
        assert 0.5 < ratio(exact, "crps") < 1.3 and 0.5 < ratio(exact, "w2") < 1.6
        assert len(exact.frame_crps) == len(task.missing_frames) == 8 - sum(task.observed)
        assert sum(exact.pit) == 8 * len(task.missing_frames) * 2  # n_cond x missing coordinates
        assert point.paths[f"{name}.exact"].shape == (8, 8, 2) and point.paths[f"{name}.truth"].shape == (8, 2)
    assert point.stop_reason in ("converged", "cap") and point.validation
    row = columns(point)
    assert row["method"] == "conditional" and math.isfinite(row["gap-half.conditional.w2_ratio"])


def test_a_point_measured_on_one_task_repeats_that_task_of_the_whole_point(point):
    config = imputation_config("smoke", steps=60)
    one = run_imputation(config, progress=False, only=("gap-half",))
    assert list(one.tasks) == ["gap-half"] and one.steps == point.steps
    for method, sc in one.tasks["gap-half"].methods.items():  # each task's draws do not depend on the others
        assert sc.w2 == pytest.approx(point.tasks["gap-half"].methods[method].w2, rel=1e-6), method
    for bad in ((), ("gap-half", "nowcast")):
        with pytest.raises(ValueError, match="only must name some of the tasks interpolate, gap-half"):
            run_imputation(config, progress=False, only=bad)


def test_replacement_on_the_exact_score_uses_the_records_streams_and_is_biased(point):
    rep = replacement_on_exact_score(point)
    assert set(rep) == set(point.tasks)
    for name, sc in rep.items():
        exact = point.tasks[name].methods["exact"]
        # the posterior's CRPS at the pushed truths: the same held-out sequences and pushed noise as the record's
        assert sc.crps_posterior == pytest.approx(exact.crps_posterior, rel=1e-12)
        # replacement misses the posterior mean where the exact conditional score, from the same noise, does not
        assert ratio(sc, "mean_error") > 1.4 * ratio(exact, "mean_error"), name


def test_the_record_round_trips_through_its_files(point, tmp_path):
    path = results.write(point, tmp_path, "key")
    back = results.read(path, Imputation)
    assert back.tasks["gap-half"].methods["exact"] == point.tasks["gap-half"].methods["exact"]
    assert (back.paths["gap-half.conditional"] == point.paths["gap-half.conditional"]).all()


def test_the_figures_draw_from_the_record(point):
    import matplotlib.pyplot as plt

    for fig in (plot_paths(point, "forecast-half"), plot_horizon([point], "forecast-quarter")):
        assert fig.axes
        plt.close(fig)


def _scores(w2: float, cover90: float = 0.9) -> Scores:
    levels = [0.5, cover90, 0.95]
    return Scores(1.0, 1.0, 0.1, w2, 1.0, 0.1, levels, [0.5, 0.9, 0.95], levels, [0.5, 0.9, 0.95], 1.0, 1.0, 0.5, 0.5,
                  [1], [1.0], [1.0], 0.0)  # fmt: skip


def _fake(masking: str, n: int, seed: int, w2: float, cover90: float = 0.9) -> Imputation:
    """A record with two tasks: ``t`` (kappa 1) and the harder ``u`` (kappa 10, its ``W2`` 0.5 larger)."""
    config = imputation_config("smoke", masking=masking, n_train=n, seed=seed).to_dict()
    method = "replacement" if masking == "none" else "conditional"
    rec = Imputation(
        method=method,
        tasks={name: Task([True, False], kappa, kappa, [1], {method: _scores(w2 + extra, cover90),
                                                            "exact": _scores(1.0)})
               for name, kappa, extra in (("t", 1.0, 0.0), ("u", 10.0, 0.5))},
        train_seconds=0.0, steps=1, stop_reason="cap", best_step=1, validation=[],
    )  # fmt: skip
    rec.provenance = Provenance("cpu", "d", "c", "v", "h", "t", "smoke", config, 0.0)
    return rec


def test_the_verdicts_pair_seeds_and_read_the_excess_over_the_floor():
    pts = []
    for seed in range(4):
        pts += [_fake("mixed", 64, seed, 1.1 + 0.01 * seed), _fake("none", 64, seed, 2.0 + 0.02 * seed, 0.7)]
        pts += [_fake("random", 64, seed, 1.1 + 0.01 * seed + (0.05 if seed % 2 else -0.05), 0.9 + 0.03 * seed)]
        pts += [_fake("mixed", 32, seed, 1.5 + 0.01 * seed, 0.5)]
    e = excess_by_seed(pts, "t")
    assert e[("none", 64)][2] == pytest.approx(1.04) and e[("mixed", 64)][0] == pytest.approx(0.1)
    v = verdicts(pts)
    assert v[("replacement worse", "t")].outcome == "holds"
    assert v[("replacement worse", "t")].estimate == pytest.approx(0.9 + 0.01 * 1.5)
    assert v[("mixed beats random", "t")].outcome == "inconclusive"  # +-0.05 around zero
    assert v[("falls with n", "t")].outcome == "holds" and v[("falls with n", "t")].n == 4
    # coverage against the exact control at the shared n = 64 (the n = 32 network's 0.5 is not read)
    assert v[("undercovers (none)", "t")].outcome == "holds"  # 0.7 against 0.9: 20 points less
    assert v[("undercovers (none)", "t")].estimate == pytest.approx(0.2 - COVERAGE_MARGIN)
    assert v[("undercovers (mixed)", "t")].outcome == "fails"  # exactly the control's: below the margin
    assert v[("undercovers (random)", "t")].outcome == "fails"  # 0 to 9 points *more* than the control
    # a gap at the margin, give or take 1 point: the seeds cannot tell
    block = [_fake("block", 64, s, 1.2, 0.9 - COVERAGE_MARGIN + (0.01 if s % 2 else -0.01)) for s in range(4)]
    assert verdicts(pts + block)[("undercovers (block)", "t")].outcome == "inconclusive"
    k = kappa_verdicts(pts)
    assert [t for t, _ in k["mixed"][1]] == ["t", "u"] and k["mixed"][0] == "holds"
    header, rows = summary(pts, "t", 64)
    assert [r[0] for r in rows] == [label("none"), label("random"), label("mixed"), "exact score (control)"]
    assert rows[0][1] == "4" and rows[0][3].startswith("2.03 ±") and rows[-1][3] == "1 ± 0"
    assert mean_ratio(pts, "t", "w2", "none", 64) == pytest.approx(2.03)  # 2.0 + 0.02 seed, mean over 4 seeds
    assert mean_ratio(pts, "t", "w2", "none", 64, "exact") == pytest.approx(1.0)
    assert coverage_gap(pts, "t", "none", 64) == pytest.approx([0.2] * 4)  # control 0.9 minus network 0.7
    assert [r.tolist() for r in frame_ratios(pts, "t", "mixed")] == [[1.0]] * 8  # both n: 4 seeds each
    # a point of both sweeps, read twice, counts once
    assert summary(pts + [p for p in pts if p.method == "conditional"], "t", 64)[1][2][1] == "4"
    with pytest.raises(ValueError, match="no point was trained on n=128"):
        summary(pts, "t", 128)
    with pytest.raises(ValueError, match="no training-set size is shared"):
        verdicts([_fake("mixed", 64, 0, 1.0), _fake("none", 32, 0, 1.0)])


def test_the_sweeps_are_registered_and_the_unconditional_point_is_a_plain_dit():
    grid = SWEEPS["imputation-masking"].points("smoke")
    archs = {c.train.masking: c.model.arch for _, c in grid}
    assert archs == {"none": "dit", "random": "conditional-dit", "block": "conditional-dit", "mixed": "conditional-dit"}
    assert {c.n_train for _, c in SWEEPS["imputation-n"].points("cpu")} == {256, 1024, 4096}
    assert IMPUTATION["cpu"].sampler.n_draws > max(int((~m).sum()) for m in tasks(16).values()) * 4  # ellipsoids
    with pytest.raises(ValueError, match="arch='conditional-dit' with masking='none'"):
        dataclasses.replace(IMPUTATION["smoke"], train=dataclasses.replace(IMPUTATION["smoke"].train, masking="none"))
    with pytest.raises(ValueError, match="trains to convergence: patience must be > 0, got 0"):
        imputation_point("smoke", patience=0)
