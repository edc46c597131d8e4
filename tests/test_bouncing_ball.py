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
    VideoConfig,
    from_uint8,
    run,
    settings,
)
from gptheory.bouncing_ball.stats import relative_error, temporal_correlation
from gptheory.bouncing_ball.tracking import physics
from gptheory.bouncing_ball.videos import bouncing_ball
from gptheory.results import shipped


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    torch.set_num_threads(1)
    work = tmp_path_factory.mktemp("video-smoke")
    return settings("smoke"), work, run(settings("smoke"), workdir=work, progress=False)


def test_smoke_pipeline(smoke):
    cfg, work, (num, arr) = smoke
    assert (work / "vae.pt").is_file() and (work / "dit.pt").is_file()
    n, T, s = cfg.n_eval, cfg.frames, cfg.size
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
    assert physics(from_uint8(arr["generated"]), cfg.size, cfg.radius, cfg.speed) == pytest.approx(
        phys["generated"], nan_ok=True
    )


def test_a_finished_run_reloads_from_its_checkpoints(smoke):
    cfg, work, (num, arr) = smoke
    again_num, again_arr = run(cfg, workdir=work, progress=False)
    assert np.array_equal(again_arr["generated"], arr["generated"])
    for kind, values in num["physics"].items():
        assert again_num["physics"][kind] == pytest.approx(values, nan_ok=True)


def test_command_line_writes_the_three_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GPTHEORY_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    report = cli(["video", "--profile", "smoke", "--out", str(out), "--no-progress", "--threads", "1", "--steps", "40"])
    for name in ("video.gif", "frames.png", "metrics.json"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    saved = json.loads((out / "metrics.json").read_text())
    assert saved["provenance"]["config"]["steps"] == 40 and saved["experiment"] == NAME
    assert saved["provenance"]["config"]["format"] == FORMAT
    assert set(saved["physics"]) == set(report["physics"])
    from PIL import Image

    with Image.open(out / "video.gif") as gif:
        assert gif.n_frames == settings("smoke").frames


@pytest.mark.parametrize(
    "override,name",
    [({"radius": 8.0}, "radius"), ({"frames": 1}, "frames"), ({"latent_size": 3}, "latent_size"),
     ({"speed": 20.0}, "speed"), ({"heads": 5}, "heads")],
)  # fmt: skip
def test_bad_settings_name_the_parameter(override, name):
    with pytest.raises(ValueError, match=name):
        settings("smoke", **override)


def test_bad_settings_on_the_command_line_exit_cleanly(tmp_path, capsys):
    with pytest.raises(SystemExit) as err:
        cli(["video", "--profile", "smoke", "--out", str(tmp_path), "--radius", "9"])
    assert err.value.code == 2 and "radius" in capsys.readouterr().err
    with pytest.raises(ValueError, match="unknown setting"):
        settings("smoke", colour=1)


def test_gpu_profile_runs_on_the_cpu_at_a_tiny_size(tmp_path):
    """The gpu profile's model, VAE depth and optimiser settings, shrunk in data and steps (no compile on the CPU)."""
    gpu = settings("gpu")
    tiny = settings("gpu", n_train=4, n_eval=2, frames=6, vae_steps=2, vae_batch=4, steps=2, batch_size=2,
                    sample_steps=2, compile=False)  # fmt: skip
    assert (tiny.hidden, tiny.depth, tiny.latent_size, tiny.size) == (gpu.hidden, gpu.depth, gpu.latent_size, gpu.size)
    torch.set_num_threads(1)
    num, arr = run(tiny, progress=False)
    assert arr["generated"].shape == (2, 6, gpu.size, gpu.size)
    assert num["latent_dim"] == gpu.latent_channels * gpu.latent_size**2


@pytest.mark.parametrize("res", shipped(NAME), ids=lambda r: r.provenance.profile or "result")
def test_shipped_result_re_measures(res):
    """A shipped result (no weights) is checked from its pieces: the true videos are regenerated from the seed and
    re-measured, the stored generated videos are re-tracked, and Figure 6's error is recomputed from the stored
    generated latents."""
    cfg = VideoConfig(**{k: v for k, v in res.config.items() if k != "format"})
    true = bouncing_ball(cfg.n_eval, cfg.frames, cfg.size, cfg.radius, cfg.speed, seed=cfg.seed + 1)
    assert np.allclose(true.positions[: len(res.arrays["true_positions"])], res.arrays["true_positions"])
    geometry = (cfg.size, cfg.radius, cfg.speed)
    phys = res.numbers["physics"]
    true8 = (true.frames.clamp(0, 1) * 255).round().to(torch.uint8)
    assert physics(true8.float() / 255, *geometry) == pytest.approx(phys["true"], rel=1e-6, nan_ok=True)
    assert physics(from_uint8(res.arrays["generated"]), *geometry) == pytest.approx(phys["generated"], nan_ok=True)
    C_gen = temporal_correlation(res.arrays["z_generated"])
    assert np.allclose(C_gen, res.arrays["corr_generated"], atol=1e-5)
    err = relative_error(C_gen, res.arrays["corr_data"])
    assert err == pytest.approx(res.numbers["correlation_error_generated"], rel=1e-4)
