"""Does subtracting more than the predicted noise help a fine-tuned model? (over-subtraction, strength > 1)

The enhance/evaluate CLIs accept strength in [0, 1] (1 = the model's own gain 1 - f). A fine-tune that left
residual noise might gain from a stronger gain 1 - s f (s > 1, floored at 0), chosen per lab on its own
noise. This scores the generic model and a fine-tuned checkpoint on the recordings of a targeted.py run
(the 55 dev utterances mixed once each with its finetune_noise, seed 2024, SNRs -5..15 dB: the same
mixtures as that run's eval_seen) at several strengths.

    python benchmarks/oversubtract.py --run outputs/bench/s52/targeted/esc10_chainsaw --strengths 1,1.1,1.2 \
        --results oversubtract_chainsaw.md
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _devsets import DATA  # noqa: E402
from _results import publish  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--run", required=True, help="a targeted.py type folder (finetune_noise/, finetuned_5min.ckpt)")
    p.add_argument("--ckpt", default="finetuned_5min.ckpt", help="the fine-tuned checkpoint, relative to --run")
    p.add_argument("--strengths", default="1,1.1,1.2")
    p.add_argument("--results", required=True)
    args = p.parse_args()
    from denoiselab.core.model_files import load_denoiser
    from denoiselab.evaluation import metrics as M
    from denoiselab.evaluation.evaluate import mixed_items

    run = Path(args.run)
    items = mixed_items(DATA / "dev" / "clean", run / "finetune_noise", [-5, 0, 5, 10, 15], 2024, 16000,
                        every_snr=False)
    strengths = [float(s) for s in args.strengths.split(",")]
    rows = []
    for name, path in (("generic default", "default"), ("fine-tuned", str(run / args.ckpt))):
        model = load_denoiser(path).eval()
        for s in strengths:
            pesq, sisdr = [], []
            for it in items:
                with torch.no_grad():
                    y = model.enhance(torch.from_numpy(it.noisy)[None], strength=s)[0].numpy()
                pesq.append(M.pesq(it.clean, y, it.rate, "wb"))
                sisdr.append(M.si_sdr(it.clean, y))
            rows.append((name, s, float(np.nanmean(pesq)), float(np.mean(sisdr))))
            print(rows[-1], flush=True)
    lines = [f"# Over-subtraction on {run.name}", "",
             f"Machine: {platform.machine()}, CPU; {time.strftime('%Y-%m-%d')}. Command: `python "
             f"benchmarks/oversubtract.py --run {args.run} --ckpt {args.ckpt} --strengths {args.strengths} "
             f"--results {args.results}`. {len(items)} mixtures: the dev utterances mixed once each with the "
             "recordings fine-tuned on (seed 2024, SNRs -5..15 dB), the gain 1 - strength x mask floored at 0.",
             "", "| model | strength | PESQ-WB | SI-SDR (dB) |", "|---|---|---|---|"]
    lines += [f"| {n} | {s:g} | {q:.3f} | {d:.2f} |" for n, s, q, d in rows]
    publish(args.results, lines)


if __name__ == "__main__":
    main()
