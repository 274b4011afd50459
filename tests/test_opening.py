"""The running state is written once it matters: before a flow's first new side effect,
or together with its outcome when it suspends or ends first."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import fedflow
from fedflow import journal, node, sequence, step, suspend


def commits_during(engine: fedflow.Engine, action: Callable[[], Any]) -> tuple[Any, int]:
    """Run `action`; its result and how many transactions the SQLite store committed."""
    seen: list[str] = []
    engine.store._conn.set_trace_callback(seen.append)
    try:
        out = action()
    finally:
        engine.store._conn.set_trace_callback(None)
    return out, _transactions(seen)


def _transactions(statements: list[str]) -> int:
    """Committed write transactions in a statement trace: each COMMIT, and each write run
    on its own (SQLite's autocommit) outside BEGIN ... COMMIT."""
    count, inside = 0, False
    for sql in statements:
        verb = sql.split(None, 1)[0].upper()
        if verb == "BEGIN":
            inside = True
        elif verb in ("COMMIT", "ROLLBACK"):
            count += verb == "COMMIT"
            inside = False
        elif verb in ("INSERT", "UPDATE", "DELETE") and not inside:
            count += 1
    return count


@pytest.fixture
def engine(tmp_path: Path):
    with fedflow.Engine(name="opening", store=str(tmp_path / "o.db")) as made:
        yield made


def test_a_start_that_suspends_and_a_resume_that_ends_commit_once_each(engine: fedflow.Engine) -> None:
    flow = node(lambda x: {"x": x, "ok": suspend("ok")})
    waiting, commits = commits_during(engine, lambda: engine.start(flow, 1))
    assert fedflow.is_suspended(waiting) and commits == 1
    out, commits = commits_during(engine, lambda: engine.resume(waiting.id, True))
    assert out == {"x": 1, "ok": True} and commits == 1
    assert engine.store.get(waiting.id).status == "done"
    assert [e["t"] for e in journal.load_all(engine.store.load_log(waiting.id), waiting.id)] == ["s"]


def test_the_flow_is_on_disk_as_running_before_its_first_new_step_runs(engine: fedflow.Engine) -> None:
    seen: list[tuple[str | None, int]] = []

    def effect(x: Any) -> Any:
        rec = engine.store.get(x["id"])
        seen.append((rec.status if rec else None, len(engine.store.load_log(x["id"]))))
        return x

    name = f"opening-{uuid.uuid4().hex[:8]}"
    fedflow.defflow(name, sequence(step(effect, name="first"), node(lambda x: {**x, "go": suspend("go")}),
                                   step(effect, name="second")))
    flow_id = f"op-{uuid.uuid4().hex[:6]}"
    engine.start(name, {"id": flow_id}, id=flow_id)
    engine.resume(flow_id, "now")
    # at start: running, empty log; at resume: running, with the step and the resume value logged
    assert seen == [("running", 0), ("running", 2)]


def test_a_flow_cancelled_while_a_resume_replays_reports_flow_cancelled(engine: fedflow.Engine) -> None:
    entered, release = threading.Event(), threading.Event()

    def slow(answer: Any) -> Any:
        entered.set()
        assert release.wait(10)
        return answer

    waiting = engine.start(sequence(node(lambda x: suspend("go")), node(slow)), None)
    box: dict[str, BaseException] = {}

    def resume() -> None:
        try:
            engine.resume(waiting.id, "late")
        except BaseException as exc:
            box["error"] = exc

    worker = threading.Thread(target=resume)
    worker.start()
    assert entered.wait(10)
    assert engine.status(waiting.id) == "running"
    assert engine.pending() == [] and engine.resumable_ids() == []
    with pytest.raises(fedflow.FlowError):
        engine.resume(waiting.id, "twice")
    engine.cancel(waiting.id)
    release.set()
    worker.join(10)
    assert isinstance(box.get("error"), fedflow.FlowCancelled)
    assert engine.status(waiting.id) == "cancelled"


def test_handoff_leaves_a_flow_that_is_being_resumed_alone(fedflow_federation) -> None:
    entered, release = threading.Event(), threading.Event()
    name = f"opening-handoff-{uuid.uuid4().hex[:8]}"
    fedflow.defflow(name, sequence(node(lambda x: suspend("go")),
                                   node(lambda v: entered.set() or (release.wait(10) and v))))
    a, b = fedflow_federation("op-a", "op-b").values()
    busy, idle = a.start(name, 1), a.start(name, 2)
    worker = threading.Thread(target=lambda: a.resume(busy.id, "done here"))
    worker.start()
    assert entered.wait(10)
    assert a.handoff_to("op-b") == [idle.id]
    release.set()
    worker.join(10)
    assert a.result(busy.id) == "done here"
    assert b.status(busy.id) == "unknown" and b.status(idle.id) == "suspended"
