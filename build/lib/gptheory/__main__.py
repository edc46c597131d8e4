"""Command line: ``python -m gptheory train ...`` and ``python -m gptheory reproduce figure1 ...``.

``train`` trains a DiT on Gaussian-process sequences and writes a checkpoint and the training log;
running it again with the same ``--out`` resumes an interrupted run. ``reproduce figure1`` calls
:func:`gptheory.experiments.learn_process` -- the saved result of exactly this configuration when there
is one, else train (resuming from the checkpoint in ``--out``), generate and measure -- and writes
``figure1.png``, ``metrics.json`` and ``log.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

EXPERIMENTS = ("figure1",)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=("smoke", "cpu", "gpu"), default=None, help="sizes (default: active)")
    p.add_argument("--N", type=int, default=None, help="sequence length (frames)")
    p.add_argument("--d", type=int, default=None, help="frame dimension")
    p.add_argument("--nu", type=float, default=None, help="kernel exponent in (0, 2]")
    p.add_argument("--ell", type=float, default=None, help="kernel bandwidth (frames)")
    p.add_argument("--n-train", type=int, default=None, help="training-set size")
    p.add_argument("--seed", type=int, default=None, help="seeds the process, data, model, training, sampler")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--steps", type=int, default=None, help="optimiser steps")
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--lr", type=float, default=None)
    p.add_argument("--warmup", type=int, default=None, help="learning-rate warm-up steps")
    p.add_argument("--t-sampling", choices=("uniform", "log_snr"), default=None, help="how training times are drawn")
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--depth", type=int, default=None)
    p.add_argument("--heads", type=int, default=None)
    p.add_argument("--tokens", choices=("concat", "add"), default=None)
    p.add_argument("--prediction", choices=("eps", "v"), default=None, help="network output: noise or v")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=None)
    p.add_argument("--compile", action="store_true", default=None, help="torch.compile the model (CUDA)")
    p.add_argument("--n-gen", type=int, default=None, help="sequences to generate for the metrics")
    p.add_argument("--sample-steps", type=int, default=None, help="Heun steps of the sampler")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")


# the options that override a profile's setting of the same name (argparse turns --n-train into n_train)
OVERRIDES = ("N", "d", "nu", "ell", "n_train", "seed", "steps", "batch_size", "lr", "warmup", "t_sampling", "hidden")
OVERRIDES += ("depth", "heads", "tokens", "prediction", "precision", "compile", "n_gen", "sample_steps")


def _overrides(a: argparse.Namespace) -> dict:
    return {k: getattr(a, k) for k in OVERRIDES}


def cmd_train(a: argparse.Namespace) -> dict:
    import torch

    from .experiments import prepare, settings
    from .profiles import device as default_device
    from .train import train

    s = settings(a.profile, **_overrides(a))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    _, data, model, cfg = prepare(s)
    cfg.checkpoint_every = max(cfg.steps // 10, 1)
    dev = torch.device(a.device) if a.device else default_device()
    res = train(model, data, cfg, checkpoint=out / "checkpoint.pt", device=dev, progress=not a.no_progress)
    summary = {
        "settings": s,
        "steps": res.steps,
        "final_loss": res.log[-1]["loss"],
        "train_seconds": res.seconds,
        "train_sequences_per_second_this_call": res.sequences_per_second,
        "device": res.device,
        "checkpoint": str(out / "checkpoint.pt"),
    }
    (out / "log.json").write_text(json.dumps(res.log) + "\n")
    (out / "train.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    return summary


def cmd_reproduce(a: argparse.Namespace) -> dict:
    import matplotlib.pyplot as plt

    from .experiments import learn_process, plot_figure1

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    res = learn_process(
        a.profile,
        refresh=a.refresh,
        checkpoint=out / "figure1.pt",
        device=a.device,
        progress=not a.no_progress,
        **_overrides(a),
    )
    fig = plot_figure1(res)
    fig.savefig(out / "figure1.png", dpi=120)
    plt.close(fig)
    num = res.numbers
    keys = ("paper_relative_error", "variance_ratio", "train_seconds", "train_sequences_per_second")
    keys += ("generate_seconds", "steps", "final_loss", "device")
    report = {
        "experiment": "figure1",
        **num["errors_generated"],
        **{k: num[k] for k in keys},
        "true_samples": num["errors_true"],
        "loaded": res.loaded,
        "result": str(res.path),
        "provenance": res.provenance,
    }
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    steps, loss = res.arrays["loss_steps"], res.arrays["loss"]
    log = [{"step": int(k), "loss": float(v)} for k, v in zip(steps, loss, strict=True)]
    (out / "log.json").write_text(json.dumps(log) + "\n")
    print(json.dumps(report, indent=2))
    return report


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m gptheory", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    pt = sub.add_parser("train", help="train a DiT on Gaussian-process sequences (resumable)")
    _common(pt)
    pr = sub.add_parser("reproduce", help="reproduce an experiment of the paper")
    pr.add_argument("experiment", choices=EXPERIMENTS)
    pr.add_argument("--refresh", action="store_true", help="recompute even when a saved result matches")
    _common(pr)
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if a.threads is not None:
            import torch

            from .validation import positive_int

            torch.set_num_threads(positive_int("threads", a.threads))
        return cmd_train(a) if a.command == "train" else cmd_reproduce(a)
    except ValueError as err:  # bad input: one clear line, no traceback
        p.exit(2, f"error: {err}\n")


if __name__ == "__main__":
    main()
