"""GroupSync: a waiter returns only after a sync that began after its commit; waiters that
commit together share syncs; a failed sync is raised and tried again later."""

from __future__ import annotations

import threading
import time

import pytest

from fedflow.store.group_sync import GroupSync


class Recorder:
    """A sync that records when each call began and ended, optionally slowly or failing."""

    def __init__(self, seconds: float = 0.0, failures: int = 0) -> None:
        self.calls: list[tuple[float, float]] = []
        self.seconds = seconds
        self.failures = failures

    def __call__(self) -> None:
        began = time.perf_counter()
        time.sleep(self.seconds)
        if self.failures:
            self.failures -= 1
            raise OSError(5, "Input/output error")
        self.calls.append((began, time.perf_counter()))


def test_one_commit_costs_one_sync_and_waiting_again_costs_none() -> None:
    sync = Recorder()
    group = GroupSync(sync)
    ticket = group.committed()
    group.wait(ticket)
    group.wait(ticket)
    group.wait_for_all()
    assert len(sync.calls) == 1


def test_every_waiter_returns_after_a_sync_that_began_after_its_commit() -> None:
    sync = Recorder(seconds=0.02)
    group = GroupSync(sync)
    marks: list[tuple[float, float]] = []
    lock = threading.Lock()
    start = threading.Barrier(8)

    def writer() -> None:
        start.wait(10)
        for _ in range(5):
            committed = time.perf_counter()
            group.wait(group.committed())
            with lock:
                marks.append((committed, time.perf_counter()))
    threads = [threading.Thread(target=writer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(marks) == 40
    for committed, returned in marks:
        assert any(committed <= began and ended <= returned for began, ended in sync.calls)
    assert len(sync.calls) < 40, "commits made while a sync ran shared the next one"


def test_a_failed_sync_is_raised_and_the_next_wait_syncs_again() -> None:
    sync = Recorder(failures=1)
    group = GroupSync(sync)
    ticket = group.committed()
    with pytest.raises(OSError, match="Input/output"):
        group.wait(ticket)
    group.wait(ticket)
    assert len(sync.calls) == 1
