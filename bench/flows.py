"""The flows the benchmarks run, registered by name so a serving child can hold them too.

`register(engine)` is the `fedflow serve --load bench/flows.py` hook: it defines
the flows and exposes `echo` on that engine.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from collections.abc import Callable
from typing import Any

import fedflow

FLOW3 = "bench.flow3"
WAITER = "bench.waiter"
PARKED = "bench.parked"
REMOTE_ECHO = "bench.remote_echo"
NAPPER = "bench.napper"
REPLAY_PREFIX = "bench.replay."
GATED = "bench.gated"
#: The folder whose `open` file releases every gated step (set in the serving child's environment).
GATE_ENV = "FEDFLOW_BENCH_GATE"
#: When set to N in a serving child's environment, it starts N gated flows itself (ids gated-0...),
#: each on its own thread: a serve running many flows at once, more than its control workers.
START_GATED_ENV = "FEDFLOW_BENCH_START_GATED"

Flow = Callable[[Any], Any]


def _mark(key: str, value: int) -> Flow:
    """A journaled step that adds `key: value` to its dict input."""
    def add(x: dict[str, Any]) -> dict[str, Any]:
        return {**x, key: value}
    return fedflow.step(add, name=f"mark-{key}")


def _await_approval(x: dict[str, Any]) -> dict[str, Any]:
    """Suspend on "approve"; on resume, record the value given."""
    return {**x, "approved": fedflow.suspend("approve")}


def _park(x: Any) -> Any:
    """Suspend on "go" (the flow the replication workloads hold)."""
    return {"input": x, "go": fedflow.suspend("go")}


def _nap(x: dict[str, Any]) -> dict[str, Any]:
    """Sleep durably until `x["at"]` (seconds since the epoch)."""
    fedflow.sleep_until(x["at"])
    return x


#: Workload 1: three journaled steps over a small dict.
flow3 = fedflow.sequence(_mark("a", 1), _mark("b", 2), _mark("c", 3))
#: Workload 2: a step, a suspend an outside thread resolves, a step.
waiter = fedflow.sequence(_mark("prepared", 1), fedflow.node(_await_approval), _mark("published", 1))
#: Workloads 5 and 6: a journaled step, then a suspend.
parked = fedflow.sequence(_mark("accepted", 1), fedflow.node(_park))
#: Workload 3b: a one-step flow calling `echo` on the peer named "peer".
remote_echo = fedflow.remote_node("peer", "echo")
#: Workload 7: sleep until its input's "at", then one journaled step.
napper = fedflow.sequence(fedflow.node(_nap), _mark("woke", 1))

_inc = fedflow.step(lambda n: n + 1, name="inc")


def _wait_for_gate(x: Any) -> Any:
    """Block until the gate file exists (at most 120 s): a flow that is running when its serve dies."""
    gate = os.path.join(os.environ[GATE_ENV], "open")
    end = time.monotonic() + 120
    while not os.path.exists(gate):
        if time.monotonic() > end:
            raise TimeoutError(f"{gate} never appeared")
        time.sleep(0.01)
    return {"input": x, "released": True}


#: The takeover benchmark: a journaled step, then a step that waits for the gate.
gated = fedflow.sequence(_mark("accepted", 1), fedflow.step(_wait_for_gate, name="gate"))


def replay_flow(steps: int, resumes: int) -> Flow:
    """Workload 4: `steps` journaled steps, then `resumes` suspends in a row.

    Every resume replays all the steps (from the journal) and stops at the next suspend."""
    def body(n: int) -> int:
        for _ in range(steps):
            n = _inc(n)
        for k in range(resumes):
            fedflow.suspend(f"r{k}")
        return n
    return fedflow.node(body)


def replay_name(steps: int) -> str:
    """The registered name of the workload-4 flow with `steps` steps."""
    return f"{REPLAY_PREFIX}{steps}"


def echo(x: Any) -> Any:
    """The exposed function remote calls hit: returns its payload."""
    return x


def define(replay_steps: tuple[int, ...] = (), resumes: int = 0) -> None:
    """Register the benchmark flows in this process."""
    fedflow.defflow(FLOW3, flow3)
    fedflow.defflow(WAITER, waiter)
    fedflow.defflow(PARKED, parked)
    fedflow.defflow(REMOTE_ECHO, remote_echo)
    fedflow.defflow(NAPPER, napper)
    fedflow.defflow(GATED, gated)
    for steps in replay_steps:
        fedflow.defflow(replay_name(steps), replay_flow(steps, resumes))


def _start_gated(engine: Any, count: int) -> None:
    """Start `count` gated flows on `engine`, each on a daemon thread (they block at the gate)."""
    def start(i: int) -> None:
        with contextlib.suppress(Exception):  # the serve is killed while they run
            engine.start(GATED, {"i": i}, id=f"gated-{i}")

    for i in range(count):
        threading.Thread(target=start, args=(i,), daemon=True, name=f"bench-gated-{i}").start()


def register(engine: Any) -> None:
    """`fedflow serve --load` hook: define the flows and expose `echo` on `engine` (and start
    the gated flows START_GATED_ENV asks for)."""
    define()
    engine.expose("echo", echo)
    if os.environ.get(START_GATED_ENV):
        _start_gated(engine, int(os.environ[START_GATED_ENV]))
