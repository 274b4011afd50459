"""The fedflow.v1 servicers: PeerService (calls, replicas, claims) and ControlService
(the CLI verbs), thin layers over one `Engine`.

They run on grpcio's sync server, one thread per in-flight RPC, so a peer
call runs its exposed function on the thread that received it: no hand-off
to another thread (see docs/performance.md). Each service takes a slot in its own `Gate` first,
so hung exposed functions can fill the peer slots but never the control
ones: `status` and `list` keep answering.

Handlers decode defensively (bad payload -> INVALID_ARGUMENT), call the
engine, and encode the answer. A fedflow error becomes its status via
`status_for`; anything unexpected is logged here and answered INTERNAL
with a short message, never UNKNOWN and never a traceback. A user function's
exception is data (`RemoteFailure`). An answer over the message limit is
refused here with RESOURCE_EXHAUSTED naming the limit, rather than failing
inside grpcio.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc

from .. import deadlines
from ..errors import ReplicaError, UnknownFunction
from ..limits import Limits
from ..outcomes import is_suspended
from ..progress import Progress, Report, log_emitter
from ..store.base import DEFAULT_PAGE
from ..v1 import fedflow_pb2 as pb
from ..v1 import fedflow_pb2_grpc as pb_grpc
from . import time_control
from .codec import pack, pack_call_value, status_from_proto, status_to_proto, unpack, unpack_call_value
from .handlers import parsed
from .identity import current_caller
from .replica_stream import ReplicaAssembler, replica_parts
from .status import BUSY_MARK, status_for, trailers_for
from .watched import watched

__all__ = ["ControlServicer", "Gate", "PeerServicer"]

log = logging.getLogger("fedflow.server")

PEER_PROBE_DEADLINE = 1.0
#: Longest a call waits for a free slot before it is refused (its caller retries with backoff).
GATE_WAIT = 1.0
#: What a waiting call leaves of its deadline, so its refusal reaches the caller before the deadline does.
_GATE_MARGIN = 0.05
#: How often a waiting call checks that it is still wanted (client still there, server not stopping).
_GATE_POLL = 0.05


class Gate:
    """At most `slots` handlers of one service at once. Another call waits for a slot (at most
    `GATE_WAIT`, and never past its own deadline), then gets RESOURCE_EXHAUSTED, which fedflow's
    callers retry with backoff. A waiting call whose client has gone, or whose server is
    stopping, never runs."""

    def __init__(self, service: str, slots: int) -> None:
        self.service = service
        self.slots = slots
        self._free = threading.BoundedSemaphore(slots)
        self._closed = threading.Event()

    def close(self) -> None:
        """Refuse every call still waiting for a slot, and every later one (the server is stopping)."""
        self._closed.set()

    @contextlib.contextmanager
    def slot(self, context: grpc.ServicerContext) -> Iterator[None]:
        """Hold one slot for the block; abort the call when none frees up in time."""
        if not self._free.acquire(blocking=False):
            self._wait(context)
        try:
            yield
        finally:
            self._free.release()

    def _wait(self, context: grpc.ServicerContext) -> None:
        """Take a slot once one frees, or abort: RESOURCE_EXHAUSTED when none did in time,
        CANCELLED when the call is no longer wanted."""
        remaining = context.time_remaining()
        budget = GATE_WAIT if remaining is None else min(remaining - _GATE_MARGIN, GATE_WAIT)
        end = time.monotonic() + budget
        while not self._closed.is_set() and context.is_active():
            left = end - time.monotonic()
            if left <= 0:
                context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED,
                              f"all {self.slots} {self.service} {BUSY_MARK}; retry later")
            if self._free.acquire(timeout=min(left, _GATE_POLL)):
                if self._closed.is_set() or not context.is_active():
                    self._free.release()
                    break
                return
        context.abort(grpc.StatusCode.CANCELLED, f"{self.service} call dropped before it ran: "
                                                 f"the server is stopping or the caller left")


def _failed(context: grpc.ServicerContext, method: str, exc: Exception, lookup: bool) -> None:
    """Abort the RPC with the status (and fedflow trailers) that `exc` maps to."""
    if not context.is_active():  # the caller left (cancelled, deadline): nobody hears a status
        log.debug("%s: the caller left (%s: %s)", method, type(exc).__name__, exc)
        context.abort(grpc.StatusCode.CANCELLED, "the caller left")
    code, message = status_for(exc, lookup=lookup)
    if code is grpc.StatusCode.INTERNAL:
        log.error("%s failed", method, exc_info=exc)
    else:
        log.debug("%s: %s: %s", method, type(exc).__name__, exc)
    context.set_trailing_metadata(trailers_for(exc))
    context.abort(code, message)


def _guard(lookup: bool = False, gated: bool = True) -> Callable:
    """Turn any exception a handler raises into a clean status (see module doc), running the
    handler in a slot of its service's gate unless `gated` is False (replica streams take a
    slot only around their engine work, never while bytes cross the network). Generator
    handlers (server streams) are guarded for as long as they stream."""
    def decorate(method: Callable) -> Callable:
        if inspect.isgeneratorfunction(method):
            @functools.wraps(method)
            def stream(self: _Base, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                with self._gate.slot(context) if gated else contextlib.nullcontext():
                    try:
                        yield from method(self, parsed(request), context)
                    except Exception as exc:  # every failure gets a status
                        _failed(context, method.__name__, exc, lookup)
            return stream

        @functools.wraps(method)
        def handler(self: _Base, request: Any, context: grpc.ServicerContext) -> Any:
            with self._gate.slot(context) if gated else contextlib.nullcontext():
                try:
                    return self._checked(method.__name__, method(self, parsed(request), context))
                except Exception as exc:  # every failure gets a status
                    _failed(context, method.__name__, exc, lookup)
            return None
        return handler
    return decorate


class _Base:
    def __init__(self, engine: Any, gate: Gate, limits: Limits) -> None:
        self._engine = engine
        self._gate = gate
        self._limits = limits

    def _checked(self, method: str, response: Any) -> Any:
        """`response`, or LimitExceeded when it would not fit in one message."""
        size = response.ByteSize() if response is not None else 0
        if size > self._limits.max_message_bytes:
            raise self._limits.exceeded("max_message_bytes", size, f"the answer to {method}")
        return response


class PeerServicer(_Base, pb_grpc.PeerServiceServicer):
    """fedflow.v1.PeerService over one engine: calls and replicas."""

    @_guard()
    def Call(self, request: pb.CallRequest, context: Any) -> pb.CallResponse:
        """Run an exposed function; its own exception comes back as `failure`, not a status."""
        payload = unpack_call_value(request.payload, request.blobs, "payload")
        try:
            with deadlines.within(context.time_remaining()):  # its own peer calls end when ours does
                value = self._engine.invoke(request.fn, payload, request.call_id or None)
            data, blobs = pack_call_value(value, "result")
            return pb.CallResponse(value=data, blobs=blobs)
        except UnknownFunction:
            raise
        except (Exception, SystemExit) as exc:  # the function's own failure travels as data (sys.exit too)
            failure = pb.RemoteFailure(type=type(exc).__name__, message=str(exc))
            return pb.CallResponse(failure=failure)

    @_guard(gated=False)
    def PushReplica(self, request_iterator: Any, context: Any) -> pb.PushReplicaResponse:
        """Keep a streamed replica (header, then chunks; size and checksum checked) in its slot."""
        assembler = ReplicaAssembler(self._limits)
        progress: Progress | None = None
        for message in request_iterator:
            assembler.add(parsed(message))
            if progress is None and assembler.header is not None:
                progress = Progress(f"replica of {assembler.header.source!r} received",
                                    assembler.header.total_bytes, unit="bytes", emit=log_emitter(log))
            if progress is not None:
                progress.advance(assembler.received - progress.done)
        source, text = assembler.finish()
        if progress is not None:
            progress.finish()
        if not source:
            raise ReplicaError("a replica header must name its source engine")
        caller = current_caller()
        with self._gate.slot(context):
            flows = self._engine.accept_replica(source, text, caller.name, caller.may_write_slot(source))
        return pb.PushReplicaResponse(flows=int(flows))

    @_guard(lookup=True, gated=False)
    def FetchReplica(self, request: pb.FetchReplicaRequest, context: Any) -> Iterator[pb.FetchReplicaResponse]:
        """Stream out the replica held of `source` (NOT_FOUND when none)."""
        with self._gate.slot(context):
            text = self._engine.replica_text(request.source)
        for part in replica_parts(request.source, text, self._limits.chunk_bytes):
            if isinstance(part, pb.ReplicaHeader):
                yield pb.FetchReplicaResponse(header=part)
            else:
                yield pb.FetchReplicaResponse(chunk=part)

    @_guard(lookup=True)
    def Restore(self, request: pb.RestoreRequest, context: Any) -> pb.RestoreResponse:
        """Import the replica held of `source` (only `ids`, when given) into this store."""
        ids = list(request.only.ids) if request.HasField("only") else None
        restored = self._engine.restore_local(request.source, ids)
        return pb.RestoreResponse(ids=list(restored))

    @_guard()
    def Claims(self, request: pb.ClaimsRequest, context: Any) -> pb.ClaimsResponse:
        """Of the given ids, the flows held here (not moved) with their ownership epochs."""
        held = self._engine.claims(list(request.ids))
        return pb.ClaimsResponse(claims=[pb.FlowClaim(id=i, epoch=int(e)) for i, e in held])


def _pending_entry(flow_id: str, tag: str, request: tuple[str, Any] | None) -> pb.PendingEntry:
    """One suspended flow as a `PendingEntry`, with its host request's kind and payload."""
    entry = pb.PendingEntry(id=flow_id, tag=str(tag))
    if request is not None:
        kind, payload = request
        entry.kind, entry.payload = kind, pack(payload, "payload")
    return entry


class ControlServicer(_Base, pb_grpc.ControlServiceServicer):
    """fedflow.v1.ControlService: the CLI verbs, run on this instance's engine."""

    def _outcome(self, flow_id: str, value: Any) -> pb.FlowOutcome:
        if is_suspended(value):
            return pb.FlowOutcome(id=value.id, status=pb.FLOW_STATUS_SUSPENDED, tag=str(value.tag))
        return pb.FlowOutcome(id=flow_id, status=pb.FLOW_STATUS_DONE, result=pack(value, "result"))

    def _status(self, flow_id: str) -> int:
        return status_to_proto(self._engine.status(flow_id))

    @_guard()
    def Start(self, request: pb.StartRequest, context: Any) -> pb.StartResponse:
        """Start a registered flow (idempotent with an id)."""
        value = unpack(request.input, "input")
        flow_id = request.id if request.HasField("id") else self._engine.new_id()
        outcome = self._engine.start(request.flow, value, id=flow_id)
        return pb.StartResponse(outcome=self._outcome(flow_id, outcome))

    @_guard()
    def Resume(self, request: pb.ResumeRequest, context: Any) -> pb.ResumeResponse:
        """Resume a suspended flow with a value."""
        value = unpack(request.value, "value")
        tag = request.tag if request.HasField("tag") else None
        outcome = self._engine.resume(request.id, value, tag=tag)
        return pb.ResumeResponse(outcome=self._outcome(request.id, outcome))

    @_guard()
    def Cancel(self, request: pb.CancelRequest, context: Any) -> pb.CancelResponse:
        """Cancel a flow; its status afterwards."""
        self._engine.cancel(request.id)
        return pb.CancelResponse(id=request.id, status=self._status(request.id))

    @_guard()
    def Status(self, request: pb.StatusRequest, context: Any) -> pb.StatusResponse:
        """A flow's status ("unknown" when absent)."""
        return pb.StatusResponse(id=request.id, status=self._status(request.id))

    @_guard()
    def Result(self, request: pb.ResultRequest, context: Any) -> pb.ResultResponse:
        """A done flow's result; otherwise the FlowError saying why."""
        value = self._engine.result(request.id)
        return pb.ResultResponse(id=request.id, result=pack(value, "result"))

    @_guard()
    def List(self, request: pb.ListRequest, context: Any) -> pb.ListResponse:
        """One page of flows, newest first, filtered by status, flow name and id prefix."""
        status = status_from_proto(request.status) if request.status else None
        page = self._engine.list_page(
            status=status, flow=request.flow if request.HasField("flow") else None,
            id_prefix=request.id_prefix if request.HasField("id_prefix") else None,
            limit=request.limit or DEFAULT_PAGE, page_token=request.page_token or None)
        flows = [pb.FlowEntry(id=f.id, status=status_to_proto(f.status)) for f in page.flows]
        return pb.ListResponse(flows=flows, next_page_token=page.next_token or "")

    @_guard()
    def Pending(self, request: pb.PendingRequest, context: Any) -> pb.PendingResponse:
        """Suspended flows, their tags, and what each host request asks."""
        return pb.PendingResponse(pending=[_pending_entry(*row) for row in self._engine.waits()])

    @_guard()
    def Gc(self, request: pb.GcRequest, context: Any) -> pb.GcResponse:
        """Drop terminal records; the count."""
        return pb.GcResponse(removed=int(self._engine.gc()))

    @_guard()
    def Forget(self, request: pb.ForgetRequest, context: Any) -> pb.ForgetResponse:
        """Drop one terminal record."""
        self._engine.forget(request.id)
        return pb.ForgetResponse(id=request.id, status=self._status(request.id))

    @_guard()
    def Timers(self, request: pb.TimersRequest, context: Any) -> pb.TimersResponse:
        """Flows waiting on a timer, earliest first."""
        return time_control.timers_response(self._engine)

    @_guard()
    def Wake(self, request: pb.WakeRequest, context: Any) -> pb.WakeResponse:
        """Fire a flow's timer now; its outcome."""
        return pb.WakeResponse(outcome=self._outcome(request.id, self._engine.wake(request.id)))

    @_guard()
    def Schedule(self, request: pb.ScheduleRequest, context: Any) -> pb.ScheduleInfo:
        """Create or replace a schedule."""
        return time_control.schedule(self._engine, request)

    @_guard()
    def Schedules(self, request: pb.SchedulesRequest, context: Any) -> pb.SchedulesResponse:
        """Every schedule with its next tick."""
        return pb.SchedulesResponse(schedules=[time_control.schedule_info(e) for e in self._engine.schedules()])

    @_guard()
    def Unschedule(self, request: pb.UnscheduleRequest, context: Any) -> pb.UnscheduleResponse:
        """Drop a schedule."""
        self._engine.unschedule(request.name)
        return pb.UnscheduleResponse(name=request.name)

    @_guard()
    def Replicate(self, request: pb.ReplicateRequest, context: Any) -> pb.ReplicateResponse:
        """Push this store to a peer."""
        flows = self._engine.replicate_to(request.peer)
        return pb.ReplicateResponse(peer=request.peer, flows=int(flows))

    @_guard()
    def RestoreFrom(self, request: pb.RestoreFromRequest, context: Any) -> pb.RestoreFromResponse:
        """Import the replica a peer holds of `source`."""
        source = request.source if request.HasField("source") else None
        ids = self._engine.restore_from(request.peer, source)
        return pb.RestoreFromResponse(ids=list(ids))

    @_guard()
    def Handoff(self, request: pb.HandoffRequest, context: Any) -> pb.HandoffResponse:
        """Move the live flows to a peer."""
        ids = self._engine.handoff_to(request.peer)
        return pb.HandoffResponse(peer=request.peer, ids=list(ids))

    @_guard()
    def ReplicateWatch(self, request: pb.ReplicateRequest, context: Any) -> Iterator[pb.ReplicateUpdate]:
        """Replicate, with progress messages before the answer."""
        def work(report: Report) -> pb.ReplicateResponse:
            flows = self._engine.replicate_to(request.peer, report)
            return self._checked("Replicate", pb.ReplicateResponse(peer=request.peer, flows=int(flows)))
        yield from watched(work, pb.ReplicateUpdate)

    @_guard()
    def RestoreFromWatch(self, request: pb.RestoreFromRequest, context: Any) -> Iterator[pb.RestoreFromUpdate]:
        """RestoreFrom, with progress messages before the answer."""
        source = request.source if request.HasField("source") else None

        def work(report: Report) -> pb.RestoreFromResponse:
            ids = self._engine.restore_from(request.peer, source, report)
            return self._checked("RestoreFrom", pb.RestoreFromResponse(ids=list(ids)))
        yield from watched(work, pb.RestoreFromUpdate)

    @_guard()
    def HandoffWatch(self, request: pb.HandoffRequest, context: Any) -> Iterator[pb.HandoffUpdate]:
        """Handoff, with progress messages before the answer."""
        def work(report: Report) -> pb.HandoffResponse:
            ids = self._engine.handoff_to(request.peer, report)
            return self._checked("Handoff", pb.HandoffResponse(peer=request.peer, ids=list(ids)))
        yield from watched(work, pb.HandoffUpdate)

    def _probe(self, name: str) -> bool:
        try:
            return bool(self._engine.peers.get(name).health(deadline=PEER_PROBE_DEADLINE))
        except Exception:  # a peer that cannot answer is not serving
            return False

    @_guard()
    def Peers(self, request: pb.PeersRequest, context: Any) -> pb.PeersResponse:
        """The known peers and whether each answers its health check."""
        peers = self._engine.peers
        names = list(peers.names())
        with ThreadPoolExecutor(max_workers=max(len(names), 1), thread_name_prefix="fedflow-probe") as probes:
            serving = list(probes.map(self._probe, names))
        infos = []
        for name, up in zip(names, serving, strict=True):
            info = pb.PeerInfo(name=name, serving=up)
            address = peers.address(name)
            if address is not None:
                info.address = address
            infos.append(info)
        return pb.PeersResponse(peers=infos)

    @_guard()
    def Replicas(self, request: pb.ReplicasRequest, context: Any) -> pb.ReplicasResponse:
        """The replica slots held here for peers (see `fedflow.slots`)."""
        from ..slots import slots

        return pb.ReplicasResponse(replicas=[pb.ReplicaSlot(**slot) for slot in slots(self._engine.store)])
