"""Progress of long work: done so far, of how much, the rate, and the time left.

`Progress(what, total, emit=...)` is told `advance(n)` as work gets done and
says where it is at most once every `every` seconds; `finish()` says the last
word. Work that ends within the first `every` seconds says nothing at all, so
short runs stay as quiet as before. Where the words go is the caller's choice:
`stderr_emitter()` redraws one line on a terminal and writes plain lines
elsewhere (the CLI); `log_emitter(logger)` logs them (`fedflow serve`).

>>> lines = []
>>> ticks = iter([0.0, 2.0, 4.0])
>>> p = Progress("recovery", 4, emit=lambda text, last: lines.append(text), clock=lambda: next(ticks))
>>> p.advance(1); p.finish(4)
>>> lines
['recovery: 1 of 4 flows (25%), 0.5 flows/s, 6 s left', 'recovery: 4 of 4 flows (100%), 1 flows/s, done in 4 s']
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TextIO, TypeVar

__all__ = ["Progress", "Report", "counted", "log_emitter", "stderr_emitter"]

T = TypeVar("T")

#: `emit(text, last)`: say `text`; `last` is True for the final word.
Emit = Callable[[str, bool], None]

#: `report(phase, done, total, unit)`: how far a phase of an engine's long work is (`total`
#: None when unknown, `unit` "flows" or "bytes"); how often it is told is `counted`'s choice.
Report = Callable[[str, int, "int | None", str], None]

#: `counted` reports about this many times per phase (and always at its end).
REPORTS_PER_PHASE = 100


def _amount(n: float, unit: str) -> str:
    if unit != "bytes":
        return f"{n:,.0f} {unit}" if n >= 1 or n == 0 else f"{n:.1g} {unit}"
    for size, name in ((1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")):
        if n >= size:
            return f"{n / size:.1f} {name}"
    return f"{n:.0f} B"


def _seconds(s: float) -> str:
    s = max(0, round(s))
    return f"{s // 3600} h {s % 3600 // 60} m" if s >= 3600 else f"{s // 60} m {s % 60} s" if s >= 60 else f"{s} s"


class Progress:
    """How far one piece of long work is; see the module docstring."""

    def __init__(self, what: str, total: int | None, *, unit: str = "flows", emit: Emit,
                 every: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.done = 0
        self._emit, self._every, self._clock = emit, every, clock
        self._started = clock()
        self._next = self._started + every
        self._spoke = False

    def advance(self, n: int = 1) -> None:
        """`n` more units are done; say so if `every` seconds passed since the last word."""
        self.done += n
        now = self._clock()
        if now >= self._next:
            self._next = now + self._every
            self._spoke = True
            self._emit(self.text(now), False)

    def finish(self, done: int | None = None) -> None:
        """The work is over (`done` units in all, if known): the last word, if any was said before."""
        if done is not None:
            self.done = done
        if self._spoke:
            self._emit(self.text(self._clock(), last=True), True)

    def text(self, now: float, last: bool = False) -> str:
        """Where the work is, in words."""
        elapsed = max(now - self._started, 1e-9)
        rate = self.done / elapsed
        of = f" of {_amount(self.total, self.unit)} ({100 * self.done // self.total}%)" if self.total else ""
        done = _amount(self.done, self.unit) if self.unit == "bytes" else f"{self.done:,}"
        tail = f"done in {_seconds(elapsed)}" if last else (
            f"{_seconds((self.total - self.done) / rate)} left" if self.total and rate > 0 else "")
        per = f"{_amount(rate, self.unit)}/s"
        return f"{self.what}: {done}{of}, {per}" + (f", {tail}" if tail else "")


def stderr_emitter(stream: TextIO | None = None) -> Emit:
    """Words for a person: one redrawn line on a terminal, plain lines otherwise."""
    out = stream if stream is not None else sys.stderr
    tty = out.isatty()

    def emit(text: str, last: bool) -> None:
        out.write(f"\r{text}\033[K" + ("\n" if last else "") if tty else text + "\n")
        out.flush()
    return emit


def log_emitter(logger: logging.Logger) -> Emit:
    """Words for a log: each one an INFO record."""
    return lambda text, _last: logger.info("%s", text)


def counted(items: Iterable[T], phase: str, total: int | None, report: Report | None,
            unit: str = "flows") -> Iterator[T]:
    """`items`, telling `report` how many went by: every `total / REPORTS_PER_PHASE` items
    (every 1,000 when `total` is unknown) and once at the end."""
    if report is None:
        yield from items
        return
    step = max(1, (total or 100_000) // REPORTS_PER_PHASE)
    done = 0
    for item in items:
        yield item
        done += 1
        if done % step == 0:
            report(phase, done, total, unit)
    if done % step or not done:
        report(phase, done, total, unit)
