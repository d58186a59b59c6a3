"""Score audio devices from their recordings, before and after denoising (the library behind
``denoiselab-device``; Python: ``evaluate_devices(DIR, OUT, ckpt=...)``).

DIR holds one folder per device with its recordings, optionally ``DIR/reference/`` with the
reference (played) signals under the same file names, or a ``DIR/manifest.csv`` with columns
``device,file,reference``. Each recording is aligned to its reference (GCC-PHAT), scored
intrusively (PESQ, ESTOI, SI-SDR) and non-intrusively (DNSMOS, estimated SNR), denoised with the
chosen model (the same streaming pipeline as denoiselab-enhance), and scored again. The report
(per_recording.csv, per_device.csv, report.md, report.html, PNGs) gives per-device means with
95 % confidence intervals, device ranks before and after, and whether denoising changed the ranking
beyond what the intervals can resolve. This module finds and scores the recordings; device_stats
aggregates them per device, device_report writes the report.
"""

from __future__ import annotations

import csv
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from denoiselab import __version__
from denoiselab.core import audio
from denoiselab.core.errors import UserError
from denoiselab.core.files import sha1_of
from denoiselab.core.progress import track
from denoiselab.evaluation import metrics as M
from denoiselab.evaluation import report
from denoiselab.evaluation.alignment import MIN_CONFIDENCE, AlignmentError, align, passband, shift
from denoiselab.evaluation.device_report import write_report
from denoiselab.evaluation.device_stats import calibration, per_device
from denoiselab.evaluation.evaluate import ProcessedFolder
from denoiselab.evaluation.lab_measures import measure

log = logging.getLogger(__name__)

SCORE_RATE = 16000


#: A campaign's quiet-room recordings of the same devices live in DIR/quiet/<device>/ (the calibration).
QUIET = "quiet"


@dataclass
class Recording:
    device: str
    path: Path
    reference: Path | None


def discover(devices_dir: str | Path, reference_dir: str | Path | None = None) -> list[Recording]:
    """Recordings per device from a folder layout or DIR/manifest.csv (``reference_dir``: where the
    references are when not in DIR/reference, e.g. a quiet-room campaign sharing its parent's)."""
    root = Path(devices_dir).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"devices folder does not exist: {root}")
    manifest = root / "manifest.csv"
    recs: list[Recording] = []
    if manifest.is_file():
        missing: list[str] = []
        with open(manifest, newline="") as fh:
            for line, row in enumerate(csv.DictReader(fh), 2):
                if not row.get("device") or not row.get("file"):
                    raise ValueError(f"{manifest}:{line}: needs device and file columns")
                ref = row.get("reference") or None
                rec = Recording(row["device"], _resolve(root, row["file"]), _resolve(root, ref) if ref else None)
                missing += [f"line {line}: {p}" for p in (rec.path, rec.reference) if p is not None and not p.exists()]
                recs.append(rec)
        if missing:  # a typo in a lab's manifest, not a bad recording: stop before hours of scoring
            more = f" (+{len(missing) - 5} more)" if len(missing) > 5 else ""
            raise UserError(f"{manifest} names {len(missing)} file(s) that do not exist: {'; '.join(missing[:5])}"
                            f"{more} (paths are relative to {root})")
        return recs
    ref_dir = Path(reference_dir) if reference_dir else root / "reference"
    refs = ({p.relative_to(ref_dir).with_suffix("").as_posix(): p for p in audio.find_audio(ref_dir)}
            if ref_dir.is_dir() else {})
    for dev in sorted(p for p in root.iterdir() if p.is_dir() and p.name not in ("reference", QUIET)):
        for f in audio.find_audio(dev):
            key = f.relative_to(dev).with_suffix("").as_posix()
            recs.append(Recording(dev.name, f, refs.get(key)))
    if not recs:
        raise ValueError(f"no device recordings found in {root} (expected one folder per device)")
    return recs


def unreferenced(recs: list[Recording], folder: Path, reference_dir: Path) -> str | None:
    """A warning when recordings of ``folder`` have no reference: they get the non-intrusive scores only,
    and the usual cause is a file named differently from its reference (said before scoring, not after)."""
    none = [r for r in recs if r.reference is None]
    if not none:
        return None
    manifest = folder / "manifest.csv"
    where = f"{manifest}: reference column" if manifest.is_file() else f"{reference_dir}/ with the same file name"
    scores = "non-intrusive scores only (estimated SNR, DNSMOS): PESQ, ESTOI and SI-SDR need the played signal"
    if len(none) == len(recs):
        return f"no recording has a reference ({where}): {scores}"
    return (f"{len(none)} of {len(recs)} recordings have no reference ({where}; e.g. {none[0].device}/"
            f"{none[0].path.name}): {scores}; the report lists them")


def _resolve(root: Path, p: str) -> Path:
    path = Path(p).expanduser()
    return path if path.is_absolute() else root / path


def estimate_snr(x: np.ndarray, sr: int, frame_ms: float = 20.0) -> float:
    """Speech-activity based SNR estimate (dB): loud frames (top 30 % energy) vs quiet frames (bottom 20 %)."""
    n = max(1, int(sr * frame_ms / 1000))
    frames = x[: x.size // n * n].reshape(-1, n).astype(np.float64)
    if frames.shape[0] < 5:
        return math.nan
    e = np.sort((frames ** 2).mean(1))
    noise = e[: max(1, int(0.2 * e.size))].mean()
    speech = e[-max(1, int(0.3 * e.size)):].mean()
    return float(10 * np.log10(max(speech - noise, 1e-20) / max(noise, 1e-20)))


def is_narrowband(x: np.ndarray, sr: int, threshold_db: float = -45.0) -> bool:
    """True when almost no energy lies above 4 kHz (telephone-band device). -45 dB: a telephone band's
    stop band lies far below it, while a quiet wideband studio recording of a dark voice can carry as
    little as -31 dB above 4 kHz (seen on the device-accuracy campaign)."""
    if sr <= 8000:
        return True
    spec = np.abs(np.fft.rfft(x.astype(np.float64))) ** 2
    f = np.fft.rfftfreq(x.size, 1 / sr)
    hi, total = spec[f > 4000].sum(), spec.sum() + 1e-20
    return bool(10 * np.log10(hi / total + 1e-20) < threshold_db)


def keep_device_band(recording: np.ndarray, denoised: np.ndarray, sr: int) -> np.ndarray:
    """``denoised`` with the denoiser's changes kept only inside the band a telephone-band device passes.

    Room noise reaches the microphone and goes through the device's band like the speech, so outside a
    telephone band a recording holds only what the device made itself (codec noise above 3.4 kHz): a
    denoiser that cleans it there repairs the device, which an evaluation must not do (measured in
    benchmarks/results/device_accuracy.md). Only narrow-band recordings are restricted: their band edges
    (``passband``) are the device's, while a wideband recording's spectrum rolls off with the speech and
    the room noise, and cutting there would leave room noise in. An edge at the end of the usable range
    means the device does not limit the band there.
    """
    return _within_passband(recording, denoised, sr) if is_narrowband(recording, sr) else denoised


def _within_passband(recording: np.ndarray, denoised: np.ndarray, sr: int) -> np.ndarray:
    """The recording outside its passband, the denoised signal inside it (keep_device_band's mixing)."""
    lo, hi = passband(recording, sr)
    lo = 0.0 if lo < 120.0 else lo
    hi = sr / 2 if hi > 0.9 * sr / 2 else hi
    n = recording.size
    f = np.fft.rfftfreq(n, 1 / sr)
    inside = (f >= lo) & (f <= hi)
    denoised = np.pad(denoised[:n], (0, max(0, n - denoised.size)))  # a custom denoiser may change the length
    mixed = np.where(inside, np.fft.rfft(denoised), np.fft.rfft(recording))
    return np.fft.irfft(mixed, n).astype(np.float32)


def score_recording(rec: Recording, denoise: Callable[[np.ndarray, int], np.ndarray],
                    min_correlation: float | None, max_delay_s: float, dnsmos: bool,
                    min_confidence: float = MIN_CONFIDENCE, denoise_in_band: bool = True
                    ) -> tuple[dict[str, Any], tuple[np.ndarray, np.ndarray, int]]:
    """(row of scores, (recording, denoised, rate)) - the signals are returned for the report's plots."""
    row: dict[str, Any] = {"device": rec.device, "file": str(rec.path), "reference": str(rec.reference or ""),
                           "status": "ok", "note": ""}
    x, sr = audio.read(rec.path)
    x = audio.to_mono(x)
    row["rate"], row["seconds"] = sr, round(x.size / sr, 3)
    enhanced = np.asarray(denoise(x, sr), dtype=np.float32)
    # at the file's own rate: an 8 kHz file is narrow band whatever resampling leaks
    nb = bool(x.size) and is_narrowband(x, sr)
    if denoise_in_band and nb:
        enhanced = _within_passband(x, enhanced, sr)
    x16 = audio.resample(x, sr, SCORE_RATE)
    e16 = audio.resample(enhanced, sr, SCORE_RATE)
    row["snr_est"] = estimate_snr(x16, SCORE_RATE)
    row["snr_est_after"] = estimate_snr(e16, SCORE_RATE)
    if dnsmos:
        for tag, sig in (("before", x16), ("after", e16)):
            d = M.dnsmos(sig, SCORE_RATE)
            for k in ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak"):
                row[f"{k}_{tag}"] = d[k]
    if rec.reference is None:
        row["note"] = "no reference: non-intrusive scores only"
        return row, (x, enhanced, sr)
    ref, rsr = audio.read(rec.reference)
    ref16 = audio.resample(audio.to_mono(ref), rsr, SCORE_RATE)
    try:
        al, x_al = align(x16, ref16, max(1, int(max_delay_s * SCORE_RATE)), min_correlation, SCORE_RATE,
                          min_confidence)
    except AlignmentError as err:
        row.update(status="refused", note=str(err))
        log.warning("%s: %s", rec.path, err)
        return row, (x, enhanced, sr)
    e_al = shift(e16, al.delay_samples, ref16.size)
    row.update(delay_samples=round(al.delay * sr / SCORE_RATE, 2), delay_ms=round(1000 * al.delay / SCORE_RATE, 3),
               correlation=round(al.correlation, 4), gain=round(al.gain, 4),
               delay_confidence=round(al.confidence, 1), band_lo_hz=round(al.band_hz[0]),
               band_hi_hz=round(al.band_hz[1]))
    row["band"] = "narrow" if nb else "wide"
    metrics = ["pesq_wb", "estoi", "si_sdr"] + (["pesq_nb"] if nb else [])
    for tag, sig in (("before", x_al), ("after", e_al)):
        s = M.score(sig, SCORE_RATE, ref16, metrics)
        for m in metrics:
            row[f"{m}_{tag}"] = s[m]
    row.update(measure(x_al, ref16, SCORE_RATE, x, sr, denoised=e_al, native_denoised=enhanced))
    return row, (x, enhanced, sr)


# ---------------------------------------------------------------------- entry points
def _check_alignment_settings(max_delay_s: float, min_confidence: float, min_correlation: float | None) -> None:
    """Settings that aligned nothing or refused everything: max_delay_s=0 searched the whole recording with
    its lags mislabelled, a negative min_confidence accepted any reference, a min_correlation above 1 refused
    every recording."""
    if not max_delay_s > 0:
        raise UserError(f"max_delay_s must be > 0 (the longest device delay searched, in seconds), got {max_delay_s}")
    if not min_confidence >= 0:
        raise UserError(f"min_confidence must be >= 0 (a peak prominence; 30 by default), got {min_confidence}")
    if min_correlation is not None and not -1.0 <= min_correlation <= 1.0:
        raise UserError(f"min_correlation is a correlation, in [-1, 1] (or null), got {min_correlation}")


def processed_name(root: Path, rec: Recording) -> str:
    """Where another tool's output for ``rec`` lies inside a processed folder: its path relative to the
    campaign folder (a manifest's file outside it: <device>/<file name>)."""
    try:
        return rec.path.relative_to(root).as_posix()
    except ValueError:
        return f"{rec.device}/{rec.path.name}"


def build_denoiser(ckpt: str | None, baseline: str | None, accelerator: str, strength: float,
                   atten_limit_db: float | None) -> tuple[Callable[[np.ndarray, int], np.ndarray], dict[str, Any]]:
    if baseline:
        from denoiselab.evaluation.baselines import get_baseline

        return get_baseline(baseline), {"denoiser": f"baseline:{baseline}"}
    from denoiselab.core.enhancer import Enhancer
    from denoiselab.core.model_files import DEVICE_EVAL_MODEL, load_denoiser, resolve_model_path

    # without a choice: the model made for device evaluation (keeps the device's defects), when shipped
    path = resolve_model_path(ckpt if ckpt or not DEVICE_EVAL_MODEL.is_file() else DEVICE_EVAL_MODEL)
    den = load_denoiser(path)
    enh = Enhancer(den, accelerator=accelerator, strength=strength, atten_limit_db=atten_limit_db)
    info = {"denoiser": str(path), "model sha1": sha1_of(path),
            "model": f"{den.net_name} {den.net_kwargs}", "model rate": den.sample_rate,
            "STFT": f"{den.frontend.n_fft}/{den.frontend.hop_length} {den.frontend.config['window']}",
            "strength": strength, "atten_limit_db": atten_limit_db}
    return enh.enhance, info


def evaluate_devices(devices_dir: str | Path, out_dir: str | Path, ckpt: str | None = None,
                     baseline: str | None = None, accelerator: str = "cpu", strength: float = 1.0,
                     atten_limit_db: float | None = None, min_correlation: float | None = None,
                     max_delay_s: float = 2.0,
                     dnsmos: bool = True, denoise: Callable[[np.ndarray, int], np.ndarray] | None = None,
                     model_story: str | None = None, min_confidence: float = MIN_CONFIDENCE,
                     denoise_in_band: bool = True, processed: str | Path | None = None
                     ) -> tuple[list[dict], list[dict]]:
    """Python API of denoiselab-device; returns (per-recording rows, per-device rows).

    ``denoise`` (any f(wave, rate) -> wave) replaces ckpt/baseline, e.g. for a model of your own.
    ``processed``: a folder of recordings another tool has already denoised, laid out like DIR
    (PROCESSED/<device>/<file>, PROCESSED/quiet/<device>/<file>; any extension and rate, time-aligned
    with the recordings), scored exactly as a model's output would be.
    ``denoise_in_band``: keep the denoiser's changes only in the band a telephone-band device passes
    (keep_device_band).
    """
    _check_alignment_settings(max_delay_s, min_confidence, min_correlation)
    root = Path(devices_dir).expanduser()
    recs = discover(root)
    if note := unreferenced(recs, root, root / "reference"):
        log.warning("%s", note)
    outputs = None
    if processed is not None:
        if denoise is not None or ckpt or baseline:
            raise ValueError("processed= scores another tool's outputs; it cannot be combined with a model "
                             "or baseline")
        outputs = ProcessedFolder(processed)
        quiet = discover(root / QUIET, reference_dir=root / "reference") if (root / QUIET).is_dir() else []
        outputs.check_names([processed_name(root, r) for r in recs + quiet], "recording")
        # the report names the denoiser by the folder's name (e.g. peers' enhanced/deepfilternet3)
        settings = {"denoiser": str(outputs.folder), "processed": "outputs of another tool, read from this "
                    "folder (matched by path relative to the devices folder)"}
    elif denoise is not None:
        settings = {"denoiser": getattr(denoise, "__name__", repr(denoise))}
    else:
        denoise, settings = build_denoiser(ckpt, baseline, accelerator, strength, atten_limit_db)
    if model_story:
        settings["how the model was made"] = model_story
    dnsmos = dnsmos and M.dnsmos_available()
    settings.update({"denoiselab": __version__, "devices": str(devices_dir), "min_confidence": min_confidence,
                     "min_correlation": min_correlation,
                     "max_delay_s": max_delay_s, "DNSMOS": dnsmos, "scoring rate": SCORE_RATE,
                     "denoising": "changes kept only in the band a telephone-band device passes (outside it "
                                  "the recording holds only the device's own output)" if denoise_in_band else
                                  "changes kept over the whole band"})
    def score_all(recordings: list[Recording], what: str) -> tuple[list[dict], dict]:
        rows, examples = [], {}
        for rec in track(recordings, what, "recordings"):
            den = denoise if outputs is None else (
                lambda x, sr, name=processed_name(root, rec): outputs.load_named(name, x.size, sr))
            try:
                row, signals = score_recording(rec, den, min_correlation, max_delay_s, dnsmos, min_confidence,
                                               denoise_in_band)
            except (audio.AudioError, FileNotFoundError) as err:
                row, signals = {"device": rec.device, "file": str(rec.path), "reference": str(rec.reference or ""),
                                "status": "refused", "note": str(err)}, None
                log.warning("%s", err)
            rows.append(row)
            if rec.device not in examples and row["status"] == "ok":
                examples[rec.device] = signals
        return rows, examples

    rows, examples = score_all(recs, "scoring recordings")
    devs = per_device(rows)
    calib = None
    if (root / QUIET).is_dir():  # the same devices in a quiet room: the truth to check the method against
        quiet_recs = discover(root / QUIET, reference_dir=root / "reference")
        if note := unreferenced(quiet_recs, root / QUIET, root / "reference"):
            log.warning("quiet room: %s", note)
        quiet_rows, _ = score_all(quiet_recs, "scoring quiet-room recordings")
        quiet_devs = per_device(quiet_rows)
        report.write_csv(Path(out_dir) / "quiet_per_device.csv", quiet_devs)
        calib = calibration(devs, quiet_devs, "pesq_wb" if any(not math.isnan(d["pesq_wb_before"]) for d in devs)
                            else "dnsmos_ovrl")
    write_report(rows, devs, Path(out_dir), settings, examples, calib)
    return rows, devs
