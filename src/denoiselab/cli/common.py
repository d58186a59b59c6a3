"""Small helpers every entry point shares: config values as users type them."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

log = logging.getLogger("denoiselab")


def as_list(value: Any) -> list:
    """A list from a config value: ``ckpt=PATH`` and ``ckpt=[PATH]`` mean the same; null is []."""
    if value is None:
        return []
    if isinstance(value, ListConfig):
        return list(OmegaConf.to_container(value, resolve=True))
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def accelerator_of(cfg: DictConfig) -> str:
    """The torch device to compute on: ``accelerator=``; ``device=`` is its old spelling (the word
    "device" now means the audio devices of denoiselab-device), accepted with a warning."""
    old = cfg.get("device")
    if old is not None and not isinstance(old, (DictConfig, ListConfig)):
        log.warning("device=%s is now accelerator=%s (device= still works but will be removed)", old, old)
        return str(old)
    return str(cfg.get("accelerator") or "cpu")
