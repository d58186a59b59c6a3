"""Training augmentations that imitate what a recording device does to a mixture.

Device recordings differ from studio speech in three ways a denoiser must not mistake for noise:
the speech path is coloured (band-limited microphones and codecs, EQ), the level varies by tens of
dB, and loud passages clip. ``DeviceAugment`` draws these per training mixture (worker side, from
the item's seeded generator, like ``Mixer.draw``) and ``Mixer.mix`` applies them on the device:

- ``colour``: low-pass, high-pass and one peaking EQ (torchaudio biquads) on the clean speech
  *before* mixing, so the target keeps the device's colouring and the SNR is measured on it;
- ``level`` and ``clip``: on the finished mixture; the clipping distortion is counted as noise
  (``noise = noisy - clean``), so the loss teaches the model to remove it.

Validation and test mixtures are never augmented: only the training dataset draws parameters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch
import torchaudio.functional as AF

from denoiselab.core.ranges import checked_range

#: Batch keys the augmentation adds; their presence is what switches it on in ``Mixer.mix``.
KEYS = ("aug_lowpass_hz", "aug_highpass_hz", "aug_eq_hz", "aug_eq_gain_db", "aug_eq_q", "aug_level_db",
        "aug_clip")


@dataclass
class DeviceAugment:
    """Per-mixture probabilities and ranges (frequencies in Hz, gains in dB).

    p_lowpass / lowpass_hz: band-limit the speech (codec, small microphone).
    p_highpass / highpass_hz: remove the low end (small loudspeakers/microphones).
    p_eq / eq_hz (log-uniform) / eq_gain_db / eq_q: one peaking filter colouring the speech.
    p_level / level_db: overall level change of the mixture.
    p_clip / clip_fraction: hard clipping at this fraction of the mixture's peak (0.5..0.9 is mild).
    colour_noise: the same low-/high-pass and EQ also colour the noise: a re-recorded mixture passes
    speech and noise through one loudspeaker/microphone path (False: only the talker's path).
    """

    p_lowpass: float = 0.3
    lowpass_hz: Sequence[float] = (3400.0, 7000.0)
    p_highpass: float = 0.3
    highpass_hz: Sequence[float] = (60.0, 400.0)
    p_eq: float = 0.5
    eq_hz: Sequence[float] = (150.0, 6000.0)
    eq_gain_db: Sequence[float] = (-9.0, 9.0)
    eq_q: Sequence[float] = (0.5, 2.0)
    p_level: float = 1.0
    level_db: Sequence[float] = (-20.0, 6.0)
    p_clip: float = 0.1
    clip_fraction: Sequence[float] = (0.5, 0.9)
    colour_noise: bool = False

    def __post_init__(self) -> None:
        for name in ("p_lowpass", "p_highpass", "p_eq", "p_level", "p_clip"):
            p = float(getattr(self, name))
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"data.augment.{name} must be a probability in [0, 1], got {p}")
            setattr(self, name, p)
        self.lowpass_hz = checked_range("data.augment.lowpass_hz", self.lowpass_hz, positive=True)
        self.highpass_hz = checked_range("data.augment.highpass_hz", self.highpass_hz, positive=True)
        self.eq_hz = checked_range("data.augment.eq_hz", self.eq_hz, positive=True)
        self.eq_gain_db = checked_range("data.augment.eq_gain_db", self.eq_gain_db)
        self.eq_q = checked_range("data.augment.eq_q", self.eq_q, positive=True)
        self.level_db = checked_range("data.augment.level_db", self.level_db)
        self.clip_fraction = checked_range("data.augment.clip_fraction", self.clip_fraction, positive=True)
        if self.clip_fraction[1] > 1.0:
            raise ValueError(f"data.augment.clip_fraction must be <= 1, got {list(self.clip_fraction)}")

    def check_rate(self, sample_rate: int) -> None:
        """Filter frequencies must lie below Nyquist, or the biquads become unstable."""
        nyquist = sample_rate / 2
        for name in ("lowpass_hz", "highpass_hz", "eq_hz"):
            hi = getattr(self, name)[1]
            if hi >= nyquist:
                raise ValueError(f"data.augment.{name} upper bound {hi:g} Hz must be below Nyquist "
                                 f"({nyquist:g} Hz at data.sample_rate={sample_rate})")

    # ---- randomness (worker side) -------------------------------------------------------------
    def draw(self, rng: np.random.Generator) -> dict[str, np.float32]:
        """Per-mixture parameters; 0 means "off" for filters, 1 for clipping. Always draws the
        same count of numbers, so one switch does not shift the others' randomness."""
        u = rng.uniform(size=5)
        lowpass = rng.uniform(*self.lowpass_hz)
        highpass = rng.uniform(*self.highpass_hz)
        eq_hz = np.exp(rng.uniform(np.log(self.eq_hz[0]), np.log(self.eq_hz[1])))
        eq_gain, eq_q = rng.uniform(*self.eq_gain_db), rng.uniform(*self.eq_q)
        level, clip = rng.uniform(*self.level_db), rng.uniform(*self.clip_fraction)
        return {
            "aug_lowpass_hz": np.float32(lowpass if u[0] < self.p_lowpass else 0.0),
            "aug_highpass_hz": np.float32(highpass if u[1] < self.p_highpass else 0.0),
            "aug_eq_hz": np.float32(eq_hz if u[2] < self.p_eq else 0.0),
            "aug_eq_gain_db": np.float32(eq_gain),
            "aug_eq_q": np.float32(eq_q),
            "aug_level_db": np.float32(level if u[3] < self.p_level else 0.0),
            "aug_clip": np.float32(clip if u[4] < self.p_clip else 1.0),
            "aug_colour_noise": np.float32(1.0 if self.colour_noise else 0.0),
        }


# ---- arithmetic (device side) -----------------------------------------------------------------
def colour(clean: torch.Tensor, batch: dict[str, torch.Tensor], sample_rate: int) -> torch.Tensor:
    """Apply each item's low-pass / high-pass / peaking EQ to clean speech [B, T]."""
    out = clean.clone()
    for i in range(clean.shape[0]):
        x = out[i]
        # torchaudio's lfilter clamps to [-1, 1]; filter a scaled copy so nothing is clipped here.
        scale = float(x.abs().max().clamp_min(1e-8)) * 8.0
        x = x / scale
        lp, hp, eq = (float(batch[k][i]) for k in ("aug_lowpass_hz", "aug_highpass_hz", "aug_eq_hz"))
        if lp > 0:
            x = AF.lowpass_biquad(x, sample_rate, lp)
        if hp > 0:
            x = AF.highpass_biquad(x, sample_rate, hp)
        if eq > 0:
            x = AF.equalizer_biquad(x, sample_rate, eq, float(batch["aug_eq_gain_db"][i]),
                                    float(batch["aug_eq_q"][i]))
        out[i] = x * scale
    return out


def level_and_clip(noisy: torch.Tensor, clean: torch.Tensor, batch: dict[str, torch.Tensor]
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Scale the mixture by its level, clip it at its fraction of the peak; noise = noisy - clean."""
    gain = torch.pow(10.0, batch["aug_level_db"].to(noisy.dtype) / 20.0).unsqueeze(-1)
    noisy, clean = noisy * gain, clean * gain
    limit = noisy.abs().amax(-1, keepdim=True) * batch["aug_clip"].to(noisy.dtype).unsqueeze(-1)
    noisy = torch.maximum(torch.minimum(noisy, limit), -limit)
    return noisy, clean, noisy - clean
