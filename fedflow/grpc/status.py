"""Errors on the wire: the one place fedflow meets gRPC status codes.

- `status_for(exc)`: a fedflow error -> `(grpc.StatusCode, message)`, and
  `trailers_for(exc)`: the trailing metadata that lets the caller rebuild the
  same class (`fedflow-error: <ClassName>` plus `fedflow-detail-bin`, a JSON
  object of its attributes: id, owner, peer, limit, cause type and message...).
- `error_for(rpc_error, peer)`: a failed RPC -> the most specific
  `FedflowError`, for every gRPC status code; callers
  `raise error_for(e, peer) from e`. `is_transient` says which are worth a retry.

| status | raised as (without fedflow trailers) |
|---|---|
| UNAVAILABLE, DEADLINE_EXCEEDED, CANCELLED | PeerUnavailable (a failed TLS handshake: PeerError) |
| RESOURCE_EXHAUSTED | LimitExceeded (message size), PeerUnavailable (too many calls), else PeerError |
| UNAUTHENTICATED | PeerError naming --token-file / FEDFLOW_TOKEN |
| FAILED_PRECONDITION | FlowError |
| ALREADY_EXISTS | FlowExists |
| any other | PeerError saying what the peer answered |

With fedflow trailers the class they name is rebuilt instead (UnknownFlow,
FlowMoved with its owner, RemoteError, LimitExceeded, ...).
"""

from __future__ import annotations

import json
from typing import Any

import grpc

from .. import errors as E
from ..errors import LimitExceeded
from ..limits import FLAGS
from ..schedules import ScheduleError

__all__ = ["BUSY_MARK", "error_for", "is_transient", "status_for", "trailers_for"]

ERROR_KEY = "fedflow-error"
#: In the details of RESOURCE_EXHAUSTED from a server whose workers for a service are all busy.
BUSY_MARK = "workers are busy"
DETAIL_KEY = "fedflow-detail-bin"
Code = grpc.StatusCode


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
    if isinstance(exc, E.FlowExists):
        return Code.ALREADY_EXISTS, str(exc)
    if isinstance(exc, E.PeerUnavailable):
        return Code.UNAVAILABLE, str(exc)
    if isinstance(exc, E.FedflowError):
        return Code.FAILED_PRECONDITION, str(exc)
    return Code.INTERNAL, f"internal error ({type(exc).__name__}); see the server log"


def trailers_for(exc: BaseException) -> tuple[tuple[str, str | bytes], ...]:
    """Trailing metadata naming `exc`'s fedflow class, with `errors.to_data(exc)` as its detail
    (empty if not fedflow)."""
    if not isinstance(exc, E.FedflowError):
        return ()
    detail = json.dumps(E.to_data(exc), ensure_ascii=False).encode("utf-8")
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


def _describe_cause(cause: Any) -> tuple[str, str]:
    """`(type, message)` of a FlowFailed cause: an exception, or "Type: message" text."""
    if isinstance(cause, E.ReplayedError):
        return cause.type_name or "Exception", cause.message
    if isinstance(cause, BaseException):
        kind = getattr(cause, "remote_type", "") or type(cause).__name__
        return kind, getattr(cause, "remote_message", "") or str(cause)
    kind, sep, text = str(cause).partition(": ")
    return (kind, text) if sep and kind.isidentifier() else ("Exception", str(cause))


def _rebuild(name: str, message: str, detail: dict[str, Any], peer: str | None) -> E.FedflowError | None:
    """The error the trailers describe, as this side sees it: a peer error without a peer is
    `peer`'s, and a failed flow's cause is that peer's RemoteError."""
    if _error_class(name) is None:
        return None
    exc = E.from_data({**detail, "type": name, "module": E.__name__, "message": message})
    if isinstance(exc, E.PeerError) and not exc.peer:
        exc.peer = peer
    if isinstance(exc, E.FlowFailed) and exc.cause is not None:
        kind, text = _describe_cause(exc.cause)
        exc.cause = E.RemoteError(f"{kind}: {text}", peer, remote_type=kind, remote_message=text)
    return exc if isinstance(exc, E.FedflowError) else None


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
    if code is Code.ALREADY_EXISTS:
        return E.FlowExists(f"{who} refused: {details}; pick another id")
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
