"""Reading the imputation sweeps (:mod:`gptheory.experiments.imputation`): the excess of each metric over its floor
per seed, the verdicts on the claims they test (:func:`gptheory.statistics.verdict`, paired by seed), and the
chapter's figures: completions of one sequence over its posterior band, the error per frame against the horizon."""

from __future__ import annotations

import numpy as np
import torch

from ..conditional import Conditional
from ..gp import GaussianProcess
from ..results import setting
from ..schedules import DDPMSchedule
from ..statistics import verdict
from .imputation import Imputation, ratio


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


def _paired(a: dict, b: dict) -> list[float]:
    """Per seed that both have, ``a - b``."""
    return [a[s] - b[s] for s in sorted(set(a) & set(b))]


def verdicts(points: list[Imputation], metric: str = "w2") -> dict:
    """The claims the sweeps test, each a :func:`gptheory.statistics.verdict` on per-seed differences of the excess
    over the floor (paired by seed), per task: ``{(claim, task): Verdict}``.

    * ``"replacement worse"``: the unconditional DiT by replacement is further from the posterior than the
      conditional DiT trained on mixed masks, at the same ``n``;
    * ``"mixed beats random"``, ``"mixed beats block"``: the mixed-mask DiT is closer than the one trained on only
      random (only block) masks;
    * ``"falls with n"``: the mixed-mask DiT at the largest ``n`` is closer than at the smallest.
    """
    names = sorted({t for p in points for t in p.tasks})
    out = {}
    for task in names:
        e = excess_by_seed(points, task, metric)
        ns = sorted({n for m, n in e if m == "mixed"})
        for n in ns:
            for other, claim in (("none", "replacement worse"), ("random", "mixed beats random"),
                                 ("block", "mixed beats block")):  # fmt: skip
                if (other, n) in e:
                    out[(claim, task)] = verdict(_paired(e[(other, n)], e[("mixed", n)]))
        if len(ns) > 1:
            out[("falls with n", task)] = verdict(_paired(e[("mixed", ns[0])], e[("mixed", ns[-1])]))
    return out


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
        label = "replacement (unconditional DiT)" if masking == "none" else f"conditional DiT, {masking} masks"
        ax.plot(frames, curve, "o-", color=f"C{k}", ms=3, label=label)
    ref = np.mean([p.tasks[task].methods["exact"].frame_crps_posterior for p in points], axis=0)
    ax.plot(frames, ref, "k--", label="exact posterior")
    ax.set_xlabel("missing frame")
    ax.set_ylabel("mean CRPS")
    ax.set_title(task)
    ax.legend(fontsize=8)
    return fig


__all__ = ["excess_by_seed", "plot_horizon", "plot_paths", "verdicts"]
