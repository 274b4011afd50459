"""A grpc.aio server that serves one `Engine` to its peers and to the CLI.

>>> with run_server(engine) as port:              # doctest: +SKIP
...     ControlClient(f"127.0.0.1:{port}").status("job-1")

`serve_forever(engine, address)` is the blocking form behind `fedflow serve`:
it stops gracefully on SIGTERM/SIGINT (health NOT_SERVING, in-flight calls
finish within `grace`, new calls get UNAVAILABLE).

Handlers are thin: decode defensively (bad payload -> INVALID_ARGUMENT), run
the blocking engine method in a bounded thread pool, encode the answer. A
fedflow error becomes its status via `wire.status_for`; anything unexpected
is logged here and answered INTERNAL with a short message, never UNKNOWN and
never a traceback. A user function's exception is data (`RemoteFailure`).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hmac
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import errors as E
from . import wire
from .outcomes import is_suspended
from .v1 import fedflow_pb2 as pb
from .v1 import fedflow_pb2_grpc as pb_grpc

__all__ = ["run_server", "serve_forever"]

log = logging.getLogger("fedflow.server")

PEER_SERVICE = pb.DESCRIPTOR.services_by_name["PeerService"].full_name
CONTROL_SERVICE = pb.DESCRIPTOR.services_by_name["ControlService"].full_name
MAX_CONCURRENT_RPCS = 256
WORKERS = 32
PEER_PROBE_DEADLINE = 1.0


def _guard(lookup: bool = False) -> Callable:
    """Turn any exception a handler raises into a clean status (see module doc)."""
    def decorate(method: Callable) -> Callable:
        @functools.wraps(method)
        async def handler(self: _Base, request: Any, context: grpc.aio.ServicerContext) -> Any:
            try:
                return await method(self, wire.parsed(request), context)
            except grpc.aio.AbortError:
                raise
            except Exception as exc:  # every failure gets a status
                failure = exc
                code, message = wire.status_for(exc)
                if lookup and isinstance(exc, E.ReplicaError):
                    code = grpc.StatusCode.NOT_FOUND
                if code is grpc.StatusCode.INTERNAL:
                    log.exception("%s failed", method.__name__)
                else:
                    log.debug("%s: %s: %s", method.__name__, type(exc).__name__, exc)
            await context.abort(code, message, wire.trailers_for(failure))
        return handler
    return decorate


class _Base:
    def __init__(self, engine: Any, pool: ThreadPoolExecutor) -> None:
        self._engine = engine
        self._pool = pool

    async def _run(self, fn: Callable, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, functools.partial(fn, *args, **kwargs))


class PeerServicer(_Base, pb_grpc.PeerServiceServicer):
    """fedflow.v1.PeerService over one engine: calls and replicas."""

    @_guard()
    async def Call(self, request: pb.CallRequest, context: Any) -> pb.CallResponse:
        payload = wire.unpack(request.payload, "payload")
        try:
            value = await self._run(self._engine.invoke, request.fn, payload, request.call_id or None)
            return pb.CallResponse(value=wire.pack(value, "result"))
        except E.UnknownFunction:
            raise
        except Exception as exc:  # the function's own failure travels as data
            failure = pb.RemoteFailure(type=type(exc).__name__, message=str(exc))
            return pb.CallResponse(failure=failure)

    @_guard()
    async def PushReplica(self, request_iterator: Any, context: Any) -> pb.PushReplicaResponse:
        assembler = wire.ReplicaAssembler()
        async for message in request_iterator:
            assembler.add(wire.parsed(message))
        source, text = assembler.finish()
        if not source:
            raise E.ReplicaError("a replica header must name its source engine")
        flows = await self._run(self._engine.accept_replica, source, text)
        return pb.PushReplicaResponse(flows=int(flows))

    @_guard(lookup=True)
    async def FetchReplica(self, request: pb.FetchReplicaRequest, context: Any) -> None:
        text = await self._run(self._engine.replica_text, request.source)
        for part in wire.replica_parts(request.source, text):
            if isinstance(part, pb.ReplicaHeader):
                await context.write(pb.FetchReplicaResponse(header=part))
            else:
                await context.write(pb.FetchReplicaResponse(chunk=part))

    @_guard(lookup=True)
    async def Restore(self, request: pb.RestoreRequest, context: Any) -> pb.RestoreResponse:
        ids = list(request.only.ids) if request.HasField("only") else None
        restored = await self._run(self._engine.restore_local, request.source, ids)
        return pb.RestoreResponse(ids=list(restored))


class ControlServicer(_Base, pb_grpc.ControlServiceServicer):
    """fedflow.v1.ControlService: the CLI verbs, run on this instance's engine."""

    def _outcome(self, flow_id: str, value: Any) -> pb.FlowOutcome:
        if is_suspended(value):
            return pb.FlowOutcome(id=value.id, status=pb.FLOW_STATUS_SUSPENDED, tag=str(value.tag))
        return pb.FlowOutcome(id=flow_id, status=pb.FLOW_STATUS_DONE, result=wire.pack(value, "result"))

    def _status(self, flow_id: str) -> int:
        return wire.status_to_proto(self._engine.status(flow_id))

    @_guard()
    async def Start(self, request: pb.StartRequest, context: Any) -> pb.StartResponse:
        value = wire.unpack(request.input, "input")
        flow_id = request.id if request.HasField("id") else self._engine.new_id()
        outcome = await self._run(self._engine.start, request.flow, value, id=flow_id)
        return pb.StartResponse(outcome=self._outcome(flow_id, outcome))

    @_guard()
    async def Resume(self, request: pb.ResumeRequest, context: Any) -> pb.ResumeResponse:
        value = wire.unpack(request.value, "value")
        outcome = await self._run(self._engine.resume, request.id, value)
        return pb.ResumeResponse(outcome=self._outcome(request.id, outcome))

    @_guard()
    async def Cancel(self, request: pb.CancelRequest, context: Any) -> pb.CancelResponse:
        await self._run(self._engine.cancel, request.id)
        return pb.CancelResponse(id=request.id, status=await self._run(self._status, request.id))

    @_guard()
    async def Status(self, request: pb.StatusRequest, context: Any) -> pb.StatusResponse:
        return pb.StatusResponse(id=request.id, status=await self._run(self._status, request.id))

    @_guard()
    async def Result(self, request: pb.ResultRequest, context: Any) -> pb.ResultResponse:
        value = await self._run(self._engine.result, request.id)
        return pb.ResultResponse(id=request.id, result=wire.pack(value, "result"))

    @_guard()
    async def List(self, request: pb.ListRequest, context: Any) -> pb.ListResponse:
        rows = await self._run(self._engine.list)
        flows = [pb.FlowEntry(id=i, status=wire.status_to_proto(s)) for i, s in rows]
        return pb.ListResponse(flows=flows)

    @_guard()
    async def Pending(self, request: pb.PendingRequest, context: Any) -> pb.PendingResponse:
        rows = await self._run(self._engine.pending)
        return pb.PendingResponse(pending=[pb.PendingEntry(id=i, tag=str(t)) for i, t in rows])

    @_guard()
    async def Gc(self, request: pb.GcRequest, context: Any) -> pb.GcResponse:
        return pb.GcResponse(removed=int(await self._run(self._engine.gc)))

    @_guard()
    async def Forget(self, request: pb.ForgetRequest, context: Any) -> pb.ForgetResponse:
        await self._run(self._engine.forget, request.id)
        return pb.ForgetResponse(id=request.id, status=await self._run(self._status, request.id))

    @_guard()
    async def Replicate(self, request: pb.ReplicateRequest, context: Any) -> pb.ReplicateResponse:
        flows = await self._run(self._engine.replicate_to, request.peer)
        return pb.ReplicateResponse(peer=request.peer, flows=int(flows))

    @_guard()
    async def RestoreFrom(self, request: pb.RestoreFromRequest, context: Any) -> pb.RestoreFromResponse:
        source = request.source if request.HasField("source") else None
        ids = await self._run(self._engine.restore_from, request.peer, source)
        return pb.RestoreFromResponse(ids=list(ids))

    @_guard()
    async def Handoff(self, request: pb.HandoffRequest, context: Any) -> pb.HandoffResponse:
        ids = await self._run(self._engine.handoff_to, request.peer)
        return pb.HandoffResponse(peer=request.peer, ids=list(ids))

    def _probe(self, name: str) -> bool:
        try:
            return bool(self._engine.peers.get(name).health(deadline=PEER_PROBE_DEADLINE))
        except Exception:  # a peer that cannot answer is not serving
            return False

    @_guard()
    async def Peers(self, request: pb.PeersRequest, context: Any) -> pb.PeersResponse:
        peers = self._engine.peers
        names = list(await self._run(peers.names))
        serving = await asyncio.gather(*(self._run(self._probe, n) for n in names))
        infos = []
        for name, up in zip(names, serving, strict=True):
            info = pb.PeerInfo(name=name, serving=up)
            address = peers.address(name)
            if address is not None:
                info.address = address
            infos.append(info)
        return pb.PeersResponse(peers=infos)


# ------------------------------------------------------------------ auth
class TokenInterceptor(grpc.aio.ServerInterceptor):
    """Rejects every RPC but health checks that lacks `authorization: Bearer <token>`."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    def _allowed(self, details: grpc.HandlerCallDetails) -> bool:
        if details.method.startswith("/grpc.health.v1."):
            return True
        for key, value in details.invocation_metadata or ():
            if key == "authorization":
                given = value.encode() if isinstance(value, str) else value
                return hmac.compare_digest(given, self._expected)
        return False

    async def intercept_service(self, continuation: Callable, details: grpc.HandlerCallDetails) -> Any:
        """Pass allowed calls on; answer the rest UNAUTHENTICATED."""
        handler = await continuation(details)
        if handler is None or self._allowed(details):
            return handler
        return _denied(handler)


def _denied(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    async def deny(_request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                            "missing or wrong token; pass the instance's shared token (--token-file)")

    make = wire.HANDLER_KINDS[(handler.request_streaming, handler.response_streaming)]
    return make(deny, request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer)


# ------------------------------------------------------------------ lifecycle
class _Instance:
    """One started aio server with its health service and thread pool."""

    def __init__(self, engine: Any, token: str | None, tls: Any) -> None:
        if tls is not None:
            raise NotImplementedError("TLS is not supported yet; serve without --tls-* for now")
        self.engine = engine
        self.pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="fedflow-rpc")
        interceptors = [TokenInterceptor(token)] if token else None
        self.server = grpc.aio.server(options=[*wire.channel_options(), ("grpc.so_reuseport", 0)],
                                      interceptors=interceptors,
                                      maximum_concurrent_rpcs=MAX_CONCURRENT_RPCS)
        self.health = health.aio.HealthServicer()

    async def start(self, address: str) -> int:
        self.server.add_generic_rpc_handlers((
            wire.service_handler("PeerService", PeerServicer(self.engine, self.pool)),
            wire.service_handler("ControlService", ControlServicer(self.engine, self.pool))))
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        names = (PEER_SERVICE, CONTROL_SERVICE, health.SERVICE_NAME, reflection.SERVICE_NAME)
        reflection.enable_server_reflection(names, self.server)
        try:
            port = self.server.add_insecure_port(address)
        except RuntimeError as exc:
            port, why = 0, str(exc)
        else:
            why = "the address is in use or invalid"
        if not port:
            self.pool.shutdown(wait=False)
            raise OSError(f"cannot listen on {address}: {why}; pick a free HOST:PORT")
        for name in ("", PEER_SERVICE, CONTROL_SERVICE):
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        await self.server.start()
        return port

    async def stop(self, grace: float) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)
        self.pool.shutdown(wait=False, cancel_futures=True)


class _ServerThread:
    """Runs an `_Instance` on its own event loop in a daemon thread."""

    def __init__(self, engine: Any, address: str, grace: float, token: str | None, tls: Any) -> None:
        self._args = (engine, address, grace, token, tls)
        self._ready = threading.Event()
        self._port = 0
        self._error: BaseException | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._main, name="fedflow-server", daemon=True)

    def start(self) -> int:
        self._thread.start()
        self._ready.wait()
        if self._error is not None:
            raise self._error
        return self._port

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join()

    def _main(self) -> None:
        asyncio.run(self._serve())

    async def _serve(self) -> None:
        engine, address, grace, token, tls = self._args
        try:
            instance = _Instance(engine, token, tls)
            self._port = await instance.start(address)
        except BaseException as exc:  # handed to the starting thread
            self._error = exc
            self._ready.set()
            return
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self._ready.set()
        await self._stop.wait()
        await instance.stop(grace)


@contextlib.contextmanager
def run_server(engine: Any, address: str = "127.0.0.1:0", *, grace: float = 5.0,
               token: str | None = None, tls: Any = None) -> Iterator[int]:
    """Serve `engine` on `address` from a background thread; yields the bound port.

    On exit: health NOT_SERVING, in-flight calls get `grace` seconds, then stop.
    With `token`, every RPC but health checks needs `authorization: Bearer <token>`."""
    runner = _ServerThread(engine, address, grace, token, tls)
    port = runner.start()
    try:
        yield port
    finally:
        runner.stop()


def _bound(address: str, port: int) -> str:
    host = address.rsplit(":", 1)[0] if ":" in address else address
    return f"{host}:{port}"


async def _serve_until_signal(engine: Any, address: str, grace: float, token: str | None, tls: Any,
                              on_ready: Callable[[int], Any] | None) -> None:
    instance = _Instance(engine, token, tls)
    port = await instance.start(address)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
    log.info("serving %s on %s", getattr(engine, "name", "?"), _bound(address, port))
    try:
        if on_ready is not None:
            on_ready(port)
        await stop.wait()
    finally:
        log.info("stopping %s (grace %.1fs)", getattr(engine, "name", "?"), grace)
        await instance.stop(grace)


def serve_forever(engine: Any, address: str, *, grace: float = 5.0, token: str | None = None,
                  tls: Any = None, on_ready: Callable[[int], Any] | None = None) -> None:
    """Serve `engine` on `address` until SIGTERM/SIGINT, then stop gracefully.

    `on_ready(port)` runs once the server listens. Raises OSError when the
    address cannot be bound."""
    asyncio.run(_serve_until_signal(engine, address, grace, token, tls, on_ready))
