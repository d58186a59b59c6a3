"""Targeted denoising on a second, different set: one long take of a steady noise, as a lab records its room.

    python benchmarks/targeted_takes.py [--noises exercise_bike,running_tap,doing_the_dishes] [--minutes 5]
                                        [--generic-noise DIR] [--recipe "OVERRIDES"] [--results NAME.md]
                                        [--init MODEL] [--trained-on TEXT] [--also-default] [--control] [--seen]

benchmarks/targeted.py fine-tunes on five 5-second ESC-10 clips of a type and tests on those clips; here the
noise is a Speech Commands background recording (a minute-long take of one source): fine-tuning on the
take's first 80 % (train/noise/sc_NAME.flac, 48-76 s: "record a minute of your room"), testing on its last
20 % (dev/noise/sc_NAME.flac, 12-19 s later in the same take, never fine-tuned on: the room's noise while the
device is measured). One `experiment=finetune init_from=default` run of --minutes per take (a single long
recording: the fine-tuning split holds out the end of it for validation), scored on the 55 dev utterances
mixed once each with the test part (SNR cycling -5..15 dB, seed 2024) beside the generic model and the peers
(DeepFilterNet3, GTCRN from ../.venv-peers), plus the forgetting check on the general dev mixtures.
--seen scores the same systems on the take's first 80 % too (the audio fine-tuned on, new speech: targeted.py's
"recorded noise" condition). --init, --also-default, --trained-on and --control as in targeted.py: start from
another model (e.g. one trained without these takes, so the room's noise is new to it), score the shipped model
beside it, say what the start was trained on, and add a control run (the same minutes on the general pool alone:
what further training gives without the take).
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
    REFERENCE,
    ROOT,
    add_start_arguments,
    control_name,
    control_note,
    finetune,
    forgetting_and_commands,
    generic_name,
    score,
    score_forgetting,
    scores_and_gains,
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
    add_start_arguments(p)
    p.add_argument("--trained-on", default=None,
                   help="what the --init model was trained on, for the results file's caveat (default: the "
                        "shipped model's training noise, these takes' first 80 %% included)")
    p.add_argument("--control", action="store_true",
                   help="also fine-tune for --minutes on the general pool alone (--generic-noise) and score it "
                        "on every test: the gain of further training without the take")
    p.add_argument("--seen", action="store_true",
                   help="also score on each take's first 80 %% (the audio fine-tuned on, new speech)")
    args = p.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs {DATA} (real audio)")
    out = Path(args.out)
    recipe = [f"finetune.generic_noise={args.generic_noise}", *args.recipe.split()]
    peer_py = Path(args.peers_venv) / "bin" / "python"
    stage = f"fine-tuned {args.minutes:g} min"
    generic = generic_name(args.init)
    commands: list[list[str]] = []
    results: dict[str, dict] = {}
    seen: dict[str, dict] = {}
    extra: dict[str, str] = {}  # rows scored beside the fine-tuned ones, in every table
    if args.control:
        control = out / f"control_{args.minutes:g}min.ckpt"
        finetune(args.init, args.generic_noise, args.minutes * 60, out / f"control_{args.minutes:g}min", recipe,
                 "last", control, commands)
        extra[control_name(args.minutes)] = str(control)
    if args.also_default and args.init != "default":  # without --init the generic row is the shipped model
        extra[REFERENCE] = "default"
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
        finetune(args.init, tdir / "finetune_noise", args.minutes * 60, tdir / f"finetune_{args.minutes:g}min",
                 recipe, "last", ckpt, commands)
        ckpts = {generic: args.init, stage: str(ckpt), **extra}
        score(ckpts, tdir / "test_noise", tdir, "", peer_py, commands)
        results[name] = summary(tdir / "eval" / "summary.csv")
        if args.seen:
            score(ckpts, tdir / "finetune_noise", tdir, "_seen", peer_py, commands)
            seen[name] = summary(tdir / "eval_seen" / "summary.csv")
    ckpts = {generic: args.init,
             **{f"{n} {stage}": str(out / n / f"finetuned_{args.minutes:g}min.ckpt") for n in results}, **extra}
    forgetting = score_forgetting(ckpts, out / "forgetting", commands)
    start = "default" if args.init == "default" else args.init
    lines = ["# Targeted denoising on long takes: a minute of one noise, then the rest of the take", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, no GPU; {time.strftime('%Y-%m-%d')}. "
             f"Each take: `experiment=finetune init_from={start}` for {args.minutes:g} wall-clock minutes "
             f"(`time_budget`) on the take's first 80 % (train/noise/sc_NAME.flac), speech from train/clean, plus "
             f"`{' '.join(recipe)}`, scored with its final checkpoint; test: the 55 dev utterances once each, SNR "
             "cycling -5/0/5/10/15 dB (seed 2024), with the take's last 20 % (dev/noise/sc_NAME.flac: later in "
             "the same recording, never fine-tuned on). Peers: "
             f"{', '.join(PEERS) if peer_py.exists() else 'not run (no peers venv)'}.", "",
             f"Caveat: {args.trained_on}" if args.trained_on else
             "Caveat: the generic model was trained on train/noise, these takes' first 80 % included: this "
             "measures specialising on a recording the model already knows among 800 others, as a lab's room noise "
             "may resemble what a generic model saw.", ""]
    if args.control:
        lines += control_note(args.minutes, args.generic_noise, "the take")
    for title, tables in (("the take's last 20 % (later in the recording, never fine-tuned on)", results),
                          ("the take's first 80 % (the audio fine-tuned on, new speech)", seen)):
        if not tables:
            continue
        lines += [f"On {title}:", "",
                  "| take | system | step | PESQ-WB | ESTOI | SI-SDR (dB) | Δ PESQ vs generic | Δ SI-SDR vs generic |",
                  "|---|---|---|---|---|---|---|---|"]
        for name, rows in tables.items():
            g = rows[generic]
            for system, r in rows.items():
                lines.append(f"| {name} | {system} | {steps_of(out / name, system)} | {scores_and_gains(r, g)}")
        lines.append("")
    lines += forgetting_and_commands(forgetting, generic, commands)
    publish(args.results, lines)


if __name__ == "__main__":
    main()
