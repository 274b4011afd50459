"""Timers across a real ``kill -9``: a timer fires exactly once, also when the process dies.

The parent runs this file as a child process (``python test_timer_kill9.py DB WORK GEN HOLD``)
that opens an Engine on a SQLite file with the system clock. Its flow runs step ``a``,
sleeps, then steps ``b`` and ``c``, each writing a line to ``effects`` before it returns;
with HOLD, step ``c`` says ``held`` and waits to be killed. The parent SIGKILLs it there
(or while the flow sleeps), starts a new generation and checks what ran how often.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from support import note

REPO = Path(__file__).resolve().parents[1]
FLOW = "timer-kill9-test-flow"
NAP = 0.3


def lines(path: Path) -> list[str]:
    """The lines of `path` (none if it does not exist yet)."""
    return path.read_text().splitlines() if path.exists() else []


# -- the child ------------------------------------------------------------------------

def child(db: str, work: Path, gen: int, hold: bool) -> None:
    """Open the store (recovering), start the flow in generation 0, run until it is done."""
    import fedflow
    from fedflow import node, sequence, step

    def effect(name: str):
        def run(x: object) -> object:
            note(work / "effects", name)
            if name == "c" and hold:
                note(work / "signals", f"held {gen}")
                time.sleep(120)  # the parent kills us here
            return x
        run.__qualname__ = name
        return step(run)

    fedflow.defflow(FLOW, sequence(effect("a"), node(lambda x: fedflow.sleep(NAP) or x), effect("b"), effect("c")))
    with fedflow.Engine(name="kill9", store=db) as engine:
        if gen == 0:
            engine.start(FLOW, "x", id="f")
            note(work / "signals", "started")
        deadline = time.monotonic() + 60
        while engine.status("f") != "done" and time.monotonic() < deadline:
            time.sleep(0.01)
        note(work / "signals", f"{engine.status('f')} {gen}")


# -- the parent -----------------------------------------------------------------------

def spawn(db: Path, work: Path, gen: int, hold: bool) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with (work / f"stderr-{gen}").open("wb") as stderr:
        return subprocess.Popen([sys.executable, __file__, str(db), str(work), str(gen), str(int(hold))],
                                env=env, stdout=subprocess.DEVNULL, stderr=stderr)


def wait_for(proc: subprocess.Popen, work: Path, line: str, gen: int) -> None:
    """Poll the signals file until it has `line` (bounded; fails if the child dies first)."""
    deadline = time.monotonic() + 60
    while line not in lines(work / "signals"):
        if proc.poll() is not None and line not in lines(work / "signals"):
            pytest.fail(f"child {gen} exited {proc.returncode}: {(work / f'stderr-{gen}').read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"child {gen} never said {line!r} in 60 s")
        time.sleep(0.005)


def kill9(proc: subprocess.Popen) -> None:
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=30) == -signal.SIGKILL


def finish(db: Path, work: Path, gen: int) -> None:
    proc = spawn(db, work, gen, hold=False)
    try:
        wait_for(proc, work, f"done {gen}", gen)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def journal_of(db: Path) -> list[dict]:
    from fedflow.store import SQLiteStore

    store = SQLiteStore(db)
    try:
        return [json.loads(text) for text in store.load_log("f")]
    finally:
        store.close()


@pytest.mark.slow
def test_a_woken_flow_killed_mid_step_is_replayed_and_its_timer_never_fires_again(tmp_path: Path) -> None:
    db = tmp_path / "timers.db"
    proc = spawn(db, tmp_path, 0, hold=True)
    try:
        wait_for(proc, tmp_path, "held 0", 0)  # the timer fired, b ran, c is running
        kill9(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    finish(db, tmp_path, 1)
    # c crashed mid-step and ran again; a and b were journaled and never re-ran
    assert lines(tmp_path / "effects") == ["a", "b", "c", "c"]
    assert [e for e in journal_of(db) if e["t"] == "s"] == [{"t": "s", "tag": "sleep:1", "v": None, "w": 1}]


@pytest.mark.slow
def test_a_timer_that_fell_due_while_the_process_was_dead_fires_once_on_reopen(tmp_path: Path) -> None:
    db = tmp_path / "timers.db"
    proc = spawn(db, tmp_path, 0, hold=False)
    try:
        wait_for(proc, tmp_path, "started", 0)
        kill9(proc)  # most likely before the timer fires; either way it fires once
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    finish(db, tmp_path, 1)
    assert lines(tmp_path / "effects") == ["a", "b", "c"]
    assert sum(e["t"] == "s" for e in journal_of(db)) == 1


if __name__ == "__main__":
    child(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1")
