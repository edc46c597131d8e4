"""Each network's own recipe for the architecture comparisons (issue 20, item 9): its learning rate, chosen on its
own validation loss, and its cap.

The sweep ``architecture-lr`` (``python -m gptheory sweep architecture-lr``) trains every architecture of
:data:`COMPARED_ARCHS` at every rate of :data:`LR_GRID` to convergence of its excess validation loss
(:data:`~.probe.CALIBRATED`), on a seed the comparisons do not use (:data:`TUNING_SEEDS`), so that the UNets do not
inherit a recipe tuned on the DiT. :func:`tuned_lr` picks each architecture's rate from its points, :data:`TUNED_LR`
records the pick (:func:`check_tuned` verifies it against the shipped points), and :func:`recipe` and :func:`tuned`
hand rate and cap to the calibrated sweeps of :mod:`.architecture` and :mod:`.attention_learned`.
"""

from __future__ import annotations

import math

import numpy as np

from ..config import ExperimentConfig
from ..profiles import PROFILES
from ..results import config_key, setting, shipped
from .probe import CALIBRATED, Probe, probe_sweep

COMPARED_ARCHS = ("dit", "unet", "diffusers-unet")
# The cpu grid was widened twice, each time because diffusers' UNet chose its largest rate (4e-3, then 8e-3): a choice
# at the edge of the grid has not been bracketed.
LR_GRID = {"smoke": (1e-3, 4e-3), "cpu": (5e-4, 1e-3, 2e-3, 4e-3, 8e-3, 1.6e-2), "gpu": (1.25e-4, 2.5e-4, 5e-4, 1e-3)}
TUNING_SEEDS = {p: (100,) for p in PROFILES}  # not a seed of any comparison: the choice is not fitted to their noise
# The rate :func:`tuned_lr` picks from the shipped ``architecture-lr`` points, per profile (a test re-derives it);
# an architecture missing here trains at the base rate (smoke: untuned; gpu: no gpu results exist).
TUNED_LR: dict[str, dict[str, float]] = {
    "smoke": {},
    "cpu": {"diffusers-unet": 8e-3, "dit": 2e-3, "unet": 2e-3},
    "gpu": {},
}
# A cap of an architecture's own where the base cap (probe.SIZE) stopped it at every rate of a first tuning run
# (diffusers' UNet: still improving at 10000 steps, 312 epochs, at all four rates); its rate is chosen at this cap.
CAP: dict[str, dict[str, int]] = {"smoke": {}, "cpu": {"diffusers-unet": 20000}, "gpu": {}}


def _capped(profile: str, arch: str) -> dict:
    """``{"steps": cap}`` where ``arch`` has a cap of its own in ``profile`` (:data:`CAP`), else ``{}``."""
    return {"steps": CAP[profile][arch]} if arch in CAP[profile] else {}


def recipe(profile: str, arch: str) -> dict:
    """The settings tuned for ``arch`` in ``profile``: its learning rate (:data:`TUNED_LR`; none: the base rate) and
    its cap (:data:`CAP`), as flat overrides of :data:`~.probe.CALIBRATED`."""
    return {**({"lr": TUNED_LR[profile][arch]} if arch in TUNED_LR[profile] else {}), **_capped(profile, arch)}


def tuned(arch: str = "dit", **overrides) -> dict[str, ExperimentConfig]:
    """Per profile, the calibrated base (:data:`~.probe.CALIBRATED`) for ``arch`` with its :func:`recipe` (tuned
    rate and cap), with flat ``overrides``."""
    return {p: c.replace(arch=arch, **recipe(p, arch), **overrides) for p, c in CALIBRATED.items()}


TUNING = probe_sweep(
    "architecture-lr",
    "each architecture's learning rate, chosen on its own validation loss (trained to convergence, a seed of its own)",
    base=CALIBRATED,
    linked={p: {"arch": {a: _capped(p, a) for a in CAP[p]}} for p in PROFILES},
    arch={p: COMPARED_ARCHS for p in PROFILES},
    lr=LR_GRID,
    seed=TUNING_SEEDS,
)


def tuned_lr(points: list[Probe]) -> dict[str, float]:
    """Per architecture, the learning rate whose trainings reached the lowest validation loss (the excess over the
    exact denoiser, :attr:`~gptheory.convergence.Calibrated.best_validation`, mean over seeds): ``{arch: lr}``, from
    points of the ``architecture-lr`` sweep."""
    scores: dict[str, dict[float, list[float]]] = {}
    for p in points:
        scores.setdefault(setting(p, "arch"), {}).setdefault(setting(p, "lr"), []).append(p.best_validation)
    if not scores:
        raise ValueError("tuned_lr needs at least one point of the architecture-lr sweep")

    def score(values: list[float]) -> float:  # a rate with no finite validation loss is never chosen
        m = float(np.mean(values))
        return m if math.isfinite(m) else math.inf

    return {arch: min(by_lr, key=lambda lr: score(by_lr[lr])) for arch, by_lr in sorted(scores.items())}


def check_tuned(profile: str = "cpu") -> dict[str, float]:
    """The rates :func:`tuned_lr` picks from the shipped ``architecture-lr`` points of ``profile``, checked: a clear
    error when that sweep has not shipped whole, or when :data:`TUNED_LR` says otherwise (then set it, commit, and
    run the calibrated sweeps from that commit)."""
    keys = {config_key(c.to_dict()) for _, c in TUNING.points(profile)}
    pts = [p for p in shipped(Probe.NAME, Probe) if config_key(p.provenance.config) in keys]
    if len(pts) < len(keys):
        raise ValueError(
            f"architecture-lr has shipped {len(pts)} of its {len(keys)} {profile} points: run python -m gptheory sweep "
            f"architecture-lr --profile {profile} --ship first"
        )
    chosen = tuned_lr(pts)
    if chosen != TUNED_LR[profile]:
        raise ValueError(
            f"architecture-lr chose {chosen} in the {profile} profile, TUNED_LR[{profile!r}] says {TUNED_LR[profile]}: "
            "set it in gptheory/experiments/tuning.py and commit before running the calibrated sweeps"
        )
    return chosen


__all__ = [
    "CAP",
    "COMPARED_ARCHS",
    "LR_GRID",
    "TUNED_LR",
    "TUNING",
    "TUNING_SEEDS",
    "check_tuned",
    "recipe",
    "tuned",
    "tuned_lr",
]
