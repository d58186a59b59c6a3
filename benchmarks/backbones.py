"""Backbone comparison with equal wall-clock budgets, using denoiselab's own sweep + evaluate.

    python benchmarks/backbones.py [--minutes 3] [--data data/demo] [--nets unet,resnet,lstm,crn]

1. `denoiselab-train -m model/net=<nets> experiment=demo trainer.max_time=<budget>` (one job per backbone),
2. `denoiselab-evaluate` of every job's best checkpoint + the classic baselines on the corpus' test pairs,
3. writes benchmarks/results/backbones_<corpus>.md with quality, parameters, steps and RTF (1 thread).
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--data", default=str(ROOT / "data" / "demo"))
    p.add_argument("--nets", default="unet,resnet,lstm,crn")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    data = Path(args.data).resolve()
    from denoiselab.training.data.demo_corpus import generate

    generate(data, "demo")
    out = Path(args.out or ROOT / "outputs" / "bench" / f"backbones_{time.strftime('%m%d-%H%M')}")
    env = {**os.environ, "WANDB_MODE": "offline", "DENOISELAB_DEMO_DATA": str(data)}
    m, s = int(args.minutes), int(round((args.minutes - int(args.minutes)) * 60))
    sweep = [sys.executable, "-m", "denoiselab.cli.train", "-m", f"model/net={args.nets}", "experiment=demo",
             f"trainer.max_time=00:00:{m:02d}:{s:02d}", f"hydra.sweep.dir={out / 'sweep'}", "callbacks.quality=null"]
    subprocess.run(sweep, check=True, env=env, cwd=ROOT)
    jobs = sorted(p for p in (out / "sweep").iterdir() if (p / "checkpoints" / "last.ckpt").exists())
    names = [j.name.split("_", 1)[1] for j in jobs]
    ckpts = [str(j / "checkpoints" / "last.ckpt") for j in jobs]
    evaluate = [sys.executable, "-m", "denoiselab.cli.evaluate", f"ckpt=[{','.join(ckpts)}]",
                f"names=[{','.join(names)}]",
                f"data.noisy={data / 'test' / 'noisy'}", f"data.clean={data / 'test' / 'clean_ref'}",
                "metrics=[pesq_wb,estoi,si_sdr,dnsmos_ovrl]", f"hydra.run.dir={out / 'eval'}", "examples=1"]
    subprocess.run(evaluate, check=True, env=env, cwd=ROOT)
    import torch

    from denoiselab.core.enhancer import Enhancer
    from denoiselab.core.model_files import load_denoiser

    torch.set_num_threads(1)
    import numpy as np

    x = (np.random.default_rng(0).standard_normal(30 * 16000) * 0.1).astype(np.float32)
    extra = {}
    for name, ck in zip(names, ckpts):
        den = load_denoiser(ck)
        enh = Enhancer(den)
        enh.enhance(x[:16000], 16000)
        t0 = time.perf_counter()
        enh.enhance(x, 16000)
        extra[name] = {"params": den.num_parameters(), "rtf": (time.perf_counter() - t0) / 30,
                       "steps": int(torch.load(ck, weights_only=True)["global_step"])}
    rows = list(csv.DictReader(open(out / "eval" / "summary.csv")))
    lines = [f"# Backbones on the demo corpus: {args.minutes:g} min of CPU training each", "",
             f"Same recipe for every backbone (`conf/experiment/demo.yaml`: 2 s clips, batch 16, SNR −5…15 dB, STFT "
             f"512/256, AdamW 2e-3, reference loss), default backbone sizes, `trainer.max_time` = {args.minutes:g} min "
             f"each on this 2-core CPU, scored on the demo test pairs (synthetic speech, 9 noise types, "
             "0/5/10 dB).", "",
             "```", " ".join(sweep[1:]), " ".join(evaluate[1:]), "```", "",
             "| system | params | train steps | PESQ-WB | ESTOI | SI-SDR (dB) | DNSMOS OVRL | RTF (1 thread) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        e = extra.get(r["system"], {})
        lines.append(f"| {r['system']} | {e.get('params', '–') if not e else format(e['params'], ',')} | "
                     f"{e.get('steps', '–')} | {r['pesq_wb']} | {r['estoi']} | {r['si_sdr']} | {r['dnsmos_ovrl']} | "
                     f"{format(e['rtf'], '.4f') if e else '–'} |")
    dest = ROOT / "benchmarks" / "results" / f"backbones_{data.name}.md"
    dest.write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
