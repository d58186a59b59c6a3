"""Learning-rate schedules that torch does not ship: a cosine decay over a wall-clock budget.

Why: a fine-tuning run has a time budget ("five minutes on a laptop"), not a step count, so OneCycleLR
cannot be used; at a constant lr the weights keep moving to the last step and the checkpoint that
validation picks is partly luck. Decaying over the time that is left ends the run on settled weights.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable

import torch
from torch.optim.lr_scheduler import LRScheduler

#: Why a run with model/scheduler=cosine_time is refused without a time budget.
NO_TIME_BUDGET = ("model/scheduler=cosine_time decays over a time budget, and this run has none: pass "
                  "time_budget=SECONDS or trainer.max_time=DD:HH:MM:SS")


def decays_over_time(scheduler_cfg: Any) -> bool:
    """Whether a model.scheduler config node is this schedule (the config is checked before anything is built)."""
    return bool(scheduler_cfg) and str(scheduler_cfg.get("_target_", "")).endswith(WarmupCosineByTime.__name__)


class WarmupCosineByTime(LRScheduler):
    """Linear warm-up from ``start_factor`` × lr over ``warmup_steps`` optimizer steps, then a cosine
    decay to ``final_factor`` × lr over the wall-clock ``budget`` given by :meth:`start_clock`.

    The training module starts the clock when training starts, with the time this invocation has
    (``time_budget`` or what is left of ``trainer.max_time``). Until then (or without a budget) only
    the warm-up applies. A resumed run keeps its step count (no second warm-up) and decays over the
    time its new invocation has.
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int = 50, start_factor: float = 0.05,
                 final_factor: float = 0.02, clock: Callable[[], float] = time.monotonic, last_epoch: int = -1):
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        if not (0.0 < start_factor <= 1.0 and 0.0 <= final_factor <= 1.0):
            raise ValueError(f"start_factor must be in (0, 1] and final_factor in [0, 1], got "
                             f"{start_factor} and {final_factor}")
        self.warmup_steps, self.start_factor, self.final_factor = int(warmup_steps), start_factor, final_factor
        self.clock = clock
        self.budget: float | None = None
        self._t0 = 0.0
        super().__init__(optimizer, last_epoch)

    def start_clock(self, budget_seconds: float) -> None:
        """Decay from now over ``budget_seconds``."""
        if budget_seconds <= 0:
            raise ValueError(f"the time budget must be > 0 seconds, got {budget_seconds}")
        self.budget, self._t0 = float(budget_seconds), self.clock()

    def factor(self) -> float:
        """The multiplier of the base lr at the current step and time."""
        step = max(self.last_epoch, 0)
        warm = 1.0
        if self.warmup_steps and step < self.warmup_steps:
            warm = self.start_factor + (1.0 - self.start_factor) * step / self.warmup_steps
        if self.budget is None:
            return warm
        done = min(1.0, max(0.0, (self.clock() - self._t0) / self.budget))
        return warm * (self.final_factor + (1.0 - self.final_factor) * 0.5 * (1.0 + math.cos(math.pi * done)))

    def get_lr(self) -> list[float]:
        f = self.factor()
        return [base * f for base in self.base_lrs]

    def state_dict(self) -> dict[str, Any]:
        # the clock (a function) and the start time (of this process) mean nothing after a resume, and
        # checkpoints load with weights_only, which refuses pickled functions
        return {k: v for k, v in super().state_dict().items() if k not in ("clock", "_t0", "budget")}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.budget = None  # the resumed invocation starts the clock again with its own budget


def invocation_time_left(trainer: Any) -> float | None:
    """Seconds this invocation may still train: the smallest of ``time_budget`` (our InvocationBudget)
    and what is left of ``trainer.max_time`` (Lightning's Timer, restored on resume); None without either."""
    from lightning.pytorch.callbacks import Timer

    from denoiselab.training.callbacks import InvocationBudget

    left = [cb.seconds for cb in trainer.callbacks if isinstance(cb, InvocationBudget)]
    left += [cb.time_remaining() for cb in trainer.callbacks
             if isinstance(cb, Timer) and cb.time_remaining() is not None]
    return max(min(left), 1.0) if left else None
