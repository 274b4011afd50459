"""fedflow.progress: quiet for short work, a word at most every `every` seconds, the last word, where it goes."""

from __future__ import annotations

import io
import logging

import pytest

from fedflow import Engine, defflow, node, suspend
from fedflow.progress import Progress, log_emitter, stderr_emitter

try:
    from support import unique
except ImportError:  # tests/ imported as a package
    from tests.support import unique


class Ticks:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_work_done_within_the_first_interval_says_nothing() -> None:
    said: list[tuple[str, bool]] = []
    clock = Ticks()
    progress = Progress("restore", 10, emit=lambda text, last: said.append((text, last)), clock=clock)
    progress.advance(10)
    clock.now += 0.5
    progress.finish()
    assert said == []


def test_a_word_at_most_every_interval_then_the_last_word() -> None:
    said: list[tuple[str, bool]] = []
    clock = Ticks()
    progress = Progress("replica of 'a' received", 4 << 20, unit="bytes", every=2.0,
                        emit=lambda text, last: said.append((text, last)), clock=clock)
    for _ in range(4):
        clock.now += 1.0
        progress.advance(1 << 20)
    assert said == [("replica of 'a' received: 2.0 MiB of 4.0 MiB (50%), 1.0 MiB/s, 2 s left", False),
                    ("replica of 'a' received: 4.0 MiB of 4.0 MiB (100%), 1.0 MiB/s, 0 s left", False)]
    progress.finish()
    assert said[-1] == ("replica of 'a' received: 4.0 MiB of 4.0 MiB (100%), 1.0 MiB/s, done in 4 s", True)


def test_without_a_total_it_says_how_much_and_how_fast() -> None:
    clock = Ticks()
    said: list[str] = []
    progress = Progress("check", None, emit=lambda text, _last: said.append(text), clock=clock)
    clock.now += 3600 * 2 + 90
    progress.advance(7290)
    progress.finish()
    assert said == ["check: 7,290, 1 flows/s", "check: 7,290, 1 flows/s, done in 2 h 1 m"]


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(("stream", "expected"), [
    (io.StringIO(), "a: 1\nb: 2\n"), (Terminal(), "\ra: 1\033[K\rb: 2\033[K\n")])
def test_stderr_redraws_one_line_on_a_terminal_and_writes_lines_elsewhere(stream: io.StringIO, expected: str) -> None:
    emit = stderr_emitter(stream)
    emit("a: 1", False)
    emit("b: 2", True)
    assert stream.getvalue() == expected


def test_the_log_emitter_logs_info(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="fedflow.test"):
        log_emitter(logging.getLogger("fedflow.test"))("recovery: 1 of 2 flows", False)
    assert caplog.records[-1].getMessage() == "recovery: 1 of 2 flows"


def test_check_tells_its_watcher_each_flow_it_takes() -> None:
    name = unique("prog")
    defflow(name, node(lambda x: suspend("go")))
    with Engine(name=unique("progress")) as engine:
        for i in range(3):
            engine.start(name, i, id=f"p-{i}")
        seen: list[tuple[int, int]] = []
        report = engine.check(on_checked=lambda done, total: seen.append((done, total)))
    assert seen == [(1, 3), (2, 3), (3, 3)] and all(r["ok"] for r in report)
