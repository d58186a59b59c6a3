"""Scan recordings, decode them once, and keep them ready for clip sampling.

Decoding + resampling dominates data loading, so each recording is decoded once into a mono
float32 ``.npy`` in a cache folder keyed by (path, size, mtime, rate). Later epochs and later
runs memory-map those arrays: workers share the OS page cache, memory stays bounded by what the
OS decides to keep, and nothing is decoded twice.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from denoiselab import audio

log = logging.getLogger(__name__)


@dataclass
class Track:
    """One usable recording: its path and its mono samples at the corpus rate."""

    path: str
    samples: np.ndarray  # [T] float32, possibly a read-only memmap
    label: str = ""  # e.g. noise type (the parent folder name)

    def __len__(self) -> int:
        return int(self.samples.shape[0])


class AudioCache:
    """Decoded, resampled mono audio on disk (``.npy``), or only in memory when no folder is set."""

    def __init__(self, cache_dir: str | Path | None, sample_rate: int):
        self.sample_rate = int(sample_rate)
        self.dir = Path(cache_dir).expanduser() / f"audio_{self.sample_rate}" if cache_dir else None
        if self.dir is not None:
            self.dir.mkdir(parents=True, exist_ok=True)

    def key(self, path: Path) -> str:
        st = path.stat()
        ident = f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}|{self.sample_rate}"
        return hashlib.sha1(ident.encode()).hexdigest()

    def load(self, path: str | Path) -> np.ndarray:
        path = Path(path)
        if self.dir is None:
            return audio.load_mono(path, self.sample_rate)
        target = self.dir / f"{self.key(path)}.npy"
        if target.exists():
            try:
                return np.load(target, mmap_mode="r")
            except (ValueError, OSError, EOFError):
                target.unlink(missing_ok=True)  # damaged cache entry: decode again
        wave = audio.load_mono(path, self.sample_rate)
        # Atomic write: concurrent ranks/workers never see a half-written cache file.
        fd, tmp = tempfile.mkstemp(dir=self.dir, suffix=".npy.tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.save(fh, wave)
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return np.load(target, mmap_mode="r")


def load_tracks(
    roots: str | Path | Sequence[str | Path],
    cache: AudioCache,
    min_samples: int = 1,
    kind: str = "audio",
    files: Iterable[Path] | None = None,
    progress: bool = True,
) -> list[Track]:
    """Decode every recording under ``roots``; report each bad file once and skip it.

    Raises ValueError naming the folder(s) when nothing usable remains.
    """
    roots_list = [roots] if isinstance(roots, (str, Path)) else list(roots)
    for r in roots_list:
        if not Path(r).expanduser().exists():
            raise FileNotFoundError(f"{kind} folder does not exist: {r}")
    paths = list(files) if files is not None else audio.find_all(roots_list)
    tracks: list[Track] = []
    skipped: list[str] = []
    for p in _progress(paths, f"Loading {kind}", progress):
        try:
            wave = cache.load(p)
            audio.check_usable(p, wave, min_samples)
        except audio.AudioError as err:
            log.warning("Skipping %s file %s", kind, err)
            skipped.append(str(p))
            continue
        except FileNotFoundError:
            log.warning("Skipping %s file %s: it disappeared", kind, p)
            skipped.append(str(p))
            continue
        tracks.append(Track(str(p), wave, label=Path(p).parent.name))
    if skipped:
        log.warning("%d of %d %s files were skipped (see warnings above)", len(skipped), len(paths), kind)
    if not tracks:
        where = ", ".join(str(r) for r in roots_list[:3]) + (f" (+{len(roots_list) - 3} more)" if len(roots_list) > 3 else "")
        found = f"{len(paths)} audio file(s) found, none usable" if paths else "no audio files found"
        raise ValueError(f"No usable {kind} recordings in {where}: {found} "
                         f"(extensions: {', '.join(audio.AUDIO_EXTENSIONS)})")
    return tracks


def split_by_file(paths: list[Path], fraction: float, seed: int) -> tuple[list[Path], list[Path]]:
    """Deterministic train/val split by file: (train, val); val has at least one file if possible."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"data.val_fraction must be in [0, 1), got {fraction}")
    if len(paths) < 2 or fraction == 0.0:
        return list(paths), []
    order = np.random.default_rng(seed).permutation(len(paths))
    n_val = max(1, int(round(fraction * len(paths))))
    val_idx = set(order[:n_val].tolist())
    train = [p for i, p in enumerate(paths) if i not in val_idx]
    val = [p for i, p in enumerate(paths) if i in val_idx]
    return train, val


def _progress(items: list, description: str, enabled: bool):
    if not enabled or len(items) < 20:
        yield from items
        return
    from rich.progress import track

    yield from track(items, description=description, transient=True)
