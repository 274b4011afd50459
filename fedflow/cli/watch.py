"""Progress of the long client verbs (replicate, restore, handoff) on stderr.

`watching(what, call)` runs `call(report)`, a `ControlClient` method given a
progress callback, and shows each phase the instance reports ("exporting",
"sending", "receiving", "restoring") with `fedflow.progress.Progress` on stderr:
a redrawn line on a terminal, plain lines otherwise, nothing for work that ends
within `FEDFLOW_PROGRESS_EVERY` seconds (default 1). stdout is left alone: it
carries the verb's one JSON object.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Callable
from typing import Any, TextIO

from ..progress import Progress, Report, stderr_emitter
from .config import UsageError

__all__ = ["EVERY_ENV", "PhaseProgress", "watching"]

#: Seconds between progress lines (0: every report the instance sends).
EVERY_ENV = "FEDFLOW_PROGRESS_EVERY"


def progress_every() -> float:
    """The seconds between progress lines, from `FEDFLOW_PROGRESS_EVERY` (default 1)."""
    text = os.environ.get(EVERY_ENV, "").strip()
    if not text:
        return 1.0
    try:
        every = float(text)
    except ValueError:
        every = -1.0
    if not math.isfinite(every) or every < 0:
        raise UsageError(f"{EVERY_ENV}={text!r}: give a number of seconds, 0 or more (0 shows every report)")
    return every


class PhaseProgress:
    """A `Report` that shows each phase of one piece of work as its own `Progress`."""

    def __init__(self, what: str, every: float, stream: TextIO | None = None) -> None:
        self.what, self.every = what, every
        self.said = False
        self._out = stream if stream is not None else sys.stderr
        self._emit = stderr_emitter(self._out)
        self._phase: str | None = None
        self._progress: Progress | None = None

    def __call__(self, phase: str, done: int, total: int | None, unit: str) -> None:
        if phase != self._phase or self._progress is None:
            self.finish()
            self._phase = phase
            self._progress = Progress(f"{self.what}: {phase}", total, unit=unit, emit=self._said, every=self.every)
        self._progress.total = total
        self._progress.advance(done - self._progress.done)

    def _said(self, text: str, last: bool) -> None:
        self.said = True
        self._emit(text, last)

    def finish(self) -> None:
        """The current phase is over: its last word, if it said any."""
        if self._progress is not None:
            self._progress.finish()
            self._progress = None

    def abandon(self) -> None:
        """The work failed: end a half-drawn terminal line so the error starts on its own."""
        if self.said and self._out.isatty():
            self._out.write("\n")
            self._out.flush()


def watching(what: str, call: Callable[[Report], Any]) -> Any:
    """`call(report)`'s answer, its progress shown on stderr as `what: phase: ...`."""
    shown = PhaseProgress(what, progress_every())
    try:
        answer = call(shown)
    except BaseException:
        shown.abandon()
        raise
    shown.finish()
    return answer
