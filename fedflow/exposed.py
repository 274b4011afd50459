"""The functions an engine exposes to its peers, and the answers kept to drop duplicate calls.

A peer that retries a call (a lost answer, a recovered flow) sends the same call id
again; the first answer is given back instead of running the function twice. Each
answer (what the function returned) is recorded in
the engine's store BEFORE it is sent, so a retry that reaches this engine after a
restart (even a `kill -9`) still gets it; recent answers are also kept in memory, so
a retry soon after needs no store read. Recorded answers are dropped by age and count
(`AnswerLimits`). A call that raised is not recorded (a retry runs it again, as a
retried activity would), nor is one that crashed mid-way.
Both the in-process transport and the gRPC servicer reach exposed functions through
`invoke`.
"""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from . import values
from .errors import UnknownFunction
from .store.base import Store

#: Answers kept in memory to drop duplicate peer calls: at most this many, and this many bytes in all.
ANSWERS_KEPT = 4096
ANSWER_BYTES_KEPT = 16 * 1024 * 1024
#: A larger answer is not kept in memory (the store still has it).
LARGEST_ANSWER_KEPT = 256 * 1024
#: Every this many recorded answers, the old ones are pruned from the store.
_PRUNE_EVERY = 256


@dataclasses.dataclass(frozen=True)
class AnswerLimits:
    """How long recorded answers stay in the store: `max_age` seconds, at most `max_count` of
    them (the newest). A retry that comes later than that runs the function again."""

    max_age: float = 7 * 24 * 3600.0
    max_count: int = 100_000

    def __post_init__(self) -> None:
        if isinstance(self.max_count, bool) or not isinstance(self.max_count, int) or self.max_count < 1:
            raise ValueError(f"answers max_count must be a whole number of answers above 0, got {self.max_count!r}")
        if isinstance(self.max_age, bool) or not isinstance(self.max_age, (int, float)) or not self.max_age > 0:
            raise ValueError(f"answers max_age must be a number of seconds above 0, got {self.max_age!r}")


class AnswerCache:
    """Recent answers by call key, bounded in count and bytes; a duplicate of a call still
    running waits for it and takes its answer."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._running: dict[str, threading.Event] = {}

    def answer(self, key: str, compute: Callable[[], Any]) -> Any:
        """The kept answer for `key`, else `compute()` (kept for later duplicates unless it raised).
        Answers are kept as encoded trees (`fedflow.values`), so no caller can change another's."""
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
    """The functions one engine (named `owner`) lets its peers call; their answers are
    recorded in `store` (bounded by `limits`)."""

    def __init__(self, owner: str, store: Store, limits: AnswerLimits | None = None) -> None:
        self.owner = owner
        self.store = store
        self.limits = limits or AnswerLimits()
        self._functions: dict[str, Callable[[Any], Any]] = {}
        self._answers = AnswerCache()
        self._recorded = 0
        self._count_lock = threading.Lock()

    def expose(self, name: str, fn: Callable[[Any], Any]) -> None:
        """Make `fn` callable by peers as `name`."""
        if not callable(fn):
            raise TypeError(f"expose({name!r}, ...) needs a callable, got {type(fn).__name__}")
        self._functions[name] = fn

    def names(self) -> list[str]:
        """Names of the exposed functions, sorted."""
        return sorted(self._functions)

    def invoke(self, fn: str, payload: Any, call_id: str | None = None) -> Any:
        """Run exposed function `fn` for a peer; a repeated `call_id` gets the first answer again,
        even after a restart."""
        func = self._functions.get(fn)
        if func is None:
            raise UnknownFunction(f"engine {self.owner!r} exposes no function {fn!r}; "
                                  f"it exposes {self.names()}", peer=self.owner)
        if not call_id:
            return func(payload)
        key = f"{fn}\x00{call_id}"
        return values.decode(self._answers.answer(key, lambda: self._recorded_or_run(key, lambda: func(payload))))

    def _recorded_or_run(self, key: str, run: Callable[[], Any]) -> Any:
        """The answer (encoded) the store holds for `key`, else run and record it (committed) first."""
        text = self.store.recorded_answer(key)
        if text is None:
            tree = values.encode(run(), "answer")
            ours = values.dump_tree(tree)
            text = self.store.record_answer(key, ours, time.time())
            self._maybe_prune()
            if text == ours:  # ours was kept (not a racing caller's): no need to parse it back
                return tree
        return json.loads(text)

    def _maybe_prune(self) -> None:
        with self._count_lock:
            self._recorded += 1
            due = self._recorded % _PRUNE_EVERY == 1
        if due:
            self.prune()

    def prune(self) -> int:
        """Drop recorded answers past the age and count limits; the count dropped."""
        return self.store.prune_answers(time.time() - self.limits.max_age, self.limits.max_count)
