"""The engine: runs flows by replay over a store, and answers for them.

Every state change is committed to the store before the caller hears of it:
a flow is on disk as `running` before its first new side effect (see
`opening.py`), each journaled step is committed before the flow goes on, and
the final state before `start`/`resume` return.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from . import host, journal, leases, registry, values
from .combinators import Flow
from .errors import (
    FlowCancelled,
    FlowError,
    FlowFailed,
    FlowMoved,
    FlowNotDone,
    NonDeterminism,
    UnknownFlow,
    UnknownFunction,
    UnknownPeer,
)
from .federation import Federation
from .opening import Opening
from .outcomes import Suspended
from .peers import PeerTable
from .replay import AbortSignal, DivergedSignal, Run, SuspendSignal, describe_error, rebuild_error, run_flow
from .store import open_store
from .store.base import CANCELLED, DONE, FAILED, LIVE, MOVED, RUNNING, SUSPENDED, TERMINAL, FlowRecord, Store

log = logging.getLogger("fedflow.engine")

#: Answers kept to drop duplicate peer calls: at most this many, and this many bytes in all.
_CALL_CACHE_SIZE = 4096
_CALL_CACHE_BYTES = 16 * 1024 * 1024
_CALL_CACHE_ONE = 256 * 1024
_AFTER_FAILURE = "fix the cause and start a new flow (forget() or gc() drop the failed record)"


def _not_waiting_on(rec: FlowRecord, tag: str) -> FlowError:
    """The refusal of a resume guarded by `tag` that the suspended flow does not wait on."""
    return FlowError(f"flow {rec.id} does not wait on {tag!r}: it waits on {rec.waiting!r} (already "
                     f"resumed?); nothing was changed; pending() shows what it waits on", rec.id)


def _state(rec: FlowRecord | None) -> str:
    """What a record says, for a message: "gone", "done", "suspended on 'x'", ..."""
    if rec is None:
        return "gone"
    return f"suspended on {rec.waiting!r}" if rec.status == SUSPENDED else rec.status


def _running(flow_id: str) -> FlowError:
    return FlowError(f"flow {flow_id} is running, not waiting; wait for it to suspend or finish, then "
                     f"resume it or read its result", flow_id)


class Engine(Federation):
    """One fedflow instance: its flows, its store, its peers and exposed functions."""

    def __init__(self, name: str = "fedflow", store: str | Store | None = None, *,
                 durability: str = "power", deadline: float = 10.0, recover: bool = True) -> None:
        """Open (or create) the store; with `recover`, re-run flows a crash left `running`."""
        self.name = name
        self.deadline = deadline
        self.store = open_store(store, durability, name=name)
        self.peers = PeerTable(name, deadline)
        self._exposed: dict[str, Callable[[Any], Any]] = {}
        self._anonymous: dict[str, Flow] = {}
        self._active: set[str] = set()
        self._stopped: set[str] = set()  # active flows cancelled meanwhile: no new step may start
        self._lock = threading.RLock()
        self._answers: OrderedDict[str, Any] = OrderedDict()
        self._answer_bytes = 0
        self._inflight: dict[str, threading.Event] = {}
        self._leases = leases.keep(self)  # on a shared store: renew its lease, take over dead instances' flows
        if recover:
            self.recover()

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close peer connections and the store."""
        self._leases.stop()
        self.peers.close()
        self.store.close()

    def new_id(self) -> str:
        """A fresh flow id, unique across instances."""
        return f"{self.name}-{uuid.uuid4().hex[:16]}"

    def _resolve(self, rec: FlowRecord) -> Flow:
        if rec.name is not None:
            return registry.lookup(rec.name)
        found = self._anonymous.get(rec.id)
        if found is None:
            raise FlowError(f"flow {rec.id} was started from an anonymous flow that this process no "
                            f"longer has; register the flow with defflow(name, flow) and start it by "
                            f"name so it can be resumed after a restart or a move", rec.id)
        return found

    def start(self, flow: Flow | str, input: Any = None, id: str | None = None) -> Any:
        """Run `flow` (a flow or a registered name) on `input`: its result, or `Suspended`.

        With `id`, start is idempotent: an existing flow's outcome is returned, not re-run."""
        name, body = (flow, registry.lookup(flow)) if isinstance(flow, str) else (registry.name_of(flow), flow)
        if not callable(body):
            raise TypeError(f"start() needs a flow (a callable) or a registered name, got {type(flow).__name__}")
        text = values.dump_tree(values.encode(input, "input"))  # stored like results and entries: ASCII
        flow_id = id if id is not None else self.new_id()
        now = time.time()
        rec = FlowRecord(id=flow_id, name=name, status=RUNNING, input=text, created=now, updated=now)
        with self._lock:
            self._refuse_if_active(flow_id)
            existing = self.store.get(flow_id) if id is not None else None
            if existing is not None:
                return self._outcome(existing)
            self._active.add(flow_id)
            if name is None:
                self._anonymous[flow_id] = body
        return self._execute(rec, body, [], Opening(self.store, rec, explain=self._changed_meanwhile))

    def resume(self, id: str, value: Any = None, tag: str | None = None) -> Any:
        """Deliver `value` to the tag the flow waits on and replay it: its result, or `Suspended`.

        With `tag`, the resume is refused with FlowError (changing nothing) unless the flow waits
        on exactly that tag, so a retried or duplicated resume never feeds the next wait. The
        resume applies only to the flow as it was read: if another caller (here or in another
        process on the same store) resumed or cancelled it first, this one raises FlowError."""
        tree = values.encode(value, "resume value")
        with self._lock:
            self._refuse_if_active(id)
            rec = self._get(id)
            if rec.status != SUSPENDED:
                self._refuse_resume(rec)
            if tag is not None and rec.waiting != tag:
                raise _not_waiting_on(rec, tag)
            body = self._resolve(rec)
            self._active.add(id)
        opening = Opening(self.store, rec, resume_entry={"t": "s", "tag": rec.waiting, "v": tree},
                          explain=self._changed_meanwhile)
        return self._execute(rec, body, None, opening)

    def _refuse_if_active(self, flow_id: str) -> None:
        if flow_id in self._active:
            raise _running(flow_id)

    def _changed_meanwhile(self, flow_id: str) -> Exception:
        """The error for a run whose flow was cancelled, moved, resumed or claimed by another
        caller while it ran (its compare-and-set failed), naming what the store holds now."""
        rec = self.store.get(flow_id)
        if rec is not None and rec.status == CANCELLED:
            return FlowCancelled(f"flow {flow_id} was cancelled while it ran; its outcome was discarded", flow_id)
        if rec is not None and rec.status == MOVED:
            return FlowMoved(f"flow {flow_id} was handed off to {rec.owner!r} while it ran; resume it there",
                             flow_id, owner=rec.owner)
        return FlowError(f"flow {flow_id} was already resumed or run by another caller (it is now "
                         f"{_state(rec)}); this run's outcome was discarded and nothing of it was stored: "
                         f"check status()", flow_id)

    def _refuse_resume(self, rec: FlowRecord) -> None:
        self._outcome(rec)  # raises for running, cancelled, moved and failed
        raise FlowError(f"flow {rec.id} is already done; read its result with result()", rec.id)

    def _execute(self, rec: FlowRecord, body: Flow, log_entries: list | None, opening: Opening) -> Any:
        """Replay `body` against the flow's log; record and report how the run ended."""
        flow_id = rec.id
        try:
            if log_entries is None:
                log_entries = journal.load_all(self.store.load_log(flow_id), flow_id)
            if opening.resume_entry is not None:
                log_entries = [*log_entries, opening.resume_entry]
            run = Run(flow_id, log_entries, lambda entry: self._journal(opening, flow_id, entry), self,
                      before_effect=opening.flush, nonce=repr(rec.created),
                      still_wanted=lambda: self._still_wanted(flow_id))
            try:
                result = run_flow(run, body, values.loads(rec.input))  # as every replay will see it
                tree = values.encode(result, "result")
            except AbortSignal as sig:
                self._anonymous.pop(flow_id, None)
                raise sig.error from None
            except SuspendSignal as sig:
                request = json.dumps(sig.request) if sig.request is not None else None
                self._finish(opening, flow_id, SUSPENDED, waiting=sig.tag, request=request)
                return Suspended(flow_id, sig.tag)
            except DivergedSignal as sig:
                err = NonDeterminism(
                    f"flow {flow_id}: replay asked for {sig.expected!r} at journal position {sig.key} "
                    f"but the log recorded {sig.recorded!r}; check that your workflow is deterministic "
                    f"(side effects go through step, remote_node or suspend)", flow_id,
                    expected=sig.expected, recorded=sig.recorded)
                self._finish(opening, flow_id, FAILED, error=json.dumps(describe_error(err)))
                raise err from None
            except UnknownPeer as exc:
                if opening.recovering:  # peers are registered after the store opened: try again later
                    log.warning("flow %s waits for peer %r; it stays running until recover() is called "
                                "again after the peer is registered", flow_id, exc.peer)
                    return None
                self._finish(opening, flow_id, FAILED, error=json.dumps(describe_error(exc)))
                raise FlowFailed(f"flow {flow_id} failed: UnknownPeer: {exc}; {_AFTER_FAILURE}",
                                 flow_id, cause=exc) from exc
            except Exception as exc:
                self._finish(opening, flow_id, FAILED, error=json.dumps(describe_error(exc)))
                raise FlowFailed(f"flow {flow_id} failed: {type(exc).__name__}: {exc}; {_AFTER_FAILURE}",
                                 flow_id, cause=exc) from exc
            self._finish(opening, flow_id, DONE, result=values.dump_tree(tree))
            return values.decode(tree)
        finally:
            with self._lock:
                self._active.discard(flow_id)
                self._stopped.discard(flow_id)

    def _still_wanted(self, flow_id: str) -> None:
        """Before a new step: a flow cancelled while it runs stops here, before the effect."""
        if flow_id in self._stopped:
            raise AbortSignal(self._changed_meanwhile(flow_id))

    def _journal(self, opening: Opening, flow_id: str, entry: journal.Entry) -> None:
        """Commit one journal entry; a flow cancelled, moved or claimed meanwhile stops its run."""
        if not opening.journal(entry):
            raise AbortSignal(self._changed_meanwhile(flow_id))

    def _finish(self, opening: Opening, flow_id: str, status: str, **fields: Any) -> None:
        """Record the end of a run; a flow cancelled or moved while it ran raises instead."""
        recorded = opening.finish(status, fields)
        if status in TERMINAL or not recorded:
            self._anonymous.pop(flow_id, None)
        if not recorded:
            raise self._changed_meanwhile(flow_id)

    def recover(self) -> list[str]:
        """Re-run, by replay, every flow left `running` by a crash; the ids re-run.

        A flow whose definition is not registered yet stays `running` (call again later)."""
        rerun = []
        self._leases.arm()
        for flow_id in leases.recoverable(self.store):
            with self._lock:
                rec = self.store.get(flow_id)
                if rec is None or flow_id in self._active or rec.status != RUNNING:
                    continue
                try:
                    body = self._resolve(rec)
                except FlowError as exc:
                    log.warning("cannot recover flow %s yet: %s", flow_id, exc)
                    continue
                opening = Opening(self.store, rec, written=True, explain=self._changed_meanwhile)
                if not opening.claim():  # another engine on this store recovered it first
                    continue
                self._active.add(flow_id)
            log.info("recovering flow %s (%s) by replay", flow_id, rec.name)
            try:
                self._execute(rec, body, None, opening)
            except Exception as exc:  # one bad flow must not stop recovery of the rest
                log.warning("recovered flow %s failed: %s: %s", flow_id, type(exc).__name__, exc)
            rerun.append(flow_id)
        return rerun

    # ------------------------------------------------------------ introspection
    def _get(self, flow_id: str) -> FlowRecord:
        rec = self.store.get(flow_id)
        if rec is None:
            raise UnknownFlow(f"no flow {flow_id!r} on engine {self.name!r}; list() shows the flows here", flow_id)
        return rec

    def _outcome(self, rec: FlowRecord) -> Any:
        """What start/resume report for an existing flow (raises for unhappy states)."""
        if rec.status == DONE:
            return values.loads(rec.result or "null")
        if rec.status == SUSPENDED:
            return Suspended(rec.id, rec.waiting or "")
        if rec.status == FAILED:
            err = json.loads(rec.error or "{}")
            cause = rebuild_error(err)
            raise FlowFailed(f"flow {rec.id} failed: {err.get('type')}: {err.get('message')}; {_AFTER_FAILURE}",
                             rec.id, cause=cause) from cause
        if rec.status == CANCELLED:
            raise FlowCancelled(f"flow {rec.id} was cancelled; start a new flow instead", rec.id)
        if rec.status == MOVED:
            raise FlowMoved(f"flow {rec.id} was handed off to {rec.owner!r}; resume it there", rec.id,
                            owner=rec.owner)
        raise _running(rec.id)

    def cancel(self, id: str) -> None:
        """Cancel a live flow; a later resume raises FlowCancelled. Cancelling twice is harmless."""
        with self._lock:
            rec = self.store.get(id)
            if rec is None and id in self._active:
                raise FlowError(f"flow {id} is starting; cancel it once it has suspended", id)
            rec = self._get(id)
            if rec.status == CANCELLED:
                return
            if rec.status not in LIVE:
                raise FlowError(f"flow {id} is {rec.status} and cannot be cancelled; forget() drops it", id)
            if not self.store.transition(id, LIVE, {"status": CANCELLED, "waiting": None, "request": None,
                                                    "updated": time.time()}, version=rec.version):
                now = self.store.get(id)
                if now is not None and now.status == CANCELLED:
                    return  # cancelled by another caller meanwhile
                raise FlowError(f"flow {id} changed while it was being cancelled (another caller resumed "
                                f"it first: it is now {_state(now)}); it was not cancelled", id)
            self._anonymous.pop(id, None)
            if id in self._active:
                self._stopped.add(id)

    def status(self, id: str) -> str:
        """running, suspended, done, failed, cancelled, moved, or unknown."""
        if id in self._active:
            return RUNNING
        rec = self.store.get(id)
        return rec.status if rec else "unknown"

    def result(self, id: str) -> Any:
        """The result of a done flow; otherwise a FlowError saying why there is none."""
        rec = self._get(id)
        if rec.status in (SUSPENDED, RUNNING):
            raise FlowNotDone(f"flow {id} is {rec.status}; its result exists once it is done: resume it "
                              f"(pending() shows what it waits on) or poll status()", id)
        return self._outcome(rec)

    def list(self) -> list[tuple[str, str]]:
        """[(id, status), ...] for every flow, running ones included."""
        with self._lock:
            active = set(self._active)
        listed = [(fid, RUNNING if fid in active else status) for fid, status in self.store.list()]
        stored = {fid for fid, _status in listed}
        return listed + [(fid, RUNNING) for fid in sorted(active - stored)]

    def pending(self) -> list[tuple[str, str]]:
        """[(id, waiting_tag), ...] for every suspended flow."""
        return [(fid, tag or "") for fid, tag, _req in self.store.pending() if fid not in self._active]

    def resumable_ids(self) -> list[str]:
        """Ids of the suspended flows."""
        return [fid for fid in self.store.ids(SUSPENDED) if fid not in self._active]

    def requests(self) -> list[tuple[str, str, Any]]:
        """Pending host requests: [(id, kind, payload), ...]."""
        out = []
        for fid, _tag, req in self.store.pending():
            if req is not None and fid not in self._active:
                kind, payload = json.loads(req)
                out.append((fid, kind, values.decode(payload)))
        return out

    def gc(self) -> int:
        """Drop every done, failed, cancelled and moved record; the count removed."""
        return self.store.delete_terminal()

    def forget(self, id: str) -> None:
        """Drop one terminal record; a live flow is refused with FlowError."""
        with self._lock:
            rec = self._get(id)
            if rec.status in LIVE or not self.store.delete(id, TERMINAL):
                raise FlowError(f"flow {id} is {rec.status}; cancel it before forgetting it", id)

    # ------------------------------------------------------------ host driver
    def drive_host(self, dispatch: host.Dispatch) -> int:
        """One tick: answer every pending request; the count answered."""
        return host.drive_host(self, dispatch)

    def run_host(self, dispatch: host.Dispatch, max_ticks: int = 100) -> int:
        """Tick until quiescent (at most `max_ticks`); the count of ticks that answered something."""
        return host.run_host(self, dispatch, max_ticks)

    # ------------------------------------------------------------ exposed functions
    def expose(self, name: str | Callable[[Any], Any], fn: Callable[[Any], Any] | None = None) -> Any:
        """Make `fn` callable by peers as `name`; also a decorator (`@engine.expose`)."""
        if callable(name) and fn is None:
            self._exposed[name.__name__] = name
            return name
        if fn is None:
            return lambda f: self.expose(name, f)
        if not callable(fn):
            raise TypeError(f"expose({name!r}, ...) needs a callable, got {type(fn).__name__}")
        self._exposed[str(name)] = fn
        return fn

    def exposed(self) -> list[str]:
        """Names of the exposed functions, sorted."""
        return sorted(self._exposed)

    def invoke(self, fn: str, payload: Any, call_id: str | None = None) -> Any:
        """Run exposed function `fn` for a peer; a repeated `call_id` gets the first answer again."""
        func = self._exposed.get(fn)
        if func is None:
            raise UnknownFunction(f"engine {self.name!r} exposes no function {fn!r}; "
                                  f"it exposes {self.exposed()}", peer=self.name)
        if not call_id:
            return func(payload)
        key = f"{fn}\x00{call_id}"
        while True:  # a duplicate waits for the first call with its key, then takes its answer
            with self._lock:
                if key in self._answers:
                    return self._answers[key][0]
                running = self._inflight.get(key)
                if running is None:
                    self._inflight[key] = threading.Event()
                    break
            running.wait()
        try:
            answer = func(payload)
            self._remember(key, answer)
            return answer
        finally:
            with self._lock:
                self._inflight.pop(key).set()

    def _remember(self, key: str, answer: Any) -> None:
        """Keep `answer` for duplicates of `key`, within the cache's count and byte bounds."""
        size = values.approx_size(answer, _CALL_CACHE_ONE)
        if size > _CALL_CACHE_ONE:
            return  # a large answer is not kept: a duplicate of it runs again
        with self._lock:
            self._answers[key] = (answer, size)
            self._answer_bytes += size
            while len(self._answers) > _CALL_CACHE_SIZE or self._answer_bytes > _CALL_CACHE_BYTES:
                _old, (_answer, old_size) = self._answers.popitem(last=False)
                self._answer_bytes -= old_size

    def call_peer(self, addr: str, fn: str, payload: Any, *, deadline: float | None = None,
                  call_id: str = "", retry_window: float | None = None) -> Any:
        """Call `fn` on peer `addr` through its transport (used by remote nodes)."""
        return self.peers.get(addr).call(fn, payload, deadline=deadline or self.deadline, call_id=call_id,
                                         retry_window=retry_window)
