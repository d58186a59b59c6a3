"""Training for device evaluation: the device's own defects belong to the target.

A device evaluation cleans recordings so that the *device* is judged, not the room. A model trained to
map a device recording to studio speech also removes the device's hiss, hum, clipping and colouring,
and so repairs exactly what the evaluation should see. Here a share of the training mixtures pass
through a randomly drawn device (``evaluation.device_sim.random_profile``) twice, with the same
device noise: once as recorded in the noisy room (the input) and once as the same device would have
recorded the talker in a quiet room (the target). Only the room noise is left to remove.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from denoiselab.core.errors import UserError

#: Batch key (seed of the drawn device, -1 = none); its presence switches the device path on.
KEY = "device_seed"
#: Batch key: 1 where the device recorded the talker in a quiet room (no room noise in the input).
QUIET_KEY = "device_quiet"


@dataclass
class DevicePath:
    """p: share of training mixtures recorded through a random device (target included); quiet: share of
    those recorded in a quiet room (input = target: the device's recording of the talker alone), so that
    the model sees that a device's own floor, band and codec are not noise even where nothing else is."""

    p: float = 0.5
    quiet: float = 0.0

    def __post_init__(self) -> None:
        for name in ("p", "quiet"):
            value = float(getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise UserError(f"data.device_path.{name} must be a probability in [0, 1], got {value}")
            setattr(self, name, value)

    def draw(self, rng: np.random.Generator) -> dict[str, np.int64]:
        u, seed = rng.uniform(), rng.integers(2**31 - 1)
        through = u < self.p
        q = rng.uniform() if self.quiet > 0 else 1.0  # no extra draw: quiet=0 keeps earlier recipes' streams
        return {KEY: np.int64(seed if through else -1), QUIET_KEY: np.int64(through and q < self.quiet)}


def through_devices(noisy: torch.Tensor, clean: torch.Tensor, seeds: torch.Tensor, sample_rate: int,
                    quiet: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows with a seed >= 0: (the device's recording of the mixture, its recording of the talker alone),
    drawn from that seed, with the same self-noise and hum in both; rows flagged in ``quiet``: the
    device's recording of the talker alone in both; other rows unchanged."""
    from denoiselab.evaluation.device_sim import random_profile, record

    if not bool((seeds >= 0).any()):
        return noisy, clean
    out_noisy, out_clean = noisy.clone(), clean.clone()
    for i in torch.nonzero(seeds >= 0).flatten().tolist():
        seed = int(seeds[i])
        profile = random_profile(np.random.default_rng(seed))
        heard = clean if quiet is not None and bool(quiet[i]) else noisy
        for src, dst in ((heard, out_noisy), (clean, out_clean)):
            y, _ = record(profile, src[i].detach().cpu().numpy(), sample_rate, np.random.default_rng(seed + 1))
            dst[i] = torch.from_numpy(y[: src.shape[-1]]).to(dst.device, dst.dtype)
    return out_noisy, out_clean
