"""Aligning a device recording with the reference signal that was played to it.

GCC-PHAT (generalised cross-correlation with phase transform) finds the delay even when the
device colours the spectrum; a parabolic fit around the peak gives a sub-sample estimate. After
alignment the normalised correlation between reference and recording says whether the
reference is the right one at all.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from denoiselab.core.errors import UserError


class AlignmentError(UserError):
    """The reference does not match the recording (correlation too weak to trust)."""


@dataclass
class Alignment:
    delay: float  # samples the recording lags the reference (sub-sample)
    correlation: float  # normalised correlation of the aligned signals, in [-1, 1]
    gain: float  # least-squares gain mapping the reference onto the recording

    @property
    def delay_samples(self) -> int:
        return int(round(self.delay))


def gcc_phat(rec: np.ndarray, ref: np.ndarray, max_delay: int | None = None) -> tuple[float, float]:
    """(delay of rec relative to ref in samples, sub-sample; PHAT peak height)."""
    n = rec.size + ref.size
    nfft = 1 << (n - 1).bit_length()
    R = np.fft.rfft(rec, nfft) * np.conj(np.fft.rfft(ref, nfft))
    R /= np.maximum(np.abs(R), 1e-12)
    cc = np.fft.irfft(R, nfft)
    max_shift = nfft // 2 if max_delay is None else min(int(max_delay), nfft // 2)
    cc = np.concatenate([cc[-max_shift:], cc[: max_shift + 1]])  # lags -max_shift..max_shift
    k = int(np.argmax(cc))
    shift = float(k - max_shift)
    if 0 < k < cc.size - 1:  # parabolic interpolation of the peak
        y0, y1, y2 = cc[k - 1], cc[k], cc[k + 1]
        denom = y0 - 2 * y1 + y2
        if abs(denom) > 1e-12:
            shift += 0.5 * (y0 - y2) / denom
    return shift, float(cc[k])


def shift(x: np.ndarray, delay: int, length: int) -> np.ndarray:
    """x advanced by ``delay`` samples (x[delay:]) and trimmed/zero-padded to ``length``."""
    out = np.zeros(length, dtype=np.float32)
    src = x[max(0, delay):]
    dst_start = max(0, -delay)
    n = max(0, min(length - dst_start, src.size))
    out[dst_start:dst_start + n] = src[:n]
    return out


def align(rec: np.ndarray, ref: np.ndarray, max_delay: int | None = None,
          min_correlation: float = 0.3) -> tuple[Alignment, np.ndarray]:
    """Estimate the delay, and return (Alignment, recording aligned to the reference's length).

    Raises AlignmentError when the aligned correlation is below ``min_correlation``.
    """
    rec = np.asarray(rec, dtype=np.float64)
    ref = np.asarray(ref, dtype=np.float64)
    delay, _ = gcc_phat(rec, ref, max_delay)
    aligned = shift(rec, int(round(delay)), ref.size).astype(np.float64)
    denom = np.linalg.norm(aligned) * np.linalg.norm(ref)
    corr = float(np.dot(aligned, ref) / denom) if denom > 0 else 0.0
    gain = float(np.dot(aligned, ref) / max(np.dot(ref, ref), 1e-20))
    result = Alignment(delay=delay, correlation=corr, gain=gain)
    if corr < min_correlation:
        raise AlignmentError(f"the reference does not match this recording: correlation {corr:.2f} after "
                             f"alignment is below {min_correlation:.2f} (wrong reference file?)")
    return result, aligned.astype(np.float32)
