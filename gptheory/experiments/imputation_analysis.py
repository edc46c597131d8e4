"""Reading the imputation sweeps (:mod:`gptheory.experiments.imputation`): the excess of each metric over its floor
per seed, the verdicts on the claims they test (:func:`gptheory.statistics.verdict`, paired by seed), and the
chapter's figures: completions of one sequence over its posterior band, the error per frame against the horizon."""

from __future__ import annotations

import numpy as np
import torch

from ..conditional import Conditional
from ..config import ExperimentConfig
from ..gp import GaussianProcess
from ..imputers import ExactDenoiser, impute
from ..results import setting
from ..schedules import DDPMSchedule
from ..statistics import ordered, verdict
from ..streams import generator, seed_of
from .imputation import Imputation, Scores, measure, pushed_truth, ratio

COVERAGE_MARGIN = 0.02  # "undercovers": by more than 2 points of 90% coverage below the exact control (claims table)


def label(masking: str) -> str:
    """The network a masking strategy names: ``"none"`` is the unconditional DiT imputing by replacement."""
    return "replacement (unconditional DiT)" if masking == "none" else f"conditional DiT, {masking} masks"


def _mean_se(values: list[float]) -> str:
    """``"1.23 ± 0.04"``: the mean over seeds and its standard error (``"1.23"`` for one seed)."""
    x = np.asarray(values, float)
    if len(x) < 2:
        return f"{x.mean():.3g}"
    return f"{x.mean():.3g} ± {x.std(ddof=1) / np.sqrt(len(x)):.2g}"


def summary(points: list[Imputation], task: str, n: int) -> tuple[list[str], list[list[str]]]:
    """Every network trained on ``n`` sequences (one row per masking) and the exact conditional score through the
    same sampler (one run per seed: its draws depend only on the seed), on ``task``: the mean over seeds (± standard
    error) of the mean error, ``W2`` and CRPS over their floors, and of the coverage of the 50/90/95% intervals per
    coordinate and of the 90% ellipsoid, with what a perfect generator covers in expectation. Returns ``(header,
    rows)`` for :func:`gptheory.book.notebook.html_table`."""
    groups: dict = {}  # by masking and seed: a point of both sweeps counts once
    control: dict = {}
    for p in points:
        if int(setting(p, "n_train")) != n:
            continue
        seed = int(setting(p, "seed"))
        groups.setdefault(p.provenance.config["train"].get("masking", "none"), {})[seed] = p.tasks[task].methods[
            p.method
        ]
        control[seed] = p.tasks[task].methods["exact"]
    if not groups:
        raise ValueError(f"no point was trained on n={n} sequences")
    order = [m for m in ("none", "random", "block", "mixed") if m in groups] + sorted(
        set(groups) - {"none", "random", "block", "mixed"}
    )
    named = [(label(m), list(groups[m].values())) for m in order] + [("exact score (control)", list(control.values()))]
    first = named[0][1][0]
    expected = "/".join(f"{e:.3f}" for e in first.coverage_expected)
    header = [
        "method",
        "seeds",
        "mean error / floor",
        "W2 / floor",
        "CRPS / floor",
        f"coverage 50/90/95% (expected {expected})",
        f"90% ellipsoid (expected {first.ellipsoid_expected[1]:.3f})",
    ]
    rows = []
    for name, scores in named:
        cov = "/".join(f"{np.mean([s.coverage[k] for s in scores]):.3f}" for k in range(len(first.coverage)))
        rows.append(
            [
                name,
                str(len(scores)),
                *(_mean_se([ratio(s, m) for s in scores]) for m in ("mean_error", "w2", "crps")),
                cov,
                _mean_se([s.ellipsoid[1] for s in scores]),
            ]
        )
    return header, rows


def excess_by_seed(points: list[Imputation], task: str, metric: str = "w2", method: str | None = None) -> dict:
    """``{(masking, n_train): {seed: ratio - 1}}``: the excess of ``metric`` over its floor on ``task``, in units
    of the floor, of the network's method (or of ``method``, e.g. ``"exact"``, the control)."""
    out: dict = {}
    for p in points:
        train = p.provenance.config["train"]
        key = (train.get("masking", "none"), int(setting(p, "n_train")))
        sc = p.tasks[task].methods[method or p.method]
        out.setdefault(key, {})[int(setting(p, "seed"))] = ratio(sc, metric) - 1
    return out


def training(points: list[Imputation]) -> tuple[list[str], list[list]]:
    """How each network's training ended, one row per point (masking, ``n``, seed): the steps run of the cap, why it
    stopped, the step whose weights were kept and its excess validation loss, and the wall time. Returns ``(header,
    rows)`` for :func:`gptheory.book.notebook.html_table`."""
    rows = []
    for p in sorted(points, key=lambda q: (q.provenance.config["train"].get("masking", "none"),
                                           setting(q, "n_train"), setting(q, "seed"))):  # fmt: skip
        cap = p.provenance.config["train"]["steps"]
        best = min((v for s, v in p.validation if s == p.best_step), default=float("nan"))
        rows.append([label(p.provenance.config["train"].get("masking", "none")), int(setting(p, "n_train")),
                     int(setting(p, "seed")), f"{p.steps} / {cap}", p.stop_reason, p.best_step, best,
                     f"{p.train_seconds:.0f}"])  # fmt: skip
    header = ["network", "n", "seed", "steps / cap", "stopped", "kept step", "excess validation loss", "train (s)"]
    return header, rows


def _paired(a: dict, b: dict) -> list[float]:
    """Per seed that both have, ``a - b``."""
    return [a[s] - b[s] for s in sorted(set(a) & set(b))]


def replacement_on_exact_score(record: Imputation) -> dict[str, Scores]:
    """Replacement driven by the *exact* unconditional score (:class:`gptheory.imputers.ExactDenoiser`) on the held-out
    sequences, starting noise and pushed truths of ``record`` (its streams), scored as the record's methods were: by
    task name. Set beside the record's replacement with a trained network, it separates the method's error from
    learning's on the same draws' randomness."""
    config = ExperimentConfig.from_dict(record.provenance.config)
    p, s, t0 = config.process, config.sampler, config.train.t0
    gp = GaussianProcess(p.N, p.d, nu=p.nu, ell=p.ell, seed=p.sigma_seed)
    schedule = DDPMSchedule()  # every imputation network's schedule
    truth = gp.sample(s.n_cond, generator=generator(config.seed, "conditioning"))
    out = {}
    for name in record.tasks:
        observed = torch.tensor(record.tasks[name].observed)
        cond = Conditional(gp, observed)
        at = cond.at(t0, schedule)
        pushed = pushed_truth(truth, at, schedule, t0, generator(config.seed, "pushed"))
        x = impute("replacement", truth, observed, s.n_draws, schedule, s.sample_steps, t0,
                   seed_of(config.seed, "imputer"), model=ExactDenoiser(gp), cond=cond)  # fmt: skip
        out[name] = measure(x, at, truth, pushed, 0.0, config.seed)
    return out


def _common_n(points: list[Imputation]) -> int:
    """The training-set size every masking was trained at (the masking sweep's): the largest one all share."""
    sizes: dict = {}
    for p in points:
        sizes.setdefault(p.provenance.config["train"].get("masking", "none"), set()).add(int(setting(p, "n_train")))
    shared = set.intersection(*sizes.values())
    if not shared:
        raise ValueError(f"no training-set size is shared by every masking: {sizes}")
    return max(shared)


def verdicts(points: list[Imputation], metric: str = "w2") -> dict:
    """The claims the sweeps test, each a :func:`gptheory.statistics.verdict` on per-seed differences (paired by
    seed), per task: ``{(claim, task): Verdict}``. Networks are compared at the training-set size they all share.

    * ``"replacement worse"``: the unconditional DiT by replacement is further from the posterior (``metric`` over
      its floor) than the conditional DiT trained on mixed masks;
    * ``"mixed beats random"``, ``"mixed beats block"``: the mixed-mask DiT is closer than the one trained on only
      random (only block) masks;
    * ``"falls with n"``: the mixed-mask DiT at the largest ``n`` is closer than at the smallest;
    * ``"undercovers (<masking>)"``: that network's 90% intervals cover less than the exact control's from the same
      noise by more than :data:`COVERAGE_MARGIN`: the verdict on the per-seed gap (control minus network) less the
      margin, so its estimate and interval are the gap's shifted down by the margin (*fails*: the gap is clearly
      below the margin, including a network that covers more).
    """
    names = list(points[0].tasks)
    n0 = _common_n(points)
    out = {}
    for task in names:
        e = excess_by_seed(points, task, metric)
        for other, claim in (("none", "replacement worse"), ("random", "mixed beats random"),
                             ("block", "mixed beats block")):  # fmt: skip
            if (other, n0) in e and ("mixed", n0) in e:
                out[(claim, task)] = verdict(_paired(e[(other, n0)], e[("mixed", n0)]))
        ns = sorted(n for m, n in e if m == "mixed")
        if len(ns) > 1:
            out[("falls with n", task)] = verdict(_paired(e[("mixed", ns[0])], e[("mixed", ns[-1])]))
        for masking, _ in sorted(k for k in e if k[1] == n0):
            gaps = coverage_gap(points, task, masking, n0)
            out[(f"undercovers ({masking})", task)] = verdict([g - COVERAGE_MARGIN for g in gaps])
    return out


def kappa_verdicts(points: list[Imputation], metric: str = "w2") -> dict:
    """The follow-up paper's claim that the error grows with the condition number of the posterior covariance
    ``kappa(C_c)`` (set by the mask), per masking at the shared training-set size: the tasks ordered by ``kappa``,
    each adjacent pair a paired verdict on ``metric``'s excess over its floor (:func:`gptheory.statistics.ordered`).
    Returns ``{masking: (outcome, [(task, kappa), ...], links)}``."""
    n0 = _common_n(points)
    by_kappa = sorted(points[0].tasks, key=lambda t: points[0].tasks[t].kappa)
    excess = {t: excess_by_seed(points, t, metric) for t in by_kappa}
    out = {}
    for masking in sorted({m for m, n in excess[by_kappa[0]] if n == n0}):
        outcome, links = ordered([excess[t][(masking, n0)] for t in by_kappa])
        out[masking] = (outcome, [(t, points[0].tasks[t].kappa) for t in by_kappa], links)
    return out


def mean_ratio(
    points: list[Imputation], task: str, metric: str, masking: str, n: int, method: str | None = None
) -> float:
    """``metric`` over its floor on ``task``, mean over seeds, of the network of ``masking`` trained on ``n`` sequences
    (or of ``method`` on those points, e.g. ``"exact"``, the control): :func:`excess_by_seed` plus 1."""
    return 1 + float(np.mean(list(excess_by_seed(points, task, metric, method)[(masking, n)].values())))


def frame_ratios(points: list[Imputation], task: str, masking: str) -> list[np.ndarray]:
    """Per point of ``masking``, the network's CRPS over the exact posterior's per missing frame of ``task`` (in frame
    order): how its excess moves with the horizon."""
    chosen = [p.tasks[task].methods[p.method] for p in points
              if p.provenance.config["train"].get("masking", "none") == masking]  # fmt: skip
    return [np.asarray(sc.frame_crps) / np.asarray(sc.frame_crps_posterior) for sc in chosen]


def coverage_gap(points: list[Imputation], task: str, masking: str, n: int) -> list[float]:
    """Per seed, the 90% coverage of the exact control minus that of the network of ``masking`` trained on ``n``
    sequences (positive: the network's intervals cover less)."""
    out = {}
    for p in points:
        if p.provenance.config["train"].get("masking", "none") == masking and int(setting(p, "n_train")) == n:
            sc = p.tasks[task].methods
            out[int(setting(p, "seed"))] = sc["exact"].coverage[1] - sc[p.method].coverage[1]
    return [out[s] for s in sorted(out)]


def plot_paths(record: Imputation, task: str = "forecast-half", coordinate: int = 0):
    """The first held-out sequence of ``task``: its posterior band at ``t0`` (mean +- 2 sd), the kept draws of the
    network's method and of the exact score, the truth and its observed frames, coordinate ``coordinate``. Returns
    the matplotlib ``Figure``."""
    import matplotlib.pyplot as plt

    c = record.provenance.config
    p, t0 = c["process"], c["train"]["t0"]
    gp = GaussianProcess(p["N"], p["d"], nu=p["nu"], ell=p["ell"], seed=p["sigma_seed"])
    observed = torch.tensor(record.tasks[task].observed)
    truth = torch.as_tensor(record.paths[f"{task}.truth"])[None]
    at = Conditional(gp, observed).at(t0, DDPMSchedule())  # every imputation network's schedule
    frames = np.arange(gp.N)
    mean, sd = at.mean(truth)[0, :, coordinate].numpy(), at.variance()[:, coordinate].sqrt().numpy()
    fig, axes = plt.subplots(1, 2, figsize=(9.6, 3.4), sharey=True, constrained_layout=True)
    for ax, m in zip(axes, (record.method, "exact"), strict=True):
        x = record.paths[f"{task}.{m}"]
        ax.fill_between(frames, mean - 2 * sd, mean + 2 * sd, color="0.85", label="posterior $\\pm 2$ sd")
        ax.plot(frames, mean, color="0.4", lw=1, label="posterior mean")
        ax.plot(frames, x[:, :, coordinate].T, color="C0", lw=0.8, alpha=0.8)
        ax.plot(frames, truth[0, :, coordinate].numpy(), "k--", lw=1, label="truth")
        obs = observed.numpy()
        ax.plot(frames[obs], truth[0, obs, coordinate].numpy(), "ko", ms=3, label="observed")
        ax.set_title(f"{m}: {len(x)} draws ({task})")
        ax.set_xlabel("frame")
    axes[0].set_ylabel(f"coordinate {coordinate}")
    axes[0].legend(fontsize=7, loc="best")
    return fig


def plot_horizon(points: list[Imputation], task: str = "forecast-quarter"):
    """The mean CRPS per missing frame on ``task`` against the frame, per masking (mean over seeds), beside the
    exact posterior's (the posterior's own growth with the horizon). Returns the matplotlib ``Figure``."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.0), constrained_layout=True)
    groups: dict = {}
    for p in points:
        groups.setdefault(p.provenance.config["train"].get("masking", "none"), []).append(p)
    frames = points[0].tasks[task].missing_frames
    for k, (masking, pts) in enumerate(sorted(groups.items())):
        curve = np.mean([p.tasks[task].methods[p.method].frame_crps for p in pts], axis=0)
        ax.plot(frames, curve, "o-", color=f"C{k}", ms=3, label=label(masking))
    ref = np.mean([p.tasks[task].methods["exact"].frame_crps_posterior for p in points], axis=0)
    ax.plot(frames, ref, "k--", label="exact posterior")
    ax.set_xlabel("missing frame")
    ax.set_ylabel("mean CRPS")
    ax.set_title(task)
    ax.legend(fontsize=8)
    return fig


def plot_n(points: list[Imputation], metric: str = "w2"):
    """The mixed-mask DiT's excess of ``metric`` over its floor (``ratio - 1``) against the number of training
    sequences, one panel per task: each seed a dot, the mean over seeds a line. Returns the matplotlib ``Figure``."""
    import matplotlib.pyplot as plt

    names = list(points[0].tasks)
    fig, axes = plt.subplots(1, len(names), figsize=(3.0 * len(names), 3.0), sharey=True, constrained_layout=True)
    for ax, task in zip(np.atleast_1d(axes), names, strict=True):
        e = {n: v for (m, n), v in excess_by_seed(points, task, metric).items() if m == "mixed"}
        ns = sorted(e)
        for n in ns:
            ax.plot([n] * len(e[n]), list(e[n].values()), "o", color="C0", ms=3, alpha=0.6)
        ax.plot(ns, [np.mean(list(e[n].values())) for n in ns], "-", color="C0")
        ax.set_xscale("log")
        ax.axhline(0.0, color="k", lw=0.8, ls=":")
        ax.set_title(task, fontsize=9)
        ax.set_xlabel("training sequences n")
    np.atleast_1d(axes)[0].set_ylabel(f"{metric} / floor - 1")
    return fig


__all__ = [
    "COVERAGE_MARGIN",
    "coverage_gap",
    "excess_by_seed",
    "frame_ratios",
    "kappa_verdicts",
    "label",
    "mean_ratio",
    "plot_horizon",
    "plot_n",
    "plot_paths",
    "replacement_on_exact_score",
    "summary",
    "training",
    "verdicts",
]
