"""Recipe search at equal step budgets: mask processors × backbones × linear/ERB bands, each row one
`denoiselab-train experiment=<recipe> model/net=<net>` run of the same number of optimizer steps, scored on
the dry dev mixtures, the reverberant dev set and +20 dB input (benchmarks/_devsets.py).

    python benchmarks/recipes.py [--steps 300] [--rows dpunet:linear_bins,unet:seed_db,...] [--max-files N]
                                 [--reference NAME=MODEL] [--results recipes.md]

A row may carry its own budget, `NET:EXPERIMENT@STEPS` (equal *time* screens: ERB steps cost a fraction of
linear ones) and overrides after `|` (`dpunet:erb_bands@3105|model.frontend.n_bands=64`); `--reference NAME=MODEL`
adds a model file (e.g. `shipped=default`) as a row that is scored, not trained.

Recipes are conf/experiment files built on the linear-bins recipe (the previous default model's: dpunet,
data, augmentations, one-cycle lr): linear_bins (noise_subtract on linear bins), erb_bands, complex_mask,
deep_filter, seed_db (db_subtract with the seed's dB loss), realism (rooms, wide SNR); default_model is the
shipped model's (realism on ERB bands, a longer schedule). Per row: PESQ-WB / ESTOI / SI-SDR / DNSMOS OVRL on
the dry set, PESQ-WB, ESTOI and SI-SDR in rooms, the over-suppression figure (SI-SDR change against the
input at +20 dB: negative = the model removes speech from clean-ish input), parameters, MACs per second of
audio, RTF on one thread, training minutes. Writes benchmarks/results/recipes.md.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _devsets import DATA, score_on_dev_sets, train_equal_steps  # noqa: E402
from _facts import model_facts  # noqa: E402
from _results import publish  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
ROWS = ("dpunet:linear_bins,dpunet:erb_bands,dpunet:complex_mask,dpunet:deep_filter,dpunet:seed_db,"
        "unet:linear_bins,unet:seed_db,lstm:linear_bins,lstm:seed_db")
METRICS = {"dry": ["pesq_wb", "estoi", "si_sdr", "dnsmos_ovrl"], "rooms": ["pesq_wb", "estoi", "si_sdr"],
           "20db": ["si_sdr"]}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--rows", default=ROWS, help="comma-separated NET:EXPERIMENT[@STEPS][|override|...]")
    p.add_argument("--reference", action="append", default=[], metavar="NAME=MODEL",
                   help="score a model file (or default) as a row too, untrained here")
    p.add_argument("--results", default="recipes.md", help="file name under benchmarks/results/")
    p.add_argument("--extra", action="append", default=[], metavar="NAME=RUN_DIR",
                   help="score a run trained elsewhere too (its command is in RUN_DIR/.hydra/overrides.yaml)")
    p.add_argument("--max-files", type=int, default=None)
    p.add_argument("--out", default=str(ROOT / "outputs" / "bench" / "recipes"))
    args = p.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs {DATA} (real audio)")
    out = Path(args.out)
    commands: list[list[str]] = []
    runs: dict[str, Path] = {}
    for row in filter(None, args.rows.split(",")):
        spec, *overrides = row.split("|")
        spec, _, steps = spec.partition("@")
        net, exp = spec.split(":")
        n = int(steps or args.steps)
        name = " ".join([f"{net}/{exp}" + (f"@{n}" if steps else ""), *overrides])
        folder = "_".join([f"{net}_{exp}", *([str(n)] if steps else []), *(o.split(".")[-1] for o in overrides)])
        runs |= train_equal_steps({name: (out / folder.replace("=", ""),
                                          [f"experiment={exp}", f"model/net={net}", *overrides])}, n, commands)
    from denoiselab.core.checkpoints import best_checkpoint
    from denoiselab.evaluation.compare import job_summary

    for item in args.extra:
        name, _, run_dir = item.partition("=")
        runs[name] = Path(run_dir)
        overrides = (Path(run_dir) / ".hydra" / "overrides.yaml").read_text().split("\n")
        commands.append(["denoiselab-train", *(o.lstrip("- ") for o in overrides if o.strip())])
    ckpts = {n: best_checkpoint(d) or d / "checkpoints" / "last.ckpt" for n, d in runs.items()}
    facts = {n: {**model_facts(ckpts[n], macs=True), "train_min": job_summary(d, ["val/si_sdr"])["minutes"]}
             for n, d in runs.items()}
    for item in args.reference:
        from denoiselab.core.model_files import resolve_model_path

        name, _, model = item.partition("=")
        ckpts = {name: resolve_model_path(model), **ckpts}
        facts[name] = {**model_facts(ckpts[name], macs=True), "train_min": float("nan")}
    results = score_on_dev_sets(ckpts, out, METRICS, commands, args.max_files)
    dry, rooms, loud = (results[t] for t in results)
    lines = ["# Recipe search at equal step budgets", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, no GPU (this workplace's CPU box); "
             f"{time.strftime('%Y-%m-%d')}. Every row: `denoiselab-train experiment=RECIPE model/net=NET` for "
             f"{args.steps} optimizer steps unless the row says `@STEPS` (one-cycle lr over those steps), "
             "scored with its monitored-best "
             "checkpoint. A short screen, one run per row: it ranks how fast recipes learn, not where they end; "
             "differences of a few hundredths of PESQ are within run-to-run spread.", "",
             "Dry: the 55 dev utterances once each with dev noise, SNR cycling -5..15 dB; rooms: the same in "
             "held-out simulated rooms; over-suppression: SI-SDR change against the input with every utterance "
             "at +20 dB (negative = speech removed).", "",
             "| net / recipe | dry PESQ-WB | dry ESTOI | dry SI-SDR | dry DNSMOS OVRL | rooms PESQ-WB | rooms ESTOI | "
             "rooms SI-SDR | +20 dB Δ SI-SDR | params | MMACs/s | RTF (1 thread) | train min |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for name in ["noisy", *ckpts]:
        d, r, lo, f = dry[name], rooms[name], loud[name], facts.get(name, {})
        lines.append(
            f"| {name} | {float(d['pesq_wb']):.3f} | {float(d['estoi']):.3f} | {float(d['si_sdr']):.2f} | "
            f"{float(d['dnsmos_ovrl']):.3f} | {float(r['pesq_wb']):.3f} | {float(r['estoi']):.3f} | "
            f"{float(r['si_sdr']):.2f} | "
            f"{float(lo['d_si_sdr']):+.2f} | "
            + (f"{f['params']:,} | {f['macs_per_s'] / 1e6:.0f} | {f['rtf']:.4f} | "
               + ("– |" if math.isnan(f["train_min"]) else f"{f['train_min']:.1f} |") if f
               else "– | – | – | – |"))
    lines += ["", "Commands:", "", "```", *[" ".join(c) for c in commands], "```"]
    publish(args.results, lines)


if __name__ == "__main__":
    main()
