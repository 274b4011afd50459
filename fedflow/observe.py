"""Where watchers (metrics, the web console) hear how long each journaled step took, and
when a due timer fires.

Nothing listens by default. `add_listener(fn)` adds one; the engine then calls
``fn(engine, flow_id, key, name, seconds, ok)`` after each step, remote call
or failover walk runs for the first time (never on replay), with the engine
running it, the step's journal key and name. `add_timer_listener(fn)` adds a
``fn(engine, flow_id, wake_at)`` called when the timer service fires a due
timer (not on `Engine.wake`), just before the flow's wake is committed: the
listener reads the engine's clock for the lateness, so firing with nobody
listening costs no clock read. A listener must be quick and must not raise:
it runs on the flow's own thread (or the timer service's).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

StepListener = Callable[[Any, str, str, str, float, bool], None]
TimerListener = Callable[[Any, str, float], None]

_listeners: tuple[StepListener, ...] = ()
_timer_listeners: tuple[TimerListener, ...] = ()
_lock = threading.Lock()


def add_listener(fn: StepListener) -> None:
    """Call `fn` after every first run of a journaled step in this process."""
    global _listeners
    with _lock:
        _listeners = (*_listeners, fn)


def remove_listener(fn: StepListener) -> None:
    """Stop calling `fn` (no error if it was not added)."""
    global _listeners
    with _lock:
        _listeners = tuple(listener for listener in _listeners if listener != fn)  # == : bound methods


def step_ran(engine: Any, flow_id: str, key: str, name: str, seconds: float, ok: bool) -> None:
    """Tell every listener that step `key` (`name`) of `flow_id` on `engine` ran for `seconds`."""
    for listener in _listeners:
        listener(engine, flow_id, key, name, seconds, ok)


def add_timer_listener(fn: TimerListener) -> None:
    """Call `fn(engine, flow_id, wake_at)` each time a due timer fires in this process."""
    global _timer_listeners
    with _lock:
        _timer_listeners = (*_timer_listeners, fn)


def remove_timer_listener(fn: TimerListener) -> None:
    """Stop calling `fn` (no error if it was not added)."""
    global _timer_listeners
    with _lock:
        _timer_listeners = tuple(listener for listener in _timer_listeners if listener != fn)


def timer_fired(engine: Any, flow_id: str, wake_at: float) -> None:
    """Tell every timer listener that the timer of `flow_id` (due at `wake_at`) fires now."""
    for listener in _timer_listeners:
        listener(engine, flow_id, wake_at)
