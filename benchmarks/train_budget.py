"""Train a backbone for a fixed wall-clock budget on ../shared/data/train, then score it on the fixed
dev mixtures (../shared/data/dev, SNR -5..15 dB, seed 2024) next to the classic baselines.

    python benchmarks/train_budget.py --net unet --minutes 20 [--overrides key=value ...]

Writes benchmarks/results/train_<net>_<minutes>min.md with the exact commands and the figures.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"

#: Training recipe shared by every budgeted run (so backbones are compared on equal terms).
RECIPE = ["experiment=unet_budget"]
EVAL_SNRS = "[-5,0,5,10,15]"


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--net", default="unet")
    p.add_argument("--minutes", type=float, default=20)
    p.add_argument("--out", default=None)
    p.add_argument("--overrides", nargs="*", default=[])
    p.add_argument("--eval-metrics", default="[pesq_wb,estoi,si_sdr,dnsmos_ovrl]")
    p.add_argument("--max-files", type=int, default=None, help="dev clean files to use (default: all 55)")
    args = p.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs {DATA} (real audio)")
    out = Path(args.out or ROOT / "outputs" / "bench" / f"{args.net}_{args.minutes:g}min_{time.strftime('%m%d-%H%M')}")
    minutes = int(args.minutes)
    seconds = int(round((args.minutes - minutes) * 60))
    train_cmd = [sys.executable, "-m", "denoiselab.cli.train", f"model/net={args.net}", f"shared_data={DATA}",
                 *RECIPE, f"trainer.max_time=00:00:{minutes:02d}:{seconds:02d}", f"hydra.run.dir={out / 'train'}",
                 *args.overrides]
    env = {**os.environ, "WANDB_MODE": "offline"}
    t0 = time.time()
    subprocess.run(train_cmd, check=True, env=env, cwd=ROOT)
    train_s = time.time() - t0
    ckpt = out / "train" / "checkpoints" / "last.ckpt"
    eval_cmd = [sys.executable, "-m", "denoiselab.cli.evaluate", f"ckpt=[{ckpt}]", f"names=[{args.net}]",
                f"data.clean={DATA / 'dev' / 'clean'}", f"data.noise={DATA / 'dev' / 'noise'}",
                f"data.snrs={EVAL_SNRS}", "data.seed=2024", f"metrics={args.eval_metrics}",
                f"hydra.run.dir={out / 'eval'}", "examples=2"]
    if args.max_files:
        eval_cmd.append(f"data.max_files={args.max_files}")
    subprocess.run(eval_cmd, check=True, env=env, cwd=ROOT)
    rows = list(csv.DictReader(open(out / "eval" / "summary.csv")))
    steps = _steps(ckpt)
    lines = [f"# {args.net}: {args.minutes:g} minutes of CPU training, scored on the dev mixtures", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores (this workplace's 2-core CPU box), no GPU. "
             f"Training wall time {train_s / 60:.1f} min (incl. start-up), {steps} optimizer steps.", "",
             "Train:", "", "```", " ".join(str(c) for c in train_cmd[1:]), "```", "",
             "Score (every dev clean file at each SNR, noise chosen by a fixed seed):", "", "```",
             " ".join(str(c) for c in eval_cmd[1:]), "```", "",
             "| system | PESQ-WB | ESTOI | SI-SDR (dB) | DNSMOS OVRL | Δ PESQ | Δ ESTOI | Δ SI-SDR (dB) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['system']} | {r['pesq_wb']} | {r['estoi']} | {r['si_sdr']} | {r.get('dnsmos_ovrl', '')} | "
                     f"{r.get('d_pesq_wb', '')} | {r.get('d_estoi', '')} | {r.get('d_si_sdr', '')} |")
    lines += ["", f"Per-file scores, plots and examples: `{out / 'eval'}` (not committed)."]
    dest = ROOT / "benchmarks" / "results" / f"train_{args.net}_{args.minutes:g}min.md"
    dest.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _steps(ckpt: Path) -> int:
    import torch

    return int(torch.load(ckpt, weights_only=True, map_location="cpu")["global_step"])


if __name__ == "__main__":
    main()
