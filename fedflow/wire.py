"""Values, statuses and errors on the wire: the ONE place fedflow meets gRPC codes.

- `pack` / `unpack`: plain data <-> the `bytes` fields of fedflow.v1 (UTF-8
  tagged JSON from `fedflow.values`; empty bytes read as None).
- `status_for(exc)`: a fedflow error -> `(grpc.StatusCode, message)`, and
  `trailers_for(exc)`: the trailing metadata that lets the caller rebuild the
  same class (`fedflow-error: <ClassName>` plus `fedflow-detail-bin`, a JSON
  object of its attributes: id, owner, peer, limit, cause type and message...).
- `error_for(rpc_error, peer)`: a failed RPC -> the most specific
  `FedflowError`, for every gRPC status code; callers
  `raise error_for(e, peer) from e`. `is_transient` says which are worth a retry.
- `service_handler`: method handlers for a fedflow.v1 service whose requests
  decode leniently, so undecodable bytes get INVALID_ARGUMENT (grpcio alone
  answers UNKNOWN); handlers call `parsed(request)`.
- `channel_options(limits)`: the message limits (and retry policy) both ends set.
- `ReplicaAssembler` / `replica_parts` (from `fedflow.replica_stream`): a replica
  as a header plus ~1 MiB chunks with a SHA-256 checksum.

| status | raised as (without fedflow trailers) |
|---|---|
| UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED | PeerUnavailable (a failed TLS handshake: PeerError) |
| RESOURCE_EXHAUSTED | LimitExceeded (message size), PeerUnavailable (too many calls), else PeerError |
| UNAUTHENTICATED | PeerError naming --token-file / FEDFLOW_TOKEN |
| FAILED_PRECONDITION | FlowError |
| any other | PeerError saying what the peer answered |

With fedflow trailers the class they name is rebuilt instead (UnknownFlow,
FlowMoved with its owner, RemoteError, LimitExceeded, ...).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import grpc

from . import errors as E
from .errors import LimitExceeded
from .limits import DEFAULT_LIMITS, FLAGS, Limits
from .replica_stream import CHUNK_BYTES, ReplicaAssembler, replica_parts
from .schedules import ScheduleError
from .v1 import fedflow_pb2 as pb
from .values import dumps, dumps_lifting, loads, loads_lifted

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
    "pack_call_value",
    "parsed",
    "replica_parts",
    "service_handler",
    "status_for",
    "status_from_proto",
    "status_to_proto",
    "trailers_for",
    "unpack",
    "unpack_call_value",
]

MAX_MESSAGE_BYTES = DEFAULT_LIMITS.max_message_bytes
MAX_REPLICA_BYTES = DEFAULT_LIMITS.max_replica_bytes
#: A str or bytes in a call's payload or answer at least this long travels as a raw blob.
BLOB_MIN_BYTES = 4096
ERROR_KEY = "fedflow-error"
#: In the details of RESOURCE_EXHAUSTED from a server whose workers for a service are all busy.
BUSY_MARK = "workers are busy"
DETAIL_KEY = "fedflow-detail-bin"
Code = grpc.StatusCode


# ------------------------------------------------------------------ values
def pack(value: Any, path: str = "value") -> bytes:
    """Encode plain data for a `bytes` value field; raises UnsupportedValue."""
    return _utf8(dumps(value, path))


def _utf8(text: str) -> bytes:
    """JSON text as UTF-8; a lone surrogate (which UTF-8 cannot hold) is written as its JSON
    escape, which decodes back to the same str. Surrogates only occur inside JSON strings,
    after any complete escape, so the escape lands where JSON reads it."""
    return text.encode("utf-8", "backslashreplace")


def pack_call_value(value: Any, path: str) -> tuple[bytes, list[bytes]]:
    """Encode a call's payload or answer: tagged JSON with every str or bytes of at least
    `BLOB_MIN_BYTES` lifted out as a raw blob (sent in the message's `blobs`)."""
    text, blobs = dumps_lifting(value, path, BLOB_MIN_BYTES)
    return _utf8(text), blobs


def unpack_call_value(data: bytes, blobs: Any, what: str) -> Any:
    """Decode what `pack_call_value` made (`blobs` as received); raises UnsupportedValue."""
    if not blobs:
        return unpack(data, what)
    if not data:
        raise E.UnsupportedValue(f"{what} came with {len(blobs)} blob(s) but no value naming them", path=what)
    return loads_lifted(data, list(blobs))


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


def channel_options(limits: Limits = DEFAULT_LIMITS,
                    retry_services: tuple[str, ...] = ()) -> list[tuple[str, Any]]:
    """Channel options for both ends: the message limits of `limits`; a short UNAVAILABLE
    retry policy on `retry_services` (full names, e.g. "fedflow.v1.PeerService")."""
    options: list[tuple[str, Any]] = [
        ("grpc.max_receive_message_length", limits.max_message_bytes),
        ("grpc.max_send_message_length", limits.max_message_bytes),
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
_INVALID = (E.UnsupportedValue, E.ReplicaError, ScheduleError)


def status_for(exc: BaseException, *, lookup: bool = False) -> tuple[grpc.StatusCode, str]:
    """The status code and message a handler answers for `exc` (a fedflow error;
    anything else is INTERNAL with a short message, never a traceback). With
    `lookup` (the handler looks a replica up by name) a ReplicaError is NOT_FOUND."""
    if isinstance(exc, LimitExceeded):
        return Code.RESOURCE_EXHAUSTED, str(exc)
    if isinstance(exc, _NOT_FOUND) or (lookup and isinstance(exc, E.ReplicaError)):
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
    names = ("id", "owner", "peer", "path", "expected", "recorded", "remote_type", "remote_message", "limit")
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


def _error_class(name: str) -> type[E.FedflowError] | None:
    cls = getattr(E, name, None)
    return cls if isinstance(cls, type) and issubclass(cls, E.FedflowError) else None


def _rebuild(name: str, message: str, d: dict[str, Any], peer: str | None) -> E.FedflowError | None:
    cls = _error_class(name)
    if cls is None:
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
    if issubclass(cls, LimitExceeded):
        return cls(message, d.get("peer") or peer, limit=d.get("limit", ""))
    if issubclass(cls, E.PeerError):
        return cls(message, d.get("peer") or peer)
    if issubclass(cls, E.UnsupportedValue):
        return cls(message, path=d.get("path", ""))
    if issubclass(cls, E.ReplayedError):
        return cls(message, type_name=d.get("type_name", ""))
    return cls(message)


def _tls_failure(details: str) -> bool:
    text = details.lower()
    return "handshake failed" in text or "ssl_error" in text or "certificate_verify_failed" in text


def _message_too_large(details: str) -> bool:
    return "larger than max" in details.lower()


def _unreachable(code: grpc.StatusCode | None, details: str, who: str, peer: str | None) -> E.PeerError:
    if _tls_failure(details):
        return E.PeerError(f"the TLS handshake with {who} failed ({details}); check --tls-ca names the CA "
                           f"that signed its certificate, that its certificate names the host you dial, "
                           f"and that --tls-cert/--tls-key are signed by the CA it trusts", peer)
    if code is Code.DEADLINE_EXCEEDED:
        return E.PeerUnavailable(f"{who} did not answer within the deadline ({details}); check it is "
                                 f"running and reachable, or raise the deadline", peer)
    return E.PeerUnavailable(f"{who} is unavailable ({details}); check it is running and reachable "
                             f"(and, if it serves TLS, that --tls-* are set on this side), or raise the "
                             f"deadline", peer)


def _exhausted(details: str, who: str, peer: str | None) -> E.PeerError:
    if _message_too_large(details):
        return LimitExceeded(f"a message to or from {who} is over the gRPC message size limit ({details}); "
                             f"send less, or raise the limit on both ends ({FLAGS['max_message_bytes']}, or "
                             f"Limits(max_message_bytes=...))", peer, "max_message_bytes")
    if "concurrent rpc" in details.lower() or BUSY_MARK in details:
        return E.PeerUnavailable(f"{who} is running as many calls as it allows ({details}); retry later, "
                                 f"or raise its {FLAGS['max_concurrent_rpcs']}", peer)
    return E.PeerError(f"{who} is overloaded or the message is too large ({details}); retry later, or "
                       f"raise the limits ({FLAGS['max_message_bytes']}, {FLAGS['max_concurrent_rpcs']})", peer)


_BY_CODE_HINT = {
    Code.PERMISSION_DENIED: "denied the call ({}); check its access rules",
    Code.UNIMPLEMENTED: "does not serve this fedflow call ({}); check the address points at a fedflow "
                        "instance of the same version",
    Code.NOT_FOUND: "found nothing by that name ({}); check the name",
    Code.INVALID_ARGUMENT: "refused the request as malformed ({}); check both ends run the same fedflow "
                           "version",
}


def _by_code(code: grpc.StatusCode | None, details: str, peer: str | None) -> E.FedflowError:
    who = f"peer {peer}" if peer else "the peer"
    if code in (Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.CANCELLED):
        return _unreachable(code, details, who, peer)
    if code is Code.RESOURCE_EXHAUSTED:
        return _exhausted(details, who, peer)
    if code is Code.UNAUTHENTICATED:
        return E.PeerError(f"{who} refused the call: missing or wrong token ({details}); set --token-file "
                           f"(or FEDFLOW_TOKEN, or token_file in its [peers] entry) to its shared token", peer)
    if code is Code.FAILED_PRECONDITION:
        return E.FlowError(f"{who} refused: {details}; check the flow's status there")
    if code in _BY_CODE_HINT:
        return E.PeerError(f"{who} {_BY_CODE_HINT[code].format(details)}", peer)
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
    """True for a transport-level failure worth retrying within the deadline: UNAVAILABLE,
    DEADLINE_EXCEEDED or RESOURCE_EXHAUSTED with no fedflow answer, except a failed TLS
    handshake or a message over the size limit (retrying cannot fix those)."""
    code_fn = getattr(rpc_error, "code", None)
    details_fn = getattr(rpc_error, "details", None)
    code = code_fn() if callable(code_fn) else None
    if code not in (Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED):
        return False
    details = (details_fn() if callable(details_fn) else None) or ""
    if _tls_failure(details) or _message_too_large(details):
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


#: The fully qualified names of fedflow's two services.
PEER_SERVICE = pb.DESCRIPTOR.services_by_name["PeerService"].full_name
CONTROL_SERVICE = pb.DESCRIPTOR.services_by_name["ControlService"].full_name

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
