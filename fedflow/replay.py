"""The run context: replay log, deterministic step keys, suspend, non-determinism.

A flow runs from the start every time. While it runs, a `Run` (held in a
context variable) knows the values logged for suspend tags and the journaled
results of steps. Steps are keyed by their position in a `Scope`: a prefix
plus a counter, so concurrent `parallel` children get their own keys and the
keys come out the same on every replay.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable
from typing import Any

from . import errors, values
from .journal import Entry
from .railway import Fail, fail


class SuspendSignal(BaseException):
    """Unwinds a flow to the engine at an unresolved suspend (not an Exception, so
    `try_catch` and `retry` never swallow it)."""

    def __init__(self, tag: str, request: list | None = None, wake_at: float | None = None) -> None:
        super().__init__(tag)
        self.tag = tag
        self.request = request
        self.wake_at = wake_at  # a timer: when the wait ends by itself (seconds since the epoch)


class DivergedSignal(BaseException):
    """Unwinds a flow whose replay asked for a different step than the log holds."""

    def __init__(self, key: str, expected: str, recorded: str) -> None:
        super().__init__(key)
        self.key, self.expected, self.recorded = key, expected, recorded


class AbortSignal(BaseException):
    """Unwinds a flow whose run can no longer be recorded (cancelled or moved meanwhile);
    `.error` is the FlowError the engine raises for it."""

    def __init__(self, error: Exception) -> None:
        super().__init__(str(error))
        self.error = error


class Scope:
    """A source of deterministic journal keys for one sequential thread of a flow."""

    __slots__ = ("counter", "prefix")

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.counter = 0

    def next_key(self) -> str:
        """The key of the next journaled position in this scope."""
        key = f"{self.prefix}{self.counter}"
        self.counter += 1
        return key

    def child(self, base: str, index: int) -> Scope:
        """A scope for child `index` of the combinator at key `base`."""
        return Scope(f"{base}/{index}.")


class Run:
    """One execution of one flow: what the log says, and how to add to it."""

    def __init__(self, flow_id: str, log: list[Entry], persist: Callable[[Entry], None],
                 services: Any, before_effect: Callable[[], None] | None = None, nonce: str = "",
                 still_wanted: Callable[[], None] | None = None) -> None:
        """`persist` commits an entry (raising AbortSignal if the flow changed); `before_effect`
        is called once, before the first new step; `still_wanted` before every new step (it
        raises AbortSignal once the flow is cancelled); `nonce` tells this flow apart from
        another flow that had or will have the same id."""
        self.flow_id = flow_id
        self.call_prefix = f"{flow_id}@{nonce}" if nonce else flow_id
        self.services = services  # the engine: peers, deadlines
        self.suspends: dict[str, Any] = {}
        self.journal: dict[str, Entry] = {}
        self.timed_out: set[str] = set()  # tags whose wait its timer ended
        self.consumed: set[str] = set()  # journal keys and ("s:" +) tags this run has read back
        for entry in log:
            if entry["t"] == "s":
                self.suspends[entry["tag"]] = entry["v"]
                if entry.get("w") == 1:
                    self.timed_out.add(entry["tag"])
            else:
                self.journal[entry["k"]] = entry
        self._persist = persist
        self._before_effect = before_effect
        self._still_wanted = still_wanted
        self._lost: Exception | None = None
        self._lock = threading.Lock()

    def before_effect(self) -> None:
        """Called before a journaled step runs for the first time: the engine writes down,
        once, that the flow is running, so a crash during the step leaves it recoverable.
        If that write failed (the flow was cancelled or moved), every later call fails too."""
        with self._lock:
            if self._lost is not None:
                raise AbortSignal(self._lost)
            if self._before_effect is not None:
                flush, self._before_effect = self._before_effect, None
                try:
                    flush()
                except AbortSignal as sig:
                    self._lost = sig.error
                    raise
        if self._still_wanted is not None:
            self._still_wanted()

    def unconsumed(self) -> list[str]:
        """What the log holds that this run has not read back yet (journal keys, "s:" + tags);
        patch markers (keys "patch:…") are left out."""
        keys = [k for k in self.journal if k not in self.consumed and not k.startswith("patch:")]
        return keys + [f"s:{tag}" for tag in self.suspends if f"s:{tag}" not in self.consumed]

    def record(self, entry: Entry) -> None:
        """Commit a journal entry to the store before the flow goes on."""
        with self._lock:
            self._persist(entry)
            self.journal[entry["k"]] = entry


class _Budget:
    __slots__ = ("limit", "lock", "used")

    def __init__(self, limit: int) -> None:
        self.limit, self.used, self.lock = limit, 0, threading.Lock()


_RUN: contextvars.ContextVar[Run | None] = contextvars.ContextVar("fedflow_run", default=None)
_SCOPE: contextvars.ContextVar[Scope] = contextvars.ContextVar("fedflow_scope")
_BUDGETS: contextvars.ContextVar[tuple[_Budget, ...]] = contextvars.ContextVar("fedflow_budgets", default=())


def current_run() -> Run | None:
    """The run the calling code belongs to, or None outside a flow."""
    return _RUN.get()


def run_flow(run: Run, flow: Callable[[Any], Any], value: Any) -> Any:
    """Run `flow(value)` inside `run` in a fresh context (signals propagate)."""
    def body() -> Any:
        _RUN.set(run)
        _SCOPE.set(Scope())
        _BUDGETS.set(())
        return flow(value)
    return contextvars.copy_context().run(body)


def in_child_scope(base: str, index: int, fn: Callable[[], Any]) -> Callable[[], Any]:
    """Wrap `fn` to run in a copy of this context with child scope `index` of `base`."""
    ctx = contextvars.copy_context()
    scope = _scope().child(base, index)

    def body() -> Any:
        _SCOPE.set(scope)
        return fn()
    return lambda: ctx.run(body)


def _scope() -> Scope:
    try:
        return _SCOPE.get()
    except LookupError:
        scope = Scope()
        _SCOPE.set(scope)
        return scope


def next_key() -> str:
    """Take the next journal key of the current scope."""
    return _scope().next_key()


def _require_run(what: str) -> Run:
    run = _RUN.get()
    if run is None:
        raise errors.FlowError(f"{what} was called outside a running flow; call it inside a node "
                               f"of a flow started with Engine.start()")
    return run


#: `suspend`'s `default` when none is given: a timed-out wait returns a Fail naming the tag.
TIMED_OUT: Any = object()


def suspend(tag: str, timeout: float | None = None, default: Any = TIMED_OUT) -> Any:
    """Return the value logged for `tag`, or stop the flow here, waiting on `tag`.

    With `timeout` (seconds), a wait that no resume ends in time returns `default`
    (by default `fail(f"timed out waiting for {tag}")`)."""
    if not isinstance(tag, str):
        raise TypeError(f"suspend tags are strings, got {type(tag).__name__}")
    if timeout is not None:
        from .waits import timed_suspend
        return timed_suspend(tag, timeout, default)
    value = wait_on(_require_run("suspend()"), tag)
    return timed_out_fail(tag) if value is TIMED_OUT else value


def timed_out_fail(tag: str) -> Fail:
    """What a wait on `tag` that timed out returns when no `default` was given."""
    return fail(f"timed out waiting for {tag}")


def wait_on(run: Run, tag: str, wake_at: float | None = None) -> Any:
    """The value logged for `tag` (`TIMED_OUT` if its timer ended the wait), or stop the
    flow here waiting on `tag`, with a timer at `wake_at` when given."""
    if tag in run.suspends:
        run.consumed.add(f"s:{tag}")
        return TIMED_OUT if tag in run.timed_out else values.decode(run.suspends[tag])
    raise SuspendSignal(tag, wake_at=wake_at)


def request(kind: str, payload: Any = None) -> Any:
    """Ask the host for work: suspend with a pending request the host driver answers."""
    if not isinstance(kind, str):
        raise TypeError(f"request kinds are strings, got {type(kind).__name__}")
    run = _require_run("request()")
    tag = f"request:{next_key()}"
    if tag in run.suspends:
        return values.decode(run.suspends[tag])
    raise SuspendSignal(tag, [kind, values.encode(payload, f"request({kind!r}) payload")])


def journaled(name: str, compute: Callable[[str], Any], key: str | None = None) -> Any:
    """Run `compute(call_key)` once per flow; on replay return (or re-raise) what was logged.
    `key`: the journal key already taken for it (default: the next key of the current scope)."""
    run = _RUN.get()
    if run is None:
        return compute("")
    key = next_key() if key is None else key
    entry = run.journal.get(key)
    if entry is not None:
        if entry["n"] != name:
            raise DivergedSignal(key, name, entry["n"])
        run.consumed.add(key)
        if "e" in entry:
            raise rebuild_error(entry["e"])
        return values.decode(entry["v"])
    run.before_effect()
    try:
        tree = values.encode(compute(f"{run.call_prefix}/{key}"), f"result of {name}")
    except (SuspendSignal, DivergedSignal, AbortSignal, errors.UnknownPeer):
        raise  # not outcomes of the step (an unknown peer: nothing was sent), so not journaled
    except Exception as exc:
        run.record({"t": "j", "k": key, "n": name, "e": errors.to_data(exc)})
        raise
    run.record({"t": "j", "k": key, "n": name, "v": tree})
    return values.decode(tree)


def rebuild_error(data: Any) -> Exception:
    """The exception a journaled step raised (see `errors.from_data`), marked as replayed."""
    exc = errors.from_data(data)
    exc._fedflow_replayed = True  # type: ignore[attr-defined]
    return exc


def is_replayed(exc: BaseException) -> bool:
    """True when `exc` was rebuilt from the journal rather than raised just now."""
    return getattr(exc, "_fedflow_replayed", False)


def tick() -> None:
    """Spend one step of every enclosing `timeout` budget; past a budget raise FlowTimeout."""
    for budget in _BUDGETS.get():
        with budget.lock:
            budget.used += 1
            over = budget.used > budget.limit
        if over:
            raise errors.FlowTimeout(f"step budget of {budget.limit} ticks exhausted; raise the budget "
                                     f"given to timeout() or do less work per flow")


def with_budget(limit: int, fn: Callable[[], Any]) -> Any:
    """Run `fn` with one more step budget of `limit` ticks in force."""
    token = _BUDGETS.set((*_BUDGETS.get(), _Budget(limit)))
    try:
        return fn()
    finally:
        _BUDGETS.reset(token)
