"""When to stop training: a held-out validation loss on a fixed grid, patience and a cap; and a memorisation check.

The paper trains "until the training error has converged". A fixed step budget is not that (1500 steps are 1500
epochs at ``n = 64`` and 23 at ``n = 4096``), and the training loss is a noisy estimate of a moving target. Here:

* :class:`ValidationLoss`: the denoising loss of the EMA network (what the sampler uses) on ``n_val`` held-out
  sequences at ``K`` fixed times (the quantiles ``(k + 1/2) / K`` of the training-time law) with fixed noise, so two
  checks differ only because the weights did; its own error is no noise in the comparison;
* :class:`Stopper`: checked every ``eval_every`` steps, it halves the learning rate when the validation loss has not
  improved for ``patience`` checks and stops once the rate has come down to ``min_lr_ratio`` of its peak (reason
  ``"converged"``: more steps at any smaller rate stopped helping), or at the cap ``steps`` (reason ``"cap"``). A fixed
  schedule cannot do this: a plateau at a high rate is the noise that rate sustains, and the improvement that the
  decay brings comes late. It keeps the EMA weights of the best check, which are what is then sampled from (a network
  that began to overfit is rolled back); the steps and the reason are recorded with every result;
* :func:`memorisation`: the nearest-neighbour distances of generated sequences to the training set against those to
  as many held-out sequences: a ratio well below 1 means the generator copies its training set.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from .denoiser import Denoiser
from .metrics import CovarianceErrors

STOP_REASONS = ("converged", "cap")


def quantiles(K: int) -> torch.Tensor:
    """The ``K`` fixed levels ``(k + 1/2) / K`` at which the training-time law is read for the validation times."""
    return (torch.arange(K, dtype=torch.float64) + 0.5) / K


def missing_error(pred: torch.Tensor, target: torch.Tensor, observed: torch.Tensor) -> tuple[torch.Tensor, int]:
    """The summed squared error of ``pred`` against ``target`` (both ``(batch, N, d)``) over the missing entries of
    the frame masks ``observed: (batch, N)`` (``True`` where observed), and the number of those entries: a
    conditional network's loss reads only what it is asked to fill."""
    miss = (~observed)[:, :, None].to(pred.dtype)
    return (((pred - target) ** 2) * miss).sum(), int((~observed).sum()) * pred.shape[-1]


class ValidationLoss:
    """The denoising loss of a network on held-out sequences ``x: (n_val, N, d)`` at fixed times ``t: (K,)`` (the
    training-time law at :func:`quantiles`) with fixed noise (drawn once from ``generator``), averaged over the times;
    ``loss(model) -> float`` (the model in eval mode).

    With ``observed`` (``(n_val, N)`` bool frame masks, ``True`` where observed, one per held-out sequence) the loss
    is a conditional network's (:class:`gptheory.conditional_dit.ConditionalDiT`): the network is given each sequence's
    observed frames clean, and the loss averages over the missing entries only (:func:`missing_error`).

    With ``exact_score`` (``score(x_t, t)`` of the data's law, float64; known for Gaussian data; with ``observed``,
    ``score(x_t, t, x_obs, observed)``, the exact conditional score) the loss is reported
    as the *excess* over the loss of the exact denoiser on the same inputs: the part a network can still reduce (0 is
    the exact denoiser; on a finite validation set it can dip a little below). Subtracting a constant changes no
    comparison between checks; it makes the number readable, and :class:`Stopper` takes the exact loss as its scale.
    """

    def __init__(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        generator: torch.Generator,
        device,
        exact_score: Callable[..., torch.Tensor] | None = None,
        observed: torch.Tensor | None = None,
    ) -> None:
        self.t = t.float().cpu()
        self.x = x.to(torch.float32)
        self.eps = torch.randn((len(self.t), *x.shape), generator=generator)
        self.device = device
        self.exact_score = exact_score
        self.observed = None if observed is None else observed.cpu()
        self.bayes: float | None = None

    def _batches(self, batch: int):
        for t, eps in zip(self.t, self.eps, strict=True):
            for i in range(0, len(self.x), batch):
                xb, eb = self.x[i : i + batch], eps[i : i + batch]
                mb = None if self.observed is None else self.observed[i : i + batch]
                yield xb, eb, torch.full((xb.shape[0],), float(t)), mb

    def _exact_loss(self, model: Denoiser, batch: int) -> float:
        """The loss of the exact denoiser in ``model``'s output form (``eps`` or ``v``) on the fixed inputs."""
        total, count, schedule = 0.0, 0, model.schedule
        for xb, eb, tt, mb in self._batches(batch):
            xt = schedule.add_noise(xb.double(), tt.double(), eb.double())
            a = schedule.alpha(tt.double())[:, None, None]
            s = schedule.sigma(tt.double())[:, None, None]
            given = () if mb is None else (xb.double(), mb)
            eps = -s * self.exact_score(xt, tt.double(), *given)
            raw = eps if model.prediction == "eps" else (eps - s * xt) / a
            target = model.target(xb.double(), eb.double(), tt.double())
            if mb is None:
                total += float(((raw - target) ** 2).sum())
                count += xb.numel()
            else:
                err, n = missing_error(raw, target, mb)
                total, count = total + float(err), count + n
        return total / count

    @torch.no_grad()
    def __call__(self, model: Denoiser, batch: int = 1024) -> float:
        if self.exact_score is not None and self.bayes is None:
            self.bayes = self._exact_loss(model, batch)
        total, count = 0.0, 0
        for xb, eb, tt, mb in self._batches(batch):
            xb, eb, tt = xb.to(self.device), eb.to(self.device), tt.to(self.device)
            xt = model.schedule.add_noise(xb, tt, eb)
            if mb is None:
                pred = model(xt, tt, check=False, raw=True)
                total += float(F.mse_loss(pred.float(), model.target(xb, eb, tt), reduction="sum"))
                count += xb.numel()
            else:
                mb = mb.to(self.device)
                pred = model(xt, tt, xb, mb, check=False, raw=True)
                err, n = missing_error(pred.float(), model.target(xb, eb, tt), mb)
                total, count = total + float(err), count + n
        return total / count - (self.bayes or 0.0)


@dataclass
class Stopper:
    """Training to convergence of the validation loss: ``update(step, loss)`` returns whether to stop.

    A check counts as progress when the loss falls below the *reference* (the loss of the last check that counted) by
    more than ``min_delta * scale``, with ``scale`` the size of the loss (the exact denoiser's loss when the validation
    loss is reported as an excess over it, else the first loss); small falls add up until they count. After
    ``patience`` checks without progress the learning rate halves (``lr_scale``): a plateau at one rate is the noise
    that rate sustains. Once the next halving would take the rate below ``min_lr_ratio``, the loss has converged.
    Separately, the lowest loss seen (``best``, at ``best_step``) keeps its weights, which are what is then sampled
    from.

    Attributes:
        history: ``[(step, loss), ...]``; reference: the loss progress is measured from; since: checks since the last
        progress or halving; best, best_step, best_weights: the lowest loss so far and its weights.
    """

    patience: int
    min_delta: float
    min_lr_ratio: float
    scale: float | None = None
    lr_scale: float = 1.0
    history: list = field(default_factory=list)
    reference: float = math.inf
    best: float = math.inf
    best_step: int = 0
    best_weights: dict | None = None
    since: int = 0

    def update(self, step: int, loss: float, weights: dict | None = None, scale: float | None = None) -> bool:
        """Record the check at ``step`` (``weights``: a state dict to keep if this is the lowest loss so far;
        ``scale``: the loss's size, taken at the first check); ``True`` when training should stop."""
        if self.scale is None:
            self.scale = abs(scale if scale is not None else loss) or 1.0
        self.history.append((int(step), float(loss)))
        if loss < self.best:
            self.best, self.best_step = float(loss), int(step)
            if weights is not None:
                self.best_weights = {k: v.detach().clone().cpu() for k, v in weights.items()}
        if loss < self.reference - self.min_delta * self.scale:
            self.reference, self.since = float(loss), 0
            return False
        self.since += 1
        if self.since < self.patience:
            return False
        if self.lr_scale / 2 < self.min_lr_ratio:
            return True
        self.lr_scale, self.since = self.lr_scale / 2, 0
        return False

    def state(self) -> dict:
        keys = ("scale", "lr_scale", "reference", "best", "best_step", "best_weights", "since")
        return {"history": list(self.history)} | {k: getattr(self, k) for k in keys}

    def load(self, state: dict) -> None:
        self.history = [tuple(h) for h in state["history"]]
        self.scale, self.lr_scale, self.reference = state["scale"], float(state["lr_scale"]), float(state["reference"])
        self.best, self.best_step, self.since = float(state["best"]), int(state["best_step"]), int(state["since"])
        self.best_weights = state["best_weights"]


@dataclass
class Memorisation:
    """Nearest-neighbour distances (Euclidean, over the whole sequence) of generated sequences.

    Attributes:
        to_train: median distance of a generated sequence to its nearest training sequence.
        to_heldout: median distance to its nearest sequence among as many held-out ones.
        ratio: ``to_train / to_heldout``: about 1 for a generator that does not copy, well below 1 for one that does.
        copies: the share of generated sequences whose nearest training sequence is closer than half their nearest
            held-out one (a median cannot see a copied minority; this can).
    """

    to_train: float
    to_heldout: float
    ratio: float
    copies: float = 0.0


@dataclass(kw_only=True)
class Calibrated:
    """The fields every record of generated sequences carries (the network trained to convergence, its samples measured
    against the law at ``t0``). A record class lists it among its bases; the fields are keyword-only, after the
    record's own.

    Attributes:
        floor: the sampling floor of the ``n_gen`` generated sequences' law at ``t0``
            (:func:`gptheory.floors.sampling_floor`, a :class:`gptheory.metrics.CovarianceErrors`).
        relative_count: the count ``m`` of generated and of training sequences behind the paper's relative error.
        memorisation: :func:`memorisation` of the generated sequences.
        stop_reason, best_step: how training ended (one of :data:`STOP_REASONS`) and the step of the weights kept.
        validation: the validation curve, ``[[step, excess loss], ...]`` (:class:`ValidationLoss`).

    All of them are measured by :func:`gptheory.trial.calibrated`.
    """

    floor: CovarianceErrors | None = None
    relative_count: int = 0
    memorisation: Memorisation | None = None
    stop_reason: str = "cap"
    best_step: int = 0
    validation: list = field(default_factory=list)

    @property
    def best_validation(self) -> float:
        """The lowest validation loss of the run (``nan`` without a validation curve): what a rate is chosen on."""
        return min((float(v) for _, v in self.validation), default=math.nan)

    def calibrated_columns(self) -> dict:
        """These fields as columns of a ``results.csv`` row."""
        out = {f"floor.{k}": v for k, v in self.floor.__dict__.items()}
        out |= {k: getattr(self, k) for k in ("best_step", "stop_reason", "best_validation", "relative_count")}
        return out | {"memorisation.ratio": self.memorisation.ratio, "memorisation.copies": self.memorisation.copies}


def _nearest(x: torch.Tensor, ref: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    a, b = x.flatten(1).double(), ref.flatten(1).double()
    return torch.cat([torch.cdist(c, b).min(1).values for c in a.split(chunk)])


def memorisation(x_gen: torch.Tensor, train: torch.Tensor, heldout: torch.Tensor) -> Memorisation:
    """:class:`Memorisation` of ``x_gen: (m, N, d)`` against ``train: (n, N, d)`` and ``heldout``; the larger of the two
    reference sets is cut to the size of the smaller, since the nearest distance falls with the size of the set."""
    k = min(len(train), len(heldout))
    d_train, d_held = _nearest(x_gen, train[:k]), _nearest(x_gen, heldout[:k])
    to_train, to_heldout = float(d_train.median()), float(d_held.median())
    return Memorisation(to_train, to_heldout, to_train / to_heldout, float((d_train < 0.5 * d_held).double().mean()))


__all__ = [
    "STOP_REASONS",
    "Calibrated",
    "Memorisation",
    "Stopper",
    "ValidationLoss",
    "memorisation",
    "missing_error",
    "quantiles",
]
