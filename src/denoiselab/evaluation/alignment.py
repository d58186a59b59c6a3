"""Aligning a device recording with the reference signal that was played to it.

The delay comes from GCC-PHAT (generalised cross-correlation with phase transform) computed *in the band
the device passes*: a telephone-band device (300-3400 Hz) at 5 dB SNR has almost only noise outside its
band, and whitening those bins (what plain PHAT does) buries the true peak under noise peaks. The band
is read off the recording's own spectrum. A parabolic fit around the peak gives a sub-sample delay.

Whether the reference is the right one is judged by the peak's *prominence*: its height against the
background of the correlation (a robust z-score). The right reference gives one peak far above the rest
even at 0 dB SNR, in a reverberant room or through a codec; a wrong one (other speech) does not. The
broadband correlation after alignment is reported too, but it is no verdict: a good telephone reads
low on it (its band is a third of the reference's).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import signal

from denoiselab.core.errors import UserError

#: Peak prominence (robust z-score of the band-limited GCC-PHAT peak) below which a reference is refused.
MIN_CONFIDENCE = 30.0


class AlignmentError(UserError):
    """The reference does not match the recording (no trustworthy correlation peak)."""


@dataclass
class Alignment:
    delay: float  # samples the recording lags the reference (sub-sample)
    correlation: float  # normalised correlation of the aligned signals in the device's band, [-1, 1]
    gain: float  # least-squares gain mapping the reference onto the recording (in band)
    confidence: float  # prominence of the correlation peak (robust z-score); >= MIN_CONFIDENCE accepted
    band_hz: tuple[float, float]  # the band the delay was estimated in

    @property
    def delay_samples(self) -> int:
        return int(round(self.delay))


def passband(x: np.ndarray, sr: int, floor_db: float = 30.0) -> tuple[float, float]:
    """The band a recording carries: where its smoothed spectrum is within ``floor_db`` of its peak
    (speech band 80 Hz .. 0.95 x Nyquist at most)."""
    nper = min(1024, max(64, 2 ** int(np.log2(max(64, x.size // 8)))))
    f, p = signal.welch(np.asarray(x, dtype=np.float64), sr, nperseg=nper)
    db = 10 * np.log10(np.maximum(p, 1e-20))
    db = np.convolve(db, np.ones(5) / 5, mode="same")
    usable = (f >= 80.0) & (f <= 0.95 * sr / 2)
    strong = usable & (db >= db[usable].max() - floor_db)
    if not strong.any():
        return 80.0, 0.95 * sr / 2
    idx = np.flatnonzero(strong)
    return float(f[idx[0]]), float(f[idx[-1]])


def gcc_phat(rec: np.ndarray, ref: np.ndarray, max_delay: int | None = None, band: tuple[float, float] | None = None,
             sr: int = 16000) -> tuple[float, float, float]:
    """(delay of rec relative to ref in samples, sub-sample; PHAT peak height; peak prominence), with
    the phase transform restricted to ``band`` (Hz) when given."""
    n = rec.size + ref.size
    nfft = 1 << (n - 1).bit_length()
    cross = np.fft.rfft(rec, nfft) * np.conj(np.fft.rfft(ref, nfft))
    weight = 1.0 / np.maximum(np.abs(cross), 1e-12)
    if band is not None:
        freqs = np.fft.rfftfreq(nfft, 1 / sr)
        weight = weight * ((freqs >= band[0]) & (freqs <= band[1]))
    cc = np.fft.irfft(cross * weight, nfft)
    if max_delay is not None and int(max_delay) < 1:  # cc[-0:] below would be the whole array
        raise ValueError(f"max_delay must be at least one sample, got {max_delay}")
    max_shift = nfft // 2 if max_delay is None else min(int(max_delay), nfft // 2)
    cc = np.concatenate([cc[-max_shift:], cc[: max_shift + 1]])  # lags -max_shift..max_shift
    k = int(np.argmax(cc))
    shift = float(k - max_shift)
    if 0 < k < cc.size - 1:  # parabolic interpolation of the peak
        y0, y1, y2 = cc[k - 1], cc[k], cc[k + 1]
        denom = y0 - 2 * y1 + y2
        if abs(denom) > 1e-12:
            shift += 0.5 * (y0 - y2) / denom
    background = np.delete(np.abs(cc), np.arange(max(0, k - 3), min(cc.size, k + 4)))
    med = float(np.median(background))
    spread = 1.4826 * float(np.median(np.abs(background - med))) or 1e-12
    return shift, float(cc[k]), float((cc[k] - med) / spread)


def shift(x: np.ndarray, delay: int, length: int) -> np.ndarray:
    """x advanced by ``delay`` samples (x[delay:]) and trimmed/zero-padded to ``length``."""
    out = np.zeros(length, dtype=np.float32)
    src = x[max(0, delay):]
    dst_start = max(0, -delay)
    n = max(0, min(length - dst_start, src.size))
    out[dst_start:dst_start + n] = src[:n]
    return out


def align(rec: np.ndarray, ref: np.ndarray, max_delay: int | None = None, min_correlation: float | None = None,
          sr: int = 16000, min_confidence: float = MIN_CONFIDENCE) -> tuple[Alignment, np.ndarray]:
    """Estimate the delay, and return (Alignment, recording aligned to the reference's length).

    Raises AlignmentError when the correlation peak is not prominent enough to trust (a wrong
    reference), or, when ``min_correlation`` is given, when the in-band correlation is below it.
    """
    rec = np.asarray(rec, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    band = passband(rec, sr)
    delay, _, confidence = gcc_phat(rec, ref, max_delay, band, sr)
    aligned = shift(rec, int(round(delay)), ref.size).astype(np.float64)
    sos = signal.butter(4, [band[0], min(band[1], 0.99 * sr / 2)], "bandpass", fs=sr, output="sos")
    a_band, r_band = signal.sosfiltfilt(sos, aligned), signal.sosfiltfilt(sos, ref)
    denom = np.linalg.norm(a_band) * np.linalg.norm(r_band)
    corr = float(np.dot(a_band, r_band) / denom) if denom > 0 else 0.0
    gain = float(np.dot(a_band, r_band) / max(np.dot(r_band, r_band), 1e-20))
    result = Alignment(delay=delay, correlation=corr, gain=gain, confidence=confidence, band_hz=band)
    if confidence < min_confidence:
        raise AlignmentError(f"the reference does not match this recording: no clear correlation peak "
                             f"(prominence {confidence:.1f} < {min_confidence:g} in {band[0]:.0f}-{band[1]:.0f} Hz; "
                             "wrong reference file?)")
    if min_correlation is not None and corr < min_correlation:
        raise AlignmentError(f"the reference does not match this recording: in-band correlation {corr:.2f} after "
                             f"alignment is below {min_correlation:.2f} (wrong reference file?)")
    return result, aligned.astype(np.float32)


def pair_offset(noisy: np.ndarray, clean: np.ndarray, rate: int, seconds: float = 30.0) -> tuple[int, bool]:
    """(samples the noisy file lags its clean reference, 0 under 1.5; whether the two correlate clearly at all),
    from GCC-PHAT over their first ``seconds`` (a recording's latency is constant) and lags up to 1 s."""
    k = int(seconds * rate)
    x, ref = np.asarray(noisy[:k], np.float64), np.asarray(clean[:k], np.float64)
    if min(x.size, ref.size) < rate // 10 or not (np.any(x) and np.any(ref)):
        return 0, True  # too short or silent to find an offset in; the metrics say what is wrong
    try:
        found, _ = align(x, ref, max_delay=rate, sr=rate)
    except AlignmentError:
        return 0, False
    # the peak's sub-sample fit wanders by up to about half a sample on pairs that line up exactly
    return (found.delay_samples if abs(found.delay) >= 1.5 else 0), True
