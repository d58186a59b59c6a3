"""Training runs at equal step budgets and the three dev test sets the training A/Bs are scored on
(one denoiselab-evaluate call per set):
the 55 dev utterances once each with dev noise (SNR cycling, seed 2024), dry; the same in held-out simulated
rooms (seed 1000, never a training room); and every utterance at +20 dB (over-suppression of clean-ish input)."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PEERS_TOOL = ROOT.parent / "shared" / "tools" / "peers" / "run_peers.py"
PEERS_PY = ROOT.parent / ".venv-peers" / "bin" / "python"
TEST_SETS = {
    "dev (dry, -5..15 dB)": ("dry", ["data.snrs=[-5,0,5,10,15]"]),
    "dev in held-out rooms (-5..15 dB)": ("rooms", ["data.snrs=[-5,0,5,10,15]", "data.rooms={seed:1000}"]),
    "dev at +20 dB (dry)": ("20db", ["data.snrs=[20]"]),
}


def train_equal_steps(runs: dict[str, tuple[Path, list[str]]], steps: int, commands: list) -> dict[str, Path]:
    """Train every run ({name: (run dir, overrides)}) for the same number of optimizer steps (the one-cycle
    schedule over exactly those steps); resumable (auto_resume). Returns {name: run dir}."""
    env = {**os.environ, "WANDB_MODE": "offline"}
    for run_dir, overrides in runs.values():
        cmd = ["denoiselab-train", *overrides, f"trainer.max_steps={steps}", f"model.scheduler.total_steps={steps}",
               f"shared_data={DATA}", f"hydra.run.dir={run_dir}", "auto_resume=true"]
        commands.append(cmd)
        subprocess.run([sys.executable, "-m", "denoiselab.cli.train", *cmd[1:]], check=True, env=env, cwd=ROOT)
    return {name: run_dir for name, (run_dir, _) in runs.items()}


def score_on_dev_sets(ckpts: dict[str, Path], out: Path, metrics: dict[str, list[str]], commands: list,
                      max_files: int | None = None) -> dict[str, dict[str, dict]]:
    """{set title: {system: summary row}}; `metrics` maps a set's tag (dry, rooms, 20db) to its metric list."""
    env = {**os.environ, "WANDB_MODE": "offline"}
    names = [f"'{n}'" for n in ckpts]  # quoted: row names may carry spaces, @ and =
    results: dict[str, dict[str, dict]] = {}
    for title, (tag, extra) in TEST_SETS.items():
        run_dir = out / f"eval_{tag}"
        cmd = ["denoiselab-evaluate", f"ckpt=[{','.join(str(c) for c in ckpts.values())}]",
               f"names=[{','.join(names)}]", f"data.clean={DATA / 'dev' / 'clean'}",
               f"data.noise={DATA / 'dev' / 'noise'}", "data.every_snr=false", "data.seed=2024", *extra,
               "baselines=[noisy]", f"metrics=[{','.join(metrics[tag])}]", "num_workers=2",
               f"hydra.run.dir={run_dir}", "examples=1", "plots=false"]
        if max_files:
            cmd.append(f"data.max_files={max_files}")
        commands.append(cmd)
        subprocess.run([sys.executable, "-m", "denoiselab.cli.evaluate", *cmd[1:]], check=True, env=env, cwd=ROOT)
        results[title] = {r["system"]: r for r in csv.DictReader(open(run_dir / "summary.csv"))}
    return results


def run_logged(cmd: list[str], commands: list[list[str]]) -> None:
    """Run a command from the project root (W&B offline), recording it for the results file."""
    commands.append(cmd)
    subprocess.run(cmd, check=True, cwd=ROOT, env={**os.environ, "WANDB_MODE": "offline"})


def score_with_peers(ckpts: dict[str, str], test_set: list[str], scoring: list[str], out: Path, tag: str,
                     peers: tuple[str, ...], peer_py: Path, commands: list) -> Path:
    """Our checkpoints and the peers on the very same mixtures: denoiselab-evaluate freezes the test set
    (``test_set``: its data.* overrides) as wavs, the peers harness (its own venv) enhances them on one
    thread, and one evaluate call scores everything (peers through +processed). Without the peers venv,
    only our systems are scored. Folders: out/testset_run<tag>, out/peers<tag>, out/eval<tag>; returns
    out/eval<tag>/summary.csv."""
    evaluate = [sys.executable, "-m", "denoiselab.cli.evaluate"]
    systems = [f"ckpt=[{','.join(ckpts.values())}]", f"names=[{','.join(repr(n) for n in ckpts)}]"]
    found: list[str] = []
    if peer_py.exists() and PEERS_TOOL.exists():
        run_logged([*evaluate, *test_set, "baselines=[noisy]", "metrics=[si_sdr]", "plots=false", "examples=0",
                    "save_testset=true", f"hydra.run.dir={out / f'testset_run{tag}'}"], commands)
        testset = out / f"testset_run{tag}" / "testset"
        run_logged([str(peer_py), str(PEERS_TOOL), "--noisy-dir", str(testset / "noisy"), "--clean-dir",
                    str(testset / "clean"), "--out-dir", str(out / f"peers{tag}"), "--threads", "1", "--peers",
                    ",".join(peers)], commands)
        found = [n for n in peers if (out / f"peers{tag}" / "enhanced" / n).is_dir()]
        test_set = [f"data.noisy={testset / 'noisy'}", f"data.clean={testset / 'clean'}"]
    processed = [f"+processed.{n}={out / f'peers{tag}' / 'enhanced' / n}" for n in found]
    run_logged([*evaluate, *systems, *test_set, *scoring, *processed, f"hydra.run.dir={out / f'eval{tag}'}"],
               commands)
    return out / f"eval{tag}" / "summary.csv"
