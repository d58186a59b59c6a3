"""finetune.keep_start swept after the fact: blends of fine-tuned and starting weights, scored like targeted.py.

    python benchmarks/keep_start.py --run outputs/bench/targeted [--types T1,T2] [--minutes 5]
                                    [--shares 0.125,0.25,0.375,0.5] [--results keep_start.md]

The blend a run with finetune.keep_start=S saves depends only on the weights it trained, which do not
depend on S (the blend is made when a checkpoint is written), so one fine-tuning run per type gives every
share: --run is a benchmarks/targeted.py --out folder; for each type its `finetuned_<minutes>min.ckpt` is
blended with its init_from model by the same function the training module uses
(denoiselab.training.finetune.blend_weights), and the blends are scored on the test mixtures targeted.py
used (the type's recordings fine-tuned on, with new speech, and its other recordings; dev speech, SNR
cycling -5..15 dB, seed 2024) and on the general dev mixtures (the forgetting check).
Writes benchmarks/results/keep_start.md (--results).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from targeted import score, summary  # noqa: E402

from _devsets import DATA  # noqa: E402
from _results import publish  # noqa: E402

GENERIC = "generic"
NO_PEERS = Path("/nonexistent")  # targeted.py's scoring without the peers: their rows are in its results


def write_blends(ckpt: Path, shares: list[float], out: Path) -> tuple[str, dict[float, Path]]:
    """The checkpoint's trained weights blended with its init_from model at each share; returns the
    init_from path and the blend files."""
    from denoiselab.core.checkpoints import load_checkpoint
    from denoiselab.core.denoiser import Denoiser
    from denoiselab.core.model_files import read_model, save_inference
    from denoiselab.training.finetune import blend_weights
    from denoiselab.training.module import TRAINED_STATE_KEY

    raw = load_checkpoint(ckpt)
    spec, _, extra = read_model(ckpt)
    trained = {k[len("denoiser."):]: v for k, v in raw.get(TRAINED_STATE_KEY, raw["state_dict"]).items()
               if k.startswith("denoiser.")}
    start_path = extra["init_from"]["path"]
    _, start, _ = read_model(start_path)
    files = {}
    for share in shares:
        denoiser = Denoiser.from_spec(spec)
        denoiser.load_state_dict(blend_weights(trained, start, share))
        files[share] = save_inference(denoiser, out / f"{ckpt.stem}_keep{share:g}.pt",
                                      {**extra, "init_from": {**extra["init_from"], "keep_start": share}})
    return start_path, files


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", required=True, help="a benchmarks/targeted.py --out folder")
    p.add_argument("--types", default="", help="comma-separated (default: every type fine-tuned in --run)")
    p.add_argument("--minutes", type=float, default=5.0, help="the fine-tuning budget whose checkpoints to blend")
    p.add_argument("--shares", default="0.125,0.25,0.375,0.5")
    p.add_argument("--results", default="keep_start.md")
    args = p.parse_args()
    run = Path(args.run)
    name = f"finetuned_{args.minutes:g}min.ckpt"
    types = args.types.split(",") if args.types else sorted(d.name for d in run.iterdir() if (d / name).is_file())
    if not types:
        sys.exit(f"{run}: no type folder holds {name}")
    # keep 0 (the weights as trained) is blended too: a checkpoint saved with finetune.keep_start > 0 holds
    # a blend, and its trained weights only under TRAINED_STATE_KEY
    shares = sorted({0.0, *(float(s) for s in args.shares.split(","))})
    out = run / "keep_start"
    commands: list[list[str]] = []
    seen, unseen, general_ckpts = {}, {}, {GENERIC: ""}
    for t in types:
        start, blends = write_blends(run / t / name, shares, out / t)
        general_ckpts[GENERIC] = start
        ckpts = {GENERIC: start, **{f"keep {s:g}": str(f) for s, f in blends.items()}}
        # the mixtures targeted.py scored: the type's recordings fine-tuned on, and its other ones
        score(ckpts, run / t / "finetune_noise", out / t, "_seen", NO_PEERS, commands)
        score(ckpts, run / t / "test_noise", out / t, "", NO_PEERS, commands)
        seen[t], unseen[t] = summary(out / t / "eval_seen" / "summary.csv"), summary(out / t / "eval" / "summary.csv")
        general_ckpts.update({f"{t} {n}": c for n, c in ckpts.items() if n != GENERIC})
    score(general_ckpts, DATA / "dev" / "noise", out, "_forgetting", NO_PEERS, commands)  # the general dev mixtures
    general = summary(out / "eval_forgetting" / "summary.csv")

    def f(row: dict, key: str) -> float:
        return float(row[key])

    lines = ["# finetune.keep_start: blends of the fine-tuned and the starting weights", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, no GPU; {time.strftime('%Y-%m-%d')}. "
             f"From `{run}` (a `benchmarks/targeted.py` run): each type's {args.minutes:g}-minute fine-tuned "
             "checkpoint blended with its starting model, `(1 - keep) x trained + keep x start` "
             "(`blend_weights`, what `finetune.keep_start=keep` saves), keep 0 being the weights as "
             "trained. Gains are against the starting (generic) model on the same mixtures; general: the "
             "general dev mixtures (all dev noise types), the forgetting check.", "",
             "| type | keep | recorded noise PESQ-WB | SI-SDR (dB) | gain | other takes gain | general PESQ-WB | "
             "general Δ vs generic |", "|---|---|---|---|---|---|---|---|"]
    g0 = general[GENERIC]
    for t in types:
        for label, system in [(f"{s:g}", f"keep {s:g}") for s in shares]:
            r, u, gen = seen[t][system], unseen[t][system], general[f"{t} {system}"]
            s0, u0 = seen[t][GENERIC], unseen[t][GENERIC]
            lines.append(
                f"| {t} | {label} | {f(r, 'pesq_wb'):.3f} | {f(r, 'si_sdr'):.2f} | "
                f"{f(r, 'pesq_wb') - f(s0, 'pesq_wb'):+.3f} / {f(r, 'si_sdr') - f(s0, 'si_sdr'):+.2f} dB | "
                f"{f(u, 'pesq_wb') - f(u0, 'pesq_wb'):+.3f} / {f(u, 'si_sdr') - f(u0, 'si_sdr'):+.2f} dB | "
                f"{f(gen, 'pesq_wb'):.3f} | {f(gen, 'pesq_wb') - f(g0, 'pesq_wb'):+.3f} / "
                f"{f(gen, 'si_sdr') - f(g0, 'si_sdr'):+.2f} dB |")
    lines += ["", f"Generic model on the general dev mixtures: {f(g0, 'pesq_wb'):.3f} PESQ-WB, "
              f"{f(g0, 'si_sdr'):.2f} dB SI-SDR.", "", "Commands:", "",
              *[f"    {' '.join(c)}" for c in commands]]
    publish(args.results, lines)


if __name__ == "__main__":
    main()
