"""Tests for gptheory.streams: every named stream is SeedSequence's child, distinct within and across seeds."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gptheory.streams import STREAMS, generator, rng, seed_of


def test_a_stream_is_the_named_child_of_the_seed_sequence():
    for seed in (0, 7, 2**40):
        children = np.random.SeedSequence(seed).spawn(len(STREAMS))
        for name, child in zip(STREAMS, children, strict=True):
            assert seed_of(seed, name) == int(child.generate_state(1, np.uint64)[0]) >> 1


def test_no_stream_of_one_seed_is_a_stream_of_another():
    seeds = {seed_of(s, name) for s in range(20) for name in STREAMS}
    assert len(seeds) == 20 * len(STREAMS)  # the old offsets made seed 0's "batches" seed 1's "data"
    assert all(0 <= s < 2**63 for s in seeds)


def test_generators_draw_independent_numbers():
    a = torch.randn(20000, generator=generator(3, "data"))
    b = torch.randn(20000, generator=generator(3, "batches"))
    c = torch.randn(20000, generator=generator(4, "data"))
    # correlation of independent normals: sd 1/sqrt(20000) = 0.007; 5 sd
    assert abs(float(torch.corrcoef(torch.stack([a, b]))[0, 1])) < 0.035
    assert abs(float(torch.corrcoef(torch.stack([a, c]))[0, 1])) < 0.035
    assert torch.equal(a, torch.randn(20000, generator=generator(3, "data")))
    assert rng(3, "floor").standard_normal() == rng(3, "floor").standard_normal()


def test_bad_names_and_seeds_are_named():
    with pytest.raises(KeyError, match="no random stream 'nois'"):
        seed_of(0, "nois")
    with pytest.raises(ValueError, match="seed must be an integer >= 0, got -1"):
        seed_of(-1, "data")
