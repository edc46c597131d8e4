"""Experiment drivers: train (or load) a DiT on Gaussian-process data, sample from it, measure.

:func:`figure1` reproduces the paper's first experiment: a DiT trained on ``n`` sequences of a
Gaussian process generates sequences whose temporal kernel and spatial covariance match the truth.
It returns numbers and arrays (a :class:`Figure1Result`); :func:`plot_figure1` draws them, and
only the command line (``python -m gptheory reproduce figure1``) writes files.

Sizes come from the profile (``smoke``, ``cpu``, ``gpu``; see :data:`FIGURE1_PROFILES`) and can be
overridden one by one. The early-stopping time is ``t0 = 0.01`` on the small profiles (the added
variance ``sigma_t0^2`` is 0.2 % of the data's), where the learned noise prediction is accurate;
the ``gpu`` profile keeps DiT's ``t0 = 1e-3``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch

from . import metrics
from .gp import GaussianProcess
from .profiles import by_profile
from .profiles import device as default_device
from .schedules import DDPMSchedule
from .train import TrainConfig, build_model, generate, load_checkpoint, train, training_set
from .validation import positive_int

# Per profile: the process, the training-set size, the model, the optimisation and the sampler.
FIGURE1_PROFILES: dict[str, dict] = {
    "smoke": {
        "N": 16,
        "d": 2,
        "nu": 2.0,
        "ell": 4.0,
        "n_train": 1024,
        "model": {"hidden": 32, "depth": 2, "heads": 2},
        "train": {"steps": 200, "batch_size": 64, "lr": 2e-3, "warmup": 20, "t0": 0.01, "precision": "fp32"},
        "n_gen": 500,
        "sample_steps": 20,
    },
    "cpu": {
        "N": 32,
        "d": 4,
        "nu": 2.0,
        "ell": 4.0,
        "n_train": 10000,
        "model": {"hidden": 64, "depth": 4, "heads": 4},
        "train": {"steps": 1400, "batch_size": 128, "lr": 2e-3, "warmup": 100, "t0": 0.01, "precision": "fp32"},
        "n_gen": 2000,
        "sample_steps": 30,
    },
    "gpu": {
        "N": 128,
        "d": 8,
        "nu": 2.0,
        "ell": 4.0,
        "n_train": 100000,
        "model": {"hidden": 384, "depth": 12, "heads": 6},
        "train": {"steps": 6000, "batch_size": 256, "lr": 5e-4, "warmup": 300, "precision": "auto", "compile": True},
        "n_gen": 2000,
        "sample_steps": 50,
    },
}


@dataclass
class Figure1Result:
    """What :func:`figure1` measured.

    Attributes:
        metrics: ``temporal`` / ``spatial`` / ``covariance`` relative Frobenius errors of the
            generated sequences (:func:`gptheory.metrics.covariance_errors`), ``paper_relative_error``
            (generated over true samples of the same count), the same errors for ``true`` samples
            (the estimator's own noise floor), ``train_seconds``, ``train_sequences_per_second``,
            ``sample_seconds``, ``steps``, ``final_loss``, ``device``.
        settings: the sizes used (profile values with overrides applied).
        Gamma: true temporal kernel ``(N, N)``; ``Sigma``: true spatial covariance ``(d, d)``.
        Gamma_gen: temporal kernel estimated from the generated sequences ``(N, N)``.
        Gamma_true: the same estimate from as many true sequences ``(N, N)``.
        Sigma_gen: mean over frames of the generated per-frame covariance divided by ``Gamma_ii``, ``(d, d)``.
        x_gen: the generated sequences ``(n_gen, N, d)`` (float32).
        log: the training log (list of dicts, see :func:`gptheory.train.train`).
        model: the trained EMA model (for attention and weight analyses).
    """

    metrics: dict
    settings: dict
    Gamma: torch.Tensor
    Sigma: torch.Tensor
    Gamma_gen: torch.Tensor
    Gamma_true: torch.Tensor
    Sigma_gen: torch.Tensor
    x_gen: torch.Tensor
    log: list = field(default_factory=list)
    model: torch.nn.Module | None = None


def figure1_settings(profile: str | None = None, **overrides) -> dict:
    """The profile's settings with the non-``None`` overrides applied.

    Top-level keys (``N``, ``d``, ``nu``, ``ell``, ``n_train``, ``n_gen``, ``sample_steps``) are
    replaced directly; the others go to the model (``hidden``, ``depth``, ``heads``, ``tokens``) or
    to :class:`~gptheory.train.TrainConfig` (``steps``, ``batch_size``, ``lr``, ``precision``, ...).
    """
    s = copy.deepcopy(by_profile(**FIGURE1_PROFILES, name=profile))
    s["profile"] = profile if profile is not None else by_profile(smoke="smoke", cpu="cpu", gpu="gpu")
    model_keys = {"hidden", "depth", "heads", "tokens", "pos_dim", "mlp_ratio", "activation"}
    train_keys = set(TrainConfig.__dataclass_fields__)
    for k, v in overrides.items():
        if v is None:
            continue
        if k in model_keys:
            s["model"][k] = v
        elif k in train_keys:
            s["train"][k] = v
        elif k in s:
            s[k] = v
        else:
            raise ValueError(f"unknown setting {k!r}; valid: {sorted(set(s) | model_keys | train_keys)}")
    return s


def figure1(
    profile: str | None = None,
    *,
    N: int | None = None,
    d: int | None = None,
    nu: float | None = None,
    ell: float | None = None,
    n_train: int | None = None,
    seed: int = 0,
    checkpoint: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    **overrides,
) -> Figure1Result:
    """Train a DiT on ``n_train`` Gaussian-process sequences, generate, and compare the dependencies.

    Args:
        profile: ``smoke``, ``cpu`` or ``gpu`` (default: the active profile).
        N, d, nu, ell, n_train: override the profile's process and training-set size.
        seed: seeds the process's ``Sigma``, the training set, the model, the training and the sampler.
        checkpoint: training checkpoint; reused (no training) when it holds a finished run with
            the same settings, resumed when it holds an unfinished one.
        device: default :func:`gptheory.profiles.device`.
        progress: ``tqdm`` progress bars.
        **overrides: other settings, see :func:`figure1_settings` (e.g. ``steps=300``, ``hidden=64``).
    """
    s = figure1_settings(profile, N=N, d=d, nu=nu, ell=ell, n_train=n_train, **overrides)
    seed = int(seed)
    s["seed"] = seed
    dev = torch.device(device) if device is not None else default_device()
    gp = GaussianProcess(s["N"], s["d"], nu=s["nu"], ell=s["ell"], seed=seed)
    data = training_set(gp, positive_int("n_train", s["n_train"]), seed=seed)
    train_kw = dict(s["train"])
    if checkpoint is not None:  # an interrupted run resumes from the last tenth
        train_kw.setdefault("checkpoint_every", max(train_kw["steps"] // 10, 1))
    cfg = TrainConfig(seed=seed, **train_kw)
    schedule = DDPMSchedule()
    model = build_model(seed, N=s["N"], d=s["d"], **s["model"])
    res = train(model, data, cfg, schedule, checkpoint=checkpoint, device=dev, progress=progress)
    seconds = res.seconds
    if checkpoint is not None:
        seconds = float(load_checkpoint(checkpoint)["seconds"])
    batch = min(cfg.batch_size, s["n_train"])

    n_gen = positive_int("n_gen", s["n_gen"])
    t_start = time.perf_counter()
    x_gen = generate(
        res.ema,
        n_gen,
        schedule,
        steps=s["sample_steps"],
        t0=cfg.t0,
        method="heun",
        seed=seed + 10,
        precision=cfg.precision,
        progress=progress,
    )
    sample_seconds = time.perf_counter() - t_start
    x_true = gp.sample(n_gen, torch.Generator().manual_seed(seed + 20))

    errs = metrics.covariance_errors(x_gen, gp.Gamma, gp.Sigma)
    errs_true = metrics.covariance_errors(x_true, gp.Gamma, gp.Sigma)
    C_gen, C_true = metrics.pair_covariance(x_gen), metrics.pair_covariance(x_true)
    Gamma_gen = metrics.temporal_kernel(C_gen, gp.Sigma)
    Gamma_true = metrics.temporal_kernel(C_true, gp.Sigma)
    diagG = torch.diagonal(gp.Gamma)[:, None, None]
    Sigma_gen = (metrics.spatial_covariance(C_gen) / diagG).mean(0)
    out = {
        "temporal": errs["temporal"],
        "spatial": errs["spatial"],
        "covariance": errs["covariance"],
        "paper_relative_error": metrics.paper_relative_error(x_gen, x_true, gp.Gamma, gp.Sigma),
        "true_samples": errs_true,
        "train_seconds": seconds,
        "train_sequences_per_second": res.steps * batch / max(seconds, 1e-9),
        "sample_seconds": sample_seconds,
        "steps": res.steps,
        "final_loss": res.log[-1]["loss"] if res.log else float("nan"),
        "device": _device_name(dev),
    }
    return Figure1Result(
        metrics=out,
        settings=s,
        Gamma=gp.Gamma,
        Sigma=gp.Sigma,
        Gamma_gen=Gamma_gen,
        Gamma_true=Gamma_true,
        Sigma_gen=Sigma_gen,
        x_gen=x_gen,
        log=res.log,
        model=res.ema,
    )


def _device_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(dev)})"
    import platform

    return f"cpu ({platform.machine()}, {torch.get_num_threads()} threads)"


def kernel_by_lag(G: torch.Tensor) -> torch.Tensor:
    """Mean of each diagonal of a temporal kernel ``(N, N)``: the kernel as a function of the lag ``(N,)``."""
    return torch.stack([torch.diagonal(G, offset=h).mean() for h in range(G.shape[0])])


def plot_figure1(result: Figure1Result):
    """Heat maps of the true and generated temporal kernels, the kernel against the lag, and the loss.

    Returns the matplotlib ``Figure`` (the caller shows or saves it).
    """
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 4, figsize=(17, 3.8), constrained_layout=True)
    lim = float(result.Gamma.abs().max())
    for a, G, title in ((ax[0], result.Gamma, "true $\\Gamma$"), (ax[1], result.Gamma_gen, "DiT samples")):
        im = a.imshow(G.numpy(), cmap="viridis", vmin=-0.1 * lim, vmax=lim)
        a.set_title(title)
        a.set_xlabel("frame j")
        a.set_ylabel("frame i")
    fig.colorbar(im, ax=ax[:2], shrink=0.8)
    lags = torch.arange(result.Gamma.shape[0])
    ax[2].plot(lags, kernel_by_lag(result.Gamma), "k-", label="true $\\gamma(h)$")
    ax[2].plot(lags, kernel_by_lag(result.Gamma_true), "C0--", label=f"{result.x_gen.shape[0]} true samples")
    ax[2].plot(lags, kernel_by_lag(result.Gamma_gen), "C3.", label="DiT samples")
    ax[2].set_xlabel("lag h (frames)")
    ax[2].set_title(f"temporal rel. error {result.metrics['temporal']:.3f}")
    ax[2].legend()
    steps = [e["step"] for e in result.log]
    ax[3].semilogy(steps, [e["loss"] for e in result.log])
    ax[3].set_xlabel("step")
    ax[3].set_title("training loss")
    return fig
