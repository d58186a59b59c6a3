"""Clip datasets: random clean/noise clips for training, fixed mixtures for validation/test.

Each item is a pure function of (seed, key). The training sampler hands out keys that encode the
epoch and rank, so every epoch brings new clips, offsets and gains; validation keys are just
positions, so validation mixtures are byte-identical across runs and backbones.
"""

from __future__ import annotations

import math
from typing import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from denoiselab.core.mixing import crop_or_pad, loop_crop
from denoiselab.core.rooms import RoomAugment
from denoiselab.core.sources import Track
from denoiselab.training.data.augment import DeviceAugment
from denoiselab.training.data.device_path import DevicePath
from denoiselab.training.data.mixing import Mixer


class ClipMixtureDataset(Dataset):
    """(clean clip, K noise clips, mixing parameters) items; the mixing itself happens on the device.

    A clean recording of length L yields max(1, L // clip) clips per epoch. ``random_offsets``
    is True for training (new offsets per key) and False for fixed evaluation sets, where the
    clip index picks a deterministic window.
    """

    def __init__(
        self,
        clean: Sequence[Track],
        noise: Sequence[Track],
        clip_samples: int,
        mixer: Mixer,
        seed: int,
        random_offsets: bool = True,
        max_items: int | None = None,
        augment: DeviceAugment | None = None,
        rooms: RoomAugment | None = None,
        device_path: DevicePath | None = None,
        generic: Sequence[Track] = (),
        generic_share: float = 0.0,
    ):
        if clip_samples <= 0:
            raise ValueError(f"clip length must be positive, got {clip_samples} samples")
        self.clean, self.noise = list(clean), list(noise)
        self.clip = int(clip_samples)
        self.mixer, self.seed, self.random_offsets = mixer, int(seed), random_offsets
        self.augment, self.rooms, self.device_path = augment, rooms, device_path
        self.generic, self.generic_share = list(generic), float(generic_share)
        counts = np.array([max(1, len(t) // self.clip) for t in self.clean], dtype=np.int64)
        self._cum = np.cumsum(counts)
        self.n_items = int(self._cum[-1])
        if max_items is not None:
            self.n_items = min(self.n_items, int(max_items))

    def __len__(self) -> int:
        return self.n_items

    def _locate(self, idx: int) -> tuple[int, int]:
        file_idx = int(np.searchsorted(self._cum, idx, side="right"))
        first = int(self._cum[file_idx - 1]) if file_idx else 0
        return file_idx, idx - first

    def __getitem__(self, key: int) -> dict:
        key = int(key)
        idx = key % len(self)
        rng = np.random.default_rng([self.seed, key])
        file_idx, clip_idx = self._locate(idx)
        track = self.clean[file_idx]
        if self.random_offsets:
            clean = crop_or_pad(track.samples, self.clip, rng)
        else:
            start = clip_idx * self.clip
            clean = crop_or_pad(track.samples[start:start + self.clip], self.clip, rng, random=False)
        pool = self.noise
        if self.generic and rng.uniform() < self.generic_share:  # a mixture of another noise kind
            pool = self.generic
        noise_ids = rng.integers(0, len(pool), size=self.mixer.noises_per_mixture)
        noise = np.stack([loop_crop(pool[i].samples, self.clip, rng) for i in noise_ids])
        params = self.mixer.draw(rng)
        extra = {k: torch.tensor(v) for k, v in self.augment.draw(rng).items()} if self.augment else {}
        if self.rooms is not None:
            extra.update({k: torch.tensor(v) for k, v in self.rooms.draw(rng).items()})
        if self.device_path is not None:
            extra.update({k: torch.tensor(v) for k, v in self.device_path.draw(rng).items()})
        if self.generic:  # which mixtures hold general noise (fine-tuning's guard against forgetting reads it)
            extra["general"] = torch.tensor(pool is self.generic)
        return {
            **extra,
            "clean": torch.from_numpy(clean),
            "noise": torch.from_numpy(noise),
            "clean_gain": torch.tensor(params["clean_gain"]),
            "noise_gain": torch.from_numpy(params["noise_gain"]),
            "snr_db": torch.tensor(params["snr_db"]),
            "key": torch.tensor(key),
            "noise_type": pool[int(noise_ids[0])].label,
        }


class PairedDataset(Dataset):
    """Matching noisy/clean recordings (VoiceBank+DEMAND layout); the noise is their difference."""

    def __init__(self, pairs: Sequence[tuple[Track, Track]], clip_samples: int | None, seed: int,
                 random_offsets: bool = True):
        self.pairs = list(pairs)
        self.clip = clip_samples
        self.seed, self.random_offsets = int(seed), random_offsets

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key: int) -> dict:
        key = int(key)
        noisy_t, clean_t = self.pairs[key % len(self.pairs)]
        n = min(len(noisy_t), len(clean_t))
        noisy, clean = np.asarray(noisy_t.samples[:n]), np.asarray(clean_t.samples[:n])
        if self.clip:
            rng = np.random.default_rng([self.seed, key])
            if n >= self.clip:
                start = int(rng.integers(0, n - self.clip + 1)) if self.random_offsets else 0
                noisy, clean = noisy[start:start + self.clip], clean[start:start + self.clip]
            else:
                pad = self.clip - n
                noisy, clean = np.pad(noisy, (0, pad)), np.pad(clean, (0, pad))
        noisy = torch.from_numpy(np.array(noisy, dtype=np.float32))
        clean = torch.from_numpy(np.array(clean, dtype=np.float32))
        return {"noisy": noisy, "clean": clean, "noise": noisy - clean, "key": torch.tensor(key),
                "noise_type": "paired"}


class EpochSampler(Sampler[int]):
    """Shuffled keys ``epoch * N + i``, split across ranks.

    Keys (not indices) go to the dataset, so an item's randomness depends on the epoch and the
    rank's share. Lightning calls ``set_epoch`` before each epoch, and the epoch is part of its
    checkpoint, so a resumed run sees the same data it would have seen.
    """

    def __init__(self, n: int, seed: int, shuffle: bool = True, rank: int = 0, world_size: int = 1,
                 drop_last: bool = False):
        self.n, self.seed, self.shuffle = int(n), int(seed), shuffle
        self.rank, self.world_size, self.drop_last = int(rank), int(world_size), drop_last
        self.epoch = 0
        #: keys of this rank's share to skip once, at the next iteration (mid-epoch resume)
        self.skip = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _per_rank(self) -> int:
        if self.drop_last:
            return self.n // self.world_size
        return math.ceil(self.n / self.world_size)

    def __len__(self) -> int:
        return self._per_rank()

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.n)
        else:
            order = np.arange(self.n)
        total = self._per_rank() * self.world_size
        if total > self.n:  # pad by wrapping so every rank gets the same count
            order = np.concatenate([order, order[: total - self.n]])
        mine = order[self.rank:total:self.world_size][self.skip:]
        self.skip = 0
        base = self.epoch * self.n if self.shuffle else 0
        return iter((base + int(i)) for i in mine)


class ResumableLoader(DataLoader):
    """A DataLoader whose position inside the epoch travels in Lightning checkpoints.

    Lightning stores ``state_dict()`` of stateful loaders with the fit loop and calls
    ``load_state_dict`` on resume; the sampler then skips the batches the interrupted run had
    already trained on, so a run killed mid-epoch continues with exactly the next batch.
    ``consumed`` is advanced by the DataModule when a batch reaches the training step (after
    Lightning's prefetching), not when workers produce it.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.consumed = 0
        self._resume: dict | None = None

    def __iter__(self):
        # Lightning restores the state, then iterates the interrupted epoch (set_epoch may come
        # after this call, so the skip is applied by the sampler when it is actually iterated).
        self.consumed = int(self._resume["batches"]) if self._resume is not None else 0
        if self.consumed >= len(self):  # saved on the epoch's last batch: Lightning goes on with the next epoch
            self.consumed = 0
        self.sampler.skip = self.consumed * int(self.batch_size)
        self._resume = None
        return super().__iter__()

    def state_dict(self) -> dict:
        return {"epoch": int(self.sampler.epoch), "batches": int(self.consumed)}

    def load_state_dict(self, state: dict) -> None:
        self._resume = dict(state)


def collate(items: list[dict]) -> dict:
    """Stack tensors; keep string fields (noise types) as lists."""
    out: dict = {}
    for k in items[0]:
        vals = [it[k] for it in items]
        out[k] = torch.stack(vals) if isinstance(vals[0], torch.Tensor) else vals
    return out
