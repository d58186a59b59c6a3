"""On-the-fly mixing of clean speech and noise.

Randomness and arithmetic are split on purpose:
- ``Mixer.draw`` picks the per-mixture parameters (gains, SNR) from a numpy generator seeded by
  (seed, item key). The item key already encodes epoch and rank (see ``EpochSampler``), so the
  mixtures are new every epoch, different on every rank, identical across runs, and a resumed
  run continues with exactly the mixtures it would have seen: the "random state" is the
  (epoch, position) that Lightning's checkpoint already stores.
- ``Mixer.mix`` does the scaling and summing batched, on whatever device the batch is on
  (called from ``on_after_batch_transfer``), so CPU workers only read audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from denoiselab.core.mixing import peak_normalize, snr_gain
from denoiselab.core.ranges import checked_range
from denoiselab.core.rooms import KEY as rooms_key
from denoiselab.core.rooms import RirBank, reverberate
from denoiselab.training.data import augment as aug
from denoiselab.training.data.device_path import KEY as device_key
from denoiselab.training.data.device_path import QUIET_KEY as device_quiet
from denoiselab.training.data.device_path import through_devices

MODES = ("gain", "snr")


@dataclass
class Mixer:
    """How clean and noise clips become a noisy mixture.

    mode: ``gain`` (reference: clean x U(clean_gain), noise x U(noise_gain)) or
    ``snr`` (noise scaled so the mixture has an SNR drawn uniformly from ``snr_db``).
    noises_per_mixture: how many noise clips are summed into one mixture.
    peak_normalize: scale the whole mixture (and its targets) down when its peak exceeds ``peak``.
    """

    mode: str = "gain"
    clean_gain: Sequence[float] = (0.5, 3.0)
    noise_gain: Sequence[float] = (0.5, 3.0)
    snr_db: Sequence[float] = (-5.0, 20.0)
    noises_per_mixture: int = 1
    peak_normalize: bool = True
    peak: float = 0.99

    def __post_init__(self) -> None:
        self.clean_gain = checked_range("data.mix.clean_gain", self.clean_gain, positive=True)
        self.noise_gain = checked_range("data.mix.noise_gain", self.noise_gain, positive=True)
        self.snr_db = checked_range("data.mix.snr_db", self.snr_db)
        if self.mode not in MODES:
            raise ValueError(f"data.mix.mode={self.mode!r} is not allowed; choose one of {', '.join(MODES)}")
        if int(self.noises_per_mixture) < 1:
            raise ValueError(f"data.mix.noises_per_mixture must be >= 1, got {self.noises_per_mixture}")
        self.noises_per_mixture = int(self.noises_per_mixture)
        if not 0.0 < float(self.peak) <= 1.0:
            raise ValueError(f"data.mix.peak must be in (0, 1], got {self.peak}")

    # ---- randomness (worker side) -------------------------------------------------------------
    def draw(self, rng: np.random.Generator) -> dict[str, np.ndarray]:
        """Per-mixture parameters as small float32 arrays (collated into the batch)."""
        k = self.noises_per_mixture
        clean_gain = rng.uniform(*self.clean_gain)
        noise_gain = rng.uniform(*self.noise_gain, size=k)
        snr = rng.uniform(*self.snr_db) if self.mode == "snr" else np.nan
        return {
            "clean_gain": np.float32(clean_gain),
            "noise_gain": noise_gain.astype(np.float32),
            "snr_db": np.float32(snr),
        }

    # ---- arithmetic (device side) -------------------------------------------------------------
    def mix(self, batch: dict[str, torch.Tensor], sample_rate: int = 16000,
            rooms: RirBank | None = None) -> dict[str, torch.Tensor]:
        """Turn {clean [B,T], noise [B,K,T], params} into {noisy, clean, noise} on the batch's device.

        Batches that carry ``aug_*`` parameters (training items drawn with a ``DeviceAugment``)
        are also coloured, level-shifted and clipped (``training.data.augment``); those with a room id
        and a bank of room responses are reverberated, the target being the talker's early response
        (``core.rooms``). The SNR is measured on the speech as the microphone hears it.
        ``noise`` in the result is always what the model must remove: ``noisy - clean``.
        """
        augmented = aug.KEYS[0] in batch
        clean = batch["clean"] * batch["clean_gain"].unsqueeze(-1)
        noise = (batch["noise"] * batch["noise_gain"].unsqueeze(-1)).sum(1)
        if augmented:
            clean = aug.colour(clean, batch, sample_rate)
            if "aug_colour_noise" in batch and bool((batch["aug_colour_noise"] > 0).any()):
                noise = aug.colour(noise, batch, sample_rate)
        heard, target = clean, clean
        if rooms is not None and rooms_key in batch:
            heard, target, noise = reverberate(clean, noise, batch[rooms_key], rooms)
        if self.mode == "snr":
            noise = noise * snr_gain(heard, noise, batch["snr_db"])
        noisy = heard + noise
        clean, noise = target, noisy - target
        if augmented:
            noisy, clean, noise = aug.level_and_clip(noisy, clean, batch)
        if device_key in batch:  # the device's own defects in input and target alike
            noisy, clean = through_devices(noisy, clean, batch[device_key], sample_rate, batch.get(device_quiet))
            noise = noisy - clean
        if self.peak_normalize:
            noisy, clean, noise = peak_normalize(noisy, clean, noise, peak=self.peak)
        out = {k: v for k, v in batch.items() if k not in ("clean", "noise")}
        out.update(noisy=noisy, clean=clean, noise=noise)
        return out
