"""Quality on real dev mixtures: classic baselines, every trained backbone, the shipped model and the
offline peer denoisers, all scored by denoiselab-evaluate on the very same files.

    python benchmarks/quality.py --sweep outputs/bench/backbones_shared/sweep \
        [--extra NAME=CKPT ...] [--peers-venv ../.venv-peers] [--minutes 12]

1. (without --sweep) trains every backbone with the backbone-table recipe (the default-model recipe
   with the reference loss and a constant lr) for the same wall-clock budget:
   `denoiselab-train -m experiment=backbone_table model/net=<nets> trainer.max_time=<budget>`
   (--extra adds other checkpoints to the tables);
2. freezes the dev test set: each of the 55 `../shared/data/dev/clean` utterances mixed once with
   dev noise at an SNR cycling through -5/0/5/10/15 dB (seed 2024), written as noisy/clean wavs;
3. runs the peers harness (`../shared/tools/peers/run_peers.py`, its own venv: see its README) on
   those wavs, one thread, for their outputs and RTF;
4. scores everything with one `denoiselab-evaluate` call (PESQ-WB, ESTOI, SI-SDR, DNSMOS OVRL),
   the peers through `+processed.<peer>=<their output folder>`;
5. writes benchmarks/results/quality.md (everything), backbones.md (the backbone table: quality,
   parameters, RTF on one thread, training steps and time) and peers.md (peers vs the shipped model,
   with the targets checked).
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from _facts import model_facts
from _results import publish

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PEERS_TOOL = ROOT.parent / "shared" / "tools" / "peers" / "run_peers.py"
SHIPPED = ROOT / "src" / "denoiselab" / "pretrained" / "default.pt"
NETS = ("unet", "resnet", "lstm", "crn", "conformer", "dpcrn", "dpunet")
PEERS = ("noisereduce_stationary", "noisereduce_nonstationary", "rnnoise", "gtcrn", "deepfilternet3", "dfn_onnx")
METRICS = ("pesq_wb", "estoi", "si_sdr", "dnsmos_ovrl")
SNRS = (-5, 0, 5, 10, 15)
SEED = 2024


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--sweep", default=None, help="multirun dir of a finished backbone sweep (skips training)")
    p.add_argument("--minutes", type=float, default=12.0, help="training budget per backbone (without --sweep)")
    p.add_argument("--nets", default=",".join(NETS))
    p.add_argument("--peers-venv", default=str(ROOT.parent / ".venv-peers"))
    p.add_argument("--shipped", default=str(SHIPPED))
    p.add_argument("--extra", nargs="*", default=[], help="more checkpoints for quality.md: NAME=PATH")
    p.add_argument("--job", nargs="*", default=[],
                   help="more backbone-table runs trained with the same recipe and budget: NAME=RUN_DIR")
    p.add_argument("--reuse-peers", default=None,
                   help="an earlier quality.py output dir: reuse its peer outputs if its test set is sample-identical")
    p.add_argument("--reuse-eval", default=None,
                   help="an earlier quality.py output dir with a sample-identical test set: keep its scores of the "
                        "baselines, peers and checkpoints not modified since, score only the rest")
    p.add_argument("--peers", default=",".join(PEERS))
    p.add_argument("--max-files", type=int, default=None, help="dev utterances to use (default: all 55; smoke runs)")
    p.add_argument("--out", default=None)
    args = p.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs {DATA} (real audio)")
    out = Path(args.out or ROOT / "outputs" / "bench" / f"quality_{time.strftime('%m%d-%H%M')}")
    env = {**os.environ, "WANDB_MODE": "offline"}
    commands: list[list[str]] = []

    sweep = Path(args.sweep) if args.sweep else out / "sweep"
    if not args.sweep:
        m, s = int(args.minutes), int(round((args.minutes - int(args.minutes)) * 60))
        cmd = [sys.executable, "-m", "denoiselab.cli.train", "-m", f"model/net={args.nets}", *table_recipe(m, s),
               f"hydra.sweep.dir={sweep}"]
        subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    jobs = {j.name.split("_", 1)[1]: j for j in sorted(sweep.iterdir()) if (j / "checkpoints" / "last.ckpt").exists()}
    commands.append(["denoiselab-train", "-m", f"model/net={','.join(jobs)}", *table_recipe(int(args.minutes), 0),
                     f"hydra.sweep.dir={sweep}"])
    for spec in args.job:
        name, _, path = spec.partition("=")
        jobs[name] = Path(path)
        commands.append(["denoiselab-train", f"model/net={name}", *table_recipe(int(args.minutes), 0),
                         f"hydra.run.dir={path}"])

    # 2. the frozen test set
    sys.path.insert(0, str(ROOT / "src"))
    from denoiselab.evaluation.evaluate import mixed_items, write_testset

    items = mixed_items(DATA / "dev" / "clean", DATA / "dev" / "noise", SNRS, SEED, max_files=args.max_files,
                        every_snr=False)
    testset = write_testset(items, out / "testset")

    # 3. peers, in their own venv
    peer_py = Path(args.peers_venv) / "bin" / "python"
    peers_rtf: dict[str, float] = {}
    harness: dict[str, dict] = {}
    old = Path(args.reuse_peers) if args.reuse_peers else None
    if old is not None and _same_files(old / "testset" / "noisy", testset / "noisy"):
        (out / "peers").mkdir(parents=True, exist_ok=True)
        if not (out / "peers" / "enhanced").exists():
            (out / "peers" / "enhanced").symlink_to((old / "peers" / "enhanced").resolve())
        for r in csv.DictReader(open(old / "peers" / "summary.csv")):
            peers_rtf[r["peer"]] = _float(r.get("rtf"))
            harness[r["peer"]] = r
        print(f"peers: reusing {old / 'peers'} (its test set is sample-identical to this one)")
        commands.append([f"# peer outputs reused from {old / 'peers'} (run_peers.py as listed in that run's results)"])
    elif old is not None:
        sys.exit(f"--reuse-peers {old}: its test set differs from this one; run the peers again")
    elif peer_py.exists() and PEERS_TOOL.exists():
        cmd = [str(peer_py), str(PEERS_TOOL), "--noisy-dir", str(testset / "noisy"), "--clean-dir",
               str(testset / "clean"), "--out-dir", str(out / "peers"), "--threads", "1", "--peers", args.peers]
        commands.append(cmd)
        subprocess.run(cmd, check=True, cwd=ROOT)
        for r in csv.DictReader(open(out / "peers" / "summary.csv")):
            peers_rtf[r["peer"]] = _float(r.get("rtf"))
            harness[r["peer"]] = r
    else:
        print(f"peers venv not found at {peer_py}: peers are left out (see {PEERS_TOOL.parent / 'README.md'})")
    peers = [name for name in PEERS if (out / "peers" / "enhanced" / name).is_dir()]

    # 4. one scoring run for all systems
    ckpts = {name: _best(job) for name, job in jobs.items()}
    for spec in args.extra:
        name, _, path = spec.partition("=")
        ckpts[name] = Path(path)
    if Path(args.shipped).exists():
        ckpts["shipped default"] = Path(args.shipped)
    kept = _reusable_rows(Path(args.reuse_eval), testset, ckpts) if args.reuse_eval else {}
    todo = {n: c for n, c in ckpts.items() if n not in kept}
    baselines = [b for b in ("noisy", "specsub", "wiener", "noisereduce") if b == "noisy" or b not in kept]
    cmd = [sys.executable, "-m", "denoiselab.cli.evaluate", f"ckpt=[{','.join(str(c) for c in todo.values())}]",
           f"names=[{','.join(_q(n) for n in todo)}]", f"data.noisy={testset / 'noisy'}",
           f"data.clean={testset / 'clean'}", f"baselines=[{','.join(baselines)}]",
           f"metrics=[{','.join(METRICS)}]", "num_workers=2", f"hydra.run.dir={out / 'eval'}", "examples=2",
           *[f"+processed.{name}={out / 'peers' / 'enhanced' / name}" for name in peers if name not in kept]]
    if kept:
        commands.append([f"# scores of {', '.join(kept)} kept from {Path(args.reuse_eval) / 'eval'} "
                         "(same test set; checkpoints unchanged since)"])
    commands.append(cmd)
    subprocess.run(cmd, check=True, env=env, cwd=ROOT)
    rows = {**kept, **{r["system"]: r for r in csv.DictReader(open(out / "eval" / "summary.csv"))}}

    # 5. model facts: parameters, RTF on one thread, training steps and time
    facts = {name: model_facts(ck) for name, ck in ckpts.items()}
    for name, rtf in peers_rtf.items():
        facts.setdefault(name, {})["rtf"] = rtf
    _write(out, rows, facts, jobs, peers, items, commands, harness, smoke=bool(args.max_files))


def table_recipe(minutes: int, seconds: int) -> list[str]:
    """The backbone table's recipe (conf/experiment/backbone_table.yaml) at the chosen budget."""
    return ["experiment=backbone_table", f"trainer.max_time=00:00:{minutes:02d}:{seconds:02d}"]


def _reusable_rows(old: Path, testset: Path, ckpts: dict[str, Path]) -> dict[str, dict]:
    """Summary rows of an earlier run on the same test set that still hold: baselines and peers, and
    checkpoints given under the same name and path that were not modified after that run."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from omegaconf import OmegaConf

    if not all(_same_files(old / "testset" / d, testset / d) for d in ("noisy", "clean")):
        sys.exit(f"--reuse-eval {old}: its test set differs from this one")
    summary = old / "eval" / "summary.csv"
    old_overrides = list(OmegaConf.load(old / "eval" / ".hydra" / "overrides.yaml"))
    parsed = {o.key_or_group: o.value() for o in OverridesParser.create().parse_overrides(old_overrides)}
    old_ckpts = {n: _resolved(p) for n, p in zip(parsed.get("names", []), parsed.get("ckpt", []))}
    rows = {r["system"]: r for r in csv.DictReader(open(summary))}
    kept = {}
    for name, row in rows.items():
        if name not in old_ckpts:  # a baseline or another tool's outputs
            kept[name] = row
        elif name in ckpts and old_ckpts[name] == _resolved(ckpts[name]) \
                and ckpts[name].stat().st_mtime < summary.stat().st_mtime:
            kept[name] = row
    return kept


def _resolved(path) -> Path:
    p = Path(str(path))
    return (p if p.is_absolute() else ROOT / p).resolve()


def _same_files(a: Path, b: Path) -> bool:
    """Same names, rates and samples (not bytes: libsndfile stamps the time into the PEAK chunk)."""
    import numpy as np
    import soundfile as sf

    names = sorted(p.name for p in a.glob("*.wav"))
    if not names or names != sorted(p.name for p in b.glob("*.wav")):
        return False
    for n in names:
        (x, rx), (y, ry) = sf.read(a / n, dtype="float32"), sf.read(b / n, dtype="float32")
        if rx != ry or x.shape != y.shape or not np.array_equal(x, y):
            return False
    return True


def _best(job: Path) -> Path:
    """The monitored-best checkpoint (as train, demo and compare pick it), else last.ckpt."""
    from denoiselab.core.checkpoints import best_checkpoint

    return best_checkpoint(job) or job / "checkpoints" / "last.ckpt"


def _q(name: str) -> str:
    return f"'{name}'" if " " in name else name


def _float(x) -> float:
    try:
        return float(x)
    except (TypeError, ValueError):
        return math.nan


def _cell(row: dict, key: str, fmt: str) -> str:
    v = _float(row.get(key))
    return "–" if math.isnan(v) else format(v, fmt)


def _table(names: list[str], rows: dict, facts: dict, extra: bool) -> list[str]:
    head = "| system | PESQ-WB | ESTOI | SI-SDR (dB) | DNSMOS OVRL | Δ PESQ | Δ SI-SDR (dB) |"
    sep = "|---|---|---|---|---|---|---|"
    if extra:
        head += " params | RTF (1 thread) | train steps | train min |"
        sep += "---|---|---|---|"
    lines = [head, sep]
    for n in names:
        if n not in rows:
            continue
        r, f = rows[n], facts.get(n, {})
        line = (f"| {n} | {_cell(r, 'pesq_wb', '.3f')} | {_cell(r, 'estoi', '.3f')} | {_cell(r, 'si_sdr', '.2f')} | "
                f"{_cell(r, 'dnsmos_ovrl', '.3f')} | {_cell(r, 'd_pesq_wb', '+.3f')} | "
                f"{_cell(r, 'd_si_sdr', '+.2f')} |")
        if extra:
            line += (f" {format(f['params'], ',') if 'params' in f else '–'} | "
                     f"{format(f['rtf'], '.4f') if not math.isnan(f.get('rtf', math.nan)) else '–'} | "
                     f"{f.get('steps', '–')} | {format(f['train_min'], '.1f') if 'train_min' in f else '–'} |")
        lines.append(line)
    return lines


def _write(out: Path, rows: dict, facts: dict, jobs: dict, peers: list[str], items, commands, harness: dict,
           smoke: bool) -> None:
    """Publish to benchmarks/results (a smoke run on a subset writes to OUT/results instead)."""
    def emit(name: str, lines: list[str]) -> None:
        if not smoke:
            publish(name, lines)
            return
        (out / "results").mkdir(exist_ok=True)
        (out / "results" / name).write_text("\n".join(lines) + "\n")

    machine = (f"{platform.machine()}, {os.cpu_count()} CPU cores, no GPU (this workplace's CPU box); "
               f"{time.strftime('%Y-%m-%d')}")
    testset = (f"{len(items)} mixtures: every `../shared/data/dev/clean` utterance once, with dev noise at an SNR "
               f"cycling through {'/'.join(str(s) for s in SNRS)} dB (seed {SEED}); files in `{out / 'testset'}`.")
    how = ["```", *(" ".join(str(c) for c in cmd) for cmd in commands), "```"]
    classic = ["noisy", "specsub", "wiener", "noisereduce"]
    models = [n for n in rows if n not in classic and n not in peers]
    emit("quality.md", [
        "# Quality on the dev mixtures: baselines, backbones, shipped model and peers", "", f"Machine: {machine}.",
        f"Test set: {testset}", "Every row scored by `denoiselab-evaluate` on these files (peers through "
        "`+processed.<peer>=<their outputs>`; rows kept from an earlier run on the sample-identical test set are "
        "named under Commands).", "", *_table(classic + models + peers, rows, facts, extra=True),
        "", "Commands:", "", *how, "", f"Per-file scores, plots, examples: `{out / 'eval'}` (not committed)."])
    emit("backbones.md", [
        "# Backbone table: same recipe, same budget, real dev mixtures", "", f"Machine: {machine}.",
        "Recipe: `conf/experiment/linear_bins.yaml` (the previous default model's) with the reference loss for "
        "every backbone (train on "
        "`../shared/data/train`, SNR −5…15 dB, device augmentations, 4 s clips, batch 8, STFT 512/256, AdamW 2e-3, "
        "`loss=noise_mask` ½‖f⊙S − N‖²), default backbone sizes, the same `trainer.max_time` wall-clock budget each, "
        "one after the other on this machine with nothing else running; scored with its best checkpoint (by val "
        "SI-SDR; its steps and training minutes are the columns).", f"Test set: {testset}", "",
        *_table(["noisy", *jobs], rows, facts, extra=True), "", "Commands:", "", *how])
    target = "shipped default" if "shipped default" in rows else (models[0] if models else None)
    lines = ["# Peers side by side: offline peer denoisers vs the shipped model", "", f"Machine: {machine}.",
             f"Test set: {testset}", "Peers run by `../shared/tools/peers/run_peers.py` (one thread; RTF from "
             "its own timer, model load excluded); every row scored by `denoiselab-evaluate` on these files.", "",
             *_table(["noisy", "specsub", "wiener", "noisereduce", *peers, *(n for n in models if n == target)],
                     rows, facts, extra=True)]
    if target:
        lines += ["", f"Targets for `{target}`:", ""]
        t = rows[target]
        for other in ["noisy", "specsub", "wiener", "noisereduce", "noisereduce_nonstationary", "rnnoise"]:
            if other in rows:
                ok = all(_float(t[m]) > _float(rows[other][m]) for m in ("pesq_wb", "estoi", "si_sdr"))
                lines.append(f"- above {other} on PESQ-WB, ESTOI and SI-SDR: {'yes' if ok else 'NO'}")
        for other in ("gtcrn", "deepfilternet3"):
            if other in rows:
                gaps = ", ".join(f"{m} {_float(t[m]) - _float(rows[other][m]):+.3f}" for m in METRICS)
                lines.append(f"- vs {other} (shipped − peer): {gaps}")
    checks = [f"{n}: PESQ-WB {_float(harness[n].get('pesq_wb')) - _float(rows[n]['pesq_wb']):+.3f}, "
              f"SI-SDR {_float(harness[n].get('si_sdr')) - _float(rows[n]['si_sdr']):+.3f} dB"
              for n in ["noisy", *peers] if n in harness and n in rows]
    if checks:
        lines += ["", "Cross-check of the scorers (the harness's own mean minus denoiselab-evaluate's, same files): "
                  + "; ".join(checks) + "."]
    lines += ["", "Commands:", "", *how]
    emit("peers.md", lines)


if __name__ == "__main__":
    main()
