"""`make demo` (python -m fedflow.cli.demo) end to end, its cleanup, and the runnable peer example."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def processes_mentioning(text: str) -> list[int]:
    """Pids of live processes whose command line contains `text`."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


def demo(tmp_path: Path) -> subprocess.Popen[str]:
    """Start the demo with its temporary folder under `tmp_path` (so its servers are findable)."""
    env = {**os.environ, "TMPDIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "fedflow.cli.demo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=tmp_path, start_new_session=True)


def read_until(proc: subprocess.Popen[str], word: str, timeout: float = 60.0) -> str:
    """Stdout lines of `proc` up to the first one starting with `word` (bounded)."""
    seen = ""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if sel.select(timeout=0.5):
            line = proc.stdout.readline()
            seen += line
            if line.startswith(word) or not line:
                return seen
    raise AssertionError(f"no {word!r} line within {timeout}s: {seen!r}")


def test_demo_tells_the_whole_story_and_stops_its_peers(tmp_path: Path) -> None:
    proc = demo(tmp_path)
    try:
        out, err = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, f"{out}\n{err}"
    steps = [line.split()[0] for line in out.splitlines()[1:]]
    assert steps == ["federation", "remote", "failover", "replicate", "restore", "handoff", "timer", "schedule",
                     "done"], out
    assert "published by c" in out and "backup b checked it" in out and "inv-42" in out
    assert processes_mentioning(str(tmp_path)) == []


def test_demo_stops_every_peer_on_ctrl_c(tmp_path: Path) -> None:
    proc = demo(tmp_path)
    try:
        read_until(proc, "federation")
        assert len(processes_mentioning(str(tmp_path))) == 3
        proc.send_signal(signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130 and "interrupted" in err and "Traceback" not in err, err
    assert processes_mentioning(str(tmp_path)) == []


def test_pipeline_example_runs_as_a_script() -> None:
    cp = subprocess.run([sys.executable, str(REPO / "peers" / "pipeline.py")], capture_output=True, text=True,
                        timeout=60)
    assert cp.returncode == 0, cp.stderr
    assert "post-1 is done" in cp.stdout and "Fail('rejected in review: off topic')" in cp.stdout
