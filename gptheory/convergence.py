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

STOP_REASONS = ("converged", "cap")


def quantiles(K: int) -> torch.Tensor:
    """The ``K`` fixed levels ``(k + 1/2) / K`` at which the training-time law is read for the validation times."""
    return (torch.arange(K, dtype=torch.float64) + 0.5) / K


class ValidationLoss:
    """The denoising loss of a network on held-out sequences ``x: (n_val, N, d)`` at fixed times ``t: (K,)`` (the
    training-time law at :func:`quantiles`) with fixed noise (drawn once from ``generator``), averaged over the times;
    ``loss(model) -> float`` (the model in eval mode).

    With ``exact_score`` (``score(x_t, t)`` of the data's law, float64; known for Gaussian data) the loss is the
    *excess* over the loss of the exact denoiser on the same inputs. Most of the denoising loss is the noise no
    denoiser can predict; the part a network can still reduce is a small difference on top, and a relative
    ``min_delta`` only means something against that part.
    """

    def __init__(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        generator: torch.Generator,
        device,
        exact_score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.t = t.float().cpu()
        self.x = x.to(torch.float32)
        self.eps = torch.randn((len(self.t), *x.shape), generator=generator)
        self.device = device
        self.exact_score = exact_score
        self.bayes: float | None = None

    def _batches(self, batch: int):
        for t, eps in zip(self.t, self.eps, strict=True):
            for xb, eb in zip(self.x.split(batch), eps.split(batch), strict=True):
                yield xb, eb, torch.full((xb.shape[0],), float(t))

    def _exact_loss(self, model: Denoiser, batch: int) -> float:
        """The loss of the exact denoiser in ``model``'s output form (``eps`` or ``v``) on the fixed inputs."""
        total, count, schedule = 0.0, 0, model.schedule
        for xb, eb, tt in self._batches(batch):
            xt = schedule.add_noise(xb.double(), tt.double(), eb.double())
            a = schedule.alpha(tt.double())[:, None, None]
            s = schedule.sigma(tt.double())[:, None, None]
            eps = -s * self.exact_score(xt, tt.double())
            raw = eps if model.prediction == "eps" else (eps - s * xt) / a
            target = model.target(xb.double(), eb.double(), tt.double())
            total += float(((raw - target) ** 2).sum())
            count += xb.numel()
        return total / count

    @torch.no_grad()
    def __call__(self, model: Denoiser, batch: int = 1024) -> float:
        if self.exact_score is not None and self.bayes is None:
            self.bayes = self._exact_loss(model, batch)
        total, count = 0.0, 0
        for xb, eb, tt in self._batches(batch):
            xb, eb, tt = xb.to(self.device), eb.to(self.device), tt.to(self.device)
            pred = model(model.schedule.add_noise(xb, tt, eb), tt, check=False, raw=True)
            total += float(F.mse_loss(pred.float(), model.target(xb, eb, tt), reduction="sum"))
            count += xb.numel()
        return total / count - (self.bayes or 0.0)


@dataclass
class Stopper:
    """Training to convergence of the validation loss: ``update(step, loss)`` returns whether to stop.

    A check improves when the loss falls below the best by more than ``min_delta * scale`` (``scale``: the exact
    denoiser's loss when the validation loss is an excess over it, else the first loss). After ``patience`` checks
    without an improvement the learning rate halves (``lr_scale``), a plateau at one rate being noise the rate
    sustains; once it would fall below ``min_lr_ratio``, the loss has converged.

    Attributes:
        history: ``[(step, loss), ...]``; best: the lowest loss so far, reached at ``best_step``, with the weights
        ``best_weights`` (those given to :meth:`update` then); since: checks since the last improvement or halving.
    """

    patience: int
    min_delta: float
    min_lr_ratio: float
    scale: float | None = None
    lr_scale: float = 1.0
    history: list = field(default_factory=list)
    best: float = math.inf
    best_step: int = 0
    best_weights: dict | None = None
    since: int = 0

    def update(self, step: int, loss: float, weights: dict | None = None, scale: float | None = None) -> bool:
        """Record the check at ``step`` (``weights``: a state dict to keep if this is the best so far; ``scale``:
        the loss's scale, taken at the first check); ``True`` when training should stop."""
        if self.scale is None:
            self.scale = abs(scale if scale is not None else loss) or 1.0
        self.history.append((int(step), float(loss)))
        if loss < self.best - self.min_delta * self.scale:
            self.best, self.best_step, self.since = loss, int(step), 0
            if weights is not None:
                self.best_weights = {k: v.detach().clone().cpu() for k, v in weights.items()}
            return False
        if loss < self.best:  # better, but not by enough to reset the patience: still the best weights
            self.best, self.best_step = loss, int(step)
            if weights is not None:
                self.best_weights = {k: v.detach().clone().cpu() for k, v in weights.items()}
        self.since += 1
        if self.since < self.patience:
            return False
        if self.lr_scale / 2 < self.min_lr_ratio:
            return True
        self.lr_scale, self.since = self.lr_scale / 2, 0
        return False

    def state(self) -> dict:
        keys = ("scale", "lr_scale", "best", "best_step", "best_weights", "since")
        return {"history": list(self.history)} | {k: getattr(self, k) for k in keys}

    def load(self, state: dict) -> None:
        self.history = [tuple(h) for h in state["history"]]
        self.scale, self.lr_scale = state["scale"], float(state["lr_scale"])
        self.best, self.best_step, self.since = float(state["best"]), int(state["best_step"]), int(state["since"])
        self.best_weights = state["best_weights"]


@dataclass
class Memorisation:
    """Nearest-neighbour distances (Euclidean, over the whole sequence) of generated sequences.

    Attributes:
        to_train: median distance of a generated sequence to its nearest training sequence.
        to_heldout: median distance to its nearest sequence among as many held-out ones.
        ratio: ``to_train / to_heldout``: about 1 for a generator that does not copy, well below 1 for one that does.
    """

    to_train: float
    to_heldout: float
    ratio: float


def _nearest(x: torch.Tensor, ref: torch.Tensor, chunk: int = 512) -> torch.Tensor:
    a, b = x.flatten(1).double(), ref.flatten(1).double()
    return torch.cat([torch.cdist(c, b).min(1).values for c in a.split(chunk)])


def memorisation(x_gen: torch.Tensor, train: torch.Tensor, heldout: torch.Tensor) -> Memorisation:
    """:class:`Memorisation` of ``x_gen: (m, N, d)`` against ``train: (n, N, d)`` and ``heldout``; the larger of the two
    reference sets is cut to the size of the smaller, since the nearest distance falls with the size of the set."""
    k = min(len(train), len(heldout))
    to_train = float(_nearest(x_gen, train[:k]).median())
    to_heldout = float(_nearest(x_gen, heldout[:k]).median())
    return Memorisation(to_train, to_heldout, to_train / to_heldout)


__all__ = ["STOP_REASONS", "Memorisation", "Stopper", "ValidationLoss", "memorisation", "quantiles"]
