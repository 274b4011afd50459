"""The `fedflow.testing` pytest plugin: fixtures for testing flows and peer modules with
several local peers. Installing fedflow activates it (entry point `pytest11`).

| fixture | gives |
|---|---|
| `fedflow_engine` | an in-memory `Engine`, closed after the test |
| `fedflow_federation` | `fedflow_federation("a", "b", ...)` -> `{name: Engine}`, in-process peers |
| `fedflow_serve` | `fedflow_serve(name, load=[...], peers={...}, db=None, token=None)` -> a real serve |
| `fake_clock` | a `FakeClock` |

pytest imports this module in every run where fedflow is installed, so it imports
nothing heavy at the top: engines and gRPC are loaded by the fixtures that use them.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from ..clock import FakeClock
    from ..engine import Engine
    from .serve import Serve, Serves

_SERVES: pytest.StashKey[Serves] = pytest.StashKey()


@pytest.fixture
def fedflow_engine() -> Iterator[Engine]:
    """An in-memory `Engine` with a name no other test uses, closed after the test."""
    from ..engine import Engine

    with Engine(name=f"test-{uuid.uuid4().hex[:10]}") as engine:
        yield engine


@pytest.fixture
def fedflow_federation() -> Iterator[Callable[..., dict[str, Engine]]]:
    """A factory: `fedflow_federation("a", "b", ...)` returns `{name: Engine}`, in-memory
    engines that know each other as peers by those names; all closed after the test."""
    from .federation import local_federation

    with contextlib.ExitStack() as closing:  # closes every engine even if closing one fails

        def federation(*names: str) -> dict[str, Engine]:
            engines = local_federation(*names)
            for engine in engines.values():
                closing.enter_context(engine)
            return engines

        yield federation


@pytest.fixture
def fedflow_serve(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[
        Callable[..., Serve]]:
    """A factory: `fedflow_serve(name, load=[...], peers={...}, db=None, token=None)` starts a
    real `fedflow serve` on a free 127.0.0.1 port, waits until it serves, and returns its
    handle (`.name`, `.address`, `.client`, `.kill()`, `.stop()`, `.restart()`). Every process
    is stopped after the test, whether it passed or not; a failed test's report shows their logs."""
    from .serve import Serves

    serves = Serves(tmp_path_factory.mktemp("fedflow-serve"))
    request.node.stash[_SERVES] = serves
    try:
        yield serves.start
    finally:
        serves.stop_all()


@pytest.fixture
def fake_clock() -> FakeClock:
    """A `FakeClock` at 0.0 that moves only by `advance(seconds)`."""
    from ..clock import FakeClock

    return FakeClock()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Attach the log of every serve the test started to the report of a failed test."""
    outcome = yield
    report = outcome.get_result()
    serves = item.stash.get(_SERVES, None)
    if serves is not None and report.failed:
        for serve in serves.serves:
            report.sections.append((f"fedflow serve {serve.name} ({serve.address}) log", serve.log()[-5000:]))
