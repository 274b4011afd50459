"""`make bench-peers`: workloads 1, 2 and sleeping flows on DBOS beside fedflow, on SQLite and on PostgreSQL.

    .venv-peers/bin/python bench/dbos_workloads.py [--quick] [--only sqlite|pg] [--out bench/results.json]

fedflow runs in this process, before and after the first DBOS run (the
median of the two passes is kept); each DBOS configuration runs in a child
process of its own (DBOS is a process-wide singleton): its default
(`DBOS(config={"name", "system_database_url": "sqlite:///..."})`, which
polls for messages every second) and, as the stricter comparison, the same
with `notification_listener_polling_interval_sec=0.01`. External resume in
DBOS is `DBOS.recv` inside the workflow and `DBOS.send` from outside; the
time is from `send` to `get_result()`. The DBOS keys, the fedflow numbers of
this run (`peers_fedflow_*`) and their ratios are merged into the results file.
Then 1,000 flows asleep on each side, each in a fresh interpreter
(`bench/dbos_sleep.py`): wake lateness, RSS and threads (`dbos_sleep_*`,
`peers_fedflow_sleep_*`).
Then workloads 1 and 2 with both sides on one PostgreSQL server (DBOS's
production setup; bench/dbos_pg.py): `dbos_pg_*`, `peers_fedflow_pg_*`.
"""

from __future__ import annotations

import argparse
import datetime
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common, dbos_pg, flows
from bench import workloads_local as local
from bench.dbos_sleep import sleep_keys
from bench.report import print_table, target_verdicts
from bench.run import rounded, write_results

CHILD_TIMEOUT = 300.0
MISSING_DBOS = ("bench-peers: the `dbos` package is not importable in this interpreter ({error}); "
                "run `make bench-peers`, which installs it from PyPI into .venv-peers")


# ------------------------------------------------------------------ the DBOS side (child process)
def dbos_child(db_url: str, poll: float | None, spread: float, flows_count: int, resumes: int,
               repeats: int) -> dict[str, Any]:
    """Workloads 1 and 2 on DBOS in this process, its system database at `db_url` (SQLite or
    PostgreSQL); flows/s and resume p50/p99 ms. `spread`: see `_dbos_resumes`."""
    from dbos import DBOS

    config: dict[str, Any] = {"name": "fedflow-bench", "system_database_url": db_url}
    if poll is not None:
        config["notification_listener_polling_interval_sec"] = poll
    DBOS(config=config)  # type: ignore[arg-type]
    flow3, waiter = _define_dbos_workflows(DBOS)
    DBOS.launch()
    try:
        rates = [_dbos_flow3_rate(flow3, flows_count) for _ in range(repeats)]
        latencies = _dbos_resumes(DBOS, waiter, resumes, spread)
    finally:
        DBOS.destroy()
    return {"flow3_per_s": statistics.median(rates), **{f"resume_{k}_ms": v for k, v in
                                                        common.latency_ms(latencies).items()}}


def _define_dbos_workflows(dbos: Any) -> tuple[Any, Any]:
    """The DBOS twins of bench.flows.flow3 and bench.flows.waiter."""
    @dbos.step()
    def mark_a(x: dict) -> dict:
        return {**x, "a": 1}

    @dbos.step()
    def mark_b(x: dict) -> dict:
        return {**x, "b": 2}

    @dbos.step()
    def mark_c(x: dict) -> dict:
        return {**x, "c": 3}

    @dbos.workflow()
    def flow3(x: dict) -> dict:
        return mark_c(mark_b(mark_a(x)))

    @dbos.workflow()
    def waiter(x: dict) -> dict:
        x = mark_a(x)
        approved = dbos.recv("approve", timeout_seconds=60)
        return mark_b({**x, "approved": approved})

    return flow3, waiter


def _dbos_flow3_rate(flow3: Any, count: int) -> float:
    """Flows/s of `count` sequential DBOS flow3 workflows."""
    flow3({"warm": True})
    begin = time.perf_counter()
    for i in range(count):
        out = flow3({"i": i, "user": "ada"})
    elapsed = time.perf_counter() - begin
    if out != {"i": count - 1, "user": "ada", "a": 1, "b": 2, "c": 3}:
        raise RuntimeError(f"DBOS flow3 returned {out!r}")
    return count / elapsed


def _dbos_resumes(dbos: Any, waiter: Any, count: int, spread: float) -> list[float]:
    """Seconds from `DBOS.send` to the workflow's result, `count` times.

    Each workflow is started, left waiting in `recv` for 20 ms plus a random time
    up to `spread` (on SQLite its poll interval, so the send lands at a random
    phase of DBOS's poll, as an outside event would), then sent its message."""
    rng = random.Random(7)
    samples = []
    for i in range(count + 1):
        handle = dbos.start_workflow(waiter, {"i": i})
        time.sleep(0.02 + rng.uniform(0, spread))
        begin = time.perf_counter()
        dbos.send(handle.get_workflow_id(), True, "approve")
        result = handle.get_result()
        samples.append(time.perf_counter() - begin)
        if result.get("approved") is not True:
            raise RuntimeError(f"DBOS waiter returned {result!r}")
    return samples[1:]


def run_dbos(poll: float | None, flows_count: int, resumes: int, repeats: int) -> dict[str, Any]:
    """Run `dbos_child` in a fresh interpreter (bounded), return its JSON answer."""
    with tempfile.TemporaryDirectory(prefix="fedflow-bench-dbos-") as db_dir:
        return _dbos_child_run(f"sqlite:///{db_dir}/dbos.sqlite", poll, poll if poll is not None else 1.0,
                               flows_count, resumes, repeats, db_dir)


def run_dbos_pg(db_url: str, flows_count: int, resumes: int, repeats: int) -> dict[str, Any]:
    """`dbos_child` on the PostgreSQL database `db_url`, in a fresh interpreter (bounded)."""
    with tempfile.TemporaryDirectory(prefix="fedflow-bench-dbos-pg-") as work_dir:
        return _dbos_child_run(db_url, None, dbos_pg.DBOS_PG_SEND_SPREAD_S, flows_count, resumes, repeats, work_dir)


def _dbos_child_run(db_url: str, poll: float | None, spread: float, flows_count: int, resumes: int, repeats: int,
                    cwd: str) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--child", db_url, "--poll", "default" if poll is None else str(poll),
            "--spread", str(spread), "--flows", str(flows_count), "--resumes", str(resumes),
            "--repeats", str(repeats)]
    return common.json_child(argv, cwd, "DBOS run", CHILD_TIMEOUT)


# ------------------------------------------------------------------ the fedflow side and the merge
def fedflow_side(repeats: int, flows_count: int, resumes: int) -> dict[str, float]:
    """Workloads 1 (SQLite process/power) and 2 (power) on fedflow, in this process."""
    flows.define()
    with common.scratch_dir() as tmp:
        flow3 = local.workload_flow3(tmp, repeats, flows_count)
        resume = common.repeat(repeats, lambda: local.resume_latency(tmp, "power", resumes))
    return {"peers_fedflow_flow3_process_per_s": flow3["flow3_process_per_s"],
            "peers_fedflow_flow3_power_per_s": flow3["flow3_power_per_s"],
            "peers_fedflow_resume_p50_ms": resume["p50"], "peers_fedflow_resume_p99_ms": resume["p99"]}


def dbos_keys(default: dict[str, Any], fast: dict[str, Any]) -> dict[str, Any]:
    """The results keys of the two DBOS runs."""
    from importlib.metadata import version

    return {"dbos_flow3_per_s": default["flow3_per_s"], "dbos_resume_p50_ms": default["resume_p50_ms"],
            "dbos_resume_p99_ms": default["resume_p99_ms"], "dbos_10ms_poll_flow3_per_s": fast["flow3_per_s"],
            "dbos_10ms_poll_resume_p50_ms": fast["resume_p50_ms"],
            "dbos_10ms_poll_resume_p99_ms": fast["resume_p99_ms"], "dbos_version": version("dbos"),
            "dbos_measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


def measure_sqlite(quick: bool) -> dict[str, Any]:
    """fedflow, DBOS default, fedflow again, DBOS with a 10 ms poll, sleeping flows: the merged keys.

    fedflow runs before and after the first DBOS run, so drift hits both sides."""
    repeats, count, resumes = (1, 50, 20) if quick else (3, 500, 200)
    before = fedflow_side(repeats, count, resumes)
    default = run_dbos(None, count, 3 if quick else 10, repeats)
    after = fedflow_side(repeats, count, resumes)
    fast = run_dbos(0.01, count, 10 if quick else 60, repeats)
    sleeping = sleep_keys(100 if quick else 1_000)
    return {**common.median_of([before, after]), **dbos_keys(default, fast), **sleeping}


def measure_pg(quick: bool) -> dict[str, Any]:
    """Workloads 1 and 2 on one PostgreSQL server, fedflow and DBOS (bench/dbos_pg.py)."""
    repeats, count, resumes = (1, 50, 20) if quick else (3, 500, 200)
    keys = dbos_pg.measure_pg(lambda url: run_dbos_pg(url, count, resumes, repeats), quick)
    return {**keys, "dbos_pg_measured_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}


PARTS = {"sqlite": measure_sqlite, "pg": measure_pg}


def print_side_by_side(keys: dict[str, Any]) -> None:
    """fedflow and DBOS next to each other, with fedflow/DBOS ratios (the rows measured)."""
    rows = (("3-step flows/s, SQLite power", "peers_fedflow_flow3_power_per_s", "dbos_flow3_per_s", "x faster"),
            ("3-step flows/s, SQLite process", "peers_fedflow_flow3_process_per_s", "dbos_flow3_per_s", "x faster"),
            ("resume p50 ms vs DBOS default poll", "peers_fedflow_resume_p50_ms", "dbos_resume_p50_ms", "of DBOS"),
            ("resume p50 ms vs DBOS 10 ms poll", "peers_fedflow_resume_p50_ms", "dbos_10ms_poll_resume_p50_ms",
             "of DBOS"),
            ("resume p99 ms vs DBOS default poll", "peers_fedflow_resume_p99_ms", "dbos_resume_p99_ms", "of DBOS"),
            ("sleeping flows: wake lateness p50 ms", "peers_fedflow_sleep_lateness_p50_ms",
             "dbos_sleep_lateness_p50_ms", "of DBOS"),
            ("sleeping flows: wake lateness p99 ms", "peers_fedflow_sleep_lateness_p99_ms",
             "dbos_sleep_lateness_p99_ms", "of DBOS"),
            ("sleeping flows: RSS MiB", "peers_fedflow_sleep_rss_mb", "dbos_sleep_rss_mb", "of DBOS"),
            ("sleeping flows: OS threads", "peers_fedflow_sleep_threads", "dbos_sleep_threads", "of DBOS"),
            ("PostgreSQL: 3-step flows/s", "peers_fedflow_pg_flow3_per_s", "dbos_pg_flow3_per_s", "x faster"),
            ("PostgreSQL: resume p50 ms", "peers_fedflow_pg_resume_p50_ms", "dbos_pg_resume_p50_ms", "of DBOS"),
            ("PostgreSQL: resume p99 ms", "peers_fedflow_pg_resume_p99_ms", "dbos_pg_resume_p99_ms", "of DBOS"))
    from importlib.metadata import version

    print(f"\nfedflow vs DBOS {version('dbos')} (SQLite rows: its default store; PostgreSQL rows: one server "
          f"for both), same run")
    print(f"  {'':38} {'fedflow':>10} {'DBOS':>10}   fedflow/DBOS")
    for label, ours, theirs, unit in rows:
        if ours not in keys or theirs not in keys:
            continue
        print(f"  {label:38} {keys[ours]:>10.4g} {keys[theirs]:>10.4g}   {keys[ours] / keys[theirs]:.4g} {unit}")


def merge_into(path: Path, keys: dict[str, Any]) -> dict[str, Any]:
    """Add `keys` to the results file (creating it), recompute the verdicts, write it back."""
    try:
        results = json.loads(path.read_text())
    except (OSError, ValueError):
        results = {}
    results.update(keys)
    results.update(target_verdicts(results))
    write_results(path, results)
    return rounded(results)


def main(argv: list[str] | None = None) -> int:
    """Parent: fedflow, then the two DBOS children, then the merge. Child: one DBOS run."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", choices=sorted(PARTS), help="run one part: sqlite (DBOS's default store, "
                        "sleeping flows) or pg (one PostgreSQL server for both); default both")
    parser.add_argument("--out", type=Path, default=common.BENCH / "results.json")
    parser.add_argument("--child", metavar="DB_URL", help=argparse.SUPPRESS)
    parser.add_argument("--poll", default="default", help=argparse.SUPPRESS)
    parser.add_argument("--spread", type=float, default=1.0, help=argparse.SUPPRESS)
    parser.add_argument("--flows", type=int, default=500, help=argparse.SUPPRESS)
    parser.add_argument("--resumes", type=int, default=10, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        poll = None if args.poll == "default" else float(args.poll)
        print(json.dumps(dbos_child(args.child, poll, args.spread, args.flows, args.resumes, args.repeats)))
        return 0
    try:
        import dbos  # noqa: F401  - fail early, clearly, before measuring anything
    except ImportError as exc:
        print(MISSING_DBOS.format(error=exc), file=sys.stderr)
        return 1
    try:
        keys: dict[str, Any] = {}
        for name, measure in PARTS.items():
            if args.only in (None, name):
                keys.update(measure(args.quick))
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        print(f"bench-peers: DBOS could not be run here: {exc}", file=sys.stderr)
        return 1
    print_side_by_side(keys)
    results = merge_into(args.out, keys)
    print_table(results)
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
