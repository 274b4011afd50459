"""The gRPC server that serves one `Engine` to its peers and to the CLI.

>>> with run_server(engine) as port:              # doctest: +SKIP
...     ControlClient(f"127.0.0.1:{port}").status("job-1")

`serve_forever(engine, address)` is the blocking form behind `fedflow serve`:
it stops gracefully on SIGTERM/SIGINT (health NOT_SERVING, in-flight calls
finish within `grace`, new calls get UNAVAILABLE).

It is grpcio's sync server: one thread per in-flight RPC (up to
`limits.max_concurrent_rpcs`; past it, RESOURCE_EXHAUSTED), so an exposed
function runs on the thread that received the call. PeerService may run
`WORKERS` handlers at once and ControlService `CONTROL_WORKERS`; the rest
wait for a slot (see `fedflow.grpc.servicers.Gate`), so hung exposed functions
never starve the control verbs.

Both take the same security and limits (see `fedflow.grpc.security`, `fedflow.limits`):

- `token`: every RPC but `grpc.health.v1` needs `authorization: Bearer <token>`
  (reflection included, except to describe the health service), else UNAUTHENTICATED;
- `tls`: a `TlsConfig` (or an object with cert/key/ca paths): the port speaks
  only TLS and requires client certificates signed by its CA;
- `limits`: maximum message size (both directions), concurrent RPCs (past it:
  RESOURCE_EXHAUSTED) and replica size.

The servicers themselves live in `fedflow.grpc.servicers`.
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from ..limits import DEFAULT_LIMITS, Limits
from . import security
from .handlers import CONTROL_SERVICE, PEER_SERVICE, service_handler
from .options import channel_options
from .reflection import METHODS as REFLECTION_METHODS
from .reflection import enable_reflection, health_only
from .servicers import ControlServicer, Gate, PeerServicer

__all__ = ["run_server", "serve_forever"]

log = logging.getLogger("fedflow.server")

#: PeerService handlers (exposed functions, replicas) running at once.
WORKERS = 32
#: ControlService handlers (start/resume run flows; the rest are quick store reads) running at once.
CONTROL_WORKERS = 8
#: Seconds `serve_forever` sleeps between checks for a stop signal.
_SIGNAL_POLL = 0.5


# ------------------------------------------------------------------ lifecycle
class _Options:
    """What a server is started with, checked (and TLS files read) before it binds."""

    def __init__(self, grace: float, token: str | None, tls: Any, limits: Limits | None) -> None:
        self.grace = grace
        self.token = token
        self.limits = limits if limits is not None else DEFAULT_LIMITS
        self.credentials = security.server_credentials(tls) if security.tls_config(tls) else None


class _Instance:
    """One started server with its health service; a thread for every call it admits."""

    def __init__(self, engine: Any, opts: _Options) -> None:
        self.engine = engine
        self.opts = opts
        limits = opts.limits
        # grpcio stops counting a call when its client leaves, but a hung handler keeps its thread:
        # room for every admitted call beyond the ones the gates may hold.
        threads = limits.max_concurrent_rpcs + WORKERS + CONTROL_WORKERS
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="fedflow-rpc")
        self.gates = (Gate("PeerService", WORKERS), Gate("ControlService", CONTROL_WORKERS))
        limited = dict.fromkeys(REFLECTION_METHODS, health_only)
        interceptors = [security.TokenInterceptor(opts.token, limited)] if opts.token else None
        self.server = grpc.server(self.pool, options=[*channel_options(limits), ("grpc.so_reuseport", 0)],
                                  interceptors=interceptors, maximum_concurrent_rpcs=limits.max_concurrent_rpcs)
        self.health = health.HealthServicer()

    def _bind(self, address: str) -> int:
        try:
            if self.opts.credentials is not None:
                port = self.server.add_secure_port(address, self.opts.credentials)
            else:
                port = self.server.add_insecure_port(address)
        except RuntimeError as exc:
            port, why = 0, str(exc)
        else:
            why = "the address is in use or invalid"
        if not port:
            self.pool.shutdown(wait=False, cancel_futures=True)
            raise OSError(f"cannot listen on {address}: {why}; pick a free HOST:PORT")
        return port

    def start(self, address: str) -> int:
        """Register the services, bind `address`, go SERVING; the bound port."""
        limits = self.opts.limits
        peer = PeerServicer(self.engine, self.gates[0], limits)
        control = ControlServicer(self.engine, self.gates[1], limits)
        self.server.add_generic_rpc_handlers((service_handler("PeerService", peer),
                                              service_handler("ControlService", control)))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        enable_reflection(self.server, (PEER_SERVICE, CONTROL_SERVICE, health.SERVICE_NAME))
        port = self._bind(address)
        for name in ("", PEER_SERVICE, CONTROL_SERVICE):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self.server.start()
        return port

    def stop(self) -> None:
        """NOT_SERVING, drop calls still waiting for a slot, let running ones finish within
        the grace period, stop."""
        self.health.enter_graceful_shutdown()
        for gate in self.gates:
            gate.close()
        self.server.stop(self.opts.grace).wait()
        self.pool.shutdown(wait=False, cancel_futures=True)


@contextlib.contextmanager
def run_server(engine: Any, address: str = "127.0.0.1:0", *, grace: float = 5.0, token: str | None = None,
               tls: Any = None, limits: Limits | None = None) -> Iterator[int]:
    """Serve `engine` on `address` from grpcio's threads; yields the bound port.

    On exit: health NOT_SERVING, in-flight calls get `grace` seconds, then stop.
    `token`, `tls` and `limits` as in the module doc."""
    instance = _Instance(engine, _Options(grace, token, tls, limits))
    port = instance.start(address)
    try:
        yield port
    finally:
        instance.stop()


def _bound(address: str, port: int) -> str:
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return f"{host}:{port}"


@contextlib.contextmanager
def _stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM/SIGINT set `stop` for the block (only the main thread can take signals)."""
    previous = {}
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(ValueError):  # not the main thread: only the `stop` event stops us
            previous[sig] = signal.signal(sig, lambda _signum, _frame: stop.set())
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, signal.SIG_DFL if handler is None else handler)  # None: set from C


def serve_forever(engine: Any, address: str, *, grace: float = 5.0, token: str | None = None, tls: Any = None,
                  limits: Limits | None = None, on_ready: Callable[[int], Any] | None = None,
                  stop: threading.Event | None = None) -> None:
    """Serve `engine` on `address` until SIGTERM/SIGINT (main thread only) or until `stop`
    is set, then stop gracefully.

    `on_ready(port)` runs once the server listens. Raises OSError when the
    address cannot be bound, FedflowError when the TLS files are unusable."""
    opts = _Options(grace, token, tls, limits)
    instance = _Instance(engine, opts)
    stop = stop if stop is not None else threading.Event()
    with _stop_on_signals(stop):
        port = instance.start(address)
        secured = ", ".join(w for w, on in (("mTLS", opts.credentials), ("token", opts.token)) if on) or "plaintext"
        log.info("serving %s on %s (%s)", getattr(engine, "name", "?"), _bound(address, port), secured)
        log.debug("limits: %s; %d peer and %d control workers", opts.limits, WORKERS, CONTROL_WORKERS)
        try:
            if on_ready is not None:
                on_ready(port)
            while not stop.wait(_SIGNAL_POLL):
                pass
        finally:
            log.info("stopping %s (grace %.1fs)", getattr(engine, "name", "?"), opts.grace)
            instance.stop()
