"""Long control work as a server stream: progress messages while it runs, then the answer.

`watched(work, update)` runs `work(report)` in a thread of its own (with the caller's
context, so the caller's identity and deadline go along) and yields
`update(progress=WorkProgress)` for each thing `report` is told, then
`update(done=answer)`; if the work raises, the stream raises the same exception
once the progress told before it is sent, so the handler's guard gives it its status.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any

from ..progress import Report
from ..v1 import fedflow_pb2 as pb

__all__ = ["watched"]

_END = object()


def watched(work: Callable[[Report], Any], update: Callable[..., Any]) -> Iterator[Any]:
    """The messages of one watched piece of work (see the module docstring)."""
    told: queue.SimpleQueue[Any] = queue.SimpleQueue()
    outcome: dict[str, Any] = {}

    def report(phase: str, done: int, total: int | None, unit: str) -> None:
        told.put(pb.WorkProgress(phase=phase, done=done, total=total, unit=unit))

    def run() -> None:
        try:
            outcome["answer"] = work(report)
        except BaseException as exc:  # handed to the stream, which raises it
            outcome["error"] = exc
        finally:
            told.put(_END)

    context = contextvars.copy_context()
    threading.Thread(target=context.run, args=(run,), name="fedflow-watched", daemon=True).start()
    while (message := told.get()) is not _END:
        yield update(progress=message)
    if "error" in outcome:
        raise outcome["error"]
    yield update(done=outcome["answer"])
