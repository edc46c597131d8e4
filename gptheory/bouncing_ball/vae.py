"""A small 2D convolutional VAE with a per-frame latent (the first stage of the latent video model, Section 6.2).

Frames ``x: (B, size, size)`` in ``[0, 1]`` are encoded to a latent map ``z: (B, channels, h, h)`` with
``h = latent_size = size / 2^levels``: a 3x3 convolution, ``levels`` stride-2 4x4 convolutions (width doubling,
capped at ``4 width``) and a 3x3 convolution to the mean and log-variance. The decoder mirrors it with transposed
convolutions and returns logits; :meth:`VAE.decode` applies the sigmoid. The flattened latent of one frame,
``channels * h * h`` numbers, is one token of the latent DiT.

Training (:func:`train_vae`) minimises the Bernoulli reconstruction loss (binary cross-entropy summed over the
pixels) plus ``beta`` times the KL divergence to ``N(0, I)``, per frame, with AdamW on freshly rendered frames
(the ball at uniform random positions; batch ``k`` drawn from ``seed`` and ``k``, so an interrupted run resumes
exactly). After training the VAE is frozen and encodes with the posterior mean.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from ..atomic import atomic_write
from ..config import VAEConfig, latent_levels
from ..streams import generator, seed_of
from ..validation import positive_int
from .videos import render

VAE_CHECKPOINT_VERSION = 2  # 2: named random streams (the calibrated protocol)


class VAE(nn.Module):
    """Convolutional VAE for ``size x size`` frames with a ``(channels, latent_size, latent_size)`` latent.

    Args:
        size: frame side (pixels).
        latent_size: side of the latent map; ``size`` halved ``levels >= 1`` times.
        channels: latent channels.
        width: channels of the first convolution.
    """

    def __init__(self, size: int = 32, latent_size: int = 4, channels: int = 1, width: int = 32) -> None:
        super().__init__()
        self.size, self.latent_size = positive_int("size", size), positive_int("latent_size", latent_size)
        self.channels, self.width = positive_int("channels", channels), positive_int("width", width)
        self.levels = latent_levels(self.size, self.latent_size)
        widths = [min(width * 2**k, 4 * width) for k in range(self.levels + 1)]
        enc: list[nn.Module] = [nn.Conv2d(1, widths[0], 3, padding=1), nn.SiLU()]
        for a, b in zip(widths[:-1], widths[1:], strict=True):
            enc += [nn.Conv2d(a, b, 4, stride=2, padding=1), nn.SiLU()]
        enc.append(nn.Conv2d(widths[-1], 2 * channels, 3, padding=1))
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(channels, widths[-1], 3, padding=1), nn.SiLU()]
        for a, b in zip(widths[::-1][:-1], widths[::-1][1:], strict=True):
            dec += [nn.ConvTranspose2d(a, b, 4, stride=2, padding=1), nn.SiLU()]
        dec.append(nn.Conv2d(widths[0], 1, 3, padding=1))
        self.decoder = nn.Sequential(*dec)

    @property
    def latent_dim(self) -> int:
        """Numbers per frame in the flattened latent, ``channels * latent_size^2``."""
        return self.channels * self.latent_size**2

    def config(self) -> dict:
        return {"size": self.size, "latent_size": self.latent_size, "channels": self.channels, "width": self.width}

    def _frames(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (self.size, self.size):
            raise ValueError(f"frames must be {self.size}x{self.size} for this VAE, got {tuple(x.shape[-2:])}")
        return x.reshape(-1, 1, self.size, self.size).to(self.encoder[0].weight.dtype)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance, each ``(B, channels, h, h)``, of frames ``x: (B, size, size)``."""
        mu, logvar = self.encoder(self._frames(x)).chunk(2, dim=1)
        return mu, logvar.clamp(-20.0, 10.0)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, size, size)`` of latents ``z: (B, channels, h, h)``."""
        return self.decoder(z).squeeze(1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Frames ``(B, size, size)`` in ``[0, 1]`` of latents ``z: (B, channels, h, h)``."""
        return torch.sigmoid(self.decode_logits(z))

    def loss(self, x: torch.Tensor, beta: float, generator: torch.Generator | None = None) -> torch.Tensor:
        """Negative ELBO per frame (``beta``-weighted KL) of frames ``x: (B, size, size)``."""
        mu, logvar = self.encode(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=generator, device=mu.device)
        rec = F.binary_cross_entropy_with_logits(self.decode_logits(z), x, reduction="sum")
        kl = 0.5 * (mu.square() + logvar.exp() - 1.0 - logvar).sum()
        return (rec + beta * kl) / x.shape[0]

    @torch.no_grad()
    def encode_videos(self, frames: torch.Tensor, batch: int = 4096) -> torch.Tensor:
        """Flattened posterior means ``(n, T, latent_dim)`` of videos ``frames: (n, T, size, size)``."""
        n, T = frames.shape[:2]
        dev = self.encoder[0].weight.device
        flat = frames.reshape(n * T, self.size, self.size)
        mus = [self.encode(part.to(dev))[0].reshape(len(part), -1).cpu() for part in flat.split(batch)]
        return torch.cat(mus).reshape(n, T, self.latent_dim)

    @torch.no_grad()
    def decode_videos(self, z: torch.Tensor, batch: int = 4096) -> torch.Tensor:
        """Frames ``(n, T, size, size)`` of flattened latents ``z: (n, T, latent_dim)``."""
        if z.shape[-1] != self.latent_dim:
            raise ValueError(f"latents must have {self.latent_dim} numbers per frame for this VAE, got {z.shape[-1]}")
        n, T = z.shape[:2]
        dev = self.encoder[0].weight.device
        maps = z.reshape(n * T, self.channels, self.latent_size, self.latent_size)
        out = [self.decode(part.to(dev, torch.float32)).cpu() for part in maps.split(batch)]
        return torch.cat(out).reshape(n, T, self.size, self.size)


@dataclass
class VAEResult:
    """What :func:`train_vae` returns: the frozen VAE (eval mode), the loss log, seconds over all sessions."""

    vae: VAE
    log: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0


def vae_batch(step: int, batch_size: int, size: int, radius: float, seed: int) -> torch.Tensor:
    """The training frames of step ``step``: ``(batch_size, size, size)``, the ball at uniform positions."""
    rng = np.random.default_rng([seed, step])
    return render(rng.uniform(radius, size - radius, size=(batch_size, 2)), size, radius)


def train_vae(
    vae: VAE,
    radius: float,
    cfg: VAEConfig,
    checkpoint: str | os.PathLike | None = None,
    device: str | torch.device | None = None,
    progress: bool = True,
    stop_at: int | None = None,
) -> VAEResult:
    """Train ``vae`` on rendered frames of a ball of ``radius``; resumes from ``checkpoint`` when it exists.

    ``stop_at`` stops after that many steps as an interruption would (the checkpoint is written).

    Returns the frozen VAE (``requires_grad`` off, eval mode) with its log (``step``, ``loss`` per frame, ``seconds``).
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    vae = vae.to(dev).train()
    opt = torch.optim.AdamW(vae.parameters(), lr=cfg.vae_lr, weight_decay=0.0)
    gen = generator(cfg.seed, "vae", dev)
    step, seconds, log, acc = 0, 0.0, [], 0.0
    path = Path(checkpoint) if checkpoint is not None else None
    if path is not None and path.exists():
        ck = torch.load(path, map_location="cpu", weights_only=True)
        if ck.get("version") != VAE_CHECKPOINT_VERSION or ck.get("vae_config") != vae.config():
            raise ValueError(f"checkpoint {path} is not a VAE checkpoint for {vae.config()}")
        if ck["train_config"] != asdict(cfg) | {"checkpoint_every": ck["train_config"]["checkpoint_every"]}:
            raise ValueError(f"cannot resume {path}: settings differ (saved {ck['train_config']}, now {asdict(cfg)})")
        vae.load_state_dict(ck["vae"])
        opt.load_state_dict(ck["optimizer"])
        gen.set_state(ck["gen"])
        step, seconds, log, acc = int(ck["step"]), float(ck["seconds"]), list(ck["log"]), float(ck["acc"])

    def save() -> None:
        if path is not None:
            state = {
                "version": VAE_CHECKPOINT_VERSION,
                "vae_config": vae.config(),
                "train_config": asdict(cfg),
                "vae": {k: v.detach().cpu() for k, v in vae.state_dict().items()},
                "optimizer": opt.state_dict(),
                "gen": gen.get_state(),
                "step": step,
                "seconds": seconds,
                "log": log,
                "acc": acc,
            }
            with atomic_write(path) as fh:
                torch.save(state, fh)

    start_step = step
    wall = time.perf_counter()
    stop = cfg.vae_steps if stop_at is None else min(positive_int("stop_at", stop_at), cfg.vae_steps)
    for k in tqdm(range(step + 1, stop + 1), desc="VAE", disable=not progress, leave=False, initial=step):
        step = k
        lr = cfg.vae_lr * min(1.0, step / 100) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * step / cfg.vae_steps)))
        for group in opt.param_groups:
            group["lr"] = lr
        x = vae_batch(step, cfg.vae_batch, vae.size, radius, seed_of(cfg.seed, "vae_batches")).to(dev)
        loss = vae.loss(x, cfg.vae_beta, gen)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(vae.parameters(), 10.0)
        opt.step()
        acc += float(loss.detach())
        if step % 50 == 0 or step == cfg.vae_steps:
            seconds += time.perf_counter() - wall
            wall = time.perf_counter()
            k = step - (log[-1]["step"] if log else 0)
            log.append({"step": step, "loss": acc / k, "seconds": seconds})
            acc = 0.0
            if not math.isfinite(log[-1]["loss"]):
                raise RuntimeError(f"VAE training diverged at step {step}; try a smaller vae_lr (now {cfg.vae_lr:g})")
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0:
            seconds += time.perf_counter() - wall
            wall = time.perf_counter()
            save()
    if step > start_step or not (path is not None and path.exists()):
        seconds += time.perf_counter() - wall
        save()
    vae.eval().requires_grad_(False)
    return VAEResult(vae, log, seconds, step)


__all__ = ["VAE", "VAEConfig", "VAEResult", "latent_levels", "train_vae", "vae_batch"]
