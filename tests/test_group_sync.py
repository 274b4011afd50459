"""GroupSync: a waiter returns only after a sync that began after its commit; waiters that
commit together share syncs; a failed sync is raised and tried again later."""

from __future__ import annotations

import threading
import time

import pytest

from fedflow.store.group_sync import GroupSync, SyncFailed

try:
    from support import blocks_until
except ImportError:  # tests/ imported as a package
    from tests.support import blocks_until


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
            committed = time.perf_counter()  # before the ticket: a sync covering it began later
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


def test_a_failed_sync_is_final_for_every_commit_not_yet_durable() -> None:
    # After an fsync error the OS may have dropped the unsynced pages: a later good sync
    # would prove nothing, so no later wait succeeds.
    sync = Recorder()
    group = GroupSync(sync)
    durable = group.committed()
    group.wait(durable)
    sync.failures = 1
    failed = group.committed()
    with pytest.raises(SyncFailed, match="could not sync"):
        group.wait(failed)
    with pytest.raises(SyncFailed, match="failed earlier"):
        group.wait(group.committed())
    group.wait(durable)  # what was durable before stays so
    assert len(sync.calls) == 1


def test_after_close_no_sync_runs_and_waits_for_new_commits_raise() -> None:
    sync = Recorder()
    group = GroupSync(sync)
    pending = group.committed()
    group.close()
    group.wait(pending)  # close made it durable first
    with pytest.raises(SyncFailed, match="closed"):
        group.wait(group.committed())
    assert len(sync.calls) == 1


def test_close_waits_for_a_sync_in_flight() -> None:
    started, release = threading.Event(), threading.Event()

    def slow() -> None:
        started.set()
        assert release.wait(10)
    group = GroupSync(slow)
    writer = threading.Thread(target=group.wait, args=(group.committed(),))
    writer.start()
    assert started.wait(10)
    blocks_until(release.set, group.close)
    writer.join(10)
    assert not writer.is_alive()
