"""What a test lab measures on every aligned recording/reference pair, next to the quality scores:
frequency response (with coherence, so bands the device does not really pass read as unreliable),
active speech level by ITU-T P.56 (method B) and its difference to the reference, the noise floor in
speech pauses, the clipping rate and the bandwidth class."""

from __future__ import annotations

import math

import numpy as np
from scipy import signal

from denoiselab.evaluation.alignment import passband

#: Third-octave centres (Hz) reported for the frequency response.
FR_BANDS = (100, 125, 160, 200, 250, 315, 400, 500, 630, 800, 1000, 1250, 1600, 2000, 2500, 3150, 4000, 5000,
            6300)
#: Below this coherence a band of the response is not trusted (noise or non-linearity dominates it).
MIN_COHERENCE = 0.5


def frequency_response(rec: np.ndarray, ref: np.ndarray, sr: int) -> dict[int, tuple[float, float]]:
    """{third-octave centre: (gain dB relative to 1 kHz, coherence)} of an aligned recording against
    its reference (H1 estimate: cross-spectrum / reference auto-spectrum)."""
    n = min(rec.size, ref.size)
    x, y = np.asarray(ref[:n], np.float64), np.asarray(rec[:n], np.float64)
    nper = min(2048, max(256, 2 ** int(np.log2(max(256, n // 16)))))
    f, pxy = signal.csd(x, y, sr, nperseg=nper)
    _, pxx = signal.welch(x, sr, nperseg=nper)
    _, coh = signal.coherence(x, y, sr, nperseg=nper)
    h = np.abs(pxy) / np.maximum(pxx, 1e-20)
    out: dict[int, tuple[float, float]] = {}
    for fc in FR_BANDS:
        if fc * 2 ** (1 / 6) >= sr / 2:
            continue
        sel = (f >= fc * 2 ** (-1 / 6)) & (f < fc * 2 ** (1 / 6))
        if sel.any():
            out[fc] = (float(np.mean(h[sel])), float(np.mean(coh[sel])))
    ref_gain = out.get(1000, (np.nan, 0.0))[0]
    return {fc: (20 * math.log10(max(g, 1e-12) / max(ref_gain, 1e-12)), c) for fc, (g, c) in out.items()}


def active_speech_level(x: np.ndarray, sr: int) -> tuple[float, float]:
    """(active speech level in dBov, activity factor) by ITU-T P.56 method B: a 30 ms envelope with a
    200 ms hang-over, thresholds every 2 dB, the level where the active level sits 15.9 dB above the
    threshold (0 dBov = a full-scale square wave)."""
    x = np.asarray(x, np.float64)
    if x.size == 0 or not np.any(x):
        return -math.inf, 0.0
    g = math.exp(-1 / (sr * 0.03))
    env = signal.lfilter([(1 - g) ** 2], [1, -2 * g, g * g], np.abs(x))  # two one-pole smoothers
    hang = int(0.2 * sr)
    energy = float(np.sum(x ** 2))
    thresholds = 2.0 ** np.arange(-15, 0.5, 1 / 3.0)  # 2 dB steps, like the G.191 sv56 ladder
    active_counts = []
    for c in thresholds:
        above = env >= c
        idx = np.flatnonzero(above)
        if idx.size == 0:
            active_counts.append(0)
            continue
        held = np.zeros(x.size, bool)  # hang-over: a sample counts as active up to 200 ms after the envelope drops
        starts = idx
        ends = np.minimum(idx + hang, x.size)
        marks = np.zeros(x.size + 1, int)
        np.add.at(marks, starts, 1)
        np.add.at(marks, ends, -1)
        held = np.cumsum(marks[:-1]) > 0
        active_counts.append(int(held.sum()))
    active = np.array(active_counts, float)
    with np.errstate(divide="ignore"):
        asl = 10 * np.log10(energy / np.maximum(active, 1))
        diff = asl - 20 * np.log10(thresholds)
    margin = 15.9
    ok = np.flatnonzero(diff <= margin)
    if ok.size == 0 or active[ok[0]] == 0:
        return 10 * math.log10(energy / x.size), 1.0
    j = ok[0]
    if j > 0:  # interpolate between the ladder steps for the level where diff == margin
        w = (diff[j - 1] - margin) / max(diff[j - 1] - diff[j], 1e-9)
        level = asl[j - 1] + w * (asl[j] - asl[j - 1])
        act = (active[j - 1] + w * (active[j] - active[j - 1])) / x.size
    else:
        level, act = asl[j], active[j] / x.size
    return float(level), float(act)


def noise_floor(rec: np.ndarray, ref: np.ndarray, sr: int, frame_s: float = 0.02) -> float:
    """RMS level (dBFS) of the recording in the reference's speech pauses (frames 30 dB below its loudest)."""
    n = int(frame_s * sr)
    k = min(rec.size, ref.size) // n
    if k < 3:
        return math.nan
    r = np.asarray(ref[: k * n], np.float64).reshape(k, n)
    y = np.asarray(rec[: k * n], np.float64).reshape(k, n)
    e = 10 * np.log10(np.mean(r ** 2, 1) + 1e-20)
    quiet = e < e.max() - 30
    if not quiet.any():
        return math.nan
    return float(10 * np.log10(np.mean(y[quiet] ** 2) + 1e-20))


def clipping_rate(x: np.ndarray) -> float:
    """Share of samples above 70 % of the recording's peak. Speech keeps well under 1 % of its samples
    there (0.2-0.35 % measured on clean and band-limited devices); a clipped or hard-limited recording
    piles them up (12 % for a device clipping at 15 % of its peak), also after the resampling that
    turns its flat tops into ringing (which defeats flat-top counting)."""
    a = np.abs(np.asarray(x, np.float64))
    if a.size < 2 or a.max() <= 0:
        return 0.0
    return float(np.mean(a >= 0.7 * a.max()))


def bandwidth_class(x: np.ndarray, sr: int) -> str:
    """narrow (to 4 kHz, telephone), wide (to 8 kHz), super-wide (beyond) from the recording's own band."""
    hi = passband(x, sr)[1] if sr > 8000 else sr / 2
    if hi <= 4200:
        return "narrow"
    return "wide" if hi <= 8200 else "super-wide"


def measure(rec: np.ndarray, ref: np.ndarray, sr: int, native: np.ndarray, native_sr: int,
            denoised: np.ndarray | None = None, native_denoised: np.ndarray | None = None) -> dict[str, float | str]:
    """All lab measurements of one aligned pair (``rec``/``ref`` at ``sr``; ``native``: the recording at
    its own rate, for bandwidth and clipping); with ``denoised`` (aligned, at ``sr``) and ``native_denoised``
    also what denoising did to the device's defects (defect_change, on the same response estimate)."""
    level, activity = active_speech_level(rec, sr)
    ref_level, _ = active_speech_level(ref, sr)
    row: dict[str, float | str] = {"asl_dbov": round(level, 2), "asl_ref_dbov": round(ref_level, 2),
                                   "level_diff_db": round(level - ref_level, 2), "activity": round(activity, 3),
                                   "noise_floor_dbfs": round(noise_floor(rec, ref, sr), 2),
                                   "clipping_rate": round(clipping_rate(native), 5),
                                   "bandwidth": bandwidth_class(native, native_sr)}
    response = frequency_response(rec, ref, sr)
    for fc, (gain, coh) in response.items():
        row[f"fr_{fc}"] = round(gain, 2) if coh >= MIN_COHERENCE else math.nan
        row[f"coh_{fc}"] = round(coh, 3)
    if denoised is not None:
        row.update(defect_change(rec, denoised, ref, sr,
                                 denoised if native_denoised is None else native_denoised, before=response))
    return row


def defect_change(rec: np.ndarray, denoised: np.ndarray, ref: np.ndarray, sr: int, native_denoised: np.ndarray,
                  before: dict[int, tuple[float, float]] | None = None) -> dict[str, float]:
    """What a denoiser did to the device's own defects, from one aligned pair and its denoised version
    (``rec``/``denoised``/``ref`` at ``sr``): the noise floor in the speech pauses after denoising (a
    device's self-noise and hum are that floor in a quiet room), the clipping rate after, and the change of
    the frequency response (colouring): mean absolute difference in dB over the bands reliable in both.
    ``before``: the recording's response when already estimated (measure passes its own)."""
    before = frequency_response(rec, ref, sr) if before is None else before
    after = frequency_response(denoised, ref, sr)
    moved = [abs(after[fc][0] - g) for fc, (g, c) in before.items()
             if c >= MIN_COHERENCE and fc in after and after[fc][1] >= MIN_COHERENCE]
    return {"noise_floor_after_dbfs": round(noise_floor(denoised, ref, sr), 2),
            "clipping_rate_after": round(clipping_rate(native_denoised), 5),
            "fr_change_db": round(float(np.mean(moved)), 2) if moved else math.nan}
