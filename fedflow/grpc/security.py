"""Who may talk to an instance: a shared bearer token and mutual TLS.

- Token: with `token=`, a server answers every RPC except the standard health
  checks (`/grpc.health.v1.Health/*`) with UNAUTHENTICATED unless its
  metadata carries `authorization: Bearer <token>` (the scheme in any case:
  `bearer` works too). That covers both fedflow
  services, every streaming method, and server reflection (reflection needs
  the token too: it describes the API to anyone who asks; without it, it
  describes only the open health service). Tokens are
  compared in constant time (SHA-256 digests through `hmac.compare_digest`).
  Clients send the token as per-call metadata, over plaintext or TLS alike;
  without TLS it crosses the network in the clear, so use both across hosts.
- mTLS: `TlsConfig(cert, key, ca)` holds PEM bytes. A server with it speaks
  only TLS and requires a client certificate signed by `ca`; a client with it
  checks the server's certificate against `ca` and presents its own. Peers
  reached by IP need that IP in their certificate's subjectAltName
  (`python -m fedflow.cli.certs` puts 127.0.0.1 and localhost in; `make certs`).

`tls_config(obj)` also takes any object with `cert`, `key` and `ca` file
paths (such as `fedflow.cli.config.TlsFiles`), so the command line can hand its
flags straight through.

>>> bearer_metadata("s3cret")
(('authorization', 'Bearer s3cret'),)
>>> bearer_metadata(None)
()
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import os
from collections.abc import Callable, Mapping
from typing import Any

import grpc

from ..errors import FedflowError
from .handlers import HANDLER_KINDS

__all__ = [
    "HEALTH_PREFIX",
    "TOKEN_ENV",
    "Limited",
    "TlsConfig",
    "TokenInterceptor",
    "bearer_metadata",
    "channel_credentials",
    "server_credentials",
    "tls_config",
    "token_from_env",
]

HEALTH_PREFIX = "/grpc.health.v1."
TOKEN_ENV = "FEDFLOW_TOKEN"
UNAUTHENTICATED_MESSAGE = ("missing or wrong token: every call needs metadata `authorization: Bearer <token>` "
                           "with this instance's shared token; pass --token-file F (or set FEDFLOW_TOKEN), "
                           "or token_file in the peer's [peers] entry")
_PEM = b"-----BEGIN "


# ------------------------------------------------------------------ tokens
def token_from_env() -> str | None:
    """The token in $FEDFLOW_TOKEN, or None when unset or blank."""
    return os.environ.get(TOKEN_ENV, "").strip() or None


def bearer_metadata(token: str | None) -> tuple[tuple[str, str], ...]:
    """The per-call metadata that carries a shared token (empty without one)."""
    return (("authorization", f"Bearer {token}"),) if token else ()


def _digest(value: str | bytes) -> bytes:
    return hashlib.sha256(value.encode() if isinstance(value, str) else value).digest()


#: Wraps a method's handler for a caller without the token: what it may still do (see `TokenInterceptor`).
Limited = Callable[[grpc.RpcMethodHandler, str], grpc.RpcMethodHandler]


class TokenInterceptor(grpc.ServerInterceptor):
    """Answers UNAUTHENTICATED to every RPC but health checks that lacks `authorization: Bearer <token>`.

    `limited` maps a method path to what a caller without the token may still do there: a
    wrapper of its handler, given the refusal message for the rest (server reflection
    describes the open health service this way)."""

    def __init__(self, token: str, limited: Mapping[str, Limited] | None = None) -> None:
        if not token:
            raise ValueError("a token interceptor needs a non-empty token")
        self._expected = _digest(token)
        self._limited = dict(limited or {})

    def allowed(self, method: str, metadata: Any) -> bool:
        """True when `method` is a health check or `metadata` carries the right token."""
        if method.startswith(HEALTH_PREFIX):
            return True
        return self.authenticated(metadata)

    def authenticated(self, metadata: Any) -> bool:
        """True when `metadata` carries exactly one `authorization: Bearer <token>` with the right
        token (the scheme in any case, as HTTP has it)."""
        given = [value for key, value in metadata or () if key == "authorization"]
        if len(given) != 1:
            return False
        text = given[0].decode("utf-8", "replace") if isinstance(given[0], bytes) else str(given[0])
        scheme, _, credential = text.partition(" ")
        matches = hmac.compare_digest(_digest(credential.lstrip(" ")), self._expected)
        return scheme.lower() == "bearer" and matches

    def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        """Pass allowed calls on; answer the rest UNAUTHENTICATED (same streaming shape)."""
        handler = continuation(details)
        if handler is None or self.allowed(details.method, details.invocation_metadata):
            return handler
        limited = self._limited.get(details.method)
        if limited is not None:
            return limited(handler, UNAUTHENTICATED_MESSAGE)
        return _denied(handler)


def _denied(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    """A handler of the same shape as `handler` that refuses without reading the request."""
    def deny(_request: Any, context: grpc.ServicerContext) -> None:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MESSAGE)

    make = HANDLER_KINDS[(handler.request_streaming, handler.response_streaming)]
    return make(deny, request_deserializer=None, response_serializer=handler.response_serializer)


# ------------------------------------------------------------------ TLS
@dataclasses.dataclass(frozen=True)
class TlsConfig:
    """PEM material for mutual TLS: this side's certificate chain and key, and the CA
    that signs the other side. `server_name` overrides the name a client checks the
    server's certificate against (default: the host it dials)."""

    cert: bytes | None = None
    key: bytes | None = None
    ca: bytes | None = None
    server_name: str | None = None

    def __repr__(self) -> str:  # never print a private key
        parts = [f"{name}={'<pem>' if getattr(self, name) else None}" for name in ("cert", "key", "ca")]
        return f"TlsConfig({', '.join(parts)}, server_name={self.server_name!r})"

    @classmethod
    def from_files(cls, cert: str | None = None, key: str | None = None, ca: str | None = None,
                   server_name: str | None = None) -> TlsConfig:
        """Read PEM files (any may be None); FedflowError naming the flag when one is unusable."""
        return cls(cert=_read_pem(cert, "--tls-cert"), key=_read_pem(key, "--tls-key"),
                   ca=_read_pem(ca, "--tls-ca"), server_name=server_name)


def _read_pem(path: str | None, flag: str) -> bytes | None:
    if not path:
        return None
    try:
        with open(path, "rb") as fh:
            data = fh.read()
    except OSError as exc:
        raise FedflowError(f"cannot read {flag} {path}: {exc.strerror or exc}; point it at a PEM file") from exc
    if _PEM not in data:
        raise FedflowError(f"{flag} {path} is not a PEM file (no '-----BEGIN' line); give the PEM file "
                           f"that `make certs` or openssl wrote")
    return data


def tls_config(tls: Any) -> TlsConfig | None:
    """None, a TlsConfig, or any object with `cert`/`key`/`ca` file paths -> TlsConfig or None."""
    if tls is None or isinstance(tls, TlsConfig):
        return tls
    try:
        paths = (tls.cert, tls.key, tls.ca)
    except AttributeError:
        raise TypeError(f"tls must be a TlsConfig or have cert, key and ca paths, not {type(tls).__name__}") from None
    if not any(paths):
        return None
    return TlsConfig.from_files(*paths, server_name=getattr(tls, "server_name", None))


def server_credentials(tls: Any) -> grpc.ServerCredentials:
    """Server credentials that require a client certificate signed by `tls.ca`."""
    config = tls_config(tls)
    if config is None or not (config.cert and config.key and config.ca):
        raise FedflowError("a TLS server needs all of --tls-cert, --tls-key and --tls-ca (its certificate, "
                           "its key, and the CA that signs client certificates)")
    return grpc.ssl_server_credentials([(config.key, config.cert)], root_certificates=config.ca,
                                       require_client_auth=True)


def channel_credentials(tls: Any) -> tuple[grpc.ChannelCredentials, list[tuple[str, Any]]]:
    """Client credentials (and channel options) that check the server against `tls.ca`
    and present this side's certificate."""
    config = tls_config(tls)
    if config is None or not config.ca:
        raise FedflowError("a TLS client needs --tls-ca (the CA that signs the server's certificate)")
    if bool(config.cert) != bool(config.key):
        raise FedflowError("--tls-cert and --tls-key go together (a client certificate and its key)")
    options = [("grpc.ssl_target_name_override", config.server_name)] if config.server_name else []
    return grpc.ssl_channel_credentials(config.ca, config.key, config.cert), options
