"""Moving flows between instances never rolls a flow back, never runs a step twice,
and never loses a flow: restore/import merge rules, handoff ordering, fencing,
idempotency keys, cancellation mid-run, and hostile replica data."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

import fedflow
from fedflow import node, parallel, remote_node, sequence, step, suspend
from fedflow.errors import PeerUnavailable
from fedflow.store import MemoryStore
from fedflow.store.base import RUNNING, FlowRecord
from fedflow.transport.local import LocalTransport

try:
    from support import unique
except ImportError:  # collected with --import-mode=importlib
    from tests.support import unique


def charge_then_wait(effects: list) -> Any:
    return sequence(node(lambda x: {"x": x, "go": suspend("go")}),
                    step(lambda v: effects.append(v["go"]) or v, name="charge"))


def test_restoring_an_old_replica_never_rolls_back_a_finished_flow(fedflow_federation) -> None:
    effects: list = []
    name = unique("no-rollback")
    fedflow.defflow(name, charge_then_wait(effects))
    a = fedflow_federation("nr-a", "nr-b")["nr-a"]
    a.start(name, 1, id="x")
    a.replicate_to("nr-b")  # b holds x suspended
    a.resume("x", "ok")      # x is done here
    assert a.restore_from("nr-b") == []
    assert a.status("x") == "done" and effects == ["ok"]


def test_a_different_flow_with_the_same_id_is_refused_not_replaced() -> None:
    a, b = fedflow.Engine(name="clash-a"), fedflow.Engine(name="clash-b")
    a.start(node(lambda x: suspend("t")), "a's", id="order-42")
    b.start(node(lambda x: suspend("t")), "b's", id="order-42")
    before = json.dumps(b.export(), sort_keys=True)
    with pytest.raises(fedflow.ReplicaError, match="order-42"):
        b.import_store(a.export())
    assert json.dumps(b.export(), sort_keys=True) == before


def test_a_plain_restore_keeps_flows_the_source_owns_after_a_handoff() -> None:
    name = unique("owned")
    fedflow.defflow(name, node(lambda x: suspend("t")))
    z, a, b, c = (fedflow.Engine(name=unique(n)) for n in "zabc")
    z.peers.register("a", a)
    a.peers.register("b", b)
    c.peers.register("b", b)
    z.start(name, 1, id="x")
    a.start(name, 2, id="y")
    assert z.handoff_to("a") == ["x"]
    a.replicate_to("b")
    assert sorted(c.restore_from("b", source=a.name)) == ["x", "y"]


def test_a_handoff_whose_answer_is_lost_still_leaves_exactly_one_owner() -> None:
    effects: list = []
    name = unique("lost-answer")
    fedflow.defflow(name, charge_then_wait(effects))

    class LostAnswer(LocalTransport):
        def restore(self, source: str, ids: list[str] | None, *, deadline: float) -> list[str]:
            super().restore(source, ids, deadline=deadline)
            raise PeerUnavailable("peer b did not answer within the deadline", "b")

    a, b = fedflow.Engine(name=unique("la-a")), fedflow.Engine(name=unique("la-b"))
    a.peers.add(LostAnswer("b", b))
    a.start(name, 1, id="x")
    with pytest.raises(PeerUnavailable):
        a.handoff_to("b")
    assert (a.status("x"), b.status("x")) == ("moved", "suspended")
    with pytest.raises(fedflow.FlowMoved):
        a.resume("x", "a-side")
    b.resume("x", "b-side")
    assert effects == ["b-side"]


def test_a_failed_handoff_that_the_peer_never_took_gives_the_flows_back() -> None:
    name = unique("refused")
    fedflow.defflow(name, node(lambda x: suspend("t")))
    a = fedflow.Engine(name=unique("rf-a"))
    a.peers.register("table", {"fn": lambda x: x})  # cannot hold replicas
    a.start(name, 1, id="x")
    with pytest.raises(fedflow.PeerError):
        a.handoff_to("table")
    assert a.status("x") == "suspended"
    assert a.resume("x", "still here") == "still here"


def test_idempotency_keys_differ_across_engines_and_reused_ids() -> None:
    name = unique("keyed")
    fedflow.defflow(name, remote_node("bank", "charge"))
    bank = fedflow.Engine(name=unique("bank"))
    charged: list = []
    bank.expose("charge", lambda amount: charged.append(amount) or {"charged": amount})
    shop1, shop2 = fedflow.Engine(name="shop1"), fedflow.Engine(name="shop2")
    for shop in (shop1, shop2):
        shop.peers.register("bank", bank)
    assert shop1.start(name, 10, id="order-17") == {"charged": 10}
    assert shop2.start(name, 99, id="order-17") == {"charged": 99}
    shop1.forget("order-17")
    assert shop1.start(name, 5, id="order-17") == {"charged": 5}
    assert charged == [10, 99, 5]


def test_ints_too_long_for_decimal_text_round_trip_and_keep_the_store_usable(tmp_path) -> None:
    huge = -(10**5000) - 7
    path = str(tmp_path / "big.db")
    with fedflow.Engine(name="big", store=path) as engine:
        assert engine.start(fedflow.identity, {"n": huge}, id="big-1") == {"n": huge}
    with fedflow.Engine(name="big", store=path) as again:
        assert again.result("big-1") == {"n": huge}
    assert fedflow.values.loads(fedflow.values.dumps(huge)) == huge


def test_cancel_while_running_stops_the_next_step_before_its_effect() -> None:
    effects: list = []
    engine = fedflow.Engine(name=unique("cancel-mid"))

    def cancel_now(x: Any) -> Any:
        engine.cancel("x")
        return x

    flow = sequence(step(lambda x: effects.append("charge") or x, name="charge"), node(cancel_now),
                    step(lambda x: effects.append("ship") or x, name="ship"))
    with pytest.raises(fedflow.FlowCancelled):
        engine.start(flow, 1, id="x")
    assert effects == ["charge"] and engine.status("x") == "cancelled"


def test_no_parallel_sibling_runs_a_step_once_the_run_is_lost() -> None:
    effects: list = []
    engine = fedflow.Engine(name=unique("cancel-par"))
    gate = threading.Barrier(2, timeout=5)

    def cancel_then(x: Any) -> Any:
        engine.cancel("p")
        gate.wait()
        return x

    def sibling(x: Any) -> Any:
        gate.wait()
        return x

    flow = sequence(node(lambda x: suspend("go")),
                    parallel(sequence(node(cancel_then), step(lambda x: effects.append("A"), name="A")),
                             sequence(node(sibling), step(lambda x: effects.append("B"), name="B"))))
    engine.start(flow, None, id="p")
    with pytest.raises(fedflow.FlowCancelled):
        engine.resume("p", 1)
    assert effects == []


def test_hostile_error_data_in_a_replica_surfaces_as_a_clean_flow_failed() -> None:
    engine = fedflow.Engine(name=unique("hostile"))
    flows = [
        {"id": "f1", "name": None, "status": "failed", "input": 1, "log": [],
         "error": {"type": "FlowError", "module": "fedflow.errors", "message": "m",
                   "attrs": {"__cause__": "x", "__class__": "y", "id": ["not", "plain"]}}},
        {"id": "f2", "name": None, "status": "failed", "input": 1, "log": [],
         "error": {"type": "ExceptionGroup", "module": "builtins", "message": "m", "args": [1, 2, 3]}},
    ]
    engine.import_store({"format": "fedflow-store", "version": 1, "engine": "z", "flows": flows})
    for flow_id in ("f1", "f2"):
        with pytest.raises(fedflow.FlowFailed):
            engine.result(flow_id)


def test_a_suspended_flow_in_a_replica_must_name_its_tag() -> None:
    engine = fedflow.Engine(name=unique("no-tag"))
    flow = {"id": "s", "name": None, "status": "suspended", "input": 1, "log": [], "waiting": None}
    with pytest.raises(fedflow.ReplicaError, match="tag"):
        engine.import_store({"format": "fedflow-store", "version": 1, "engine": "z", "flows": [flow]})


def test_a_flow_restored_while_running_at_its_source_is_run_to_its_next_stop() -> None:
    name = unique("was-running")
    fedflow.defflow(name, sequence(step(lambda x: x + 1, name="s"), node(lambda x: {"x": x, "t": suspend("t")})))
    source, holder, heir = (fedflow.Engine(name=unique(n)) for n in ("src", "holder", "heir"))
    source.store.create(FlowRecord(id="q", name=name, status=RUNNING, input="1"))
    source.peers.register("holder", holder)
    heir.peers.register("holder", holder)
    source.replicate_to("holder")
    assert heir.restore_from("holder", source=source.name) == ["q"]
    assert heir.status("q") == "suspended"
    assert heir.resume("q", "go") == {"x": 2, "t": "go"}


def test_recovery_before_its_peer_is_registered_waits_instead_of_failing() -> None:
    name = unique("needs-peer")
    fedflow.defflow(name, remote_node("late-peer", "fn"))
    store = MemoryStore()
    store.create(FlowRecord(id="r", name=name, status=RUNNING, input="1"))
    engine = fedflow.Engine(name=unique("early"), store=store)  # recovers in the constructor
    assert engine.status("r") == "running"
    engine.peers.register("late-peer", {"fn": lambda x: x * 10})
    engine.recover()
    assert engine.result("r") == 10
