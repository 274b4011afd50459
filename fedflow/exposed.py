"""The functions an engine exposes to its peers, and the answers kept to drop duplicate calls.

A peer that retries a call (a lost answer, a recovered flow) sends the same call id
again; the first answer is given back instead of running the function twice. Both the
in-process transport and the gRPC servicer reach exposed functions through `invoke`.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from . import values
from .errors import UnknownFunction

#: Answers kept to drop duplicate peer calls: at most this many, and this many bytes in all.
ANSWERS_KEPT = 4096
ANSWER_BYTES_KEPT = 16 * 1024 * 1024
#: A larger answer is not kept: a duplicate of it runs again.
LARGEST_ANSWER_KEPT = 256 * 1024


class AnswerCache:
    """Recent answers by call key, bounded in count and bytes; a duplicate of a call still
    running waits for it and takes its answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._running: dict[str, threading.Event] = {}

    def answer(self, key: str, compute: Callable[[], Any]) -> Any:
        """The kept answer for `key`, else `compute()` (kept for later duplicates unless it raised)."""
        while True:
            with self._lock:
                if key in self._answers:
                    return self._answers[key][0]
                running = self._running.get(key)
                if running is None:
                    self._running[key] = threading.Event()
                    break
            running.wait()
        try:
            answer = compute()
            self._keep(key, answer)
            return answer
        finally:
            with self._lock:
                self._running.pop(key).set()

    def _keep(self, key: str, answer: Any) -> None:
        size = values.approx_size(answer, LARGEST_ANSWER_KEPT)
        if size > LARGEST_ANSWER_KEPT:
            return
        with self._lock:
            self._answers[key] = (answer, size)
            self._bytes += size
            while len(self._answers) > ANSWERS_KEPT or self._bytes > ANSWER_BYTES_KEPT:
                _key, (_answer, old_size) = self._answers.popitem(last=False)
                self._bytes -= old_size


class ExposedFunctions:
    """The functions one engine (named `owner`) lets its peers call."""

    def __init__(self, owner: str) -> None:
        self.owner = owner
        self._functions: dict[str, Callable[[Any], Any]] = {}
        self._answers = AnswerCache()

    def expose(self, name: str, fn: Callable[[Any], Any]) -> None:
        """Make `fn` callable by peers as `name`."""
        if not callable(fn):
            raise TypeError(f"expose({name!r}, ...) needs a callable, got {type(fn).__name__}")
        self._functions[name] = fn

    def names(self) -> list[str]:
        """Names of the exposed functions, sorted."""
        return sorted(self._functions)

    def invoke(self, fn: str, payload: Any, call_id: str | None = None) -> Any:
        """Run exposed function `fn` for a peer; a repeated `call_id` gets the first answer again."""
        func = self._functions.get(fn)
        if func is None:
            raise UnknownFunction(f"engine {self.owner!r} exposes no function {fn!r}; "
                                  f"it exposes {self.names()}", peer=self.owner)
        if not call_id:
            return func(payload)
        return self._answers.answer(f"{fn}\x00{call_id}", lambda: func(payload))
