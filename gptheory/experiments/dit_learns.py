"""The experiment of Section 6.1 and Appendix D.1: a DiT trained on Gaussian-process sequences, measured.

One configuration per profile (:data:`DIT_LEARNS`, typed :class:`~gptheory.config.ExperimentConfig`), one driver
(:func:`run_dit_learns`) and one entry point (:func:`dit_learns`), shared by the chapter "A diffusion transformer
learns the process", ``python -m gptheory dit-learns`` and the ``dit-learns`` sweep:

* :func:`dit_learns_config`: a profile's configuration with flat overrides (``dit_learns_config("cpu", ell=2.0)``);
* :func:`run_dit_learns`: one trial (:func:`gptheory.trial.run_trial`, sampling with every layer's attention
  recorded), measured: the Figure 1 errors (:class:`gptheory.metrics.CovarianceErrors`) beside their floor, and the
  weight and attention analyses of :mod:`gptheory.attention`, as a typed :class:`DitLearns` record;
* :func:`dit_learns`: the saved record of exactly this configuration when there is one (shipped, then the local
  cache, whose key also covers the source code), else :func:`run_dit_learns`.

Why the ``cpu`` profile looks as it does (measured on fixed budgets of 2500 steps, before training ran to
convergence: fp32, two threads, ``N=32, d=4, nu=2, ell=4``, least-squares temporal error of 2000 generated sequences):

* the network outputs ``v`` (:mod:`gptheory.dit`): with the noise output the samples came out 3-7 % too wide
  (seeds 0-2: errors 0.081, 0.127, 0.088), because at ``t > 0.6``, where ``eps*`` is almost ``sigma_t x_t``, it
  passed up to 4 % too little of the leading eigen-directions through (:func:`gptheory.attention.eigen_response`)
  and the rate ``beta_t`` turns that into width (:func:`~gptheory.attention.variance_drift` predicts 1.037); with
  ``v``, variance ratios 0.97-1.00 and errors 0.064-0.077 on seeds 0-4;
* batch 64 (more updates beat larger batches within a budget), training times uniform in the log signal-to-noise
  ratio (:class:`gptheory.train.TimeSampler`), and ``t0 = 0.01`` (``sigma_t0^2`` is 0.2 % of the data's variance).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .. import attention, metrics
from ..config import ExperimentConfig, ModelConfig, ProcessConfig, SamplerConfig
from ..convergence import Calibrated
from ..gp import DTYPE
from ..metrics import CovarianceErrors, Law
from ..profiles import by_profile
from ..profiles import device as default_device
from ..profiles import profile as active_profile
from ..recipe import TrainConfig
from ..results import Record, cached, ship
from ..streams import seed_of
from ..sweep import Sweep
from ..trial import calibrated, prepare, run_trial

NAME = "dit_learns"  # the name results are saved under

# The experiment's configuration in each profile (the process, the training-set size, the seed, the model, the
# optimisation, the sampler): trained until the excess validation loss stops improving (``steps`` is the cap;
# gptheory.convergence), the samples measured against the law at t0.
DIT_LEARNS = {
    "smoke": ExperimentConfig(
        process=ProcessConfig(N=16, d=2, nu=2.0, ell=2.0),
        n_train=512,
        model=ModelConfig(hidden=32, depth=3, heads=2),
        train=TrainConfig(
            steps=300, batch_size=64, lr=2e-3, warmup=20, t0=0.01, t_sampling="log_snr", precision="fp32",
            patience=2, eval_every=20, min_delta=1e-4,
        ),
        sampler=SamplerConfig(n_gen=400, sample_steps=10, record=4),
    ),
    "cpu": ExperimentConfig(
        process=ProcessConfig(N=32, d=4, nu=2.0, ell=4.0),
        n_train=10000,
        model=ModelConfig(hidden=64, depth=4, heads=4),
        train=TrainConfig(
            steps=12000, batch_size=64, lr=2e-3, warmup=200, t0=0.01, t_sampling="log_snr", precision="fp32",
            patience=6, eval_every=100, min_delta=1e-4,
        ),
        sampler=SamplerConfig(n_gen=2000, sample_steps=30, record=6),
    ),
    "gpu": ExperimentConfig(
        process=ProcessConfig(N=128, d=8, nu=2.0, ell=4.0),
        n_train=100000,
        model=ModelConfig(hidden=384, depth=12, heads=6),
        train=TrainConfig(
            steps=30000, batch_size=256, lr=5e-4, warmup=300, t0=1e-3, t_sampling="log_snr", precision="auto",
            compile=True, patience=4, eval_every=250, min_delta=1e-4,
        ),
        sampler=SamplerConfig(n_gen=2000, sample_steps=50, record=6),
    ),
}  # fmt: skip


def dit_learns_config(profile: str | None = None, **overrides) -> ExperimentConfig:
    """The configuration of ``profile`` (default: the active one) with flat overrides by field name applied
    (:meth:`ExperimentConfig.replace`), e.g. ``dit_learns_config("cpu", ell=2.0, steps=500)``."""
    return by_profile(**DIT_LEARNS, name=profile).replace(**overrides)


@dataclass
class DitLearns(Calibrated, Record):
    """The measured Figure 1 run: errors, timings, and the weight and attention analyses (per layer lists).

    Numbers: ``errors_generated`` / ``errors_true`` (:class:`~gptheory.metrics.CovarianceErrors` of the generated
    and of as many true sequences; Figure 1's temporal error is the least-squares one, ``temporal_ls``), the generated
    errors' ratios to their floor (``ratio_temporal`` of ``temporal_ls``), the paper's relative error, the generated
    variance (measured and as the network's linear response predicts), training and sampling seconds, training
    throughput, the final loss; per layer: query-key block shares (trained and at initialisation), logit shares,
    value data shares, kernel similarity at ``T`` and ``t0``, of the best head, fitted bandwidth; the similarity of
    self-attention and of the hand-built transformer.

    Arrays: ``Gamma``, ``Sigma``, the temporal-kernel and per-frame spatial estimates, the query-key blocks
    ``qk[b]: (depth, hidden, hidden)``, recorded times, similarity at every time and layer, attention maps at
    ``record`` times, per-head maps at ``t0``, gap profiles, the construction's attention, the loss curve, the
    per-eigen-direction shortfall and the spectrum.

    Trained to convergence (``stop_reason``, ``best_step``), generated sequences against the law at ``t0`` and true
    ones against the data law; ``floor``: the sampling floor of ``n_gen`` draws at ``t0``, which the ratios divide
    by; the paper's relative error on ``relative_count`` generated and training sequences; ``memorisation``.
    """

    NAME = NAME

    errors_generated: CovarianceErrors
    errors_true: CovarianceErrors
    paper_relative_error: float
    variance_ratio: float
    variance_ratio_predicted: float
    train_seconds: float
    train_sequences_per_second: float
    generate_seconds: float
    steps: int
    final_loss: float
    time_share: list[float]
    time_share_init: list[float]
    qk_shares: dict[str, list[float]]
    logit_shares: dict[str, list[float]]
    value_data_share: list[float]
    value_data_share_init: list[float]
    similarity_final: list[float]
    similarity_first: list[float]
    similarity_identity: float
    similarity_construction: float
    similarity_best_head: list[float]
    fitted_ell: list[float]
    Gamma: np.ndarray
    Sigma: np.ndarray
    Gamma_hat_generated: np.ndarray
    Gamma_hat_true: np.ndarray
    spatial_generated: np.ndarray
    spatial_true: np.ndarray
    times: np.ndarray
    similarity: np.ndarray
    record_times: np.ndarray
    attention: np.ndarray
    head_attention: np.ndarray
    gap_profile: np.ndarray
    construction_attention: np.ndarray
    loss_steps: np.ndarray
    loss: np.ndarray
    eigen_times: np.ndarray
    eigen_delta: np.ndarray
    spectrum: np.ndarray
    qk: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def ratio_temporal(self) -> float:
        """Figure 1's temporal error (least squares) over its sampling floor at ``n_gen``."""
        return self.errors_generated.temporal_ls / self.floor.temporal_ls

    @property
    def ratio_spatial(self) -> float:
        """The spatial error over its sampling floor at ``n_gen``."""
        return self.errors_generated.spatial / self.floor.spatial


def run_dit_learns(
    config: ExperimentConfig,
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> DitLearns:
    """Train a DiT on ``config``, generate with attention recording, measure (:class:`DitLearns`).

    Args:
        config: the configuration (:func:`dit_learns_config`).
        checkpoint: training checkpoint (written every tenth of the run); an unfinished run resumes
            from it, a finished one is reloaded without training.
        device: default :func:`gptheory.profiles.device`.
        progress: ``tqdm`` progress bars for training.
    """
    prepared = prepare(config, checkpointed=checkpoint is not None)
    model = prepared.model
    init = {"qk": attention.block_shares(attention.qk_blocks(model)), "v": attention.value_shares(model)}
    trial = run_trial(config, checkpoint, device, progress, prepared=prepared, attention=True)
    gp, cfg, res, net = trial.gp, trial.train_config, trial.result, trial.net
    sampler, schedule = config.sampler, model.schedule
    x_gen, x_true, times, maps = trial.x_gen, trial.x_true, trial.times, trial.maps

    law = Law.data(gp)
    law_gen = Law.at(gp, cfg.t0, schedule)  # what a sampler stopped at t0 draws
    C_gen, C_true = metrics.pair_covariance(x_gen), metrics.pair_covariance(x_true)
    err_gen = CovarianceErrors.of_pairs(C_gen, x_gen.to(DTYPE).mean(0), law_gen)
    err_true = CovarianceErrors.of_pairs(C_true, x_true.to(DTYPE).mean(0), law)
    more = calibrated(trial, config)
    sim_all = attention.similarity(maps.double(), gp.Gamma)  # (K, depth)
    ndev = next(net.parameters()).device
    head_maps = attention.attention_maps(net, x_gen.to(ndev), cfg.t0, heads=True)
    final = maps[-1].double()  # (depth, N, N) at t0
    built = attention.construction_attention(gp)
    keep = attention.pick_times(times, sampler.record)
    blocks = attention.qk_blocks(net)
    shares = attention.block_shares(blocks)
    vshares = attention.value_shares(net)
    lshares = attention.logit_shares(net, x_gen[: min(256, sampler.n_gen)].to(ndev), cfg.t0)
    batch = min(cfg.batch_size, config.n_train)

    def eps_fn(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return net(x.to(ndev, torch.float32), t.to(ndev, torch.float32), check=False).to("cpu", DTYPE)

    eig_times = torch.logspace(math.log10(cfg.t0), math.log10(schedule.T), 40, dtype=DTYPE)
    delta = attention.eigen_response(
        eps_fn, gp, schedule, eig_times, n=min(2048, sampler.n_gen), seed=seed_of(config.seed, "eigen")
    )
    drift = attention.variance_drift(delta, eig_times, gp, schedule)
    spectrum = gp.spectrum

    return DitLearns(
        errors_generated=err_gen,
        errors_true=err_true,
        variance_ratio=float(x_gen.double().var(0).mean() / x_true.double().var(0).mean()),
        # the variance ratio the network's linear response predicts (attention.variance_drift), eigenvalue-weighted
        variance_ratio_predicted=float((spectrum * drift.exp()).sum() / spectrum.sum()),
        train_seconds=res.seconds,
        train_sequences_per_second=res.steps * batch / max(res.seconds, 1e-9),
        generate_seconds=trial.generate_seconds,
        steps=res.steps,
        final_loss=res.log[-1]["loss"],
        time_share=shares["ee"].tolist(),
        time_share_init=init["qk"]["ee"].tolist(),
        qk_shares={b: v.tolist() for b, v in shares.items()},
        logit_shares={b: v.tolist() for b, v in lshares.items()},
        value_data_share=vshares.tolist(),
        value_data_share_init=init["v"].tolist(),
        similarity_final=sim_all[-1].tolist(),
        similarity_first=sim_all[0].tolist(),
        similarity_identity=float(attention.similarity(torch.eye(gp.N, dtype=DTYPE), gp.Gamma)),
        similarity_construction=float(attention.similarity(built, gp.Gamma)),
        similarity_best_head=attention.similarity(head_maps.double(), gp.Gamma).amax(-1).tolist(),
        fitted_ell=[attention.fitted_bandwidth(final[layer], gp.nu) for layer in range(final.shape[0])],
        Gamma=gp.Gamma.numpy(),
        Sigma=gp.Sigma.numpy(),
        Gamma_hat_generated=metrics.temporal_kernel(C_gen, gp.Sigma).numpy(),
        Gamma_hat_true=metrics.temporal_kernel(C_true, gp.Sigma).numpy(),
        spatial_generated=metrics.spatial_covariance(C_gen).numpy(),
        spatial_true=metrics.spatial_covariance(C_true).numpy(),
        times=times.numpy(),
        similarity=sim_all.numpy(),
        record_times=times[keep].numpy(),
        attention=maps[keep].numpy(),
        head_attention=head_maps.numpy(),
        gap_profile=attention.gap_profile(final).numpy(),
        construction_attention=built.numpy(),
        loss_steps=np.array([e["step"] for e in res.log]),
        loss=np.array([e["loss"] for e in res.log]),
        eigen_times=eig_times.numpy(),
        eigen_delta=delta.numpy(),  # (K, N, d): shortfall of the noise prediction per eigen-direction
        spectrum=spectrum.numpy(),  # (N, d): eigenvalues lambda_i m_j of Gamma (x) Sigma
        qk={b: torch.stack([layer[b] for layer in blocks]).cpu().numpy() for b in attention.BLOCKS},
        **more,
    )


def dit_learns(
    profile: str | None = None,
    *,
    refresh: bool = False,
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    **overrides,
) -> DitLearns:
    """The :class:`DitLearns` record of :func:`run_dit_learns` for ``dit_learns_config(profile, **overrides)``: loaded
    when a saved one matches, computed (and saved to the local cache) otherwise.

    A shipped record matches on the configuration and the package version; a cached one also on the source
    of every module the driver imports (:func:`gptheory.provenance.code_hash`), so an edited driver, model or
    metric never silently reuses an old local run. ``refresh`` recomputes regardless.
    """
    name = active_profile() if profile is None else profile
    config = dit_learns_config(name, **overrides)
    dev = torch.device(device) if device is not None else default_device()

    def compute(body: dict) -> DitLearns:
        return run_dit_learns(config, checkpoint=checkpoint, device=dev, progress=progress)

    return cached(NAME, config.to_dict(), compute, DitLearns, refresh, profile=name, device=dev)


def regenerate_gpu_results(directory: str | Path | None = None) -> DitLearns:
    """Run the ``gpu`` profile afresh and ship its record into the package's ``shipped/`` folder (or
    ``directory``). Needs CUDA: on the CPU it would take hours."""
    if not torch.cuda.is_available():
        raise RuntimeError("regenerate_gpu_results needs a CUDA device; on the CPU use dit_learns('cpu')")
    res = dit_learns("gpu", refresh=True)
    ship(res, directory)
    return res


def plot_figure1(result: DitLearns):
    """Heat maps of the true and generated temporal kernels, the kernel against the lag, and the training loss.

    Returns the matplotlib ``Figure`` (the caller shows or saves it).
    """
    import matplotlib.pyplot as plt

    G = result.Gamma
    fig, ax = plt.subplots(1, 4, figsize=(17, 3.8), constrained_layout=True)
    lim = float(np.abs(G).max())
    for axis, M, title in ((ax[0], G, "true $\\Gamma$"), (ax[1], result.Gamma_hat_generated, "DiT samples")):
        im = axis.imshow(M, cmap="viridis", vmin=-0.1 * lim, vmax=lim)
        axis.set_title(title)
        axis.set_xlabel("frame j")
        axis.set_ylabel("frame i")
    fig.colorbar(im, ax=ax[:2], shrink=0.8)

    n_gen = result.config.get("sampler", {}).get("n_gen", "as many")
    ax[2].plot(attention.lag_profile(G), "k-", label="true $\\gamma(h)$")
    ax[2].plot(attention.lag_profile(result.Gamma_hat_true), "C0--", label=f"{n_gen} true samples")
    ax[2].plot(attention.lag_profile(result.Gamma_hat_generated), "C3.", label="DiT samples")
    ax[2].set_xlabel("lag h (frames)")
    ax[2].set_title(f"temporal rel. error {result.errors_generated.temporal_ls:.3f}")
    ax[2].legend()
    ax[3].semilogy(result.loss_steps, result.loss)
    ax[3].set_xlabel("step")
    ax[3].set_title("training loss")
    return fig


def _point(config: ExperimentConfig, checkpoint: str | None = None, progress: bool = True) -> DitLearns:
    return run_dit_learns(config, checkpoint=checkpoint, progress=progress)


def _columns(r: DitLearns) -> dict:
    keys = ("paper_relative_error", "ratio_temporal", "variance_ratio", "train_seconds", "final_loss")
    gen, true = r.errors_generated, r.errors_true
    out = {f"generated.{k}": v for k, v in gen.__dict__.items()} | {f"true.{k}": v for k, v in true.__dict__.items()}
    return out | {k: getattr(r, k) for k in keys} | r.calibrated_columns()


SWEEPS = (
    Sweep(
        name="dit-learns",
        description="Figure 1 (the DiT learns Gamma and Sigma) over seeds or any other axis",
        base=DIT_LEARNS,
        grid={"smoke": {"seed": (0,)}, "cpu": {"seed": (0, 1, 2)}, "gpu": {"seed": (0,)}},
        record=DitLearns,
        point=_point,
        columns=_columns,
        plot=None,
    ),
)


__all__ = [
    "DIT_LEARNS",
    "NAME",
    "SWEEPS",
    "DitLearns",
    "dit_learns",
    "dit_learns_config",
    "plot_figure1",
    "regenerate_gpu_results",
    "run_dit_learns",
]
