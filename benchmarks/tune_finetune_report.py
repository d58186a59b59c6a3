"""One table of fine-tuning recipe variants, from the run folders `benchmarks/tune_finetune.sh` leaves.

    python benchmarks/tune_finetune_report.py [--runs outputs/bench/tune_finetune] [--baseline NAME]
                                              [--results tune_finetune.md]

Each variant folder (RUNS/NAME/TYPE/{train,eval}) gives a row per type: the overrides beyond
`experiment=finetune` and the main knobs as they resolved (read from the run's own .hydra/, so the table
cannot disagree with what ran, even after the shipped defaults change) with the precision it resolved to (from
its train.log), the steps reached in the budget,
and PESQ-WB / SI-SDR of the generic and the fine-tuned model on the recorded-noise mixtures, with the gain;
with --baseline, also each variant's gain minus the baseline's on the same type (the figure a recipe change
has to move).
"""

from __future__ import annotations

import argparse
import csv
import re
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import publish  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
# What every tune_finetune.sh run passes: not part of a variant's recipe.
COMMON = ("experiment=", "init_from=", "data.clean=", "data.noise=", "time_budget=", "trainer.max_time=",
          "finetune.generic_noise=", "logger=", "hydra.run.dir=")


def scores(summary: Path) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """(generic, fine-tuned) PESQ-WB / SI-SDR of one evaluation, None where it did not run."""
    if not summary.exists():
        return None
    rows = {r["system"]: r for r in csv.DictReader(open(summary))}
    g = rows["generic"]
    f = next(r for name, r in rows.items() if name not in ("noisy", "generic"))  # "fine-tuned"
    return (float(g["pesq_wb"]), float(g["si_sdr"])), (float(f["pesq_wb"]), float(f["si_sdr"]))


def variant_row(run: Path) -> dict | None:
    """A finished run's figures, or None where its evaluation is missing (an interrupted run)."""
    seen = scores(run / "eval" / "summary.csv")
    if seen is None:
        return None
    overrides = yaml.safe_load(open(run / "train" / ".hydra" / "overrides.yaml")) or []
    log = (run / "train.log").read_text(errors="replace") if (run / "train.log").exists() else ""
    steps = re.findall(r"reached at step (\d+)", log)
    budget = [o.split("=", 1)[1] for o in overrides if o.startswith("time_budget=")]
    cfg = yaml.safe_load(open(run / "train" / ".hydra" / "config.yaml"))
    # precision=auto resolves per machine: the log line says what it became (a label cannot get it wrong)
    resolved = re.findall(r"trainer\.precision=auto: (\S+) on this machine", log)
    precision = resolved[-1] if resolved else str(cfg.get("trainer", {}).get("precision", "?"))
    return {"recipe": " ".join(o for o in overrides if not o.startswith(COMMON)) or "(none)",
            "as_run": f"{as_run(cfg)}, {precision}",
            "budget": budget[0] if budget else "?", "steps": steps[-1] if steps else "?",
            "generic": seen[0], "tuned": seen[1], "unseen": scores(run / "eval_unseen" / "summary.csv")}


def as_run(cfg: dict) -> str:
    """The recipe knobs a row's runs were made with, resolved: "no overrides" means the defaults of its day,
    which change when a variant is shipped."""
    data = cfg["data"]
    snr = data["mix"].get("snr_db")
    return (f"share {cfg['finetune']['generic_share']:g}, {'device' if data.get('augment') else 'no'} augmentation, "
            f"SNR {snr[0]:g}..{snr[1]:g} dB, lr {cfg['model']['optimizer']['lr']:g}"
            + (", NHWC" if cfg["model"].get("channels_last") else ""))


def minus(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    """(PESQ-WB, SI-SDR) a - b."""
    return a[0] - b[0], a[1] - b[1]


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--runs", default=str(ROOT / "outputs" / "bench" / "tune_finetune"))
    p.add_argument("--baseline", default=None, help="the variant NAME every other is compared with")
    p.add_argument("--results", default="tune_finetune.md", help="file name under benchmarks/results/")
    args = p.parse_args()
    runs = Path(args.runs)
    table = {(v.name, t.name): row for v in sorted(runs.iterdir()) if v.is_dir()
             for t in sorted(v.iterdir()) if t.is_dir() and (row := variant_row(t))}
    if not table:
        sys.exit(f"no finished runs under {runs}")
    base = {t: r for (v, t), r in table.items() if v == args.baseline}
    lines = ["# Fine-tuning recipe variants (recorded-noise condition)", "",
             f"From `{runs.relative_to(ROOT) if runs.is_relative_to(ROOT) else runs}`: each row one "
             "`benchmarks/tune_finetune.sh NAME \"TYPES\" SECONDS [overrides]` run (the shipped model fine-tuned "
             "on a type's first 5 dev recordings, scored on the 55 dev utterances mixed with those recordings, "
             "SNR -5..15 dB, seed 2024), one run per row; budgets are wall-clock seconds on the machine that "
             "ran them, nothing else running.", "",
             "Columns `unseen`: the same two models on the type's other 3 dev recordings (not fine-tuned on; runs "
             "from before that evaluation existed show —).", "",
             "| variant | type | overrides | recipe as run | budget s | steps | generic PESQ-WB / SI-SDR | fine-tuned "
             "| gain | "
             + ("gain − baseline's | " if base else "") + "unseen: generic | unseen: gain | "
             + ("unseen: gain − baseline's |" if base else ""),
             "|---|---|---|---|---|---|---|---|---|---|---|" + ("---|---|" if base else "")]

    def fmt(x: tuple[float, float], sign: bool = False) -> str:
        return f"{x[0]:+.3f} / {x[1]:+.2f}" if sign else f"{x[0]:.3f} / {x[1]:.2f}"

    for (v, t), r in table.items():
        g, b = minus(r["tuned"], r["generic"]), base.get(t)
        cells = [v, t, r["recipe"], r["as_run"], r["budget"], r["steps"], fmt(r["generic"]), fmt(r["tuned"]),
                 fmt(g, True)]
        if base:
            cells.append(fmt(minus(g, minus(b["tuned"], b["generic"])), True) if b else "")
        u = r["unseen"]
        ug = minus(u[1], u[0]) if u else None
        cells += [fmt(u[0]) if u else "—", fmt(ug, True) if ug else "—"]
        if base:
            bu = b["unseen"] if b else None
            cells.append(fmt(minus(ug, minus(bu[1], bu[0])), True) if ug and bu else "—")
        lines.append("| " + " | ".join(cells) + " |")
    publish(args.results, lines)


if __name__ == "__main__":
    main()
