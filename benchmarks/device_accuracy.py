"""Does denoising make device evaluation more accurate? Simulated devices record real dev speech in a quiet
and in a noisy room; the quiet room's per-device scores are the truth.

    python benchmarks/device_accuracy.py [--snrs 0,5,10] [--utterances 10] [--denoisers specsub,wiener,default]
                                         [--extra NAME=CKPT ...] [--dnsmos] [--whole-band]
                                         [--results NAME.md]

For each SNR a campaign is written (DIR/reference, DIR/<device>/ in the noisy room, DIR/quiet/<device>/)
with the six profiles of denoiselab.evaluation.device_sim and dev noise (../shared/data/dev/noise), and
scored by denoiselab's device evaluation once per denoiser. Reported per SNR and denoiser: the mean
absolute error of the per-device scores against the quiet-room truth and Kendall tau of the device
order, raw and denoised (PESQ-WB, ESTOI; DNSMOS with --dnsmos), the alignment (refusals, delay error),
and how much the denoiser moves each device's quiet-room score (a denoiser that repairs the device hides
what the evaluation is for). Writes benchmarks/results/device_accuracy.md.
"""

from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import publish  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SR = 16000


def build_campaign(root: Path, snr: float, n_utt: int, seed: int = 0) -> dict[tuple[str, str], float]:
    """Write the campaign; returns {(device, file): true delay in samples at the file's rate}."""
    from denoiselab.core import audio
    from denoiselab.core.mixing import loop_crop, mix_at_snr
    from denoiselab.evaluation.device_sim import PROFILES, record

    rng = np.random.default_rng([seed, int(snr * 10)])
    clean = sorted((DATA / "dev" / "clean").glob("*.flac"))[:n_utt]
    noises = sorted((DATA / "dev" / "noise").glob("*.flac"))
    truth = {}
    (root / "reference").mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(clean):
        x = audio.load_mono(path, SR)
        ref = np.concatenate([np.zeros(3200, np.float32), x, np.zeros(1600, np.float32)])
        sf.write(root / "reference" / f"{path.stem}.wav", ref, SR)
        noise = loop_crop(audio.load_mono(noises[int(rng.integers(len(noises)))], SR), ref.size, rng)
        noisy, _, _ = mix_at_snr(ref, noise, snr, peak=None)
        for name, profile in PROFILES.items():
            for room, at_mic in (("", noisy), ("quiet", ref)):
                y, rate = record(profile, at_mic, SR, np.random.default_rng([seed, i, len(name)]))
                (root / room / name).mkdir(parents=True, exist_ok=True)
                sf.write(root / room / name / f"{path.stem}.wav", y, rate)
                truth[(name, f"{path.stem}.wav")] = profile.delay_ms * rate / 1000
    return truth


def swapped_references(camp: Path) -> dict[str, int]:
    """Every noisy-room recording aligned against the next utterance's reference: how many are caught."""
    from denoiselab.core import audio
    from denoiselab.evaluation.alignment import AlignmentError, align

    refs = sorted((camp / "reference").glob("*.wav"))
    caught = total = 0
    for dev in sorted(p for p in camp.iterdir() if p.is_dir() and p.name not in ("reference", "quiet")):
        for i, ref in enumerate(refs):
            x, rate = audio.read(dev / ref.name)
            wrong, _ = audio.read(refs[(i + 1) % len(refs)])
            total += 1
            try:
                align(audio.resample(audio.to_mono(x), rate, SR), audio.to_mono(wrong), 2 * SR)
            except AlignmentError:
                caught += 1
    return {"swapped": total, "swapped_caught": caught}


def denoiser(name: str):
    from denoiselab.core.enhancer import load_model
    from denoiselab.evaluation.baselines import get_baseline

    if name in ("specsub", "wiener"):
        return get_baseline(name)
    model = load_model(name)
    return model.enhance


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--snrs", default="0,5,10")
    p.add_argument("--utterances", type=int, default=10)
    p.add_argument("--denoisers", default="specsub,wiener,default")
    p.add_argument("--extra", nargs="*", default=[], help="more models: NAME=CKPT")
    p.add_argument("--dnsmos", action="store_true")
    p.add_argument("--whole-band", action="store_true",
                   help="keep denoisers' changes outside a telephone device's band too (denoise_in_band=false)")
    p.add_argument("--out", default=str(ROOT / "outputs" / "bench" / "device_accuracy"))
    p.add_argument("--results", default="device_accuracy.md", help="file name under benchmarks/results/")
    args = p.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs {DATA} (real audio)")
    from denoiselab.evaluation.device import calibration, evaluate_devices

    out = Path(args.out)
    systems = {n: n for n in args.denoisers.split(",") if n}
    systems.update(dict(spec.split("=", 1) for spec in args.extra))
    scores = ["pesq_wb", "estoi"] + (["dnsmos_ovrl"] if args.dnsmos else [])
    table, quiet_of, align_rows = [], {}, []
    for snr in [float(s) for s in args.snrs.split(",")]:
        camp = out / f"campaign_snr{snr:g}"
        truth = build_campaign(camp, snr, args.utterances)
        first = True
        for label, spec in systems.items():
            run = out / f"snr{snr:g}_{label}"
            rows, devs = evaluate_devices(camp, run, denoise=denoiser(spec), dnsmos=args.dnsmos,
                                          denoise_in_band=not args.whole_band)
            quiet_rows = [r for r in csv.DictReader(open(run / "quiet_per_device.csv"))]
            quiet = [{k: (float(v) if _num(v) else v) for k, v in r.items()} for r in quiet_rows]
            for score in scores:
                cal = calibration(devs, quiet, score)
                if "mae_before" not in cal:
                    continue
                if first:
                    table.append({"snr": snr, "system": "raw (noisy room)", "score": score,
                                  "mae": cal["mae_before"], "tau": cal["tau_before"], "quiet_change": 0.0})
                table.append({"snr": snr, "system": label, "score": score, "mae": cal["mae_after"],
                              "tau": cal["tau_after"], "quiet_change": cal["quiet_change"]})
            quiet_of[label] = quiet  # the quiet room is the same campaign at every SNR
            if first:
                ok = [r for r in rows if r["status"] == "ok" and r.get("reference")]
                errs = [abs(float(r["delay_samples"]) - truth[(r["device"], Path(r["file"]).name)]) for r in ok]
                align_rows.append({"snr": snr, "recordings": len([r for r in rows if r.get("reference")]),
                                   "refused": sum(r["status"] == "refused" for r in rows),
                                   "max_delay_error": max(errs) if errs else math.nan,
                                   **swapped_references(camp)})
            first = False
    lines = ["# Device evaluation accuracy: noisy room + denoising vs the quiet-room truth", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores, no GPU (this workplace's CPU box); "
             f"{time.strftime('%Y-%m-%d')}. Campaign: {args.utterances} real dev utterances recorded by the six "
             "simulated devices of `denoiselab.evaluation.device_sim` (studio_mic, headset, laptop, phone_nb, "
             "speakerphone, cheap_phone) in a quiet and in a noisy room (dev noise at the given SNR, added at "
             "the microphone, before the device's own defects). Truth: each device's mean score in the quiet "
             "room. MAE: mean absolute error of the per-device means against the truth; tau: Kendall tau of the "
             "device order against the truth's order; quiet Δ: how far the denoiser moves the quiet-room "
             "scores themselves (0 = leaves the device alone). Denoising as `denoiselab-device` does it: "
             + ("changes kept over the whole band (--whole-band)." if args.whole_band else
                "on telephone-band recordings, changes kept only inside the device's band (its default)."), "",
             "| SNR dB | score | system | MAE vs quiet room | Kendall tau | quiet Δ |", "|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['snr']:g} | {r['score']} | {r['system']} | {r['mae']:.3f} | {r['tau']:.2f} | "
                     f"{r['quiet_change']:.3f} |")
    lines += ["", "## Defect preservation: change of each device's quiet-room PESQ-WB by the denoiser", "",
              *preservation_table(quiet_of, lambda d: "pesq_wb", label_metric=False), "",
              "The same on the metric suited to each device's band (PESQ-NB, P.862.1, for the narrow-band "
              "devices; PESQ-WB for the others):", "",
              *preservation_table(quiet_of, band_metric, label_metric=True)]
    lines += ["", "## Alignment on the campaign", "", "| SNR dB | recordings with a reference | refused | "
              "largest delay error (samples at the file's rate) | swapped references refused |",
              "|---|---|---|---|---|"]
    for r in align_rows:
        lines.append(f"| {r['snr']:g} | {r['recordings']} | {r['refused']} | {r['max_delay_error']:.2f} | "
                     f"{r['swapped_caught']}/{r['swapped']} |")
    lines += ["", "Command:", "", "```", "python benchmarks/device_accuracy.py " + " ".join(sys.argv[1:]), "```"]
    publish(args.results, lines)


def band_metric(device: dict) -> str:
    """PESQ-WB scores a telephone-band device against a wideband reference, so a narrow-band device is
    judged by PESQ-NB (P.862.1), as the device report does."""
    return "pesq_nb" if device.get("bandwidth") == "narrow" else "pesq_wb"


def preservation_table(quiet_of: dict[str, list[dict]], metric_of, label_metric: bool) -> list[str]:
    """Markdown rows: per denoiser, how far it moves each device's quiet-room score (metric_of(device))."""
    first = next(iter(quiet_of.values()))
    heads = [f"{d['device']} ({metric_of(d).upper().replace('_', '-')})" if label_metric else d["device"]
             for d in first]
    lines = ["| system | " + " | ".join(heads) + " |", "|---|" + "---|" * len(heads)]
    for label, quiet in quiet_of.items():
        moves = [d[f"{metric_of(d)}_after"] - d[f"{metric_of(d)}_before"] for d in quiet]
        lines.append(f"| {label} | " + " | ".join(f"{v:+.2f}" for v in moves) + " |")
    return lines


def _num(v: str) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


if __name__ == "__main__":
    main()
