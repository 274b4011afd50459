"""peers/onboarding.py, the example users copy: confirm within a timeout, remind after a sleep, nightly."""

from __future__ import annotations

import calendar
import importlib.util
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

import fedflow
from fedflow import Engine
from fedflow.clock import FakeClock

T0 = float(calendar.timegm((2026, 12, 4, 9, 0, 0, 0, 0, 0)))


def load_example() -> ModuleType:
    path = Path(__file__).resolve().parents[1] / "peers" / "onboarding.py"
    spec = importlib.util.spec_from_file_location("onboarding_example", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def setup() -> Iterator[tuple[Engine, FakeClock, ModuleType]]:
    clock, module = FakeClock(start=T0), load_example()
    with Engine(name="onboarding", clock=clock) as engine:
        module.register(engine)
        yield engine, clock, module


def test_a_confirmed_signup_is_reminded_after_three_days_then_onboarded(setup) -> None:
    engine, clock, module = setup
    assert engine.start("signup", "ada@example.com", id="s-ada").tag == "confirm"
    assert engine.resume("s-ada", True, tag="confirm").tag == "sleep:2"
    clock.advance(module.REMIND_AFTER - 1)
    assert engine.status("s-ada") == "suspended"
    clock.advance(1)
    assert engine.result("s-ada") == {"email": "ada@example.com", "confirmed": True, "reminded": True,
                                      "onboarded": True}
    assert module.OUTBOX == [("ada@example.com", "confirm your address"), ("ada@example.com", "finish your profile")]


def test_an_unconfirmed_signup_expires_after_a_day(setup) -> None:
    engine, clock, module = setup
    engine.start("signup", "bob@example.com", id="s-bob")
    clock.advance(module.CONFIRM_WITHIN)
    out = engine.result("s-bob")
    assert fedflow.is_failed(out) and "expired" in fedflow.fail_reason(out)
    with pytest.raises(fedflow.FlowError):
        engine.resume("s-bob", True, tag="confirm")


def test_the_nightly_report_runs_at_three_utc(setup) -> None:
    engine, clock, _ = setup
    [entry] = engine.schedules()
    assert entry["next_at"] == T0 + 18 * 3600  # 03:00 the next day
    clock.advance(18 * 3600)
    assert engine.result("nightly@2026-12-05T03:00:00Z") == {"report_at": "2026-12-05T03:00:00Z", "input": None}
