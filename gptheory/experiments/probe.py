"""One trained network measured from every side: the measurement behind Appendix D.2 (:mod:`.architecture`) and the
attention question (:mod:`.attention_learned`).

Each point runs one trial (:func:`gptheory.trial.run_trial`: the network of ``arch``, the DiT or a UNet of the same
size, trained; ``n_gen`` generated sequences; as many true ones) and measures:

* the errors of :class:`gptheory.metrics.CovarianceErrors` (whitened temporal kernel, spatial, full covariance, W2):
  the generated sequences against the law at ``t0`` beside their sampling floor, and the paper's relative error on
  equal counts of training sequences (:func:`gptheory.trial.calibrated`);
* the errors by gap ``h = |i - j|``: of the temporal kernel (:func:`gptheory.metrics.gap_errors`) and of the
  cross-frame covariances ``C_ij`` (:func:`gptheory.metrics.block_gap_errors`), the quantities Figure 11 plots;
* how "piecewise" the learned kernel is: its :func:`~gptheory.metrics.roughness` (distance from a stationary
  kernel) and the :func:`~gptheory.metrics.phase_share` of that residual explained by the position modulo the
  down-sampling period ``2^levels``;
* for a DiT, its attention: the similarity to the kernel of every layer at every time the sampler visits, at
  initialisation, the fitted bandwidth and the diagonal mass at ``t0`` (:mod:`gptheory.attention`);
* with ``eval_points > 0`` (the training dynamics of Figure 13), the same errors from ``min(n_gen, 500)`` sequences
  generated at ``eval_points`` log-spaced training steps (:func:`.dynamics.dynamics_steps`), measured inside the
  training loop and kept in its checkpoint.

The sweeps of both chapters share one base configuration per profile, :data:`CALIBRATED` (Figure 1's process and
network trained to convergence), so a point that two sweeps have in common is trained once. :func:`probe_sweep` makes
one, with :func:`columns` and the summary figure :func:`plot_probe`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from .. import attention, metrics
from ..config import ExperimentConfig
from ..convergence import Calibrated
from ..dit import DiT
from ..gp import GaussianProcess
from ..metrics import CovarianceErrors, Law
from ..profiles import PROFILES
from ..results import Record, group, value
from ..samplers import generate
from ..streams import generator, seed_of
from ..sweep import Sweep
from ..trial import calibrated, prepare, run_trial
from . import dynamics
from .dit_learns import DIT_LEARNS

NAME = "probe"
N_EVAL = 500  # sequences generated at each training-dynamics step (at most n_gen)
# Figure 1's configuration (its process, network and stopping rule, :data:`~.dit_learns.DIT_LEARNS`) on a training
# set small enough that an epoch is cheap, with a cap of its own (the paper counts epochs: 32 steps an epoch in the cpu
# profile, so the cap is 312 epochs).
SIZE = {
    "smoke": {"n_train": 512, "steps": 300},
    "cpu": {"n_train": 2048, "steps": 10000},
    "gpu": {"n_train": 100000, "steps": 40000},
}
CALIBRATED = {p: c.replace(**SIZE[p]) for p, c in DIT_LEARNS.items()}


@dataclass
class Probe(Calibrated, Record):
    """One trained network measured (see the module docstring).

    Numbers: ``generated`` / ``true`` (:class:`~gptheory.metrics.CovarianceErrors` of the generated and of as
    many true sequences), ``paper_relative_error``, the parameter count, the receptive field as the largest gap
    ``|i - j|`` one evaluation of the network spans (:attr:`gptheory.unet.UNet1D.max_gap`; ``N - 1`` for the DiT and
    for diffusers' UNet, whose GroupNorm couples every frame), roughness and phase share (generated and true),
    training and sampling seconds, final loss.

    Arrays (``D`` layers, ``K`` sampler times, ``E`` evaluation steps):

    * ``Gamma``, ``Sigma``, ``Gamma_hat`` and ``Gamma_hat_true`` (whitened estimates, ``(N, N)``);
    * ``gap_error``, ``gap_error_true``, ``block_error``, ``block_error_true``: ``(N,)`` by gap;
    * ``pair_blocks``, ``pair_blocks_true``: ``C_{0,h}: (G, d, d)`` at the gaps ``pair_gaps: (G,)``;
    * DiT only (empty otherwise): ``times: (K,)``, ``similarity: (K, D)``, ``similarity_init: (2, D)`` at
      ``(t0, T)`` before training, ``fitted_ell: (D,)`` and ``diagonal_mass: (D,)`` at ``t0``,
      ``attention: (R, D, N, N)`` at ``record`` of the sampler's times, ``record_times: (R,)`` (the last is ``t0``);
    * training dynamics (empty without ``eval_points``): ``eval_steps: (E,)``, ``eval_temporal``, ``eval_spatial``,
      ``eval_covariance``: ``(E,)``, ``eval_gap_error: (E, N)``, and the floors of as many true sequences,
      ``eval_true: (3,)`` (temporal, spatial, covariance) and ``eval_gap_error_true: (N,)``;
    * ``loss_steps``, ``loss``: the training loss curve.

    The network trains to convergence of its excess validation loss (:mod:`gptheory.convergence`), and its samples
    are measured against the law at ``t0`` (:meth:`gptheory.metrics.Law.at`, what a sampler stopped there draws), the
    true ones against the data law; every kernel target (``gap_error``, ``block_error``) is that law's:

    * ``floor``: the sampling floor of ``n_gen`` draws of the law at ``t0`` (:func:`gptheory.floors.sampling_floor`);
    * ``paper_relative_error``: on ``relative_count = min(n_train, n_gen)`` generated and training sequences
      (:func:`gptheory.metrics.paper_relative_error`);
    * ``memorisation`` (:func:`gptheory.convergence.memorisation`), ``stop_reason``, ``best_step``, the validation
      curve ``validation`` and its lowest value ``best_validation`` (what a learning rate is chosen on);
    * training dynamics in epochs (:func:`.dynamics.dynamics_steps`, from the first epoch): ``eval_epochs: (E,)`` and
      the scale-free errors of :func:`gptheory.metrics.correlation_errors`, the temporal correlation by gap
      ``eval_corr_gap: (E, N)`` and the spatial correlation ``eval_corr_spatial: (E,)``, with as many true sequences'
      ``eval_corr_gap_true: (N,)`` and ``eval_corr_spatial_true``; and the same errors of the network that generated
      (the best validated EMA, which may predate the last measurement), ``best_corr_gap: (N,)`` and
      ``best_corr_spatial``: the final level the learned epochs are timed against (:mod:`.dynamics`).
    """

    NAME = NAME

    generated: CovarianceErrors
    true: CovarianceErrors
    paper_relative_error: float
    params: int
    receptive_field: int
    roughness: float
    roughness_true: float
    phase_share: float
    phase_share_true: float
    train_seconds: float
    generate_seconds: float
    steps: int
    final_loss: float
    Gamma: np.ndarray
    Sigma: np.ndarray
    Gamma_hat: np.ndarray
    Gamma_hat_true: np.ndarray
    gap_error: np.ndarray
    gap_error_true: np.ndarray
    block_error: np.ndarray
    block_error_true: np.ndarray
    pair_gaps: np.ndarray
    pair_blocks: np.ndarray
    pair_blocks_true: np.ndarray
    loss_steps: np.ndarray
    loss: np.ndarray
    times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    similarity: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    similarity_init: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    fitted_ell: np.ndarray = field(default_factory=lambda: np.zeros(0))
    diagonal_mass: np.ndarray = field(default_factory=lambda: np.zeros(0))
    record_times: np.ndarray = field(default_factory=lambda: np.zeros(0))
    attention: np.ndarray = field(default_factory=lambda: np.zeros((0, 0, 0, 0)))
    eval_steps: np.ndarray = field(default_factory=lambda: np.zeros(0))
    eval_temporal: np.ndarray = field(default_factory=lambda: np.zeros(0))
    eval_spatial: np.ndarray = field(default_factory=lambda: np.zeros(0))
    eval_covariance: np.ndarray = field(default_factory=lambda: np.zeros(0))
    eval_gap_error: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    eval_true: np.ndarray = field(default_factory=lambda: np.zeros(0))
    eval_gap_error_true: np.ndarray = field(default_factory=lambda: np.zeros(0))
    eval_epochs: np.ndarray = field(default_factory=lambda: np.zeros(0))
    eval_corr_gap: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    eval_corr_spatial: np.ndarray = field(default_factory=lambda: np.zeros(0))
    eval_corr_gap_true: np.ndarray = field(default_factory=lambda: np.zeros(0))
    eval_corr_spatial_true: float = math.nan
    best_corr_gap: np.ndarray = field(default_factory=lambda: np.zeros(0))
    best_corr_spatial: float = math.nan


def _period(model: torch.nn.Module) -> int:
    """The down-sampling period of a UNet (``2^levels``), 1 for a network that does not down-sample."""
    return 2 ** int(getattr(model, "levels", 0))


def _whitened(x: torch.Tensor, gp: GaussianProcess) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair covariances ``(N, N, d, d)`` of ``x: (n, N, d)`` and their whitened temporal-kernel estimate ``(N, N)``."""
    C = metrics.pair_covariance(x)
    return C, metrics.temporal_kernel_whitened(C, gp.Sigma)


def _init_maps(model: DiT, data: torch.Tensor, t0: float, seed: int) -> torch.Tensor:
    """Attention maps ``(2, depth, N, N)`` of the untrained ``model`` on noised training data at ``t0`` and ``T``
    (stream ``attention_init``)."""
    rows = []
    x0 = data[: min(256, data.shape[0])].float()
    g = generator(seed, "attention_init")
    for t in (t0, model.T):
        tt = torch.full((x0.shape[0],), float(t))
        xt = model.schedule.add_noise(x0, tt, torch.randn(x0.shape, generator=g))
        rows.append(attention.attention_maps(model, xt, tt))
    return torch.stack(rows)


def run_probe(
    config: ExperimentConfig,
    checkpoint: str | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> Probe:
    """Train the network of ``config`` (with the training-dynamics evaluations of ``config.sampler.eval_points``),
    generate ``config.sampler.n_gen`` sequences and measure them (:class:`Probe`)."""
    prepared = prepare(config, checkpointed=checkpoint is not None)
    gp, data, model, cfg = prepared
    s, seed = config.sampler, config.seed
    law = Law.data(gp)
    law_gen = Law.at(gp, cfg.t0, model.schedule)  # what the generated sequences follow
    target = metrics.temporal_kernel_whitened(law_gen.pairs, gp.Sigma)
    is_dit = isinstance(model, DiT)
    init_maps = _init_maps(model, data, cfg.t0, seed) if is_dit else None
    n_eval = min(s.n_gen, N_EVAL)
    x_eval_true = gp.sample(n_eval, generator=generator(seed, "eval_true"))

    def measure(step: int, net: torch.nn.Module) -> dict:
        x_seed = seed_of(seed, "eval_sampler")
        x = generate(net, n_eval, steps=s.sample_steps, t0=cfg.t0, seed=x_seed, progress=False)
        return dynamics.measure(x, law_gen, target)

    trial = run_trial(
        config,
        checkpoint,
        device,
        progress,
        prepared=prepared,
        attention=is_dit,
        on_step=measure,
        at_steps=dynamics.dynamics_steps(config),
    )
    res, net, x_gen, x_true, times, maps = trial.result, trial.net, trial.x_gen, trial.x_true, trial.times, trial.maps
    gen, true = CovarianceErrors.of_samples(x_gen, law_gen), CovarianceErrors.of_samples(x_true, law)
    C_gen, G_gen = _whitened(x_gen, gp)
    C_true, G_true = _whitened(x_true, gp)
    period = _period(net)
    gaps = np.unique(np.round(np.geomspace(1, gp.N - 1, 4)).astype(int)) if gp.N > 1 else np.zeros(0, int)
    gaps = np.concatenate([[0], gaps]).astype(int)

    dit: dict = {}
    if is_dit:
        final = maps[-1].double()  # (depth, N, N) at t0
        keep = attention.pick_times(times, s.record)
        dit = {
            "times": times.numpy(),
            "similarity": attention.similarity(maps.double(), gp.Gamma).numpy(),
            "similarity_init": attention.similarity(init_maps.double(), gp.Gamma).numpy(),
            "fitted_ell": np.array([attention.fitted_bandwidth(final[k], gp.nu) for k in range(final.shape[0])]),
            "diagonal_mass": torch.diagonal(final, dim1=-2, dim2=-1).mean(-1).numpy(),
            "record_times": times[keep].numpy(),
            "attention": maps[keep].numpy(),
        }
    per_epoch = dynamics.steps_per_epoch(config)
    dyn = dynamics.dynamics_arrays(res.evals, x_eval_true, gp, per_epoch) if res.evals else {}
    if res.evals:  # the network that generated, measured like the others (same sampler stream)
        best = measure(res.best_step, net)
        dyn |= {"best_corr_gap": np.array(best["corr_gap"]), "best_corr_spatial": best["corr_spatial"]}
    measured = calibrated(trial, config)
    return Probe(
        generated=gen,
        true=true,
        params=sum(p.numel() for p in net.parameters()),
        receptive_field=int(getattr(net, "max_gap", gp.N - 1)),
        roughness=metrics.roughness(G_gen),
        roughness_true=metrics.roughness(G_true),
        phase_share=metrics.phase_share(G_gen, max(period, 2)),
        phase_share_true=metrics.phase_share(G_true, max(period, 2)),
        train_seconds=res.seconds,
        generate_seconds=trial.generate_seconds,
        steps=res.steps,
        final_loss=res.log[-1]["loss"],
        Gamma=gp.Gamma.numpy(),
        Sigma=gp.Sigma.numpy(),
        Gamma_hat=G_gen.numpy(),
        Gamma_hat_true=G_true.numpy(),
        gap_error=metrics.gap_errors(G_gen, target).numpy(),
        gap_error_true=metrics.gap_errors(G_true, gp.Gamma).numpy(),
        block_error=metrics.block_gap_errors(C_gen, law_gen).numpy(),
        block_error_true=metrics.block_gap_errors(C_true, law).numpy(),
        pair_gaps=gaps,
        pair_blocks=C_gen[0, gaps].numpy(),
        pair_blocks_true=C_true[0, gaps].numpy(),
        loss_steps=np.array([e["step"] for e in res.log]),
        loss=np.array([e["loss"] for e in res.log]),
        **dit,
        **dyn,
        **measured,
    )


def columns(p: Probe) -> dict:
    """The scalar metrics of one row of ``results.csv``."""
    out = {f"generated.{k}": v for k, v in p.generated.__dict__.items()}
    out |= {f"true.{k}": v for k, v in p.true.__dict__.items()}
    keys = ("paper_relative_error", "params", "receptive_field", "roughness", "roughness_true", "phase_share",
            "train_seconds", "generate_seconds", "final_loss")  # fmt: skip
    out |= {k: getattr(p, k) for k in keys}
    out |= {"steps": p.steps} | p.calibrated_columns()
    if p.similarity.size:
        out |= {
            "similarity_t0_best": float(p.similarity[-1].max()),
            "similarity_init_max": float(p.similarity_init.max()),
        }
    return out


# ---------------------------------------------------------------------------------------------- summary
def plot_probe(points: list[Probe], axes_names: tuple[str, ...] = ("arch", "N", "depth", "ell")):
    """The sweep's summary figure: the generated and true temporal and covariance errors against whichever of
    ``axes_names`` varies among ``points`` (seeds drawn as dots, the mean as a line). Returns the ``Figure``."""
    import matplotlib.pyplot as plt

    axis = next((a for a in axes_names if len(group(points, a)) > 1), "seed")
    grouped = group(points, axis)
    labels = [str(v) for v in grouped]
    xs = np.arange(len(labels))
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.8), constrained_layout=True)
    for a, name in zip(ax, ("temporal", "covariance"), strict=True):
        for k, (part, style) in enumerate((("generated", "o-"), ("true", "s--"))):
            means = [np.mean([value(p, f"{part}.{name}") for p in pts]) for pts in grouped.values()]
            a.plot(xs, means, style, color=f"C{k}", label=f"{part} sequences")
            for i, pts in enumerate(grouped.values()):
                a.plot([xs[i]] * len(pts), [value(p, f"{part}.{name}") for p in pts], ".", color=f"C{k}", alpha=0.4)
        a.set_xticks(xs, labels)
        a.set_xlabel(axis)
        a.set_yscale("log")
        a.set_title(f"{name} error (relative)")
        a.legend()
    return fig


# ------------------------------------------------------------------------------------------------- sweeps
SEEDS3 = {"smoke": (0,), "cpu": (0, 1, 2), "gpu": (0, 1, 2)}
SEEDS5 = {"smoke": (0,), "cpu": (0, 1, 2, 3, 4), "gpu": (0, 1, 2, 3, 4)}  # the calibrated sweeps that draw verdicts


def trains(profile: str) -> bool:
    """Whether a chapter trains the probe points that have not shipped, in ``profile``: in ``smoke`` (seconds) and
    ``gpu`` (the reader's own run) it does; in ``cpu`` it reads the shipped points only, since the calibrated sweeps
    take hours there, and says which are missing (``python -m gptheory sweep NAME`` computes them)."""
    return profile != "cpu"


def probe_sweep(
    name: str,
    description: str,
    base: dict[str, ExperimentConfig] | None = None,
    linked: dict[str, dict[str, dict]] | None = None,
    **axes: dict[str, tuple],
) -> Sweep:
    """A sweep of probe points: ``base`` (default :data:`CALIBRATED`), settings ``linked`` to an axis' value
    (:attr:`gptheory.sweep.Sweep.linked`) and, per flat field name, its values per profile."""
    grid = {p: {k: v[p] for k, v in axes.items()} for p in PROFILES}
    return Sweep(name, description, base or CALIBRATED, grid, Probe, run_probe, columns, plot_probe, linked)


__all__ = [
    "CALIBRATED",
    "SIZE",
    "NAME",
    "N_EVAL",
    "Probe",
    "SEEDS3",
    "SEEDS5",
    "columns",
    "plot_probe",
    "probe_sweep",
    "trains",
    "run_probe",
]
