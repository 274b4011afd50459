"""The kill loop: a child `fedflow serve` runs hundreds of flows with journaled remote steps;
it is SIGKILLed at random moments, several rounds, and restarted on the same --db.

At the end every flow has completed with the right result, none is lost, and no
journaled step ran twice: the peer (in this process) counts each step's effect
and the idempotency keys (call_id) it was asked with: exactly one effect and one
key per (flow, step), however many times a crash made the caller ask again.

`make test` runs the quick variant; `make soak` (FEDFLOW_SOAK=1) the long one.
"""

from __future__ import annotations

import os
import random
import textwrap
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from queue import Empty, SimpleQueue
from typing import Any

import pytest

import fedflow
from fedflow.client import ControlClient
from fedflow.grpc.server import run_server

pytestmark = pytest.mark.slow

SOAK = bool(os.environ.get("FEDFLOW_SOAK"))
FLOWS = 2000 if SOAK else 300
KILLS = 15 if SOAK else 3
STEPS = 3
DRIVERS = 8
SEED = 4242

WORKFLOW = textwrap.dedent("""
    import fedflow
    from fedflow import node, remote_node, sequence

    def _stage(step):
        return node(lambda r: {"id": r["id"], "step": step, "acc": r["acc"]})

    def register(engine):
        parts = []
        for step in range(1, %d + 1):
            parts += [_stage(step), remote_node("counter", "charge")]
        fedflow.defflow("soak-job", sequence(node(lambda x: {"id": x["id"], "acc": x["id"]}), *parts,
                                             node(lambda r: r["acc"])))
""").replace("%d", str(STEPS))


class CountingPeer(fedflow.Engine):
    """A peer that records, per (flow, step), each effect and each idempotency key it was sent."""

    def __init__(self) -> None:
        super().__init__(name=f"counter-{uuid.uuid4().hex[:6]}")
        self.lock = threading.Lock()
        self.effects: Counter[tuple[int, int]] = Counter()
        self.keys: defaultdict[tuple[int, int], set[str]] = defaultdict(set)
        self.deliveries = 0
        self.expose("charge", self._charge)

    def invoke(self, fn: str, payload: Any, call_id: str | None = None) -> Any:
        """Record the key of every delivery, then let the engine dedupe and run it."""
        with self.lock:
            self.deliveries += 1
            self.keys[(payload["id"], payload["step"])].add(call_id or "")
        return super().invoke(fn, payload, call_id)

    def _charge(self, p: dict[str, Any]) -> dict[str, Any]:
        with self.lock:
            self.effects[(p["id"], p["step"])] += 1
        time.sleep(0.002)  # widen the window a kill can land in
        return {"id": p["id"], "acc": p["acc"] + p["step"]}


@pytest.fixture
def counter() -> Iterator[tuple[CountingPeer, str]]:
    peer = CountingPeer()
    with run_server(peer, grace=0.2) as port:
        yield peer, f"127.0.0.1:{port}"
    peer.close()


def _drive(address: str, todo: SimpleQueue, done: dict[int, Any], stop: threading.Event) -> None:
    """Start flows from `todo` until it is empty or the instance stops answering."""
    with ControlClient(address, deadline=5) as client:
        while not stop.is_set():
            try:
                i = todo.get_nowait()
            except Empty:
                return
            try:
                outcome = client.start("soak-job", {"id": i}, flow_id=f"soak-{i}")
            except fedflow.PeerError:
                todo.put(i)  # the instance died under this call: ask again after the restart
                return
            done[i] = outcome


def _round(address: str, todo: SimpleQueue, done: dict[int, Any], kill_at: int | None, kill: Any,
           rng: random.Random) -> None:
    """Drive until everything is done, or SIGKILL the instance once `kill_at` flows were answered
    in all (plus a random few milliseconds), so every kill lands while flows are running."""
    stop = threading.Event()
    drivers = [threading.Thread(target=_drive, args=(address, todo, done, stop)) for _ in range(DRIVERS)]
    for thread in drivers:
        thread.start()
    if kill_at is not None:
        end = time.monotonic() + 60
        while len(done) < kill_at and time.monotonic() < end:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.02))
        kill()
        stop.set()
    for thread in drivers:
        thread.join(60)
        assert not thread.is_alive(), "a driver did not stop"


def test_kill_loop_loses_no_flow_and_runs_no_journaled_step_twice(pool, counter, tmp_path: Path):
    peer, peer_address = counter
    module = tmp_path / "soak_wf.py"
    module.write_text(WORKFLOW)
    rng, db = random.Random(SEED), tmp_path / "soak.db"
    port = None
    todo: SimpleQueue = SimpleQueue()
    for i in range(FLOWS):
        todo.put(i)
    done: dict[int, Any] = {}
    interrupted = 0
    for round_no in range(KILLS + 1):
        server = pool.start("soak", port=port, db=db, load=(module,), peers={"counter": peer_address})
        port = int(server.addr.rsplit(":", 1)[1])
        last = round_no == KILLS
        before = len(done)
        kill_at = None if last else before + rng.randint(1, (FLOWS - before) // (KILLS - round_no + 1))
        _round(server.addr, todo, done, kill_at, lambda s=server: pool.kill9(s), rng)
        interrupted += not last and len(done) < FLOWS
        print(f"round {round_no}: {len(done) - before} flows answered, {len(done)}/{FLOWS} in all")
        if last:
            with ControlClient(server.addr, deadline=10) as client:
                statuses = Counter(f["status"] for f in client.list()["flows"])
            pool.stop(server)
    assert interrupted == KILLS, "every kill landed while flows were still to run"
    assert sorted(done) == list(range(FLOWS)), "every flow was started and answered"
    total = STEPS * (STEPS + 1) // 2
    wrong = {i: o for i, o in done.items() if o != {"id": f"soak-{i}", "status": "done", "result": i + total}}
    assert not wrong, f"{len(wrong)} flows ended wrong, e.g. {list(wrong.items())[:3]}"
    assert statuses == {"done": FLOWS}, statuses
    expected = {(i, s) for i in range(FLOWS) for s in range(1, STEPS + 1)}
    assert set(peer.effects) == expected, "every journaled step ran"
    twice = {k: n for k, n in peer.effects.items() if n != 1}
    assert not twice, f"journaled steps ran more than once: {list(twice.items())[:5]}"
    unstable = {k: v for k, v in peer.keys.items() if len(v) != 1 or "" in v}
    assert not unstable, f"a step was sent under more than one idempotency key: {list(unstable.items())[:3]}"
    assert peer.deliveries >= len(expected)
    recovered = sum(s.log().count("recovered flow") for s in pool.servers)
    print(f"{peer.deliveries} deliveries for {len(expected)} steps; {recovered} flows recovered by replay")
