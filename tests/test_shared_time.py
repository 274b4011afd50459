"""Timers and schedule ticks on a store two engines share (one SQLite file, or one PostgreSQL
database as two serves would): when both look at the same due timer or tick at once, it fires
once; the other engine's try changes nothing."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

import fedflow
from fedflow import Engine, node, sequence, step
from fedflow.clock import FakeClock

try:
    from pg_support import fresh_database
    from support import WAIT, Calls, log_of, unique
except ImportError:  # tests/ imported as a package
    from tests.pg_support import fresh_database
    from tests.support import WAIT, Calls, log_of, unique

T0 = 1_796_374_800.0  # 2026-12-04T09:00:00Z


@pytest.fixture(params=["sqlite", "postgres"])
def two(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Engine, FakeClock, Engine, FakeClock]]:
    """Two engines on one store, each on its own fake clock: advancing both clocks from two
    threads makes both engines fire what is due at the same moment."""
    with contextlib.ExitStack() as stack:
        db = stack.enter_context(fresh_database()) if request.param == "postgres" else str(tmp_path / "shared.db")
        clock_a, clock_b = FakeClock(start=T0), FakeClock(start=T0)
        a = stack.enter_context(Engine(name=unique("a"), store=db, durability="process", clock=clock_a))
        b = stack.enter_context(Engine(name=unique("b"), store=db, durability="process", clock=clock_b))
        yield a, clock_a, b, clock_b


def advance_both(clock_a: FakeClock, clock_b: FakeClock, seconds: float) -> None:
    """Advance both clocks at once, from two threads (each fires its engine's due timers)."""
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def advance(clock: FakeClock) -> None:
        try:
            barrier.wait(WAIT)
            clock.advance(seconds)
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=advance, args=(clock,)) for clock in (clock_a, clock_b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert not any(thread.is_alive() for thread in threads) and errors == []


def test_due_timers_fire_once_when_two_engines_race_over_them(two) -> None:
    a, clock_a, b, clock_b = two
    woke = Calls()
    name = unique("nap")
    fedflow.defflow(name, sequence(node(lambda x: fedflow.sleep(60) or x), step(lambda x: woke(x) or x)))
    flows = [f"nap-{n}" for n in range(20)]
    for flow_id in flows:
        a.start(name, flow_id, id=flow_id)
    assert len(b.timers()) == len(flows)
    advance_both(clock_a, clock_b, 60)
    assert [a.result(flow_id) for flow_id in flows] == flows
    assert sorted(woke.seen) == sorted(flows), "each woken flow's next step ran once"
    for flow_id in flows:
        wakes = [entry for entry in log_of(b, flow_id) if entry.get("tag") is not None]
        assert len(wakes) == 1, (flow_id, log_of(b, flow_id))
    assert a.timers() == b.timers() == []


def test_schedule_ticks_start_once_when_two_engines_race_over_them(two) -> None:
    a, clock_a, b, clock_b = two
    seen = Calls()
    name = unique("tick")
    fedflow.defflow(name, step(lambda x: seen(x["at"]) or x["at"]))
    a.schedule("job", name, every=60)
    for _ in range(5):
        advance_both(clock_a, clock_b, 60)
    ticks = [f"job@2026-12-04T09:0{n}:00Z" for n in range(1, 6)]
    assert sorted(seen.seen) == [tick.split("@")[1] for tick in ticks], "each tick's step ran once"
    assert sorted(fid for fid, _status in b.list()) == ticks
    assert a.schedules()[0]["next_at"] == b.schedules()[0]["next_at"] == T0 + 360
