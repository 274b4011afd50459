"""Time inside flows: sleeps, timed waits, timers in the store, wake, and bad input."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import pytest

import fedflow
from fedflow import Engine, node, sequence, step, suspend
from fedflow.clock import FakeClock
from fedflow.store import SQLiteStore

try:
    from support import Calls, unique
except ImportError:  # tests/ imported as a package
    from tests.support import Calls, unique

T0 = 1_800_000_000.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=T0)


@pytest.fixture
def timed(clock: FakeClock) -> Iterator[Engine]:
    """An in-memory engine on the fake clock."""
    with Engine(name=unique("time"), clock=clock) as made:
        yield made


def napping(seconds: float, calls: Calls | None = None) -> fedflow.combinators.Flow:
    after = calls or Calls()
    return sequence(node(lambda x: fedflow.sleep(seconds) or x), step(lambda x: after(x) or {"woke": x}))


@pytest.mark.parametrize("seconds", [-1, math.nan, math.inf, "10", True])
def test_a_bad_sleep_fails_the_flow_naming_the_fix_and_sets_no_timer(timed: Engine, seconds: object) -> None:
    with pytest.raises(fedflow.FlowFailed, match="sleep") as caught:
        timed.start(node(lambda x: fedflow.sleep(seconds)), None, id="bad")
    assert isinstance(caught.value.cause, ValueError | TypeError)
    assert timed.timers() == [] and timed.status("bad") == "failed"


@pytest.mark.parametrize("call", [lambda: fedflow.sleep(1), lambda: fedflow.sleep_until(T0),
                                  lambda: suspend("x", timeout=5), lambda: fedflow.patched("p")])
def test_waits_outside_a_flow_are_refused_with_where_to_call_them(call) -> None:
    with pytest.raises(fedflow.FlowError, match="outside a running flow"):
        call()


@pytest.mark.parametrize("timeout", [-0.5, math.nan])
def test_a_bad_timeout_fails_the_flow_and_sets_no_timer(timed: Engine, timeout: float) -> None:
    with pytest.raises(fedflow.FlowFailed, match="timeout"):
        timed.start(node(lambda x: suspend("ok", timeout=timeout)), None, id="bad")
    assert timed.timers() == []


def test_a_sleep_already_due_returns_at_once_and_so_does_its_replay(timed: Engine, clock: FakeClock) -> None:
    after = Calls()
    flow = sequence(node(lambda x: fedflow.sleep_until(T0 - 10) or x), step(after),
                    node(lambda x: suspend("more")), node(lambda x: fedflow.sleep(0) or x))
    assert timed.start(flow, 1, id="past").tag == "more"
    assert timed.timers() == [] and after.n == 1
    assert timed.resume("past", 2) == 2


def test_sleeps_in_a_row_each_get_their_own_timer(timed: Engine, clock: FakeClock) -> None:
    flow = sequence(node(lambda x: fedflow.sleep(10) or x), node(lambda x: fedflow.sleep(10) or x + 1))
    first = timed.start(flow, 1, id="twice")
    clock.advance(10)
    [(fid, tag, wake_at)] = timed.timers()
    assert (fid, wake_at) == ("twice", T0 + 20) and tag != first.tag and tag.startswith("sleep:")
    clock.advance(10)
    assert timed.result("twice") == 2


def test_cancel_drops_the_timer(timed: Engine, clock: FakeClock) -> None:
    after = Calls()
    timed.start(napping(5, after), None, id="c")
    timed.cancel("c")
    assert timed.timers() == []
    clock.advance(10)
    assert timed.status("c") == "cancelled" and after.n == 0


def test_wake_is_refused_for_a_flow_without_a_timer(timed: Engine) -> None:
    timed.start(node(lambda x: suspend("human")), None, id="h")
    with pytest.raises(fedflow.FlowError, match="waits on no timer"):
        timed.wake("h")
    with pytest.raises(fedflow.UnknownFlow):
        timed.wake("nobody")


def test_wake_of_a_timed_wait_times_it_out_now(timed: Engine) -> None:
    timed.start(node(lambda x: suspend("ok", timeout=3600, default="late")), None, id="w")
    assert timed.wake("w") == "late"


def test_a_replica_carries_the_timers_of_its_flows(clock: FakeClock, tmp_path: Path) -> None:
    name = unique("nap")
    after = Calls()
    fedflow.defflow(name, napping(60, after))
    with Engine(name=unique("src"), clock=clock) as source, \
            Engine(name=unique("dst"), store=str(tmp_path / "d.db"), clock=clock) as target:
        source.start(name, "x", id="r")
        export = source.export()
        assert [f["wake_at"] for f in export["flows"]] == [T0 + 60]
        source.cancel("r")  # only the restored copy may fire
        target.import_store(export)
        assert target.timers() == [("r", export["flows"][0]["waiting"], T0 + 60)]
        clock.advance(60)
        assert target.result("r") == {"woke": "x"} and after.n == 1


def test_a_timer_whose_flow_is_not_registered_yet_waits_for_it(clock: FakeClock, tmp_path: Path) -> None:
    db = str(tmp_path / "late.db")
    name = unique("late")
    fedflow.defflow(name, napping(5))
    with Engine(name="late", store=db, clock=clock) as first:
        first.start(name, 1, id="l")
    fedflow.defflow(name + "-other", napping(5))
    registry = fedflow.registry._by_name
    body = registry.pop(name)  # a restart that has not loaded the module yet
    try:
        with Engine(name="late", store=db, clock=clock) as again:
            clock.advance(10)
            assert again.status("l") == "suspended" and [t[0] for t in again.timers()] == ["l"]
            fedflow.defflow(name, body)
            clock.advance(1)
            assert again.result("l") == {"woke": 1}
    finally:
        fedflow.defflow(name, body)


def test_the_timer_index_finds_the_next_wake_among_many(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "many.db")
    try:
        rows = [(fedflow.store.FlowRecord(id=f"f{i}", name="n", status="suspended", input="null",
                                          waiting=f"sleep:{i}", wake_at=T0 + (i * 7919) % 1000), [])
                for i in range(1000)]
        store.put_flows(rows)
        assert store.next_wake() == T0
        assert [t[0] for t in store.due(T0 + 1, 10)] == ["f0", "f679"]  # 679 * 7919 % 1000 == 1
        assert len(store.timers()) == 1000
        plan = " ".join(str(r) for r in store._live().execute(
            "EXPLAIN QUERY PLAN " + fedflow.store.sqlite_sql.NEXT_WAKE).fetchall())
        assert "flows_wake" in plan
    finally:
        store.close()


def test_a_real_clock_engine_without_timers_starts_no_thread() -> None:
    import threading

    before = {t.name for t in threading.enumerate()}
    with Engine(name=unique("idle")) as idle:
        assert idle.start(node(lambda x: x), 1) == 1
        assert not {t.name for t in threading.enumerate()} - before
