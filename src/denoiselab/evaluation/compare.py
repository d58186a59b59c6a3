"""Rank the jobs of a multirun by their validation metrics, whatever logger they ran with (the library
behind ``denoiselab-compare``).

Each job's metrics come from ``RUN/metrics.jsonl`` (written by every denoiselab-train run), else
from its CSV logs (older runs); a job with neither is listed last and says so. Alongside the
metrics: training steps, wall time, parameters and the monitored-best checkpoint, so a job that
trained 22 steps is not silently ranked against one that trained 119.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from denoiselab.core.checkpoints import best_checkpoint
from denoiselab.core.files import RUN_METRICS
from denoiselab.evaluation import report


def lower_is_better(metric: str) -> bool:
    return "loss" in metric


def _better(metric: str, a: float, b: float) -> bool:
    return a < b if lower_is_better(metric) else a > b


def read_run_metrics(job: Path) -> list[dict[str, Any]]:
    """The records of RUN/metrics.jsonl (unreadable lines, e.g. one cut by a kill, are skipped)."""
    path = job / RUN_METRICS
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def job_summary(job: Path, metrics: list[str]) -> dict[str, Any]:
    """Best value of each metric over the job's validations, steps, wall time, parameters, best checkpoint."""
    row: dict[str, Any] = {m: math.nan for m in metrics}
    row.update(steps=math.nan, minutes=math.nan, params=math.nan, note="")
    records = read_run_metrics(job)
    validations = [r for r in records if r.get("event") == "validation"]
    if records:
        row["steps"] = max(int(r.get("step", 0)) for r in records)
        # wall time: the last time seen in each invocation (a resumed run appends a new start)
        seconds, current = 0.0, 0.0
        for r in records:
            if r.get("event") == "start":
                seconds, current = seconds + current, 0.0
            current = max(current, float(r.get("seconds", 0.0)))
        row["minutes"] = (seconds + current) / 60
        params = [r["params"] for r in records if r.get("event") == "start" and r.get("params")]
        row["params"] = params[-1] if params else math.nan
        source = validations
    else:
        source = [{k: v for k, v in r.items()} for csv_path in
                  sorted(job.glob("csv/version_*/metrics.csv")) + sorted(job.glob("csv/metrics.csv"))
                  for r in report.read_csv(csv_path)]
        steps = [int(float(r["step"])) for r in source if r.get("step") not in (None, "")]
        row["steps"] = max(steps) if steps else math.nan
    for r in source:
        for m in metrics:
            v = r.get(m)
            if v in (None, ""):
                continue
            val = float(v)
            if math.isnan(row[m]) or _better(m, val, row[m]):
                row[m] = val
    logged = sorted({k for r in source for k, v in r.items() if k.startswith("val/") and v not in (None, "")})
    row["logged"] = logged
    if all(math.isnan(row[m]) for m in metrics):
        row["note"] = (f"none of {', '.join(metrics)} logged; it logged {', '.join(logged)}" if logged else
                       "no metrics: the job has no metrics.jsonl or CSV log with validation metrics "
                       "(did it fail before its first validation?)")
    best = best_checkpoint(job)
    last = job / "checkpoints" / "last.ckpt"
    if best is None and validations and last.is_file():
        # it stopped before a validation inside training, so its one validation scored the final weights
        best = last
    row["best_checkpoint"] = str(best) if best else ""
    return row


def overrides(job: Path) -> str:
    f = job / ".hydra" / "overrides.yaml"
    if not f.exists():
        return ""
    lines = [ln.strip()[2:] for ln in f.read_text().splitlines() if ln.strip().startswith("- ")]
    return " ".join(lines)


def compare(sweep_dir: Path, metrics: list[str]) -> list[dict]:
    """One row per job, ranked by ``metrics[0]`` (jobs without it last)."""
    sweep_dir = Path(sweep_dir)
    if not sweep_dir.is_dir():
        raise FileNotFoundError(f"sweep folder does not exist: {sweep_dir}")
    jobs = sorted(p for p in sweep_dir.iterdir() if p.is_dir() and (p / ".hydra").is_dir())
    if not jobs:
        raise ValueError(f"{sweep_dir} holds no Hydra jobs (folders with .hydra/); is it a multirun folder?")
    rows = []
    for job in jobs:
        row = {"job": job.name, "overrides": overrides(job)}
        row.update(job_summary(job, metrics))
        rows.append(row)
    key = metrics[0]
    sign = 1.0 if lower_is_better(key) else -1.0
    rows.sort(key=lambda r: (math.isnan(r[key]), sign * r[key] if not math.isnan(r[key]) else 0.0))
    for rank, r in enumerate(rows, 1):
        r["rank"] = rank if not math.isnan(r[key]) else "–"
    return rows
