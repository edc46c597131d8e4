"""The per-frame VAE: shapes, the latent sizes it can produce, training that lowers the loss and resumes exactly."""

from __future__ import annotations

import pytest
import torch

from gptheory.bouncing_ball.vae import VAE, VAEConfig, latent_levels, train_vae, vae_batch


@pytest.mark.parametrize("size,latent_size,channels", [(32, 4, 1), (16, 2, 3), (32, 1, 8), (64, 8, 2)])
def test_shapes(size, latent_size, channels):
    torch.manual_seed(0)
    vae = VAE(size, latent_size, channels, width=4)
    x = vae_batch(0, 5, size, size / 8, seed=0)
    mu, logvar = vae.encode(x)
    assert mu.shape == logvar.shape == (5, channels, latent_size, latent_size)
    y = vae.decode(mu)
    assert y.shape == (5, size, size) and y.min() >= 0 and y.max() <= 1
    assert vae.latent_dim == channels * latent_size**2
    videos = torch.rand(3, 4, size, size)
    z = vae.encode_videos(videos)
    assert z.shape == (3, 4, vae.latent_dim)
    # flattening and unflattening the latent is the identity: decode_videos(encode_videos) == decode(encode)
    direct = vae.decode(vae.encode(videos.reshape(12, size, size))[0]).reshape(3, 4, size, size)
    assert torch.allclose(vae.decode_videos(z), direct, atol=1e-6)
    assert torch.isfinite(vae.loss(x, 1.0))


@pytest.mark.parametrize("latent_size", [3, 5, 32, 64, 0])
def test_a_latent_size_the_vae_cannot_produce_is_an_error(latent_size):
    with pytest.raises(ValueError, match="latent_size"):
        VAE(32, latent_size)


def test_latent_levels():
    assert latent_levels(32, 16) == 1 and latent_levels(32, 1) == 5 and latent_levels(48, 3) == 4
    with pytest.raises(ValueError, match="16, 8, 4, 2, 1"):
        latent_levels(32, 6)


def test_wrong_inputs_are_named():
    vae = VAE(16, 4, 1, width=4)
    with pytest.raises(ValueError, match="16x16"):
        vae.encode(torch.rand(2, 8, 8))
    with pytest.raises(ValueError, match="16 numbers per frame"):
        vae.decode_videos(torch.zeros(1, 2, 5))
    with pytest.raises(ValueError, match="beta"):
        VAEConfig(vae_beta=-1.0)


def test_training_lowers_the_loss_and_resumes_exactly(tmp_path):
    cfg = VAEConfig(vae_steps=100, vae_batch=16, vae_lr=3e-3, checkpoint_every=50)
    torch.manual_seed(1)
    fresh = VAE(16, 4, 1, width=4)
    with torch.no_grad():  # an untrained decoder outputs about 1/2 everywhere: ~ 256 log 2 nats per frame
        initial = float(fresh.loss(vae_batch(1, 256, 16, 2.0, seed=0), cfg.vae_beta))
    a = train_vae(fresh, 2.0, cfg, progress=False)
    assert a.log[-1]["loss"] < a.log[0]["loss"] < initial and a.log[-1]["loss"] < 0.8 * initial
    assert not any(p.requires_grad for p in a.vae.parameters())
    ck = tmp_path / "vae.pt"
    torch.manual_seed(1)  # the same initial weights as run a
    b = train_vae(VAE(16, 4, 1, width=4), 2.0, cfg, checkpoint=ck, progress=False, stop_at=50)
    assert b.steps == 50
    torch.manual_seed(99)  # the resumed run reads everything from the checkpoint
    c = train_vae(VAE(16, 4, 1, width=4), 2.0, cfg, checkpoint=ck, progress=False)
    assert c.steps == 100
    for pa, pc in zip(a.vae.parameters(), c.vae.parameters(), strict=True):
        assert torch.allclose(pa, pc, atol=1e-6)
    with pytest.raises(ValueError, match="settings differ"):
        train_vae(VAE(16, 4, 1, width=4), 2.0, VAEConfig(vae_steps=100, vae_batch=8), checkpoint=ck, progress=False)
