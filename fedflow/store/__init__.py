"""Stores: where an engine keeps its flows, logs and replica slots.

`open_store` turns what a user passes as ``Engine(store=...)`` into a `Store`.
"""

from __future__ import annotations

import os

from .base import FlowRecord, Store
from .memory import MemoryStore
from .sqlite import DURABILITY, SQLiteStore

__all__ = ["FlowRecord", "MemoryStore", "SQLiteStore", "Store", "open_store"]


def open_store(store: str | os.PathLike[str] | Store | None, durability: str = "power", *,
               name: str = "fedflow", lease: float | None = None) -> Store:
    """The store for `store`: None -> a new MemoryStore, a Store -> itself,
    a ``postgresql://`` URL -> a PostgresStore shared with other instances (`name`: this one's;
    `lease`: seconds its running flows stay its own after its last heartbeat, default 5),
    a path -> a SQLiteStore on that file with `durability` ("power" or "process").

    >>> type(open_store(None)).__name__
    'MemoryStore'
    """
    if durability not in DURABILITY:
        raise ValueError(f"durability must be one of {sorted(DURABILITY)}, not {durability!r}")
    if store is None:
        return MemoryStore()
    if isinstance(store, Store):
        return store
    if isinstance(store, str) and store.startswith(("postgresql://", "postgres://")):
        from .postgres import PostgresStore  # psycopg loads only for a PostgreSQL store

        return PostgresStore(store, name=name) if lease is None else PostgresStore(store, name=name, lease=lease)
    if isinstance(store, (str, os.PathLike)):
        return SQLiteStore(store, durability)
    raise TypeError(f"store must be None, a path or a Store, not {type(store).__name__}")
