"""Finding, validating and reading checkpoints (always with weights_only=True: no pickled code runs).

Plain dictionary work, no Lightning import: inference, evaluation, the demo and the benchmarks read
training checkpoints through here, and ``best_checkpoint`` is the one definition of "the best
checkpoint of a run" (the monitored best, as Lightning's ModelCheckpoint recorded it).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch

from denoiselab.core.errors import UserError

log = logging.getLogger(__name__)


#: Key under which every denoiselab-train checkpoint carries what inference needs (plain data only).
CKPT_KEY = "denoiselab"


class CheckpointError(UserError, RuntimeError):
    """A checkpoint that is missing, damaged or not denoiselab's."""


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
        others = sorted((p for p in ckpt_dir.glob("*.ckpt") if p != last), key=lambda p: p.stat().st_mtime,
                        reverse=True)
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
    return dict(load_checkpoint(path).get(CKPT_KEY, {}))


def monitored_states(ckpt: dict[str, Any]) -> list[dict[str, Any]]:
    """The states of the checkpoint callbacks that monitor a metric (ModelCheckpoint with a monitor;
    LastCheckpoint has none) stored in a Lightning checkpoint."""
    return [s for s in (ckpt.get("callbacks") or {}).values()
            if isinstance(s, dict) and s.get("monitor") and "best_k_models" in s]


def best_checkpoint(run_or_ckpt_dir: str | Path) -> Path | None:
    """The monitored-best checkpoint of a training run (its run dir or its checkpoints/ folder).

    The newest state of the run's ModelCheckpoint (in the checkpoint with the highest step) names
    the best file; a run dir that was moved is handled by looking the file up by name. When no
    state names an existing file, the best of the ``best*.ckpt`` files by their own recorded
    score wins. None when the run kept no monitored checkpoint.
    """
    root = Path(run_or_ckpt_dir)
    ckpt_dir = root / "checkpoints" if (root / "checkpoints").is_dir() else root
    if not ckpt_dir.is_dir():
        return None
    newest: tuple[int, dict[str, Any]] | None = None
    own_scores: dict[Path, tuple[float, str]] = {}
    for path in sorted(ckpt_dir.glob("*.ckpt")):
        try:
            ckpt = load_checkpoint(path)
        except CheckpointError as err:
            log.warning("%s", err)
            continue
        for state in monitored_states(ckpt):
            step = int(ckpt.get("global_step", -1))
            if newest is None or step > newest[0]:
                newest = (step, state)
            score = state.get("current_score")
            if path.name != "last.ckpt" and score is not None:
                own_scores[path] = (float(score), str(state.get("mode", "max")))
    if newest is not None and newest[1].get("best_model_path"):
        named = ckpt_dir / Path(str(newest[1]["best_model_path"])).name
        if named.is_file():
            return named
    if not own_scores:
        return None
    sign = {p: (1 if mode == "max" else -1) for p, (_, mode) in own_scores.items()}
    return max(own_scores, key=lambda p: (sign[p] * own_scores[p][0], p.stat().st_mtime))


#: Set in a run's checkpoints when its lr decays to the end of a time budget (experiment=finetune, the device
#: workflow): its final state is the model to use, not the best by a metric on a small validation split.
FINAL_STATE_KEY = "final_state_is_the_model"


def model_of_run(run_or_ckpt_dir: str | Path) -> Path | None:
    """The checkpoint that stands for a training run where a model is asked for (``--ckpt RUN``): its last.ckpt
    when the run says its final state is the model (a decayed lr), else its monitored best, else last.ckpt;
    None without either."""
    root = Path(run_or_ckpt_dir)
    last = (root / "checkpoints" if (root / "checkpoints").is_dir() else root) / "last.ckpt"
    if last.is_file():
        try:
            if checkpoint_meta(last).get(FINAL_STATE_KEY):
                return last
        except CheckpointError as err:
            log.warning("%s", err)
    best = best_checkpoint(root)
    return best or (last if last.is_file() else None)

