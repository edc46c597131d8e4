"""Independent random streams, named once.

Every random draw of an experiment comes from one integer ``seed`` and the *name* of what it draws (the training
set, the network's initial weights, the mini-batch order, ...). Stream ``name`` is the child number
``STREAMS.index(name)`` of ``numpy.random.SeedSequence(seed)`` (what ``SeedSequence(seed).spawn(k)[i]`` returns),
reduced to a 63-bit integer seed for ``torch.Generator``. Children of one ``SeedSequence`` are independent by
construction, and no stream of seed 0 is a stream of seed 1: before, offsets (``seed + 1``, ``seed + 10``, ...) made
seed 0's mini-batch order seed 1's training set.

A stream never depends on how much another one drew. Add a new stream at the *end* of :data:`STREAMS`, so every
existing stream keeps its child number (and every shipped result its random numbers).
"""

from __future__ import annotations

import numpy as np
import torch

#: what each stream draws, in child order (append only)
STREAMS: tuple[str, ...] = (
    "data",  # the training set (gptheory.train.training_set)
    "init",  # the network's initial weights (gptheory.denoiser.build_model)
    "batches",  # the order of the mini-batches (gptheory.train)
    "noise",  # the training times and noise (gptheory.train)
    "validation",  # the held-out sequences of the validation loss
    "validation_noise",  # the fixed noise of the validation loss
    "sampler",  # the starting noise of the generated sequences
    "true",  # the fresh true sequences generated ones are compared with (and the memorisation check's held-out set)
    "yardstick",  # draws from a Gaussian fitted to the training set
    "eigen",  # the probes of the network's linear response (gptheory.attention.eigen_response)
    "attention_init",  # the noise of the untrained DiT's attention maps
    "eval_true",  # the true sequences measured beside training-dynamics evaluations
    "eval_sampler",  # the starting noise of the training-dynamics evaluations
    "floor",  # Monte Carlo sampling floors (gptheory.floors)
    "vae",  # the frame VAE's reparameterisation noise (bouncing ball)
    "vae_init",  # the frame VAE's initial weights (bouncing ball)
    "vae_batches",  # the frames the VAE trains on (bouncing ball)
    "masks",  # the random frame masks of conditional training (gptheory.masks.draw)
    "validation_masks",  # the fixed frame mask of each held-out sequence of a conditional validation loss
    "conditioning",  # the held-out sequences whose observed frames imputation is given
    "imputer",  # the starting noise of imputation draws (the same for every method)
    "pushed",  # the noise that pushes held-out truths' missing frames to t0 (imputation)
)


def seed_of(seed: int, name: str) -> int:
    """The integer seed (``0 <= s < 2**63``) of stream ``name`` (one of :data:`STREAMS`) for an experiment seeded by
    ``seed >= 0``."""
    if name not in STREAMS:
        raise KeyError(f"no random stream {name!r}; valid: {', '.join(STREAMS)}")
    if int(seed) != seed or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    child = np.random.SeedSequence(int(seed), spawn_key=(STREAMS.index(name),))
    return int(child.generate_state(1, np.uint64)[0] >> np.uint64(1))


def generator(seed: int, name: str, device: str | torch.device = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded with :func:`seed_of` ``(seed, name)``."""
    return torch.Generator(device=device).manual_seed(seed_of(seed, name))


def rng(seed: int, name: str) -> np.random.Generator:
    """A NumPy generator of stream ``name`` (the same child of ``SeedSequence(seed)`` as :func:`seed_of`)."""
    return np.random.default_rng(np.random.SeedSequence(int(seed_of(seed, name))))


__all__ = ["STREAMS", "generator", "rng", "seed_of"]
