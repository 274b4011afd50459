"""Workload 7 `postgres`: fedflow on a PostgreSQL store that `fedflow serve` processes share.

- `flow3_pg_1serve_per_s`, `flow3_pg_2serve_per_s`: 3-step flows started over gRPC from
  CALLERS threads, spread over 1 or 2 `fedflow serve` children on one database.
- `resume_pg_p50_ms` (and p99): resume call -> result of a waiting flow, an `Engine` in this
  process on PostgreSQL, resumed from another thread (as workload 2 on SQLite).
- `pg_takeover_100_s`: two serves (lease `TAKEOVER_LEASE` s); one runs 100 flows, each blocked
  in a step, and is killed with SIGKILL; seconds from the kill until all 100 are done on the
  other (the lease runs out, the other claims them and re-runs them by replay).

The server is FEDFLOW_TEST_POSTGRES when set, else a throwaway one (tests/pg_server.py); every
measurement gets a new database on it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import fedflow
from bench import common, flows
from bench.workloads_grpc import serve_argv, wait_serving
from bench.workloads_local import timed_resumes
from fedflow.client import ControlClient

CALLERS = 8
TAKEOVER_LEASE = 2.0
TAKEOVER_FLOWS = 100


@contextlib.contextmanager
def postgres_server() -> Iterator[str]:
    """The URL of a PostgreSQL server for the run: FEDFLOW_TEST_POSTGRES, or a throwaway one."""
    url = os.environ.get("FEDFLOW_TEST_POSTGRES")
    if url:
        yield url
        return
    spec = importlib.util.spec_from_file_location("pg_server", common.ROOT / "tests" / "pg_server.py")
    assert spec is not None and spec.loader is not None
    pg_server = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(pg_server)
    with pg_server.running_postgres() as started:
        yield started


@contextlib.contextmanager
def fresh_database(server: str) -> Iterator[str]:
    """A new database on `server` for one measurement; dropped afterwards."""
    import psycopg

    name = f"fedflow_bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(server)
    try:
        yield urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))
    finally:
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                         "AND pid <> pg_backend_pid()", (name,))
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')


@contextlib.contextmanager
def pg_serves(tmp: Path, url: str, count: int, lease: float | None = None, env: dict[str, str] | None = None,
              prefix: str = "pg") -> Iterator[list[tuple[common.Child, str]]]:
    """`count` `fedflow serve` children named PREFIX-N on the database at `url`; [(child, address), ...]."""
    with contextlib.ExitStack() as stack:
        started = []
        saved = dict(os.environ)
        os.environ.update(env or {})  # common.child passes this process's environment on
        try:
            for n in range(count):
                port = common.free_port()
                argv = serve_argv(f"{prefix}-{n}", port, url)  # type: ignore[arg-type]
                if lease is not None:
                    argv += ["--lease", str(lease)]
                proc = stack.enter_context(common.child(argv, tmp, f"{prefix}-{n}-{port}"))
                started.append((proc, f"127.0.0.1:{port}"))
        finally:
            os.environ.clear()
            os.environ.update(saved)
        for proc, address in started:
            wait_serving(proc, address)
        yield started


def flow3_serve_rate(tmp: Path, server: str, serves: int, flows_count: int) -> float:
    """Flows/s of 3-step flows started over gRPC from CALLERS threads across `serves` serves."""
    with fresh_database(server) as url, pg_serves(tmp, url, serves) as children:
        addresses = [address for _proc, address in children]
        clients = [ControlClient(addresses[i % serves], deadline=60) for i in range(CALLERS)]
        mine = threading.local()
        taken = iter(range(CALLERS))
        lock = threading.Lock()

        def start() -> None:
            if not hasattr(mine, "client"):
                with lock:
                    mine.client = clients[next(taken)]
            out = mine.client.start(flows.FLOW3, {"user": "ada"})
            if out.get("result") != {"user": "ada", "a": 1, "b": 2, "c": 3}:
                raise RuntimeError(f"flow3 returned {out!r}")

        try:
            for client in clients[:serves]:
                client.start(flows.FLOW3, {"warm": True})
            return common.throughput(start, CALLERS, max(flows_count // CALLERS, 1))
        finally:
            for client in clients:
                client.close()


def resume_latency(server: str, count: int) -> dict[str, float]:
    """p50/p99 ms of `count` resumes of waiting flows on an in-process Engine on PostgreSQL."""
    with fresh_database(server) as url, fedflow.Engine(name="bench-pg-resume", store=url) as engine:
        return timed_resumes(engine, count)


def takeover_seconds(tmp: Path, server: str, count: int = TAKEOVER_FLOWS, lease: float = TAKEOVER_LEASE) -> float:
    """Seconds from a SIGKILL of the serve running `count` blocked flows (it starts them itself,
    see `flows.START_GATED_ENV`) until the other serve has all of them done."""
    gate = tmp / f"gate-{uuid.uuid4().hex[:8]}"
    gate.mkdir()
    with fresh_database(server) as url, \
            pg_serves(tmp, url, 1, lease=lease, env={flows.GATE_ENV: str(gate),
                                                      flows.START_GATED_ENV: str(count)}, prefix="victim") as victims, \
            pg_serves(tmp, url, 1, lease=lease, env={flows.GATE_ENV: str(gate)}, prefix="heir") as heirs:
        (victim, _victim_addr), (_heir, heir_addr) = victims[0], heirs[0]
        with ControlClient(heir_addr, deadline=30) as heir:
            def statuses() -> dict[str, int]:
                found: dict[str, int] = {}
                for flow in heir.list()["flows"]:
                    found[flow["status"]] = found.get(flow["status"], 0) + 1
                return found

            common.wait_until(lambda: statuses().get("running") == count, 60, f"{count} flows running")
            os.killpg(victim.pid, signal.SIGKILL)
            killed = time.perf_counter()
            (gate / "open").touch()
            common.wait_until(lambda: statuses().get("done") == count, 60 + lease, f"{count} flows taken over")
            elapsed = time.perf_counter() - killed
    return elapsed


def workload_postgres(tmp: Path, repeats: int, flows_count: int, resume_count: int) -> dict[str, Any]:
    """Workload 7: its keys, medians of `repeats` runs (the takeover once: it waits out a lease)."""
    with postgres_server() as server:
        one = [{"rate": flow3_serve_rate(tmp, server, 1, flows_count)} for _ in range(repeats)]
        two = [{"rate": flow3_serve_rate(tmp, server, 2, flows_count)} for _ in range(repeats)]
        resume = common.repeat(repeats, lambda: resume_latency(server, resume_count))
        takeover = takeover_seconds(tmp, server)
    return {"flow3_pg_1serve_per_s": common.median_of(one)["rate"],
            "flow3_pg_2serve_per_s": common.median_of(two)["rate"],
            "resume_pg_p50_ms": resume["p50"], "resume_pg_p99_ms": resume["p99"],
            "pg_takeover_100_s": takeover, "pg_takeover_lease_s": TAKEOVER_LEASE}
