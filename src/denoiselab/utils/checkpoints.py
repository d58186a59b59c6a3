"""Finding, validating and reading checkpoints (always with weights_only=True: no pickled code runs)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

log = logging.getLogger(__name__)


class CheckpointError(RuntimeError):
    pass


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """torch.load with weights_only=True and a clear message for missing or damaged files."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # truncated zip, wrong format, unsafe pickle
        raise CheckpointError(f"checkpoint {path} cannot be read ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:200] if str(exc) else ''}); "
                              "it may be truncated or not a denoiselab/Lightning checkpoint") from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"checkpoint {path} does not hold a dict of tensors")
    return ckpt


def is_loadable(path: str | Path) -> bool:
    try:
        ckpt = load_checkpoint(path)
    except CheckpointError as err:
        log.warning("%s", err)
        return False
    return "state_dict" in ckpt


def find_resumable(ckpt_dir: str | Path, preferred: str | Path | None = None) -> Path | None:
    """The checkpoint to resume from: ``preferred`` (or last.ckpt) if readable, else the newest readable one.

    Damaged files are reported and skipped, so a run killed while a file was being copied, or a
    truncated file on disk, falls back to the previous good checkpoint.
    """
    ckpt_dir = Path(ckpt_dir)
    candidates: list[Path] = []
    if preferred is not None:
        candidates.append(Path(preferred))
    if ckpt_dir.is_dir():
        last = ckpt_dir / "last.ckpt"
        others = sorted((p for p in ckpt_dir.glob("*.ckpt") if p != last), key=lambda p: p.stat().st_mtime, reverse=True)
        candidates += [last] + others
    seen = set()
    for c in candidates:
        if c in seen or not c.exists():
            continue
        seen.add(c)
        if is_loadable(c):
            if preferred is not None and c != Path(preferred):
                log.warning("Falling back to the previous good checkpoint %s", c)
            return c
    return None


def checkpoint_meta(path: str | Path) -> dict[str, Any]:
    from denoiselab.model.module import CKPT_KEY

    return dict(load_checkpoint(path).get(CKPT_KEY, {}))
