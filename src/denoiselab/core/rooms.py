"""Room reverberation: simulated room impulse responses (pyroomacoustics' image method), generated once
per setting and cached, applied batched on any device (training mixtures on the training device,
reverberant test sets in denoiselab-evaluate with a bank of another seed).

Each bank entry is one simulated shoebox room (random size, reverberation time and positions) with
two sources and one microphone: the talker and a noise source elsewhere in the same room. What the
model hears is the talker through the full response plus the noise through its own response; what it
must produce is the talker through the *early* response only (direct path + the first ``early_ms``),
so it learns to remove late reverberation and noise but keeps the talker as a near microphone hears
it (the GTCRN/DNS practice). Validation mixtures are never reverberated; reverberant evaluation sets
use a bank of a different seed (rooms never seen in training).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torchaudio.functional as AF

from denoiselab.core.errors import UserError
from denoiselab.core.ranges import checked_range

log = logging.getLogger(__name__)

#: Samples kept before the direct path's peak (the image method's fractional-delay filter is centred on
#: it): every response, and so input and target alike, is delayed by this much.
DIRECT_LEAD_S = 0.0025
#: Batch key the augmentation adds (bank index, -1 = dry); its presence switches reverberation on.
KEY = "room_id"


@dataclass
class RoomAugment:
    """p: share of training mixtures that are reverberated; rooms: bank size (distinct rooms);
    rt60_s: reverberation time range; size_m: [[min x, y, z], [max x, y, z]] room dimensions;
    early_ms: what counts as the direct sound in the target; max_seconds: response length kept;
    max_order: image-method reflection order cap (run time); seed: which rooms."""

    p: float = 0.5
    rooms: int = 400
    rt60_s: Sequence[float] = (0.15, 0.9)
    size_m: Sequence[Sequence[float]] = ((3.0, 2.5, 2.2), (12.0, 10.0, 4.5))
    early_ms: float = 50.0
    max_seconds: float = 1.0
    max_order: int = 40
    seed: int = 0
    cache_dir: str | None = None
    _bank: "RirBank | None" = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not 0.0 <= float(self.p) <= 1.0:
            raise UserError(f"data.rooms.p must be a probability in [0, 1], got {self.p}")
        if int(self.rooms) < 1:
            raise UserError(f"data.rooms.rooms must be >= 1, got {self.rooms}")
        self.rt60_s = checked_range("data.rooms.rt60_s", self.rt60_s, positive=True)
        lo, hi = (tuple(float(v) for v in corner) for corner in self.size_m)
        if len(lo) != 3 or len(hi) != 3 or any(a <= 1.0 or a > b for a, b in zip(lo, hi)):
            raise UserError("data.rooms.size_m must be [[x, y, z], [x, y, z]] with 1 m < min <= max, "
                            f"got {self.size_m}")
        self.size_m = (lo, hi)
        if not 0.0 < float(self.early_ms) < 1000.0 * float(self.max_seconds):
            raise UserError(f"data.rooms.early_ms must be in (0, max_seconds), got {self.early_ms}")
        self.p, self.rooms, self.early_ms = float(self.p), int(self.rooms), float(self.early_ms)

    def settings(self, sample_rate: int) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("_bank", "cache_dir", "p")}
        return {**json.loads(json.dumps(d)), "sample_rate": int(sample_rate), "version": 2}

    def bank(self, sample_rate: int) -> "RirBank":
        if self._bank is None or self._bank.sample_rate != sample_rate:
            self._bank = RirBank.build(self, sample_rate)
        return self._bank

    # ---- randomness (worker side)
    def draw(self, rng: np.random.Generator) -> dict[str, np.int64]:
        u, room = rng.uniform(), rng.integers(self.rooms)
        return {KEY: np.int64(room if u < self.p else -1)}


@dataclass
class RirBank:
    """Responses [rooms, L] (float32; the direct path's peak, normalised to 1, at DIRECT_LEAD_S):
    talker full, talker early (the target's), noise source full."""

    sample_rate: int
    speech: torch.Tensor
    early: torch.Tensor
    noise: torch.Tensor
    rt60: np.ndarray

    @classmethod
    def build(cls, cfg: RoomAugment, sample_rate: int) -> "RirBank":
        key = hashlib.sha1(json.dumps(cfg.settings(sample_rate), sort_keys=True).encode()).hexdigest()[:16]
        cache = Path(cfg.cache_dir).expanduser() / "rirs" / f"{key}.npz" if cfg.cache_dir else None
        if cache is not None and cache.is_file():
            try:
                with np.load(cache) as z:
                    return cls(sample_rate, *(torch.from_numpy(z[k]) for k in ("speech", "early", "noise")),
                               z["rt60"])
            except (OSError, ValueError, KeyError):
                cache.unlink(missing_ok=True)
        arrays = simulate_rooms(cfg, sample_rate)
        if cache is not None:  # atomic: concurrent ranks never read a half-written bank
            cache.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".npz.tmp")
            with os.fdopen(fd, "wb") as fh:
                np.savez(fh, **arrays)
            os.replace(tmp, cache)
        return cls(sample_rate, *(torch.from_numpy(arrays[k]) for k in ("speech", "early", "noise")), arrays["rt60"])

    def to(self, device: torch.device) -> "RirBank":
        if self.speech.device == device:
            return self
        return RirBank(self.sample_rate, self.speech.to(device), self.early.to(device), self.noise.to(device),
                       self.rt60)


def simulate_rooms(cfg: RoomAugment, sample_rate: int) -> dict[str, np.ndarray]:
    """The bank's responses, deterministic in cfg.seed (pyroomacoustics' image method)."""
    try:
        import pyroomacoustics as pra
    except ImportError:
        raise UserError("data/rooms needs pyroomacoustics: pip install 'denoiselab[rooms]'") from None
    rng = np.random.default_rng([int(cfg.seed), 7919])
    n = int(round(cfg.max_seconds * sample_rate))
    lead = int(round(DIRECT_LEAD_S * sample_rate))
    early_n = lead + int(round(cfg.early_ms * sample_rate / 1000))
    fade = np.linspace(1.0, 0.0, max(1, sample_rate // 200))  # 5 ms taper at the end of the early part
    out = {k: np.zeros((cfg.rooms, n), np.float32) for k in ("speech", "early", "noise")}
    rt60s = np.zeros(cfg.rooms, np.float32)
    lo, hi = np.array(cfg.size_m[0]), np.array(cfg.size_m[1])
    log.info("simulating %d room impulse responses (cached for later runs)", cfg.rooms)
    for i in range(cfg.rooms):
        dims = rng.uniform(lo, hi)
        rt60 = rng.uniform(*cfg.rt60_s)
        try:
            absorption, order = pra.inverse_sabine(rt60, dims)
        except ValueError:  # too reverberant for this room size: the most reverberant it allows
            absorption, order = 0.05, cfg.max_order
        room = pra.ShoeBox(dims, fs=sample_rate, materials=pra.Material(absorption),
                           max_order=min(int(order), cfg.max_order))
        mic = _position(rng, dims)
        for _ in range(2):
            room.add_source(_position(rng, dims, away_from=mic))
        room.add_microphone(mic)
        room.compute_rir()
        rt60s[i] = rt60
        for k, src in (("speech", 0), ("noise", 1)):
            h = np.asarray(room.rir[0][src], dtype=np.float64)
            peak = int(np.argmax(np.abs(h)))  # the direct path; keep the leading half of its
            start = max(0, peak - lead)       # fractional-delay filter, so the direct sound is intact
            h = h[start:start + n] / np.abs(h[peak])
            out[k][i, :h.size] = h
            if k == "speech":
                e = h[:early_n].copy()
                taper = min(fade.size, e.size)
                e[-taper:] *= fade[-taper:]
                out["early"][i, :e.size] = e
    return {**out, "rt60": rt60s}


def _position(rng: np.random.Generator, dims: np.ndarray, away_from: np.ndarray | None = None) -> np.ndarray:
    """A point at least 0.5 m from the walls (and 0.5 m from ``away_from``)."""
    for _ in range(100):
        p = rng.uniform(0.5, dims - 0.5)
        if away_from is None or np.linalg.norm(p - away_from) >= 0.5:
            return p
    return p


# ---- arithmetic (device side)
def reverberate(clean: torch.Tensor, noise: torch.Tensor, room_ids: torch.Tensor, bank: RirBank
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(reverberant talker, target talker (early response), reverberant noise), [B, T] each; rows with
    room id -1 pass through unchanged."""
    bank = bank.to(clean.device)
    ids = room_ids.to(clean.device).long()
    wet = ids >= 0
    if not bool(wet.any()):
        return clean, clean, noise
    t = clean.shape[-1]
    pick = ids[wet]
    rev, target, rev_noise = clean.clone(), clean.clone(), noise.clone()
    rev[wet] = AF.fftconvolve(clean[wet], bank.speech[pick].to(clean.dtype))[..., :t]
    target[wet] = AF.fftconvolve(clean[wet], bank.early[pick].to(clean.dtype))[..., :t]
    rev_noise[wet] = AF.fftconvolve(noise[wet], bank.noise[pick].to(noise.dtype))[..., :t]
    return rev, target, rev_noise
