"""Waiting for time inside a flow: `sleep`, `sleep_until`, and `suspend(tag, timeout=...)`.

A wait for time is a suspend with a timer. The wake time is read from the
engine's clock the first time the flow reaches the wait and journaled, so a
replay (after a resume, a restart or a move) finds the same absolute time and
never recomputes it. The engine's timer service ends the wait when the time
comes by appending the suspend's entry with the mark ``"w": 1`` (see
`fedflow.timers`); nothing sleeps in a thread meanwhile.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from . import errors, replay

#: Tags of sleeps start with this; `resume` refuses them (`Engine.wake` ends one early).
SLEEP_PREFIX = "sleep:"


def _seconds(value: Any, what: str, fix: str) -> float:
    """`value` as finite, non-negative seconds; ValueError naming `what` and `fix` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{what} takes a number of seconds, got {type(value).__name__}; {fix}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} takes a finite number of seconds, 0 or more, got {value!r}; {fix}")
    return float(value)


def _timer(name: str, what: str, wake_at: Callable[[float], float]) -> tuple[str, replay.Run, float, bool]:
    """(journal key, run, wake time, due at once): the wake time computed by `wake_at(now)` the
    first time the flow gets here, journaled under `name` with whether it had passed already (a
    wait that is due when it starts ends at once, on this run and on every replay)."""
    run = replay.current_run()
    if run is None:
        raise errors.FlowError(f"{what} was called outside a running flow; call it inside a node "
                               f"of a flow started with Engine.start()")
    key = replay.next_key()
    clock = run.services.clock

    def first_time(_call: str) -> list:
        now = clock.time()
        when = wake_at(now)
        return [when, when <= now]

    when, due = replay.journaled(name, first_time, key=key)
    return key, run, when, due


def sleep(seconds: float) -> None:
    """Wait `seconds` durably: the flow suspends (tag ``sleep:…``) and its timer wakes it."""
    duration = _seconds(seconds, "sleep()", "pass how long to wait, e.g. sleep(3600)")
    key, run, when, due = _timer("sleep", "sleep()", lambda now: now + duration)
    if not due:
        replay.wait_on(run, f"{SLEEP_PREFIX}{key}", when)


def sleep_until(when: float) -> None:
    """Wait durably until `when` (seconds since the epoch); a time already past returns at once."""
    if isinstance(when, bool) or not isinstance(when, int | float) or not math.isfinite(when):
        raise ValueError(f"sleep_until() takes a finite time in seconds since the epoch, got {when!r}; "
                         f"pass e.g. time.time() + 3600")
    key, run, wake, due = _timer("sleep", "sleep_until()", lambda _now: float(when))
    if not due:
        replay.wait_on(run, f"{SLEEP_PREFIX}{key}", wake)


def timed_suspend(tag: str, timeout: float, default: Any) -> Any:
    """`suspend(tag)` that returns `default` once `timeout` seconds pass without a resume."""
    duration = _seconds(timeout, f"suspend({tag!r}, timeout=...)", "pass the longest wait in seconds")
    if tag.startswith(SLEEP_PREFIX):
        raise ValueError(f"suspend tags starting with {SLEEP_PREFIX!r} are kept for sleeps; choose another tag")
    _key, run, when, due = _timer(f"timeout {tag}", "suspend()", lambda now: now + duration)
    value = replay.TIMED_OUT if due else replay.wait_on(run, tag, when)
    if value is not replay.TIMED_OUT:
        return value
    return replay.timed_out_fail(tag) if default is replay.TIMED_OUT else default
