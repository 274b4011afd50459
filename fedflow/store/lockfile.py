"""One `fedflow serve` per SQLite file: an exclusive `flock` on a lock file beside it.

The lock file (``NAME.db.lock``) holds JSON naming the holder (its name, pid
and listen address), so a second `serve` is refused with one line saying who
holds the store. The kernel drops a `flock` when its process dies, however it
dies, so a `kill -9` never leaves a stale lock: the file stays, the lock does
not. Only `serve` takes the lock; an `Engine` opened by a script beside it
is still allowed (the store's compare-and-set keeps both safe).
"""

from __future__ import annotations

import fcntl
import json
import os
from typing import IO

from ..errors import FedflowError

__all__ = ["ServeLock", "StoreHeld", "hold_for_serve", "lock_path"]


class StoreHeld(FedflowError):
    """Raised when another live `fedflow serve` holds the store's lock; the message names it."""


def lock_path(db: str) -> str:
    """The lock file of SQLite file `db`: beside the file its path resolves to (symlinks followed)."""
    return os.path.realpath(db) + ".lock"


def _needs_lock(db: str) -> bool:
    """Whether `db` is a SQLite file (not a server URL, not an in-memory database)."""
    return "://" not in db and db != ":memory:" and not db.startswith("file:")


class ServeLock:
    """A held lock (or none, for a store that needs none); `release()` it when serving ends."""

    def __init__(self, path: str | None, handle: IO[str] | None) -> None:
        self.path = path
        self._handle = handle

    def release(self) -> None:
        """Unlock (idempotent). The file stays: removing it would let two serves lock two files."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()  # closing the descriptor drops the flock


def _holder(handle: IO[str]) -> str:
    """The holder named by the lock file's JSON, as a phrase; what it can when the file is odd."""
    try:
        handle.seek(0)
        info = json.loads(handle.read() or "{}")
    except (OSError, ValueError):
        info = {}
    if not isinstance(info, dict) or not info:
        return "a starting fedflow serve"
    return (f"fedflow serve {info.get('name')!r} (pid {info.get('pid')}, listening on "
            f"{info.get('listen')})")


def hold_for_serve(db: str, name: str, listen: str) -> ServeLock:
    """Take the exclusive lock of SQLite store `db` for serve `name` on `listen`, or raise
    `StoreHeld` naming the live holder. A PostgreSQL URL needs no lock (many serves share it)."""
    if not _needs_lock(db):
        return ServeLock(None, None)
    path = lock_path(db)
    try:
        handle = open(path, "a+", encoding="utf-8")  # held open while serving
    except OSError as exc:
        raise FedflowError(f"cannot create the lock file {path} of --db {db}: {exc.strerror or exc}; "
                           f"check that its directory exists and is writable") from exc
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(handle)
        handle.close()
        raise StoreHeld(f"--db {db} is held by {holder} (lock {path}); stop that serve first, or give "
                        f"this one another --db") from None
    except OSError as exc:
        handle.close()
        raise FedflowError(f"cannot lock {path} for --db {db}: {exc.strerror or exc}; put the store on a "
                           f"local file system") from exc
    handle.truncate(0)
    handle.write(json.dumps({"name": name, "pid": os.getpid(), "listen": listen}))
    handle.flush()
    return ServeLock(path, handle)
