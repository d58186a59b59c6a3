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
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from denoiselab.core import audio

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
            _report_once(p, f"Skipping {kind} file {err}")
            skipped.append(str(p))
            continue
        except FileNotFoundError:
            _report_once(p, f"Skipping {kind} file {p}: it disappeared")
            skipped.append(str(p))
            continue
        tracks.append(Track(str(p), wave, label=category(p, roots_list)))
    if skipped:
        log.info("%d of %d %s files were skipped (reported above)", len(skipped), len(paths), kind)
    if not tracks:
        more = f" (+{len(roots_list) - 3} more)" if len(roots_list) > 3 else ""
        where = ", ".join(str(r) for r in roots_list[:3]) + more
        found = f"{len(paths)} audio file(s) found, none usable" if paths else "no audio files found"
        raise ValueError(f"No usable {kind} recordings in {where}: {found} "
                         f"(extensions: {', '.join(audio.AUDIO_EXTENSIONS)})")
    return tracks


_REPORTED: set[str] = set()


def _report_once(path: str | Path, message: str) -> None:
    """One warning per bad file per process: training reads the same folders for the cache, the
    training split and the validation split, and a user needs to hear about a file once."""
    key = str(Path(path).resolve())
    if key not in _REPORTED:
        _REPORTED.add(key)
        log.warning("%s", message)


_NUMBERED = re.compile(r"([_\-. ]?\d+)+$")


def category(path: str | Path, roots: Sequence[str | Path] = ()) -> str:
    """The noise type (or other category) of a recording: its sub-folder under the root it was found
    in (noise/hum/x.wav -> hum), else its file name without the trailing number
    (esc10_helicopter_03.flac -> esc10_helicopter), else the whole file name."""
    path = Path(path)
    for root in roots:
        try:
            rel = path.resolve().relative_to(Path(root).expanduser().resolve())
        except ValueError:
            continue
        if len(rel.parts) > 1:
            return rel.parts[0]
    return _NUMBERED.sub("", path.stem) or path.stem


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


def split_by_time(tracks: list[Track], fraction: float, min_part: int) -> tuple[list[Track], list[Track]] | None:
    """(train, validation): the last ``fraction`` of every recording whose two parts both reach ``min_part``
    samples goes to validation (shorter ones stay whole in training); None when no recording is long enough."""
    train: list[Track] = []
    val: list[Track] = []
    for t in tracks:
        cut = int(len(t) * (1.0 - fraction))
        if min(cut, len(t) - cut) >= min_part:
            train.append(Track(t.path, t.samples[:cut], t.label))
            val.append(Track(t.path, t.samples[cut:], t.label))
        else:
            train.append(t)
    return (train, val) if val else None


def quiet_held_out(train: list[Track], val: list[Track], below_db: float = 20.0) -> list[str]:
    """Paths of the recordings whose held-out part is over ``below_db`` quieter than their training part: a
    silent tail (a padded clip, a recorder left running after the noise stopped) makes the validation
    mixtures nearly clean, so their scores say little about how well the noise is removed."""
    trained = {t.path: audio.rms_db(t.samples) for t in train}
    return [v.path for v in val if v.path in trained and audio.rms_db(v.samples) < trained[v.path] - below_db]


def match_pairs(noisy_root: str | Path, clean_root: str | Path) -> list[tuple[Path, Path]]:
    """Pair files by relative path without extension; report files that have no partner."""
    noisy_root, clean_root = Path(str(noisy_root)).expanduser(), Path(str(clean_root)).expanduser()
    for r, name in ((noisy_root, "noisy"), (clean_root, "clean")):
        if not r.is_dir():
            raise FileNotFoundError(f"{name} folder does not exist: {r}")
    clean_by_key = {str(p.relative_to(clean_root).with_suffix("")): p for p in audio.find_audio(clean_root)}
    pairs, orphans = [], []
    for n in audio.find_audio(noisy_root):
        key = str(n.relative_to(noisy_root).with_suffix(""))
        if key in clean_by_key:
            pairs.append((n, clean_by_key[key]))
        else:
            orphans.append(str(n))
    if orphans:
        log.warning("%d noisy file(s) have no clean partner and are skipped, e.g. %s", len(orphans), orphans[0])
    if not pairs:
        raise ValueError(f"No noisy/clean pairs with matching names in {noisy_root} and {clean_root}")
    return pairs


def _progress(items: list, description: str, enabled: bool):
    from denoiselab.core.progress import track

    return track(items, description, "files", enabled=enabled and len(items) >= 20)
