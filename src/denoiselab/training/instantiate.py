"""Hydra -> Lightning objects: callbacks, loggers (W&B run ids kept for resume), task wrapper."""

from __future__ import annotations

import functools
import logging
import secrets
import string
from importlib.util import find_spec
from pathlib import Path
from typing import Any, Callable

import hydra
from lightning import Callback
from lightning.pytorch.loggers import Logger
from lightning.pytorch.utilities import rank_zero_only
from omegaconf import DictConfig, open_dict

from denoiselab.core.errors import user_error_of

log = logging.getLogger(__name__)

WANDB_ID_FILE = "wandb_id.txt"


def instantiate_callbacks(cfg: DictConfig | None) -> list[Callback]:
    if not cfg:
        return []
    return [hydra.utils.instantiate(c) for c in cfg.values() if isinstance(c, DictConfig) and "_target_" in c]


def instantiate_loggers(cfg: DictConfig | None, run_dir: Path, wandb_id: str | None = None,
                        group: str | None = None, tags: list[str] | None = None,
                        name: str | None = None) -> list[Logger]:
    """Instantiate every configured logger. W&B gets a run id that is stored in the run dir (and
    in checkpoints), so a resumed run continues the same W&B run instead of starting a new one."""
    loggers: list[Logger] = []
    if not cfg:
        return loggers
    for lg_cfg in cfg.values():
        if not (isinstance(lg_cfg, DictConfig) and "_target_" in lg_cfg):
            continue
        if lg_cfg._target_.endswith("WandbLogger"):
            lg_cfg = lg_cfg.copy()
            run_id = wandb_id or _stored_wandb_id(run_dir) or _new_wandb_id()
            if rank_zero_only.rank == 0:  # other DDP ranks get a no-op experiment; never overwrite the id
                (run_dir / WANDB_ID_FILE).write_text(run_id)
            with open_dict(lg_cfg):
                lg_cfg.id = run_id
                lg_cfg.resume = "allow"
                if group and not lg_cfg.get("group"):
                    lg_cfg.group = group
                if tags:
                    lg_cfg.tags = sorted(set(list(lg_cfg.get("tags") or []) + tags))
                if name and not lg_cfg.get("name"):
                    lg_cfg.name = name
        loggers.append(hydra.utils.instantiate(lg_cfg))
    return loggers


def _stored_wandb_id(run_dir: Path) -> str | None:
    f = run_dir / WANDB_ID_FILE
    return f.read_text().strip() if f.exists() else None


def _new_wandb_id() -> str:
    """8 random lowercase letters/digits: a valid W&B run id (no dependence on wandb internals)."""
    alphabet = string.ascii_lowercase + string.digits
    return "".join(secrets.choice(alphabet) for _ in range(8))


def close_loggers() -> None:
    """Finish the W&B run so the next job of a multirun starts its own run (never merged)."""
    if find_spec("wandb"):
        import wandb

        if wandb.run is not None:
            wandb.finish()


def task_wrapper(task: Callable[[DictConfig], Any]) -> Callable[[DictConfig], Any]:
    """Always close loggers, even when the task fails, so a sweep's next job starts clean."""

    @functools.wraps(task)
    def wrapped(cfg: DictConfig) -> Any:
        try:
            return task(cfg)
        except Exception as exc:
            if user_error_of(exc) is None:  # a bug: keep its traceback in the run's log file
                log.exception("Run failed")
            raise
        finally:
            close_loggers()

    return wrapped
