"""The experiment of Section 6.2: a bouncing ball learned by a latent video diffusion transformer.

One configuration (:class:`VideoConfig`, one instance per profile in :data:`PROFILES`), one driver (:func:`run`) and
one entry point (:func:`learn_video`), shared by the chapter "A bouncing ball" and the command line
``python -m gptheory video --profile smoke|cpu|gpu --out DIR`` (:func:`add_parser`, :func:`main`). (Over 400 lines
because the command line lives here with the driver it runs, so the shared ``__main__`` only registers it.)

1. a VAE (:mod:`gptheory.bouncing_ball.vae`) learns single frames and is frozen;
2. ``n_train`` seeded videos (:mod:`gptheory.bouncing_ball.videos`) are encoded frame by frame into latent sequences
   ``(n_train, frames, latent_dim)``, standardised per coordinate, and the package's :class:`~gptheory.dit.DiT`
   learns them with the package's training engine (:func:`gptheory.train.train`): one frame is one token;
3. the DiT samples ``n_eval`` latent sequences (probability-flow ODE, Heun), the VAE decodes them to videos;
   as a control, so does a Gaussian with the latents' full covariance (:func:`gaussian_fit`);
4. the same measurements run on held-out true videos, their VAE reconstructions and the generated videos:
   the physics of :mod:`gptheory.bouncing_ball.tracking`, and the temporal correlation of the latents (Figure 6).

Frames are stored and measured as 8-bit intensities (what a video file holds), so the shipped generated videos
re-measure to exactly the shipped numbers. Results hold numbers and small arrays with provenance, never weights.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from ..denoiser import build_model
from ..profiles import by_profile
from ..profiles import device as default_device
from ..profiles import profile as active_profile
from ..provenance import device_name, matmul_gflops
from ..results import Result, cached, ship
from ..samplers import generate
from ..train import TrainConfig, train
from ..validation import nonneg_int, positive_int
from .stats import gaussian_fit, nearest_distance, relative_error, temporal_correlation
from .tracking import physics, track
from .vae import VAE, VAEConfig, latent_levels, train_vae
from .videos import bouncing_ball, check_geometry

NAME = "bouncing_ball"  # the name results are saved under
# the layout of a saved result (bumped when run() measures or stores something new, so an old file is not read)
FORMAT = 2


@dataclass(frozen=True)
class VideoConfig:
    """Every setting of the latent-video experiment (pixels, frames, optimiser steps).

    Video: ``size`` (frame side, px), ``radius`` (px), ``speed`` (px per frame), ``frames`` per video, ``n_train``
    training videos, ``n_eval`` videos of each kind measured, ``seed``. VAE: ``latent_size`` (side of the latent
    map), ``latent_channels``, ``vae_width``, ``vae_steps``, ``vae_batch``, ``vae_lr``, ``vae_beta`` (KL weight).
    DiT: ``hidden``, ``depth``, ``heads``, ``prediction``; its optimisation (:class:`~gptheory.train.TrainConfig`
    fields) ``steps``, ``batch_size``, ``lr``, ``warmup``, ``t0``, ``t_sampling``, ``precision``, ``compile``;
    sampler: ``sample_steps`` Heun steps.
    """

    size: int = 32
    radius: float = 3.0
    speed: float = 2.0
    frames: int = 32
    n_train: int = 6000
    n_eval: int = 128
    seed: int = 0
    latent_size: int = 4
    latent_channels: int = 1
    vae_width: int = 8
    vae_steps: int = 2000
    vae_batch: int = 64
    vae_lr: float = 2e-3
    vae_beta: float = 1.0
    hidden: int = 64
    depth: int = 4
    heads: int = 4
    prediction: str = "v"
    steps: int = 7000
    batch_size: int = 64
    lr: float = 2e-3
    warmup: int = 200
    t0: float = 0.01
    t_sampling: str = "log_snr"
    precision: str = "fp32"
    compile: bool = False
    sample_steps: int = 30

    def __post_init__(self) -> None:
        check_geometry(self.size, self.radius, self.speed, self.frames, T_name="frames")
        latent_levels(self.size, self.latent_size)
        for k in ("n_train", "n_eval", "latent_channels", "vae_width", "vae_steps", "vae_batch", "sample_steps"):
            positive_int(k, getattr(self, k))
        nonneg_int("seed", self.seed)
        self.vae_config()
        self.train_config()
        # the DiT checks its own arguments
        build_model(0, N=2, d=1, hidden=self.hidden, depth=1, heads=self.heads, prediction=self.prediction)

    @property
    def latent_dim(self) -> int:
        """Numbers per frame in the latent (one DiT token)."""
        return self.latent_channels * self.latent_size**2

    def vae_config(self) -> VAEConfig:
        return VAEConfig(self.vae_steps, self.vae_batch, self.vae_lr, self.vae_beta, self.seed)

    def train_config(self) -> TrainConfig:
        keys = ("steps", "batch_size", "lr", "warmup", "t0", "t_sampling", "precision", "compile")
        return TrainConfig(seed=self.seed, **{k: getattr(self, k) for k in keys})


PROFILES: dict[str, VideoConfig] = {
    "smoke": VideoConfig(
        size=16,
        radius=2.0,
        speed=1.5,
        frames=12,
        n_train=256,
        n_eval=32,
        vae_width=8,
        vae_steps=120,
        vae_batch=64,
        vae_lr=3e-3,
        hidden=32,
        depth=2,
        heads=2,
        steps=150,
        warmup=20,
        sample_steps=10,
    ),  # fmt: skip
    "cpu": VideoConfig(),
    "gpu": VideoConfig(
        size=64,
        radius=5.0,
        speed=2.5,
        frames=240,
        n_train=10000,
        n_eval=256,
        latent_size=8,
        latent_channels=2,
        vae_width=32,
        vae_steps=20000,
        vae_batch=256,
        hidden=384,
        depth=12,
        heads=6,
        steps=40000,
        batch_size=64,
        lr=3e-4,
        warmup=1000,
        t0=1e-3,
        precision="auto",
        compile=True,
        sample_steps=50,
    ),  # fmt: skip
}


def settings(profile: str | None = None, **overrides) -> VideoConfig:
    """The configuration of ``profile`` (default: the active one) with the non-``None`` overrides applied."""
    base = by_profile(**PROFILES, name=profile)
    fields = {f.name for f in dataclasses.fields(VideoConfig)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ValueError(f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}")
    return dataclasses.replace(base, **{k: v for k, v in overrides.items() if v is not None})


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """Frames in ``[0, 1]`` as 8-bit intensities (the video-file form every measurement uses)."""
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def from_uint8(frames: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(frames, dtype=torch.float32) / 255.0


def run(
    cfg: VideoConfig,
    workdir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> tuple[dict, dict[str, np.ndarray]]:
    """Train the VAE and the latent DiT of ``cfg``, generate, measure (see the module docstring).

    ``workdir`` holds the two training checkpoints (``vae.pt``, ``dit.pt``): an interrupted run resumes, a
    finished one is reloaded. Returns ``(numbers, arrays)``; numbers: ``physics`` for ``exact`` trajectories and
    ``true``, ``reconstructed``, ``generated`` and ``gaussian`` frames (:func:`~.tracking.physics`; the last
    decoded from :func:`gaussian_fit` of the training latents), the VAE's errors,
    the Figure 6 correlation errors, timings and the matrix-product rate. Arrays: the correlation matrices, the
    generated videos (uint8) and latents, a few true and reconstructed videos, tracks, loss curves.
    """
    dev = torch.device(device) if device is not None else default_device()
    wd = Path(workdir) if workdir is not None else None
    if wd is not None:
        wd.mkdir(parents=True, exist_ok=True)
    gflops = matmul_gflops()
    seed = cfg.seed
    ckpt = (lambda name: wd / name) if wd is not None else (lambda name: None)

    # 1. VAE: trained on single frames, then frozen
    vcfg = dataclasses.replace(cfg.vae_config(), checkpoint_every=max(cfg.vae_steps // 10, 1))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae = VAE(cfg.size, cfg.latent_size, cfg.latent_channels, cfg.vae_width)
    vres = train_vae(vae, cfg.radius, vcfg, checkpoint=ckpt("vae.pt"), device=dev, progress=progress)
    vae = vres.vae

    # 2. latent sequences of the training videos, standardised per coordinate; the DiT learns them
    start = time.perf_counter()
    train_videos = bouncing_ball(cfg.n_train, cfg.frames, cfg.size, cfg.radius, cfg.speed, seed=seed)
    z_train = vae.encode_videos(train_videos.frames)
    del train_videos
    mean, std = z_train.mean((0, 1)), z_train.std((0, 1)).clamp(min=1e-6)
    data = (z_train - mean) / std
    encode_seconds = time.perf_counter() - start
    model = build_model(seed, N=cfg.frames, d=cfg.latent_dim, hidden=cfg.hidden, depth=cfg.depth, heads=cfg.heads,
                        prediction=cfg.prediction)  # fmt: skip
    tcfg = cfg.train_config()
    tcfg.checkpoint_every = max(cfg.steps // 10, 1) if wd is not None else 0
    res = train(model, data, tcfg, checkpoint=ckpt("dit.pt"), device=dev, progress=progress)

    # 3. generate latent videos and decode them
    start = time.perf_counter()
    z_gen = generate(res.ema, cfg.n_eval, steps=cfg.sample_steps, t0=cfg.t0, seed=seed + 2, progress=False)
    gen = to_uint8(vae.decode_videos(z_gen * std + mean))
    generate_seconds = time.perf_counter() - start

    # 3b. the Gaussian stand-in: latent videos drawn from N(0, C) with C the data's full (frames x latent_dim)
    # covariance -- the same second moments, so the same Figure 6, and nothing else
    z_gauss = gaussian_fit(data, cfg.n_eval, seed=seed + 3)
    gauss = to_uint8(vae.decode_videos(z_gauss * std + mean))

    # 4. held-out true videos, their reconstructions, and the measurements
    true = bouncing_ball(cfg.n_eval, cfg.frames, cfg.size, cfg.radius, cfg.speed, seed=seed + 1)
    z_true = vae.encode_videos(true.frames)
    rec_float = vae.decode_videos(z_true)
    rec = to_uint8(rec_float)
    true8 = to_uint8(true.frames)
    geometry = (cfg.size, cfg.radius, cfg.speed)
    rec_track = track(from_uint8(rec), cfg.radius)
    centre_err = np.linalg.norm(rec_track.centres - true.positions, axis=-1)
    corr_data = temporal_correlation(data)
    corr_true = temporal_correlation((z_true - mean) / std)
    corr_gen = temporal_correlation(z_gen)
    numbers = {
        "physics": {
            "exact": physics_of_positions(true.positions, *geometry),
            "true": physics(from_uint8(true8), *geometry),
            "reconstructed": physics(from_uint8(rec), *geometry),
            "generated": physics(from_uint8(gen), *geometry),
            "gaussian": physics(from_uint8(gauss), *geometry),
        },
        "true_hits_per_video": len(true.hits) / cfg.n_eval,
        "vae": {
            "mse": float((rec_float - true.frames).square().mean()),
            "relative_error": relative_error(rec_float.numpy(), true.frames.numpy()),
            "centre_error_px": _nan_stat(np.mean, centre_err),
            "centre_error_px_max": _nan_stat(np.max, centre_err),
            "one_ball_at_truth_fraction": float((rec_track.one_ball & (centre_err < 1.0)).mean()),
            "final_loss": vres.log[-1]["loss"],
        },
        "correlation_error_generated": relative_error(corr_gen, corr_data),
        "correlation_error_true": relative_error(corr_true, corr_data),
        # memorisation check: distance from each video's latents to the nearest training video, generated over true
        "nearest_training_ratio": float(
            np.median(nearest_distance(z_gen, data)) / np.median(nearest_distance((z_true - mean) / std, data))
        ),
        "correlation_error_gaussian": relative_error(temporal_correlation(z_gauss), corr_data),
        "latent_dim": cfg.latent_dim,
        "vae_train_seconds": vres.seconds,
        "dit_train_seconds": res.seconds,
        "encode_seconds": encode_seconds,
        "generate_seconds": generate_seconds,
        "final_loss": res.log[-1]["loss"],
        "matmul_gflops": gflops,
        "torch_threads": torch.get_num_threads(),
        "device": device_name(dev),
    }
    keep = min(8, cfg.n_eval)
    arrays = {
        "corr_data": corr_data,
        "corr_true": corr_true,
        "corr_generated": corr_gen,
        "generated": gen,
        "z_generated": z_gen.numpy().astype(np.float32),
        "true": true8[:keep],
        "reconstructed": rec[:keep],
        "gaussian": gauss[:keep],
        "true_positions": true.positions[:keep],
        "latent_mean": mean.numpy(),
        "latent_std": std.numpy(),
        "vae_loss_steps": np.array([e["step"] for e in vres.log]),
        "vae_loss": np.array([e["loss"] for e in vres.log]),
        "loss_steps": np.array([e["step"] for e in res.log]),
        "loss": np.array([e["loss"] for e in res.log]),
    }
    return numbers, arrays


def _nan_stat(fn, x: np.ndarray) -> float:
    """``fn`` over the finite entries of ``x`` (NaN when there are none: no frame was tracked)."""
    x = x[np.isfinite(x)]
    return float(fn(x)) if x.size else float("nan")


def physics_of_positions(positions: np.ndarray, size: int, radius: float, speed: float) -> dict:
    """:func:`~.tracking.motion_metrics` of exact trajectories (every error zero up to rounding)."""
    from .tracking import motion_metrics

    return motion_metrics(positions, size, radius, speed)


def learn_video(
    profile: str | None = None,
    *,
    refresh: bool = False,
    workdir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    **overrides,
) -> Result:
    """The result of :func:`run` for ``settings(profile, **overrides)``: the saved one when it matches (shipped,
    then the local cache), else computed and cached. ``workdir`` keeps resumable checkpoints."""
    name = active_profile() if profile is None else profile
    cfg = settings(name, **overrides)

    def compute(c: dict) -> tuple[dict, dict[str, np.ndarray]]:
        return run(VideoConfig(**{k: v for k, v in c.items() if k != "format"}), workdir, device, progress)

    dev = torch.device(device) if device is not None else default_device()
    return cached(NAME, result_config(cfg), compute, refresh=refresh, profile=name, device=dev)


def result_config(cfg: VideoConfig) -> dict:
    """What a saved result is keyed by: the settings and the result :data:`FORMAT`."""
    return asdict(cfg) | {"format": FORMAT}


# ---------------------------------------------------------------------------------------------- command line
_CLI_FIELDS = [f for f in dataclasses.fields(VideoConfig)]


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Register ``video`` on the ``python -m gptheory`` command line; one option per :class:`VideoConfig` field."""
    p = subparsers.add_parser(
        "video",
        help="Section 6.2: a bouncing ball learned by a latent video DiT (writes video.gif, frames.png, metrics.json)",
    )
    p.add_argument("--profile", choices=("smoke", "cpu", "gpu"), default=None, help="sizes (default: active)")
    p.add_argument("--out", required=True, help="output folder (also holds the resumable checkpoints)")
    p.add_argument("--refresh", action="store_true", help="recompute even when a saved result matches")
    p.add_argument("--ship", action="store_true", help="also write the result into gptheory/shipped/")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    for f in _CLI_FIELDS:
        flag = "--" + f.name.replace("_", "-")
        if f.type in ("bool", bool):
            p.add_argument(flag, dest=f.name, action="store_true", default=None, help=f"(profile: {f.default})")
        else:
            kind = {"int": int, "float": float, "str": str}.get(str(f.type), str)
            p.add_argument(flag, dest=f.name, type=kind, default=None, help=f"(cpu profile: {f.default})")
    return p


def main(a: argparse.Namespace) -> dict:
    """Run (or load) the experiment for the parsed options and write ``video.gif``, ``frames.png`` and
    ``metrics.json`` into ``--out``; returns the metrics."""
    import matplotlib.pyplot as plt

    from .figures import frame_strip, plot_figure6, save_gif

    if a.threads is not None:
        torch.set_num_threads(positive_int("threads", a.threads))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    overrides = {f.name: getattr(a, f.name) for f in _CLI_FIELDS}
    dev = torch.device(a.device) if a.device else default_device()
    res = learn_video(a.profile, refresh=a.refresh, workdir=out, device=dev, progress=not a.no_progress, **overrides)
    gen = res.arrays["generated"]
    save_gif(gen[0], out / "video.gif")
    videos = {"true": res.arrays["true"][0], "VAE reconstruction": res.arrays["reconstructed"][0]}
    videos.update({f"generated #{k}": gen[k] for k in range(min(3, len(gen)))})
    fig = frame_strip(videos, count=10, radius=res.config["radius"])
    fig.savefig(out / "frames.png", dpi=110)
    plt.close(fig)
    fig = plot_figure6(res)
    fig.savefig(out / "figure6.png", dpi=110)
    plt.close(fig)
    shipped_to = str(ship(res)) if a.ship else None
    report = {
        "experiment": NAME,
        **res.numbers,
        "loaded": res.loaded,
        "result": str(res.path),
        "shipped": shipped_to,
        "provenance": res.provenance.__dict__,
    }
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("physics", "vae", "correlation_error_generated")}, indent=1))
    return report


__all__ = [
    "FORMAT",
    "NAME",
    "PROFILES",
    "VideoConfig",
    "add_parser",
    "learn_video",
    "main",
    "result_config",
    "run",
    "settings",
]
