"""Metric throughput: files/s for PESQ-WB, STOI/ESTOI and DNSMOS with 1 and 2 worker processes.

    python benchmarks/metrics_speed.py [--files 24]

Uses real speech from ../shared/data/dev (synthetic speech-like signals when it is absent),
mixed with white noise at 5 dB. Writes benchmarks/results/metrics.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from _results import publish  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "dev" / "clean"


def items(n: int) -> list[tuple[np.ndarray, int, np.ndarray]]:
    files = sorted(DATA.glob("*.flac"))[:n]
    out = []
    rng = np.random.default_rng(0)
    for f in files:
        c, sr = sf.read(f, dtype="float32")
        noise = rng.standard_normal(c.size).astype(np.float32)
        noise *= np.sqrt(np.mean(c ** 2) / np.mean(noise ** 2) / 10 ** 0.5)
        out.append((c + noise, sr, c))
    return out


def main() -> None:
    from denoiselab.evaluation import metrics as M

    p = argparse.ArgumentParser()
    p.add_argument("--files", type=int, default=24)
    args = p.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs {DATA}")
    jobs = items(args.files)
    seconds = sum(x.size / sr for x, sr, _ in jobs)
    groups = {"PESQ-WB": ["pesq_wb"], "STOI + ESTOI": ["stoi", "estoi"], "DNSMOS (P.835 + P.808)": ["dnsmos_ovrl"]}
    rows = []
    for name, metrics in groups.items():
        row = {"metrics": name}
        for workers in (0, 2):
            t0 = time.perf_counter()
            M.score_many(jobs, metrics, num_workers=workers)
            row[workers] = len(jobs) / (time.perf_counter() - t0)
        rows.append(row)
        print(row, flush=True)
    lines = ["# Metric throughput (CPU)", "",
             f"`python benchmarks/metrics_speed.py --files {args.files}` on {platform.machine()} "
             f"({os.cpu_count()} cores). "
             f"{len(jobs)} real dev utterances ({seconds / len(jobs):.1f} s on average) + white noise at 5 dB; files/s "
             "including worker start-up (spawned processes import torch once each).", "",
             "| metric | files/s, 1 process | files/s, 2 worker processes |", "|---|---|---|"]
    lines += [f"| {r['metrics']} | {r[0]:.2f} | {r[2]:.2f} |" for r in rows]
    publish("metrics.md", lines)


if __name__ == "__main__":
    main()
