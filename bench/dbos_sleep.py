"""`make bench-peers`, time: 1,000 flows asleep in DBOS (`DBOS.sleep`) and in fedflow (`sleep_until`).

Each side runs in a fresh interpreter of its own (`--side dbos|fedflow`, on its
default SQLite store; fedflow at "power"), so RSS and thread counts are that
side's alone. Every flow sleeps until its own due time (due times
`SPACING_S` apart, after all are started), then runs one step that returns
the time it ran. Measured: lateness (due -> that step), p50/p99; the
process's VmRSS and OS thread count while all are asleep.

    .venv-peers/bin/python bench/dbos_sleep.py --side dbos --dir /tmp/x --count 1000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

#: Due times of consecutive flows lie this far apart: 200 wakes a second, within what both
#: sides commit (at 2 ms, DBOS's wakes queue up behind its commits and run seconds late).
SPACING_S = 0.005
#: Seconds left after the last flow is started before the first falls due.
HEADROOM_S = 1.5
CHILD_TIMEOUT = 300.0
_WARMUP = 20


def os_threads() -> int:
    """This process's thread count, from /proc/self/status (Python's and the libraries' own)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("Threads:"):
            return int(line.split()[1])
    raise RuntimeError("no Threads line in /proc/self/status")


def _plan(count: int, start_one: Callable[[float], Any]) -> list[float]:
    """Due times for `count` flows, far enough ahead to start every flow first: at 1.5 times
    the pace of `_WARMUP` starts (after as many unmeasured), plus HEADROOM_S."""
    for _ in range(_WARMUP):
        start_one(0.0)  # due at once: they finish and are not measured
    begin = time.perf_counter()
    for _ in range(_WARMUP):
        start_one(0.0)
    per_start = (time.perf_counter() - begin) / _WARMUP
    base = time.time() + 1.5 * per_start * count + HEADROOM_S
    return [base + k * SPACING_S for k in range(count)]


def _measure(due: list[float], start: Callable[[float], Any], collect: Callable[[list[Any]], list[float]],
             settle: Callable[[], None]) -> dict[str, float]:
    """Start a flow per due time, measure the process while they sleep, then the lateness."""
    handles = [start(at) for at in due]
    settle()
    rss, threads = common.vm_rss_mb(os.getpid()), os_threads()
    if time.time() >= due[0]:
        raise RuntimeError("the flows were not all asleep before the first fell due (a busy machine?); "
                           "raise HEADROOM_S in bench/dbos_sleep.py")
    ran = collect(handles)
    late = common.latency_ms([stamp - at for stamp, at in zip(ran, due, strict=True)])
    return {"lateness_p50_ms": late["p50"], "lateness_p99_ms": late["p99"], "rss_mb": rss, "threads": threads}


def dbos_side(db_dir: str, count: int) -> dict[str, float]:
    """`count` DBOS workflows in `DBOS.sleep`, on DBOS's default SQLite store."""
    from dbos import DBOS

    DBOS(config={"name": "fedflow-bench-sleep", "system_database_url": f"sqlite:///{db_dir}/dbos.sqlite"})

    @DBOS.step()
    def stamp() -> float:
        return time.time()

    asleep: set[float] = set()  # due times of the workflows that got to their sleep

    @DBOS.workflow()
    def sleeper(at: float) -> float:
        asleep.add(at)
        DBOS.sleep(max(0.0, at - time.time()))
        return stamp()

    DBOS.launch()
    try:
        warm: list[Any] = []
        due = _plan(count, lambda at: warm.append(DBOS.start_workflow(sleeper, at)))
        for handle in warm:
            handle.get_result()

        def settle() -> None:  # a started workflow reaches its sleep in its own thread
            common.wait_until(lambda: asleep.issuperset(due), 60, "every DBOS workflow to reach its sleep")
            time.sleep(0.2)  # its sleep's one row written, well before the first is due

        return _measure(due, lambda at: DBOS.start_workflow(sleeper, at),
                        lambda handles: [h.get_result() for h in handles], settle)
    finally:
        DBOS.destroy()


def fedflow_side(db_dir: str, count: int) -> dict[str, float]:
    """`count` fedflow flows in `sleep_until`, on a SQLite store at "power"."""
    import fedflow

    def nap(at: float) -> float:
        fedflow.sleep_until(at)
        return at

    sleeper = fedflow.sequence(fedflow.node(nap), fedflow.step(lambda _at: time.time(), name="stamp"))
    fedflow.defflow("bench.sleeper", sleeper)
    with fedflow.Engine(name="bench-sleep", store=f"{db_dir}/fedflow.db") as engine:
        def start(at: float) -> str:
            out = engine.start("bench.sleeper", at)
            return out.id if isinstance(out, fedflow.Suspended) else ""

        due = _plan(count, start)

        def collect(ids: list[str]) -> list[float]:
            if "" in ids:
                raise RuntimeError("a fedflow sleeper did not suspend: its due time passed while starting")
            common.wait_until(lambda: all(engine.status(i) == "done" for i in ids), 120, "every sleeper to wake")
            return [engine.result(i) for i in ids]

        return _measure(due, start, collect, lambda: None)


def run_side(side: str, count: int) -> dict[str, float]:
    """Run one side in a fresh interpreter (bounded); its JSON answer."""
    with tempfile.TemporaryDirectory(prefix=f"fedflow-bench-sleep-{side}-") as db_dir:
        argv = [sys.executable, __file__, "--side", side, "--dir", db_dir, "--count", str(count)]
        return common.json_child(argv, db_dir, f"the {side} sleep run", CHILD_TIMEOUT)


def sleep_keys(count: int) -> dict[str, float]:
    """Both sides, fedflow first: `peers_fedflow_sleep_*` and `dbos_sleep_*` keys."""
    ours, theirs = run_side("fedflow", count), run_side("dbos", count)
    return {**{f"peers_fedflow_sleep_{k}": v for k, v in ours.items()},
            **{f"dbos_sleep_{k}": v for k, v in theirs.items()}}


def main(argv: list[str] | None = None) -> int:
    """One side, printed as one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--side", choices=("dbos", "fedflow"), required=True)
    parser.add_argument("--dir", required=True, help="a directory for the side's store")
    parser.add_argument("--count", type=int, default=1_000)
    args = parser.parse_args(argv)
    run = dbos_side if args.side == "dbos" else fedflow_side
    print(json.dumps(run(args.dir, args.count)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
