"""Targeted denoising: the shipped model fine-tuned on one noise type for 2, 5 and 10 CPU-minutes, against
the generic model and the peers on recordings of that type it never saw, plus the forgetting check.

    python benchmarks/targeted.py [--types esc10_chainsaw,esc10_clock_tick,esc10_helicopter] [--minutes 2,5,10]

For each type T (a noise category of ../shared/data/dev/noise, 8 recordings): its first 5 recordings
are the lab's "room noise" for fine-tuning, the last 3 the test noise. Fine-tuning:
`denoiselab-train experiment=finetune init_from=default data.clean=<train speech> data.noise=<5 files>`
with time_budget per stage (2, then 3 more, then 5 more minutes: auto_resume continues one run, and each
stage's monitored-best checkpoint is scored). Test: every dev utterance once with the 3 held-out
recordings, SNR cycling -5..15 dB (seed 2024), scored by denoiselab-evaluate with DeepFilterNet3 and
GTCRN from the peers harness (its own venv, ../.venv-peers) through +processed. Forgetting: the 5-minute
model of each type on the general dev mixtures (all dev noise) next to the generic model.
Writes benchmarks/results/targeted.md.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import publish  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PEERS_TOOL = ROOT.parent / "shared" / "tools" / "peers" / "run_peers.py"
PEERS = ("gtcrn", "deepfilternet3")
METRICS = ("pesq_wb", "estoi", "si_sdr")


def run(cmd: list[str], log: list[list[str]], **kw) -> None:
    log.append(cmd)
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "WANDB_MODE": "offline"}, **kw)


def summary(path: Path) -> dict[str, dict]:
    return {r["system"]: r for r in csv.DictReader(open(path))}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--types", default="esc10_chainsaw,esc10_clock_tick,esc10_helicopter")
    p.add_argument("--minutes", default="2,5,10", help="cumulative fine-tuning budgets (CPU minutes)")
    p.add_argument("--peers-venv", default=str(ROOT.parent / ".venv-peers"))
    p.add_argument("--out", default=str(ROOT / "outputs" / "bench" / "targeted"))
    args = p.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs {DATA} (real audio)")
    out, py = Path(args.out), sys.executable
    budgets = [float(m) for m in args.minutes.split(",")]
    peer_py = Path(args.peers_venv) / "bin" / "python"
    commands: list[list[str]] = []
    results: dict[str, dict] = {}
    forgetting: dict[str, dict] = {}
    for noise_type in args.types.split(","):
        files = sorted((DATA / "dev" / "noise").glob(f"{noise_type}_*.flac"))
        if len(files) < 4:
            sys.exit(f"{noise_type}: only {len(files)} dev recordings")
        tdir = out / noise_type
        for part, chosen in (("finetune_noise", files[:5]), ("test_noise", files[5:])):
            (tdir / part).mkdir(parents=True, exist_ok=True)
            for f in chosen:
                link = tdir / part / f.name
                if not link.exists():
                    link.symlink_to(f)
        stages: dict[str, Path] = {}
        done = 0.0
        for minutes in budgets:
            run([py, "-m", "denoiselab.cli.train", "experiment=finetune", "init_from=default",
                 f"data.clean={DATA / 'train' / 'clean'}", f"data.noise={tdir / 'finetune_noise'}",
                 f"time_budget={(minutes - done) * 60:.0f}", "trainer.max_time=null", "auto_resume=true",
                 f"hydra.run.dir={tdir / 'finetune'}"], commands)
            done = minutes
            best = tdir / f"finetuned_{minutes:g}min.ckpt"
            from denoiselab.core.checkpoints import best_checkpoint

            shutil.copy2(best_checkpoint(tdir / "finetune") or tdir / "finetune" / "checkpoints" / "last.ckpt", best)
            stages[f"fine-tuned {minutes:g} min"] = best
        ev = tdir / "eval"
        ckpts = {"generic default": "default", **{n: str(c) for n, c in stages.items()}}
        mixed = [f"data.clean={DATA / 'dev' / 'clean'}", f"data.noise={tdir / 'test_noise'}", "data.every_snr=false",
                 "data.seed=2024"]
        scoring = ["baselines=[noisy]", f"metrics=[{','.join(METRICS)}]", "num_workers=2", "examples=1", "plots=false"]
        evaluate = [py, "-m", "denoiselab.cli.evaluate"]
        systems = [f"ckpt=[{','.join(ckpts.values())}]", f"names=[{','.join(repr(n) for n in ckpts)}]"]
        peers = []
        if peer_py.exists():  # freeze the test mixtures, run the peers on them, score everything together
            run([*evaluate, *mixed, *scoring, "save_testset=true", f"hydra.run.dir={tdir / 'testset_run'}"],
                commands)
            testset = tdir / "testset_run" / "testset"
            run([str(peer_py), str(PEERS_TOOL), "--noisy-dir", str(testset / "noisy"), "--clean-dir",
                 str(testset / "clean"), "--out-dir", str(tdir / "peers"), "--threads", "1", "--peers",
                 ",".join(PEERS)], commands)
            peers = [n for n in PEERS if (tdir / "peers" / "enhanced" / n).is_dir()]
            mixed = [f"data.noisy={testset / 'noisy'}", f"data.clean={testset / 'clean'}"]
        processed = [f"+processed.{n}={tdir / 'peers' / 'enhanced' / n}" for n in peers]
        run([*evaluate, *systems, *mixed, *scoring, *processed, f"hydra.run.dir={ev}"], commands)
        results[noise_type] = summary(ev / "summary.csv")
    # forgetting: the 5-minute models on the general dev mixtures
    mid = f"fine-tuned {budgets[min(1, len(budgets) - 1)]:g} min"
    ckpts = {"generic default": "default",
             **{f"{t} {mid}": str(out / t / f"finetuned_{budgets[min(1, len(budgets) - 1)]:g}min.ckpt")
                for t in results}}
    run([py, "-m", "denoiselab.cli.evaluate", f"ckpt=[{','.join(ckpts.values())}]",
         f"names=[{','.join(repr(n) for n in ckpts)}]", f"data.clean={DATA / 'dev' / 'clean'}",
         f"data.noise={DATA / 'dev' / 'noise'}", "data.every_snr=false", "data.seed=2024", "baselines=[noisy]",
         f"metrics=[{','.join(METRICS)}]", "num_workers=2", "examples=1", "plots=false",
         f"hydra.run.dir={out / 'forgetting'}"], commands)
    forgetting = summary(out / "forgetting" / "summary.csv")
    lines = ["# Targeted denoising: fine-tuning the shipped model on one noise type", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, no GPU (this workplace's CPU box); "
             f"{time.strftime('%Y-%m-%d')}. Budgets are wall-clock minutes of fine-tuning on this machine "
             f"(`time_budget`), cumulative within one run. Test: the 55 dev utterances once each with the type's "
             f"3 held-out recordings, SNR cycling -5/0/5/10/15 dB. Peers: "
             f"{', '.join(PEERS) if peer_py.exists() else 'not run (no peers venv)'}.", ""]
    for noise_type, rows in results.items():
        lines += [f"## {noise_type}", "", "| system | PESQ-WB | ESTOI | SI-SDR (dB) | Δ PESQ vs generic | "
                  "Δ SI-SDR vs generic |", "|---|---|---|---|---|---|"]
        g = rows["generic default"]
        for name, r in rows.items():
            lines.append(f"| {name} | {float(r['pesq_wb']):.3f} | {float(r['estoi']):.3f} | "
                         f"{float(r['si_sdr']):.2f} | {float(r['pesq_wb']) - float(g['pesq_wb']):+.3f} | "
                         f"{float(r['si_sdr']) - float(g['si_sdr']):+.2f} |")
        lines.append("")
    lines += ["## Forgetting: general dev mixtures (all dev noise types)", "",
              "| system | PESQ-WB | ESTOI | SI-SDR (dB) | Δ PESQ vs generic |", "|---|---|---|---|---|"]
    g = forgetting["generic default"]
    for name, r in forgetting.items():
        lines.append(f"| {name} | {float(r['pesq_wb']):.3f} | {float(r['estoi']):.3f} | {float(r['si_sdr']):.2f} | "
                     f"{float(r['pesq_wb']) - float(g['pesq_wb']):+.3f} |")
    lines += ["", "Commands:", "", "```", *[" ".join(str(c) for c in cmd) for cmd in commands], "```"]
    publish("targeted.md", lines)


if __name__ == "__main__":
    main()
