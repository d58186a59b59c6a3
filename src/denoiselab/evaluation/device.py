"""Score audio devices from their recordings, before and after denoising (the library behind
``denoiselab-device``; Python: ``evaluate_devices(DIR, OUT, ckpt=...)``).

DIR holds one folder per device with its recordings, optionally ``DIR/reference/`` with the
reference (played) signals under the same file names, or a ``DIR/manifest.csv`` with columns
``device,file,reference``. Each recording is aligned to its reference (GCC-PHAT), scored
intrusively (PESQ, ESTOI, SI-SDR) and non-intrusively (DNSMOS, estimated SNR), denoised with the
chosen model (the same streaming pipeline as denoiselab-enhance), and scored again. The report
(per_recording.csv, per_device.csv, report.md, report.html, PNGs) gives per-device means with
95 % confidence intervals, device ranks before and after, and whether denoising changed the ranking
beyond what the intervals can resolve.
"""

from __future__ import annotations

import base64
import csv
import logging
import math
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any, Callable

import numpy as np

from denoiselab import __version__
from denoiselab.core import audio
from denoiselab.core.errors import UserError
from denoiselab.core.files import safe_filename, sha1_of
from denoiselab.core.progress import track
from denoiselab.evaluation import metrics as M
from denoiselab.evaluation import report
from denoiselab.evaluation.alignment import MIN_CONFIDENCE, AlignmentError, align, passband, shift
from denoiselab.evaluation.evaluate import ProcessedFolder
from denoiselab.evaluation.lab_measures import FR_BANDS, measure

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


def outcome(rows: list[dict]) -> str:
    """One line for the console: how many recordings were scored in full, without a reference, refused."""
    refused = sum(r["status"] == "refused" for r in rows)
    no_ref = sum(r["status"] == "ok" and not r["reference"] for r in rows)
    line = f"{len(rows)} recordings: {len(rows) - refused - no_ref} scored against their reference"
    if no_ref:
        line += f", {no_ref} without a reference (non-intrusive scores only)"
    if refused:
        line += f", {refused} refused (the report says why)"
    return line


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
        al, x_al = align(x16, ref16, int(max_delay_s * SCORE_RATE), min_correlation, SCORE_RATE, min_confidence)
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


# ---------------------------------------------------------------------- aggregation
SCORES = ("pesq_wb", "pesq_nb", "estoi", "si_sdr", "dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "snr_est")


#: Scores that need no reference: a recording refused for alignment still has them.
NON_INTRUSIVE = ("dnsmos_ovrl", "dnsmos_sig", "dnsmos_bak", "snr_est")


#: Lab measurements averaged per device (from the aligned recordings).
MEASURES = ("delay_ms", "asl_dbov", "level_diff_db", "noise_floor_dbfs", "clipping_rate",
            *[f"fr_{fc}" for fc in FR_BANDS],
            # what denoising did to the device's own defects (lab_measures.defect_change)
            "noise_floor_after_dbfs", "clipping_rate_after", "fr_change_db")


def retest_spread(rows: list[dict], key: str) -> float:
    """Test-retest spread: the standard deviation of ``key`` over repeated takes of the same reference
    on one device, pooled over references (NaN without repeated takes)."""
    groups: dict[str, list[float]] = {}
    for r in rows:
        if r.get("reference") and r.get(key) not in (None, "") and not math.isnan(float(r[key])):
            groups.setdefault(r["reference"], []).append(float(r[key]))
    repeated = [np.var(v, ddof=1) for v in groups.values() if len(v) > 1]
    return float(np.sqrt(np.mean(repeated))) if repeated else math.nan


def per_device(rows: list[dict]) -> list[dict]:
    """Per-device means with 95 % CIs: intrusive scores over the aligned recordings, non-intrusive ones
    over every recording that has them (so a device whose references all failed stays ranked by DNSMOS)."""
    out = []
    for dev in dict.fromkeys(r["device"] for r in rows):
        everything = [r for r in rows if r["device"] == dev]
        mine = [r for r in everything if r["status"] == "ok"]
        refused = sum(r["status"] == "refused" for r in everything)
        row: dict[str, Any] = {"device": dev, "n": len(mine), "refused": refused}
        for s in SCORES:
            source = everything if s in NON_INTRUSIVE else mine
            for tag in ("before", "after"):
                key = f"{s}_{tag}" if s != "snr_est" else ("snr_est" if tag == "before" else "snr_est_after")
                m, ci, _ = report.mean_ci(float(r[key]) for r in source if key in r and r[key] != "")
                row[f"{s}_{tag}"], row[f"{s}_{tag}_ci95"] = m, ci
        for key in MEASURES:
            row[key] = report.mean_ci(float(r[key]) for r in mine if r.get(key) not in (None, ""))[0]
        bands = [r["bandwidth"] for r in mine if r.get("bandwidth")]
        row["bandwidth"] = max(set(bands), key=bands.count) if bands else ""
        row["retest_sd_pesq_wb"] = retest_spread(mine, "pesq_wb_before")
        out.append(row)
    for s in SCORES:
        for tag in ("before", "after"):
            _rank(out, f"{s}_{tag}")
    return out


def _rank(rows: list[dict], key: str) -> None:
    vals = [(r[key], i) for i, r in enumerate(rows) if not math.isnan(r[key])]
    for rank, (_, i) in enumerate(sorted(vals, key=lambda t: -t[0]), 1):
        rows[i][f"rank_{key}"] = rank
    for r in rows:
        r.setdefault(f"rank_{key}", "")


def ranking_stability(devs: list[dict], score: str) -> dict[str, Any]:
    """Does the device order by ``score`` change after denoising, and which differences are resolved?"""
    b = [d for d in devs if not math.isnan(d[f"{score}_before"]) and not math.isnan(d[f"{score}_after"])]
    before = [d["device"] for d in sorted(b, key=lambda d: -d[f"{score}_before"])]
    after = [d["device"] for d in sorted(b, key=lambda d: -d[f"{score}_after"])]
    pairs = []
    for x, y in combinations(b, 2):
        for tag in ("before", "after"):
            diff = x[f"{score}_{tag}"] - y[f"{score}_{tag}"]
            ci = math.hypot(_z(x[f"{score}_{tag}_ci95"]), _z(y[f"{score}_{tag}_ci95"]))
            pairs.append({"pair": f"{x['device']} vs {y['device']}", "when": tag, "difference": diff, "ci95": ci,
                          "resolved": bool(ci > 0 and abs(diff) > ci)})
    return {"score": score, "before": before, "after": after, "changed": before != after,
            "kendall_tau": _kendall(before, after), "pairs": pairs}


def _z(v: float) -> float:
    return 0.0 if v is None or math.isnan(v) else v


def _kendall(a: list[str], b: list[str]) -> float:
    if len(a) < 2:
        return math.nan
    pos = {d: i for i, d in enumerate(b)}
    concordant = discordant = 0
    for i, j in combinations(range(len(a)), 2):
        if (pos[a[i]] - pos[a[j]]) * (i - j) > 0:
            concordant += 1
        else:
            discordant += 1
    return (concordant - discordant) / (concordant + discordant)


# ---------------------------------------------------------------------- calibration
def calibration(noisy_devs: list[dict], quiet_devs: list[dict], score: str = "pesq_wb") -> dict[str, Any]:
    """How close the noisy-room campaign comes to the quiet-room truth, raw and after denoising: mean
    absolute error of the per-device scores, Kendall tau of the device order, and how much denoising
    moves the quiet-room scores themselves (a denoiser should leave a device's own defects alone)."""
    truth = {d["device"]: d[f"{score}_before"] for d in quiet_devs if not math.isnan(d[f"{score}_before"])}
    quiet_after = {d["device"]: d[f"{score}_after"] for d in quiet_devs}
    common = [d for d in noisy_devs if d["device"] in truth and not math.isnan(d[f"{score}_before"])]
    out: dict[str, Any] = {"score": score, "devices": len(common)}
    if len(common) < 2:
        return out
    order_truth = sorted(truth, key=lambda k: -truth[k])
    for tag in ("before", "after"):
        vals = {d["device"]: d[f"{score}_{tag}"] for d in common}
        out[f"mae_{tag}"] = float(np.mean([abs(vals[k] - truth[k]) for k in vals]))
        order = sorted(vals, key=lambda k: -vals[k])
        out[f"tau_{tag}"] = _kendall([k for k in order_truth if k in vals], order)
    moved = [abs(quiet_after[k] - truth[k]) for k in truth if not math.isnan(quiet_after.get(k, math.nan))]
    out["quiet_change"] = float(np.mean(moved)) if moved else math.nan
    out["trust_denoised"] = bool(out["mae_after"] < out["mae_before"] and out["tau_after"] >= out["tau_before"])
    return out


# ---------------------------------------------------------------------- report
#: Each metric's standard and implementation, as the report states them.
STANDARDS = {
    "pesq_wb": "PESQ wide band, ITU-T P.862.2 (2007), `pesq` package (P.862 reference C code); ITU-T withdrew "
               "P.862 in 2024 in favour of P.863 (POLQA), which is licensed and not included",
    "pesq_nb": "PESQ narrow band, ITU-T P.862 (MOS-LQO mapping P.862.1), `pesq` package; reported for "
               "telephone-band devices",
    "estoi": "extended STOI (Jensen & Taal 2016), `pystoi`",
    "si_sdr": "scale-invariant SDR (Le Roux et al. 2019); measures waveform fidelity, so it reads very low for "
              "a band-limiting or filtering device that sounds fine: left out for narrow-band devices",
    "dnsmos_ovrl": "DNSMOS P.835 overall (Reddy et al. 2022), `sig_bak_ovr.onnx` as shipped in `speechmos`; "
                   "non-intrusive (no reference needed)",
    "asl_dbov": "active speech level, ITU-T P.56 method B (dBov)",
}


def write_report(rows: list[dict], devs: list[dict], out: Path, settings: dict[str, Any],
                 examples: dict[str, tuple[np.ndarray, np.ndarray, int]], calib: dict[str, Any] | None = None
                 ) -> dict[str, Path]:
    out.mkdir(parents=True, exist_ok=True)
    report.write_csv(out / "per_recording.csv", rows)
    report.write_csv(out / "per_device.csv", devs)
    have = [s for s in SCORES if any(not math.isnan(d[f"{s}_before"]) for d in devs)]
    pngs: list[Path] = []
    labels = [d["device"] for d in devs]
    for s in have:
        pngs.append(report.plot_bars(labels, [d[f"{s}_before"] for d in devs], [d[f"{s}_after"] for d in devs],
                                     [d[f"{s}_before_ci95"] for d in devs], [d[f"{s}_after_ci95"] for d in devs],
                                     s, out / f"device_{s}.png", f"{s} per device (mean, 95 % CI)"))
    fr = {d["device"]: [d.get(f"fr_{fc}", math.nan) for fc in FR_BANDS] for d in devs}
    if any(not math.isnan(v) for vals in fr.values() for v in vals):
        pngs.append(_plot_responses(fr, out / "frequency_response.png"))
    ok = [r for r in rows if r["status"] == "ok"]
    main_score = next((s for s in ("pesq_wb", "dnsmos_ovrl") if s in have), None)
    if main_score and ok:
        pts = [(float(r["snr_est"]), float(r[f"{main_score}_before"]), r["device"]) for r in ok
               if f"{main_score}_before" in r and not math.isnan(float(r["snr_est"]))]
        if pts:
            pngs.append(report.plot_scatter([p[0] for p in pts], [p[1] for p in pts], [p[2] for p in pts],
                                            "estimated SNR of the recording (dB)", f"{main_score} before denoising",
                                            out / "score_vs_snr.png", f"{main_score} vs estimated SNR"))
    for dev, (before, after, sr) in list(examples.items())[:3]:
        pngs.append(report.plot_spectrograms({"recording": before, "denoised": after}, sr,
                                             out / f"spectrogram_{safe_filename(dev)}.png", f"device {dev}"))
    stab = [ranking_stability(devs, s) for s in have if s != "snr_est"]
    if calib:
        report.write_csv(out / "calibration.csv", [calib])
    md = _markdown(rows, devs, have, stab, settings, pngs, calib)
    (out / "report.md").write_text(md)
    (out / "report.html").write_text(_html(md, pngs))
    return {"md": out / "report.md", "html": out / "report.html"}


def _plot_responses(fr: dict[str, list[float]], path: Path) -> Path:
    """Frequency response per device; bands whose coherence was too low are missing (unreliable)."""
    plt = report._plt()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    for dev, vals in fr.items():
        ax.semilogx(FR_BANDS[: len(vals)], vals, marker="o", ms=3, label=dev)
    ax.axhline(0.0, color="grey", lw=0.8)
    ax.set_xlabel("Hz (third-octave bands)")
    return report._save(fig, ax, path, "Frequency response against the reference (gaps: coherence < 0.5)",
                        "dB re 1 kHz", legend=True)


def _fmt(v: Any, ci: Any = None, digits: int = 2) -> str:
    if v is None or v == "" or (isinstance(v, float) and math.isnan(v)):
        return "–"
    if isinstance(v, float):
        text = f"{v:.{digits}f}"
        return f"{text} ± {ci:.{digits}f}" if isinstance(ci, float) and not math.isnan(ci) else text
    return str(v)


def _score_table(devs: list[dict], have: list[str], tag: str) -> list[str]:
    cols = [s for s in ("pesq_wb", "pesq_nb", "estoi", "si_sdr", "dnsmos_ovrl") if s in have]
    head = ["device", "n", *cols]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for d in devs:
        cells = [d["device"], str(d["n"])]
        for s in cols:
            if s == "si_sdr" and d.get("bandwidth") == "narrow":
                cells.append("n/a (band-limited)")
            else:
                cells.append(_fmt(d[f"{s}_{tag}"], d.get(f"{s}_{tag}_ci95")))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _markdown(rows, devs, have, stab, settings, pngs, calib) -> str:
    refused = [r for r in rows if r["status"] == "refused"]
    no_ref = [r for r in rows if r["status"] == "ok" and not r["reference"]]
    model = settings.get("denoiser", "the denoiser")
    primary = next((st for st in stab if st["score"] in ("pesq_wb", "dnsmos_ovrl")), None)
    lines = ["# Device quality report", "",
             f"{len(devs)} devices, {len(rows)} recordings ({len(refused)} refused, {len(no_ref)} without "
             "reference). The raw recordings' scores are the result; scores after denoising are a diagnostic "
             f"(room noise removed by {Path(str(model)).name}).", "", "## Answer", ""]
    if primary is not None:
        score = primary["score"]
        ranked = sorted(devs, key=lambda d: -(d[f"{score}_before"] if not math.isnan(d[f"{score}_before"]) else -1e9))
        ranking = ", ".join(f"{i}. {d['device']} {_fmt(d[f'{score}_before'], d.get(f'{score}_before_ci95'))}"
                            for i, d in enumerate(ranked, 1))
        resolved = sum(p["resolved"] for p in primary["pairs"] if p["when"] == "before")
        n_pairs = len(primary["pairs"]) // 2
        lines += [f"- Ranking by {score} of the raw recordings (mean ± 95 % CI): {ranking}.",
                  f"- Differences larger than their intervals: {resolved} of {n_pairs} device pairs; the other "
                  "pairs are not distinguishable on this score with these recordings.",
                  f"- Denoising {'changed' if primary['changed'] else 'did not change'} this order (Kendall tau "
                  f"{primary['kendall_tau']:.2f} between the raw and denoised orders)."]
    if calib and "mae_before" in calib:
        verdict = ("the denoised scores are closer to the quiet room and keep its order: they can be used"
                   if calib["trust_denoised"] else "denoising did not bring the scores closer to the quiet room "
                   "without changing the order: use the raw scores")
        lines += [f"- Calibration on this campaign's quiet-room recordings ({calib['devices']} devices, "
                  f"{calib['score']}): error against the quiet room {calib['mae_before']:.2f} raw vs "
                  f"{calib['mae_after']:.2f} denoised, Kendall tau {calib['tau_before']:.2f} vs "
                  f"{calib['tau_after']:.2f}; denoising moves the quiet-room scores by {calib['quiet_change']:.2f} "
                  f"on average. Verdict: {verdict}."]
    elif calib is None:
        lines += ["- No calibration: add quiet-room recordings of the same devices as DIR/quiet/<device>/ to "
                  "check on your own devices whether denoising recovers quiet-room scores."]
    lines += ["", "## Scores of the raw recordings (the result)", "", *_score_table(devs, have, "before"), "",
              f"## After removing the room noise with {Path(str(model)).name} (diagnostic)", "",
              *_score_table(devs, have, "after"), "", "## Lab measurements", "",
              "| device | band | delay ms | level dBov | level vs reference dB | noise floor dBFS (denoised) "
              "| clipping % | response change by denoising dB | retest SD PESQ |", "|---" * 9 + "|"]
    for d in devs:
        clip = d.get("clipping_rate")
        clip_pct = 100 * clip if isinstance(clip, float) else None
        lines.append(f"| {d['device']} | {d.get('bandwidth') or '–'} | {_fmt(d.get('delay_ms'), digits=1)} | "
                     f"{_fmt(d.get('asl_dbov'), digits=1)} | {_fmt(d.get('level_diff_db'), digits=1)} | "
                     f"{_fmt(d.get('noise_floor_dbfs'), digits=1)} ({_fmt(d.get('noise_floor_after_dbfs'), digits=1)}) "
                     f"| {_fmt(clip_pct, digits=3)} | {_fmt(d.get('fr_change_db'), digits=1)} | "
                     f"{_fmt(d.get('retest_sd_pesq_wb'))} |")
    lines += ["", "Frequency response per third-octave band (dB re 1 kHz) is in per_device.csv (fr_<Hz>) and the "
              "plot below; bands with a coherence under 0.5 are left out as unreliable. The noise floor after "
              "denoising and the response change (mean absolute dB over the reliable bands) show what the "
              "denoiser did besides removing the room: in a quiet room they are the device's own self-noise, hum "
              "and colouring, which an evaluation should keep.", "",
              "## Ranking stability", ""]
    for st in stab:
        resolved_b = sum(p["resolved"] for p in st["pairs"] if p["when"] == "before")
        resolved_a = sum(p["resolved"] for p in st["pairs"] if p["when"] == "after")
        n_pairs = len(st["pairs"]) // 2
        lines.append(f"- {st['score']}: ranking {'changed' if st['changed'] else 'unchanged'} by denoising (Kendall "
                     f"tau {st['kendall_tau']:.2f}); raw: {' > '.join(st['before'])}; denoised: "
                     f"{' > '.join(st['after'])}; resolved pairs {resolved_b}/{n_pairs} raw, {resolved_a}/{n_pairs} "
                     "denoised.")
    lines += ["", "## Metrics and their standards", ""] + [f"- {k}: {v}" for k, v in STANDARDS.items()]
    lines += ["", "## Settings (to reproduce)", ""] + [f"- {k}: `{v}`" for k, v in settings.items()]
    if no_ref:
        lines += ["", "## Recordings without a reference", "",
                  "These got the non-intrusive scores only (DNSMOS, estimated SNR):", ""]
        lines += [f"- {r['device']}: {Path(r['file']).name}" for r in no_ref]
    if refused:
        lines += ["", "## Refused recordings", ""]
        lines += [f"- {r['device']}: {Path(r['file']).name}: {r['note']}" for r in refused]
    lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in pngs]
    return "\n".join(lines) + "\n"


def _inline(text: str) -> str:
    """Markdown inline marks to HTML (escaped): `code`, **bold**."""
    import html
    import re

    out = html.escape(text)
    out = re.sub(r"`([^`]+)`", r"<code>\1</code>", out)
    return re.sub(r"\*\*([^*]+)\*\*", r"<b>\1</b>", out)


def _html(md: str, pngs: list[Path]) -> str:
    """A self-contained page: the markdown rendered (tables that wrap, no markdown syntax left), PNGs
    embedded as data URIs."""
    body: list[str] = []
    table: list[str] = []
    items: list[str] = []

    def flush() -> None:
        if table:
            rows = [r.strip().strip("|").split("|") for r in table if not set(r.replace("|", "").strip()) <= set("-")]
            head, *rest = rows
            body.append("<div class='tbl'><table><thead><tr>" + "".join(f"<th>{_inline(c.strip())}</th>" for c in head)
                        + "</tr></thead><tbody>" + "".join("<tr>" + "".join(f"<td>{_inline(c.strip())}</td>" for c in r)
                                                           + "</tr>" for r in rest) + "</tbody></table></div>")
            table.clear()
        if items:
            body.append("<ul>" + "".join(f"<li>{_inline(i)}</li>" for i in items) + "</ul>")
            items.clear()

    images = {p.name: p for p in pngs}
    for line in md.splitlines():
        if line.startswith("|"):
            table.append(line)
            continue
        if line.startswith("- "):
            items.append(line[2:])
            continue
        flush()
        if line.startswith("# "):
            body.append(f"<h1>{_inline(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{_inline(line[3:])}</h2>")
        elif line.startswith("![") and "](" in line:
            name = line.split("](")[1].rstrip(")")
            if name in images:
                data = base64.b64encode(images[name].read_bytes()).decode()
                body.append(f'<img alt="{name}" src="data:image/png;base64,{data}">')
        elif line.strip():
            body.append(f"<p>{_inline(line)}</p>")
    flush()
    style = ("body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;line-height:1.4}"
             ".tbl{overflow-x:auto}table{border-collapse:collapse;margin:1em 0;font-size:13px}"
             "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right;white-space:nowrap}th{white-space:normal}"
             "td:first-child,th:first-child{text-align:left}li{margin:.3em 0}code{font-size:12px;"
             "word-break:break-all;background:#f4f4f4}img{max-width:100%;display:block;margin:1em 0}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>Device quality report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>")


# ---------------------------------------------------------------------- entry points
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
