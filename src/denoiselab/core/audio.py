"""Audio I/O with clear errors: read any soundfile format, resample, downmix, validate.

Everything that touches files on disk goes through here so that every entry point (training
data, evaluation, enhancement, device reports) refuses the same bad inputs with the same words.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF

from denoiselab.core.errors import UserError

#: Extensions we look for when scanning folders (everything libsndfile reads that users meet).
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".aif", ".aiff", ".au", ".w64", ".mp3", ".opus")

#: Peak below which a recording counts as digital silence (about -100 dBFS).
SILENCE_PEAK = 1e-5


class AudioError(UserError):
    """A recording that cannot be used, with the path and the reason in the message."""

    def __init__(self, path: str | Path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class AudioInfo:
    path: str
    sample_rate: int
    channels: int
    frames: int
    format: str
    subtype: str

    @property
    def seconds(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0


def info(path: str | Path) -> AudioInfo:
    """Header facts of a file, or AudioError if libsndfile cannot open it."""
    try:
        i = sf.info(str(path))
    except Exception as exc:  # soundfile raises LibsndfileError/RuntimeError/TypeError
        if not Path(path).exists():  # libsndfile says only "System error."
            raise AudioError(path, "no such file") from None
        raise AudioError(path, f"unreadable audio ({_short(exc, path)})") from None
    return AudioInfo(str(path), int(i.samplerate), int(i.channels), int(i.frames), i.format, i.subtype)


def read(path: str | Path, start: int = 0, frames: int = -1) -> tuple[np.ndarray, int]:
    """Read [channels, samples] float32 in [-1, 1] and the file's rate.

    Raises AudioError for unreadable, empty or non-finite files, so callers never see a
    libsndfile traceback.
    """
    try:
        data, rate = sf.read(str(path), start=start, frames=frames, dtype="float32", always_2d=True)
    except Exception as exc:
        if not Path(path).exists():  # libsndfile says only "System error."
            raise AudioError(path, "no such file") from None
        raise AudioError(path, f"unreadable audio ({_short(exc, path)})") from None
    if rate <= 0:
        raise AudioError(path, f"invalid sample rate {rate}")
    if data.size == 0:
        raise AudioError(path, "empty recording (0 samples)")
    data = np.ascontiguousarray(data.T)
    if not np.isfinite(data).all():
        raise AudioError(path, "contains NaN or Inf samples")
    return data, int(rate)


def to_mono(wave: np.ndarray | torch.Tensor):
    """Average channels: [C, T] -> [T]."""
    return wave.mean(0) if wave.ndim == 2 else wave


def resample(wave: torch.Tensor | np.ndarray, orig_rate: int, new_rate: int):
    """Band-limited resampling (torchaudio's windowed sinc) over the last axis; no-op if equal."""
    if orig_rate == new_rate:
        return wave
    if orig_rate <= 0 or new_rate <= 0:
        raise ValueError(f"sample rates must be positive, got {orig_rate} -> {new_rate}")
    is_numpy = isinstance(wave, np.ndarray)
    t = torch.from_numpy(np.ascontiguousarray(wave)) if is_numpy else wave
    g = np.gcd(int(orig_rate), int(new_rate))
    out = AF.resample(t, int(orig_rate) // g, int(new_rate) // g)
    return out.numpy() if is_numpy else out


def load_mono(path: str | Path, sample_rate: int) -> np.ndarray:
    """Read a whole file as mono float32 at ``sample_rate``."""
    data, rate = read(path)
    return np.ascontiguousarray(resample(to_mono(data), rate, sample_rate), dtype=np.float32)


def rms_db(x: np.ndarray) -> float:
    """Mean power in dB re full scale (float64: long recordings sum without overflow or rounding)."""
    return float(10 * np.log10(np.mean(np.square(np.asarray(x), dtype=np.float64)) + 1e-20))


def check_usable(path: str | Path, wave: np.ndarray, min_samples: int = 1) -> None:
    """Refuse silent or too-short training material (AudioError with the reason)."""
    if wave.shape[-1] < min_samples:
        raise AudioError(path, f"too short ({wave.shape[-1]} samples < {min_samples})")
    if float(np.max(np.abs(wave))) < SILENCE_PEAK:
        raise AudioError(path, "silent (peak below -100 dBFS)")


def find_audio(root: str | Path) -> list[Path]:
    """Audio files under ``root`` (recursive), sorted for reproducibility.

    ``root`` may also be a single audio file or a list file (.txt, one path per line,
    relative paths resolved against the list's folder).
    """
    root = Path(root).expanduser()
    if root.is_dir():
        return sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    if root.is_file() and root.suffix.lower() in (".txt", ".lst", ".list"):
        return _read_list(root)
    if root.is_file():
        return [root]
    from denoiselab.core.files import nearest_path_hint

    if root.suffix.lower() in AUDIO_EXTENSIONS and root.parent.is_dir():
        raise FileNotFoundError(f"no such file: {root}{nearest_path_hint(root)}")
    raise FileNotFoundError(f"no such file or folder: {root}{nearest_path_hint(root)}")


def _read_list(listing: Path) -> list[Path]:
    """The entries of a list file; refuses entries that do not exist, so a list written relative to
    another folder fails here with the reason rather than as 'no usable recordings' later."""
    out: list[Path] = []
    missing: list[tuple[Path, Path]] = []  # (as written, where looked for)
    for line in listing.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            written = Path(line).expanduser()
            p = written if written.is_absolute() else (listing.parent / written)
            out.append(p)
            if not p.exists():
                missing.append((written, p))
    if missing:
        written, p = missing[0]
        msg = (f"{len(missing)} of {len(out)} entries of the list {listing} do not exist, the first: "
               f"{str(written)!r} (looked for {p}")
        if not written.is_absolute():
            msg += f"; relative entries are read from the list's folder {listing.parent}"
            if written.exists():
                msg += ", and this one exists relative to the current folder: write absolute paths"
        raise FileNotFoundError(msg + ")")
    return out


def find_all(roots: str | Path | Iterable[str | Path]) -> list[Path]:
    if isinstance(roots, (str, Path)):
        roots = [roots]
    files: list[Path] = []
    for r in roots:
        files.extend(find_audio(r))
    return files


def write(path: str | Path, wave: np.ndarray, sample_rate: int, subtype: str | None = None) -> None:
    """Write [C, T] or [T] float audio; the format follows the extension."""
    arr = np.asarray(wave, dtype=np.float32)
    arr = arr.T if arr.ndim == 2 else arr
    sf.write(str(path), arr, int(sample_rate), subtype=subtype)


def _short(exc: Exception, path: str | Path | None = None) -> str:
    """libsndfile's message without the path it repeats."""
    lines = str(exc).strip().splitlines()
    msg = lines[-1] if lines else type(exc).__name__
    if path is not None:
        msg = msg.replace(f"Error opening {str(path)!r}: ", "").replace(str(path), "<file>")
    return msg.strip()[:200]
