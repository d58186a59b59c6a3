"""Targeted denoising on a second, different set: one long take of a steady noise, as a lab records its room.

    python benchmarks/targeted_takes.py [--noises exercise_bike,running_tap,doing_the_dishes] [--minutes 5]
                                        [--generic-noise DIR] [--recipe "OVERRIDES"] [--results NAME.md]

benchmarks/targeted.py fine-tunes on five 5-second ESC-10 clips of a type and tests on those clips; here the
noise is a Speech Commands background recording (a minute-long take of one source): fine-tuning on the
take's first 80 % (train/noise/sc_NAME.flac, 48-76 s: "record a minute of your room"), testing on its last
20 % (dev/noise/sc_NAME.flac, 12-19 s later in the same take, never fine-tuned on: the room's noise while the
device is measured). One `experiment=finetune init_from=default` run of --minutes per take (a single long
recording: the fine-tuning split holds out the end of it for validation), scored on the 55 dev utterances
mixed once each with the test part (SNR cycling -5..15 dB, seed 2024) beside the generic model and the peers
(DeepFilterNet3, GTCRN from ../.venv-peers), plus the forgetting check on the general dev mixtures.
Writes benchmarks/results/targeted_takes.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from targeted import (  # noqa: E402
    PEERS,
    ROOT,
    finetune,
    forgetting_and_commands,
    score,
    score_forgetting,
    steps_of,
    summary,
)

from _devsets import DATA  # noqa: E402
from _results import publish  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--noises", default="exercise_bike,running_tap,doing_the_dishes",
                   help="Speech Commands background noises (sc_NAME.flac in train/noise and dev/noise)")
    p.add_argument("--minutes", type=float, default=5.0, help="fine-tuning budget per take (CPU minutes)")
    p.add_argument("--peers-venv", default=str(ROOT.parent / ".venv-peers"))
    p.add_argument("--out", default=str(ROOT / "outputs" / "bench" / "targeted_takes"))
    p.add_argument("--generic-noise", default=str(DATA / "train" / "noise"),
                   help="finetune.generic_noise: the general pool that keeps the model from forgetting")
    p.add_argument("--recipe", default="", help="more overrides for every fine-tuning run (space-separated)")
    p.add_argument("--results", default="targeted_takes.md", help="file name under benchmarks/results/")
    args = p.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs {DATA} (real audio)")
    out = Path(args.out)
    recipe = [f"finetune.generic_noise={args.generic_noise}", *args.recipe.split()]
    peer_py = Path(args.peers_venv) / "bin" / "python"
    stage = f"fine-tuned {args.minutes:g} min"
    commands: list[list[str]] = []
    results: dict[str, dict] = {}
    for name in args.noises.split(","):
        take, later = DATA / "train" / "noise" / f"sc_{name}.flac", DATA / "dev" / "noise" / f"sc_{name}.flac"
        if not take.exists() or not later.exists():
            sys.exit(f"{name}: needs {take} and {later}")
        tdir = out / name
        for part, f in (("finetune_noise", take), ("test_noise", later)):
            (tdir / part).mkdir(parents=True, exist_ok=True)
            if not (tdir / part / f.name).exists():
                (tdir / part / f.name).symlink_to(f)
        ckpt = tdir / f"finetuned_{args.minutes:g}min.ckpt"
        finetune("default", tdir / "finetune_noise", args.minutes * 60, tdir / f"finetune_{args.minutes:g}min",
                 recipe, "last", ckpt, commands)
        score({"generic default": "default", stage: str(ckpt)}, tdir / "test_noise", tdir, "", peer_py, commands)
        results[name] = summary(tdir / "eval" / "summary.csv")
    ckpts = {"generic default": "default",
             **{f"{n} {stage}": str(out / n / f"finetuned_{args.minutes:g}min.ckpt") for n in results}}
    forgetting = score_forgetting(ckpts, out / "forgetting", commands)
    lines = ["# Targeted denoising on long takes: a minute of one noise, then the rest of the take", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, no GPU; {time.strftime('%Y-%m-%d')}. "
             f"Each take: `experiment=finetune init_from=default` for {args.minutes:g} wall-clock minutes "
             f"(`time_budget`) on the take's first 80 % (train/noise/sc_NAME.flac), speech from train/clean, plus "
             f"`{' '.join(recipe)}`, scored with its final checkpoint; test: the 55 dev utterances once each, SNR "
             "cycling -5/0/5/10/15 dB (seed 2024), with the take's last 20 % (dev/noise/sc_NAME.flac: later in "
             "the same recording, never fine-tuned on). Peers: "
             f"{', '.join(PEERS) if peer_py.exists() else 'not run (no peers venv)'}.", "",
             "Caveat: the generic model was trained on train/noise, these takes' first 80 % included: this "
             "measures specialising on a recording the model already knows among 800 others, as a lab's room noise "
             "may resemble what a generic model saw.", "",
             "| take | system | step | PESQ-WB | ESTOI | SI-SDR (dB) | Δ PESQ vs generic | Δ SI-SDR vs generic |",
             "|---|---|---|---|---|---|---|---|"]
    for name, rows in results.items():
        g = rows["generic default"]
        for system, r in rows.items():
            lines.append(f"| {name} | {system} | {steps_of(out / name, system)} | {float(r['pesq_wb']):.3f} | "
                         f"{float(r['estoi']):.3f} | {float(r['si_sdr']):.2f} | "
                         f"{float(r['pesq_wb']) - float(g['pesq_wb']):+.3f} | "
                         f"{float(r['si_sdr']) - float(g['si_sdr']):+.2f} |")
    lines += ["", *forgetting_and_commands(forgetting, "generic default", commands)]
    publish(args.results, lines)


if __name__ == "__main__":
    main()
