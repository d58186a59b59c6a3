"""Mixing clean speech and noise: the one implementation that training, evaluation test sets,
``denoiselab-prepare`` pre-mixes and the demo corpus all use.

Functions work over the last axis, batched or not, on numpy arrays or torch tensors (on any
device) and return the type they were given. Powers are computed in float64 so that a drawn
SNR is hit to a hundredth of a dB whatever the signal level.
"""

from __future__ import annotations

from typing import TypeVar

import numpy as np
import torch

Array = TypeVar("Array", np.ndarray, torch.Tensor)


def _torch(x) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x)) if isinstance(x, np.ndarray) else x


def _back(t: torch.Tensor, like) -> np.ndarray | torch.Tensor:
    return t.numpy() if isinstance(like, np.ndarray) else t


def snr_gain(clean: Array, noise: Array, snr_db) -> Array:
    """Gain for ``noise`` so that ``clean + gain * noise`` has the SNR ``snr_db`` (dB), per row.

    ``snr_db`` is a number or one value per row; the result has a trailing axis of 1 for rows.
    """
    c, n = _torch(clean), _torch(noise)
    target = torch.as_tensor(snr_db, dtype=torch.float64, device=c.device)
    p_clean = c.double().pow(2).mean(-1)
    p_noise = n.double().pow(2).mean(-1).clamp_min(1e-20)
    gain = torch.sqrt(p_clean / (p_noise * torch.pow(10.0, target / 10.0))).to(n.dtype).unsqueeze(-1)
    return _back(gain, clean)


def peak_normalize(noisy: Array, *others: Array, peak: float = 0.99) -> tuple[Array, ...]:
    """Scale ``noisy`` (and the signals that make it up, by the same factor) down so that its peak
    is at most ``peak``; louder-than-needed mixtures are never scaled up."""
    x = _torch(noisy)
    top = x.abs().amax(-1, keepdim=True).clamp_min(1e-12)
    factor = torch.clamp(peak / top, max=1.0).to(x.dtype)
    return tuple(_back(_torch(s) * factor, s) for s in (noisy, *others))


def mix_at_snr(clean: Array, noise: Array, snr_db, peak: float | None = 0.99) -> tuple[Array, Array, Array]:
    """(noisy, clean, noise) with the noise scaled to ``snr_db`` against the clean signal and the
    three peak-normalised together (``peak=None`` leaves the level alone)."""
    scaled = _back(_torch(noise) * _torch(snr_gain(clean, noise, snr_db)), noise)
    noisy = _back(_torch(clean) + _torch(scaled), clean)
    if peak is None:
        return noisy, clean, scaled
    return peak_normalize(noisy, clean, scaled, peak=peak)  # type: ignore[return-value]


def crop_or_pad(wave: np.ndarray, length: int, rng: np.random.Generator, random: bool = True) -> np.ndarray:
    """A ``length`` window of ``wave``: random offset if longer, zero-padded at a random place if shorter."""
    n = wave.shape[0]
    if n >= length:
        start = int(rng.integers(0, n - length + 1)) if random else 0
        return np.array(wave[start:start + length], dtype=np.float32)
    out = np.zeros(length, dtype=np.float32)
    start = int(rng.integers(0, length - n + 1)) if random else 0
    out[start:start + n] = wave
    return out


def loop_crop(wave: np.ndarray, length: int, rng: np.random.Generator) -> np.ndarray:
    """A ``length`` window of noise; short noise recordings are looped, starting at a random phase."""
    n = wave.shape[0]
    if n >= length:
        return crop_or_pad(wave, length, rng)
    start = int(rng.integers(0, n))
    idx = (start + np.arange(length)) % n
    return np.asarray(wave, dtype=np.float32)[idx]
