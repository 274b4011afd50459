"""Workload 10 (console_idle): what an idle console costs workloads 1, 2 and 3, measured paired.

On a shared 2-core machine two separate runs of the same workload differ by
10-20% (docs/performance.md, "Console"), so "within 5%" cannot be read off
two runs. Here the same work runs with the console off and on in many short
batches, alternated A B B A so drift lands on both sides, and the figure is
the median over rounds of (time on / time off - 1), in percent:

- workloads 1 and 2: one engine in this process; an "on" batch starts a
  `Console` on it (HTTP thread and metrics hooks, as `fedflow serve --http`
  does) and closes it after, an "off" batch has none. 3-step flows on each
  store, and resumes on SQLite "power".
- workload 3: three `fedflow serve` peers run side by side, one with `--http`
  (checked up, then left idle); direct calls and one-step `remote_node`
  flows alternate between a peer without and the peer with the console.

`console_idle_aa_pct` is the same statistic between two "off" batches of
3-step flows on "power", and `console_idle_remote_aa_pct` between direct calls
to two peers without a console: the noise floors of the run.
"""

from __future__ import annotations

import contextlib
import gc
import random
import statistics
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fedflow
from bench import common, flows
from bench import workloads_grpc as remote
from bench.workloads_local import FLOW3_STORES
from fedflow.console import Console

#: Batches (per side) and their sizes, for the full and the quick run.
ROUNDS, BATCH = 100, 20
QUICK_ROUNDS, QUICK_BATCH = 6, 5
SETTLE_SECONDS = 0.01


def paired_cost_pct(run_off: Callable[[], float], run_on: Callable[[], float], rounds: int,
                    seed: int = 10) -> float:
    """Median over `rounds` of (on / off - 1) * 100; each round runs both, in a random order (a fixed
    pattern can fall in step with something periodic, such as SQLite's WAL checkpoints)."""
    order = random.Random(seed)
    ratios = []
    for _ in range(rounds):
        if order.random() < 0.5:
            on, off = run_on(), run_off()
        else:
            off, on = run_off(), run_on()
        ratios.append(on / off)
    return (statistics.median(ratios) - 1) * 100


def _start_clock() -> float:
    """perf_counter() once a console just started has settled (10 ms: its thread is in `select`; both
    sides wait, as a CPU left idle is slower to pick up) and after a young-generation garbage
    collection (what a console made when it started must not decide in which batch the collector runs)."""
    time.sleep(SETTLE_SECONDS)
    gc.collect(1)
    return time.perf_counter()


def _with_console(engine: fedflow.Engine, batch: Callable[[], float]) -> Callable[[], float]:
    """`batch`, timed while a fresh console watches `engine` (started before the clock, closed after)."""
    def run() -> float:
        console = Console("127.0.0.1:0")
        console.start(engine)
        try:
            return batch()
        finally:
            console.close()
    return run


def _flow3_batch(engine: fedflow.Engine, size: int) -> Callable[[], float]:
    """Seconds for `size` sequential 3-step flows on `engine`."""
    def run() -> float:
        begin = _start_clock()
        for i in range(size):
            engine.start(flows.FLOW3, {"i": i, "user": "ada"})
        return time.perf_counter() - begin
    return run


def _resume_batch(engine: fedflow.Engine, size: int) -> Callable[[], float]:
    """Start `size` waiting flows (untimed), then time resuming them all."""
    def run() -> float:
        ids = [engine.start(flows.WAITER, {"i": i}).id for i in range(size)]
        begin = _start_clock()
        for flow_id in ids:
            engine.resume(flow_id, True)
        return time.perf_counter() - begin
    return run


def local_costs(tmp: Path, rounds: int, size: int) -> dict[str, float]:
    """Workloads 1 and 2 with the console off and on, on one engine per store."""
    out = {}
    for store, (sqlite, durability) in FLOW3_STORES.items():
        db = str(tmp / f"idle-{store}.db") if sqlite else None
        with fedflow.Engine(name=f"bench-idle-{store}", store=db, durability=durability) as engine:
            batch = _flow3_batch(engine, size)
            batch()  # warm up
            out[f"console_idle_flow3_{store}_pct"] = paired_cost_pct(batch, _with_console(engine, batch), rounds)
            if store == "power":
                out["console_idle_aa_pct"] = paired_cost_pct(batch, batch, rounds)
                resumes = _resume_batch(engine, size)
                out["console_idle_resume_pct"] = paired_cost_pct(resumes, _with_console(engine, resumes), rounds)
    return out


def _calls_batch(call: Callable[[], Any], size: int) -> Callable[[], float]:
    """Seconds for `size` sequential `call()`s."""
    def run() -> float:
        begin = _start_clock()
        for _ in range(size):
            call()
        return time.perf_counter() - begin
    return run


@contextlib.contextmanager
def _caller(tmp: Path, label: str, peer_address: str) -> Iterator[fedflow.Engine]:
    """A caller engine (SQLite, "power") whose peer `remote.PEER` is at `peer_address`."""
    with fedflow.Engine(name=f"bench-idle-caller-{label}", store=str(tmp / f"idle-caller-{label}.db")) as engine:
        engine.peers.connect(remote.PEER, peer_address)
        yield engine


def remote_costs(tmp: Path, rounds: int, size: int) -> dict[str, float]:
    """Workload 3 against three peers side by side, the last with its console on and idle; the
    second, also without one, gives the noise between two peers (`console_idle_remote_aa_pct`)."""
    console = f"127.0.0.1:{common.free_port()}"
    with remote.fedflow_serve(tmp, "bench-idle-off") as (_off, off_address), \
            remote.fedflow_serve(tmp, "bench-idle-off2") as (_off2, off2_address), \
            remote.fedflow_serve(tmp, "bench-idle-on", extra=("--http", console)) as (_on, on_address):
        with urllib.request.urlopen(f"http://{console}/healthz", timeout=10) as answer:
            if answer.status != 200:
                raise RuntimeError(f"the peer's console at {console} answered {answer.status}")
        with _caller(tmp, "off", off_address) as off, _caller(tmp, "off2", off2_address) as off2, \
                _caller(tmp, "on", on_address) as on:
            text = "x" * (remote.PAYLOADS[""] - 2)
            direct_off, direct_off2, direct_on = (
                _calls_batch(lambda e=e: e.call_peer(remote.PEER, "echo", text), size) for e in (off, off2, on))
            flow_off, flow_on = (_calls_batch(lambda e=e: e.start(flows.REMOTE_ECHO, text), size) for e in (off, on))
            for batch in (direct_off, direct_off2, direct_on, flow_off, flow_on):
                batch()  # warm up every channel
            return {"console_idle_remote_direct_pct": paired_cost_pct(direct_off, direct_on, rounds),
                    "console_idle_remote_aa_pct": paired_cost_pct(direct_off, direct_off2, rounds),
                    "console_idle_remote_flow_pct": paired_cost_pct(flow_off, flow_on, rounds)}


def workload_console_idle(tmp: Path, quick: bool) -> dict[str, float]:
    """Workload 10: `console_idle_*_pct` for workloads 1-3, and the run's A/A noise floor."""
    rounds, size = (QUICK_ROUNDS, QUICK_BATCH) if quick else (ROUNDS, BATCH)
    return {**local_costs(tmp, rounds, size), **remote_costs(tmp, rounds, size)}
