"""The experiment of Section 6.2: a bouncing ball learned by a latent video diffusion transformer.

One configuration (:class:`gptheory.config.VideoConfig`, one instance per profile in :data:`BOUNCING_BALL`), one
driver (:func:`run_bouncing_ball`) and one entry point (:func:`bouncing_ball`), shared by the chapter "A bouncing
ball" and the command line ``python -m gptheory bouncing-ball --profile smoke|cpu|gpu --out DIR``.

1. a VAE (:mod:`gptheory.bouncing_ball.vae`) learns single frames and is frozen;
2. ``n_train`` seeded videos (:mod:`gptheory.bouncing_ball.videos`) are encoded frame by frame into latent sequences
   ``(n_train, frames, latent_dim)``, standardised per coordinate, and the package's :class:`~gptheory.dit.DiT`
   learns them with the package's training engine (:func:`gptheory.train.train`): one frame is one token;
3. the DiT samples ``n_eval`` latent sequences (probability-flow ODE, Heun), the VAE decodes them to videos;
   as a control, so does a Gaussian with the latents' full covariance (:func:`~.latents.gaussian_fit`);
4. the same measurements run on held-out true videos, their VAE reconstructions and the generated videos:
   the physics of :mod:`gptheory.bouncing_ball.tracking`, and the temporal correlation of the latents (Figure 6).

Frames are stored and measured as 8-bit intensities (what a video file holds), so the shipped generated videos
re-measure to exactly the shipped numbers. Results hold numbers and small arrays with provenance, never weights.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from functools import partial
from pathlib import Path

import numpy as np
import torch

from ..config import VideoConfig
from ..denoiser import build_model
from ..profiles import by_profile
from ..profiles import device as default_device
from ..profiles import profile as active_profile
from ..provenance import device_name, matmul_gflops
from ..results import Result, cached
from ..samplers import generate
from ..streams import seed_of
from ..train import train
from .latents import gaussian_fit, nearest_distance, relative_error, temporal_correlation
from .tracking import physics, track
from .vae import VAE, train_vae
from .videos import make_videos

NAME = "bouncing_ball"  # the name results are saved under
# the layout of a saved result (bumped when run_bouncing_ball() measures or stores something new: no old file is read);
# 3: the calibrated protocol (named streams, training to convergence of a held-out validation loss)
FORMAT = 3
N_VAL = 256  # held-out videos of the validation loss


BOUNCING_BALL: dict[str, VideoConfig] = {
    "smoke": VideoConfig().replace(
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
    "gpu": VideoConfig().replace(
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


def bouncing_ball_config(profile: str | None = None, **overrides) -> VideoConfig:
    """The configuration of ``profile`` (default: the active one) with the non-``None`` flat overrides applied
    (:meth:`gptheory.config.Configuration.replace`), e.g. ``bouncing_ball_config("cpu", frames=48, steps=500)``."""
    return by_profile(**BOUNCING_BALL, name=profile).replace(**overrides)


def to_uint8(frames: torch.Tensor) -> np.ndarray:
    """Frames in ``[0, 1]`` as 8-bit intensities (the video-file form every measurement uses)."""
    return (frames.clamp(0, 1) * 255).round().to(torch.uint8).numpy()


def from_uint8(frames: np.ndarray) -> torch.Tensor:
    return torch.as_tensor(frames, dtype=torch.float32) / 255.0


def run_bouncing_ball(
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
    seed, ball, tcfg = cfg.seed, cfg.ball, cfg.train
    ckpt = (lambda name: wd / name) if wd is not None else (lambda name: None)

    # 1. VAE: trained on single frames, then frozen
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed_of(seed, "vae_init"))
        vae = VAE(ball.size, cfg.vae.latent_size, cfg.vae.latent_channels, cfg.vae.vae_width)
    vcfg = cfg.vae_config(checkpointed=True)
    vres = train_vae(vae, ball.radius, vcfg, checkpoint=ckpt("vae.pt"), device=dev, progress=progress)
    vae = vres.vae

    # 2. latent sequences of the training videos, standardised per coordinate; the DiT learns them
    start = time.perf_counter()
    videos = partial(make_videos, T=ball.frames, size=ball.size, radius=ball.radius, speed=ball.speed)
    train_videos = videos(cfg.n_train, seed=seed_of(seed, "data"))
    z_train = vae.encode_videos(train_videos.frames)
    del train_videos
    mean, std = z_train.mean((0, 1)), z_train.std((0, 1)).clamp(min=1e-6)
    data = (z_train - mean) / std
    # held-out videos for the validation loss: the DiT trains to its convergence (raw: latent videos have no exact
    # denoiser to subtract)
    validation = (vae.encode_videos(videos(N_VAL, seed=seed_of(seed, "validation")).frames) - mean) / std
    encode_seconds = time.perf_counter() - start
    model = build_model(seed_of(seed, "init"), N=ball.frames, d=cfg.latent_dim, **asdict(cfg.model))
    res = train(
        model, data, cfg.train_config(wd is not None), checkpoint=ckpt("dit.pt"), device=dev, progress=progress,
        validation=validation,
    )  # fmt: skip

    # 3. generate latent videos and decode them
    start = time.perf_counter()
    z_gen = generate(
        res.ema, cfg.n_eval, steps=cfg.sample_steps, t0=tcfg.t0, seed=seed_of(seed, "sampler"), progress=False
    )
    gen = to_uint8(vae.decode_videos(z_gen * std + mean))
    generate_seconds = time.perf_counter() - start

    # 3b. the Gaussian stand-in: latent videos drawn from N(0, C) with C the data's full (frames x latent_dim)
    # covariance -- the same second moments, so the same Figure 6, and nothing else
    z_gauss = gaussian_fit(data, cfg.n_eval, seed=seed_of(seed, "yardstick"))
    gauss = to_uint8(vae.decode_videos(z_gauss * std + mean))

    # 4. held-out true videos, their reconstructions, and the measurements
    true = videos(cfg.n_eval, seed=seed_of(seed, "true"))
    z_true = vae.encode_videos(true.frames)
    rec_float = vae.decode_videos(z_true)
    rec = to_uint8(rec_float)
    true8 = to_uint8(true.frames)
    geometry = (ball.size, ball.radius, ball.speed)
    rec_track = track(from_uint8(rec), ball.radius)
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
        "steps": res.steps,
        "stop_reason": res.stop_reason,
        "best_step": res.best_step,
        "best_validation": min(v for _, v in res.validation),
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
        "validation": np.array(res.validation, dtype=np.float64),
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


def bouncing_ball(
    profile: str | None = None,
    *,
    refresh: bool = False,
    workdir: str | Path | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    **overrides,
) -> Result:
    """The result of :func:`run_bouncing_ball` for ``bouncing_ball_config(profile, **overrides)``: the saved one when it
    matches (shipped, then the local cache), else computed and cached. ``workdir`` keeps resumable checkpoints."""
    name = active_profile() if profile is None else profile
    cfg = bouncing_ball_config(name, **overrides)

    def compute(c: dict) -> tuple[dict, dict[str, np.ndarray]]:
        return run_bouncing_ball(config_of(c), workdir, device, progress)

    dev = torch.device(device) if device is not None else default_device()
    return cached(NAME, result_config(cfg), compute, refresh=refresh, profile=name, device=dev)


def result_config(cfg: VideoConfig) -> dict:
    """What a saved result is keyed by: the settings (:meth:`VideoConfig.to_dict`) and the result :data:`FORMAT`."""
    return cfg.to_dict() | {"format": FORMAT}


def config_of(result: dict) -> VideoConfig:
    """The :class:`VideoConfig` a saved result's configuration (:func:`result_config`) describes."""
    return VideoConfig.from_dict({k: v for k, v in result.items() if k != "format"})


__all__ = [
    "BOUNCING_BALL",
    "FORMAT",
    "NAME",
    "bouncing_ball",
    "bouncing_ball_config",
    "config_of",
    "result_config",
    "run_bouncing_ball",
]
