"""Validation of [low, high] config ranges, with messages that name the key."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def checked_range(name: str, value: Sequence[float], positive: bool = False) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a [low, high] pair of numbers, got {value!r}") from None
    if not (np.isfinite(lo) and np.isfinite(hi)):
        raise ValueError(f"{name} must be finite, got [{lo}, {hi}]")
    if lo > hi:
        raise ValueError(f"{name} range is reversed: [{lo}, {hi}] (low must be <= high)")
    if positive and lo <= 0:
        raise ValueError(f"{name} must be > 0, got [{lo}, {hi}]")
    return lo, hi
