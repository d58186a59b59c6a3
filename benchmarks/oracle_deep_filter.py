"""What a deep-filter output could add at best on a noise a model was fine-tuned on: an oracle complex filter
over the current and past noisy frames, fitted per file and per bin with the clean reference (least
squares), added to a model's output, as `model/mask_processor=deep_filter` adds its filter to the gain path:
Y(k, t) = G(k, t) S(k, t) + sum_i h_i(k) S(k, t - i). The taps are one set per file and bin (a noise that a
lab records is steady, so a filter that follows it need not change fast), fitted knowing the clean speech:
no model can learn more of a static filter than this, and a learnt filter that varies in time pays for it
with estimation error. If this ceiling is small, a deep-filter head is not where a fine-tune's missing
SI-SDR is.

    python benchmarks/oracle_deep_filter.py --noise NAME=DIR[,NAME=DIR] [--ckpt NAME=PATH,...]
                                            [--max-files N] [--results oracle_deep_filter.md]

Mixtures as denoiselab-evaluate mixes them (the dev speech, one mixture per utterance, SNR cycling -5..15 dB,
seed 2024) with each DIR's noise, e.g. a type's recordings that benchmarks/targeted.py fine-tuned on. Models:
the shipped default and each --ckpt (a fine-tuned checkpoint or model file).
"""

from __future__ import annotations

import argparse
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from denoiselab.core.model_files import load_denoiser  # noqa: E402
from denoiselab.core.processors import past_frames  # noqa: E402
from denoiselab.evaluation import metrics as M  # noqa: E402
from denoiselab.evaluation.evaluate import mixed_items  # noqa: E402

from _devsets import DATA  # noqa: E402
from _results import publish  # noqa: E402

SNRS = [-5, 0, 5, 10, 15]
#: (taps, bins): DeepFilterNet's low band (order 5 on the lowest 96 bins = 3 kHz, as model/mask_processor=
#: deep_filter), the same taps on every bin, and twice the memory on every bin
FILTERS = ((5, 96), (5, 257), (9, 257))


def oracle_filter(noisy: torch.Tensor, target: torch.Tensor, order: int, bins: int) -> torch.Tensor:
    """The least-squares static filter per bin (bins below ``bins``) over the current and order - 1 past
    noisy frames that best predicts ``target`` ([F, T] complex); returns its output, zero above ``bins``."""
    k = min(bins, noisy.shape[0])
    taps = past_frames(noisy[:k], order)                                 # [k, T, order]
    h = torch.linalg.lstsq(taps, target[:k].unsqueeze(-1)).solution      # [k, order, 1]
    out = torch.zeros_like(target)
    out[:k] = (taps @ h).squeeze(-1)
    return out


def score(model: torch.nn.Module, noisy: np.ndarray, clean: np.ndarray) -> list[float]:
    """SI-SDR (dB) of the model's output, then of the output plus each oracle filter of FILTERS."""
    with torch.no_grad():
        pred = model.predict(torch.from_numpy(noisy).unsqueeze(0))
    front = model.frontend
    spec, out = pred.noisy_spec[0].to(torch.complex128), pred.enhanced_spec[0].to(torch.complex128)
    ref = front.stft(torch.from_numpy(clean).unsqueeze(0))[0].to(torch.complex128)
    scores = [M.si_sdr(clean, pred.enhanced[0].numpy())]
    for order, bins in FILTERS:
        filtered = out + oracle_filter(spec, ref - out, order, bins)
        wave = front.istft(filtered.to(torch.complex64).unsqueeze(0), noisy.shape[-1])[0]
        scores.append(M.si_sdr(clean, wave.numpy()))
    return scores


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--noise", required=True, help="NAME=DIR[,NAME=DIR]: noise recordings to mix the dev speech with")
    p.add_argument("--ckpt", default="", help="NAME=PATH[,...]: models to score beside the shipped default")
    p.add_argument("--max-files", type=int, default=None)
    p.add_argument("--results", default="oracle_deep_filter.md")
    args = p.parse_args()
    models = {"generic default": load_denoiser("default").eval()}
    for entry in filter(None, args.ckpt.split(",")):
        name, path = entry.split("=", 1)
        models[name] = load_denoiser(path).eval()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    lines = ["# Oracle deep filter: what a complex filter over past frames could add to a model's output", "",
             f"Machine: {platform.machine()}, CPU; {date.today()}; commit {commit}. Command: `python "
             f"benchmarks/oracle_deep_filter.py --noise {args.noise}" + (f" --ckpt {args.ckpt}" if args.ckpt else "")
             + (f" --max-files {args.max_files}" if args.max_files else "") + "`. "
             "SI-SDR (dB), mean over the mixtures; `+ filter` columns: the model's output plus the least-squares "
             "static complex filter (per file and bin, fitted with the clean reference) over the current and past "
             "noisy frames, as `taps x bins`. n_fft 512, hop as each model's front end.", ""]
    for entry in args.noise.split(","):
        title, folder = entry.split("=", 1)
        items = mixed_items(DATA / "dev" / "clean", folder, SNRS, 2024, max_files=args.max_files, every_snr=False)
        lines += [f"## {title} ({len(items)} mixtures)", "",
                  "| model | SI-SDR | " + " | ".join(f"+ filter {o}x{b}" for o, b in FILTERS) + " |",
                  "|---|---|" + "---|" * len(FILTERS)]
        for name, model in models.items():
            rows = np.array([score(model, it.noisy, it.clean) for it in items])
            mean = rows.mean(0)
            lines.append(f"| {name} | {mean[0]:.2f} | "
                         + " | ".join(f"{m:.2f} ({m - mean[0]:+.2f})" for m in mean[1:]) + " |")
        lines.append("")
    publish(args.results, lines)


if __name__ == "__main__":
    main()
