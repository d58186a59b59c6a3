"""denoiselab-compare: rank the jobs of a multirun by their validation metrics (no W&B needed).

    denoiselab-compare outputs/train/multiruns/2026-11-27_10-00-00 [--metrics val/si_sdr,val/pesq_wb]

Reads each job's CSV log (csv/version_*/metrics.csv) and Hydra overrides, writes compare.csv,
compare.md and compare.png into the multirun folder, and prints the ranking.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

from denoiselab import report


def job_metrics(job: Path, metrics: list[str]) -> dict[str, float]:
    """Best value of each metric over the job's validation epochs (max; all our metrics are higher-better)."""
    best: dict[str, float] = {m: math.nan for m in metrics}
    for csv_path in sorted(job.glob("csv/version_*/metrics.csv")) + sorted(job.glob("csv/metrics.csv")):
        for row in report.read_csv(csv_path):
            for m in metrics:
                v = row.get(m, "")
                if v not in ("", None):
                    val = float(v)
                    if math.isnan(best[m]) or val > best[m]:
                        best[m] = val
    return best


def overrides(job: Path) -> str:
    f = job / ".hydra" / "overrides.yaml"
    if not f.exists():
        return ""
    lines = [ln.strip()[2:] for ln in f.read_text().splitlines() if ln.strip().startswith("- ")]
    return " ".join(lines)


def compare(sweep_dir: Path, metrics: list[str]) -> list[dict]:
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and (p / ".hydra").is_dir())
    if not jobs:
        raise ValueError(f"{sweep_dir} holds no Hydra jobs (folders with .hydra/); is it a multirun folder?")
    rows = []
    for job in jobs:
        row = {"job": job.name, "overrides": overrides(job)}
        row.update(job_metrics(job, metrics))
        rows.append(row)
    key = metrics[0]
    rows.sort(key=lambda r: (math.isnan(r[key]), -r[key] if not math.isnan(r[key]) else 0))
    for rank, r in enumerate(rows, 1):
        r["rank"] = rank
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="denoiselab-compare", description=__doc__.split("\n\n")[0])
    p.add_argument("sweep_dir")
    p.add_argument("--metrics", default="val/si_sdr,val/si_sdri,val/pesq_wb,val/stoi",
                   help="comma-separated logged metrics; ranking uses the first")
    args = p.parse_args(argv)
    sweep = Path(args.sweep_dir)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    try:
        rows = compare(sweep, metrics)
    except (ValueError, FileNotFoundError) as err:
        print(f"denoiselab-compare: {err}", file=sys.stderr)
        return 2
    present = [m for m in metrics if any(not math.isnan(r[m]) for r in rows)]
    cols = ["rank", "job", *present, "overrides"]
    report.write_csv(sweep / "compare.csv", rows, cols)
    md = [f"# Sweep {sweep.name}", "", f"Ranked by best {metrics[0]} over validation epochs.", "",
          report.markdown_table(rows, cols), "", "![compare](compare.png)"]
    (sweep / "compare.md").write_text("\n".join(md) + "\n")
    if present:
        report.plot_bars([r["job"] for r in rows], [r[present[0]] for r in rows], None, None, None, present[0],
                         sweep / "compare.png", f"{sweep.name}: best {present[0]} per job")
    from rich.console import Console

    Console().print(report.rich_table(rows, cols[:-1], f"sweep {sweep.name}"))
    print(f"written: {sweep / 'compare.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
