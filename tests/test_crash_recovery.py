"""Crash recovery with a real ``kill -9``.

The parent runs this file as a child process (``python test_crash_recovery.py
MODE DB DURABILITY WORKDIR GEN [finish]``) that drives flows through the Store
API directly (mode ``store``, an engine simulated step by step) or through a
real ``fedflow.Engine`` (mode ``engine``). The child writes a side-effect line
to ``effects`` *before* each journaled step and an ``acks`` line *after* each
transition commits. The parent SIGKILLs it once it has acked more, reopens
the file and checks: every acked transition is there, no transaction is half
applied, and no journaled step ever ran again in a later generation. A last
pass completes every flow a crash left running.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest
from support import note

from fedflow import journal
from fedflow.journal import Entry as LogEntry
from fedflow.store import SQLiteStore, sqlite_sql
from fedflow.store.base import DONE, RUNNING, SUSPENDED, FlowRecord

REPO = Path(__file__).resolve().parents[1]

STEPS = 3
FLOW = "crash-recovery-test-flow"
TARGETS = (1, 9, 40, 120)  # acks to wait for before each SIGKILL
BODY = "b" * (5 * sqlite_sql.SPILL_CHARS)  # engine-mode flows carry it: their input, journal and result spill
RANK = {"create": 0, "step 0": 1, "step 1": 2, "step 2": 3, "suspend": 4, "resume": 5, "done": 6}
Move = tuple[str, str, dict[str, Any], list[LogEntry]]


def hold_if_asked(work: Path) -> None:
    """Inside a step: once the parent asks (a `hold` file), say so and wait to be killed,
    so every kill lands while a flow is running mid-step."""
    if (work / "hold").exists():
        note(work / "held", "holding")
        time.sleep(3600)


# -- the child: a simulated engine over the Store API -----------------------------

def logged(store: SQLiteStore, flow_id: str) -> list[LogEntry]:
    """The flow's log, its entries read as dicts."""
    return journal.load_all(store.load_log(flow_id), flow_id)


def plan(rec: FlowRecord, log: list[LogEntry], gen: int) -> Move | None:
    """The next transition of a simulated flow (ack, expected status, changes, entries)."""
    steps = sum(e["t"] == "j" for e in log)
    if rec.status == DONE:
        return None
    if rec.status == SUSPENDED:
        return "resume", SUSPENDED, {"status": RUNNING, "waiting": None}, [{"t": "s", "tag": "review", "v": 1}]
    if steps < STEPS:
        entry = {"t": "j", "k": str(steps), "n": f"s{steps}", "v": {"gen": gen}}
        return f"step {steps}", RUNNING, {"updated": float(gen)}, [entry]
    if not any(e["t"] == "s" for e in log):
        return "suspend", RUNNING, {"status": SUSPENDED, "waiting": "review"}, []
    return "done", RUNNING, {"status": DONE, "result": '"ok"'}, []


def drive(store: SQLiteStore, flow_id: str, gen: int, work: Path) -> None:
    """Advance one flow to done, one committed transition at a time, replaying its log."""
    while (move := plan(store.get(flow_id), logged(store, flow_id), gen)) is not None:
        ack, expect, changes, append = move
        if ack.startswith("step"):
            note(work / "effects", f"{flow_id} {ack.split()[1]} {gen}")
            hold_if_asked(work)
        if not store.transition(flow_id, [expect], changes, [journal.dump(e) for e in append]):
            raise RuntimeError(f"transition {ack} of {flow_id} lost its compare-and-set")
        note(work / "acks", f"{flow_id} {ack}")


def store_child(db: str, durability: str, work: Path, gen: int, finish: bool) -> None:
    """Recover unfinished flows, then (unless `finish`) start new ones until killed."""
    store = SQLiteStore(db, durability)
    for flow_id, status in store.list():
        if status != DONE:
            drive(store, flow_id, gen, work)
    i = len(store.list())
    while not finish:
        flow_id = f"f{i:05}"
        if store.create(FlowRecord(flow_id, "sim", RUNNING, "null")):
            note(work / "acks", f"{flow_id} create")
        drive(store, flow_id, gen, work)
        i += 1
    store.close()


# -- the child: a real Engine -------------------------------------------------------

def build_flow(gen: int, work: Path) -> Any:
    """Two journaled steps, a suspend, one more step; each step notes its side effect."""
    import fedflow

    def effect(k: int) -> Any:
        def run(x: dict) -> dict:
            note(work / "effects", f"{x['id']} {k} {gen}")
            if k == 1:
                hold_if_asked(work)
            return {**x, "gen": gen}
        return fedflow.step(run, name=f"s{k}")

    def review(x: dict) -> dict:
        return {**x, "review": fedflow.suspend("review")}
    return fedflow.sequence(effect(0), effect(1), fedflow.node(review), effect(2))


def engine_child(db: str, durability: str, work: Path, gen: int, finish: bool) -> None:
    """Open an Engine (it replays flows left running), finish suspended ones, start new ones."""
    import fedflow

    fedflow.defflow(FLOW, build_flow(gen, work))
    with fedflow.Engine(name="crash", store=db, durability=durability) as engine:
        for flow_id in engine.resumable_ids():
            engine.resume(flow_id, "ok")
            note(work / "acks", f"{flow_id} done")
        i = len(engine.list())
        while not finish:
            flow_id = f"e{i:05}"
            assert fedflow.is_suspended(engine.start(FLOW, {"id": flow_id, "body": BODY}, id=flow_id))
            note(work / "acks", f"{flow_id} suspend")
            assert engine.resume(flow_id, "ok")["review"] == "ok"
            note(work / "acks", f"{flow_id} done")
            i += 1


# -- the parent -----------------------------------------------------------------------

def spawn(mode: str, db: Path, durability: str, work: Path, gen: int, finish: bool = False) -> subprocess.Popen:
    """Start a child generation running this file."""
    args = [sys.executable, __file__, mode, str(db), durability, str(work), str(gen)] + (["finish"] * finish)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with (work / f"stderr-{gen}").open("wb") as stderr:
        return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL, stderr=stderr)


def count_lines(path: Path) -> int:
    """Complete lines in `path` (0 if it does not exist yet)."""
    return path.read_bytes().count(b"\n") if path.exists() else 0


def lines(path: Path) -> list[str]:
    """The lines of `path` (none if it does not exist yet)."""
    return path.read_text().splitlines() if path.exists() else []


def wait_for_acks(proc: subprocess.Popen, work: Path, want: int, gen: int) -> None:
    """Poll the ack file until it has `want` lines (bounded; fails if the child dies)."""
    deadline = time.monotonic() + 60
    while count_lines(work / "acks") < want:
        if proc.poll() is not None:
            pytest.fail(f"child {gen} exited {proc.returncode}: {(work / f'stderr-{gen}').read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"child {gen} acked fewer than {want} transitions in 60 s")
        time.sleep(0.001)


def wait_until_held(proc: subprocess.Popen, work: Path, gen: int) -> None:
    """Poll until the child says it holds inside a step (bounded; fails if it dies)."""
    deadline = time.monotonic() + 60
    while not (work / "held").exists():
        if proc.poll() is not None:
            pytest.fail(f"child {gen} exited {proc.returncode}: {(work / f'stderr-{gen}').read_text()}")
        if time.monotonic() > deadline:
            pytest.fail(f"child {gen} never reached a step after the hold request")
        time.sleep(0.001)


def kill_after(mode: str, db: Path, durability: str, work: Path, gen: int, extra: int) -> None:
    """Run one child generation; once it has acked `extra` more transitions, ask it to hold
    inside its next step and SIGKILL it there."""
    want = count_lines(work / "acks") + extra
    proc = spawn(mode, db, durability, work, gen)
    try:
        wait_for_acks(proc, work, want, gen)
        note(work / "hold", "please")
        wait_until_held(proc, work, gen)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for flag in ("hold", "held"):
            (work / flag).unlink(missing_ok=True)


def acked(work: Path) -> dict[str, int]:
    """flow id -> the highest RANK of its acknowledged transitions."""
    best: dict[str, int] = defaultdict(int)
    for line in lines(work / "acks"):
        flow_id, ack = line.split(" ", 1)
        best[flow_id] = max(best[flow_id], RANK[ack])
    return best


def check_effects(store: SQLiteStore, work: Path) -> None:
    """A journaled step ran at most once per generation, and never after the one journaled."""
    runs: dict[tuple[str, int], list[int]] = defaultdict(list)
    for line in lines(work / "effects"):
        flow_id, k, gen = line.split()
        runs[flow_id, int(k)].append(int(gen))
    for flow_id, _ in store.list():
        steps = [e for e in logged(store, flow_id) if e["t"] == "j"]
        for k, entry in enumerate(steps):
            gens = runs[flow_id, k]
            assert len(gens) == len(set(gens)), f"{flow_id} step {k} ran twice in one generation: {gens}"
            assert max(gens) == entry["v"]["gen"], f"{flow_id} step {k} journaled, then ran again: {gens}"


def store_progress(rec: FlowRecord, log: list[LogEntry]) -> int:
    """How far a simulated flow got (RANK scale), checking its log is well formed."""
    steps = [e for e in log if e["t"] == "j"]
    resumed = log[STEPS:] == [{"t": "s", "tag": "review", "v": 1}]
    assert [e["k"] for e in steps] == [str(k) for k in range(len(steps))], log
    assert len(log) == len(steps) + resumed, log
    assert rec.status != SUSPENDED or (len(steps) == STEPS and not resumed), (rec, log)
    assert rec.status != DONE or resumed, (rec, log)
    return len(steps) + (rec.status == SUSPENDED or resumed) + resumed + (rec.status == DONE)


def engine_progress(rec: FlowRecord, log: list[LogEntry]) -> int:
    """How far an engine flow got (RANK scale: 4 suspended, 6 done), checking its log."""
    kinds = [e["t"] for e in log]
    assert kinds == ["j", "j", "s", "j"][:len(kinds)], log
    assert rec.status != SUSPENDED or kinds == ["j", "j"], (rec, log)
    assert rec.status != DONE or (kinds == ["j", "j", "s", "j"] and rec.result), (rec, log)
    return {DONE: 6, SUSPENDED: 4}.get(rec.status, 4 if "s" in kinds else 0)


def check_acked(db: Path, work: Path, mode: str) -> int:
    """Every acknowledged transition is in the reopened file; the count of flows left running."""
    progress = store_progress if mode == "store" else engine_progress
    store = SQLiteStore(db)
    try:
        assert {status for _, status in store.list()} <= {RUNNING, SUSPENDED, DONE}, store.list()
        for flow_id, rank in acked(work).items():
            rec = store.get(flow_id)
            assert rec is not None, f"acked flow {flow_id} is missing"
            assert progress(rec, logged(store, flow_id)) >= rank, f"{flow_id} lost an acked transition"
        check_effects(store, work)
        return len(store.ids(RUNNING))
    finally:
        store.close()


def crash_rounds(mode: str, db: Path, durability: str, work: Path) -> int:
    """Kill one child per TARGETS entry, checking the file after each; flows seen left running."""
    left_running = 0
    for gen, extra in enumerate(TARGETS, start=1):
        kill_after(mode, db, durability, work, gen, extra)
        left_running += check_acked(db, work, mode)
    return left_running


@pytest.mark.slow
@pytest.mark.parametrize("durability", ["process", "power"])
def test_store_keeps_every_acked_transition_across_kill_9(tmp_path: Path, durability: str) -> None:
    db = tmp_path / "crash.db"
    assert crash_rounds("store", db, durability, tmp_path) > 0, "no kill landed while a flow was running"
    final = spawn("store", db, durability, tmp_path, len(TARGETS) + 1, finish=True)
    assert final.wait(timeout=60) == 0, (tmp_path / f"stderr-{len(TARGETS) + 1}").read_text()
    store = SQLiteStore(db)
    try:
        assert {status for _, status in store.list()} == {DONE}
        for flow_id, _ in store.list():
            assert store_progress(store.get(flow_id), logged(store, flow_id)) == RANK["done"]
        check_effects(store, tmp_path)
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize("durability", ["process", "power"])
def test_engine_replays_running_flows_without_rerunning_steps(tmp_path: Path, durability: str) -> None:
    import fedflow

    db = tmp_path / "crash.db"
    assert crash_rounds("engine", db, durability, tmp_path) > 0, "no kill landed while a flow was running"
    fedflow.defflow(FLOW, build_flow(99, tmp_path))
    with fedflow.Engine(name="crash", store=str(db), durability=durability) as engine:
        assert RUNNING not in {status for _, status in engine.list()}, "reopening did not replay running flows"
        for flow_id in engine.resumable_ids():
            engine.resume(flow_id, "ok")
        assert {status for _, status in engine.list()} == {DONE}
        for flow_id, _ in engine.list():
            assert engine.result(flow_id) == {"id": flow_id, "body": BODY, "gen": engine.result(flow_id)["gen"],
                                              "review": "ok"}
        check_effects(engine.store, tmp_path)


if __name__ == "__main__":
    mode, db_arg, durability_arg, work_arg, gen_arg, *rest = sys.argv[1:]
    child = store_child if mode == "store" else engine_child
    child(db_arg, durability_arg, Path(work_arg), int(gen_arg), rest == ["finish"])
