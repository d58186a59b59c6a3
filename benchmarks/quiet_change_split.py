"""Where does a denoiser change a quiet-room device recording? Its PESQ-WB change split into speech frames
and pauses (STFT frames within / below 30 dB of the loudest), with the changes kept in the device's band as
denoiselab-device keeps them.

    python benchmarks/quiet_change_split.py [--model device_eval] [--device phone_nb] [--utterances 10]

Uses the quiet room of the device-accuracy campaign (benchmarks/device_accuracy.py builds it; built here
when missing, SNR 5 dB, the same utterances). Writes benchmarks/results/quiet_change_split.md.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from device_accuracy import DATA, ROOT, build_campaign  # noqa: E402

from _results import publish  # noqa: E402


def main() -> None:
    import soundfile as sf
    import torch
    from pesq import pesq

    from denoiselab.core import audio
    from denoiselab.core.enhancer import load_model
    from denoiselab.evaluation.device import _within_passband
    from denoiselab.evaluation.device_sim import PROFILES

    p = argparse.ArgumentParser()
    p.add_argument("--model", default="device_eval")
    p.add_argument("--device", default="phone_nb", choices=sorted(PROFILES))
    p.add_argument("--utterances", type=int, default=10)
    p.add_argument("--campaign", default=str(ROOT / "outputs" / "bench" / "device_accuracy" / "campaign_snr5"))
    args = p.parse_args()
    camp = Path(args.campaign)
    if not (camp / "quiet" / args.device).is_dir():
        if not DATA.is_dir():
            sys.exit(f"needs {DATA} (real audio)")
        build_campaign(camp, 5.0, args.utterances)
    torch.set_num_threads(1)
    model = load_model(args.model)
    delay = int(round(PROFILES[args.device].delay_ms * 16))  # samples at the 16 kHz scoring rate
    n_fft, hop = 256, 64
    window = torch.hann_window(n_fft)
    scores: dict[str, list[float]] = {}
    for f in sorted((camp / "quiet" / args.device).glob("*.wav"))[: args.utterances]:
        x, sr = sf.read(f, dtype="float32")
        ref, _ = sf.read(camp / "reference" / f.name, dtype="float32")
        y = _within_passband(x, model.enhance(x, sr), sr)
        X = torch.stft(torch.from_numpy(x), n_fft, hop, window=window, return_complex=True)
        Y = torch.stft(torch.from_numpy(y), n_fft, hop, window=window, return_complex=True)
        energy = (X.abs() ** 2).sum(0)
        speech = energy > energy.max() * 1e-3

        def back(spec: torch.Tensor, n: int = x.size) -> np.ndarray:
            return torch.istft(spec, n_fft, hop, window=window, length=n).numpy()

        variants = {"recording": x, "denoised (in band)": y, "change in speech frames only":
                    back(torch.where(speech, Y, X)), "change in pauses only": back(torch.where(speech, X, Y))}
        for name, sig in variants.items():
            s16 = audio.resample(sig, sr, 16000)[delay:]
            n = min(s16.size, ref.size)
            scores.setdefault(name, []).append(pesq(16000, ref[:n], s16[:n], "wb"))
    base = float(np.mean(scores["recording"]))
    lines = ["# Where a denoiser changes a quiet-room device recording", "",
             f"Machine: {platform.machine()}, CPU; {time.strftime('%Y-%m-%d')}. Model `{args.model}`, device "
             f"`{args.device}`, {len(scores['recording'])} quiet-room recordings of {camp}. PESQ-WB against the "
             "wideband reference; speech frames: STFT frames within 30 dB of the loudest.", "",
             "| signal | PESQ-WB | change |", "|---|---|---|"]
    lines += [f"| {name} | {np.mean(v):.3f} | {np.mean(v) - base:+.3f} |" for name, v in scores.items()]
    lines += ["", "Command:", "", "```", "python benchmarks/quiet_change_split.py " + " ".join(sys.argv[1:]), "```"]
    publish("quiet_change_split.md", lines)


if __name__ == "__main__":
    main()
