"""Progress that reaches the user wherever output goes.

In a terminal: rich progress bars. Otherwise (output redirected to a file, a CI log, a cluster job):
a plain line through logging at the start, at least every ``interval`` seconds and at the end, with
the count, the rate and the time left, so a log file shows that long work is alive and how far it is.
``DENOISELAB_PROGRESS_SECONDS`` sets the interval (default 30).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Iterable, Iterator, TypeVar

T = TypeVar("T")
log = logging.getLogger("denoiselab.progress")


def interval_seconds() -> float:
    try:
        return max(0.0, float(os.environ.get("DENOISELAB_PROGRESS_SECONDS", "30")))
    except ValueError:
        return 30.0


def interactive() -> bool:
    """True when a person watches a terminal (rich bars); False for files and pipes (plain lines)."""
    return sys.stderr.isatty()


def format_seconds(seconds: float) -> str:
    seconds = int(round(max(0.0, seconds)))
    h, rest = divmod(seconds, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Count work done: ``with Progress(total, "scoring", "files") as p: ... p.advance()``."""

    def __init__(self, total: int | None, description: str, unit: str = "items", enabled: bool = True,
                 interval: float | None = None):
        self.total, self.description, self.unit = total, description, unit
        self.done = 0
        self.interval = interval_seconds() if interval is None else interval
        self.enabled = enabled
        self._bar = None
        self._task = None
        self._t0 = self._last = time.monotonic()

    def __enter__(self) -> "Progress":
        if not self.enabled:
            return self
        if interactive():
            from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
            from rich.progress import Progress as RichProgress

            self._bar = RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                     TimeRemainingColumn(), transient=True)
            self._bar.__enter__()
            self._task = self._bar.add_task(self.description, total=self.total)
        else:
            self._line(start=True)
        return self

    def advance(self, n: float = 1) -> None:
        self.done += n
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.advance(self._task, n)
        elif time.monotonic() - self._last >= self.interval:
            self._line()

    def __exit__(self, *exc) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.__exit__(*exc)
        elif exc[0] is None:
            self._line(end=True)

    def _line(self, start: bool = False, end: bool = False) -> None:
        now = time.monotonic()
        self._last = now
        elapsed = now - self._t0
        of = f"/{self.total}" if self.total else ""
        if start:
            log.info("%s: 0%s %s", self.description, of, self.unit)
            return
        rate = self.done / elapsed if elapsed > 0 else 0.0
        done = f"{self.done:.0f}" if isinstance(self.done, float) else str(self.done)
        text = f"{self.description}: {done}{of} {self.unit}, {rate:.2f}/s, {format_seconds(elapsed)} elapsed"
        if end:
            text += " (done)"
        elif self.total and rate > 0:
            text += f", about {format_seconds((self.total - self.done) / rate)} left"
        log.info("%s", text)


def track(items: Iterable[T], description: str, unit: str = "items", total: int | None = None,
          enabled: bool = True) -> Iterator[T]:
    """Iterate with progress (rich bar or plain lines, see the module docstring)."""
    if total is None:
        try:
            total = len(items)  # type: ignore[arg-type]
        except TypeError:
            total = None
    with Progress(total, description, unit, enabled) as p:
        for item in items:
            yield item
            p.advance()
