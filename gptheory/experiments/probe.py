"""One trained network measured from every side: the measurement behind Appendix D.2 (:mod:`.architecture`) and the
attention question (:mod:`.attention_learned`).

Each point runs one trial (:func:`gptheory.trial.run_trial`: the network of ``arch``, the DiT or a UNet of the same
size, trained; ``n_gen`` generated sequences; as many true ones, the estimators' floor) and measures:

* the errors of :class:`gptheory.metrics.CovarianceErrors` (whitened temporal kernel, spatial, full covariance, W2)
  and the paper's normalised error ``err(generated) / err(true)`` of the full covariance;
* the errors by gap ``h = |i - j|``: of the temporal kernel (:func:`gptheory.metrics.gap_errors`) and of the
  cross-frame covariances ``C_ij`` (:func:`gptheory.metrics.block_gap_errors`), the quantities Figure 11 plots;
* how "piecewise" the learned kernel is: its :func:`~gptheory.metrics.roughness` (distance from a stationary
  kernel) and the :func:`~gptheory.metrics.phase_share` of that residual explained by the position modulo the
  down-sampling period ``2^levels``;
* for a DiT, its attention: the similarity to the kernel of every layer at every time the sampler visits, at
  initialisation, the fitted bandwidth and the diagonal mass at ``t0`` (:mod:`gptheory.attention`);
* with ``eval_points > 0`` (the training dynamics of Figure 13), the same errors from ``min(n_gen, 500)`` sequences
  generated at ``eval_points`` log-spaced training steps (:func:`eval_steps`), measured inside the training loop and
  kept in its checkpoint.

The sweeps of both chapters share one base configuration per profile (:data:`PROBE`, Figure 1's), so a point that two
sweeps have in common is trained once; :func:`probe_sweep` makes one, with :func:`columns` and the summary figure
:func:`plot_probe`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from .. import attention, metrics
from ..config import ExperimentConfig
from ..dit import DiT
from ..gp import GaussianProcess
from ..metrics import CovarianceErrors
from ..profiles import PROFILES
from ..results import Record, group, value
from ..samplers import generate
from ..streams import generator, seed_of
from ..sweep import Sweep
from ..trial import prepare, run_trial
from .dit_learns import DIT_LEARNS

NAME = "probe"
N_EVAL = 500  # sequences generated at each training-dynamics step (at most n_gen)
PROBE = DIT_LEARNS  # Figure 1's configuration in each profile: the DiT of the chapter "A diffusion transformer learns"


def eval_steps(steps: int, points: int) -> list[int]:
    """``points`` log-spaced training steps from ``steps / 100`` (at least 1) to ``steps``, distinct and sorted (one
    point: the last step)."""
    if points <= 0:
        return []
    if points == 1:  # np.geomspace(a, b, 1) is [a]: the final network would go unmeasured
        return [steps]
    grid = np.geomspace(max(steps / 100, 1.0), steps, points)
    return sorted({int(round(s)) for s in grid})


@dataclass
class Probe(Record):
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


def _period(model: torch.nn.Module) -> int:
    """The down-sampling period of a UNet (``2^levels``), 1 for a network that does not down-sample."""
    return 2 ** int(getattr(model, "levels", 0))


def _whitened(x: torch.Tensor, gp: GaussianProcess) -> tuple[torch.Tensor, torch.Tensor]:
    """Pair covariances ``(N, N, d, d)`` of ``x: (n, N, d)`` and their whitened temporal-kernel estimate ``(N, N)``."""
    C = metrics.pair_covariance(x)
    return C, metrics.temporal_kernel_whitened(C, gp.Sigma)


def _init_maps(model: DiT, data: torch.Tensor, t0: float, seed: int, protocol: int) -> torch.Tensor:
    """Attention maps ``(2, depth, N, N)`` of the untrained ``model`` on noised training data at ``t0`` and ``T``
    (stream ``attention_init``)."""
    rows = []
    x0 = data[: min(256, data.shape[0])].float()
    g = generator(seed, "attention_init", protocol=protocol)
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
    is_dit = isinstance(model, DiT)
    init_maps = _init_maps(model, data, cfg.t0, seed, config.protocol) if is_dit else None
    n_eval = min(s.n_gen, N_EVAL)
    x_eval_true = gp.sample(n_eval, generator=generator(seed, "eval_true", protocol=config.protocol))

    def measure(step: int, net: torch.nn.Module) -> dict:
        x_seed = seed_of(seed, "eval_sampler", config.protocol)
        x = generate(net, n_eval, steps=s.sample_steps, t0=cfg.t0, seed=x_seed, progress=False)
        err = CovarianceErrors.of_samples(x, gp)
        _, G = _whitened(x, gp)
        gaps = metrics.gap_errors(G, gp.Gamma)
        return {"temporal": err.temporal, "spatial": err.spatial, "covariance": err.covariance, "gaps": gaps.tolist()}

    at = eval_steps(cfg.steps, s.eval_points)
    trial = run_trial(
        config, checkpoint, device, progress, prepared=prepared, attention=is_dit, on_step=measure, at_steps=at
    )
    res, net, x_gen, x_true, times, maps = trial.result, trial.net, trial.x_gen, trial.x_true, trial.times, trial.maps
    generate_seconds = trial.generate_seconds
    gen, true = CovarianceErrors.of_samples(x_gen, gp), CovarianceErrors.of_samples(x_true, gp)
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
    dyn: dict = {}
    if res.evals:
        ev = sorted(res.evals, key=lambda e: e["step"])
        true_eval = CovarianceErrors.of_samples(x_eval_true, gp)
        _, G_eval_true = _whitened(x_eval_true, gp)
        dyn = {
            "eval_steps": np.array([e["step"] for e in ev]),
            "eval_temporal": np.array([e["temporal"] for e in ev]),
            "eval_spatial": np.array([e["spatial"] for e in ev]),
            "eval_covariance": np.array([e["covariance"] for e in ev]),
            "eval_gap_error": np.array([e["gaps"] for e in ev]),
            "eval_true": np.array([true_eval.temporal, true_eval.spatial, true_eval.covariance]),
            "eval_gap_error_true": metrics.gap_errors(G_eval_true, gp.Gamma).numpy(),
        }
    return Probe(
        generated=gen,
        true=true,
        paper_relative_error=gen.covariance / true.covariance,
        params=sum(p.numel() for p in net.parameters()),
        receptive_field=int(getattr(net, "max_gap", gp.N - 1)),
        roughness=metrics.roughness(G_gen),
        roughness_true=metrics.roughness(G_true),
        phase_share=metrics.phase_share(G_gen, max(period, 2)),
        phase_share_true=metrics.phase_share(G_true, max(period, 2)),
        train_seconds=res.seconds,
        generate_seconds=generate_seconds,
        steps=res.steps,
        final_loss=res.log[-1]["loss"],
        Gamma=gp.Gamma.numpy(),
        Sigma=gp.Sigma.numpy(),
        Gamma_hat=G_gen.numpy(),
        Gamma_hat_true=G_true.numpy(),
        gap_error=metrics.gap_errors(G_gen, gp.Gamma).numpy(),
        gap_error_true=metrics.gap_errors(G_true, gp.Gamma).numpy(),
        block_error=metrics.block_gap_errors(C_gen, gp.Gamma, gp.Sigma).numpy(),
        block_error_true=metrics.block_gap_errors(C_true, gp.Gamma, gp.Sigma).numpy(),
        pair_gaps=gaps,
        pair_blocks=C_gen[0, gaps].numpy(),
        pair_blocks_true=C_true[0, gaps].numpy(),
        loss_steps=np.array([e["step"] for e in res.log]),
        loss=np.array([e["loss"] for e in res.log]),
        **dit,
        **dyn,
    )


def columns(p: Probe) -> dict:
    """The scalar metrics of one row of ``results.csv``."""
    out = {f"generated.{k}": v for k, v in p.generated.__dict__.items()}
    out |= {f"true.{k}": v for k, v in p.true.__dict__.items()}
    keys = ("paper_relative_error", "params", "receptive_field", "roughness", "roughness_true", "phase_share",
            "train_seconds", "generate_seconds", "final_loss")  # fmt: skip
    out |= {k: getattr(p, k) for k in keys}
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
SEEDS2 = {"smoke": (0,), "cpu": (0, 1), "gpu": (0, 1)}


def probe_sweep(
    name: str, description: str, base: dict[str, ExperimentConfig] | None = None, **axes: dict[str, tuple]
) -> Sweep:
    """A sweep of probe points: ``base`` (default :data:`PROBE`) and, per flat field name, its values per profile."""
    grid = {p: {k: v[p] for k, v in axes.items()} for p in PROFILES}
    return Sweep(name, description, base or PROBE, grid, Probe, run_probe, columns, plot_probe)


__all__ = [
    "NAME",
    "N_EVAL",
    "PROBE",
    "Probe",
    "SEEDS2",
    "SEEDS3",
    "columns",
    "eval_steps",
    "plot_probe",
    "probe_sweep",
    "run_probe",
]
