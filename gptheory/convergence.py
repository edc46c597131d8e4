"""When to stop training: a held-out validation loss on a fixed grid, patience and a cap; and a memorisation check.

The paper trains "until the training error has converged". A fixed step budget is not that (1500 steps are 1500
epochs at ``n = 64`` and 23 at ``n = 4096``), and the training loss is a noisy estimate of a moving target. Here:

* :class:`ValidationLoss`: the denoising loss of the EMA network (what the sampler uses) on ``n_val`` held-out
  sequences at ``K`` fixed times (the quantiles ``(k + 1/2) / K`` of the training-time law) with fixed noise, so two
  checks differ only because the weights did; its own error is no noise in the comparison;
* :class:`Stopper`: checked every ``eval_every`` steps, it stops when the best validation loss has not improved by a
  relative ``min_delta`` for ``patience`` checks (reason ``"converged"``), or at the cap ``steps``
  (reason ``"cap"``); it keeps the EMA weights of the best check, which are what is then sampled from (a network
  that began to overfit is rolled back); the steps and the reason are recorded with every result;
* :func:`memorisation`: the nearest-neighbour distances of generated sequences to the training set against those to
  as many held-out sequences: a ratio well below 1 means the generator copies its training set.
"""

from __future__ import annotations

import math
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
    ``loss(model) -> float`` (the model in eval mode)."""

    def __init__(self, x: torch.Tensor, t: torch.Tensor, generator: torch.Generator, device) -> None:
        self.t = t.float().cpu()
        self.x = x.to(torch.float32)
        self.eps = torch.randn((len(self.t), *x.shape), generator=generator)
        self.device = device

    @torch.no_grad()
    def __call__(self, model: Denoiser, batch: int = 1024) -> float:
        total, count = 0.0, 0
        schedule = model.schedule
        for t, eps in zip(self.t, self.eps, strict=True):
            for xb, eb in zip(self.x.split(batch), eps.split(batch), strict=True):
                xb, eb = xb.to(self.device), eb.to(self.device)
                tt = torch.full((xb.shape[0],), float(t), device=self.device)
                pred = model(schedule.add_noise(xb, tt, eb), tt, check=False, raw=True)
                total += float(F.mse_loss(pred.float(), model.target(xb, eb, tt), reduction="sum"))
                count += xb.numel()
        return total / count


@dataclass
class Stopper:
    """Patience on the validation loss: ``update(step, loss)`` returns whether to stop.

    Attributes:
        patience: checks without an improvement before stopping; min_delta: relative improvement that counts.
        history: ``[(step, loss), ...]``; best: the lowest loss so far, reached at ``best_step``, with the weights
        ``best_weights`` (those given to :meth:`update` then); since: checks since it was reached.
    """

    patience: int
    min_delta: float
    history: list = field(default_factory=list)
    best: float = math.inf
    best_step: int = 0
    best_weights: dict | None = None
    since: int = 0

    def update(self, step: int, loss: float, weights: dict | None = None) -> bool:
        """Record the check at ``step`` (``weights``: a state dict to keep if this is the best so far); ``True``
        when training should stop."""
        self.history.append((int(step), float(loss)))
        if loss < self.best * (1 - self.min_delta):
            self.best, self.best_step, self.since = loss, int(step), 0
            if weights is not None:
                self.best_weights = {k: v.detach().clone().cpu() for k, v in weights.items()}
        else:
            self.since += 1
        return self.since >= self.patience

    def state(self) -> dict:
        keys = ("best", "best_step", "best_weights", "since")
        return {"history": list(self.history)} | {k: getattr(self, k) for k in keys}

    def load(self, state: dict) -> None:
        self.history = [tuple(h) for h in state["history"]]
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
