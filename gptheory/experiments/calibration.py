"""Calibration: before a number judges a network, check that it judges the network.

The exact score of the process, run through the same sampler (the DiT's schedule, times and Heun steps) with the
same number of generated sequences, is a perfect network. Every metric the book reports, applied to its sequences,
must then land on the estimator's sampling floor (:mod:`gptheory.floors`): a ratio of about 1. A ratio well above 1
means the measurement itself (the wrong law, too few sampler steps, a biased estimator) adds an error no network can
remove. :func:`calibrate` reports, per metric, the exact-score error, the floor and their ratio; the same sequences
against the *data* law (what sampling stopped at ``t0`` cannot reach); and the paper's relative error of a perfect
generator at each training-set size, which must be about 1. ``python -m gptheory calibrate`` prints it as JSON.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..config import Configuration, ProcessConfig, SamplerConfig
from ..floors import ratios, sampling_floor
from ..gp import GaussianProcess
from ..metrics import CovarianceErrors, Law, paper_relative_error
from ..profiles import by_profile
from ..profiles import profile as active
from ..samplers import prior, sample
from ..schedules import DDPMSchedule
from ..streams import generator
from ..validation import nonneg_int, option, positive_int, real_in
from .sample_complexity import N_GRID, SAMPLE_COMPLEXITY


@dataclass(frozen=True)
class CalibrationConfig(Configuration):
    """What :func:`calibrate` runs: a process, the sampler's count and steps, the early-stopping time, a seed, and
    the training-set sizes ``counts`` at which the paper's relative error of a perfect generator is checked."""

    process: ProcessConfig = field(default_factory=ProcessConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    t0: float = field(default=0.01, metadata=option("early-stopping time of the sampler"))
    seed: int = field(default=0, metadata=option("seed of the sampler's noise and the true sequences"))
    repeats: int = field(default=8, metadata=option("independent runs of the sampler averaged (one is noisy)"))
    counts: tuple[int, ...] = field(default=(64, 256, 1024, 4096), metadata=option("sizes n", internal=True))

    def __post_init__(self) -> None:
        real_in("t0", self.t0, 0.0, 1.0, low_open=True, high_open=True)
        nonneg_int("seed", self.seed)
        positive_int("repeats", self.repeats)


@dataclass
class Calibration:
    """What :func:`calibrate` measured.

    Attributes:
        config: the :class:`CalibrationConfig` (as a dict).
        exact: the exact-score sampler's errors against the law at ``t0`` (mean over ``repeats`` runs of ``n_gen``
            sequences); floor: the sampling floor there at ``n_gen``; ratio: ``exact / floor`` per metric (about 1
            when the measurement is right); spread: the standard deviation of one run's ratio (what a single
            measurement, like a DiT's, scatters by).
        against_data: the same sequences' errors divided by the floor of the data law: what measuring against the
            data law instead adds (the early-stopping noise, a floor of its own).
        paper_relative_error: ``n -> `` the paper's relative error of ``min(n, n_gen)`` exact-score sequences against
            as many training sequences (about 1 at every ``n``; geometric mean over the runs).
        seconds: wall time (s).
    """

    config: dict
    exact: dict
    floor: dict
    ratio: dict
    spread: dict
    against_data: dict
    paper_relative_error: dict = field(default_factory=dict)
    seconds: float = 0.0

    def worst(self) -> float:
        """The ratio farthest from 1 (in the log sense), over every metric and the paper's relative errors."""
        values = list(self.ratio.values()) + list(self.paper_relative_error.values())
        return max(values, key=lambda r: abs(math.log(r)))


def calibration_config(profile: str | None = None, **overrides) -> CalibrationConfig:
    """The :class:`CalibrationConfig` of ``profile`` (the sample-complexity experiment's process, sampler, ``t0`` and
    training-set sizes), with flat overrides (``N=32``, ``n_gen=500``)."""
    name = active() if profile is None else profile
    base = by_profile(**SAMPLE_COMPLEXITY, name=name)
    counts = tuple(by_profile(**N_GRID, name=name))
    config = CalibrationConfig(process=base.process, sampler=base.sampler, t0=base.train.t0, counts=counts)
    return config.replace(**overrides)


def calibrate(config: CalibrationConfig) -> Calibration:
    """Run the exact score of ``config.process`` through the DiT's sampler and measure it (:class:`Calibration`)."""
    start = time.perf_counter()
    p, s = config.process, config.sampler
    gp = GaussianProcess(p.N, p.d, nu=p.nu, ell=p.ell, seed=p.sigma_seed)
    schedule = DDPMSchedule()  # the networks' schedule (gptheory.denoiser)

    def score(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return gp.score(x, t, schedule)

    law_t0, law = Law.at(gp, config.t0, schedule), Law.data(gp)
    floor = sampling_floor(law_t0, s.n_gen, seed=config.seed)
    data_floor = sampling_floor(law, s.n_gen, seed=config.seed)
    runs, data_runs, rel = [], [], {n: [] for n in config.counts}
    g_sampler, g_data = generator(config.seed, "sampler"), generator(config.seed, "data")
    for _ in range(config.repeats):
        x_T = prior(s.n_gen, p.N, p.d, generator=g_sampler)
        x = sample(score, x_T, schedule, s.sample_steps, config.t0, method="heun", progress=False)
        runs.append(ratios(CovarianceErrors.of_samples(x, law_t0), floor))
        data_runs.append(ratios(CovarianceErrors.of_samples(x, law), data_floor))
        for n in config.counts:
            m = min(n, s.n_gen)
            rel[n].append(paper_relative_error(x[:m], law_t0, gp.sample(m, generator=g_data), law))
    keys = runs[0]
    ratio = {k: float(np.mean([r[k] for r in runs])) for k in keys}
    return Calibration(
        config=config.to_dict(),
        exact={k: ratio[k] * getattr(floor, k) for k in keys},
        floor=dataclasses.asdict(floor),
        ratio=ratio,
        spread={k: float(np.std([r[k] for r in runs], ddof=1)) if len(runs) > 1 else math.nan for k in keys},
        against_data={k: float(np.mean([r[k] for r in data_runs])) for k in keys},
        paper_relative_error={n: float(np.exp(np.mean(np.log(v)))) for n, v in rel.items()},
        seconds=time.perf_counter() - start,
    )


__all__ = ["Calibration", "CalibrationConfig", "calibrate", "calibration_config"]
