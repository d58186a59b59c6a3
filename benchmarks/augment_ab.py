"""Acoustic-realism A/B at equal step budgets: what each training augmentation does on the dry dev
mixtures, on a reverberant dev set (dev speech and noise in held-out simulated rooms) and at +20 dB
SNR (over-suppression of clean-ish input).

    python benchmarks/augment_ab.py [--steps 900] [--variants base,wide_snr,rooms,realism] [--max-files N]

Every variant is the linear-bins recipe (conf/experiment/linear_bins.yaml: dpunet, compressed loss,
device-path augmentations, one-cycle lr) for the same number of optimizer steps, plus:
- base: nothing (SNR -5..15 dB);
- wide_snr: SNR -5..30 dB;
- rooms: data/rooms=sim (half the mixtures reverberated; target = direct path + 50 ms);
- realism: conf/experiment/realism.yaml (rooms + wide SNR + the device colouring on speech and noise).
Scored by denoiselab-evaluate on the 55 dev utterances once each (SNR cycling -5..15 dB, seed 2024),
dry and in rooms of seed 1000, and every utterance at +20 dB. Writes benchmarks/results/augment_ab.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _devsets import DATA, TEST_SETS, score_on_dev_sets, train_equal_steps  # noqa: E402
from _results import publish  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
VARIANTS = {
    "base": ["experiment=linear_bins"],
    "wide_snr": ["experiment=linear_bins", "data.mix.snr_db=[-5,30]"],
    "rooms": ["experiment=linear_bins", "data/rooms=sim"],
    "realism": ["experiment=realism"],
}
METRICS = ("pesq_wb", "estoi", "stoi", "si_sdr")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=900)
    p.add_argument("--variants", default=",".join(VARIANTS))
    p.add_argument("--max-files", type=int, default=None)
    p.add_argument("--out", default=str(ROOT / "outputs" / "bench" / "augment_ab"))
    args = p.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs {DATA} (real audio)")
    out = Path(args.out)
    names = [v for v in args.variants.split(",") if v]
    from denoiselab.evaluation.compare import job_summary

    commands: list[list[str]] = []
    train_equal_steps({n: (out / n, VARIANTS[n]) for n in names}, args.steps, commands)
    minutes = {n: job_summary(out / n, ["val/si_sdr"])["minutes"] for n in names}  # over every invocation of a run
    results = score_on_dev_sets({n: out / n for n in names}, out, dict.fromkeys(("dry", "rooms", "20db"), METRICS),
                                commands, args.max_files)
    lines = ["# Acoustic realism in training: A/B at equal step budgets", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, no GPU (this workplace's CPU box); "
             f"{time.strftime('%Y-%m-%d')}. Each variant: the default-model recipe (dpunet, compressed loss, "
             f"device-path augmentations, one-cycle lr) for {args.steps} optimizer steps, scored with its "
             "monitored-best checkpoint (val SI-SDR on the dry dev mixtures). One run per variant: differences "
             "of a few hundredths of PESQ are within run-to-run spread.", ""]
    for title in TEST_SETS:
        lines += [f"## {title}", "", "| system | PESQ-WB | ESTOI | STOI | SI-SDR (dB) | Δ SI-SDR vs input |",
                  "|---|---|---|---|---|---|"]
        for name, r in results[title].items():
            lines.append(f"| {name} | {float(r['pesq_wb']):.3f} | {float(r['estoi']):.3f} | {float(r['stoi']):.3f} "
                         f"| {float(r['si_sdr']):.2f} | {float(r['d_si_sdr']):+.2f} |")
        lines.append("")
    lines += ["Training time (min, from each run's metrics.jsonl; runs took longer while other jobs shared the "
              "2 cores): " + ", ".join(f"{n} {m:.1f}" for n, m in minutes.items()), "",
              "Commands:", "", "```", *[" ".join(c) for c in commands], "```"]
    publish("augment_ab.md", lines)


if __name__ == "__main__":
    main()
