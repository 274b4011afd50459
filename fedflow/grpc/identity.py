"""Who is calling, and what they may do: an operator credential and one per peer.

`Credentials` holds the tokens (and, under mTLS, the certificate names) one server
accepts and whose each is:

- the operator token (`serve --operator-token-file`): every verb of ControlService
  (start, resume, cancel, replicate, handoff, ...), reflection, and PeerService;
- one token per peer (`[peer_tokens]` in the config, `serve --peer-token NAME=FILE`):
  PeerService only, and a peer writes only its own replica slot (the one named
  after it); ControlService answers PERMISSION_DENIED;
- the shared token (`serve --token-file`, as before): operator and any peer at once;
- under mTLS, the client certificate's name, as a token is: `[peer_certs]` in the config
  (`serve --peer-cert NAME=CERT_NAME`) names the certificate each peer presents, and
  `operator_certs` (`serve --operator-cert CERT_NAME`) the operators' certificates. A
  certificate's name is its subject's common name (CN), or its first subjectAltName when it
  has no CN (`make certs` writes NAME as both). A known token decides first; without one, the
  certificate does; a certificate named in neither list (though signed by the CA) is refused
  like an unknown token.

Token files are re-read when they change (checked at most once a second), so a token is
rotated by rewriting its file; the old token is still accepted for `grace` seconds.
`IdentityInterceptor` answers UNAUTHENTICATED to a call without a known token or
certificate (health checks excepted) and puts the `Caller` where the servicers read it
(`current_caller`).
"""

from __future__ import annotations

import contextvars
import dataclasses
import hashlib
import hmac
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import grpc

from ..errors import FedflowError
from .handlers import HANDLER_KINDS, PEER_SERVICE
from .security import HEALTH_PREFIX, UNAUTHENTICATED_MESSAGE, Limited, bearer_token, refusing

__all__ = ["ROTATION_GRACE", "Caller", "Credentials", "IdentityInterceptor", "certificate_name",
           "current_caller"]

#: Seconds a replaced token is still accepted after its file changed.
ROTATION_GRACE = 300.0
_RECHECK = 1.0
#: The refusal when certificate names identify callers but neither the token nor the certificate is known.
CERTIFICATE_MESSAGE = ("unknown caller: send a known token (`authorization: Bearer <token>`) or present a client "
                       "certificate this instance names in [peer_certs] or operator_certs (--peer-cert, "
                       "--operator-cert)")


@dataclasses.dataclass(frozen=True)
class Caller:
    """Who a call came from: a peer's `name` (None: any peer, the shared token) and whether
    it may use the control verbs."""

    name: str | None
    operator: bool

    def may_write_slot(self, source: str) -> bool:
        """Whether this caller may write the replica slot of engine `source`."""
        return self.name is None or self.name == source


#: A call made without credentials (a server without tokens): anyone, any slot.
ANYONE = Caller(None, True)
_CALLER: contextvars.ContextVar[Caller] = contextvars.ContextVar("fedflow_caller", default=ANYONE)


def current_caller() -> Caller:
    """The caller of the call being served on this thread."""
    return _CALLER.get()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise FedflowError(f"cannot read token file {path}: {exc}; point it at a readable file") from exc


def certificate_name(auth: Mapping[str, Iterable[bytes]]) -> str | None:
    """The name of the client certificate in a call's `auth_context()`: its common name, else
    its first subjectAltName; None without a client certificate."""
    for key in ("x509_common_name", "x509_subject_alternative_name"):
        for value in auth.get(key) or ():
            name = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
            if name:
                return name
    return None


@dataclasses.dataclass
class _TokenFile:
    path: str
    caller: Caller
    stamp: tuple[float, int] = (0.0, -1)
    digest: bytes = b""
    retired: list[tuple[bytes, float]] = dataclasses.field(default_factory=list)  # (digest, accepted until)


class Credentials:
    """The tokens a server accepts (see the module doc), re-read from their files."""

    def __init__(self, *, shared_file: str | None = None, operator_file: str | None = None,
                 peer_files: Mapping[str, str] | None = None, peer_certs: Mapping[str, str] | None = None,
                 operator_certs: Iterable[str] = (), grace: float = ROTATION_GRACE,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """Token files as in the module doc; `peer_certs` maps a peer's name to the name of the
        certificate it presents, `operator_certs` lists the operators' certificate names."""
        self.grace = grace
        self._certs = _certificate_callers(peer_certs or {}, operator_certs)
        self._clock = clock
        self._lock = threading.Lock()
        self._files = [_TokenFile(path, caller) for path, caller in (
            *(((shared_file, Caller(None, True)),) if shared_file else ()),
            *(((operator_file, Caller(None, True)),) if operator_file else ()),
            *((path, Caller(name, False)) for name, path in (peer_files or {}).items()))]
        if not self._files and not self._certs:
            raise ValueError("Credentials need at least one token file or certificate name")
        self._checked = float("-inf")
        self.refresh(force=True)

    @property
    def knows_certificates(self) -> bool:
        """Whether certificate names identify callers here (see the module doc)."""
        return bool(self._certs)

    def who_by_certificate(self, auth: Mapping[str, Iterable[bytes]]) -> Caller | None:
        """The caller a call's `auth_context()` identifies by its client certificate, None
        when it has none or one named in neither list."""
        name = certificate_name(auth)
        return self._certs.get(name) if name is not None else None

    def refresh(self, force: bool = False) -> None:
        """Re-read the token files that changed (at most once a second unless `force`)."""
        now = self._clock()
        with self._lock:
            if not force and now - self._checked < _RECHECK:
                return
            self._checked = now
            for entry in self._files:
                self._reload(entry, now)

    def _reload(self, entry: _TokenFile, now: float) -> None:
        try:
            info = os.stat(entry.path)
        except OSError:
            if not entry.digest:
                raise FedflowError(f"cannot read token file {entry.path}: it does not exist; create it") from None
            return  # mid-rotation (the file is being replaced): keep the token we have
        stamp = (info.st_mtime, info.st_size)
        if stamp == entry.stamp:
            return
        token = _read(entry.path)
        if not token:
            if not entry.digest:
                raise FedflowError(f"token file {entry.path} is empty; put a token in it")
            return
        digest = _digest(token)
        if entry.digest and digest != entry.digest:
            entry.retired.append((entry.digest, now + self.grace))
        entry.stamp, entry.digest = stamp, digest

    def who(self, token: str) -> Caller | None:
        """The caller a bearer `token` identifies, None for an unknown token."""
        self.refresh()
        given = _digest(token)
        now = self._clock()
        found = None
        with self._lock:
            for entry in self._files:
                entry.retired[:] = [(d, until) for d, until in entry.retired if until > now]
                if hmac.compare_digest(given, entry.digest) or any(
                        hmac.compare_digest(given, d) for d, _until in entry.retired):
                    found = found if found is not None and found.operator else entry.caller
        return found


def _certificate_callers(peer_certs: Mapping[str, str], operator_certs: Iterable[str]) -> dict[str, Caller]:
    callers = {cert: Caller(None, True) for cert in operator_certs}
    for peer, cert in peer_certs.items():
        if not isinstance(cert, str) or not cert:
            raise FedflowError(f"peer {peer!r}: its certificate name must be a non-empty string, got {cert!r}")
        if cert in callers:
            owner = "an operator" if callers[cert].operator else f"peer {callers[cert].name!r}"
            raise FedflowError(f"certificate name {cert!r} is given to peer {peer!r} and to {owner}; "
                               f"give each its own certificate")
        callers[cert] = Caller(peer, False)
    return callers


class IdentityInterceptor(grpc.ServerInterceptor):
    """Authenticates every call but health checks by its bearer token, else by its client
    certificate's name (UNAUTHENTICATED when neither is known), refuses the control verbs
    and reflection to peers (PERMISSION_DENIED), and runs each handler with its `Caller` set (see `current_caller`)."""

    def __init__(self, credentials: Credentials, limited: Mapping[str, Limited] | None = None) -> None:
        """`limited`: what a caller without a known token may still do at a method (see
        `security.TokenInterceptor`)."""
        self.credentials = credentials
        self._limited = dict(limited or {})

    def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        """Pass the call on as its caller, or refuse it."""
        handler = continuation(details)
        if handler is None or details.method.startswith(HEALTH_PREFIX):
            return handler
        token = bearer_token(details.invocation_metadata)
        caller = self.credentials.who(token) if token is not None else None
        if caller is not None or not self.credentials.knows_certificates:
            return self._admitted(handler, details.method, caller)
        # the client certificate is known only once the call runs (its context's auth_context)
        return _decided_per_call(handler, lambda context: self._admitted(
            handler, details.method, self.credentials.who_by_certificate(context.auth_context())))

    def _admitted(self, handler: grpc.RpcMethodHandler, method: str, caller: Caller | None) -> grpc.RpcMethodHandler:
        """`handler` run as `caller`, or what refuses it (or limits it, see `limited`)."""
        if caller is None:
            message = CERTIFICATE_MESSAGE if self.credentials.knows_certificates else UNAUTHENTICATED_MESSAGE
            limited = self._limited.get(method)
            if limited is not None:
                return limited(handler, message)
            return refusing(handler, grpc.StatusCode.UNAUTHENTICATED, message)
        if not caller.operator and not method.startswith(f"/{PEER_SERVICE}/"):
            return refusing(handler, grpc.StatusCode.PERMISSION_DENIED,
                            f"peer {caller.name!r} may call only PeerService; {method} needs an operator "
                            f"credential (serve --operator-token-file or --operator-cert, or the shared --token-file)")
        return _as(handler, caller)



def _decided_per_call(handler: grpc.RpcMethodHandler,
                      decide: Callable[[grpc.ServicerContext], grpc.RpcMethodHandler]) -> grpc.RpcMethodHandler:
    """A handler of `handler`'s shape that asks `decide(context)` which handler serves each call."""
    shape = (handler.request_streaming, handler.response_streaming)
    attribute = {(False, False): "unary_unary", (False, True): "unary_stream",
                 (True, False): "stream_unary", (True, True): "stream_stream"}[shape]

    def run(request: Any, context: grpc.ServicerContext) -> Any:
        return getattr(decide(context), attribute)(request, context)

    return HANDLER_KINDS[shape](run, request_deserializer=handler.request_deserializer,
                                response_serializer=handler.response_serializer)


def _as(handler: grpc.RpcMethodHandler, caller: Caller) -> grpc.RpcMethodHandler:
    """`handler`, run with `caller` as the current caller (unary answers and client streams;
    a server stream, which reads no caller, is passed on as it is)."""
    if handler.response_streaming:
        return handler
    behaviour = handler.stream_unary if handler.request_streaming else handler.unary_unary

    def run(request: Any, context: grpc.ServicerContext) -> Any:
        token = _CALLER.set(caller)
        try:
            return behaviour(request, context)
        finally:
            _CALLER.reset(token)

    make = HANDLER_KINDS[(handler.request_streaming, False)]
    return make(run, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)
