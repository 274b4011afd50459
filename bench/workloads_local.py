"""Workloads 1, 2 and 4: one engine in this process (memory or SQLite in a temp dir).

1. `flow3`: a 3-step flow start -> done, sequential; flows/s per store (on SQLite also
   from 8 threads at once).
2. `resume`: flows suspend, another thread resumes them; resume call -> result.
4. `replay`: resume of a flow whose log holds N journaled steps.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import fedflow
from bench import common, flows

#: Workload-1 stores: results key -> (SQLite?, durability).
FLOW3_STORES = {"memory": (False, "power"), "process": (True, "process"), "power": (True, "power")}
REPLAY_STEPS = (10, 100, 1_000, 10_000)
FLOW3_THREADS = 8


def _db(tmp: Path, label: str) -> str:
    """A fresh SQLite path under `tmp`."""
    return str(tmp / f"{label}-{uuid.uuid4().hex[:8]}.db")


def _engine(tmp: Path, sqlite: bool, durability: str, label: str) -> fedflow.Engine:
    """An engine on a new SQLite file (or memory), named after the workload."""
    return fedflow.Engine(name=f"bench-{label}", store=_db(tmp, label) if sqlite else None,
                          durability=durability)


# ------------------------------------------------------------------ workload 1
def flow3_rate(tmp: Path, store: str, flows_count: int) -> float:
    """Flows/s of `flows_count` sequential 3-step flows on `store` (a FLOW3_STORES key)."""
    sqlite, durability = FLOW3_STORES[store]
    with _engine(tmp, sqlite, durability, f"flow3-{store}") as engine:
        return timed_flow3(engine, flows_count)


def timed_flow3(engine: fedflow.Engine, flows_count: int) -> float:
    """Flows/s of `flows_count` sequential 3-step flows on `engine` (after one to warm up)."""
    engine.start(flows.FLOW3, {"warm": True})
    begin = time.perf_counter()
    for i in range(flows_count):
        out = engine.start(flows.FLOW3, {"i": i, "user": "ada"})
    elapsed = time.perf_counter() - begin
    if out != {"i": flows_count - 1, "user": "ada", "a": 1, "b": 2, "c": 3}:
        raise RuntimeError(f"flow3 returned {out!r}")
    return flows_count / elapsed


def flow3_concurrent_rate(tmp: Path, store: str, flows_count: int, threads: int = FLOW3_THREADS) -> float:
    """Flows/s of `flows_count` 3-step flows started from `threads` threads at once on one
    engine: what group commit buys when acknowledged commits overlap."""
    sqlite, durability = FLOW3_STORES[store]

    def start() -> None:
        out = engine.start(flows.FLOW3, {"user": "ada"})
        if out != {"user": "ada", "a": 1, "b": 2, "c": 3}:
            raise RuntimeError(f"flow3 returned {out!r}")
    with _engine(tmp, sqlite, durability, f"flow3x{threads}-{store}") as engine:
        engine.start(flows.FLOW3, {"warm": True})
        return common.throughput(start, threads, max(flows_count // threads, 1))


def workload_flow3(tmp: Path, repeats: int, flows_count: int) -> dict[str, float]:
    """Workload 1 on every store: `flow3_<store>_per_s` medians; on SQLite also from
    FLOW3_THREADS threads at once (`flow3_<store>_8threads_per_s`, no target of its own)."""
    out = {}
    for store in FLOW3_STORES:
        runs = [{"rate": flow3_rate(tmp, store, flows_count)} for _ in range(repeats)]
        out[f"flow3_{store}_per_s"] = common.median_of(runs)["rate"]
    for store in ("process", "power"):
        runs = [{"rate": flow3_concurrent_rate(tmp, store, flows_count)} for _ in range(repeats)]
        out[f"flow3_{store}_{FLOW3_THREADS}threads_per_s"] = common.median_of(runs)["rate"]
    return out


# ------------------------------------------------------------------ workload 2
def _resume_all(engine: fedflow.Engine, ids: list[str], latencies: list[float]) -> None:
    """Resume each flow in turn, recording resume call -> result seconds."""
    for flow_id in ids:
        begin = time.perf_counter()
        result = engine.resume(flow_id, True)
        latencies.append(time.perf_counter() - begin)
        if not (isinstance(result, dict) and result.get("approved") is True):
            raise RuntimeError(f"resume of {flow_id} returned {result!r}")


def resume_latency(tmp: Path, durability: str, count: int) -> dict[str, float]:
    """p50/p99 ms of `count` external resumes, made from a thread other than the starter's."""
    with _engine(tmp, True, durability, f"resume-{durability}") as engine:
        return timed_resumes(engine, count)


def timed_resumes(engine: fedflow.Engine, count: int) -> dict[str, float]:
    """p50/p99 ms of `count` resumes of waiting flows on `engine`, from a thread other than the
    starter's (one more first, to warm up)."""
    ids = [engine.start(flows.WAITER, {"i": i}).id for i in range(count + 1)]
    latencies: list[float] = []
    resumer = threading.Thread(target=_resume_all, args=(engine, ids, latencies), name="bench-resumer")
    resumer.start()
    resumer.join()
    if len(latencies) != len(ids):
        raise RuntimeError("the resumer thread failed; see its traceback above")
    return common.latency_ms(latencies[1:])


def workload_resume(tmp: Path, repeats: int, count: int) -> dict[str, float]:
    """Workload 2 on SQLite, "power" (the default, the keyed numbers) and "process"."""
    power = common.repeat(repeats, lambda: resume_latency(tmp, "power", count))
    process = common.repeat(repeats, lambda: resume_latency(tmp, "process", count))
    return {"resume_p50_ms": power["p50"], "resume_p99_ms": power["p99"],
            "resume_process_p50_ms": process["p50"], "resume_process_p99_ms": process["p99"]}


# ------------------------------------------------------------------ workload 4
def _build_replay_flow(path: str, steps: int) -> str:
    """Run the `steps`-step flow to its first suspend (durability "process", to build fast); its id."""
    with fedflow.Engine(name="bench-replay", store=path, durability="process") as engine:
        out = engine.start(flows.replay_name(steps), 0)
    if not fedflow.is_suspended(out):
        raise RuntimeError(f"the replay flow did not suspend: {out!r}")
    return out.id


def replay_times(tmp: Path, steps: int, resumes: int) -> list[float]:
    """Seconds per resume of a flow holding `steps` journaled steps (default durability)."""
    path = _db(tmp, f"replay-{steps}")
    flow_id = _build_replay_flow(path, steps)
    times = []
    with fedflow.Engine(name="bench-replay", store=path) as engine:
        for k in range(resumes):
            begin = time.perf_counter()
            out = engine.resume(flow_id, k)
            times.append(time.perf_counter() - begin)
            if not fedflow.is_suspended(out):
                raise RuntimeError(f"resume {k} of the {steps}-step flow returned {out!r}")
    return times


def workload_replay(tmp: Path, resumes: int, steps_list: tuple[int, ...] = REPLAY_STEPS) -> dict[str, Any]:
    """Workload 4: `replay_<n>_ms` medians, per-step cost, and growth 1,000 -> 10,000."""
    out: dict[str, float] = {}
    for steps in steps_list:
        ms = common.median(replay_times(tmp, steps, resumes)) * 1e3
        out[f"replay_{steps}_ms"] = ms
        out[f"replay_{steps}_us_per_step"] = ms * 1e3 / steps
    if {1_000, 10_000} <= set(steps_list):
        out["replay_growth_1000_to_10000"] = common.ratio(out["replay_10000_ms"], out["replay_1000_ms"])
    return out


# ------------------------------------------------------------------ baseline of 1 and 2
_SQLITE_SYNCHRONOUS = {"process": "NORMAL", "power": "FULL"}


def sqlite_commits(tmp: Path, durability: str, count: int) -> dict[str, float]:
    """Raw sqlite3 in WAL: `count` one-row write transactions; commits/s and p50 ms.

    What the store is built on, with SQLite's own setting for each guarantee (fedflow
    commits at NORMAL and, under "power", fsyncs the WAL itself: the same one sync)."""
    import sqlite3

    conn = sqlite3.connect(_db(tmp, f"sqlite-{durability}"), isolation_level=None)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {_SQLITE_SYNCHRONOUS[durability]}")
        conn.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
        samples = []
        for i in range(count):
            begin = time.perf_counter()
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("INSERT INTO t (k, v) VALUES (?, ?)", (i, '{"i":1,"user":"ada"}'))
            conn.execute("COMMIT")
            samples.append(time.perf_counter() - begin)
    finally:
        conn.close()
    return {"per_s": count / sum(samples), "p50_ms": common.percentile(samples, 50) * 1e3}


def workload_sqlite(tmp: Path, repeats: int, count: int) -> dict[str, float]:
    """The floor under workloads 1 and 2: `sqlite_<durability>_commits_per_s` and `..._commit_p50_ms`."""
    out = {}
    for durability in ("process", "power"):
        runs = common.repeat(repeats, lambda d=durability: sqlite_commits(tmp, d, count))
        out[f"sqlite_{durability}_commits_per_s"] = runs["per_s"]
        out[f"sqlite_{durability}_commit_p50_ms"] = runs["p50_ms"]
    return out
