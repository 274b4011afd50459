"""`GrpcTransport`: a real peer over gRPC, through ONE reused sync channel.

Every call goes through one retry loop (tenacity), bounded by the call's
deadline: UNAVAILABLE / DEADLINE_EXCEEDED / RESOURCE_EXHAUSTED are retried with
jittered exponential backoff for at most the call's retry window (default: its
whole deadline; a failover walk passes a short one so a dead peer is passed
over quickly, and replica transfers use `REPLICA_RETRY_WINDOW`); each attempt's
timeout is the budget that remains. Answers from the peer's own code (a fedflow
error in the trailers, a RemoteFailure) are never retried. Every gRPC failure
is mapped to a fedflow error by `fedflow.grpc.status.error_for`.

Security and limits (`fedflow.grpc.security`, `fedflow.limits`): `token` is sent
as `authorization: Bearer <token>` metadata on every call; `tls` (a
`TlsConfig`, or an object with cert/key/ca paths) makes the channel mutual
TLS; `limits` sets the message size on both directions of the channel, the
replica size this side fetches, and the payload size checked before sending.

>>> peer = GrpcTransport("b", "127.0.0.1:50052", token="s3cret")   # doctest: +SKIP
>>> engine.peers.add(peer)                                          # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tenacity import Retrying, retry_if_exception, stop_before_delay, wait_exponential, wait_random

from .. import deadlines
from .. import errors as E
from ..grpc.channel import open_channel
from ..grpc.codec import pack_call_value, unpack_call_value
from ..grpc.replica_stream import ReplicaAssembler, replica_parts
from ..grpc.security import bearer_metadata
from ..grpc.status import error_for, is_transient
from ..limits import DEFAULT_LIMITS, Limits
from ..v1 import fedflow_pb2 as pb
from ..v1 import fedflow_pb2_grpc as pb_grpc
from .base import ByteCount, Transport

__all__ = ["GrpcTransport"]

T = TypeVar("T")
#: Seconds a replica transfer keeps retrying a peer that is unreachable.
REPLICA_RETRY_WINDOW = 2.0
#: Flow ids per Claims request.
CLAIMS_BATCH = 2000
#: Between attempts: 50-100 ms, doubling up to a second, jittered.
_BACKOFF = wait_exponential(multiplier=0.05, max=1.0) + wait_random(0, 0.05)
_TRANSIENT = retry_if_exception(lambda exc: isinstance(exc, grpc.RpcError) and is_transient(exc))


class GrpcTransport(Transport):
    """One peer at `address` (host:port); thread-safe; `close()` releases the channel."""

    def __init__(self, name: str, address: str, *, token: str | None = None, tls: Any = None,
                 limits: Limits | None = None, default_deadline: float = 10.0) -> None:
        self.name = name
        self.address = address
        self.default_deadline = default_deadline
        self.limits = limits or DEFAULT_LIMITS
        self._metadata = bearer_metadata(token)
        self._channel = open_channel(address, tls=tls, limits=self.limits)
        self._stub = pb_grpc.PeerServiceStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    def __repr__(self) -> str:
        return f"GrpcTransport({self.name!r}, {self.address!r})"

    def _with_retries(self, deadline: float | None, attempt: Callable[[float], T],
                      retry_window: float | None = None) -> T:
        """Run `attempt(timeout)` until it succeeds, fails for good, or the retry window
        (at most the deadline) is spent; each attempt gets what remains of the deadline. Inside a
        served peer call, the deadline is cut to what that call's caller has left."""
        budget = deadlines.bounded(self.default_deadline if deadline is None else deadline)
        window = budget if retry_window is None else min(retry_window, budget)
        end = time.monotonic() + budget
        retrying = Retrying(stop=stop_before_delay(window), wait=_BACKOFF, retry=_TRANSIENT, reraise=True)
        try:
            return retrying(lambda: attempt(max(end - time.monotonic(), 0.001)))
        except grpc.RpcError as exc:
            raise error_for(exc, self.name) from exc

    def call(self, fn: str, payload: Any, *, deadline: float, call_id: str,
             retry_window: float | None = None) -> Any:
        """Run exposed `fn` on the peer; its answer, or RemoteError if it raised."""
        data, blobs = pack_call_value(payload, "payload")
        request = pb.CallRequest(fn=fn, payload=data, call_id=call_id, blobs=blobs)
        size = request.ByteSize()
        if size > self.limits.max_message_bytes:
            raise self.limits.exceeded("max_message_bytes", size, f"the payload for {fn} on peer "
                                       f"{self.name}", self.name)
        try:
            reply = self._with_retries(deadline, lambda t: self._stub.Call(
                request, timeout=t, metadata=self._metadata), retry_window)
        except E.UnknownFunction as exc:
            exc.peer = self.name  # the name this engine knows the peer by
            raise
        if reply.WhichOneof("outcome") == "failure":
            kind, text = reply.failure.type, reply.failure.message
            raise E.RemoteError(f"{fn} on peer {self.name} raised {kind}: {text}; fix it there, "
                                f"or catch it with try_catch/remote_failover", self.name,
                                remote_type=kind, remote_message=text)
        try:
            return unpack_call_value(reply.value, reply.blobs, "result")
        except E.UnsupportedValue as exc:
            raise E.PeerError(f"peer {self.name} answered {fn} with an undecodable value ({exc}); "
                              f"check it runs the same fedflow version", self.name) from exc

    def _push_messages(self, source: str, export_text: str,
                       on_bytes: ByteCount | None) -> Iterator[pb.PushReplicaRequest]:
        total = sent = 0
        for part in replica_parts(source, export_text, self.limits.chunk_bytes):
            if isinstance(part, pb.ReplicaHeader):
                total = part.total_bytes
                yield pb.PushReplicaRequest(header=part)
            else:
                yield pb.PushReplicaRequest(chunk=part)
                sent += len(part)
                if on_bytes is not None:
                    on_bytes(sent, total)

    def push_replica(self, source: str, export_text: str, *, deadline: float,
                     on_bytes: ByteCount | None = None) -> int:
        """Stream `export_text` into the peer's replica slot for `source` (~1 MiB chunks);
        `on_bytes(sent, total)` after each chunk."""
        def attempt(timeout: float) -> int:
            messages = self._push_messages(source, export_text, on_bytes)
            return int(self._stub.PushReplica(messages, timeout=timeout, metadata=self._metadata).flows)

        return self._with_retries(deadline, attempt, REPLICA_RETRY_WINDOW)

    def fetch_replica(self, source: str, *, deadline: float, on_bytes: ByteCount | None = None) -> str:
        """The export text the peer holds for `source`; ReplicaError if none or corrupted.
        `on_bytes(received, total)` after each chunk."""
        def attempt(timeout: float) -> str:
            assembler = ReplicaAssembler(self.limits, self.name)
            request = pb.FetchReplicaRequest(source=source)
            for message in self._stub.FetchReplica(request, timeout=timeout, metadata=self._metadata):
                assembler.add(message)
                if on_bytes is not None and assembler.header is not None and assembler.received:
                    on_bytes(assembler.received, assembler.header.total_bytes)
            return assembler.finish()[1]

        return self._with_retries(deadline, attempt, REPLICA_RETRY_WINDOW)

    def restore(self, source: str, ids: list[str] | None, *, deadline: float) -> list[str]:
        """Have the peer import the replica it holds of `source` (only `ids`, when given)."""
        request = pb.RestoreRequest(source=source)
        if ids is not None:
            request.only.ids.extend(ids)
        reply = self._with_retries(deadline, lambda t: self._stub.Restore(
            request, timeout=t, metadata=self._metadata), REPLICA_RETRY_WINDOW)
        return list(reply.ids)

    def claims(self, ids: list[str], *, deadline: float) -> list[tuple[str, int]]:
        """Of `ids`, the flows the peer holds (not as moved), with their ownership epochs
        (asked in batches of `CLAIMS_BATCH` ids, so any number fits the message limit)."""
        held: list[tuple[str, int]] = []
        for start in range(0, len(ids), CLAIMS_BATCH):
            request = pb.ClaimsRequest(ids=ids[start:start + CLAIMS_BATCH])
            reply = self._with_retries(deadline, lambda t, r=request: self._stub.Claims(
                r, timeout=t, metadata=self._metadata), REPLICA_RETRY_WINDOW)
            held.extend((claim.id, int(claim.epoch)) for claim in reply.claims)
        return held

    def health(self, *, deadline: float) -> bool:
        """True when the peer answers its health check with SERVING (one attempt)."""
        try:
            reply = self._health.Check(health_pb2.HealthCheckRequest(service=""), timeout=deadline,
                                       metadata=self._metadata)
        except grpc.RpcError:
            return False
        return reply.status == health_pb2.HealthCheckResponse.SERVING

    def close(self) -> None:
        """Close the channel; later calls fail."""
        self._channel.close()
