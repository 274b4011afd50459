"""The deadline of the peer call being served, so nested calls never outlive their caller.

The gRPC servicer runs an exposed function inside `within(context.time_remaining())`;
a peer call that function makes (directly, or from a flow it starts) is given at most
what remains (`bounded`), however long its own deadline is. Outside a served call
nothing is bounded. A contextvar, so each served call (one thread each) has its own.

>>> with within(2.0):
...     bounded(10.0) <= 2.0
True
>>> bounded(10.0)
10.0
"""

from __future__ import annotations

import contextlib
import contextvars
import time
from collections.abc import Iterator

__all__ = ["bounded", "remaining", "within"]

#: The least a bounded call is given, so a call whose caller's time is up fails at once.
_LEAST = 0.001
_END: contextvars.ContextVar[float | None] = contextvars.ContextVar("fedflow_served_call_end", default=None)


@contextlib.contextmanager
def within(seconds: float | None) -> Iterator[None]:
    """Bound the peer calls made in the block to `seconds` from now (None: no new bound); an
    outer bound that ends sooner still holds."""
    if seconds is None:
        yield
        return
    end = time.monotonic() + seconds
    outer = _END.get()
    token = _END.set(end if outer is None else min(end, outer))
    try:
        yield
    finally:
        _END.reset(token)


def remaining() -> float | None:
    """Seconds left to the caller being served, None outside a served call."""
    end = _END.get()
    return None if end is None else end - time.monotonic()


def bounded(deadline: float) -> float:
    """`deadline` (seconds), cut to what the caller being served has left."""
    left = remaining()
    return deadline if left is None else max(min(deadline, left), _LEAST)
