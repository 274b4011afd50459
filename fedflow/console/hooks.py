"""Watching one engine at work, for the metrics and the console, without touching its code paths.

`instrument(engine, metrics)` wraps a few methods on the engine, its store
and its peers' transports (on those objects only, never on their classes)
and listens to `fedflow.observe` for step times and fired timers. It feeds the `Metrics`
counters and histograms and keeps, in memory, what the console shows beside
the store: how long recent steps took, and when each peer last answered.
Each wrapper adds two clock reads and a histogram update (well under a microsecond, see
`fedflow.console.timings`) to the call.
`Instrumented.close()` removes every wrapper.
"""

from __future__ import annotations

import functools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from .. import observe
from ..errors import PeerError, RemoteError
from ..store.base import TERMINAL
from .metrics import Metrics

#: Flows whose step times are kept (the most recently started ones).
KEPT_FLOWS = 10_000
_STORE_WRITES = ("create", "transition", "append_log", "put_flows", "delete", "delete_terminal", "put_replica")


class Instrumented:
    """The wrappers installed on one engine and what they observed."""

    def __init__(self, engine: Any, metrics: Metrics) -> None:
        self.engine = engine
        self.metrics = metrics
        self._lock = threading.Lock()
        self._steps: OrderedDict[str, dict[str, float]] = OrderedDict()
        self._contacts: dict[str, tuple[float, str]] = {}
        self._replicas: dict[str, tuple[float, int]] = {}
        self._undo: list[Callable[[], None]] = []
        self._step_kinds = {kind: metrics.step_seconds.labels(kind) for kind in ("step", "remote", "failover")}
        self._step_kinds[""] = self._step_kinds["step"]
        self._other_steps = metrics.step_seconds.labels("other")

    # -- what the console reads ----------------------------------------------

    def step_seconds(self, flow_id: str) -> dict[str, float]:
        """Journal key -> seconds, for the steps of `flow_id` this process ran (recent flows only)."""
        return dict(self._steps.get(flow_id, {}))

    def last_contact(self, peer: str) -> tuple[float, str] | None:
        """(unix time, outcome) of the last call to `peer` or health check that reached it."""
        with self._lock:
            return self._contacts.get(peer)

    def replica_stored(self, source: str) -> tuple[float, int] | None:
        """(unix time, flows) of the last replica of `source` stored while this process watched."""
        with self._lock:
            return self._replicas.get(source)

    def contacted(self, peer: str, outcome: str) -> None:
        """Record that `peer` answered now (outcome: "ok", or what it answered)."""
        with self._lock:
            self._contacts[peer] = (time.time(), outcome)

    # -- wrapping --------------------------------------------------------------

    def _wrap(self, obj: Any, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        original = getattr(obj, name, None)
        if not callable(original):
            return
        own = name in vars(obj)  # already an instance attribute (wrapped before, or set by hand)
        setattr(obj, name, functools.wraps(original)(make(original)))

        def undo() -> None:
            if own:
                setattr(obj, name, original)
            else:
                vars(obj).pop(name, None)
        self._undo.append(undo)

    def install(self) -> Instrumented:
        """Install every wrapper and the step listener; returns self."""
        engine, store = self.engine, self.engine.store
        self._wrap(engine, "resume", self._timed(self.metrics.resume_seconds))
        self._wrap(engine, "call_peer", self._peer_call)
        for operation in ("replicate_to", "handoff_to", "restore_from"):
            self._wrap(engine, operation, self._timed(self.metrics.replication_seconds.labels(operation)))
        self._wrap(engine, "accept_replica", self._received)
        for operation in _STORE_WRITES:
            self._wrap(store, operation, self._commit(operation))
        group = getattr(store, "_group", None)  # SQLiteStore under durability="power"
        if group is not None:
            self._wrap(group, "_sync", self._timed(self.metrics.fsync_seconds))
        peers = engine.peers
        for name in peers.names():
            self._wrap_transport(peers.get(name))
        self._wrap(peers, "add", lambda add: lambda transport: add(self._wrap_transport(transport)))
        observe.add_listener(self._step)
        self._undo.append(lambda: observe.remove_listener(self._step))
        observe.add_timer_listener(self._timer_fired)
        self._undo.append(lambda: observe.remove_timer_listener(self._timer_fired))
        return self

    def close(self) -> None:
        """Remove every wrapper and the listener (newest first)."""
        while self._undo:
            self._undo.pop()()

    def _wrap_transport(self, transport: Any) -> Any:
        self._wrap(transport, "push_replica", self._sent)
        return transport

    # -- the wrappers ----------------------------------------------------------

    @staticmethod
    def _timed(histogram: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        def make(fn: Callable[..., Any]) -> Callable[..., Any]:
            def timed(*args: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    histogram.observe(time.perf_counter() - started)
            return timed
        return make

    def _peer_call(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call_peer(addr: str, *args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            outcome = "ok"
            try:
                return fn(addr, *args, **kwargs)
            except Exception as exc:
                outcome = type(exc).__name__
                raise
            finally:
                self.metrics.peer_calls.labels(addr, outcome).inc()
                self.metrics.peer_call_seconds.labels(addr).observe(time.perf_counter() - started)
                if outcome not in _UNREACHED:
                    self.contacted(addr, outcome)
        return call_peer

    def _commit(self, operation: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        histogram = self.metrics.commit_seconds.labels(operation)
        if operation == "create":
            return self._timed_create(histogram)
        if operation == "transition":
            return self._timed_transition(histogram)
        return self._timed(histogram)

    def _timed_create(self, histogram: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        started_counter, finished = self.metrics.started, self.metrics.finished

        def make(create: Callable[..., Any]) -> Callable[..., Any]:
            def timed_create(record: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                done = create(record, **kwargs)
                histogram.observe(time.perf_counter() - started)
                if done:
                    started_counter.inc()
                    if record.status in TERMINAL:
                        finished.labels(record.status).inc()
                return done
            return timed_create
        return make

    def _timed_transition(self, histogram: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        finished = self.metrics.finished

        def make(transition: Callable[..., Any]) -> Callable[..., Any]:
            def timed_transition(flow_id: str, expect: Any, changes: dict[str, Any], *rest: Any, **kwargs: Any) -> Any:
                started = time.perf_counter()
                done = transition(flow_id, expect, changes, *rest, **kwargs)
                histogram.observe(time.perf_counter() - started)
                if done and changes.get("status") in TERMINAL:
                    finished.labels(changes["status"]).inc()
                return done
            return timed_transition
        return make

    def _received(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def accept_replica(source: str, export_text: str) -> Any:
            answer = fn(source, export_text)
            self.metrics.replication_bytes.labels("received").inc(len(export_text))
            with self._lock:
                self._replicas[source] = (time.time(), answer)
            return answer
        return accept_replica

    def _sent(self, fn: Callable[..., Any]) -> Callable[..., Any]:
        def push_replica(source: str, export_text: str, **kwargs: Any) -> Any:
            answer = fn(source, export_text, **kwargs)
            self.metrics.replication_bytes.labels("sent").inc(len(export_text))
            return answer
        return push_replica

    def _step(self, engine: Any, flow_id: str, key: str, name: str, seconds: float, ok: bool) -> None:
        if engine is not self.engine:
            return
        self._step_kinds.get(name.partition(" ")[0], self._other_steps).observe(seconds)
        steps = self._steps.get(flow_id)
        if steps is None:
            with self._lock:
                steps = self._steps.setdefault(flow_id, {})
                if len(self._steps) > KEPT_FLOWS:
                    self._steps.popitem(last=False)
        steps[key] = seconds

    def _timer_fired(self, engine: Any, flow_id: str, wake_at: float) -> None:
        if engine is self.engine:
            self.metrics.timer_lateness_seconds.observe(max(0.0, engine.clock.time() - wake_at))


#: Peer errors that mean the call never reached the peer (no contact to record).
_UNREACHED = frozenset(cls.__name__ for cls in PeerError.__subclasses__() if cls is not RemoteError) | {
    "PeerError", "PeerUnavailable", "UnknownPeer"}


def instrument(engine: Any, metrics: Metrics) -> Instrumented:
    """Install the wrappers on `engine` (see the module doc); `close()` the result to remove them."""
    return Instrumented(engine, metrics).install()
