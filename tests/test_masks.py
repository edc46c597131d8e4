"""The masks of imputation and forecasting, and the random masks a conditional network trains on."""

from __future__ import annotations

import pytest
import scipy.stats
import torch

from gptheory.masks import STRATEGIES, block_mask, draw, forecast_mask, interpolation_mask


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _contiguous_missing(rows: torch.Tensor) -> torch.Tensor:
    """Whether the missing frames of each row form one block (the row's missing indices are consecutive)."""
    miss = ~rows
    first = miss.float().argmax(1)
    count = miss.sum(1)
    idx = torch.arange(rows.shape[1])
    block = (idx >= first[:, None]) & (idx < (first + count)[:, None])
    return (block == miss).all(1)


def test_the_fixed_masks():
    assert block_mask(6, 2, 3).tolist() == [True, True, False, False, False, True]
    assert block_mask(2, 1, 1).tolist() == [True, False]
    assert forecast_mask(4, 3).tolist() == [True, True, True, False]
    assert interpolation_mask(5, [4, 0]).tolist() == [True, False, False, False, True]


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("N", [2, 3, 11])
def test_every_strategy_observes_between_one_and_N_minus_one_frames(strategy, N):
    m = draw(strategy, 4000, N, _gen(N))
    assert m.shape == (4000, N) and m.dtype == torch.bool
    k = m.sum(1)
    assert int(k.min()) >= 1 and int(k.max()) <= N - 1
    assert torch.equal(m, draw(strategy, 4000, N, _gen(N)))  # the generator decides everything
    assert not torch.equal(m, draw(strategy, 4000, N, _gen(N + 100))) or N == 2 and strategy == "forecast"


@pytest.mark.parametrize("N", [5, 13])
def test_random_masks_observe_a_uniform_number_of_frames_at_uniform_places(N):
    m = draw("random", 30000, N, _gen(1))
    counts = torch.bincount(m.sum(1), minlength=N)[1:N].numpy()
    assert scipy.stats.chisquare(counts).pvalue > 1e-3  # k uniform on 1 .. N-1
    # given k, every frame is equally likely observed: the share observed per frame is the mean of k / N
    share = m.float().mean(0)
    assert (share - share.mean()).abs().max() < 5 * (0.25 / 30000) ** 0.5
    assert not _contiguous_missing(m).all()  # scattered, not blocks


@pytest.mark.parametrize("N", [4, 12])
def test_block_masks_miss_one_block_of_uniform_length_at_a_uniform_place(N):
    m = draw("block", 40000, N, _gen(2))
    assert _contiguous_missing(m).all()
    length = (~m).sum(1)
    assert scipy.stats.chisquare(torch.bincount(length, minlength=N)[1:N].numpy()).pvalue > 1e-3
    L = 2  # given the length, the start is uniform over the N - L + 1 places the block fits
    starts = (~m[length == L]).float().argmax(1).long()
    assert scipy.stats.chisquare(torch.bincount(starts, minlength=N - L + 1).numpy()).pvalue > 1e-3


def test_forecast_masks_observe_a_prefix():
    m = draw("forecast", 5000, 9, _gen(3))
    k = m.sum(1)
    assert torch.equal(m, torch.arange(9)[None] < k[:, None])
    assert scipy.stats.chisquare(torch.bincount(k, minlength=9)[1:9].numpy()).pvalue > 1e-3


def test_mixed_masks_take_each_sequences_random_or_block_mask_half_the_time():
    n, N = 20000, 10
    random, block, mixed = (draw(s, n, N, _gen(4)) for s in ("random", "block", "mixed"))
    is_random, is_block = (mixed == random).all(1), (mixed == block).all(1)
    assert (is_random | is_block).all()
    only_random = is_random & ~is_block
    both = is_random & is_block
    share = float(only_random.sum()) / float((~both).sum())
    assert abs(share - 0.5) < 5 * (0.25 / n) ** 0.5


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: draw("frames", 4, 8), r"strategy must be one of random, block, mixed, forecast, got 'frames'"),
        (lambda: draw("random", 0, 8), r"batch must be a positive integer"),
        (lambda: draw("block", 3, 1), r"N must be at least 2 \(one frame observed, one missing\), got N=1"),
        (lambda: block_mask(6, 0, 6), r"length must be an integer in \[1, N - 1\] = \[1, 5\] \(frames missing\)"),
        (lambda: block_mask(6, 4, 3), r"start must be an integer in \[0, N - length\] = \[0, 3\] .*got 4"),
        (lambda: block_mask(6, 1.0, 2), r"start must be an integer .*got 1.0"),
    ],
)
def test_bad_input_names_the_parameter(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_draw_names_a_generator_that_is_not_one():
    with pytest.raises(ValueError, match="generator must be a torch.Generator or None, got int"):
        draw("random", 2, 5, 0)
