"""The host driver: answer flows' `request(kind, payload)` with a dispatch function."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from .errors import FlowError, FlowFailed

log = logging.getLogger("fedflow.host")


class _NotReady:
    """The type of `NOT_READY`."""

    _instance: _NotReady | None = None

    def __new__(cls) -> _NotReady:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "fedflow.NOT_READY"


#: Returned by a dispatch function to leave a request pending (a human has not answered yet).
NOT_READY = _NotReady()

Dispatch = Callable[[str, Any], Any]


def drive_host(engine: Any, dispatch: Dispatch) -> int:
    """One tick: answer every request pending when the tick starts; the count answered."""
    answered = 0
    for flow_id, kind, payload in engine.requests():
        answer = dispatch(kind, payload)
        if answer is NOT_READY:
            continue
        try:
            engine.resume(flow_id, answer)
        except FlowFailed as exc:  # the answer was delivered; the flow failed on it
            log.warning("host request %s of flow %s: %s", kind, flow_id, exc)
        except FlowError as exc:  # cancelled, moved or resumed elsewhere during this tick
            log.info("host request %s of flow %s not delivered: %s", kind, flow_id, exc)
            continue
        answered += 1
    return answered


def run_host(engine: Any, dispatch: Dispatch, max_ticks: int = 100) -> int:
    """Tick until a tick answers nothing or `max_ticks` ticks ran; the count of ticks that answered."""
    busy = 0
    for _ in range(max_ticks):
        if drive_host(engine, dispatch) == 0:
            break
        busy += 1
    return busy
