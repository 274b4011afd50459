"""Clocks an engine reads the time from: the system clock, or a fake one for tests.

An engine asks its clock for `time()` (seconds since the epoch). A clock that
can jump (`FakeClock`) also tells its listeners when it moved, so an engine on
it fires what fell due before `advance` returns.
"""

from __future__ import annotations

import threading
import time as _time
from collections.abc import Callable
from typing import Protocol


class Clock(Protocol):
    """What an engine needs of a clock: the current time in seconds since the epoch."""

    def time(self) -> float:
        """Seconds since the epoch."""
        ...


class SystemClock:
    """The machine's wall clock (`time.time()`)."""

    def time(self) -> float:
        """Seconds since the epoch, from the operating system."""
        return _time.time()


SYSTEM_CLOCK = SystemClock()


class FakeClock:
    """A clock that moves only when told to: `advance(seconds)`.

    Engines on this clock register a listener with `on_advance`; `advance` calls
    every listener, in registration order, before it returns, so every timer
    that falls due has fired by then."""

    def __init__(self, start: float = 0.0) -> None:
        """A clock that reads `start` (seconds since the epoch) until advanced."""
        self._now = float(start)
        self._lock = threading.Lock()
        self._listeners: list[Callable[[], None]] = []

    def time(self) -> float:
        """The fake current time, in seconds since the epoch."""
        with self._lock:
            return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by `seconds` (not negative), then run every listener."""
        if not seconds >= 0:  # also refuses NaN
            raise ValueError(f"advance() takes a duration of 0 seconds or more, got {seconds!r}")
        with self._lock:
            self._now += float(seconds)
            listeners = list(self._listeners)
        for listener in listeners:
            listener()

    def on_advance(self, listener: Callable[[], None]) -> None:
        """Call `listener()` after every `advance`, until `off_advance(listener)`."""
        with self._lock:
            self._listeners.append(listener)

    def off_advance(self, listener: Callable[[], None]) -> None:
        """Stop calling `listener`; unknown listeners are ignored."""
        with self._lock:
            if listener in self._listeners:
                self._listeners.remove(listener)
