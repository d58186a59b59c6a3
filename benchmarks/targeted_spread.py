"""Run-to-run spread of benchmarks/targeted.py: the same fine-tuning budget repeated (other seeds, other
sessions' boxes), one table per type and test condition with each run's gain over the generic model, their
mean and range, and the issue's targets checked on the mean: a single run's 0.01 PESQ-WB or 0.2 dB says
little until the spread beside it is known.

    python benchmarks/targeted_spread.py --runs NAME=DIR,NAME=DIR,... [--minutes 5] [--types T,T]
                                         [--results targeted_spread.md]

Each DIR is a targeted.py --out folder holding the budget (`fine-tuned N min` rows in DIR/TYPE/eval*/
summary.csv). Peers (DeepFilterNet3) are read from whichever run scored them: their outputs do not depend on
the fine-tuning, only on the test mixtures, which every targeted.py run draws alike (seed 2024).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from statistics import mean

sys.path.insert(0, str(Path(__file__).resolve().parent))
from targeted import steps_of, summary  # noqa: E402

from _results import publish  # noqa: E402

#: the issue's targets after <= 5 minutes: gain over the generic model (PESQ-WB, SI-SDR dB), on the recorded noise
TARGET_GAIN = (0.15, 1.5)
PEER = "deepfilternet3"
CONDITIONS = (("eval_seen", "recorded noise (the 5 recordings fine-tuned on, new speech)"),
              ("eval", "held-out recordings of the type (never fine-tuned on)"))


def _pair(row: dict) -> tuple[float, float]:
    return float(row["pesq_wb"]), float(row["si_sdr"])


def type_tables(runs: dict[str, Path], noise_type: str, stage: str) -> list[str]:
    lines = [f"## {noise_type}", ""]
    for folder, title in CONDITIONS:
        tables = {name: summary(d / noise_type / folder / "summary.csv") for name, d in runs.items()
                  if (d / noise_type / folder / "summary.csv").exists()}
        tables = {name: t for name, t in tables.items() if stage in t}
        if not tables:
            continue
        lines += [f"On the {title}:", "", "| run | steps | generic PESQ-WB / SI-SDR | fine-tuned | gain |",
                  "|---|---|---|---|---|"]
        gains, tuned = [], []
        for name, t in tables.items():
            g, f = _pair(t["generic default"]), _pair(t[stage])
            gains.append((f[0] - g[0], f[1] - g[1]))
            tuned.append(f)
            lines.append(f"| {name} | {steps_of(runs[name] / noise_type, stage)} | {g[0]:.3f} / {g[1]:.2f} | "
                         f"{f[0]:.3f} / {f[1]:.2f} | {gains[-1][0]:+.3f} / {gains[-1][1]:+.2f} |")
        gp, gs = [x[0] for x in gains], [x[1] for x in gains]
        tp, ts = mean(x[0] for x in tuned), mean(x[1] for x in tuned)
        lines.append(f"| **mean of {len(gains)}** | | | {tp:.3f} / {ts:.2f} | **{mean(gp):+.3f} / {mean(gs):+.2f}** |")
        lines.append(f"| range | | | | {min(gp):+.3f}…{max(gp):+.3f} / {min(gs):+.2f}…{max(gs):+.2f} |")
        peer = next((t[PEER] for t in tables.values() if PEER in t), None)
        lines.append("")
        if folder == "eval_seen":
            verdict = [f"gain {'meets' if mean(gp) >= TARGET_GAIN[0] else 'misses'} +{TARGET_GAIN[0]} PESQ-WB "
                       f"({sum(p >= TARGET_GAIN[0] for p in gp)} of {len(gp)} runs do)",
                       f"{'meets' if mean(gs) >= TARGET_GAIN[1] else 'misses'} +{TARGET_GAIN[1]} dB "
                       f"({sum(s >= TARGET_GAIN[1] for s in gs)} of {len(gs)} runs do)"]
            if peer:
                p = _pair(peer)
                verdict.append(f"DeepFilterNet3 {p[0]:.3f} / {p[1]:.2f}: the mean fine-tuned model is "
                               f"{tp - p[0]:+.3f} PESQ-WB / {ts - p[1]:+.2f} dB from it")
            lines += ["Against the targets (on the mean): " + "; ".join(verdict) + ".", ""]
    return lines


def forgetting_table(runs: dict[str, Path], types: list[str], stage: str) -> list[str]:
    lines = ["## Forgetting: general dev mixtures, PESQ-WB change against the generic model", "",
             "| run | " + " | ".join(types) + " |", "|---|" + "---|" * len(types)]
    for name, d in runs.items():
        path = d / "forgetting" / "summary.csv"
        if not path.exists():
            continue
        t = summary(path)
        g = float(t["generic default"]["pesq_wb"])
        cells = [f"{float(t[f'{ty} {stage}']['pesq_wb']) - g:+.3f}" if f"{ty} {stage}" in t else "—" for ty in types]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines + [""]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", required=True, help="NAME=DIR,...: targeted.py --out folders")
    ap.add_argument("--minutes", type=float, default=5.0, help="the budget to compare (a targeted.py stage)")
    ap.add_argument("--types", default="esc10_chainsaw,esc10_clock_tick,esc10_helicopter")
    ap.add_argument("--results", default="targeted_spread.md")
    args = ap.parse_args()
    runs = {name: Path(d) for name, d in (pair.split("=", 1) for pair in args.runs.split(","))}
    missing = [str(d) for d in runs.values() if not d.is_dir()]
    if missing:
        sys.exit(f"no such run folder: {', '.join(missing)}")
    stage = f"fine-tuned {args.minutes:g} min"
    types = args.types.split(",")
    lines = ["# Targeted fine-tuning: run-to-run spread", "",
             f"Command: `python benchmarks/targeted_spread.py --runs {args.runs} --minutes {args.minutes:g} "
             f"--types {args.types}`. Each run: `benchmarks/targeted.py` (see its folder's commands), stage "
             f"`{stage}`, scored with its final checkpoint; steps = the optimizer steps it reached in the "
             f"budget. Targets (#15, after ≤ 5 minutes, on the recorded noise): gain ≥ +{TARGET_GAIN[0]} PESQ-WB "
             f"and ≥ +{TARGET_GAIN[1]} dB SI-SDR over the generic model, and above DeepFilterNet3 on both.", ""]
    for noise_type in types:
        lines += type_tables(runs, noise_type, stage)
    lines += forgetting_table(runs, types, stage)
    publish(args.results, lines)


if __name__ == "__main__":
    main()
