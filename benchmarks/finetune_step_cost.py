"""Where a fine-tuning step of the shipped model spends its time on this CPU, and whether a cheap switch
buys more steps per minute (a 5-minute fine-tune is bounded by its step count).

    python benchmarks/finetune_step_cost.py [--batch 8] [--seconds 4] [--steps 10] [--compile]
                                            [--results finetune_step_cost.md]

Times forward + backward of the shipped model (train mode, compressed-magnitude loss) on a random batch
shaped like experiment=finetune's (8 clips of 4 s at 16 kHz), as is, in channels-last memory, without
oneDNN convolutions, on one thread, under bf16 autocast (trainer.precision=bf16-mixed, which
trainer.precision=auto picks on a CPU with AMX), and (--compile, about a minute to
compile on 2 cores) with the net compiled by torch.compile; then the operators that take most of a step
(torch.profiler).
Writes benchmarks/results/finetune_step_cost.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import publish  # noqa: E402


def step(model: torch.nn.Module, noisy: torch.Tensor, bf16: bool = False) -> None:
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):  # what trainer.precision=bf16-mixed does
        out = model.predict(noisy)
        loss = (out.enhanced_spec.abs() + 1e-8).pow(0.3).mean()
    loss.backward()
    model.zero_grad(set_to_none=True)


def seconds_per_step(model: torch.nn.Module, noisy: torch.Tensor, steps: int, bf16: bool = False) -> float:
    for _ in range(3):  # warm-up (allocator, oneDNN primitive caches)
        step(model, noisy, bf16)
    start = time.perf_counter()
    for _ in range(steps):
        step(model, noisy, bf16)
    return (time.perf_counter() - start) / steps


def main() -> None:
    from denoiselab.core.model_files import load_denoiser
    from denoiselab.training.precision import cpu_has_fast_bf16

    p = argparse.ArgumentParser()
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--results", default="finetune_step_cost.md")
    args = p.parse_args()
    torch.manual_seed(0)
    model = load_denoiser("default").train()
    noisy = 0.1 * torch.randn(args.batch, int(args.seconds * model.sample_rate))
    threads = torch.get_num_threads()

    # (row, memory format of the net, oneDNN convolutions, threads): each row sets all three
    variants = [("contiguous memory (model.channels_last=false)", torch.contiguous_format, True, threads),
                ("channels-last memory (experiment=finetune's model.channels_last=true)", torch.channels_last, True,
                 threads),
                ("oneDNN convolutions off", torch.contiguous_format, False, threads),
                (f"1 thread instead of {threads}", torch.contiguous_format, True, 1)]
    rows = []
    for name, memory_format, onednn, n_threads in variants:
        model.net.to(memory_format=memory_format)
        torch.backends.mkldnn.enabled = onednn
        torch.set_num_threads(n_threads)
        rows.append((name, seconds_per_step(model, noisy, args.steps), ""))
    torch.set_num_threads(threads)
    native = ("AMX on this CPU: trainer.precision=auto picks it" if cpu_has_fast_bf16()
              else "no AMX on this CPU: trainer.precision=auto keeps float32")
    rows.append(("bf16 autocast (trainer.precision=bf16-mixed)", seconds_per_step(model, noisy, args.steps, True),
                 native))
    if args.compile:
        start = time.perf_counter()
        model.net = torch.compile(model.net)
        step(model, noisy)
        rows.append(("net compiled (torch.compile)", seconds_per_step(model, noisy, args.steps),
                     f"first step {time.perf_counter() - start:.0f} s (compiling)"))
        model.net = model.net._orig_mod
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
        step(model, noisy)
    ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in ops)
    base = rows[0][1]
    lines = ["# One fine-tuning step of the shipped model: where the time goes", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
             f"{threads} threads; {time.strftime('%Y-%m-%d')}. `python benchmarks/finetune_step_cost.py"
             f"{' --compile' if args.compile else ''}`: forward + backward (train mode, compressed-magnitude "
             f"loss) on a random batch of {args.batch} clips of {args.seconds:g} s, mean of {args.steps} steps "
             "after 3 warm-up steps; no data loading, optimiser or validation.",
             "", "| variant | s per step | vs contiguous | note |", "|---|---|---|---|"]
    lines += [f"| {n} | {s:.3f} | {s / base:.2f}x | {note} |" for n, s, note in rows]
    lines += ["", "Operators by own time in one step (contiguous memory, float32):", "", "| operator | ms | share |",
              "|---|---|---|"]
    lines += [f"| {e.key} | {e.self_cpu_time_total / 1000:.1f} | {e.self_cpu_time_total / total:.0%} |"
              for e in ops[:8]]
    publish(args.results, lines)


if __name__ == "__main__":
    main()
