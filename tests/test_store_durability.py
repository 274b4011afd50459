"""What a SQLiteStore commit survives: every write is safe against kill -9 (WAL, NORMAL);
under "power" an acknowledged write has also fsync'd the WAL file before it returns."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import fedflow
from fedflow.errors import FedflowError
from fedflow.store import SQLiteStore
from fedflow.store.base import RUNNING, SUSPENDED, FlowRecord

try:
    from support import blocks_until
except ImportError:  # tests/ imported as a package
    from tests.support import blocks_until


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """Where a test's store file lives."""
    return tmp_path / "s.db"


class FsyncSpy:
    """Records the inode of every file synced with fsync or fdatasync (the real call still
    runs); `hold` makes syncs of the WAL wait until `release`."""

    def __init__(self) -> None:
        self.inodes: list[int] = []
        self.gate = threading.Event()
        self.gate.set()
        self.waiting = threading.Event()
        self.wal_inode: int | None = None

    def wrapping(self, real: Callable[[int], None]) -> Callable[[int], None]:
        def synced(fd: int) -> None:
            inode = os.fstat(fd).st_ino
            self.inodes.append(inode)
            if inode == self.wal_inode and not self.gate.is_set():
                self.waiting.set()
                assert self.gate.wait(10), "the test never released the held sync"
            real(fd)
        return synced

    def wal_syncs(self, db: Path) -> int:
        """How many syncs so far were of `db`'s WAL file."""
        wal = os.stat(f"{db}-wal").st_ino
        return sum(inode == wal for inode in self.inodes)

    def hold(self, db: Path) -> None:
        self.wal_inode = os.stat(f"{db}-wal").st_ino
        self.waiting.clear()
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()


SYNC_CALLS = [name for name in ("fsync", "fdatasync") if hasattr(os, name)]


@pytest.fixture
def fsyncs(monkeypatch: pytest.MonkeyPatch) -> Iterator[FsyncSpy]:
    spy = FsyncSpy()
    for name in SYNC_CALLS:
        monkeypatch.setattr(os, name, spy.wrapping(getattr(os, name)))
    yield spy
    spy.release()


def flow(flow_id: str = "f", status: str = RUNNING) -> FlowRecord:
    return FlowRecord(id=flow_id, name=None, status=status, input="null")


def tickets(made: SQLiteStore, count: int, timeout: float = 10.0) -> None:
    """Wait (bounded) until `count` commits of `made` have taken their group-sync ticket."""
    deadline = time.monotonic() + timeout
    while made._group.issued < count:
        assert time.monotonic() < deadline, f"fewer than {count} commits in {timeout}s"
        time.sleep(0.005)


def wal_syncs_of_each(db: Path, fsyncs: FsyncSpy, writes: list[Callable[[], object]]) -> list[int]:
    """For each write, how many fsyncs of the WAL file it made before returning."""
    counts = []
    for write in writes:
        before = fsyncs.wal_syncs(db) if os.path.exists(f"{db}-wal") else 0
        write()
        counts.append(fsyncs.wal_syncs(db) - before)
    return counts


@pytest.mark.parametrize("durability", ["process", "power"])
def test_both_durabilities_commit_to_a_wal_at_synchronous_normal(db: Path, durability: str) -> None:
    made = SQLiteStore(db, durability=durability)
    try:
        assert made._conn.execute("PRAGMA synchronous").fetchone() == (1,)
        assert made._conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert made._conn.execute("PRAGMA busy_timeout").fetchone() == (5000,)
    finally:
        made.close()


def test_default_durability_is_power(db: Path) -> None:
    made = SQLiteStore(db)
    try:
        assert made.durability == "power"
    finally:
        made.close()


def test_under_power_only_acknowledged_writes_sync_the_wal_before_returning(db: Path, fsyncs: FsyncSpy) -> None:
    # Given a "power" store, a write no caller hears of is not synced by itself (WAL at NORMAL
    # survives kill -9); every acknowledged one syncs the WAL, and with it all before it.
    made = SQLiteStore(db, durability="power")
    try:
        entry = '{"t":"j","k":"0","n":"s","v":1}'
        assert wal_syncs_of_each(db, fsyncs, [
            lambda: made.create(flow(), acknowledge=False),
            lambda: made.append_log("f", entry, acknowledge=False),
            lambda: made.append_log("f", entry + "x" * 5000, acknowledge=False),  # spilled: a tx
            lambda: made.transition("f", ["running"], {"updated": 1.0}),
            lambda: made.transition("f", ["running"], {"updated": 2.0}, [entry], acknowledge=False),
            lambda: made.transition("f", ["running"], {"status": "done"}),
            lambda: made.put_replica("peer", "{}"),
        ]) == [0, 0, 0, 1, 0, 1, 1]
        assert os.stat(db.parent).st_ino in fsyncs.inodes, "the new WAL's directory entry was synced"
    finally:
        made.close()
    again = SQLiteStore(db)
    try:
        assert again.get("f").status == "done" and len(again.load_log("f")) == 3
    finally:
        again.close()


def test_process_durability_never_syncs_the_wal(db: Path, fsyncs: FsyncSpy) -> None:
    made = SQLiteStore(db, durability="process")
    try:
        made.create(flow())
        made.append_log("f", '{"i":1}')
        made.transition("f", ["running"], {"status": "done"})
        assert fsyncs.wal_syncs(db) == 0
    finally:
        made.close()


def test_no_write_switches_the_synchronous_level(db: Path) -> None:
    made = SQLiteStore(db, durability="power")
    seen: list[str] = []
    try:
        made._conn.set_trace_callback(seen.append)
        made.create(flow(), acknowledge=False)
        made.append_log("f", '{"i":1}', acknowledge=False)
        made.transition("f", ["running"], {"status": "done"})
        made._conn.set_trace_callback(None)
        assert seen and not any("synchronous" in statement for statement in seen)
    finally:
        made.close()


def test_a_failed_unacknowledged_write_leaves_the_next_acknowledged_one_synced(db: Path, fsyncs: FsyncSpy) -> None:
    # Given another connection holding the write lock, when an unacknowledged write gives up
    # waiting, nothing changed and the next acknowledged commit still syncs the WAL.
    made = SQLiteStore(db, durability="power", timeout=0.1)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        made.create(flow("f", SUSPENDED))
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(FedflowError, match="locked"):
            made.transition("f", [SUSPENDED], {"status": RUNNING}, ['{"t":"s"}'], acknowledge=False)
        other.execute("ROLLBACK")
        assert made.get("f").status == SUSPENDED, "nothing changed"
        assert wal_syncs_of_each(db, fsyncs, [lambda: made.transition("f", None, {"updated": 1.0})]) == [1]
    finally:
        other.close()
        made.close()


READS: dict[str, Callable[[SQLiteStore], object]] = {
    "get": lambda made: made.get("f").status,
    "list": lambda made: made.list(),
    "records": lambda made: [rec.status for rec, _log in made.records()],
    "load_log": lambda made: made.load_log("f"),
    "pending": lambda made: made.pending(),
}
READ_AFTER = {"get": "done", "list": [("f", "done")], "records": ["done"], "load_log": ['{"t":"s"}'],
              "pending": []}


@pytest.mark.parametrize("read", sorted(READS))
def test_a_read_does_not_report_a_change_before_it_is_synced(db: Path, fsyncs: FsyncSpy, read: str) -> None:
    # Given an acknowledged write whose WAL sync is still running, a read in another thread
    # waits for that sync: it never reports a change a power loss could still undo.
    made = SQLiteStore(db, durability="power")
    try:
        made.create(flow("f", SUSPENDED))
        fsyncs.hold(db)
        writer = threading.Thread(target=made.transition, args=("f", [SUSPENDED], {"status": "done"},
                                                                ['{"t":"s"}']))
        writer.start()
        assert fsyncs.waiting.wait(10), "the write reached its sync"
        seen: list[object] = []
        blocks_until(fsyncs.release, lambda: seen.append(READS[read](made)))  # the read waits
        writer.join(10)
        assert seen == [READ_AFTER[read]]
    finally:
        fsyncs.release()
        made.close()


def test_concurrent_acknowledged_writes_share_wal_syncs(db: Path, fsyncs: FsyncSpy) -> None:
    # Given eight writers committing while a sync runs, they share the next one (group commit)
    # instead of each waiting for its own behind the store's lock.
    made = SQLiteStore(db, durability="power")
    try:
        made.create(flow("seed"))
        fsyncs.hold(db)
        first = threading.Thread(target=made.create, args=(flow("first"),))
        first.start()
        assert fsyncs.waiting.wait(10), "the first write is syncing"
        before = fsyncs.wal_syncs(db)
        base = made._group.issued
        writers = [threading.Thread(target=made.create, args=(flow(f"w{i}"),)) for i in range(8)]
        for writer in writers:
            writer.start()
        tickets(made, base + 8)  # all eight have committed and wait for a sync
        fsyncs.release()
        for writer in [first, *writers]:
            writer.join(10)
        assert not any(writer.is_alive() for writer in [first, *writers])
        assert fsyncs.wal_syncs(db) - before == 1, "eight commits made during one sync share the next"
        assert {fid for fid, _ in made.list()} == {"seed", "first", *(f"w{i}" for i in range(8))}
    finally:
        made.close()


def test_close_waits_for_a_sync_in_flight(db: Path, fsyncs: FsyncSpy) -> None:
    made = SQLiteStore(db, durability="power")
    made.create(flow())
    fsyncs.hold(db)
    outcome: list[bool] = []
    writer = threading.Thread(target=lambda: outcome.append(made.transition("f", None, {"status": "done"})))
    writer.start()
    assert fsyncs.waiting.wait(10), "the write reached its sync"
    blocks_until(fsyncs.release, made.close)  # close waits for the sync using the WAL
    writer.join(10)
    assert outcome == [True]
    again = SQLiteStore(db)
    try:
        assert again.get("f").status == "done"
    finally:
        again.close()


def test_power_without_a_wal_syncs_every_commit(tmp_path: Path) -> None:
    # An in-memory database has no WAL: "power" falls back to synchronous=FULL.
    made = SQLiteStore(":memory:", durability="power")
    try:
        assert made._conn.execute("PRAGMA synchronous").fetchone() == (2,)
        assert made.create(flow()) and made.get("f").status == RUNNING
    finally:
        made.close()


def failing_on(inode: int, real: Callable[[int], None]) -> Callable[[int], None]:
    """A sync call that fails with EIO for the file `inode` and runs `real` for others."""
    def sync(fd: int) -> None:
        if os.fstat(fd).st_ino == inode:
            raise OSError(5, "Input/output error")
        real(fd)
    return sync


def test_a_failed_sync_is_reported_and_final_until_the_store_is_reopened(db: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # After an fsync error the OS may have dropped unsynced pages, so a later good fsync proves
    # nothing: every later acknowledged write and read raises until the store is reopened.
    made = SQLiteStore(db, durability="power")
    try:
        made.create(flow())
        wal = os.stat(f"{db}-wal").st_ino
        with monkeypatch.context() as patch:
            for name in SYNC_CALLS:
                patch.setattr(os, name, failing_on(wal, getattr(os, name)))
            with pytest.raises(FedflowError, match="committed but could not sync") as caught:
                made.transition("f", ["running"], {"status": "done"})
        assert "power loss" in str(caught.value) and "reopen" in str(caught.value)
        with pytest.raises(FedflowError, match="could not sync"):
            made.transition("f", ["done"], {"updated": 3.0})
        with pytest.raises(FedflowError, match="cannot be read"):
            made.get("f")
    finally:
        made.close()
    assert not wal_descriptors(db), "close released the WAL"
    again = SQLiteStore(db)
    try:
        assert again.get("f").status == "done" and again.get("f").updated == 3.0
        assert again.transition("f", ["done"], {"updated": 4.0})
    finally:
        again.close()


def test_a_directory_that_cannot_be_synced_is_passed_over_as_sqlite_does(db: Path, fsyncs: FsyncSpy,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    SQLiteStore(db).close()
    made = SQLiteStore(db, durability="power")  # its first sync opens the WAL and syncs the directory
    try:
        monkeypatch.setattr(os, "fsync", failing_on(os.stat(db.parent).st_ino, os.fsync))
        assert made.create(flow())
        assert fsyncs.wal_syncs(db) >= 1 and made.get("f").status == RUNNING
    finally:
        made.close()


def test_a_wal_that_cannot_be_opened_yet_is_not_final(db: Path, fsyncs: FsyncSpy,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    # Out of file descriptors at the first sync: that write is reported, nothing was lost, and
    # the next acknowledged write opens the WAL and syncs both.
    SQLiteStore(db).close()
    made = SQLiteStore(db, durability="power")
    try:
        real_open = os.open

        def no_descriptors(path: Any, *args: Any, **kwargs: Any) -> int:
            if str(path).endswith("-wal"):
                raise OSError(24, "Too many open files")
            return real_open(path, *args, **kwargs)
        with monkeypatch.context() as patch:
            patch.setattr(os, "open", no_descriptors)
            with pytest.raises(FedflowError, match="could not start a sync"):
                made.create(flow("f"))
        assert wal_syncs_of_each(db, fsyncs, [lambda: made.create(flow("g"))]) == [1]
        assert {fid for fid, _ in made.list()} == {"f", "g"}
    finally:
        made.close()


def test_a_store_path_that_is_not_utf8_opens_and_syncs_its_wal(tmp_path: Path, fsyncs: FsyncSpy) -> None:
    place = tmp_path / os.fsdecode(b"caf\xe9")  # not UTF-8: a str with a surrogate escape
    place.mkdir()
    made = SQLiteStore(place / "s.db", durability="power")
    try:
        assert made.create(flow())
        assert fsyncs.wal_syncs(place / "s.db") >= 1
    finally:
        made.close()


def test_marking_flows_moved_syncs_them_even_when_the_last_id_is_gone(db: Path, fsyncs: FsyncSpy) -> None:
    with fedflow.Engine(name="a", store=str(db)) as engine:
        for flow_id in ("m1", "m2"):
            engine.store.create(flow(flow_id, SUSPENDED))
        before = fsyncs.wal_syncs(db)
        engine.federation._mark_moved(["m1", "m2", "gone"], "b")
        assert fsyncs.wal_syncs(db) == before + 1
        assert [engine.status(fid) for fid in ("m1", "m2")] == ["moved", "moved"]


def wal_descriptors(db: Path) -> list[str]:
    """This process's open descriptors on `db`'s WAL file (Linux /proc)."""
    wal = os.path.realpath(f"{db}-wal")
    found = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/self/fd/{fd}").startswith(wal):  # "... (deleted)" once removed
                found.append(fd)
    return found


def test_the_wal_synced_is_the_one_sqlite_writes_through_a_symlink(tmp_path: Path, fsyncs: FsyncSpy) -> None:
    (tmp_path / "real").mkdir()
    link = tmp_path / "link.db"
    link.symlink_to(tmp_path / "real" / "s.db")
    made = SQLiteStore(link, durability="power")
    try:
        assert made.create(flow())
        assert fsyncs.wal_syncs(tmp_path / "real" / "s.db") >= 1
    finally:
        made.close()


def test_the_wal_synced_stays_the_stores_after_a_chdir(tmp_path: Path, fsyncs: FsyncSpy,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    for place in ("a", "b"):
        (tmp_path / place).mkdir()
        SQLiteStore(tmp_path / place / "s.db").close()
    monkeypatch.chdir(tmp_path / "a")
    made = SQLiteStore("s.db", durability="power")
    try:
        monkeypatch.chdir(tmp_path / "b")
        other = SQLiteStore("s.db", durability="process")  # b's WAL exists too
        try:
            other.create(flow("b"))
            before = fsyncs.wal_syncs(tmp_path / "a" / "s.db")
            assert made.create(flow("a"))
            assert fsyncs.wal_syncs(tmp_path / "a" / "s.db") == before + 1
        finally:
            other.close()
    finally:
        made.close()
