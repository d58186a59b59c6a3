"""Targeted denoising: the shipped model fine-tuned on one noise type for 2, 5 and 10 CPU-minutes, against
the generic model and the peers on recordings of that type it never saw, plus the forgetting check.

    python benchmarks/targeted.py [--types esc10_chainsaw,esc10_clock_tick,esc10_helicopter] [--minutes 2,5,10]
                                  [--generic-noise DIR] [--recipe "OVERRIDES"] [--results NAME.md] [--reuse]
                                  [--pick last|best] [--cumulative] [--init MODEL] [--trained-on TEXT]
                                  [--also-default] [--control]

For each type T (a noise category of ../shared/data/dev/noise, 8 recordings): its first 5 recordings
are the lab's "room noise" for fine-tuning, the last 3 the test noise. Fine-tuning:
`denoiselab-train experiment=finetune init_from=default data.clean=<train speech> data.noise=<5 files>`
with time_budget per stage (--init MODEL starts from another model file instead: it is then the "generic"
row): one run per budget from the generic model, as a user would run it (or, with
--cumulative, one run continued: 2, then 3 more, then 5 more minutes), each scored with its final
checkpoint (--pick best: the monitored best), with the general pool given by --generic-noise
(finetune.generic_noise). Test: every dev utterance once with the 3 held-out recordings, and again with
the 5 fine-tuning recordings (new speech: the lab's case, where the test room's noise is what was
recorded), SNR cycling -5..15 dB (seed 2024), scored by denoiselab-evaluate with DeepFilterNet3 and
GTCRN from the peers harness (its own venv, ../.venv-peers) through +processed. Forgetting: the 5-minute
model of each type on the general dev mixtures (all dev noise) next to the generic model. --control: one more
run of the middle budget with the general pool (--generic-noise) as its only noise, scored beside the others:
what the same minutes of further training give without the type, so the part of a gain that is learning the
type is the fine-tuned row's gain less the control's.
Writes benchmarks/results/targeted.md.
"""

from __future__ import annotations

import argparse
import csv
import functools
import os
import platform
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _devsets import DATA, run_logged, score_with_peers  # noqa: E402
from _results import publish  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
PEERS = ("gtcrn", "deepfilternet3")
METRICS = ("pesq_wb", "estoi", "si_sdr")
REFERENCE = "shipped default (reference)"


def summary(path: Path) -> dict[str, dict]:
    return {r["system"]: r for r in csv.DictReader(open(path))}


@functools.lru_cache(maxsize=None)
def steps_of(tdir: Path, system: str) -> str:
    """The optimizer step of a fine-tuned stage's (or the control's) scored checkpoint, '' for other systems."""
    from denoiselab.core.checkpoints import load_checkpoint

    ckpt = (tdir / f"finetuned_{system.split()[1]}min.ckpt" if system.startswith("fine-tuned ") else
            tdir.parent / f"control_{system.split()[1]}min.ckpt" if system.startswith("control ") else None)
    return str(load_checkpoint(ckpt).get("global_step", "")) if ckpt and ckpt.exists() else ""


def control_name(minutes: float) -> str:
    return f"control {minutes:g} min (general noise only)"


def finetune(init: str, noise: str | Path, seconds: float, run_dir: Path, recipe: list[str], pick: str,
             scored: Path, commands: list) -> None:
    """One experiment=finetune run from ``init`` on ``noise`` for ``seconds``; its ``pick`` checkpoint (last, or
    the monitored best) copied to ``scored``."""
    from denoiselab.core.checkpoints import best_checkpoint

    run_logged([sys.executable, "-m", "denoiselab.cli.train", "experiment=finetune", f"init_from={init}",
                f"data.clean={DATA / 'train' / 'clean'}", f"data.noise={noise}", f"time_budget={seconds:.0f}",
                "trainer.max_time=null", "auto_resume=true", f"hydra.run.dir={run_dir}", *recipe], commands)
    last = run_dir / "checkpoints" / "last.ckpt"
    shutil.copy2((best_checkpoint(run_dir) if pick == "best" else None) or last, scored)


def score(ckpts: dict[str, str], noise_dir: Path, tdir: Path, tag: str, peer_py: Path, commands: list) -> None:
    """The generic and fine-tuned models (and the peers, where their venv exists) on the 55 dev utterances
    mixed once each with the recordings in noise_dir: tdir/eval{tag}/summary.csv."""
    mixed = [f"data.clean={DATA / 'dev' / 'clean'}", f"data.noise={noise_dir}", "data.every_snr=false",
             "data.seed=2024"]
    scoring = ["baselines=[noisy]", f"metrics=[{','.join(METRICS)}]", "num_workers=2", "examples=1", "plots=false"]
    score_with_peers(ckpts, mixed, scoring, tdir, tag, PEERS, peer_py, commands)


def score_forgetting(ckpts: dict[str, str], run_dir: Path, commands: list) -> dict[str, dict]:
    """The models on the general dev mixtures (every dev noise, each utterance once): what fine-tuning cost."""
    run_logged([sys.executable, "-m", "denoiselab.cli.evaluate", f"ckpt=[{','.join(ckpts.values())}]",
                f"names=[{','.join(repr(n) for n in ckpts)}]", f"data.clean={DATA / 'dev' / 'clean'}",
                f"data.noise={DATA / 'dev' / 'noise'}", "data.every_snr=false", "data.seed=2024", "baselines=[noisy]",
                f"metrics=[{','.join(METRICS)}]", "num_workers=2", "examples=1", "plots=false",
                f"hydra.run.dir={run_dir}"], commands)
    return summary(run_dir / "summary.csv")


def forgetting_and_commands(forgetting: dict[str, dict], generic: str, commands: list) -> list[str]:
    """The results file's closing part: the forgetting table and every command that made the file."""
    lines = ["## Forgetting: general dev mixtures (all dev noise types)", "",
             "| system | PESQ-WB | ESTOI | SI-SDR (dB) | Δ PESQ vs generic |", "|---|---|---|---|---|"]
    g = forgetting[generic]
    for name, r in forgetting.items():
        lines.append(f"| {name} | {float(r['pesq_wb']):.3f} | {float(r['estoi']):.3f} | {float(r['si_sdr']):.2f} | "
                     f"{float(r['pesq_wb']) - float(g['pesq_wb']):+.3f} |")
    return lines + ["", "Commands:", "", "```", *[" ".join(str(c) for c in cmd) for cmd in commands], "```"]


def scores_and_gains(r: dict, g: dict) -> str:
    """A results row's metric cells and its gains over the generic row ``g`` (PESQ-WB, ESTOI, SI-SDR, deltas)."""
    return (f"{float(r['pesq_wb']):.3f} | {float(r['estoi']):.3f} | {float(r['si_sdr']):.2f} | "
            f"{float(r['pesq_wb']) - float(g['pesq_wb']):+.3f} | {float(r['si_sdr']) - float(g['si_sdr']):+.2f} |")


def control_note(minutes: float, pool: str, what: str) -> list[str]:
    """The results file's sentence on the control row (``what``: the type, the take)."""
    return [f"Control row: the same fine-tuning command for {minutes:g} minutes with the general pool "
            f"(`{pool}`) as its only noise, so the fine-tuned rows' gain less the control's "
            f"is what learning {what} adds beyond further training.", ""]


def generic_name(init: str) -> str:
    """The table row of the model fine-tuning starts from."""
    return "generic default" if init == "default" else f"generic ({Path(init).name})"


def finetune_and_score(tdir: Path, files: list[Path], budgets: list[float], recipe: list[str], peer_py: Path,
                       commands: list, pick: str = "last", separate: bool = True, init: str = "default",
                       keep: bool = False, extra: dict[str, str] | None = None) -> list[float]:
    """Split the type's recordings, fine-tune for each budget (``separate``: one run per budget from the
    generic model, as a user would; else one run continued for the cumulative budgets), copy each stage's
    ``pick`` checkpoint (last, or the monitored best) to tdir/finetuned_<N>min.ckpt and score the stages on
    both test conditions. ``keep`` (separate runs only): a budget whose run finished in an earlier
    invocation (its finetuned_<N>min.ckpt exists) is not trained again; returns those budgets. ``extra``:
    more {row: model} to score after the stages (the control, the shipped model as a reference)."""
    keep = keep and separate
    finished = {m for m in budgets if keep and (tdir / f"finetuned_{m:g}min.ckpt").exists()}
    for old in tdir.glob("finetune*"):  # a half-finished type: its time budgets would no longer add up
        if old.is_dir() and old.name != "finetune_noise" and old.name not in {f"finetune_{m:g}min" for m in finished}:
            shutil.rmtree(old)
    for part, chosen in (("finetune_noise", files[:5]), ("test_noise", files[5:])):
        (tdir / part).mkdir(parents=True, exist_ok=True)
        for f in chosen:
            link = tdir / part / f.name
            if not link.exists():
                link.symlink_to(f)
    stages: dict[str, Path] = {}
    done = 0.0
    for minutes in budgets:
        run_dir = tdir / (f"finetune_{minutes:g}min" if separate else "finetune")
        seconds = minutes * 60 if separate else (minutes - done) * 60
        scored = tdir / f"finetuned_{minutes:g}min.ckpt"
        if minutes in finished:
            stages[f"fine-tuned {minutes:g} min"] = scored
            continue
        finetune(init, tdir / "finetune_noise", seconds, run_dir, recipe, pick, scored, commands)
        done = minutes
        stages[f"fine-tuned {minutes:g} min"] = scored
    ckpts = {generic_name(init): init, **{n: str(c) for n, c in stages.items()}, **(extra or {})}
    for tag, noise_dir in (("", tdir / "test_noise"), ("_seen", tdir / "finetune_noise")):
        score(ckpts, noise_dir, tdir, tag, peer_py, commands)
    return sorted(finished)


def add_start_arguments(p: argparse.ArgumentParser) -> None:
    """--init and --also-default, shared with targeted_takes.py."""
    p.add_argument("--init", default="default",
                   help="the model fine-tuning starts from (init_from): default or a model file")
    p.add_argument("--also-default", action="store_true",
                   help="with --init: score the shipped model too, as a reference row (and in the forgetting table)")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--types", default="esc10_chainsaw,esc10_clock_tick,esc10_helicopter")
    p.add_argument("--minutes", default="2,5,10", help="cumulative fine-tuning budgets (CPU minutes)")
    p.add_argument("--peers-venv", default=str(ROOT.parent / ".venv-peers"))
    p.add_argument("--out", default=str(ROOT / "outputs" / "bench" / "targeted"))
    p.add_argument("--generic-noise", default="builtin",
                   help="finetune.generic_noise: the general pool that keeps the model from forgetting")
    p.add_argument("--recipe", default="", help="more overrides for every fine-tuning run (space-separated)")
    p.add_argument("--results", default="targeted.md", help="file name under benchmarks/results/")
    p.add_argument("--pick", choices=("last", "best"), default="last",
                   help="checkpoint scored per stage: the final weights (what the README tells users to take "
                        "after a decayed lr) or the monitored best on the small validation split")
    p.add_argument("--cumulative", action="store_true",
                   help="one run continued through the budgets (each stage restarts the lr schedule) instead "
                        "of one run per budget from the generic model")
    p.add_argument("--reuse", action="store_true",
                   help="keep what an earlier invocation into the same --out finished: types scored with every "
                        "budget asked for, and (one run per budget) each fine-tuning run that finished, so adding "
                        "a budget trains only that one; the types are scored again")
    add_start_arguments(p)
    p.add_argument("--trained-on", default=None,
                   help="what the --init model was trained on, for the results file's caveat (default: the "
                        "shipped model's training noise, every type of these included)")
    p.add_argument("--finetuned-on", default=None,
                   help="where the reused fine-tuned checkpoints were trained, when not on this machine (e.g. the "
                        "GPU of benchmarks/gpu_finetune.sh), for the results file's first line")
    p.add_argument("--control", action="store_true",
                   help="also fine-tune for the middle budget on the general pool alone (--generic-noise, a "
                        "folder or list) and score it on every test: the gain of further training without the type")
    args = p.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs {DATA} (real audio)")
    out = Path(args.out)
    budgets = [float(m) for m in args.minutes.split(",")]
    recipe = [f"finetune.generic_noise={args.generic_noise}", *args.recipe.split()]
    peer_py = Path(args.peers_venv) / "bin" / "python"
    commands: list[list[str]] = []
    results: dict[str, dict] = {}
    reused: list[str] = []
    kept: dict[str, list[float]] = {}
    seen: dict[str, dict] = {}
    mid_minutes = budgets[min(1, len(budgets) - 1)]
    extra: dict[str, str] = {}  # rows scored beside the fine-tuned ones, in every table
    if args.control:
        if args.generic_noise == "builtin":
            sys.exit("--control needs --generic-noise DIR (a folder or list of general noise)")
        control = out / f"control_{mid_minutes:g}min.ckpt"
        if not (args.reuse and control.exists()):
            run_dir = out / f"control_{mid_minutes:g}min"
            shutil.rmtree(run_dir, ignore_errors=True)  # a half-finished run's time budget would not add up
            finetune(args.init, args.generic_noise, mid_minutes * 60, run_dir, recipe, args.pick, control, commands)
        extra[control_name(mid_minutes)] = str(control)
    if args.also_default and args.init != "default":  # without --init the generic row is the shipped model
        extra[REFERENCE] = "default"
    for noise_type in args.types.split(","):
        files = sorted((DATA / "dev" / "noise").glob(f"{noise_type}_*.flac"))
        if len(files) < 4:
            sys.exit(f"{noise_type}: only {len(files)} dev recordings")
        tdir = out / noise_type
        done = tdir / "eval" / "summary.csv"
        if args.reuse and done.exists() and all(f"fine-tuned {m:g} min" in summary(done) for m in budgets):
            print(f"{noise_type}: reusing {tdir / 'eval'}", flush=True)
            reused.append(noise_type)
        else:
            kept[noise_type] = finetune_and_score(tdir, files, budgets, recipe, peer_py, commands, args.pick,
                                                  not args.cumulative, args.init, keep=args.reuse, extra=extra)
        results[noise_type] = summary(tdir / "eval" / "summary.csv")
        if (tdir / "eval_seen" / "summary.csv").exists():
            seen[noise_type] = summary(tdir / "eval_seen" / "summary.csv")
    # forgetting: the 5-minute models on the general dev mixtures
    mid = f"fine-tuned {mid_minutes:g} min"
    generic = generic_name(args.init)
    ckpts = {generic: args.init, **{f"{t} {mid}": str(out / t / f"finetuned_{mid_minutes:g}min.ckpt")
                                    for t in results}, **extra}
    forgetting = score_forgetting(ckpts, out / "forgetting", commands)
    start = "the shipped model" if args.init == "default" else f"`{args.init}`"
    lines = [f"# Targeted denoising: fine-tuning {start} on one noise type", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, no GPU (this workplace's CPU box); "
             f"{time.strftime('%Y-%m-%d')}. Budgets are wall-clock minutes of fine-tuning on "
             f"{args.finetuned_on or 'this machine'} (`time_budget`; scoring on this machine), "
             f"{'cumulative within one run' if args.cumulative else 'one run per budget from the generic model'}"
             f"; each stage is scored with its "
             f"{'monitored-best' if args.pick == 'best' else 'final (last.ckpt)'} checkpoint. "
             f"Fine-tuning: `experiment=finetune` on the type's first 5 dev recordings (about 25 s of "
             f"noise; the last fifth of each held out for validation), speech from train/clean, plus "
             f"`{' '.join(recipe)}`. Test: the 55 dev utterances once each, SNR cycling -5/0/5/10/15 dB, with "
             f"the type's other 3 recordings, and with the 5 recordings it was fine-tuned on (new speech). "
             f"Peers: {', '.join(PEERS) if peer_py.exists() else 'not run (no peers venv)'}.", "",
             f"Caveat: {args.trained_on}" if args.trained_on else
             "Caveat: the generic model was trained on ESC-10 clips 0-31 of every type (train/noise), so no "
             "type here is new to it: this measures specialising a model on a type it knows from about 25 s "
             "of new recordings, not teaching it an unknown noise.", ""]
    if args.control:
        lines += control_note(mid_minutes, args.generic_noise, "the type")
    if reused:
        lines += [f"Reused from an earlier invocation (`--reuse`): {', '.join(reused)}; its commands were the same "
                  "as those below with its own type.", ""]
    if any(kept.values()):
        how = (f"trained on {args.finetuned_on}, not by a command below" if args.finetuned_on else
               "their training commands the same as those below with their own budget")
        lines += [f"Fine-tuning runs reused from an earlier invocation (`--reuse`), {how}: " + "; ".join(
                      f"{t} {', '.join(f'{m:g}' for m in ms)} min" for t, ms in kept.items() if ms) + ".", ""]
    for noise_type, rows in results.items():
        lines += [f"## {noise_type}", ""]
        for title, table in (("the type's held-out recordings (never seen in fine-tuning)", rows),
                             ("the recordings it was fine-tuned on, new speech (a lab's own room noise)",
                              seen.get(noise_type))):
            if not table:
                continue
            lines += [f"On {title}:", "", "| system | step of checkpoint | PESQ-WB | ESTOI | SI-SDR (dB) | "
                      "Δ PESQ vs generic | Δ SI-SDR vs generic |", "|---|---|---|---|---|---|---|"]
            g = table[generic]
            for name, r in table.items():
                lines.append(f"| {name} | {steps_of(out / noise_type, name)} | {scores_and_gains(r, g)}")
            lines.append("")
    lines += forgetting_and_commands(forgetting, generic, commands)
    publish(args.results, lines)


if __name__ == "__main__":
    main()
