"""Group commit: one sync makes every commit made before it durable (`GroupSync`), and the
WAL file such a sync flushes (`WalFile`).

SQLite under WAL appends each commit's pages to the WAL file; one fsync of
that file makes every commit written before it survive power loss. Writers
that commit at the same time can therefore share one fsync instead of
queueing for one each behind the store's lock.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable


class SyncFailed(OSError):
    """A sync failed, now or earlier: nothing committed since the last good sync is known to
    be durable (the OS may have dropped the unsynced pages), so no later wait succeeds."""


class SyncNotRun(OSError):
    """Raised by a sync function that could not start (e.g. out of file descriptors): nothing
    was lost, so unlike a failed sync it is not final; a later wait tries again."""


class GroupSync:
    """Makes commits durable with as few calls of `sync` as concurrent writers allow.

    A writer commits without syncing, takes a ticket with `committed()` (while it still
    holds the store's lock, so tickets follow commit order), releases the lock and calls
    `wait(ticket)` before telling its caller. If no sync is running, the waiter runs one,
    covering every ticket issued so far; otherwise it waits for the running one and, if its
    ticket came too late for that one, for the next. So N writers committing together cost
    about two syncs, not N one after the other.

    A failed sync is final (as in PostgreSQL): after an fsync error Linux may mark the
    unsynced pages clean, so a later successful sync would prove nothing about them. Every
    later `wait` for a ticket not yet durable raises `SyncFailed`; reopen the store.
    """

    def __init__(self, sync: Callable[[], None]) -> None:
        """`sync` makes everything committed before it was called durable (raises on failure)."""
        self._sync = sync
        self._cond = threading.Condition(threading.Lock())
        self._issued = 0      # tickets handed out: one per commit that needs to be durable
        self._durable = 0     # every ticket up to this one is durable
        self._syncing = False
        self._failure: OSError | None = None
        self._closed = False

    @property
    def issued(self) -> int:
        """How many tickets have been handed out."""
        with self._cond:
            return self._issued

    def committed(self) -> int:
        """The ticket of a commit that just ended; pass it to `wait`."""
        with self._cond:
            self._issued += 1
            return self._issued

    def wait(self, ticket: int) -> None:
        """Return once commit `ticket` is durable, syncing if no one else is. Raises
        `SyncFailed` if a sync failed (now or before) or the group was closed first."""
        if self._durable >= ticket:  # only ever grows: a read without the lock is safe here
            return
        with self._cond:
            while self._durable < ticket:
                if self._failure is not None:
                    raise SyncFailed(self._failure.errno, f"a sync failed earlier ({self._failure}); "
                                     "later commits are not known to be durable")
                if self._syncing:
                    self._cond.wait()
                    continue
                if self._closed:
                    raise SyncFailed(None, "the store was closed before this commit was synced")
                self._run_sync()

    def _run_sync(self) -> None:
        """Under the condition: run one sync covering every ticket issued so far."""
        covers = self._issued  # every commit with a ticket so far has written its pages
        try:
            self._syncing = True
            self._cond.release()
            try:
                self._sync()
            finally:
                self._reacquire()
            self._durable = max(self._durable, covers)
        except SyncNotRun as exc:
            raise SyncFailed(exc.errno, f"could not start a sync ({exc})") from exc
        except OSError as exc:
            self._failure = exc
            raise SyncFailed(exc.errno, f"could not sync ({exc})") from exc
        finally:
            self._syncing = False
            self._cond.notify_all()

    def _reacquire(self) -> None:
        """Take the condition's lock back even if an exception (a signal) interrupts the wait for
        it; the interruption is raised once the lock is held."""
        interrupted: BaseException | None = None
        while True:
            try:
                self._cond.acquire()
                break
            except BaseException as exc:
                interrupted = exc
        if interrupted is not None:
            raise interrupted

    def wait_for_all(self) -> None:
        """Return once every commit that has a ticket so far is durable."""
        self.wait(self.issued)

    def close(self) -> None:
        """Make every ticket durable if possible, then refuse to sync again; once this
        returns no sync is running, so the sync's resources may be released."""
        try:
            self.wait_for_all()
        except SyncFailed:
            pass  # its writers were told; closing goes on
        with self._cond:
            while self._syncing:
                self._cond.wait()
            self._closed = True


class WalFile:
    """A WAL file synced through one descriptor, opened at the first sync. SQLite removes the
    file only when the database's last connection closes, so while the store's connection is
    open the descriptor stays valid."""

    def __init__(self, path: str) -> None:
        """`path`: the WAL file as SQLite names it (the database's resolved path + "-wal")."""
        self.path = path
        self._fd: int | None = None

    def sync(self) -> None:
        """fdatasync the file (as SQLite does), so every commit written to it so far survives
        power loss; the first time, also sync its directory (as SQLite does for a new WAL)."""
        if self._fd is None:
            try:
                fd = os.open(self.path, os.O_RDONLY)
            except OSError as exc:  # nothing lost yet: a later write tries again
                raise SyncNotRun(exc.errno, f"cannot open the WAL file {self.path!r}: {exc.strerror}") from exc
            _sync_directory(os.path.dirname(self.path))
            self._fd = fd
        (os.fdatasync if hasattr(os, "fdatasync") else os.fsync)(self._fd)

    def close(self) -> None:
        """Release the descriptor (call only once no sync can run: after `GroupSync.close`)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def _sync_directory(path: str) -> None:
    """fsync a directory so a new file's entry in it is durable; as SQLite does, a directory that
    cannot be opened or synced (some network and FUSE file systems) is passed over."""
    try:
        directory = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)
