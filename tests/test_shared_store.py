"""Two Engines on one store file (as two processes would be): every transition is a
compare-and-set in the store, so a resume, a cancel, the end of a run or a recovery that
lost a race changes nothing and says what it found; and `resume(..., tag=...)`."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import fedflow
from fedflow import Engine, FlowCancelled, FlowError, node, step, suspend

try:
    from pg_support import fresh_database
    from support import WAIT, Calls, log_of, unique
except ImportError:  # tests/ imported as a package
    from tests.pg_support import fresh_database
    from tests.support import WAIT, Calls, log_of, unique


@pytest.fixture(params=["sqlite", "postgres"])
def two(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, Engine]]:
    """Two Engines, each with its own connection to one SQLite file, or to one PostgreSQL database."""
    with contextlib.ExitStack() as stack:
        db = stack.enter_context(fresh_database()) if request.param == "postgres" else str(tmp_path / "shared.db")
        a = stack.enter_context(Engine(name="shared", store=db, durability="process"))
        b = stack.enter_context(Engine(name="shared", store=db, durability="process"))
        yield a, b


def outcome(call: Callable[[], Any]) -> Any:
    """What `call` returned, or the exception it raised."""
    try:
        return call()
    except Exception as exc:
        return exc


def gated_two_waits() -> tuple[str, threading.Event, threading.Event]:
    """A registered flow waiting on "first" then "second"; a replay on a thread named "slow"
    stops between the two (sets `entered`, waits for `release`)."""
    entered, release = threading.Event(), threading.Event()

    def body(x: Any) -> Any:
        first = suspend("first")
        if threading.current_thread().name == "slow":
            entered.set()
            release.wait(WAIT)
        return [first, suspend("second")]

    name = unique("two-waits")
    fedflow.defflow(name, node(body))
    return name, entered, release


def in_flight(call: Callable[[], Any], entered: threading.Event) -> tuple[threading.Thread, list[Any]]:
    """Start `call` on the "slow" thread and return once its replay is held at the gate."""
    out: list[Any] = []
    worker = threading.Thread(target=lambda: out.append(outcome(call)), name="slow")
    worker.start()
    assert entered.wait(WAIT), "the slow resume reached its gate"
    return worker, out


def test_a_resume_that_another_engine_applied_first_is_refused_and_stores_nothing(two) -> None:
    a, b = two
    name, entered, release = gated_two_waits()
    a.start(name, None, id="f")
    worker, out = in_flight(lambda: b.resume("f", "from-b"), entered)
    assert a.resume("f", "from-a").tag == "second"  # wins while b's replay is still going
    release.set()
    worker.join(WAIT)
    assert isinstance(out[0], FlowError) and "already resumed" in str(out[0]), out
    assert "suspended on 'second'" in str(out[0]), "it names what it found"
    assert [e["v"] for e in log_of(a, "f")] == ["from-a"], "the loser's value is nowhere"
    assert b.resume("f", "last") == ["from-a", "last"], "the loser's value fed no wait"


def test_a_cancel_while_another_engine_resumes_wins_and_the_resume_says_so(two) -> None:
    a, b = two
    name, entered, release = gated_two_waits()
    a.start(name, None, id="f")
    worker, out = in_flight(lambda: b.resume("f", "from-b"), entered)
    a.cancel("f")
    release.set()
    worker.join(WAIT)
    assert isinstance(out[0], FlowCancelled), out
    assert (a.status("f"), b.status("f")) == ("cancelled", "cancelled")
    assert log_of(a, "f") == []


def test_a_cancel_that_lost_to_a_resume_raises_and_changes_nothing(two, monkeypatch) -> None:
    a, b = two
    name = unique("one-wait")
    fedflow.defflow(name, node(lambda x: {"got": suspend("go")}))
    a.start(name, None, id="f")
    write = a.store.transition

    def resumed_elsewhere_then_write(*args: Any, **kwargs: Any) -> bool:
        b.resume("f", "yes")  # lands between the cancel's read and its write
        return write(*args, **kwargs)

    monkeypatch.setattr(a.store, "transition", resumed_elsewhere_then_write)
    with pytest.raises(FlowError, match="not cancelled") as caught:
        a.cancel("f")
    assert not isinstance(caught.value, FlowCancelled)
    assert "done" in str(caught.value), "it names what it found"
    monkeypatch.undo()
    assert a.status("f") == "done" and a.result("f") == {"got": "yes"}


def test_racing_resume_and_cancel_from_two_engines_apply_exactly_one(two) -> None:
    a, b = two
    name = unique("one-wait")
    fedflow.defflow(name, node(lambda x: suspend("go")))
    for n in range(20):
        flow_id = f"rc-{n}"
        a.start(name, None, id=flow_id)
        barrier, out = threading.Barrier(2), [None, None]

        def race(i: int, call: Callable[[], Any], barrier: threading.Barrier = barrier, out: list = out) -> None:
            barrier.wait(WAIT)
            out[i] = outcome(call)

        calls = [lambda fid=flow_id: a.resume(fid, "go"), lambda fid=flow_id: b.cancel(fid)]
        threads = [threading.Thread(target=race, args=(i, call)) for i, call in enumerate(calls)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(WAIT)
        resumed, cancelled = out[0] == "go", out[1] is None
        assert resumed != cancelled, out
        assert isinstance(out[1] if resumed else out[0], FlowError), out
        assert a.status(flow_id) == ("done" if resumed else "cancelled")


def test_a_recovery_claims_a_flow_so_two_engines_never_both_rerun_it(tmp_path: Path, monkeypatch) -> None:
    db = str(tmp_path / "shared.db")
    charged = Calls()
    name = unique("recovered")
    fedflow.defflow(name, fedflow.sequence(step(lambda x: charged(x) or x, name="charge"), node(lambda x: x + 1)))
    with Engine(name="shared", store=db, recover=False) as setup:
        rec = fedflow.store.FlowRecord(id="crashed", name=name, status="running", input="1")
        assert setup.store.create(rec)
    with Engine(name="shared", store=db, recover=False) as a, Engine(name="shared", store=db, recover=False) as b:
        stale = b.store.get("crashed")
        assert a.recover() == ["crashed"] and a.result("crashed") == 2
        monkeypatch.setattr(b.store, "ids", lambda status: ["crashed"])
        monkeypatch.setattr(b.store, "get", lambda flow_id: stale)  # b read it before a claimed it
        assert b.recover() == [], "b's claim lost: it does not run the flow again"
    assert charged.n == 1


# -- resume(id, value, tag) -------------------------------------------------------------------

def test_a_resume_guarded_by_the_tag_the_flow_waits_on_is_applied(engine: Engine) -> None:
    flow = node(lambda x: [suspend("first"), suspend("second")])
    started = engine.start(flow, None)
    assert engine.resume(started.id, 1, tag="first").tag == "second"
    assert engine.resume(started.id, 2, "second") == [1, 2], "tag is the third positional"


@pytest.mark.parametrize("tag", ["second", "", "First"])
def test_a_resume_guarded_by_another_tag_is_refused_naming_the_wait(engine: Engine, tag: str) -> None:
    started = engine.start(node(lambda x: [suspend("first"), suspend("second")]), None)
    before = engine.export()
    with pytest.raises(FlowError, match=f"does not wait on {tag!r}: it waits on 'first'"):
        engine.resume(started.id, "early", tag=tag)
    assert engine.export() == before
    assert engine.pending() == [(started.id, "first")]


@pytest.mark.parametrize(("end", "error", "says"), [
    ("done", FlowError, "already done"), ("cancelled", FlowCancelled, "was cancelled")])
def test_a_guarded_resume_of_a_flow_that_no_longer_waits_is_refused(engine: Engine, end: str,
                                                                    error: type, says: str) -> None:
    started = engine.start(node(lambda x: suspend("go")), None)
    if end == "done":
        engine.resume(started.id, 1)
    else:
        engine.cancel(started.id)
    with pytest.raises(error, match=says):
        engine.resume(started.id, 2, tag="go")
    assert engine.status(started.id) == end
