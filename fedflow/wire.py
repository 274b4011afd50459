"""Values, statuses and errors on the wire: the ONE place fedflow meets gRPC codes.

- `pack` / `unpack`: plain data <-> the `bytes` fields of fedflow.v1 (UTF-8
  tagged JSON from `fedflow.values`; empty bytes read as None).
- `status_for(exc)`: a fedflow error -> `(grpc.StatusCode, message)`, and
  `trailers_for(exc)`: the trailing metadata that lets the caller rebuild the
  same class (`fedflow-error: <ClassName>` plus `fedflow-detail-bin`, a JSON
  object of its attributes: id, owner, peer, cause type and message...).
- `error_for(rpc_error, peer)`: a failed RPC -> the most specific
  `FedflowError`; callers `raise error_for(e, peer) from e`.
- `service_handler`: method handlers for a fedflow.v1 service whose requests
  decode leniently, so undecodable bytes get INVALID_ARGUMENT (grpcio alone
  answers UNKNOWN); handlers call `parsed(request)`.
- `ReplicaAssembler` / `replica_parts`: a replica as a header plus ~1 MiB chunks
  with a SHA-256 checksum.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from typing import Any

import grpc

from . import errors as E
from .v1 import fedflow_pb2 as pb
from .values import dumps, loads

__all__ = [
    "CHUNK_BYTES",
    "HANDLER_KINDS",
    "MAX_MESSAGE_BYTES",
    "MAX_REPLICA_BYTES",
    "ReplicaAssembler",
    "channel_options",
    "error_for",
    "is_transient",
    "pack",
    "parsed",
    "replica_parts",
    "service_handler",
    "status_for",
    "status_from_proto",
    "status_to_proto",
    "trailers_for",
    "unpack",
]

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
CHUNK_BYTES = 1024 * 1024
MAX_REPLICA_BYTES = 1024 * 1024 * 1024
ERROR_KEY = "fedflow-error"
DETAIL_KEY = "fedflow-detail-bin"
Code = grpc.StatusCode


# ------------------------------------------------------------------ values
def pack(value: Any, path: str = "value") -> bytes:
    """Encode plain data for a `bytes` value field; raises UnsupportedValue."""
    return dumps(value, path).encode("utf-8")


def unpack(data: bytes, what: str = "value") -> Any:
    """Decode a `bytes` value field (empty means None); raises UnsupportedValue."""
    if not data:
        return None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise E.UnsupportedValue(f"{what} is not UTF-8 text: {exc}; send fedflow tagged JSON",
                                 path=what) from exc
    return loads(text)


_STATUS_NAMES = ("running", "suspended", "done", "failed", "cancelled", "moved", "unknown")


def status_to_proto(status: str) -> int:
    """A flow status string -> `fedflow.v1.FlowStatus` value."""
    if status not in _STATUS_NAMES:
        return pb.FLOW_STATUS_UNSPECIFIED
    return pb.FlowStatus.Value(f"FLOW_STATUS_{status.upper()}")


def status_from_proto(value: int) -> str:
    """A `fedflow.v1.FlowStatus` value -> the flow status string ("unknown" if unset)."""
    name = pb.FlowStatus.Name(value) if value in pb.FlowStatus.values() else ""
    status = name.removeprefix("FLOW_STATUS_").lower()
    return status if status in _STATUS_NAMES else "unknown"


def channel_options(retry_services: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """Channel options for both ends: 8 MiB limits; a short UNAVAILABLE retry policy
    on `retry_services` (full names, e.g. "fedflow.v1.PeerService")."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
        ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ]
    if retry_services:
        policy = {"maxAttempts": 3, "initialBackoff": "0.05s", "maxBackoff": "0.5s",
                  "backoffMultiplier": 2, "retryableStatusCodes": ["UNAVAILABLE"]}
        config = {"methodConfig": [{"name": [{"service": s} for s in retry_services],
                                    "retryPolicy": policy}]}
        options.append(("grpc.service_config", json.dumps(config)))
    return options


# ------------------------------------------------------------ errors -> status
_NOT_FOUND = (E.UnknownFlow, E.UnknownFunction, E.UnknownPeer)
_INVALID = (E.UnsupportedValue, E.ReplicaError)


def status_for(exc: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message a handler answers for `exc` (a fedflow error;
    anything else is INTERNAL with a short message, never a traceback)."""
    if isinstance(exc, _NOT_FOUND):
        return Code.NOT_FOUND, str(exc)
    if isinstance(exc, _INVALID):
        return Code.INVALID_ARGUMENT, str(exc)
    if isinstance(exc, E.PeerUnavailable):
        return Code.UNAVAILABLE, str(exc)
    if isinstance(exc, E.FedflowError):
        return Code.FAILED_PRECONDITION, str(exc)
    return Code.INTERNAL, f"internal error ({type(exc).__name__}); see the server log"


def _describe_cause(cause: Any) -> tuple[str, str]:
    """`(type, message)` of a FlowFailed cause: an exception, or "Type: message" text."""
    if isinstance(cause, BaseException):
        kind = getattr(cause, "remote_type", "") or type(cause).__name__
        return kind, getattr(cause, "remote_message", "") or str(cause)
    kind, sep, text = str(cause).partition(": ")
    return (kind, text) if sep and kind.isidentifier() else ("Exception", str(cause))


def _attrs(exc: BaseException) -> dict[str, Any]:
    names = ("id", "owner", "peer", "path", "expected", "recorded", "remote_type", "remote_message")
    out = {n: getattr(exc, n) for n in names if isinstance(getattr(exc, n, None), str)}
    if isinstance(exc, E.ReplayedError):
        out["type_name"] = exc.type_name
    cause = getattr(exc, "cause", None) or exc.__cause__
    if isinstance(exc, E.FlowFailed) and cause is not None:
        out["cause_type"], out["cause_message"] = _describe_cause(cause)
    return out


def trailers_for(exc: BaseException) -> tuple[tuple[str, str | bytes], ...]:
    """Trailing metadata naming `exc`'s fedflow class and attributes (empty if not fedflow)."""
    if not isinstance(exc, E.FedflowError):
        return ()
    detail = json.dumps(_attrs(exc), ensure_ascii=False).encode("utf-8")
    return ((ERROR_KEY, type(exc).__name__), (DETAIL_KEY, detail))


# ------------------------------------------------------------ status -> errors
def _trailers(rpc_error: grpc.RpcError) -> tuple[str, dict[str, Any]]:
    getter = getattr(rpc_error, "trailing_metadata", None)
    pairs = (getter() if callable(getter) else None) or ()
    found = {key: value for key, value in pairs}
    name = found.get(ERROR_KEY, "")
    try:
        detail = json.loads(found.get(DETAIL_KEY, b"{}"))
    except ValueError:
        detail = {}
    return (name if isinstance(name, str) else ""), (detail if isinstance(detail, dict) else {})


def _rebuild(name: str, message: str, d: dict[str, Any], peer: str | None) -> E.FedflowError | None:
    cls = getattr(E, name, None)
    if not (isinstance(cls, type) and issubclass(cls, E.FedflowError)):
        return None
    if issubclass(cls, E.NonDeterminism):
        return cls(message, d.get("id"), expected=d.get("expected", ""), recorded=d.get("recorded", ""))
    if issubclass(cls, E.FlowFailed):
        kind, text = d.get("cause_type", ""), d.get("cause_message", "")
        cause = None
        if kind:
            cause = E.RemoteError(f"{kind}: {text}", peer, remote_type=kind, remote_message=text)
        return cls(message, d.get("id"), cause=cause)
    if issubclass(cls, E.FlowMoved):
        return cls(message, d.get("id"), owner=d.get("owner"))
    if issubclass(cls, E.FlowError):
        return cls(message, d.get("id"))
    if issubclass(cls, E.RemoteError):
        return cls(message, d.get("peer") or peer, remote_type=d.get("remote_type", ""),
                   remote_message=d.get("remote_message", ""))
    if issubclass(cls, E.PeerError):
        return cls(message, d.get("peer") or peer)
    if issubclass(cls, E.UnsupportedValue):
        return cls(message, path=d.get("path", ""))
    if issubclass(cls, E.ReplayedError):
        return cls(message, type_name=d.get("type_name", ""))
    return cls(message)


def _by_code(code: grpc.StatusCode | None, details: str, peer: str | None) -> E.FedflowError:
    who = f"peer {peer}" if peer else "the peer"
    if code in (Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.CANCELLED):
        what = "did not answer within the deadline" if code is Code.DEADLINE_EXCEEDED else "is unavailable"
        return E.PeerUnavailable(f"{who} {what} ({details}); check it is running and reachable, "
                                 f"or raise the deadline", peer)
    if code is Code.UNAUTHENTICATED:
        return E.PeerError(f"{who} refused the call: missing or wrong token ({details}); "
                           f"set --token-file to the peer's shared token", peer)
    if code is Code.PERMISSION_DENIED:
        return E.PeerError(f"{who} denied the call ({details}); check its access rules", peer)
    if code is Code.RESOURCE_EXHAUSTED:
        return E.PeerError(f"{who} is overloaded or the message is too large ({details}); "
                           f"retry later or send less than {MAX_MESSAGE_BYTES} bytes", peer)
    if code is Code.UNIMPLEMENTED:
        return E.PeerError(f"{who} does not serve this fedflow call ({details}); "
                           f"check the address points at a fedflow instance of the same version", peer)
    if code is Code.NOT_FOUND:
        return E.PeerError(f"{who} found nothing by that name ({details}); check the name", peer)
    if code is Code.FAILED_PRECONDITION:
        return E.FlowError(f"{who} refused: {details}; check the flow's status there")
    name = code.name if code is not None else "no status"
    return E.PeerError(f"{who} failed the call ({name}: {details}); see the peer's log", peer)


def error_for(rpc_error: grpc.RpcError, peer: str | None = None) -> E.FedflowError:
    """The fedflow error a failed RPC stands for: the class named in the trailers
    when there is one, else the most specific error for the status code."""
    code_fn = getattr(rpc_error, "code", None)
    details_fn = getattr(rpc_error, "details", None)
    code = code_fn() if callable(code_fn) else None
    details = (details_fn() if callable(details_fn) else None) or ""
    name, detail = _trailers(rpc_error)
    rebuilt = _rebuild(name, details, detail, peer) if name else None
    return rebuilt if rebuilt is not None else _by_code(code, details, peer)


def is_transient(rpc_error: grpc.RpcError) -> bool:
    """True for a transport-level failure worth retrying within the deadline
    (UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, and no fedflow answer)."""
    code_fn = getattr(rpc_error, "code", None)
    code = code_fn() if callable(code_fn) else None
    if code not in (Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED):
        return False
    return not _trailers(rpc_error)[0]


# ------------------------------------------------------------------ requests
class _Undecodable:
    """Stands in for a request message that is not valid protobuf (grpcio itself
    would answer UNKNOWN); handlers refuse it with INVALID_ARGUMENT."""

    def __init__(self, kind: str, error: Exception) -> None:
        self.kind = kind
        self.error = error


def parsed(message: Any) -> Any:
    """`message`, or UnsupportedValue (-> INVALID_ARGUMENT) if it did not decode."""
    if isinstance(message, _Undecodable):
        raise E.UnsupportedValue(f"request is not a valid fedflow.v1.{message.kind} message "
                                 f"({message.error}); send the protobuf message the method expects",
                                 path="request")
    return message


def _lenient(cls: Any) -> Callable[[bytes], Any]:
    """A request deserializer that never raises (see `_Undecodable`)."""
    def parse(data: bytes) -> Any:
        try:
            return cls.FromString(data)
        except Exception as exc:  # DecodeError and friends
            return _Undecodable(cls.DESCRIPTOR.name, exc)
    return parse


#: (request_streaming, response_streaming) -> the grpc method-handler factory.
HANDLER_KINDS = {(False, False): grpc.unary_unary_rpc_method_handler,
                 (False, True): grpc.unary_stream_rpc_method_handler,
                 (True, False): grpc.stream_unary_rpc_method_handler,
                 (True, True): grpc.stream_stream_rpc_method_handler}


def service_handler(service: str, servicer: Any) -> grpc.GenericRpcHandler:
    """Handlers for every method of fedflow.v1 `service`, with lenient request parsing."""
    desc = pb.DESCRIPTOR.services_by_name[service]
    table = {}
    for method in desc.methods:
        make = HANDLER_KINDS[(method.client_streaming, method.server_streaming)]
        table[method.name] = make(getattr(servicer, method.name),
                                  request_deserializer=_lenient(getattr(pb, method.input_type.name)),
                                  response_serializer=getattr(pb, method.output_type.name).SerializeToString)
    return grpc.method_handlers_generic_handler(desc.full_name, table)



# ------------------------------------------------------------------ replicas
def replica_parts(source: str, text: str, chunk: int = CHUNK_BYTES) -> Iterator[pb.ReplicaHeader | bytes]:
    """A replica as a header (size, SHA-256) followed by byte chunks of `chunk` bytes."""
    data = text.encode("utf-8")
    yield pb.ReplicaHeader(source=source, total_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    for start in range(0, len(data), chunk):
        yield data[start:start + chunk]


class ReplicaAssembler:
    """Collects a replica stream (header first, then chunks) and checks it;
    every problem raises ReplicaError."""

    def __init__(self, limit: int = MAX_REPLICA_BYTES) -> None:
        self.header: pb.ReplicaHeader | None = None
        self._limit = limit
        self._digest = hashlib.sha256()
        self._parts: list[bytes] = []
        self._size = 0

    def add(self, message: Any) -> None:
        """Take one PushReplicaRequest / FetchReplicaResponse."""
        part = message.WhichOneof("part")
        if part == "header":
            if self.header is not None:
                raise E.ReplicaError("a replica stream carries one header; resend the replica")
            if message.header.total_bytes > self._limit:
                raise E.ReplicaError(f"replica of {message.header.total_bytes} bytes exceeds the "
                                     f"{self._limit}-byte limit; gc the source store first")
            self.header = message.header
        elif part == "chunk":
            if self.header is None:
                raise E.ReplicaError("a replica stream must start with its header; resend the replica")
            self._size += len(message.chunk)
            if self._size > self.header.total_bytes:
                raise E.ReplicaError("replica is longer than its header says; resend the replica")
            self._digest.update(message.chunk)
            self._parts.append(message.chunk)
        else:
            raise E.ReplicaError("empty replica message; send a header, then chunks")

    def finish(self) -> tuple[str, str]:
        """`(source, export_text)` once the stream is complete and its checksum matches."""
        if self.header is None:
            raise E.ReplicaError("replica stream had no header; resend the replica")
        if self._size != self.header.total_bytes:
            raise E.ReplicaError(f"replica truncated: got {self._size} of {self.header.total_bytes} "
                                 f"bytes; resend the replica")
        if self._digest.hexdigest() != self.header.sha256.lower():
            raise E.ReplicaError("replica checksum mismatch (sha256); it was corrupted: resend it")
        try:
            text = b"".join(self._parts).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise E.ReplicaError(f"replica is not UTF-8 JSON text: {exc}; resend a store export") from exc
        return self.header.source, text
