"""How many optimizer steps a time-budgeted fine-tune gets with and without data-loader worker processes.

    python benchmarks/loader_workers.py [--workers 0,2] [--reps 3] [--seconds 120] [--type esc10_chainsaw]
                                        [--generic-noise DIR] [--out outputs/bench/loader_workers]
                                        [--results loader_workers.md]

A fine-tune is bounded by its step count, and on a small CPU every core the loader's worker processes take
is a core the training step does not get. This runs `experiment=finetune` exactly as shipped (the type's first
5 dev recordings as the lab's noise, speech from train/clean, validation as configured) with `time_budget`
seconds and each `data.num_workers` in turn, alternating the order between repetitions so a drift of the
machine's speed hits every setting, and reports the optimizer steps each run reached (from its last.ckpt)
and the process's wall time.
Writes benchmarks/results/loader_workers.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from targeted import finetune  # noqa: E402

from _devsets import DATA  # noqa: E402
from _results import publish  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    from denoiselab.core.checkpoints import load_checkpoint

    p = argparse.ArgumentParser()
    p.add_argument("--workers", default="0,2", help="comma-separated data.num_workers values")
    p.add_argument("--reps", type=int, default=3)
    p.add_argument("--seconds", type=float, default=120.0, help="time_budget of each run")
    p.add_argument("--type", default="esc10_chainsaw", help="the dev noise type fine-tuned on")
    p.add_argument("--generic-noise", default=str(DATA / "train" / "noise"))
    p.add_argument("--out", default="outputs/bench/loader_workers")
    p.add_argument("--results", default="loader_workers.md")
    args = p.parse_args()
    workers = [int(w) for w in args.workers.split(",")]
    out = (ROOT / args.out).resolve()
    if out.exists():
        raise SystemExit(f"{out} exists: pass another --out (runs are never overwritten)")
    noise = out / "finetune_noise"
    noise.mkdir(parents=True)
    files = sorted((DATA / "dev" / "noise").glob(f"{args.type}_*.flac"))
    if len(files) < 5:
        raise SystemExit(f"fewer than 5 dev recordings of {args.type} in {DATA / 'dev' / 'noise'}")
    for f in files[:5]:
        (noise / f.name).symlink_to(f)

    commands: list[list[str]] = []
    runs: dict[int, list[tuple[int, float]]] = {w: [] for w in workers}
    for rep in range(args.reps):
        for w in (workers if rep % 2 == 0 else workers[::-1]):
            run_dir = out / f"nw{w}_rep{rep}"
            scored = out / f"nw{w}_rep{rep}.ckpt"
            start = time.perf_counter()
            finetune("default", noise, args.seconds, run_dir, [f"finetune.generic_noise={args.generic_noise}",
                     f"data.num_workers={w}", "logger=csv"], "last", scored, commands)
            wall = time.perf_counter() - start
            steps = int(load_checkpoint(scored)["global_step"])
            runs[w].append((steps, wall))
            print(f"data.num_workers={w} rep {rep}: {steps} steps, {wall:.0f} s wall", flush=True)

    base = statistics.mean(s for s, _ in runs[workers[-1]])
    lines = ["# Fine-tuning steps in a time budget: data-loader workers or none", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads; {time.strftime('%Y-%m-%d')}. `python benchmarks/loader_workers.py "
             f"--workers {args.workers} --reps {args.reps} --seconds {args.seconds:g} --type {args.type}`: "
             f"`experiment=finetune` as shipped from the shipped model on the first 5 dev recordings of {args.type} "
             f"with general noise from {args.generic_noise}, `time_budget={args.seconds:g}` (validation included, "
             "as a user's run has it), one setting after the other, the order alternating between repetitions.", "",
             "| data.num_workers | steps per run | mean steps | vs "
             f"{workers[-1]} workers | mean wall time of the process (s) |", "|---|---|---|---|---|"]
    for w in workers:
        steps = [s for s, _ in runs[w]]
        mean = statistics.mean(steps)
        lines.append(f"| {w} | {', '.join(map(str, steps))} | {mean:.0f} | {mean / base:.2f}x | "
                     f"{statistics.mean(t for _, t in runs[w]):.0f} |")
    lines += ["", "Commands:", ""] + [f"    {' '.join(map(str, c))}" for c in commands]
    publish(args.results, lines)


if __name__ == "__main__":
    main()
