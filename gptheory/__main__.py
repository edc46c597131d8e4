"""Command line: ``python -m gptheory train | calibrate | dit-learns | sweep NAME | impute | bouncing-ball |
assignment NAME | shipped``.

* ``train`` trains a DiT on Gaussian-process sequences and writes a checkpoint and the training log; running it
  again with the same ``--out`` resumes an interrupted run.
* ``calibrate`` runs the exact score through the DiT's sampler and prints, as JSON, every metric's error beside its
  sampling floor and their ratio (:mod:`gptheory.experiments.calibration`): the first thing to run before trusting
  a number (every ratio about 1).
* ``dit-learns`` calls :func:`gptheory.experiments.dit_learns.dit_learns` -- the saved result of exactly this
  configuration when there is one, else train (resuming from the checkpoint in ``--out``), generate and
  measure -- and writes ``figure1.png``, ``metrics.json`` and ``log.json``.
* ``sweep NAME`` runs a grid of trainings (:mod:`gptheory.sweep`) and writes ``results.csv`` and ``summary.png``;
  a second run does no work for finished points.
* ``impute`` calls :func:`gptheory.experiments.imputation.imputation_point` -- a conditional DiT (or, with
  ``--masking none``, an unconditional one imputing by replacement) measured on every imputation task against the exact
  posterior, beside the exact score through the same sampler -- and writes one ``paths-<task>.png`` per task (draws
  over the posterior band), ``horizon.png`` and ``metrics.json``.
* ``bouncing-ball`` calls :func:`gptheory.bouncing_ball.experiment.bouncing_ball` (Section 6.2) and writes
  ``video.gif``, ``frames.png``, ``figure6.png`` and ``metrics.json``; ``--out`` also holds its resumable checkpoints.
* ``assignment CHAPTER`` writes ``CHAPTER.ipynb``, an otter-grader master notebook of the chapter's exercises
  (:mod:`gptheory.book.assignment`; ``otter assign`` makes the student notebook and the autograder from it).
* ``shipped`` prints, as JSON, what the results shipped with the package took to compute, per experiment
  (:func:`gptheory.shipping.cost`): records, summed wall time, code versions, devices; per sweep, how much of its
  cpu grid has shipped and its wall time (:func:`gptheory.experiments.sweep_costs`); and this machine's fp32 matmul
  rate, to scale those times by.

Every configuration option (``--N``, ``--nu``, ``--steps``, ``--hidden`` ...) comes from the fields of the typed
configuration, by one function (:func:`gptheory.config.add_options`): :class:`gptheory.config.ExperimentConfig` for
``train``, ``dit-learns``, ``impute`` and ``sweep`` (where an option may take several values, a grid axis),
:class:`gptheory.config.VideoConfig` for ``bouncing-ball``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .config import ExperimentConfig, VideoConfig, add_options, options_from
from .profiles import PROFILES


def _runtime(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", choices=PROFILES, default=None, help="sizes (default: the active profile)")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")


def _device(p: argparse.ArgumentParser) -> None:
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")


def _refresh(p: argparse.ArgumentParser) -> None:
    p.add_argument("--refresh", action="store_true", help="recompute even when a saved result matches")


def cmd_train(a: argparse.Namespace) -> dict:
    import torch

    from .experiments.dit_learns import dit_learns_config
    from .profiles import device as default_device
    from .trial import fit, prepare

    config = dit_learns_config(a.profile, **options_from(a))
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    prepared = prepare(config, checkpointed=True)
    dev = torch.device(a.device) if a.device else default_device()
    res = fit(config, prepared, out / "checkpoint.pt", dev, progress=not a.no_progress)
    summary = {
        "settings": config.to_dict(),
        "steps": res.steps,
        "stop_reason": res.stop_reason,
        "best_step": res.best_step,
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


def cmd_calibrate(a: argparse.Namespace) -> dict:
    import dataclasses

    from .experiments.calibration import CalibrationConfig, calibrate, calibration_config

    result = calibrate(calibration_config(a.profile, **options_from(a, CalibrationConfig)))
    out = dataclasses.asdict(result) | {"worst_ratio": result.worst()}
    text = json.dumps(out, indent=1, default=str)
    print(text)
    if a.out:
        Path(a.out).mkdir(parents=True, exist_ok=True)
        (Path(a.out) / "calibration.json").write_text(text)
    return out


def cmd_dit_learns(a: argparse.Namespace) -> dict:
    import matplotlib.pyplot as plt

    from .experiments.dit_learns import dit_learns, plot_figure1

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    res = dit_learns(
        a.profile,
        refresh=a.refresh,
        checkpoint=out / "dit_learns.pt",
        device=a.device,
        progress=not a.no_progress,
        **options_from(a),
    )
    fig = plot_figure1(res)
    fig.savefig(out / "figure1.png", dpi=120)
    plt.close(fig)
    keys = ("paper_relative_error", "variance_ratio", "train_seconds", "train_sequences_per_second")
    keys += ("generate_seconds", "steps", "final_loss", "best_step", "stop_reason")
    report = {
        "experiment": "dit_learns",
        **res.errors_generated.__dict__,
        **{k: getattr(res, k) for k in keys},
        "device": res.provenance.device,
        "true_samples": res.errors_true.__dict__,
        "floor": res.floor.__dict__ if res.floor is not None else None,
        "loaded": res.loaded,
        "result": str(res.path),
        "provenance": res.provenance.__dict__,
    }
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    log = [{"step": int(k), "loss": float(v)} for k, v in zip(res.loss_steps, res.loss, strict=True)]
    (out / "log.json").write_text(json.dumps(log) + "\n")
    print(json.dumps(report, indent=2))
    return report


def cmd_sweep(a: argparse.Namespace) -> dict:
    from .experiments import sweep as find_sweep
    from .sweep import run_sweep

    sweep = find_sweep(a.sweep)
    given = {k: v if isinstance(v, list) else [v] for k, v in options_from(a).items()}
    grid_names = set(sweep.grid["cpu"]) | set(sweep.grid["smoke"]) | set(sweep.grid["gpu"])
    axes = {k: v for k, v in given.items() if k in grid_names or len(v) > 1}
    base = {k: v[0] for k, v in given.items() if k not in axes}
    res = run_sweep(
        sweep,
        a.profile,
        a.out,
        axes=axes,
        workers=a.workers,
        executor=a.executor,
        progress=not a.no_progress,
        ship=a.ship,
        **base,
    )
    report = {
        "sweep": a.sweep,
        "points": len(res.points),
        "computed_now": res.computed,
        "seconds": res.seconds,
        "results": str(Path(a.out) / "results.csv"),
    }
    print(json.dumps(report, indent=2))
    return report


def cmd_impute(a: argparse.Namespace) -> dict:
    import dataclasses

    import matplotlib.pyplot as plt

    from .experiments.imputation import NAME, imputation_point, ratio
    from .experiments.imputation_analysis import plot_horizon, plot_paths

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    res = imputation_point(
        a.profile,
        refresh=a.refresh,
        checkpoint=out / "imputation.pt",
        device=a.device,
        progress=not a.no_progress,
        **options_from(a),
    )
    figures = {f"paths-{task}.png": plot_paths(res, task) for task in res.tasks}
    figures["horizon.png"] = plot_horizon([res])
    for name, fig in figures.items():
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
    summary = {
        task: {
            m: {metric: ratio(sc, metric) for metric in ("w2", "crps", "mean_error")} | {"coverage90": sc.coverage[1]}
            for m, sc in t.methods.items()
        }
        for task, t in res.tasks.items()
    }
    report = {
        "experiment": NAME,
        "method": res.method,
        "ratios_to_floor": summary,
        "tasks": {k: dataclasses.asdict(v) for k, v in res.tasks.items()},
        **{k: getattr(res, k) for k in ("train_seconds", "steps", "stop_reason", "best_step")},
        "loaded": res.loaded,
        "result": str(res.path),
        "provenance": res.provenance.__dict__,
    }
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({"method": res.method, "ratios_to_floor": summary}, indent=1))
    return report


def cmd_bouncing_ball(a: argparse.Namespace) -> dict:
    import matplotlib.pyplot as plt
    import torch

    from .bouncing_ball.experiment import NAME, bouncing_ball
    from .bouncing_ball.figures import frame_strip, plot_figure6, save_gif
    from .profiles import device as default_device
    from .results import ship

    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    dev = torch.device(a.device) if a.device else default_device()
    overrides = options_from(a, VideoConfig)
    res = bouncing_ball(a.profile, refresh=a.refresh, workdir=out, device=dev, progress=not a.no_progress, **overrides)
    gen = res.arrays["generated"]
    save_gif(gen[0], out / "video.gif")
    videos = {"true": res.arrays["true"][0], "VAE reconstruction": res.arrays["reconstructed"][0]}
    videos.update({f"generated #{k}": gen[k] for k in range(min(3, len(gen)))})
    for name, fig in (
        ("frames.png", frame_strip(videos, count=10, radius=res.config["ball"]["radius"])),
        ("figure6.png", plot_figure6(res)),
    ):
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
    report = {
        "experiment": NAME,
        **res.numbers,
        "loaded": res.loaded,
        "result": str(res.path),
        "shipped": str(ship(res)) if a.ship else None,
        "provenance": res.provenance.__dict__,
    }
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("physics", "vae", "correlation_error_generated")}, indent=1))
    return report


def cmd_assignment(a: argparse.Namespace) -> dict:
    try:
        from .book.assignment import write_master

        report = write_master(a.chapter, a.out, a.book)
    except ModuleNotFoundError as err:  # yaml, jupytext, nbformat, pybtex: not needed by the rest of the package
        raise ValueError(f'assignment needs the course extra: pip install "gptheory[course]" ({err})') from err
    print(json.dumps(report, indent=2))
    return report


def cmd_shipped(a: argparse.Namespace) -> dict:
    import dataclasses

    import torch

    from .experiments import sweep_costs
    from .provenance import matmul_gflops
    from .shipping import cost
    from .validation import positive_int

    workers = positive_int("workers", a.workers)
    rows = cost()
    total = sum(c.wall_seconds for c in rows)
    report = {
        "experiments": [dataclasses.asdict(c) for c in rows],
        "sweeps_cpu": [dataclasses.asdict(c) for c in sweep_costs("cpu")],  # a point two sweeps share counts in both
        "records": sum(c.records for c in rows),
        "wall_seconds": total,
        "workers": workers,
        "wall_seconds_per_worker": total / workers,  # a lower bound: perfect packing, no worker idle
        "matmul_gflops_here": {"threads": torch.get_num_threads(), "fp32": round(matmul_gflops(), 1)},
    }
    print(json.dumps(report, indent=2))
    return report


def _parser() -> argparse.ArgumentParser:
    from .executors import EXECUTORS
    from .experiments import describe
    from .experiments.calibration import CalibrationConfig

    p = argparse.ArgumentParser(prog="python -m gptheory", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    pt = sub.add_parser("train", help="train a DiT on Gaussian-process sequences (resumable)")
    _runtime(pt)
    _device(pt)
    add_options(pt)
    pc = sub.add_parser(
        "calibrate",
        help="the exact score through the DiT's sampler: each metric against its sampling floor (prints JSON)",
    )
    pc.add_argument("--profile", choices=PROFILES, default=None, help="sizes (default: the active profile)")
    pc.add_argument("--out", default=None, help="also write calibration.json here")
    pc.add_argument("--threads", type=int, default=None, help="CPU threads for torch (default: torch's choice)")
    add_options(pc, CalibrationConfig)
    pr = sub.add_parser(
        "dit-learns", help="Figure 1: a DiT learns a Gaussian process (writes figure1.png, metrics.json)"
    )
    _refresh(pr)
    _runtime(pr)
    _device(pr)
    add_options(pr)
    ps = sub.add_parser(
        "sweep",
        help="run a grid of trainings (resumable); writes results.csv and summary.png",
        description="Run every point of a sweep's grid. Sweeps and their grids per profile:\n\n" + describe(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ps.add_argument("sweep", help="which sweep (listed above)")
    _runtime(ps)
    ps.add_argument("--workers", type=int, default=1, help="processes (local) or parallel array tasks (slurm)")
    ps.add_argument("--executor", choices=EXECUTORS, default="local", help="where points run")
    ps.add_argument("--ship", action="store_true", help="also write the records into gptheory/shipped/")
    add_options(ps, many=tuple(ExperimentConfig.owners()), aliases={"seed": ("--seeds",)})
    pi = sub.add_parser(
        "impute",
        help="beyond the paper: imputation and forecasting against the exact posterior (writes paths-*.png, "
        "horizon.png, metrics.json)",
    )
    _refresh(pi)
    _runtime(pi)
    _device(pi)
    add_options(pi)
    pv = sub.add_parser(
        "bouncing-ball",
        help="Section 6.2: a bouncing ball learned by a latent video DiT (writes video.gif, frames.png, metrics.json)",
    )
    _refresh(pv)
    pv.add_argument("--ship", action="store_true", help="also write the result into gptheory/shipped/")
    _runtime(pv)
    _device(pv)
    add_options(pv, VideoConfig)
    pa = sub.add_parser(
        "assignment",
        help="an otter-grader master notebook of a chapter's exercises (needs gptheory[course])",
        description="Write OUT/CHAPTER.ipynb, an otter-grader master notebook: the chapter with its exercises as "
        "questions, their solutions as solution cells and their checks as tests. Then: otter assign --debug "
        "OUT/CHAPTER.ipynb OUT/dist",
    )
    pa.add_argument("chapter", help="the chapter's name, e.g. gp_sequences (a chapter with exercises)")
    pa.add_argument("--out", required=True, help="output folder")
    pa.add_argument("--book", default=None, help="the book's checkout (default: the one this package runs from)")
    pw = sub.add_parser(
        "shipped",
        help="what the shipped results took to compute, per experiment (prints JSON)",
        description="Per experiment, the shipped records' count, summed wall time (one process each, on the "
        "devices named), code versions and commits: the price of regenerating them. --workers divides the total "
        "(a lower bound on the wall time with that many parallel workers); the fp32 matmul rate of this machine "
        "is measured to scale the times by.",
    )
    pw.add_argument("--workers", type=int, default=1, help="parallel workers to divide the total by (default 1)")
    pw.add_argument("--threads", type=int, default=None, help="CPU threads for the matmul rate (default: torch's)")
    return p


def main(argv: list[str] | None = None) -> dict:
    p = _parser()
    a = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        if getattr(a, "threads", None) is not None:
            import torch

            from .validation import positive_int

            torch.set_num_threads(positive_int("threads", a.threads))
        commands = {
            "train": cmd_train,
            "calibrate": cmd_calibrate,
            "dit-learns": cmd_dit_learns,
            "sweep": cmd_sweep,
            "impute": cmd_impute,
            "bouncing-ball": cmd_bouncing_ball,
            "assignment": cmd_assignment,
            "shipped": cmd_shipped,
        }
        return commands[a.command](a)
    except ValueError as err:  # bad input: one clear line, no traceback
        p.exit(2, f"error: {err}\n")
    except KeyboardInterrupt as err:
        p.exit(130, f"\n{err}\n" if str(err) else "\ninterrupted\n")


if __name__ == "__main__":
    main()
