"""Simulated recording devices: named profiles with the defects real devices have, for benchmarks and
tests of device evaluation where the truth is known.

A profile turns the sound at the microphone (speech, with or without room noise) into what the device
records: its band limits (telephone band, 8 kHz G.711 mu-law codec), resonances (peaking EQ), dynamic-
range compression and clipping, self-noise and mains hum, a speakerphone's short room response, a
fixed delay and a gain. The same speech recorded in a quiet and a noisy room gives the truth (the
device's own quality) and the campaign to evaluate.

    from denoiselab.evaluation.device_sim import PROFILES, record
    y, rate = record(PROFILES["laptop"], speech_at_mic, 16000, rng)
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import signal

from denoiselab.core.audio import resample


@dataclass(frozen=True)
class DeviceProfile:
    name: str
    band_hz: tuple[float, float] | None = None          # band-pass (4th-order Butterworth)
    eq: tuple[tuple[float, float, float], ...] = ()     # peaking resonances: (Hz, dB, Q)
    compress: tuple[float, float] | None = None         # (threshold dBFS, ratio), 5 ms attack, 80 ms release
    clip: float | None = None                           # hard clip at this fraction of the peak
    codec: str | None = None                            # "mulaw8k": G.711 mu-law at 8 kHz
    self_noise_dbfs: float | None = None                # broadband self-noise (hiss) level
    hum: tuple[float, float] | None = None              # (mains Hz, dBFS) with decaying harmonics
    room_rt60_s: float | None = None                    # speakerphone: a short room response
    delay_ms: float = 0.0
    gain_db: float = 0.0
    rate: int = 16000                                   # rate of the files it writes (0: the input's)
    defects: tuple[str, ...] = field(default=())        # what a denoiser must not remove


PROFILES: dict[str, DeviceProfile] = {p.name: p for p in (
    DeviceProfile("studio_mic", band_hz=(40.0, 7900.0), self_noise_dbfs=-85.0, delay_ms=5.0),
    DeviceProfile("headset", band_hz=(100.0, 7000.0), eq=((3000.0, 6.0, 1.5),), self_noise_dbfs=-52.0,
                  delay_ms=21.0, defects=("hiss", "colouring")),
    DeviceProfile("laptop", band_hz=(150.0, 7500.0), eq=((800.0, -5.0, 1.0), (4500.0, 5.0, 2.0)),
                  compress=(-30.0, 3.0), self_noise_dbfs=-60.0, hum=(50.0, -45.0), delay_ms=37.0,
                  defects=("hum", "self-noise", "colouring", "compression")),
    DeviceProfile("phone_nb", band_hz=(300.0, 3400.0), codec="mulaw8k", delay_ms=60.0, rate=8000,
                  defects=("telephone band", "codec")),
    DeviceProfile("speakerphone", band_hz=(200.0, 7000.0), compress=(-25.0, 4.0), room_rt60_s=0.3,
                  delay_ms=45.0, defects=("room response", "compression")),
    DeviceProfile("cheap_phone", band_hz=(300.0, 3400.0), eq=((1500.0, 8.0, 1.0),), clip=0.3, codec="mulaw8k",
                  self_noise_dbfs=-50.0, delay_ms=80.0, rate=8000,
                  defects=("telephone band", "codec", "clipping", "hiss", "colouring")),
)}


def random_profile(rng: np.random.Generator) -> DeviceProfile:
    """A device drawn at random (for training): band limits, up to two resonances, maybe compression,
    clipping, a telephone codec, self-noise, hum and a short room response; no delay, the input's rate.
    Telephone-band devices mostly carry a codec (its in-band quantisation noise is a defect a model
    must learn to leave alone, and it is rare otherwise); 1 in 5 devices hear their talker through a
    short room (a speakerphone), which the target keeps."""
    narrow = rng.uniform() < 0.3
    lo = float(rng.uniform(200, 400) if narrow else np.exp(rng.uniform(np.log(40), np.log(300))))
    hi = float(rng.uniform(3200, 3600) if narrow else rng.uniform(5000, 7900))
    eq = tuple((float(np.exp(rng.uniform(np.log(300), np.log(5000)))), float(rng.uniform(-8, 8)),
                float(rng.uniform(0.7, 2.5))) for _ in range(int(rng.integers(0, 3))))
    return DeviceProfile(
        name="random", band_hz=(lo, hi), eq=eq,
        compress=(float(rng.uniform(-35, -20)), float(rng.uniform(2, 5))) if rng.uniform() < 0.3 else None,
        clip=float(rng.uniform(0.3, 0.8)) if rng.uniform() < 0.15 else None,
        codec="mulaw8k" if narrow and rng.uniform() < 0.75 else None,
        self_noise_dbfs=float(rng.uniform(-75, -45)) if rng.uniform() < 0.6 else None,
        hum=(float(rng.choice([50.0, 60.0])), float(rng.uniform(-60, -40))) if rng.uniform() < 0.25 else None,
        room_rt60_s=float(rng.uniform(0.1, 0.5)) if rng.uniform() < 0.2 else None,
        rate=0)


def record(profile: DeviceProfile, at_mic: np.ndarray, sample_rate: int, rng: np.random.Generator
           ) -> tuple[np.ndarray, int]:
    """(the device's recording, its rate). ``at_mic``: mono float at ``sample_rate``; the device's
    own noise is drawn from ``rng`` (seed it per recording for a repeatable campaign)."""
    x = np.asarray(at_mic, dtype=np.float64).copy()
    sr = sample_rate
    if profile.room_rt60_s:
        x = signal.fftconvolve(x, _short_room(profile.room_rt60_s, sr, rng))[: x.size]
    # Colouring is zero-phase, so the profile's delay_ms is the true delay of the recording (a known
    # truth for alignment checks); the magnitude responses are those of the named filters.
    for hz, db, q in profile.eq:
        b, a = _peaking(hz, db / 2, q, sr)  # filtfilt applies it twice: half the gain each way
        x = signal.filtfilt(b, a, x)
    if profile.band_hz:
        lo, hi = profile.band_hz
        x = signal.sosfiltfilt(signal.butter(2, [lo, min(hi, 0.45 * sr)], "bandpass", fs=sr, output="sos"), x)
    if profile.self_noise_dbfs is not None:
        x = x + 10 ** (profile.self_noise_dbfs / 20) * rng.standard_normal(x.size)
    if profile.hum:
        hz, db = profile.hum
        t = np.arange(x.size) / sr
        phase = rng.uniform(0, 2 * np.pi)
        x = x + 10 ** (db / 20) * sum(np.sin(2 * np.pi * hz * k * t + phase * k) / k for k in (1, 2, 3, 5))
    if profile.compress:
        x = _compress(x, sr, *profile.compress)
    x = x * 10 ** (profile.gain_db / 20)
    if profile.clip:
        level = profile.clip * np.abs(x).max()
        x = np.clip(x, -level, level)
    x = np.concatenate([np.zeros(int(round(profile.delay_ms * sr / 1000))), x])
    rate = sr
    if profile.codec == "mulaw8k":
        x = np.asarray(resample(x.astype(np.float32), sr, 8000), dtype=np.float64)
        x, rate = _mulaw(x), 8000
        if not profile.rate:  # rate 0: back at the input's rate (training keeps one rate)
            x, rate = np.asarray(resample(x.astype(np.float32), 8000, sr), dtype=np.float64)[: at_mic.size], sr
    if profile.rate and profile.rate != rate:
        x, rate = np.asarray(resample(x.astype(np.float32), rate, profile.rate), dtype=np.float64), profile.rate
    return np.clip(x, -1.0, 1.0).astype(np.float32), rate


def _peaking(hz: float, gain_db: float, q: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """RBJ cookbook peaking EQ."""
    a = 10 ** (gain_db / 40)
    w = 2 * np.pi * hz / sr
    alpha = np.sin(w) / (2 * q)
    b = np.array([1 + alpha * a, -2 * np.cos(w), 1 - alpha * a])
    den = np.array([1 + alpha / a, -2 * np.cos(w), 1 - alpha / a])
    return b / den[0], den / den[0]


def _compress(x: np.ndarray, sr: int, threshold_db: float, ratio: float) -> np.ndarray:
    """Feed-forward compressor on a smoothed RMS envelope (20 ms), make-up gain to the input's peak."""
    coef = np.exp(-1 / (0.02 * sr))
    smooth = np.sqrt(np.maximum(signal.lfilter([1 - coef], [1, -coef], x * x), 0.0))
    over = 20 * np.log10(np.maximum(smooth, 1e-9)) - threshold_db
    gain_db = np.where(over > 0, -over * (1 - 1 / ratio), 0.0)
    y = x * 10 ** (gain_db / 20)
    return y * (np.abs(x).max() / max(np.abs(y).max(), 1e-9))


def _mulaw(x: np.ndarray, mu: int = 255) -> np.ndarray:
    """8-bit G.711-style mu-law quantisation (companding, 256 levels, expansion)."""
    x = np.clip(x, -1.0, 1.0)
    y = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    q = np.round((y + 1) / 2 * 255) / 255 * 2 - 1
    return np.sign(q) * ((1 + mu) ** np.abs(q) - 1) / mu


def _short_room(rt60: float, sr: int, rng: np.random.Generator) -> np.ndarray:
    """An exponentially decaying noise tail after a direct path: a small room heard by a speakerphone."""
    n = int(rt60 * sr)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * np.exp(-6.9 * t / rt60) * 0.08  # the direct path stays the strongest
    tail[: int(0.002 * sr)] = 0.0
    tail[0] = 1.0
    return tail
