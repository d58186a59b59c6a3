"""Peers on every dev test set of the training A/Bs: the dry dev mixtures, the same in held-out simulated
rooms (reverberant) and every utterance at +20 dB (over-suppression), with our checkpoints and the offline
peer denoisers scored on the very same files.

    python benchmarks/peers_sets.py [--ckpt NAME=PATH ...] [--peers gtcrn,deepfilternet3] [--sets dry,rooms,20db]
                                    [--results peers_sets.md] [--out DIR]

--sets pairs (opt-in) adds the only real noisy/clean recordings in ../shared/data: 6 VoiceBank+DEMAND
training pairs of one speaker (pairs/vbdemand_train_debug), scored as recorded (no mixing).

Per set (benchmarks/_devsets.py TEST_SETS; the same mixtures recipes.py and augment_ab.py score on):
denoiselab-evaluate freezes the mixtures as wavs, the peers harness (../shared/tools/peers, its own venv
../.venv-peers) enhances them on one thread, and one denoiselab-evaluate call scores noisy, our models and
the peers (+processed). Without --ckpt the shipped default model is the only one of ours. The +20 dB set
reads as "did the output lose against its input": Δ SI-SDR and Δ ESTOI (output − input; negative = speech
removed from clean-ish input). Writes benchmarks/results/<results>.
"""

from __future__ import annotations

import argparse
import csv
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _devsets import DATA, PEERS_PY, TEST_SETS, score_with_peers  # noqa: E402
from _results import publish  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
METRICS = ("pesq_wb", "stoi", "estoi", "si_sdr")
REAL_PAIRS = DATA / "pairs" / "vbdemand_train_debug"


def test_sets() -> dict[str, tuple[str, list[str]]]:
    """{title: (tag, the data.* overrides of denoiselab-evaluate)}: the mixed dev sets, then the real pairs."""
    dev = [f"data.clean={DATA / 'dev' / 'clean'}", f"data.noise={DATA / 'dev' / 'noise'}", "data.every_snr=false",
           "data.seed=2024"]
    sets = {title: (tag, [*dev, *extra]) for title, (tag, extra) in TEST_SETS.items()}
    sets["6 real VoiceBank+DEMAND pairs (speaker p287, as recorded)"] = (
        "pairs", [f"data.noisy={REAL_PAIRS / 'noisy'}", f"data.clean={REAL_PAIRS / 'clean'}"])
    return sets


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--ckpt", action="append", default=[], metavar="NAME=PATH", help="our models (default: shipped)")
    p.add_argument("--peers", default="gtcrn,deepfilternet3")
    p.add_argument("--sets", default="dry,rooms,20db")
    p.add_argument("--peers-python", default=str(PEERS_PY))
    p.add_argument("--results", default="peers_sets.md")
    p.add_argument("--out", default=str(ROOT / "outputs" / "bench" / "peers_sets"))
    args = p.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs {DATA} (real audio)")
    ckpts = dict(c.split("=", 1) for c in args.ckpt) or {"shipped default": "default"}
    peers = tuple(n for n in args.peers.split(",") if n)
    peer_py = Path(args.peers_python)
    out = Path(args.out)
    commands: list[list[str]] = []
    tables: list[str] = []
    wanted = args.sets.split(",")
    chosen = {title: (tag, test_set) for title, (tag, test_set) in test_sets().items() if tag in wanted}
    for title, (tag, test_set) in chosen.items():
        scoring = ["baselines=[noisy]", f"metrics=[{','.join(METRICS)}]", "num_workers=2", "examples=1",
                   "plots=false"]
        rows = list(csv.DictReader(open(score_with_peers(ckpts, test_set, scoring, out, f"_{tag}", peers, peer_py,
                                                         commands))))
        tables += [f"## {title}", "", "| system | PESQ-WB | STOI | ESTOI | SI-SDR (dB) | Δ PESQ-WB | Δ STOI | Δ ESTOI "
                   "| Δ SI-SDR |", "|---|---|---|---|---|---|---|---|---|"]
        tables += [f"| {r['system']} | {float(r['pesq_wb']):.3f} | {float(r['stoi']):.3f} | {float(r['estoi']):.3f} "
                   f"| {float(r['si_sdr']):.2f} | {float(r['d_pesq_wb']):+.3f} | {float(r['d_stoi']):+.3f} | "
                   f"{float(r['d_estoi']):+.3f} | {float(r['d_si_sdr']):+.2f} |" for r in rows]
        tables.append("")
    lines = [f"# Our models and the peers on the same files: {'; '.join(chosen)}", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, no GPU (this workplace's CPU box); "
             f"{time.strftime('%Y-%m-%d')}. Each set: the 55 `../shared/data/dev/clean` utterances once each with "
             "dev noise (seed 2024), SNR cycling -5/0/5/10/15 dB (dry; reverberant: the same in held-out simulated "
             "rooms, seed 1000, reference = the talker's direct path + 50 ms) or every utterance at +20 dB; the "
             "real pairs (where scored): `../shared/data/pairs/vbdemand_train_debug` as recorded; "
             f"peers ({', '.join(peers)}) from `../shared/tools/peers/run_peers.py` on one thread; everything "
             "scored by `denoiselab-evaluate` on the same wavs. Δ = output − noisy input.", "", *tables,
             "Commands:", "", "```", *[" ".join(c) for c in commands], "```"]
    publish(args.results, lines)


if __name__ == "__main__":
    main()
