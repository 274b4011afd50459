"""The engine: runs flows by replay over a store, and answers for them.

Every state change is committed to the store before the caller hears of it:
a flow is on disk as `running` before its first new side effect (see
`opening.py`), each journaled step is committed before the flow goes on, and
the final state before `start`/`resume` return.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

from . import host, journal, leases, observe, registry, values
from .clock import SYSTEM_CLOCK, Clock
from .combinators import Flow
from .errors import (
    FlowCancelled,
    FlowError,
    FlowExists,
    FlowFailed,
    FlowMoved,
    FlowNotDone,
    NonDeterminism,
    UnknownFlow,
    UnknownPeer,
    UnsupportedValue,
    from_data,
    to_data,
)
from .exposed import ExposedFunctions
from .federation import Federation
from .inflight import InFlight, running_error
from .opening import Opening
from .outcomes import Suspended
from .peers import PeerTable
from .progress import Progress, Report, log_emitter
from .replay import AbortSignal, DivergedSignal, Run, SuspendSignal, run_flow
from .schedules import Scheduler
from .store import open_store
from .store.base import (
    CANCELLED,
    DEFAULT_PAGE,
    DONE,
    FAILED,
    LIVE,
    MOVED,
    RUNNING,
    SUSPENDED,
    TERMINAL,
    FlowPage,
    FlowRecord,
    Store,
)
from .timers import Timekeeper
from .versioning import Checker
from .waits import SLEEP_PREFIX

log = logging.getLogger("fedflow.engine")

_AFTER_FAILURE = "fix the cause and start a new flow (forget() or gc() drop the failed record)"


def _not_waiting_on(rec: FlowRecord, tag: str) -> FlowError:
    """The refusal of a resume guarded by `tag` that the suspended flow does not wait on."""
    return FlowError(f"flow {rec.id} does not wait on {tag!r}: it waits on {rec.waiting!r} (already "
                     f"resumed?); nothing was changed; pending() shows what it waits on", rec.id)


def _flow_name(name: str | None) -> str:
    """A flow's name for a message ("an anonymous flow" when it has none)."""
    return repr(name) if name is not None else "an anonymous flow"


def _state(rec: FlowRecord | None) -> str:
    """What a record says, for a message: "gone", "done", "suspended on 'x'", ..."""
    if rec is None:
        return "gone"
    return f"suspended on {rec.waiting!r}" if rec.status == SUSPENDED else rec.status


class Engine:
    """One fedflow instance: its flows, its store, its peers and exposed functions.

    Moving flows between instances is `self.federation`'s job; the functions peers may
    call are `self.functions`; timers are `self.timekeeper`'s, schedules `self.scheduler`'s,
    replaying flows against new code `self.checker`'s; the engine's own verbs for them hand over."""

    def __init__(self, name: str = "fedflow", store: str | Store | None = None, *,
                 durability: str = "power", deadline: float = 10.0, recover: bool = True,
                 clock: Clock | None = None, run_timers: bool = True) -> None:
        """Open (or create) the store; with `recover`, re-run flows a crash left `running`.

        `clock` (default: the system clock) is what timers read; with `run_timers` (default)
        the engine fires due timers and schedule ticks by itself until `close()`."""
        self.name = name
        self.clock: Clock = clock if clock is not None else SYSTEM_CLOCK
        self.deadline = deadline
        self.store = open_store(store, durability, name=name)
        self.peers = PeerTable(name, deadline)
        self.functions = ExposedFunctions(name, self.store)
        self._anonymous: dict[str, Flow] = {}
        self._inflight = InFlight()
        self.federation = Federation(name, self.store, self.peers, deadline, self._inflight, self.recover,
                                     self._poke_timers)
        self.scheduler = Scheduler(name, self.store, self.clock, start=self.start, status=self.status,
                                   changed=self._poke_timers)
        self.timekeeper = Timekeeper(name, self.store, self.clock, fire=self._fire_timer, status=self.status,
                                     schedules=self.scheduler)
        self.checker = Checker(self.store, resolve=self._resolve, services=self)
        self._leases = leases.keep(self)  # on a shared store: renew its lease, take over dead instances' flows
        if recover:
            self.recover()
        if run_timers:
            self.start_timers()

    # ------------------------------------------------------------ lifecycle
    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop firing timers; close peer connections and the store."""
        self.timekeeper.stop()
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

        With `id` (a non-empty str), start is idempotent: an existing flow's outcome is returned,
        not re-run; an existing flow of another name raises FlowExists."""
        if id is not None and (type(id) is not str or not id):
            raise UnsupportedValue(f"a flow id is a non-empty str, got {id!r}; leave id out to have one "
                                   f"generated", path="id")
        name, body = (flow, registry.lookup(flow)) if isinstance(flow, str) else (registry.name_of(flow), flow)
        if not callable(body):
            raise TypeError(f"start() needs a flow (a callable) or a registered name, got {type(flow).__name__}")
        text = values.dump_tree(values.encode(input, "input"))  # stored like results and entries: ASCII
        flow_id = id if id is not None else self.new_id()
        now = time.time()
        rec = FlowRecord(id=flow_id, name=name, status=RUNNING, input=text, created=now, updated=now)
        with self._inflight.lock:
            self._inflight.refuse_if_busy(flow_id)
            existing = self.store.get(flow_id) if id is not None else None
            if existing is not None:
                if existing.name != name:
                    raise FlowExists(f"flow {flow_id} already exists and runs {_flow_name(existing.name)}, "
                                     f"not {_flow_name(name)}; pick another id (or leave it out)", flow_id)
                return self._outcome(existing)
            self._inflight.begin(flow_id)
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
        self.federation.owner_check.confirm(id)  # a restored flow: no peer holds a newer copy
        with self._inflight.lock:
            self._inflight.refuse_if_busy(id)
            rec = self._get(id)
            if rec.status != SUSPENDED:
                self._refuse_resume(rec)
            if tag is not None and rec.waiting != tag:
                raise _not_waiting_on(rec, tag)
            self._refuse_sleep(rec)
            body = self._resolve(rec)
            self._inflight.begin(id)
        opening = Opening(self.store, rec, resume_entry={"t": "s", "tag": rec.waiting, "v": tree},
                          explain=self._changed_meanwhile)
        return self._execute(rec, body, None, opening)

    def _refuse_sleep(self, rec: FlowRecord) -> None:
        """A resume must not end a sleep: that is the timer's (or `wake`'s) job."""
        waiting = rec.waiting or ""
        if waiting.startswith(SLEEP_PREFIX):
            raise FlowError(f"flow {rec.id} is sleeping (timer {waiting!r}), not waiting for a resume; "
                            f"wake(id) ends the sleep now", rec.id)

    def _fire_timer(self, flow_id: str, tag: str, due_by: float | None, strict: bool) -> Any:
        """End flow `flow_id`'s wait on `tag` by its timer, if it still waits there (and, with
        `due_by`, the timer is due by then): a resume by the run path. Quiet unless `strict`:
        None when nothing fired."""
        self.federation.owner_check.confirm(flow_id)  # a restored flow: no peer holds a newer copy
        with self._inflight.lock:
            rec = self.store.get(flow_id)
            waits = (rec is not None and rec.status == SUSPENDED and rec.waiting == tag
                     and rec.wake_at is not None and (due_by is None or rec.wake_at <= due_by))
            if self._inflight.is_busy(flow_id) or not waits:
                if strict:
                    raise FlowError(f"flow {flow_id} is no longer waiting on timer {tag!r} (it was resumed, "
                                    f"woken or cancelled meanwhile); status() shows where it is", flow_id)
                return None
            body = self._resolve(rec)
            self._inflight.begin(flow_id)
        if due_by is not None:  # fired because it fell due (not woken early): watchers measure the lateness
            observe.timer_fired(self, flow_id, rec.wake_at)
        opening = Opening(self.store, rec, resume_entry={"t": "s", "tag": tag, "v": None, "w": 1},
                          explain=self._changed_meanwhile)
        return self._execute(rec, body, None, opening)

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
                self._finish(opening, flow_id, SUSPENDED, waiting=sig.tag, request=request, wake_at=sig.wake_at)
                if sig.wake_at is not None:
                    self._poke_timers()
                return Suspended(flow_id, sig.tag)
            except DivergedSignal as sig:
                err = NonDeterminism(
                    f"flow {flow_id}: replay asked for {sig.expected!r} at journal position {sig.key} "
                    f"but the log recorded {sig.recorded!r}; check that your workflow is deterministic "
                    f"(side effects go through step, remote_node or suspend)", flow_id,
                    expected=sig.expected, recorded=sig.recorded)
                self._finish(opening, flow_id, FAILED, error=json.dumps(to_data(err)))
                raise err from None
            except UnknownPeer as exc:
                if opening.recovering:  # peers are registered after the store opened: try again later
                    log.warning("flow %s waits for peer %r; it stays running until recover() is called "
                                "again after the peer is registered", flow_id, exc.peer)
                    return None
                self._finish(opening, flow_id, FAILED, error=json.dumps(to_data(exc)))
                raise FlowFailed(f"flow {flow_id} failed: UnknownPeer: {exc}; {_AFTER_FAILURE}",
                                 flow_id, cause=exc) from exc
            except Exception as exc:
                self._finish(opening, flow_id, FAILED, error=json.dumps(to_data(exc)))
                raise FlowFailed(f"flow {flow_id} failed: {type(exc).__name__}: {exc}; {_AFTER_FAILURE}",
                                 flow_id, cause=exc) from exc
            self._finish(opening, flow_id, DONE, result=values.dump_tree(tree))
            return values.decode(tree)
        finally:
            self._inflight.end(flow_id)

    def _still_wanted(self, flow_id: str) -> None:
        """Before a new step: a flow cancelled while it runs stops here, before the effect."""
        if self._inflight.is_stopped(flow_id):
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
        stale = leases.recoverable(self.store)
        progress = Progress(f"engine {self.name}: recovery", len(stale), emit=log_emitter(log))
        for flow_id in stale:
            progress.advance()
            with self._inflight.lock:
                rec = self.store.get(flow_id)
                if rec is None or self._inflight.is_busy(flow_id) or rec.status != RUNNING:
                    continue
                try:
                    body = self._resolve(rec)
                except FlowError as exc:
                    log.warning("cannot recover flow %s yet: %s", flow_id, exc)
                    continue
                opening = Opening(self.store, rec, written=True, explain=self._changed_meanwhile)
                if not opening.claim():  # another engine on this store recovered it first
                    continue
                self._inflight.begin(flow_id)
            log.info("recovering flow %s (%s) by replay", flow_id, rec.name)
            try:
                self._execute(rec, body, None, opening)
            except Exception as exc:  # one bad flow must not stop recovery of the rest
                log.warning("recovered flow %s failed: %s: %s", flow_id, type(exc).__name__, exc)
            rerun.append(flow_id)
        progress.finish()
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
            cause = from_data(err)
            raise FlowFailed(f"flow {rec.id} failed: {err.get('type')}: {err.get('message')}; {_AFTER_FAILURE}",
                             rec.id, cause=cause) from cause
        if rec.status == CANCELLED:
            raise FlowCancelled(f"flow {rec.id} was cancelled; start a new flow instead", rec.id)
        if rec.status == MOVED:
            raise FlowMoved(f"flow {rec.id} was handed off to {rec.owner!r}; resume it there", rec.id,
                            owner=rec.owner)
        raise running_error(rec.id)

    def cancel(self, id: str) -> None:
        """Cancel a live flow; a later resume raises FlowCancelled. Cancelling twice is harmless."""
        with self._inflight.lock:
            rec = self.store.get(id)
            if rec is None and self._inflight.is_running(id):
                raise FlowError(f"flow {id} is starting; cancel it once it has suspended", id)
            self._inflight.refuse_if_held(id)
            rec = self._get(id)
            if rec.status == CANCELLED:
                return
            if rec.status not in LIVE:
                raise FlowError(f"flow {id} is {rec.status} and cannot be cancelled; forget() drops it", id)
            if not self.store.transition(id, LIVE, {"status": CANCELLED, "waiting": None, "request": None,
                                                    "wake_at": None, "updated": time.time()}, version=rec.version):
                now = self.store.get(id)
                if now is not None and now.status == CANCELLED:
                    return  # cancelled by another caller meanwhile
                raise FlowError(f"flow {id} changed while it was being cancelled (another caller resumed "
                                f"it first: it is now {_state(now)}); it was not cancelled", id)
            self._anonymous.pop(id, None)
            self._inflight.stop(id)

    def status(self, id: str) -> str:
        """running, suspended, done, failed, cancelled, moved, or unknown."""
        if self._inflight.is_running(id):
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
        running = self._inflight.running()
        listed = [(fid, RUNNING if fid in running else status) for fid, status in self.store.list()]
        stored = {fid for fid, _status in listed}
        return listed + [(fid, RUNNING) for fid in sorted(running - stored)]

    def list_page(self, status: str | None = None, flow: str | None = None, id_prefix: str | None = None,
                  limit: int = DEFAULT_PAGE, page_token: str | None = None) -> FlowPage:
        """One page of flows, newest first, filtered by status, flow name and id prefix (each when
        given); pass the page's `next_token` as `page_token` for the next one (None: last page).
        A flow running in this process is shown `running`. Bad arguments raise FedflowError."""
        page = self.store.list_page(status=status, flow=flow, id_prefix=id_prefix, limit=limit, after=page_token)
        active = self._inflight.running()
        if active.isdisjoint(f.id for f in page.flows):
            return page
        flows = [dataclasses.replace(f, status=RUNNING) if f.id in active else f for f in page.flows]
        return FlowPage(flows, page.next_token)

    def count_by_status(self) -> dict[str, int]:
        """How many stored flows are in each status (one count query, not a listing)."""
        return self.store.count_by_status()

    def pending(self) -> list[tuple[str, str]]:
        """[(id, waiting_tag), ...] for every suspended flow."""
        return [(fid, tag) for fid, tag, _request in self.waits()]

    def waits(self) -> list[tuple[str, str, tuple[str, Any] | None]]:
        """[(id, waiting_tag, request), ...] for every suspended flow, read at once: `request` is
        `(kind, payload)` when the flow waits on a host request, else None."""
        out = []
        for fid, tag, req in self.store.pending():
            if not self._inflight.is_busy(fid):
                request = None
                if req is not None:
                    kind, payload = json.loads(req)
                    request = (kind, values.decode(payload, f"request({kind!r}) payload"))
                out.append((fid, tag or "", request))
        return out

    def resumable_ids(self) -> list[str]:
        """Ids of the suspended flows."""
        return [fid for fid in self.store.ids(SUSPENDED) if not self._inflight.is_busy(fid)]

    def requests(self) -> list[tuple[str, str, Any]]:
        """Pending host requests: [(id, kind, payload), ...]."""
        return [(fid, *request) for fid, _tag, request in self.waits() if request is not None]

    def gc(self) -> int:
        """Drop every done, failed, cancelled and moved record; the count removed."""
        return self.store.delete_terminal()

    def forget(self, id: str) -> None:
        """Drop one terminal record; a live flow is refused with FlowError."""
        with self._inflight.lock:
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
            self.functions.expose(name.__name__, name)
            return name
        if fn is None:
            return lambda f: self.expose(name, f)
        self.functions.expose(str(name), fn)
        return fn

    def exposed(self) -> list[str]:
        """Names of the exposed functions, sorted."""
        return self.functions.names()

    def invoke(self, fn: str, payload: Any, call_id: str | None = None) -> Any:
        """Run exposed function `fn` for a peer; a repeated `call_id` gets the first answer again."""
        return self.functions.invoke(fn, payload, call_id)

    # ------------------------------------------------------------ time and versions
    def timers(self) -> list[tuple[str, str, float]]:
        """[(id, tag, wake_at), ...] for every flow waiting on a timer or a timed suspend."""
        return self.timekeeper.timers()

    def wake(self, id: str) -> Any:
        """Fire the timer of flow `id` now (end its sleep, or time out its timed suspend):
        the flow's outcome, as `resume` returns it. FlowError when it waits on no timer."""
        return self.timekeeper.wake(id)

    def start_timers(self) -> None:
        """Start firing due timers and schedule ticks (the engine does at open unless
        `run_timers=False`; `fedflow serve` does once its modules are loaded and stale flows fenced)."""
        self.timekeeper.start()

    def _poke_timers(self) -> None:
        """Tell the timer service that a timer or a schedule changed."""
        self.timekeeper.poke()

    def schedule(self, name: str, flow: Any, input: Any = None, *, cron: str | None = None,
                 every: float | None = None, catchup: str = "latest", overlap: str = "skip",
                 paused: bool = False) -> dict[str, Any]:
        """Start `flow` (registered) on every tick of `cron` (five fields, UTC) or `every` seconds,
        with id ``name@ISO-TIME``; replaces a schedule of the same name. The stored schedule."""
        return self.scheduler.schedule(name, flow, input, cron=cron, every=every, catchup=catchup,
                                       overlap=overlap, paused=paused)

    def schedules(self) -> list[dict[str, Any]]:
        """Every schedule: name, flow, input, cron or every, catchup, overlap, paused, next_at."""
        return self.scheduler.schedules()

    def unschedule(self, name: str) -> None:
        """Drop schedule `name` (flows its ticks started go on); FedflowError if there is none."""
        self.scheduler.unschedule(name)

    def check(self, ids: list[str] | None = None,
              on_checked: Callable[[int, int], None] | None = None) -> list[dict[str, Any]]:
        """Replay every live flow (or `ids`) against the code loaded now, without running any
        step, call or timer and without writing: ``[{"id", "flow", "ok", "error"}, ...]``.
        `on_checked(done, total)` is called as each flow is taken (for progress)."""
        return self.checker.check(ids, on_checked)

    # ------------------------------------------------------------ federation
    def export(self) -> dict[str, Any]:
        """The whole store as plain, JSON-serialisable data."""
        return self.federation.export()

    def import_store(self, data: Any) -> list[str]:
        """Merge an export in; malformed data or a clashing flow raises ReplicaError, changing nothing."""
        return self.federation.import_store(data)

    def accept_replica(self, source: str, export_text: str, sender: str | None = None,
                       may_write: bool = True) -> int:
        """Keep a validated replica of engine `source` in its slot (sent by `sender`, who may write
        it: `may_write`); the count of flows in it."""
        return self.federation.accept_replica(source, export_text, sender, may_write)

    def replica_text(self, source: str) -> str:
        """The replica this engine holds of `source`; ReplicaError when it holds none."""
        return self.federation.replica_text(source)

    def restore_local(self, source: str, ids: list[str] | None = None) -> list[str]:
        """Import the replica this engine holds of `source` (only `ids`, when given)."""
        return self.federation.restore_local(source, ids)

    def claims(self, ids: list[str]) -> list[tuple[str, int]]:
        """Of `ids`, the flows this engine holds (not as `moved`), with their epochs."""
        return self.federation.claims(ids)

    def fence(self, peer: str) -> list[str]:
        """Mark `moved` every live flow here that `peer` holds at a newer epoch; the ids fenced.
        Call it before `recover()`."""
        return self.federation.fence(peer)

    def replicate_to(self, peer: str, report: Report | None = None) -> int:
        """Push this store's snapshot into `peer`'s replica slot for this engine; the flow count.
        `report(phase, done, total, unit)` is told how far it is (`fedflow.progress`)."""
        return self.federation.replicate_to(peer, report)

    def restore_from(self, peer: str, source: str | None = None, report: Report | None = None) -> list[str]:
        """Import the replica `peer` holds of `source` (default: this engine); the imported ids.
        `report` as for `replicate_to`."""
        return self.federation.restore_from(peer, source, report)

    def handoff_to(self, peer: str, report: Report | None = None) -> list[str]:
        """Move every suspended flow to `peer`; they become `moved` here. The moved ids.
        `report` as for `replicate_to`."""
        return self.federation.handoff_to(peer, report)

    # ------------------------------------------------------------ calling peers
    def call_peer(self, peer: str, fn: str, payload: Any, *, deadline: float | None = None,
                  call_id: str = "", retry_window: float | None = None) -> Any:
        """Call `fn` on the peer named `peer` through its transport (used by remote nodes)."""
        return self.peers.get(peer).call(fn, payload, deadline=deadline or self.deadline, call_id=call_id,
                                         retry_window=retry_window)
