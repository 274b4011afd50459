"""Where watchers (metrics, the web console) hear how long each journaled step took.

Nothing listens by default. `add_listener(fn)` adds one; the engine then calls
``fn(engine, flow_id, key, name, seconds, ok)`` after each step, remote call
or failover walk runs for the first time (never on replay), with the engine
running it, the step's journal key and name. A listener must be quick and
must not raise: it runs on the flow's own thread, between two journal commits.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

StepListener = Callable[[Any, str, str, str, float, bool], None]

_listeners: tuple[StepListener, ...] = ()
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
        _listeners = tuple(listener for listener in _listeners if listener is not fn)


def step_ran(engine: Any, flow_id: str, key: str, name: str, seconds: float, ok: bool) -> None:
    """Tell every listener that step `key` (`name`) of `flow_id` on `engine` ran for `seconds`."""
    for listener in _listeners:
        listener(engine, flow_id, key, name, seconds, ok)
