"""Which frames of a sequence are observed: the masks of imputation and forecasting, and the random masks a
conditional network trains on.

A frame mask is an ``(N,)`` boolean tensor, ``True`` where the frame is observed (a batch of them ``(batch, N)``).
Three fixed kinds name the tasks the book measures:

* :func:`forecast_mask` -- the first ``k`` frames observed, the rest to forecast;
* :func:`interpolation_mask` -- frames scattered through the sequence observed, the gaps between them to fill;
* :func:`block_mask` -- one contiguous block of ``length`` frames missing from ``start`` on, the rest observed.

A conditional network learns the conditional score for every mask it may be asked about, so it trains on random
ones (:func:`draw`), one per sequence of each mini-batch. The strategies (:data:`STRATEGIES`) follow the masking
schemes compared for time-series imputation (CSDI's random and historical masks; the follow-up paper's frame-wise,
block-wise and mixed masks):

* ``"random"`` -- ``k`` frames observed, ``k`` uniform on ``1 .. N-1``, the frames a uniformly random ``k``-subset;
* ``"block"`` -- one contiguous missing block, its length uniform on ``1 .. N-1`` and its start uniform over the
  places it fits (forecasting, back-casting and gaps all occur);
* ``"mixed"`` -- each sequence ``"random"`` or ``"block"`` with probability 1/2;
* ``"forecast"`` -- the first ``k`` frames observed, ``k`` uniform on ``1 .. N-1``.

Every strategy observes at least one frame and leaves at least one missing, the conditions of
:class:`gptheory.conditional.Conditional`.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import torch

from .validation import one_of, positive_int

STRATEGIES = ("random", "block", "mixed", "forecast")


def _frames(N: object, why: str) -> int:
    N = positive_int("N", N)
    if N < 2:
        raise ValueError(f"N must be at least 2 ({why}), got N={N}")
    return N


def _integer_in(name: str, value: object, low: int, high: int, symbols: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, Integral) or not low <= value <= high:
        raise ValueError(f"{name} must be an integer in {symbols} = [{low}, {high}] ({what}), got {value!r}")
    return int(value)


def forecast_mask(N: int, k: int) -> torch.Tensor:
    """The frame-wise mask of forecasting: the first ``k`` of ``N`` frames observed, ``(N,)`` bool.

    ``k`` must be an integer in ``[1, N - 1]`` (something observed, something to forecast).
    """
    N = _frames(N, "one frame observed, one to forecast")
    k = _integer_in("k", k, 1, N - 1, "[1, N - 1]", "frames observed")
    mask = torch.zeros(N, dtype=torch.bool)
    mask[:k] = True
    return mask


def interpolation_mask(N: int, frames: Sequence[int] | torch.Tensor) -> torch.Tensor:
    """The frame-wise mask observing the frames ``frames`` (distinct integers in ``[0, N - 1]``, at least one and
    fewer than ``N``) of ``N``, ``(N,)`` bool."""
    N = positive_int("N", N)
    idx = frames.tolist() if isinstance(frames, torch.Tensor) else list(frames)
    rule = f"frames must be distinct integers in [0, N - 1] = [0, {N - 1}], at least 1 and at most {N - 1} of them"
    if not idx or len(idx) >= N or len(set(idx)) != len(idx):
        raise ValueError(f"{rule}, got {frames!r}")
    if any(isinstance(i, bool) or not isinstance(i, Integral) or not 0 <= i < N for i in idx):
        raise ValueError(f"{rule}, got {frames!r}")
    mask = torch.zeros(N, dtype=torch.bool)
    mask[torch.tensor(idx, dtype=torch.long)] = True
    return mask


def block_mask(N: int, start: int, length: int) -> torch.Tensor:
    """The frame-wise mask with the ``length`` frames ``start .. start + length - 1`` missing and the others
    observed, ``(N,)`` bool; ``length`` in ``[1, N - 1]`` and the block inside the sequence."""
    N = _frames(N, "one frame observed, one missing")
    length = _integer_in("length", length, 1, N - 1, "[1, N - 1]", "frames missing")
    start = _integer_in("start", start, 0, N - length, "[0, N - length]", "the first missing frame")
    mask = torch.ones(N, dtype=torch.bool)
    mask[start : start + length] = False
    return mask


def draw(strategy: str, batch: int, N: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """``batch`` random frame masks of ``strategy`` (one of :data:`STRATEGIES`, see the module's note), ``(batch, N)``
    bool on the generator's device, each observing between 1 and ``N - 1`` frames."""
    strategy = one_of("strategy", strategy, STRATEGIES)
    batch, N = positive_int("batch", batch), _frames(N, "one frame observed, one missing")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise ValueError(f"generator must be a torch.Generator or None, got {type(generator).__name__}")
    device = generator.device if generator is not None else torch.device("cpu")

    def uniform(shape: tuple[int, ...]) -> torch.Tensor:
        return torch.rand(shape, generator=generator, device=device)

    def count(u: torch.Tensor) -> torch.Tensor:  # uniform on 1 .. N-1 from uniform(0, 1) draws
        return 1 + (u * (N - 1)).long().clamp(max=N - 2)

    frames = torch.arange(N, device=device)
    if strategy == "forecast":
        return frames < count(uniform((batch, 1)))
    # both random and block masks are drawn for every sequence, so a strategy's masks do not depend on the others'
    k = count(uniform((batch, 1)))
    ranks = uniform((batch, N)).argsort(dim=1).argsort(dim=1)  # a uniformly random permutation per sequence
    random = ranks < k
    length = count(uniform((batch, 1)))
    start = (uniform((batch, 1)) * (N - length + 1)).long().clamp(max=N - length)
    block = ~((frames >= start) & (frames < start + length))
    if strategy == "random":
        return random
    if strategy == "block":
        return block
    return torch.where(uniform((batch, 1)) < 0.5, random, block)


__all__ = ["STRATEGIES", "block_mask", "draw", "forecast_mask", "interpolation_mask"]
