"""File-system helpers shared by every layer."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from pathlib import Path


def safe_filename(name: str) -> str:
    """A name usable as one path component on every OS: letters, digits, '-', '_' and '.' kept,
    anything else (spaces, slashes, quotes) becomes '_'; never empty, never '.' or '..'."""
    out = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in str(name)).strip("_.")
    return out or "unnamed"


def nearest_path_hint(path: str | Path) -> str:
    """' (did you mean X?)' when a sibling of a missing path has a close name; '' otherwise."""
    import difflib

    path = Path(path).expanduser()
    parent = path.parent
    if not parent.is_dir():
        return ""
    near = difflib.get_close_matches(path.name, [p.name for p in parent.iterdir()], n=1, cutoff=0.6)
    return f" (did you mean {parent / near[0]}?)" if near else ""


def speech_in_noise(speech: Iterable[str | Path], noise: Iterable[str | Path]) -> tuple[Path, Path] | None:
    """The first (noise, speech) pair of paths that overlap: the same path, the noise inside the speech, or a
    speech folder inside the noise (after ~ and symlinks); None if they are apart. A speech *file* inside a
    noise folder does not count: a list file (.txt) of speech may live there without being noise."""
    resolved = [Path(str(c)).expanduser().resolve() for c in speech]
    for n in noise:
        n = Path(str(n)).expanduser().resolve()
        for c in resolved:
            if n == c or n.is_relative_to(c) or (c.is_dir() and c.is_relative_to(n)):
                return n, c
    return None


def sha1_of(path: str | Path, length: int = 12) -> str:
    """Short content hash of a file (model files in reports and manifests)."""
    h = hashlib.sha1()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:length]


#: Per-run metrics file (JSON lines) that training writes whatever logger runs; compare reads it.
RUN_METRICS = "metrics.jsonl"
