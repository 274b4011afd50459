"""Workload 7 (console): paged listings, the console's pages and the metrics scrape on large stores.

Stores are filled with raw SQL inserts (the listing reads rows; how they got
there does not matter), then read through the real code: `SQLiteStore.list_page`
for `list_page_1m_ms`, and HTTP GETs of a running `Console` for the rest.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
import time
from pathlib import Path
from typing import Any

from bench import common
from fedflow import Engine
from fedflow.console import Console
from fedflow.store import SQLiteStore

_STATUSES = ("suspended", "done", "failed", "running", "cancelled")


def fill_store(path: Path, flows: int) -> None:
    """A SQLite store of `flows` flows (statuses and 7 flow names spread evenly), by raw inserts."""
    SQLiteStore(path, "process").close()
    with sqlite3.connect(path) as conn:
        conn.executemany("INSERT INTO flows (id, name, status, input, waiting, created, updated) "
                         "VALUES (?, ?, ?, '1', ?, ?, ?)",
                         ((f"flow-{i:08d}", f"flow{i % 7}", _STATUSES[i % 5], "go" if i % 5 == 0 else None,
                           float(i), float(i)) for i in range(flows)))


def add_long_flow(path: Path, flow_id: str, steps: int) -> None:
    """One done flow with a journal of `steps` entries."""
    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO flows (id, name, status, input, result) VALUES (?, 'long', 'done', '1', '2')",
                     (flow_id,))
        conn.executemany("INSERT INTO log (flow_id, n, entry) VALUES (?, ?, ?)",
                         ((flow_id, n, json.dumps({"t": "j", "k": str(n), "n": f"step s{n}", "v": {"n": n}}))
                          for n in range(steps)))


def _page_times(store: SQLiteStore, pages: int, **filters: Any) -> list[float]:
    samples, token = [], None
    for _ in range(pages):
        started = time.perf_counter()
        token = store.list_page(after=token, **filters).next_token
        samples.append(time.perf_counter() - started)
        if token is None:
            break
    return samples


def _get_times(port: int, path: str, times: int) -> list[float]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    samples = []
    try:
        for _ in range(times):
            def get() -> None:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    raise RuntimeError(f"GET {path}: {resp.status}")
            samples.append(common.timed(get))
    finally:
        conn.close()
    return samples


def workload_console(tmp: Path, page_flows: int, console_flows: int, steps: int, requests: int) -> dict[str, float]:
    """list_page_1m_ms (p50 of 50 pages, all and by status), console_list_100k_ms, console_flow_1000_steps_ms
    and metrics_scrape_ms (p50 of `requests` GETs each)."""
    big = tmp / "console-1m.db"
    fill_store(big, page_flows)
    store = SQLiteStore(big, "process")
    try:
        pages = _page_times(store, 50) + _page_times(store, 50, status="suspended")
    finally:
        store.close()
    db = tmp / "console-100k.db"
    fill_store(db, console_flows)
    add_long_flow(db, "long-1", steps)
    with Engine("bench-console", store=str(db), durability="process", recover=False) as engine:
        console = Console("127.0.0.1:0")
        console.start(engine)
        try:
            listing = _get_times(console.port, "/", requests)
            flow = _get_times(console.port, "/flows/long-1", requests)
            scrape = _get_times(console.port, "/metrics", requests)
        finally:
            console.close()
    return {"list_page_1m_ms": common.percentile(pages, 50) * 1e3,
            "console_list_100k_ms": common.percentile(listing, 50) * 1e3,
            "console_flow_1000_steps_ms": common.percentile(flow, 50) * 1e3,
            "metrics_scrape_ms": common.percentile(scrape, 50) * 1e3}
