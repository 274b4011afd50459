"""Schedules beyond the conformance suite: ids, pausing, bad input, shared stores."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import fedflow
from fedflow import Engine, node
from fedflow.clock import FakeClock

try:
    from support import Calls, unique
except ImportError:  # tests/ imported as a package
    from tests.support import Calls, unique

T0 = 1_796_374_800.0  # 2026-12-04T09:00:00Z


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(start=T0)


@pytest.fixture
def timed(clock: FakeClock) -> Iterator[Engine]:
    with Engine(name=unique("sched"), clock=clock) as made:
        yield made


def counted() -> tuple[str, Calls]:
    name, seen = unique("tick"), Calls()
    fedflow.defflow(name, node(lambda x: seen(x) or x["at"]))
    return name, seen


def test_sub_second_ticks_carry_milliseconds_in_their_ids(timed: Engine, clock: FakeClock) -> None:
    flow, _ = counted()
    timed.schedule("fast", flow, every=0.25)
    clock.advance(0.5)
    assert sorted(fid for fid, _ in timed.list()) == ["fast@2026-12-04T09:00:00.250Z", "fast@2026-12-04T09:00:00.500Z"]


def test_a_paused_schedule_does_not_tick(timed: Engine, clock: FakeClock) -> None:
    flow, seen = counted()
    timed.schedule("p", flow, every=60, paused=True)
    clock.advance(600)
    assert seen.n == 0 and timed.schedules()[0]["paused"] is True
    timed.schedule("p", flow, every=60)  # replacing it un-pauses it
    clock.advance(60)
    assert seen.n == 1


@pytest.mark.parametrize(("kwargs", "says"), [
    ({"flow": "no-such-flow", "every": 60}, "no flow named"),
    ({"flow": node(lambda x: x), "every": 60}, "registered flow"),
    ({"every": -5}, "positive number of seconds"),
    ({"every": float("nan")}, "positive number of seconds"),
    ({"cron": "61 * * * *"}, "not valid"),
    ({"every": 60, "input": {1, 2}}, "set"),
    ({"every": 60, "paused": "yes"}, "True or False"),
])
def test_bad_schedules_name_the_fix_and_store_nothing(timed: Engine, kwargs: dict, says: str) -> None:
    flow, _ = counted()
    with pytest.raises((ValueError, fedflow.FedflowError), match=says):
        timed.schedule("bad", kwargs.pop("flow", flow), **kwargs)
    assert timed.schedules() == []


def test_unschedule_of_an_unknown_name_says_so(timed: Engine) -> None:
    with pytest.raises(fedflow.FedflowError, match="no schedule named 'nope'"):
        timed.unschedule("nope")


def test_two_engines_on_one_store_start_each_tick_once(clock: FakeClock, tmp_path: Path) -> None:
    flow, seen = counted()
    db = str(tmp_path / "shared.db")
    with Engine(name="a", store=db, clock=clock) as a, Engine(name="b", store=db, clock=clock) as b:
        a.schedule("job", flow, every=60)
        clock.advance(60)
        clock.advance(60)
        assert seen.n == 2 and b.schedules()[0]["next_at"] == T0 + 180


def test_a_cron_schedule_survives_a_restart_with_its_next_tick(clock: FakeClock, tmp_path: Path) -> None:
    flow, seen = counted()
    db = str(tmp_path / "cron.db")
    with Engine(name="c", store=db, clock=clock) as first:
        first.schedule("hourly", flow, input={"n": 1}, cron="0 * * * *", catchup="none")
    with Engine(name="c", store=db, clock=clock) as again:
        [entry] = again.schedules()
        assert (entry["cron"], entry["input"], entry["next_at"]) == ("0 * * * *", {"n": 1}, T0 + 3600)
        clock.advance(3600)
        assert again.result("hourly@2026-12-04T10:00:00Z") == "2026-12-04T10:00:00Z" and seen.n == 1
