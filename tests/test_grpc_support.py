"""Helpers for the gRPC hardening tests (no tests here): certificates, raw calls,
child server processes that are always killed.

Import as `from test_grpc_support import ...` (tests/ on sys.path), falling
back to `tests.test_grpc_support` when tests/ is imported as a package.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import grpc

from fedflow import errors
from fedflow.cli import certs
from fedflow.grpc.security import TlsConfig
from fedflow.grpc.status import error_for, status_for, trailers_for
from fedflow.v1 import fedflow_pb2 as pb

ROOT = Path(__file__).resolve().parent.parent
SERVICES = [pb.DESCRIPTOR.services_by_name[name] for name in ("PeerService", "ControlService")]
METHODS = [(service.full_name, method) for service in SERVICES for method in service.methods]
REFLECTION = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"


# ------------------------------------------------------------------ statuses without a server
class FakeRpcError(grpc.RpcError):
    """What a client sees: a code, details and trailing metadata."""

    def __init__(self, code: grpc.StatusCode, details: str, trailers: tuple = ()) -> None:
        super().__init__(details)
        self._code, self._details, self._trailers = code, details, trailers

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details

    def trailing_metadata(self) -> tuple:
        return self._trailers


def over_the_wire(exc: Exception, peer: str = "p") -> errors.FedflowError:
    """Map `exc` to a status as the server does, then back as the client does."""
    code, message = status_for(exc)
    return error_for(FakeRpcError(code, message, trailers_for(exc)), peer)


# ------------------------------------------------------------------ certificates
def make_certs(folder: Path, *names: str) -> Path:
    """A CA and one certificate per name in `folder` (via fedflow.certs, i.e. openssl); the folder."""
    return certs.make_certs(folder, list(names))


def tls_for(folder: Path, name: str, ca_folder: Path | None = None) -> TlsConfig:
    """`name`'s certificate and key from `folder`, trusting the CA of `ca_folder` (default: the same)."""
    return TlsConfig.from_files(str(folder / f"{name}.pem"), str(folder / f"{name}.key"),
                                str((ca_folder or folder) / "ca.pem"))


# ------------------------------------------------------------------ raw calls
def raw_callable(channel: grpc.Channel, path: str, client_streaming: bool, server_streaming: bool) -> Any:
    """A multi-callable for `path` that sends and returns raw bytes."""
    kind = {(False, False): channel.unary_unary, (False, True): channel.unary_stream,
            (True, False): channel.stream_unary, (True, True): channel.stream_stream}
    return kind[(client_streaming, server_streaming)](path, request_serializer=None, response_deserializer=None)


def call_raw(channel: grpc.Channel, service: str, method: Any, messages: list[bytes], *,
             metadata: Iterable[tuple[str, str]] = (), timeout: float = 5.0) -> grpc.RpcError | None:
    """Send `messages` (one, for a unary request) to `method` as raw bytes; the RpcError, or None on OK."""
    stub = raw_callable(channel, f"/{service}/{method.name}", method.client_streaming, method.server_streaming)
    request: Any = iter(messages) if method.client_streaming else messages[0]
    try:
        answer = stub(request, timeout=timeout, metadata=tuple(metadata))
        if method.server_streaming:
            list(answer)
    except grpc.RpcError as exc:
        return exc
    return None


def reflection_call(channel: grpc.Channel, metadata: Iterable[tuple[str, str]] = ()) -> grpc.RpcError | None:
    """List services through server reflection; the RpcError, or None on OK."""
    from grpc_reflection.v1alpha import reflection_pb2

    stub = raw_callable(channel, REFLECTION, True, True)
    request = reflection_pb2.ServerReflectionRequest(list_services="").SerializeToString()
    try:
        list(stub(iter([request]), timeout=5, metadata=tuple(metadata)))
    except grpc.RpcError as exc:
        return exc
    return None


# ------------------------------------------------------------------ child processes
class Child:
    """A Python child process that prints its port on its first stdout line; killed on `stop`."""

    def __init__(self, script: str, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.script, self.args, self.log = script, args, log
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> Child:
        """Start it and wait (bounded) for its port."""
        with open(self.log, "ab") as err:
            self.proc = subprocess.Popen([sys.executable, "-c", self.script, *self.args], stdout=subprocess.PIPE,
                                         stderr=err, stdin=subprocess.DEVNULL, env=self.env,
                                         start_new_session=True)
        line = read_line(self.proc, timeout)
        if not line.strip().isdigit():
            self.kill()
            raise AssertionError(f"child did not report a port: {line!r}; log:\n{self.log.read_text()[-3000:]}")
        self.port = int(line)
        return self

    def kill(self) -> None:
        """SIGKILL the child (and its group) and reap it."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self.proc = None


def read_line(proc: subprocess.Popen[bytes], timeout: float) -> str:
    """The first stdout line of `proc`, or "" if none came within `timeout` seconds."""
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(proc.stdout.readline().decode()), daemon=True)
    reader.start()
    reader.join(timeout)
    return box[0] if box else ""


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` until true; AssertionError naming `what` after `timeout` seconds."""
    end = time.monotonic() + timeout
    while not check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)
