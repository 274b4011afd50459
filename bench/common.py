"""Shared helpers for the benchmarks: statistics, timing, temp dirs and child processes.

Child processes are always started in their own process group on 127.0.0.1,
waited for with a bounded deadline, and killed (group-wide) on the way out.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
READY_TIMEOUT = 30.0
STOP_TIMEOUT = 5.0


# ------------------------------------------------------------------ statistics
def median(samples: Sequence[float]) -> float:
    """The median of `samples` (0.0 when empty)."""
    return float(statistics.median(samples)) if samples else 0.0


def percentile(samples: Sequence[float], pct: float) -> float:
    """The `pct` percentile (0..100) of `samples`, nearest-rank on the sorted values."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered) + 0.5) - 1))
    return float(ordered[rank])


def latency_ms(samples_s: Sequence[float]) -> dict[str, float]:
    """p50 and p99 of latencies given in seconds, in milliseconds."""
    return {"p50": percentile(samples_s, 50) * 1e3, "p99": percentile(samples_s, 99) * 1e3}


def median_of(runs: Sequence[dict[str, float]]) -> dict[str, float]:
    """Key-wise median over repeats that each produced the same keys."""
    return {key: median([run[key] for run in runs]) for key in runs[0]} if runs else {}


def repeat(times: int, measure: Callable[[], dict[str, float]]) -> dict[str, float]:
    """Run `measure` `times` times; the key-wise median of its results."""
    return median_of([measure() for _ in range(times)])


def timed(fn: Callable[[], Any]) -> float:
    """Seconds `fn()` took."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def ratio(num: float, den: float) -> float:
    """num / den, or 0.0 when den is 0 (a missing baseline)."""
    return num / den if den else 0.0


# ------------------------------------------------------------------ files
@contextlib.contextmanager
def scratch_dir(prefix: str = "fedflow-bench-") -> Iterator[Path]:
    """A temporary directory, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix=prefix) as path:
        yield Path(path)


def file_size(path: Path) -> int:
    """Bytes of a SQLite file plus its -wal file, if any."""
    return sum(p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists())


# ------------------------------------------------------------------ child processes
def free_port() -> int:
    """A port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def child_env() -> dict[str, str]:
    """The environment for child processes: this repo first on PYTHONPATH."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


class Child:
    """A child process in its own process group; its stderr goes to a log file."""

    def __init__(self, argv: Sequence[str], log_dir: Path, name: str) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL,
                                     env=child_env(), cwd=str(log_dir), start_new_session=True)

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.proc.pid

    def read_line(self, timeout: float = READY_TIMEOUT) -> str:
        """The next line the child prints on stdout, waiting at most `timeout` seconds."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            while time.monotonic() < deadline:
                if sel.select(timeout=min(0.2, max(0.0, deadline - time.monotonic()))):
                    line = self.proc.stdout.readline().decode().strip()
                    if line:
                        return line
                if self.proc.poll() is not None:
                    break
        raise RuntimeError(f"child {self.name} printed nothing within {timeout:g}s "
                           f"(exit {self.proc.poll()}); see {self.log_path}:\n{self.tail()}")

    def tail(self, chars: int = 2000) -> str:
        """The end of the child's log."""
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-chars:]

    def stop(self) -> None:
        """SIGTERM the process group, then SIGKILL it if it has not gone within STOP_TIMEOUT."""
        for sig, wait in ((signal.SIGTERM, STOP_TIMEOUT), (signal.SIGKILL, STOP_TIMEOUT)):
            if self.proc.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(wait)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # stragglers left in the group
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._log.close()


@contextlib.contextmanager
def child(argv: Sequence[str], log_dir: Path, name: str) -> Iterator[Child]:
    """Start a child (see `Child`); always stopped on exit."""
    proc = Child(argv, log_dir, name)
    try:
        yield proc
    finally:
        proc.stop()


def python_argv(script: str, *args: str) -> list[str]:
    """argv running bench/`script` with this interpreter."""
    return [sys.executable, str(BENCH / script), *args]


def json_child(argv: Sequence[str], cwd: str, what: str, timeout: float = 300.0) -> dict[str, Any]:
    """Run `argv` to its end (bounded, own session) and read the last JSON line it prints;
    RuntimeError naming `what`, with the end of its stderr, when it fails."""
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, env=child_env(), cwd=cwd,
                          start_new_session=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"bench-peers: {what} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1])


def vm_rss_mb(pid: int) -> float:
    """VmRSS of process `pid` in MiB, from /proc/PID/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `check` every 50 ms until it is true; RuntimeError naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")


def throughput(call: Callable[[], Any], callers: int, per_caller: int) -> float:
    """Calls/s of `callers` threads making `per_caller` calls each, all at once."""
    barrier = threading.Barrier(callers + 1)
    errors: list[BaseException] = []

    def worker() -> None:
        barrier.wait()
        try:
            for _ in range(per_caller):
                call()
        except BaseException as exc:  # reported below, not lost in the thread
            errors.append(exc)

    threads = [threading.Thread(target=worker, name=f"bench-caller-{i}") for i in range(callers)]
    for thread in threads:
        thread.start()
    barrier.wait()
    begin = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - begin
    if errors:
        raise RuntimeError(f"{len(errors)} caller(s) failed: {errors[0]!r}") from errors[0]
    return callers * per_caller / elapsed
