"""Workload 7, `time`: durable timers in a SQLite store crowded with other timers.

- lateness: one-step flows (`flows.NAPPER`: sleep until a time, then a step), each
  due at its own time, woken by the engine's timer service; due time -> the flow's
  `done` committed, with `others` timers pending in the same store (due in a day).
- burst: `burst` flows due at the same instant in that store, at "power"; due
  time -> the last of them done.
- open: a `fedflow serve` child on that store (all `others` timers still
  pending): start -> SERVING, and its VmRSS; an empty store beside it.

The `others` timers are copies of one sleeping flow's row and log under fresh ids,
written with the store's `put_flows` in batches: rows, as the engine would leave
them, without running 100,000 flows.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import fedflow
from bench import common, flows
from bench.workloads_grpc import fedflow_serve
from fedflow.client import ControlClient
from fedflow.store import SQLiteStore
from fedflow.store.base import DONE, LogEntry

#: Lateness flows fall due this far apart, so each is done before the next is due.
LATENESS_SPACING_S = 0.01
#: Where the pending `others` timers are due: far beyond the run.
OTHERS_DUE_IN_S = 86_400.0
_BATCH = 10_000


class DoneTimesStore(SQLiteStore):
    """A SQLite store that notes when each flow's `done` was committed (`time.time()`)."""

    def __init__(self, path: Path, durability: str) -> None:
        super().__init__(path, durability)
        self.done_at: dict[str, float] = {}

    def transition(self, flow_id: str, expect: Any, changes: dict[str, Any], append: Sequence[LogEntry] = (),
                   *, version: int | None = None, acknowledge: bool = True) -> bool:
        """As `SQLiteStore.transition`; a flow's commit as done is timed once it returns."""
        ok = super().transition(flow_id, expect, changes, append, version=version, acknowledge=acknowledge)
        if ok and changes.get("status") == DONE:
            self.done_at[flow_id] = time.time()
        return ok


def nap(engine: fedflow.Engine, at: float, flow_id: str) -> None:
    """Start a napper due at `at`; RuntimeError if it did not suspend (`at` already passed)."""
    out = engine.start(flows.NAPPER, {"at": at}, id=flow_id)
    if not isinstance(out, fedflow.Suspended):
        raise RuntimeError(f"napper {flow_id} did not suspend (it returned {out!r}): starting the "
                           f"workload's flows took longer than planned")


def clone_sleepers(store: SQLiteStore, template_id: str, prefix: str, count: int) -> list[str]:
    """Copy the sleeping flow `template_id` under `count` fresh ids (batched `put_flows`); the ids."""
    rec, log = store.get(template_id), store.load_log(template_id)
    if rec is None or rec.wake_at is None:
        raise RuntimeError(f"flow {template_id} is not sleeping")
    ids = [f"{prefix}-{i:07d}" for i in range(count)]
    for first in range(0, count, _BATCH):
        store.put_flows([(dataclasses.replace(rec, id=fid), log) for fid in ids[first:first + _BATCH]])
    return ids


def wait_done(store: DoneTimesStore, ids: list[str], timeout: float) -> list[float]:
    """The done times of `ids`, once all are done (bounded by `timeout`)."""
    common.wait_until(lambda: all(fid in store.done_at for fid in ids), timeout,
                      f"{len(ids)} woken flows to finish")
    return [store.done_at[fid] for fid in ids]


def lateness(engine: fedflow.Engine, store: DoneTimesStore, count: int) -> dict[str, float]:
    """`count` nappers due LATENESS_SPACING_S apart: due -> done, p50/p99/max in ms."""
    base = time.time() + 1.0 + count * LATENESS_SPACING_S  # room to start them all first
    due = {f"late-{k:05d}": base + k * LATENESS_SPACING_S for k in range(count)}
    for flow_id, at in due.items():
        nap(engine, at, flow_id)
    done = wait_done(store, list(due), timeout=base - time.time() + count * LATENESS_SPACING_S + 60)
    late = [finished - at for finished, at in zip(done, due.values(), strict=True)]
    if engine.result(next(iter(due))) != {"at": base, "woke": 1}:
        raise RuntimeError(f"a napper finished with {engine.result(next(iter(due)))!r}")
    return {**common.latency_ms(late), "max": max(late) * 1e3}


def burst(engine: fedflow.Engine, store: DoneTimesStore, count: int, round_: int) -> float:
    """Seconds from the instant `count` nappers fall due together to the last of them done."""
    at = time.time() + 1.0
    template = f"burst{round_}-template"
    nap(engine, at, template)
    ids = [template, *clone_sleepers(store, template, f"burst{round_}", count - 1)]
    if time.time() >= at:
        raise RuntimeError("the burst's flows were not all written before they fell due")
    return max(wait_done(store, ids, timeout=120)) - at


def serve_open(tmp: Path, db: Path, name: str, wake_id: str | None = None) -> dict[str, float]:
    """Start -> SERVING of `fedflow serve --db db` (s), and its VmRSS (MiB) once serving and
    after `wake_id`'s timer was fired over the wire."""
    begin = time.perf_counter()
    with fedflow_serve(tmp, name, db, timeout=120) as (proc, address), ControlClient(address) as client:
        opened = time.perf_counter() - begin
        ready = common.vm_rss_mb(proc.pid)
        if wake_id is not None and client.wake(wake_id)["status"] != "done":
            raise RuntimeError(f"flow {wake_id} did not finish when woken on the serving child")
        used = common.vm_rss_mb(proc.pid)
    return {"open": opened, "rss": max(ready, used)}


def workload_time(tmp: Path, others: int, lateness_flows: int, burst_flows: int,
                  burst_repeats: int) -> dict[str, float]:
    """Workload 7 (see the module docstring): its keys."""
    db = tmp / "timers.db"
    store = DoneTimesStore(db, "power")
    begin = time.perf_counter()
    with fedflow.Engine(name="bench-time", store=store, run_timers=False) as engine:
        nap(engine, time.time() + OTHERS_DUE_IN_S, "other-template")
        pending = ["other-template", *clone_sleepers(store, "other-template", "other", others - 1)]
        built = time.perf_counter() - begin
        engine.start_timers()
        late = lateness(engine, store, lateness_flows)
        bursts = [burst(engine, store, burst_flows, r) for r in range(burst_repeats)]
        if len(engine.timers()) != others:
            raise RuntimeError(f"{len(engine.timers())} timers pending after the run, expected {others}")
    full = serve_open(tmp, db, "bench-timers", wake_id=pending[-1])
    empty = serve_open(tmp, tmp / "empty-timers.db", "bench-timers-empty")
    label = "100k" if others == 100_000 else str(others)
    return {"timer_lateness_p50_ms": late["p50"], "timer_lateness_p99_ms": late["p99"],
            "timer_lateness_max_ms": late["max"], f"timer_burst_{burst_flows}_s": common.median(bursts),
            f"timers_{label}_open_s": full["open"], f"timers_{label}_rss_mb": full["rss"],
            "timers_empty_open_s": empty["open"], "timers_empty_rss_mb": empty["rss"],
            f"timers_{label}_build_s": built, f"timers_{label}_db_mib": common.file_size(db) / 2**20}
