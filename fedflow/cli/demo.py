"""`make demo`: three fedflow peers on loopback, and what they do, in a few lines.

Starts ``fedflow serve`` three times (peers a, b and c from
peers/federation/*.toml, on free 127.0.0.1 ports, with temporary stores),
waits for their health checks, then shows: a remote call; a failover past
a peer that is down; a flow suspended on a, replicated to b, a stopped,
restored on c and resumed there by id; a handoff from b to c; and on c, a
durable timer fired by `wake` and a schedule that ticks by itself. Every
process it started is stopped at the end, on error and on Ctrl-C too.

Run it with ``make demo`` or ``python -m fedflow.cli.demo``; exit 0 when the
story checks out, 1 with one line saying what went wrong otherwise.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

from ..client import ControlClient
from ..errors import FedflowError, FlowMoved
from .config import load_file, parse_address
from .verbs import to_json

__all__ = ["DemoError", "Federation", "main", "run"]

PEERS_DIR = Path(__file__).resolve().parents[2] / "peers"
NAMES = ("a", "b", "c")
READY_TIMEOUT = 30.0


class DemoError(Exception):
    """Raised when the demo cannot start its peers or a step does not turn out as it should."""


def _free_ports(count: int) -> list[int]:
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in socks]


class Federation:
    """The demo's three `fedflow serve` processes: started, probed, and always stopped."""

    def __init__(self, workdir: str, peers_dir: Path = PEERS_DIR) -> None:
        self.workdir = workdir
        self.configs = {n: peers_dir / "federation" / f"{n}.toml" for n in NAMES}
        missing = [str(p) for p in self.configs.values() if not p.is_file()]
        if missing:
            raise DemoError(f"missing {', '.join(missing)}; run the demo from a fedflow clone (make demo)")
        ports = _free_ports(len(NAMES) + 1)
        self.address = {n: f"127.0.0.1:{p}" for n, p in zip(NAMES, ports, strict=False)}
        self.down = f"127.0.0.1:{ports[-1]}"  # nobody will listen here
        self._port_map = {parse_address(load_file(str(self.configs[n]))["listen"])[1]: self.address[n]
                          for n in NAMES}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def _peer_flags(self, name: str) -> list[str]:
        flags = []
        for spec in load_file(str(self.configs[name])).get("peers", []):
            port = parse_address(spec.address)[1]
            flags += ["--peer", f"{spec.name}={self._port_map.get(port, self.down)}"]
        return flags

    def log_path(self, name: str) -> str:
        """Where the server `name` writes its log."""
        return os.path.join(self.workdir, f"{name}.log")

    def start(self, name: str) -> None:
        """Start `fedflow serve` for peer `name` in its own process group."""
        args = [sys.executable, "-m", "fedflow", "serve", "--config", str(self.configs[name]),
                "--listen", self.address[name], "--db", os.path.join(self.workdir, f"{name}.db"),
                *self._peer_flags(name)]
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        with open(self.log_path(name), "ab") as log:
            self.procs[name] = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                                cwd=self.workdir, env=env, start_new_session=True)

    def wait_ready(self, name: str, timeout: float = READY_TIMEOUT) -> None:
        """Wait (bounded) until peer `name` answers its health check SERVING."""
        end = time.monotonic() + timeout
        with ControlClient(self.address[name], deadline=1.0) as client:
            while not client.health():
                if self.procs[name].poll() is not None:
                    raise DemoError(f"peer {name} exited with status {self.procs[name].returncode}: "
                                    f"{self.log_tail(name)}")
                if time.monotonic() > end:
                    raise DemoError(f"peer {name} was not serving after {timeout:g}s: {self.log_tail(name)}")
                time.sleep(0.1)

    def log_tail(self, name: str) -> str:
        """The last line of peer `name`'s log."""
        try:
            lines = Path(self.log_path(name)).read_text(errors="replace").strip().splitlines()
        except OSError:
            return "(no log)"
        return lines[-1] if lines else "(empty log)"

    def stop(self, name: str, timeout: float = 10.0) -> None:
        """SIGTERM peer `name`'s process group; SIGKILL it if it has not exited after `timeout`."""
        proc = self.procs.get(name)
        if proc is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, sig)
            try:
                proc.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue

    def stop_all(self) -> None:
        """Stop every process this demo started; Ctrl-C and SIGTERM wait until that is done."""
        previous = {sig: signal.signal(sig, signal.SIG_IGN) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            for name in reversed(list(self.procs)):
                self.stop(name)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    @contextlib.contextmanager
    def client(self, name: str) -> Iterator[ControlClient]:
        """A control client for peer `name`."""
        with ControlClient(self.address[name], deadline=30.0) as client:
            yield client


def _expect(condition: bool, what: str) -> None:
    if not condition:
        raise DemoError(what)


def _show(step: str, text: str) -> None:
    print(f"{step:<11} {text}", flush=True)


def _remote_call(fed: Federation) -> None:
    with fed.client("a") as a:
        out = a.start("publish", "hello")
    result = out.get("result") or {}
    _expect(out["status"] == "done" and result.get("by") == "c", f"publish on a did not reach c: {out}")
    _show("remote", f"a ran flow publish(\"hello\"); its remote_node(\"fed\", \"publish\") ran on c "
                    f"-> {result['published']!r} published by {result['by']}")


def _failover(fed: Federation) -> None:
    began = time.monotonic()
    with fed.client("a") as a:
        out = a.start("approval", "invoice 42", flow_id="inv-42")
    _expect(out.get("tag") == "approve", f"approval did not suspend on 'approve': {out}")
    _show("failover", f"a started approval inv-42: peer checker ({fed.down}) is down, so backup b "
                      f"checked it ({time.monotonic() - began:.1f}s); inv-42 waits on \"approve\"")


def _replicate_restore_resume(fed: Federation) -> None:
    with fed.client("a") as a:
        pushed = a.replicate("b")["flows"]
    fed.stop("a")
    _show("replicate", f"a pushed its store ({pushed} flows) to b, then a was stopped")
    with fed.client("c") as c:
        ids = c.restore("b", source="a")["ids"]
        _expect("inv-42" in ids, f"c did not restore inv-42 from b: {ids}")
        out = c.resume("inv-42", True)
    result = out.get("result") or {}
    _expect(out["status"] == "done" and result.get("checked_by") == "b", f"resume on c went wrong: {out}")
    _show("restore", f"c restored {len(ids)} flows of a from b's replica and resumed inv-42 by id "
                     f"-> approved: {to_json(result['approved'])}, checked by {result['checked_by']} "
                     f"(journaled: not checked again)")


def _handoff(fed: Federation) -> None:
    with fed.client("b") as b, fed.client("c") as c:
        b.start("approval", "invoice 43", flow_id="inv-43")
        moved = b.handoff("c")["ids"]
        _expect(moved == ["inv-43"] and b.status("inv-43")["status"] == "moved", f"handoff went wrong: {moved}")
        try:
            b.resume("inv-43", True)
            raise DemoError("b resumed inv-43 after handing it off")
        except FlowMoved:
            pass
        out = c.resume("inv-43", True)
    _expect(out["status"] == "done", f"resume of inv-43 on c went wrong: {out}")
    _show("handoff", f"b handed inv-43 to c (b now refuses it: moved); c resumed it -> {to_json(out['result'])}")


def _time(fed: Federation) -> None:
    """A durable timer (peers/onboarding.py on c) fired by `wake`, and a schedule ticking by itself."""
    with fed.client("c") as c:
        c.start("signup", "demo@example.com", flow_id="signup-demo")
        sleeping = c.resume("signup-demo", True)
        [timer] = [t for t in c.timers()["timers"] if t["id"] == "signup-demo"]
        _expect(sleeping.get("tag") == timer["tag"], f"signup-demo is not sleeping: {sleeping}")
        out = c.wake("signup-demo")
        _expect(out["status"] == "done" and (out.get("result") or {}).get("onboarded") is True,
                f"wake of signup-demo went wrong: {out}")
        until = time.strftime("%Y-%m-%d", time.gmtime(timer["wake_at"]))
        _show("timer", f"c: signup-demo confirmed, then slept until {until} (a row in the store, not a "
                       f"thread); `fedflow wake` fired it -> onboarded")
        c.schedule("demo-tick", "nightly-report", {"demo": True}, every=0.5)
        end = time.monotonic() + READY_TIMEOUT
        ticks: list[str] = []
        while not ticks and time.monotonic() < end:
            ticks = [f["id"] for f in c.list()["flows"] if f["id"].startswith("demo-tick@")]
            time.sleep(0.05)
        c.unschedule("demo-tick")
    _expect(bool(ticks), "schedule demo-tick never ticked")
    _show("schedule", f"c: schedule demo-tick (every 0.5 s) started {ticks[0]} by itself, then was removed")


def run(workdir: str) -> None:
    """Start the three peers in `workdir`, tell the story, stop them; DemoError when a step fails."""
    fed = Federation(workdir)
    try:
        for name in NAMES:
            fed.start(name)
        for name in NAMES:
            fed.wait_ready(name)
        _show("federation", "  ".join(f"{n}={fed.address[n]}" for n in NAMES) + f"  (checker {fed.down} is down)")
        for step in (_remote_call, _failover, _replicate_restore_resume, _handoff, _time):
            step(fed)
    except FedflowError as exc:
        tails = "; ".join(f"{n}: {fed.log_tail(n)}" for n in fed.procs)
        raise DemoError(f"{type(exc).__name__}: {exc} (last log lines: {tails})") from exc
    finally:
        fed.stop_all()
    _show("done", "stopped every peer the demo started")


def _terminate(signum: int, _frame: FrameType | None) -> Any:
    raise KeyboardInterrupt(f"signal {signum}")


def main() -> int:
    """Run the demo in a temporary folder; the exit status."""
    signal.signal(signal.SIGTERM, _terminate)
    print("fedflow demo: three peers on loopback (peers/federation/*.toml)", flush=True)
    with tempfile.TemporaryDirectory(prefix="fedflow-demo-") as workdir:
        try:
            run(workdir)
        except KeyboardInterrupt:
            print("demo interrupted; every peer it started was stopped", file=sys.stderr)
            return 130
        except (DemoError, FedflowError, OSError) as exc:
            print(f"demo failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
