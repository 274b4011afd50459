"""`ControlClient`: the synchronous client behind the command line.

Each method is one RPC to one instance and returns a plain dict shaped like
the JSON the CLI prints; values inside are decoded
plain data (exact ints, bytes, `Fail`), so the caller chooses how to print
them. Failures raise the matching fedflow error (`fedflow.grpc.status.error_for`):
`PeerUnavailable` when the instance is down or too slow, `UnknownFlow`,
`FlowMoved`, `FlowFailed`, `UnknownFunction`, `RemoteError`, ...

>>> with ControlClient("127.0.0.1:50051") as client:    # doctest: +SKIP
...     client.start("approval", {"n": 1}, flow_id="job-1")
{'id': 'job-1', 'status': 'suspended', 'tag': 'approve'}
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from .errors import PeerError, RemoteError
from .grpc import time_control
from .grpc.channel import open_channel
from .grpc.codec import pack, pack_call_value, status_from_proto, status_to_proto, unpack, unpack_call_value
from .grpc.security import bearer_metadata
from .grpc.status import error_for
from .limits import DEFAULT_LIMITS, Limits
from .progress import Report
from .v1 import fedflow_pb2 as pb
from .v1 import fedflow_pb2_grpc as pb_grpc

__all__ = ["ControlClient"]


class ControlClient:
    """Control verbs for the instance at `address` (host:port), over one channel.

    `token` is sent as `authorization: Bearer <token>`; `tls` (a
    `fedflow.grpc.security.TlsConfig`, or an object with cert/key/ca paths) makes the
    channel mutual TLS; `limits` sets the message size limit of the channel;
    `deadline` (seconds) bounds every call."""

    def __init__(self, address: str, *, token: str | None = None, tls: Any = None,
                 limits: Limits | None = None, deadline: float = 30.0) -> None:
        self.address = address
        self.deadline = deadline
        self.limits = limits or DEFAULT_LIMITS
        self._metadata = bearer_metadata(token)
        self._channel = open_channel(address, tls=tls, limits=self.limits)
        self._peer = pb_grpc.PeerServiceStub(self._channel)
        self._control = pb_grpc.ControlServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def __enter__(self) -> ControlClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def _rpc(self, method: Callable, request: Any) -> Any:
        try:
            return method(request, timeout=self.deadline, metadata=self._metadata)
        except grpc.RpcError as exc:
            raise error_for(exc, self.address) from exc

    @staticmethod
    def _outcome(outcome: pb.FlowOutcome) -> dict[str, Any]:
        status = status_from_proto(outcome.status)
        if outcome.WhichOneof("detail") == "tag":
            return {"id": outcome.id, "status": status, "tag": outcome.tag}
        return {"id": outcome.id, "status": status, "result": unpack(outcome.result, "result")}

    def call(self, fn: str, payload: Any = None, *, call_id: str | None = None) -> dict[str, Any]:
        """Run exposed function `fn`: `{"result": value}`; RemoteError if it raised."""
        data, blobs = pack_call_value(payload, "payload")
        request = pb.CallRequest(fn=fn, payload=data, blobs=blobs, call_id=call_id or uuid.uuid4().hex)
        reply = self._rpc(self._peer.Call, request)
        if reply.WhichOneof("outcome") == "failure":
            kind, text = reply.failure.type, reply.failure.message
            raise RemoteError(f"{fn} on {self.address} raised {kind}: {text}; fix it there",
                              self.address, remote_type=kind, remote_message=text)
        return {"result": unpack_call_value(reply.value, reply.blobs, "result")}

    def start(self, flow: str, value: Any = None, *, flow_id: str | None = None) -> dict[str, Any]:
        """Start registered flow `flow` on input `value`: `{"id", "status": "done", "result"}`
        or `{"id", "status": "suspended", "tag"}`; an existing `flow_id` gives its outcome."""
        request = pb.StartRequest(flow=flow, input=pack(value, "input"))
        if flow_id is not None:
            request.id = flow_id
        return self._outcome(self._rpc(self._control.Start, request).outcome)

    def resume(self, flow_id: str, value: Any = None, tag: str | None = None) -> dict[str, Any]:
        """Resume a suspended flow with `value`; same shape as `start`. With `tag`, refused
        (FlowError, nothing changes) unless the flow waits on exactly that tag."""
        request = pb.ResumeRequest(id=flow_id, value=pack(value, "value"))
        if tag is not None:
            request.tag = tag
        return self._outcome(self._rpc(self._control.Resume, request).outcome)

    def cancel(self, flow_id: str) -> dict[str, Any]:
        """Cancel a flow: `{"id", "status"}`."""
        reply = self._rpc(self._control.Cancel, pb.CancelRequest(id=flow_id))
        return {"id": reply.id, "status": status_from_proto(reply.status)}

    def status(self, flow_id: str) -> dict[str, Any]:
        """`{"id", "status"}`; status is "unknown" for an id the instance does not hold."""
        reply = self._rpc(self._control.Status, pb.StatusRequest(id=flow_id))
        return {"id": reply.id, "status": status_from_proto(reply.status)}

    def result(self, flow_id: str) -> dict[str, Any]:
        """`{"id", "result"}` of a done flow; otherwise raises the FlowError saying why."""
        reply = self._rpc(self._control.Result, pb.ResultRequest(id=flow_id))
        return {"id": reply.id, "result": unpack(reply.result, "result")}

    def list(self, status: str | None = None, flow: str | None = None, limit: int | None = None,
             page_token: str | None = None, id_prefix: str | None = None) -> dict[str, Any]:
        """One page of flows, newest first: `{"flows": [{"id", "status"}, ...]}` plus
        `"next_page_token"` when another page follows (pass it back as `page_token`). Filters
        left None match every flow; `limit` defaults to 100 on the instance."""
        request = pb.ListRequest(status=status_to_proto(status) if status else 0, flow=flow,
                                 limit=limit or 0, page_token=page_token or "", id_prefix=id_prefix)
        reply = self._rpc(self._control.List, request)
        flows = [{"id": f.id, "status": status_from_proto(f.status)} for f in reply.flows]
        return {"flows": flows, **({"next_page_token": reply.next_page_token} if reply.next_page_token else {})}

    def pending(self) -> dict[str, Any]:
        """`{"pending": [{"id", "tag", "kind", "payload"}, ...]}` for suspended flows; `kind` and
        `payload` are a host request's (`request(kind, payload)`), None for a plain suspend."""
        reply = self._rpc(self._control.Pending, pb.PendingRequest())
        return {"pending": [{"id": p.id, "tag": p.tag, "kind": p.kind if p.HasField("kind") else None,
                             "payload": unpack(p.payload, "payload")} for p in reply.pending]}

    def gc(self) -> dict[str, Any]:
        """Drop terminal records: `{"removed": n}`."""
        return {"removed": int(self._rpc(self._control.Gc, pb.GcRequest()).removed)}

    def forget(self, flow_id: str) -> dict[str, Any]:
        """Drop one terminal record: `{"id", "status"}` (then "unknown")."""
        reply = self._rpc(self._control.Forget, pb.ForgetRequest(id=flow_id))
        return {"id": reply.id, "status": status_from_proto(reply.status)}

    def timers(self) -> dict[str, Any]:
        """`{"timers": [{"id", "tag", "wake_at"}, ...]}`, earliest first."""
        reply = self._rpc(self._control.Timers, pb.TimersRequest())
        return {"timers": [{"id": t.id, "tag": t.tag, "wake_at": t.wake_at} for t in reply.timers]}

    def wake(self, flow_id: str) -> dict[str, Any]:
        """Fire a flow's timer now; same shape as `start`."""
        return self._outcome(self._rpc(self._control.Wake, pb.WakeRequest(id=flow_id)).outcome)

    def schedule(self, name: str, flow: str, input: Any = None, **when: Any) -> dict[str, Any]:
        """Create or replace a schedule (`cron=` or `every=`, `catchup=`, `overlap=`, `paused=`):
        `{"schedule": {...}}`."""
        reply = self._rpc(self._control.Schedule, time_control.schedule_request(name, flow, input, **when))
        return {"schedule": time_control.schedule_dict(reply)}

    def schedules(self) -> dict[str, Any]:
        """`{"schedules": [{"name", "flow", "input", "cron", "every", ..., "next_at"}, ...]}`."""
        reply = self._rpc(self._control.Schedules, pb.SchedulesRequest())
        return {"schedules": [time_control.schedule_dict(info) for info in reply.schedules]}

    def unschedule(self, name: str) -> dict[str, Any]:
        """Drop a schedule: `{"name", "removed": true}`."""
        reply = self._rpc(self._control.Unschedule, pb.UnscheduleRequest(name=name))
        return {"name": reply.name, "removed": True}

    def replicate(self, to: str, on_progress: Report | None = None) -> dict[str, Any]:
        """Push the instance's store to peer `to`: `{"to", "flows"}`. With `on_progress`, it is
        told `(phase, done, total, unit)` as the instance reports how far it is."""
        request = pb.ReplicateRequest(peer=to)
        reply = self._watched(self._control.ReplicateWatch, self._control.Replicate, request, on_progress)
        return {"to": reply.peer, "flows": int(reply.flows)}

    def restore(self, from_peer: str, source: str | None = None,
                on_progress: Report | None = None) -> dict[str, Any]:
        """Import the replica `from_peer` holds of `source` (default: the instance itself):
        `{"ids": [...]}`. `on_progress` as for `replicate`."""
        request = pb.RestoreFromRequest(peer=from_peer)
        if source is not None:
            request.source = source
        reply = self._watched(self._control.RestoreFromWatch, self._control.RestoreFrom, request, on_progress)
        return {"ids": list(reply.ids)}

    def handoff(self, to: str, on_progress: Report | None = None) -> dict[str, Any]:
        """Move the live flows to peer `to`: `{"to", "ids"}`. `on_progress` as for `replicate`."""
        request = pb.HandoffRequest(peer=to)
        reply = self._watched(self._control.HandoffWatch, self._control.Handoff, request, on_progress)
        return {"to": reply.peer, "ids": list(reply.ids)}

    def _watched(self, watch: Callable, unary: Callable, request: Any, on_progress: Report | None) -> Any:
        """The answer of a long call: through its streaming form when someone watches the
        progress (the unary form for an instance that has no streaming form)."""
        if on_progress is None:
            return self._rpc(unary, request)
        heard = False
        try:
            for update in watch(request, timeout=self.deadline, metadata=self._metadata):
                heard = True
                if update.WhichOneof("update") == "done":
                    return update.done
                told = update.progress
                on_progress(told.phase, told.done, told.total if told.HasField("total") else None, told.unit)
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.UNIMPLEMENTED and not heard:
                return self._rpc(unary, request)
            raise error_for(exc, self.address) from exc
        raise PeerError(f"{self.address} ended the stream without an answer; check it runs the same "
                        f"fedflow version", self.address)

    def peers(self) -> dict[str, Any]:
        """`{"peers": [{"name", "address" (None if in-process), "serving"}, ...]}`."""
        reply = self._rpc(self._control.Peers, pb.PeersRequest())
        return {"peers": [{"name": p.name, "address": p.address if p.HasField("address") else None,
                           "serving": p.serving} for p in reply.peers]}

    def replicas(self) -> dict[str, Any]:
        """The replica slots the instance holds for its peers: `{"replicas": [{"source",
        "flows" (None if unreadable), "bytes", "updated", "sender" (None for the shared or an
        operator credential)}, ...]}`, as `fedflow replicas --db` prints them."""
        reply = self._rpc(self._control.Replicas, pb.ReplicasRequest())
        return {"replicas": [{"source": r.source, "flows": r.flows if r.HasField("flows") else None,
                              "bytes": r.bytes, "updated": r.updated,
                              "sender": r.sender if r.HasField("sender") else None} for r in reply.replicas]}

    def health(self) -> bool:
        """True when the instance answers its health check with SERVING."""
        try:
            reply = self._health.Check(health_pb2.HealthCheckRequest(service=""),
                                       timeout=self.deadline, metadata=self._metadata)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING
