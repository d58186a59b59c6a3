"""Does denoising make device evaluation more accurate? Simulated devices record real dev speech in a quiet
and in a noisy room; the quiet room's per-device scores are the truth.

    python benchmarks/device_accuracy.py [--snrs 0,5,10] [--utterances 10] [--denoisers specsub,wiener,default]
                                         [--extra NAME=CKPT ...] [--peers gtcrn,deepfilternet3] [--dnsmos]
                                         [--whole-band] [--room TYPE [--finetune-budget 00:05:00]]
                                         [--results NAME.md]

For each SNR a campaign is written (DIR/reference, DIR/<device>/ in the noisy room, DIR/quiet/<device>/)
with the six profiles of denoiselab.evaluation.device_sim and dev noise (../shared/data/dev/noise), and
scored by denoiselab's device evaluation once per denoiser. Reported per SNR and denoiser: the mean
absolute error of the per-device scores against the quiet-room truth and Kendall tau of the device
order, raw and denoised (PESQ-WB, ESTOI; DNSMOS with --dnsmos), the alignment (refusals, delay error),
and how much the denoiser moves each device's quiet-room score (a denoiser that repairs the device hides
what the evaluation is for). Writes benchmarks/results/device_accuracy.md.

--peers: the peer denoisers of ../shared/tools/peers (their own venv, --peers-venv) process every recording
of each campaign, and `denoiselab-device processed=` scores their outputs like a model's.
--room TYPE: the noisy room is one noise type of the dev noise (files named TYPE*): half of its recordings
(by file) are the room during the campaign, the other half the lab's noise-only recording of its room, on
which `denoiselab-device finetune.noise=` fine-tunes the device model (the campaign's references as speech,
--finetune-budget of CPU time) before it is scored as "device_eval fine-tuned on the room".
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

import numpy as np
import soundfile as sf

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import publish  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
SR = 16000


PEERS_TOOL = ROOT.parent / "shared" / "tools" / "peers" / "run_peers.py"
FINETUNED = "device_eval fine-tuned on the room"


def build_campaign(root: Path, snr: float, n_utt: int, seed: int = 0,
                   noises: list[Path] | None = None) -> dict[tuple[str, str], float]:
    """Write the campaign (room noise: ``noises``, default every dev noise file); returns
    {(device, file): true delay in samples at the file's rate}."""
    from denoiselab.core import audio
    from denoiselab.core.mixing import loop_crop, mix_at_snr
    from denoiselab.evaluation.device_sim import PROFILES, record

    rng = np.random.default_rng([seed, int(snr * 10)])
    clean = sorted((DATA / "dev" / "clean").glob("*.flac"))[:n_utt]
    noises = noises or sorted((DATA / "dev" / "noise").glob("*.flac"))
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


def room_split(kind: str) -> tuple[list[Path], list[Path]]:
    """(the room's noise during the campaign, the lab's separate recording of it): a noise type's dev
    recordings split by file, alternately."""
    files = sorted((DATA / "dev" / "noise").glob(f"{kind}*.flac"))
    if len(files) < 4:
        sys.exit(f"--room {kind}: needs at least 4 dev noise files named {kind}*, found {len(files)}")
    return files[0::2], files[1::2]


def peer_outputs(camp: Path, out: Path, peers: list[str], peer_py: Path) -> dict[str, Path]:
    """Every recording of the campaign (both rooms) through the peers harness, which reads one flat
    folder: recordings are linked in as <room>__<device>__<file> and the outputs put back in the
    campaign's layout, out/<peer>/[quiet/]<device>/<file>, as `denoiselab-device processed=` reads them.
    Returns {peer: folder} for the peers that ran."""
    flat = out / "flat"
    flat.mkdir(parents=True, exist_ok=True)
    for room in ("", "quiet"):
        for dev in sorted(p for p in (camp / room).iterdir() if p.is_dir() and p.name not in ("reference", "quiet")):
            for f in sorted(dev.glob("*.wav")):
                link = flat / f"{room or 'noisy'}__{dev.name}__{f.name}"
                if not link.exists():
                    link.symlink_to(f.resolve())
    subprocess.run([str(peer_py), str(PEERS_TOOL), "--noisy-dir", str(flat), "--out-dir", str(out / "harness"),
                    "--threads", "1", "--peers", ",".join(peers)], check=True)
    for peer in peers:
        for f in sorted((out / "harness" / "enhanced" / peer).glob("*.wav")):
            room, dev, name = f.name.split("__", 2)
            dst = out / peer / ("quiet" if room == "quiet" else "") / dev / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            if not dst.exists():
                dst.symlink_to(f.resolve())
    return {peer: out / peer for peer in peers if (out / peer).is_dir()}


def finetune_on_room(camp: Path, room_noise: list[Path], out: Path, budget: str) -> Path:
    """The device workflow a lab runs: `denoiselab-device devices=CAMP finetune.noise=ROOM` fine-tunes the
    device model on the room's noise with the campaign's references as speech (and scores the campaign);
    returns the checkpoint it used."""
    (out / "room_noise").mkdir(parents=True, exist_ok=True)
    for f in room_noise:
        if not (out / "room_noise" / f.name).exists():
            (out / "room_noise" / f.name).symlink_to(f)
    run = out / "device_finetune"
    ckpt = run / "finetune" / "checkpoints" / "last.ckpt"
    if not ckpt.is_file():
        subprocess.run([sys.executable, "-m", "denoiselab.cli.device", f"devices={camp}",
                        f"finetune.noise={out / 'room_noise'}", f"finetune.time_budget={budget}", "dnsmos=false",
                        f"hydra.run.dir={run}"], check=True, env={**os.environ, "WANDB_MODE": "offline"})
    return ckpt


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
    p.add_argument("--peers", default="", help="peer denoisers from ../shared/tools/peers, e.g. gtcrn,deepfilternet3")
    p.add_argument("--peers-venv", default=str(ROOT.parent / ".venv-peers"))
    p.add_argument("--room", default=None, help="one dev noise type is the room (files TYPE*); adds the model "
                   "fine-tuned on a separate recording of it")
    p.add_argument("--finetune-budget", default="00:05:00", help="with --room: finetune.time_budget")
    p.add_argument("--dnsmos", action="store_true")
    p.add_argument("--whole-band", action="store_true",
                   help="keep denoisers' changes outside a telephone device's band too (denoise_in_band=false)")
    p.add_argument("--out", default=None, help="work folder (default outputs/bench/device_accuracy[_ROOM])")
    p.add_argument("--results", default="device_accuracy.md", help="file name under benchmarks/results/")
    args = p.parse_args()
    if not DATA.is_dir():
        sys.exit(f"needs {DATA} (real audio)")
    from denoiselab.evaluation.device import evaluate_devices
    from denoiselab.evaluation.device_stats import calibration

    out = Path(args.out or ROOT / "outputs" / "bench" / ("device_accuracy" + (f"_{args.room}" if args.room else "")))
    systems = {n: n for n in args.denoisers.split(",") if n}
    systems.update(dict(spec.split("=", 1) for spec in args.extra))
    scores = ["pesq_wb", "estoi"] + (["dnsmos_ovrl"] if args.dnsmos else [])
    peers = [n for n in args.peers.split(",") if n]
    peer_py = Path(args.peers_venv) / "bin" / "python"
    if peers and not peer_py.exists():
        sys.exit(f"--peers needs the peers venv: {peer_py} (bash ../shared/tools/peers/install.sh {args.peers_venv})")
    room_noise, room_recording = room_split(args.room) if args.room else (None, None)
    table, quiet_of, align_rows = [], {}, []
    for snr in [float(s) for s in args.snrs.split(",")]:
        camp = out / f"campaign_snr{snr:g}"
        truth = build_campaign(camp, snr, args.utterances, noises=room_noise)
        if room_recording and FINETUNED not in systems:
            # once: the room and the references are the same at every SNR (the lab records its room once)
            systems[FINETUNED] = str(finetune_on_room(camp, room_recording, out, args.finetune_budget))
        outputs = peer_outputs(camp, out / f"peers_snr{snr:g}", peers, peer_py) if peers else {}
        first = True
        for label, spec in [*systems.items(), *outputs.items()]:
            run = out / f"snr{snr:g}_{label.replace(' ', '_')}"
            system = {"processed": spec} if label in outputs else {"denoise": denoiser(spec)}
            rows, devs = evaluate_devices(camp, run, dnsmos=args.dnsmos, denoise_in_band=not args.whole_band,
                                          **system)
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
             "the microphone, before the device's own defects" + (
                 f"; the room: {', '.join(f.stem for f in room_noise)}; the lab's separate noise-only recording "
                 f"of it, for fine-tuning: {', '.join(f.stem for f in room_recording)}" if args.room else "")
             + "). Truth: each device's mean score in the quiet "
             "room. MAE: mean absolute error of the per-device means against the truth; tau: Kendall tau of the "
             "device order against the truth's order; quiet Δ: how far the denoiser moves the quiet-room "
             "scores themselves (0 = leaves the device alone). Denoising as `denoiselab-device` does it: "
             + ("changes kept over the whole band (--whole-band)." if args.whole_band else
                "on telephone-band recordings, changes kept only inside the device's band (its default).")
             + (f" Peers ({', '.join(peers)}): `../shared/tools/peers/run_peers.py` on one thread, outputs scored "
                "with `denoiselab-device processed=`." if peers else "")
             + (f" `{FINETUNED}`: `denoiselab-device devices=CAMPAIGN finetune.noise=ROOM_RECORDING "
                f"finetune.time_budget={args.finetune_budget}` on this machine (the campaign's references as "
                "speech; run once, on the first SNR's campaign), then scored at every SNR." if args.room else ""),
             "",
             "| SNR dB | score | system | MAE vs quiet room | Kendall tau | quiet Δ |", "|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['snr']:g} | {r['score']} | {r['system']} | {r['mae']:.3f} | {r['tau']:.2f} | "
                     f"{r['quiet_change']:.3f} |")
    lines += ["", "## Defect preservation: change of each device's quiet-room PESQ-WB by the denoiser", "",
              *preservation_table(quiet_of, lambda d: "pesq_wb", label_metric=False), "",
              "The same on the metric suited to each device's band (PESQ-NB, P.862.1, for the narrow-band "
              "devices; PESQ-WB for the others):", "",
              *preservation_table(quiet_of, band_metric, label_metric=True), "",
              "The defects themselves, measured on the quiet-room recordings (`lab_measures.defect_change`): "
              "the noise floor in the speech pauses after minus before denoising, in dB (a device's self-noise "
              "and hum; negative = the denoiser removed it), and the change of the device's frequency response "
              "(colouring: mean absolute dB over the third-octave bands reliable before and after):", "",
              *defect_table(quiet_of)]
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


def defect_table(quiet_of: dict[str, list[dict]]) -> list[str]:
    """Markdown rows: per denoiser and device, pause-floor change dB / response change dB (quiet room)."""
    first = next(iter(quiet_of.values()))
    lines = ["| system | " + " | ".join(f"{d['device']} floor / response dB" for d in first) + " |",
             "|---|" + "---|" * len(first)]
    for label, quiet in quiet_of.items():
        cells = [f"{d['noise_floor_after_dbfs'] - d['noise_floor_dbfs']:+.1f} / {d['fr_change_db']:.1f}" for d in quiet]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return lines


def _num(v: str) -> bool:
    try:
        float(v)
        return True
    except (TypeError, ValueError):
        return False


if __name__ == "__main__":
    main()
