"""Helpers for the command-line tests (no tests here): run the CLI, start `fedflow serve`.

Servers run on free 127.0.0.1 ports in their own process groups; readiness
is a bounded wait on the health service; `ServerPool.stop_all` kills every
process it started (use it from a fixture's teardown).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from fedflow.client import ControlClient

REPO = Path(__file__).resolve().parent.parent
PEERS = REPO / "peers"
FEDFLOW = [sys.executable, "-m", "fedflow"]


def free_ports(count: int) -> list[int]:
    """`count` distinct ports that were free a moment ago."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


def run_cli(args: list[Any], *, env: dict[str, str] | None = None, timeout: float = 60.0,
            cwd: str | os.PathLike[str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run `python -m fedflow ARGS`; the completed process (text)."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([*FEDFLOW, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env=full_env, cwd=cwd, stdin=subprocess.DEVNULL)


def describe(cp: subprocess.CompletedProcess[str]) -> str:
    """The exit status and output of a finished command, for assertion messages."""
    return f"rc={cp.returncode} stdout={cp.stdout[-1500:]!r} stderr={cp.stderr[-1500:]!r}"


def cli_json(args: list[Any], **kwargs: Any) -> dict[str, Any]:
    """Run a client command that must succeed; its stdout as ONE JSON object."""
    cp = run_cli(args, **kwargs)
    assert cp.returncode == 0, describe(cp)
    assert cp.stdout.count("\n") == 1, describe(cp)
    out = json.loads(cp.stdout)
    assert isinstance(out, dict), describe(cp)
    return out


def assert_one_line_error(cp: subprocess.CompletedProcess[str], rc: int, *needles: str, logs: bool = False) -> str:
    """The command failed with `rc`, nothing on stdout, one error line on stderr (no traceback)
    naming `needles`; with `logs` (serve), log lines may come before that last line."""
    assert cp.returncode == rc, describe(cp)
    assert cp.stdout == "", describe(cp)
    lines = cp.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("fedflow")]
    assert lines and "Traceback" not in cp.stderr, describe(cp)
    assert errors == lines[-1:] and (logs or len(lines) == 1), describe(cp)
    for needle in needles:
        assert needle in lines[-1], describe(cp)
    return lines[-1]


class Server:
    """One `fedflow serve` process."""

    def __init__(self, name: str, addr: str, proc: subprocess.Popen[bytes], log_path: Path) -> None:
        self.name, self.addr, self.proc, self.log_path = name, addr, proc, log_path

    def log(self) -> str:
        """Everything the server wrote so far."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


class ServerPool:
    """Starts `fedflow serve` processes and guarantees they are killed."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = Path(workdir)
        self.servers: list[Server] = []

    def start(self, name: str, *, port: int | None = None, db: Path | None = None, load: tuple[Any, ...] = (),
              peers: dict[str, str] | None = None, extra: tuple[str, ...] = (), env: dict[str, str] | None = None,
              wait: bool = True) -> Server:
        """Start `fedflow serve --name NAME` (by default on a free port with NAME.db in the workdir)."""
        addr = f"127.0.0.1:{port or free_ports(1)[0]}"
        args = ["serve", "--name", name, "--listen", addr, "--db", str(db or self.workdir / f"{name}.db")]
        for target in load:
            args += ["--load", str(target)]
        for peer, peer_addr in (peers or {}).items():
            args += ["--peer", f"{peer}={peer_addr}"]
        return self.spawn(name, addr, [*args, *extra], env=env, wait=wait)

    def spawn(self, name: str, addr: str, args: list[str], *, env: dict[str, str] | None = None,
              wait: bool = True) -> Server:
        """Start `python -m fedflow ARGS` as server `name` expected at `addr`."""
        log_path = self.workdir / f"serve-{name}-{len(self.servers)}.log"
        with open(log_path, "wb") as log:
            proc = subprocess.Popen([*FEDFLOW, *args], stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, cwd=self.workdir, start_new_session=True,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
        server = Server(name, addr, proc, log_path)
        self.servers.append(server)
        if wait:
            self.wait_ready(server)
        return server

    def wait_ready(self, server: Server, timeout: float = 20.0) -> None:
        """Bounded wait until `server` answers its health check SERVING."""
        end = time.monotonic() + timeout
        with ControlClient(server.addr, deadline=1.0) as client:
            while not client.health():
                assert server.proc.poll() is None, f"{server.name} exited {server.proc.returncode}:\n{server.log()}"
                assert time.monotonic() < end, f"{server.name} not ready after {timeout}s:\n{server.log()}"
                time.sleep(0.05)

    def kill9(self, server: Server) -> None:
        """Crash `server`: SIGKILL its process group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(server.proc.pid, signal.SIGKILL)
        server.proc.wait(timeout=10)

    def stop(self, server: Server, timeout: float = 10.0) -> int:
        """SIGTERM `server`, SIGKILL after `timeout`; its exit status."""
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
            try:
                server.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9(server)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(server.proc.pid, signal.SIGKILL)  # anything it left behind
        return server.proc.returncode

    def stop_all(self) -> None:
        """Stop every server this pool started."""
        for server in reversed(self.servers):
            try:
                self.stop(server, timeout=5.0)
            except Exception:  # teardown must reach every server
                with contextlib.suppress(Exception):
                    os.killpg(server.proc.pid, signal.SIGKILL)
