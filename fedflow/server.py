"""A grpc.aio server that serves one `Engine` to its peers and to the CLI.

>>> with run_server(engine) as port:              # doctest: +SKIP
...     ControlClient(f"127.0.0.1:{port}").status("job-1")

`serve_forever(engine, address)` is the blocking form behind `fedflow serve`:
it stops gracefully on SIGTERM/SIGINT (health NOT_SERVING, in-flight calls
finish within `grace`, new calls get UNAVAILABLE).

Both take the same security and limits (see `fedflow.security`, `fedflow.limits`):

- `token`: every RPC but `grpc.health.v1` needs `authorization: Bearer <token>`
  (reflection included), else UNAUTHENTICATED;
- `tls`: a `TlsConfig` (or an object with cert/key/ca paths): the port speaks
  only TLS and requires client certificates signed by its CA;
- `limits`: maximum message size (both directions), concurrent RPCs (past it:
  RESOURCE_EXHAUSTED) and replica size.

The servicers themselves live in `fedflow.servicers`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import security, wire
from .limits import DEFAULT_LIMITS, Limits
from .servicers import ControlServicer, PeerServicer

__all__ = ["run_server", "serve_forever"]

log = logging.getLogger("fedflow.server")

PEER_SERVICE, CONTROL_SERVICE = wire.PEER_SERVICE, wire.CONTROL_SERVICE
WORKERS = 32
#: Threads for the control verbs (start/resume run flows; the rest are quick store reads).
CONTROL_WORKERS = 8


# ------------------------------------------------------------------ lifecycle
class _Options:
    """What a server is started with, checked (and TLS files read) before it binds."""

    def __init__(self, grace: float, token: str | None, tls: Any, limits: Limits | None) -> None:
        self.grace = grace
        self.token = token
        self.limits = limits if limits is not None else DEFAULT_LIMITS
        self.credentials = security.server_credentials(tls) if security.tls_config(tls) else None


class _Instance:
    """One started aio server with its health service and thread pools: peer calls run user
    functions that may block, so the control verbs (status, list, ...) get a pool of their own."""

    def __init__(self, engine: Any, opts: _Options) -> None:
        self.engine = engine
        self.opts = opts
        self.peer_pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="fedflow-peer")
        self.control_pool = ThreadPoolExecutor(max_workers=CONTROL_WORKERS, thread_name_prefix="fedflow-control")
        interceptors = [security.TokenInterceptor(opts.token)] if opts.token else None
        self.server = grpc.aio.server(options=[*wire.channel_options(opts.limits), ("grpc.so_reuseport", 0)],
                                      interceptors=interceptors,
                                      maximum_concurrent_rpcs=opts.limits.max_concurrent_rpcs)
        self.health = health.aio.HealthServicer()

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
            self._shutdown_pools()
            raise OSError(f"cannot listen on {address}: {why}; pick a free HOST:PORT")
        return port

    async def start(self, address: str) -> int:
        """Register the services, bind `address`, go SERVING; the bound port."""
        limits = self.opts.limits
        self.server.add_generic_rpc_handlers((
            wire.service_handler("PeerService", PeerServicer(self.engine, self.peer_pool, limits)),
            wire.service_handler("ControlService", ControlServicer(self.engine, self.control_pool, limits))))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = (PEER_SERVICE, CONTROL_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, self.server)
        port = self._bind(address)
        for name in ("", PEER_SERVICE, CONTROL_SERVICE):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        await self.server.start()
        return port

    async def stop(self) -> None:
        """NOT_SERVING, let in-flight calls finish within the grace period, stop."""
        await self.health.enter_graceful_shutdown()
        await self.server.stop(self.opts.grace)
        self._shutdown_pools()

    def _shutdown_pools(self) -> None:
        for pool in (self.peer_pool, self.control_pool):
            pool.shutdown(wait=False, cancel_futures=True)


class _ServerThread:
    """Runs an `_Instance` on its own event loop in a daemon thread."""

    def __init__(self, engine: Any, address: str, opts: _Options) -> None:
        self._args = (engine, address, opts)
        self._ready = threading.Event()
        self._port = 0
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="fedflow-server", daemon=True)

    def start(self) -> int:
        """Start the thread and wait until the server listens (or failed to); the port."""
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self._port

    def stop(self) -> None:
        """Ask the server to stop gracefully and wait for its thread."""
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        engine, address, opts = self._args
        try:
            instance = _Instance(engine, opts)
            self._port = await instance.start(address)
        except BaseException as exc:  # handed to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await instance.stop()


@contextlib.contextmanager
def run_server(engine: Any, address: str = "127.0.0.1:0", *, grace: float = 5.0, token: str | None = None,
               tls: Any = None, limits: Limits | None = None) -> Iterator[int]:
    """Serve `engine` on `address` from a background thread; yields the bound port.

    On exit: health NOT_SERVING, in-flight calls get `grace` seconds, then stop.
    `token`, `tls` and `limits` as in the module doc."""
    runner = _ServerThread(engine, address, _Options(grace, token, tls, limits))
    port = runner.start()
    try:
        yield port
    finally:
        runner.stop()


def _bound(address: str, port: int) -> str:
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return f"{host}:{port}"


async def _serve_until_signal(engine: Any, address: str, opts: _Options,
                              on_ready: Callable[[int], Any] | None) -> None:
    instance = _Instance(engine, opts)
    port = await instance.start(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    secured = ", ".join(w for w, on in (("mTLS", opts.credentials), ("token", opts.token)) if on) or "plaintext"
    log.info("serving %s on %s (%s)", getattr(engine, "name", "?"), _bound(address, port), secured)
    try:
        if on_ready is not None:
            on_ready(port)
        await stop.wait()
    finally:
        log.info("stopping %s (grace %.1fs)", getattr(engine, "name", "?"), opts.grace)
        await instance.stop()


def serve_forever(engine: Any, address: str, *, grace: float = 5.0, token: str | None = None, tls: Any = None,
                  limits: Limits | None = None, on_ready: Callable[[int], Any] | None = None) -> None:
    """Serve `engine` on `address` until SIGTERM/SIGINT, then stop gracefully.

    `on_ready(port)` runs once the server listens. Raises OSError when the
    address cannot be bound, FedflowError when the TLS files are unusable."""
    asyncio.run(_serve_until_signal(engine, address, _Options(grace, token, tls, limits), on_ready))
