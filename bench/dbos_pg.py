"""`make bench-peers`, PostgreSQL: workloads 1 and 2 on DBOS and on fedflow, one PostgreSQL server.

DBOS's own production setup keeps its system database in PostgreSQL
(`system_database_url`), where `DBOS.recv` wakes by LISTEN/NOTIFY rather than
by polling. Both sides run on the same server (FEDFLOW_TEST_POSTGRES, or a
throwaway one from tests/pg_server.py), each measurement on a new database of
its own:

- flows/s of sequential 3-step flows, start -> result, in one process
  (fedflow: `Engine(store=url).start`; DBOS: calling the workflow);
- resume -> result p50/p99 of a flow waiting after its first step (fedflow:
  `Engine.resume` from another thread; DBOS: `DBOS.send`, then `get_result`).

fedflow runs before and after DBOS (the median of the two passes is kept), so
drift on the shared machine hits both sides. Keys: `dbos_pg_*` and
`peers_fedflow_pg_*` (both kept by a later `make bench`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import fedflow
from bench import common, flows
from bench import workloads_pg as pg
from bench.workloads_local import timed_flow3

#: The spread of the random wait before DBOS's `send`: LISTEN/NOTIFY needs no poll phase,
#: this only keeps the sends from landing at one fixed offset after the start.
DBOS_PG_SEND_SPREAD_S = 0.05


def fedflow_flow3_rate(server: str, count: int) -> float:
    """Flows/s of `count` sequential 3-step flows on an in-process Engine on a new database."""
    with pg.fresh_database(server) as url, fedflow.Engine(name="bench-pg-flow3", store=url) as engine:
        return timed_flow3(engine, count)


def fedflow_pg_side(server: str, repeats: int, count: int, resumes: int) -> dict[str, float]:
    """Workloads 1 and 2 on fedflow on `server`: `peers_fedflow_pg_*` keys, medians of `repeats`."""
    rates = [{"rate": fedflow_flow3_rate(server, count)} for _ in range(repeats)]
    resume = common.repeat(repeats, lambda: pg.resume_latency(server, resumes))
    return {"peers_fedflow_pg_flow3_per_s": common.median_of(rates)["rate"],
            "peers_fedflow_pg_resume_p50_ms": resume["p50"], "peers_fedflow_pg_resume_p99_ms": resume["p99"]}


def measure_pg(run_dbos: Callable[[str], dict[str, Any]], quick: bool) -> dict[str, Any]:
    """fedflow, DBOS (`run_dbos(database_url)` in a child), fedflow again, on one server: the keys."""
    repeats, count, resumes = (1, 50, 20) if quick else (3, 500, 200)
    flows.define()
    with pg.postgres_server() as server:
        before = fedflow_pg_side(server, repeats, count, resumes)
        with pg.fresh_database(server) as url:
            dbos = run_dbos(url)
        after = fedflow_pg_side(server, repeats, count, resumes)
    return {**common.median_of([before, after]), "dbos_pg_flow3_per_s": dbos["flow3_per_s"],
            "dbos_pg_resume_p50_ms": dbos["resume_p50_ms"], "dbos_pg_resume_p99_ms": dbos["resume_p99_ms"]}
