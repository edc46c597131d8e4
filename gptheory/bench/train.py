"""Training throughput of :class:`gptheory.DiT` against ``diffusers.DiTTransformer2DModel`` (prints JSON).

``python -m gptheory.bench train [--hidden 128 --depth 4 --heads 4 --N 64 --d 8 --batch 64 ...]``

Both models get the same width, depth and heads (the peer's ``N`` tokens laid out as a
``sqrt(N) x sqrt(N)`` grid with ``patch_size=1`` and ``in_channels=d``), the same data, the same
training step (noise-prediction MSE, backward, gradient clipping, fused AdamW where available) and
the same number of steps per round. Rounds alternate (ours, peer, peer, ours, ...) so that load
from other processes hits both alike; the JSON reports each round and the median. The same is
repeated under bf16 autocast. Finally one of our steps is broken down by timing each part on its
own (attention sub-layers, feed-forward sub-layers, adaLN conditioning, embeddings and output,
optimizer), and the top operators of both models come from ``torch.profiler``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from ..dit import DiT
from ..provenance import device_name
from ..recipe import make_optimizer
from ..schedules import DDPMSchedule


def _peer(N: int, d: int, hidden: int, depth: int, heads: int) -> torch.nn.Module:
    from diffusers import DiTTransformer2DModel

    side = math.isqrt(N)
    if side * side != N:
        raise ValueError(f"N must be a perfect square for the peer's 2D token grid, got N={N}")
    return DiTTransformer2DModel(
        num_attention_heads=heads,
        attention_head_dim=hidden // heads,
        in_channels=d,
        num_layers=depth,
        sample_size=side,
        patch_size=1,
        norm_num_groups=1,
    )


class _Runner:
    """One model, its optimizer and a fixed stream of batches; ``step()`` is one training step."""

    def __init__(self, name: str, model: torch.nn.Module, B: int, N: int, d: int, amp: torch.dtype | None) -> None:
        self.name, self.model, self.amp = name, model.train(), amp
        self.opt = make_optimizer(model, _Cfg())
        g = torch.Generator().manual_seed(0)
        sched = DDPMSchedule()
        x0 = torch.randn(B, N, d, generator=g)
        self.t = torch.rand(B, generator=g) * 0.999 + 1e-3
        self.eps = torch.randn(B, N, d, generator=g)
        a, s = sched.alpha(self.t)[:, None, None], sched.sigma(self.t)[:, None, None]
        self.xt = a * x0 + s * self.eps
        side = math.isqrt(N)
        if name == "peer":  # (B, N, d) -> (B, d, side, side); timesteps on DiT's 0..999 grid
            self.xt = self.xt.transpose(1, 2).reshape(B, d, side, side).contiguous()
            self.eps = self.eps.transpose(1, 2).reshape(B, d, side, side).contiguous()
            self.steps = (self.t * 1000).long().clamp(max=999)
            self.labels = torch.zeros(B, dtype=torch.long)

    def forward(self) -> torch.Tensor:
        if self.name == "peer":
            return self.model(self.xt, timestep=self.steps, class_labels=self.labels).sample
        return self.model(self.xt, self.t, check=False)

    def step(self) -> None:
        with torch.autocast("cpu", dtype=self.amp, enabled=self.amp is not None):
            pred = self.forward()
        loss = F.mse_loss(pred.float(), self.eps)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()


class _Cfg:
    lr, weight_decay = 1e-4, 0.0


def _round(run: _Runner, steps: int, B: int) -> tuple[float, float]:
    """Sequences per wall-clock second and per CPU second of this process, over ``steps`` steps."""
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        run.step()
    return steps * B / (time.perf_counter() - t0), steps * B / (time.process_time() - c0)


def _alternate(runs: list[_Runner], rounds: int, steps: int, warmup: int, B: int) -> dict:
    for r in runs:
        for _ in range(warmup):
            r.step()
    speeds: dict[str, list[float]] = {r.name: [] for r in runs}
    cpu: dict[str, list[float]] = {r.name: [] for r in runs}
    for k in range(rounds):
        for r in runs if k % 2 == 0 else runs[::-1]:
            wall, per_cpu = _round(r, steps, B)
            speeds[r.name].append(round(wall, 1))
            cpu[r.name].append(round(per_cpu, 1))
    out: dict = {
        name: {
            "median_seq_per_s": statistics.median(v),
            "best_seq_per_s": max(v),
            "median_seq_per_cpu_s": statistics.median(cpu[name]),
            "rounds_seq_per_s": v,
        }
        for name, v in speeds.items()
    }
    ratios = [a / b for a, b in zip(speeds["ours"], speeds["peer"], strict=True)]
    out["speedup_median_of_round_ratios"] = statistics.median(ratios)
    out["speedup_of_medians"] = out["ours"]["median_seq_per_s"] / out["peer"]["median_seq_per_s"]
    # CPU seconds of this process: robust to other processes on a shared machine (exact with --threads 1)
    out["speedup_per_cpu_second"] = out["ours"]["median_seq_per_cpu_s"] / out["peer"]["median_seq_per_cpu_s"]
    return out


def _time(fn: Callable[[], None], reps: int) -> float:
    """Median seconds of ``fn`` over ``reps`` calls, after one warm-up call."""
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts)


def breakdown(run: _Runner, reps: int = 5) -> dict:
    """Seconds per training step spent in each part of :class:`DiT`, each timed on its own (fwd + bwd)."""
    model: DiT = run.model
    B, N = run.xt.shape[:2]
    H = model.hidden
    amp = run.amp
    g = torch.Generator().manual_seed(1)
    h = torch.randn(B, N, H, generator=g, requires_grad=True)
    mods = (0.1 * torch.randn(B, 6, 1, H, generator=g)).requires_grad_(True)

    def fwd_bwd(f: Callable[[], torch.Tensor]) -> Callable[[], None]:
        def go() -> None:
            with torch.autocast("cpu", dtype=amp, enabled=amp is not None):
                out = f()
            out.float().square().mean().backward()

        return go

    blk = model.blocks[0]

    def attn() -> torch.Tensor:
        shift, scale, gate = mods[:, 0], mods[:, 1], mods[:, 2]
        a, _ = blk.attention(torch.addcmul(shift, blk.norm1(h), 1 + scale), explicit=False)
        return torch.addcmul(h, gate, a)

    def mlp() -> torch.Tensor:
        shift, scale, gate = mods[:, 3], mods[:, 4], mods[:, 5]
        m = blk.fc2(F.gelu(blk.fc1(torch.addcmul(shift, blk.norm2(h), 1 + scale)), approximate=blk.approximate))
        return torch.addcmul(h, gate, m)

    def adaln() -> torch.Tensor:
        return model.adaLN(F.silu(model.t_embed(run.t)))

    x = run.xt.clone().requires_grad_(True)

    def embed_out() -> torch.Tensor:
        e = model.x_embed(x)
        if model.tokens == "concat":
            e = torch.cat([e, model.pos.expand(B, -1, -1)], dim=-1)
        return model.out(model.norm_out(e))

    total = _time(run.step, reps)
    parts = {
        "attention (norm, modulate, qkv, SDPA, proj, gate) x depth": model.depth * _time(fwd_bwd(attn), reps),
        "feed-forward (norm, modulate, fc1, GELU, fc2, gate) x depth": model.depth * _time(fwd_bwd(mlp), reps),
        "adaLN conditioning (time embedding, fused modulation linear)": _time(fwd_bwd(adaln), reps),
        "token embedding and output layer": _time(fwd_bwd(embed_out), reps),
        "optimizer (clip_grad_norm + AdamW step + zero_grad)": _time(_opt_only(run), reps),
    }
    out = {k: round(v * 1e3, 2) for k, v in parts.items()}
    out["sum of parts"] = round(sum(parts.values()) * 1e3, 2)
    out["measured full step"] = round(total * 1e3, 2)
    return out


def _opt_only(run: _Runner) -> Callable[[], None]:
    def go() -> None:
        for p in run.model.parameters():
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), 1.0)
        run.opt.step()
        run.opt.zero_grad(set_to_none=False)

    return go


GEMMS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def top_ops(run: _Runner, steps: int = 3, k: int = 8) -> dict:
    """Milliseconds per step of the ``k`` operators with the most self CPU time (``torch.profiler``), and
    the share of all self CPU time spent in matrix products (``gemm_share``; the profiler inflates every
    operator's time, so the share, not its milliseconds, is what carries over to an unprofiled step)."""
    from torch.profiler import ProfilerActivity, profile

    run.step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            run.step()
    events = prof.key_averages()
    rows = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:k]
    out: dict = {e.key: round(e.self_cpu_time_total / 1e3 / steps, 2) for e in rows}
    total = sum(e.self_cpu_time_total for e in events)
    out["gemm_share"] = round(sum(e.self_cpu_time_total for e in events if e.key in GEMMS) / max(total, 1), 3)
    return out


def gemm_bound(fp32: dict, ops: dict, batch: int) -> dict:
    """Split each model's step into matrix products and the rest, and bound the achievable speed-up.

    Milliseconds per step come from the median throughput of the alternating rounds; the matrix-product
    share from :func:`top_ops`. Both models do the same products (same width, depth, heads, tokens), so the
    speed-up cannot exceed ``peer step / our product time`` even if everything else cost nothing.
    """
    out: dict = {}
    for name in ("ours", "peer"):
        step_ms = 1e3 * batch / fp32[name]["median_seq_per_s"]
        gemm = ops[name]["gemm_share"] * step_ms
        out[name] = {"step_ms": round(step_ms, 1), "gemm_ms": round(gemm, 1), "other_ms": round(step_ms - gemm, 1)}
    out["other_time_peer_over_ours"] = round(out["peer"]["other_ms"] / out["ours"]["other_ms"], 2)
    out["speedup_ceiling_if_ours_had_no_other_time"] = round(out["peer"]["step_ms"] / out["ours"]["gemm_ms"], 2)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(prog="python -m gptheory.bench train", description=__doc__.split("\n\n")[0])
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--depth", type=int, default=4)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--N", type=int, default=64)
    p.add_argument("--d", type=int, default=8)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--tokens", choices=("concat", "add"), default="concat")
    p.add_argument("--rounds", type=int, default=6, help="alternating rounds per precision")
    p.add_argument("--steps", type=int, default=5, help="training steps per round")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--no-bf16", action="store_true", help="skip the bf16-autocast comparison")
    p.add_argument("--no-breakdown", action="store_true", help="skip the per-part breakdown and profiler tables")
    p.add_argument("--out", default=None, help="also write the JSON to this file")
    a = p.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)

    def runners(amp: torch.dtype | None) -> list[_Runner]:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            ours = DiT(a.N, a.d, hidden=a.hidden, depth=a.depth, heads=a.heads, tokens=a.tokens)
            peer = _peer(a.N, a.d, a.hidden, a.depth, a.heads)
        return [_Runner("ours", ours, a.batch, a.N, a.d, amp), _Runner("peer", peer, a.batch, a.N, a.d, amp)]

    result: dict = {
        "benchmark": "train",
        "config": vars(a),
        "device": device_name("cpu"),
        "torch": torch.__version__,
    }
    try:
        import diffusers

        result["diffusers"] = diffusers.__version__
    except ImportError:  # pragma: no cover - the bench extra installs it
        raise SystemExit("the train benchmark needs diffusers: pip install 'gptheory[bench]'") from None
    fp32 = runners(None)
    result["params"] = {r.name: sum(q.numel() for q in r.model.parameters()) for r in fp32}
    result["fp32"] = _alternate(fp32, a.rounds, a.steps, a.warmup, a.batch)
    if not a.no_bf16:
        result["bf16_autocast"] = _alternate(runners(torch.bfloat16), a.rounds, a.steps, a.warmup, a.batch)
        result["bf16_over_fp32_ours"] = (
            result["bf16_autocast"]["ours"]["median_seq_per_s"] / result["fp32"]["ours"]["median_seq_per_s"]
        )
    if not a.no_breakdown:
        result["breakdown_ms_per_step_ours_fp32"] = breakdown(fp32[0])
        result["top_ops_ms_per_step_fp32"] = ops = {r.name: top_ops(r) for r in fp32}
        result["gemm_bound_fp32"] = gemm_bound(result["fp32"], ops, a.batch)
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    return result


if __name__ == "__main__":
    main()
