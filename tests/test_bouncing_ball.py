"""The latent-video experiment: the smoke pipeline end to end, the command line, bad input, the gpu profile's code
path at a tiny size, and the shipped cpu result re-measured from what it stores."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gptheory.__main__ import main as cli
from gptheory.bouncing_ball.experiment import (
    FORMAT,
    NAME,
    bouncing_ball_config,
    config_of,
    from_uint8,
    run_bouncing_ball,
)
from gptheory.bouncing_ball.latents import relative_error, temporal_correlation
from gptheory.bouncing_ball.tracking import physics
from gptheory.bouncing_ball.videos import make_videos
from gptheory.results import shipped
from gptheory.streams import seed_of


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("video-smoke")
    return (
        bouncing_ball_config("smoke"),
        work,
        run_bouncing_ball(bouncing_ball_config("smoke"), workdir=work, progress=False),
    )


def test_smoke_pipeline(smoke):
    cfg, work, (num, arr) = smoke
    assert (work / "vae.pt").is_file() and (work / "dit.pt").is_file()
    n, T, s = cfg.n_eval, cfg.ball.frames, cfg.ball.size
    assert arr["generated"].shape == (n, T, s, s) and arr["generated"].dtype == np.uint8
    assert arr["z_generated"].shape == (n, T, cfg.latent_dim)
    for key in ("corr_data", "corr_true", "corr_generated"):
        C = arr[key]
        assert C.shape == (T, T) and np.allclose(np.diag(C), 1.0) and np.allclose(C, C.T)
    phys = num["physics"]
    assert set(phys) == {"exact", "true", "reconstructed", "generated", "gaussian"}
    assert phys["exact"]["hit_timing_error"] < 1e-9 and phys["exact"]["speed_spread"] < 1e-9
    assert phys["true"]["one_ball_fraction"] == 1.0 and phys["true"]["outside_fraction"] == 0.0
    for kind in ("reconstructed", "generated"):
        assert 0.0 <= phys[kind]["one_ball_fraction"] <= 1.0
    assert 0 < num["vae"]["mse"] < 0.25 and num["matmul_gflops"] > 0
    # the stored generated videos re-measure to the stored numbers
    assert physics(from_uint8(arr["generated"]), cfg.ball.size, cfg.ball.radius, cfg.ball.speed) == pytest.approx(
        phys["generated"], nan_ok=True
    )


def test_a_finished_run_reloads_from_its_checkpoints(smoke):
    cfg, work, (num, arr) = smoke
    again_num, again_arr = run_bouncing_ball(cfg, workdir=work, progress=False)
    assert np.array_equal(again_arr["generated"], arr["generated"])
    for kind, values in num["physics"].items():
        assert again_num["physics"][kind] == pytest.approx(values, nan_ok=True)


def test_command_line_writes_the_three_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTHEORY_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    report = cli(
        ["bouncing-ball", "--profile", "smoke", "--out", str(out), "--no-progress", "--threads", "1", "--steps", "40"]
    )
    for name in ("video.gif", "frames.png", "metrics.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["provenance"]["config"]["train"]["steps"] == 40 and saved["experiment"] == NAME
    assert saved["provenance"]["config"]["format"] == FORMAT
    assert set(saved["physics"]) == set(report["physics"])
    from PIL import Image

    with Image.open(out / "video.gif") as gif:
        assert gif.n_frames == bouncing_ball_config("smoke").ball.frames


@pytest.mark.parametrize(
    "override,name",
    [({"radius": 8.0}, "radius"), ({"frames": 1}, "frames"), ({"latent_size": 3}, "latent_size"),
     ({"speed": 20.0}, "speed"), ({"heads": 5}, "heads")],
)  # fmt: skip
def test_bad_settings_name_the_parameter(override, name):
    with pytest.raises(ValueError, match=name):
        bouncing_ball_config("smoke", **override)


def test_bad_settings_on_the_command_line_exit_cleanly(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        cli(["bouncing-ball", "--profile", "smoke", "--out", str(tmp_path), "--radius", "9"])
    assert err.value.code == 2 and "radius" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown setting"):
        bouncing_ball_config("smoke", colour=1)


def test_gpu_profile_runs_on_the_cpu_at_a_tiny_size(tmp_path):
    """The gpu profile's model, VAE depth and optimiser settings, shrunk in data and steps (no compile on the CPU)."""
    gpu = bouncing_ball_config("gpu")
    tiny = bouncing_ball_config("gpu", n_train=4, n_eval=2, frames=6, vae_steps=2, vae_batch=4, steps=2, batch_size=2,
                    sample_steps=2, compile=False)  # fmt: skip
    assert (tiny.model.hidden, tiny.model.depth, tiny.vae.latent_size, tiny.ball.size) == (
        gpu.model.hidden,
        gpu.model.depth,
        gpu.vae.latent_size,
        gpu.ball.size,
    )
    torch.set_num_threads(1)
    num, arr = run_bouncing_ball(tiny, progress=False)
    assert arr["generated"].shape == (2, 6, gpu.ball.size, gpu.ball.size)
    assert num["latent_dim"] == gpu.vae.latent_channels * gpu.vae.latent_size**2


@pytest.mark.parametrize("res", shipped(NAME), ids=lambda r: r.provenance.profile or "result")
def test_shipped_result_re_measures(res):
    """A shipped result (no weights) is checked from its pieces: the true videos are regenerated from the seed's
    stream ``true`` and re-measured, the stored generated videos are re-tracked, and Figure 6's error is recomputed
    from the stored generated latents."""
    cfg = config_of(res.config)
    ball = cfg.ball
    true = make_videos(cfg.n_eval, ball.frames, ball.size, ball.radius, ball.speed, seed=seed_of(cfg.seed, "true"))
    assert np.allclose(true.positions[: len(res.arrays["true_positions"])], res.arrays["true_positions"])
    geometry = (ball.size, ball.radius, ball.speed)
    phys = res.numbers["physics"]
    true8 = (true.frames.clamp(0, 1) * 255).round().to(torch.uint8)
    assert physics(true8.float() / 255, *geometry) == pytest.approx(phys["true"], rel=1e-6, nan_ok=True)
    assert physics(from_uint8(res.arrays["generated"]), *geometry) == pytest.approx(phys["generated"], nan_ok=True)
    C_gen = temporal_correlation(res.arrays["z_generated"])
    assert np.allclose(C_gen, res.arrays["corr_generated"], atol=1e-5)
    err = relative_error(C_gen, res.arrays["corr_data"])
    assert err == pytest.approx(res.numbers["correlation_error_generated"], rel=1e-4)


def test_the_cpu_configuration_finds_its_shipped_result():
    """The shipped cpu result is found by the key of today's configuration (re-keyed when VideoConfig became parts)."""
    from gptheory.bouncing_ball.experiment import result_config
    from gptheory.results import load

    res = load(NAME, result_config(bouncing_ball_config("cpu")))
    assert res is not None and res.loaded and config_of(res.config) == bouncing_ball_config("cpu")
