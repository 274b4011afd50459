"""Export/import, replicate/restore and handoff between in-process Engines: the format,
every refusal leaving the store unchanged, idempotent re-import, failed and returning handoffs."""

from __future__ import annotations

import copy
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import fedflow
from fedflow import Engine, FlowMoved, PeerError, ReplicaError, UnknownPeer, node, sequence, step, suspend
from fedflow.store.base import SUSPENDED, FlowRecord
from fedflow.transport.local import LocalTransport

try:
    from support import Calls, log_of
except ImportError:  # tests/ imported as a package
    from tests.support import Calls, log_of


@pytest.fixture
def make() -> Iterator[Callable[..., Engine]]:
    made: list[Engine] = []

    def build(name: str | None = None) -> Engine:
        engine = Engine(name=name or f"fed-{uuid.uuid4().hex[:8]}")
        made.append(engine)
        return engine

    yield build
    for engine in made:
        engine.close()


@pytest.fixture
def flow_name() -> tuple[str, Calls]:
    """A registered flow: a journaled step, then two waits. Returns (name, step calls)."""
    calls = Calls()
    name = f"fed-flow-{uuid.uuid4().hex[:8]}"
    fedflow.defflow(name, sequence(
        step(lambda x: calls(x) or {"prepared": x}, name="prepare"),
        node(lambda p: [p, suspend("first"), suspend("second")]),
    ))
    return name, calls


@pytest.fixture
def busy(make: Callable[..., Engine], flow_name: tuple[str, Calls]) -> Engine:
    """An engine with flows in several states, values that need the tagged codec."""
    name, _calls = flow_name
    engine = make()
    engine.start(name, {"big": 2**64 + 1, "raw": b"\x00\xff"}, id="waiting-1")
    engine.start(name, "two", id="waiting-2")
    engine.resume("waiting-2", fedflow.fail({"$bytes": "not really"}))
    engine.start(node(lambda x: [x, b"done"]), -(2**70), id="done-1")
    return engine


def flows_of(engine: Engine) -> list[dict[str, Any]]:
    return engine.export()["flows"]


def without_ownership(flows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in f.items() if k not in ("owner", "epoch")} for f in flows]


# -- export ------------------------------------------------------------------------------------------

def test_export_is_versioned_json_serialisable_plain_data(busy: Engine) -> None:
    data = busy.export()
    assert (data["format"], data["version"], data["engine"]) == ("fedflow-store", 1, busy.name)
    assert json.loads(json.dumps(data, allow_nan=False)) == data
    assert [f["id"] for f in data["flows"]] == ["waiting-1", "waiting-2", "done-1"]
    assert [f["status"] for f in data["flows"]] == ["suspended", "suspended", "done"]


def test_export_of_an_empty_engine(make: Callable[..., Engine]) -> None:
    engine = make()
    assert engine.export()["flows"] == []
    assert engine.import_store(engine.export()) == []


def test_export_import_round_trips_exactly_through_json_text(busy: Engine, make: Callable[..., Engine],
                                                             flow_name: tuple[str, Calls]) -> None:
    _name, calls = flow_name
    other = make()
    assert other.import_store(json.loads(json.dumps(busy.export()))) == ["waiting-1", "waiting-2", "done-1"]
    assert flows_of(other) == flows_of(busy)
    assert other.result("done-1") == [-(2**70), b"done"]
    s = other.resume("waiting-1", "x")
    assert other.resume(s.id, "y") == [{"prepared": {"big": 2**64 + 1, "raw": b"\x00\xff"}}, "x", "y"]
    assert other.resume("waiting-2", 2) == [{"prepared": "two"}, fedflow.fail({"$bytes": "not really"}), 2]
    assert calls.n == 2, "journaled steps came across with the log"


def test_re_importing_the_same_export_is_a_no_op(busy: Engine, make: Callable[..., Engine]) -> None:
    data = busy.export()
    assert busy.import_store(copy.deepcopy(data)) == []
    assert busy.export() == data
    other = make()
    other.import_store(copy.deepcopy(data))
    before = other.export()
    assert other.import_store(copy.deepcopy(data)) == []
    assert other.export() == before


def test_re_importing_non_ascii_values_is_a_no_op_however_they_were_stored(make: Callable[..., Engine],
                                                                          flow_name: tuple[str, Calls]) -> None:
    # Stored texts differ in form (an older fedflow kept a non-ASCII input raw; results are
    # escaped): a copy of the same flow is still the same flow, not a clash.
    name, _calls = flow_name
    engine = make()
    engine.start(node(lambda x: {"who": "café", "in": x}), "thé", id="done-1")
    engine.store.create(FlowRecord(id="old-1", name=name, status=SUSPENDED, input='"crème brûlée"',
                                   waiting="first"))
    data = engine.export()
    assert engine.import_store(copy.deepcopy(data)) == []
    assert engine.export() == data
    assert engine.result("done-1") == {"who": "café", "in": "thé"}


def test_a_deeply_nested_dollar_keyed_input_starts(make: Callable[..., Engine]) -> None:
    value: Any = 1
    for _ in range(205):  # each level is a one-key "$" dict, stored as a $map
        value = {"$a": value}
    engine = make()
    assert engine.start(node(lambda x: "ran"), value, id="deep") == "ran"
    assert engine.status("deep") == "done"
    assert engine.export()["flows"][0]["input"] == fedflow.values.encode(value)


# -- malformed imports --------------------------------------------------------------------------------

def corrupt(change: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
    def apply(data: dict[str, Any]) -> Any:
        out = change(data)
        return data if out is None else out
    return apply


def drop(key: str, index: int = 0) -> Callable[[dict[str, Any]], Any]:
    return corrupt(lambda d: d["flows"][index].pop(key))


def put(key: str, value: Any, index: int = 0) -> Callable[[dict[str, Any]], Any]:
    return corrupt(lambda d: d["flows"][index].__setitem__(key, value))


MALFORMED: dict[str, Callable[[dict[str, Any]], Any]] = {
    "not an object": lambda d: [d],
    "json text": lambda d: json.dumps(d),
    "truncated json text": lambda d: json.dumps(d)[:-25],
    "none": lambda d: None,
    "wrong format": corrupt(lambda d: d.__setitem__("format", "other-store")),
    "missing format": corrupt(lambda d: d.pop("format")),
    "newer version": corrupt(lambda d: d.__setitem__("version", 2)),
    "version that never existed": corrupt(lambda d: d.__setitem__("version", 0)),
    "version as text": corrupt(lambda d: d.__setitem__("version", "1")),
    "version as bool": corrupt(lambda d: d.__setitem__("version", True)),
    "missing version": corrupt(lambda d: d.pop("version")),
    "flows not a list": corrupt(lambda d: d.__setitem__("flows", {"a": 1})),
    "missing flows": corrupt(lambda d: d.pop("flows")),
    "truncated flow list": corrupt(lambda d: d["flows"].append({"id": "half"})),
    "duplicate id": corrupt(lambda d: d["flows"].append(copy.deepcopy(d["flows"][0]))),
    "flow not an object": corrupt(lambda d: d["flows"].append("flow")),
    "missing id": drop("id", 1),
    "empty id": put("id", "", 1),
    "int id": put("id", 7, 1),
    "bad status": put("status", "sleeping", 2),
    "missing input": drop("input", 2),
    "missing log": drop("log", 2),
    "log not a list": put("log", {"t": "s"}, 2),
    "bad log entry": put("log", [{"t": "x"}], 2),
    "suspend entry without tag": put("log", [{"t": "s", "v": 1}], 2),
    "step entry without value": put("log", [{"t": "j", "k": "0", "n": "step a"}], 2),
    "step error without type": put("log", [{"t": "j", "k": "0", "n": "step a", "e": {"message": "m"}}], 2),
    "bad base64 input": put("input", {"$bytes": "!!"}, 2),
    "bad $map result": put("result", {"$map": 3}, 2),
    "nan input": put("input", float("nan"), 2),
    "set input": put("input", {1, 2}, 2),
    "bad value in log": put("log", [{"t": "s", "tag": "t", "v": {"$bytes": 5}}], 2),
    "negative epoch": put("epoch", -1, 2),
    "text epoch": put("epoch", "1", 2),
    "text created": put("created", "yesterday", 2),
    "int name": put("name", 3, 2),
    "bad request": put("request", ["only kind"], 2),
    "error not an object": put("error", "boom", 2),
}


@pytest.mark.parametrize("label", list(MALFORMED))
def test_a_malformed_import_raises_replica_error_and_changes_nothing(busy: Engine, make: Callable[..., Engine],
                                                                    label: str) -> None:
    # Given an export made malformed, and two stores: the exporter and a fresh one
    bad = MALFORMED[label](copy.deepcopy(busy.export()))
    fresh = make()
    for target in (busy, fresh):
        before = target.export()
        # When it is imported / Then ReplicaError, and the store is exactly as it was
        with pytest.raises(ReplicaError):
            target.import_store(copy.deepcopy(bad))
        assert target.export() == before


def test_an_import_that_clashes_with_a_different_flow_writes_nothing(busy: Engine,
                                                                     make: Callable[..., Engine]) -> None:
    # Given another engine with its own, different flow under one of busy's ids
    other = make()
    other.start(node(lambda x: "mine"), None, id="done-1")
    other.start(node(lambda x: suspend("t")), None, id="unrelated")
    before = other.export()
    # When busy's export (which also holds new, non-clashing flows) is imported
    with pytest.raises(ReplicaError) as ei:
        other.import_store(busy.export())
    # Then nothing at all was written
    assert "done-1" in str(ei.value)
    assert other.export() == before
    assert other.status("waiting-1") == "unknown"


def test_a_newer_state_of_the_same_live_flow_supersedes_the_old_one(busy: Engine, make: Callable[..., Engine]) -> None:
    other = make()
    other.import_store(busy.export())
    busy.resume("waiting-1", "newer")
    assert other.import_store(busy.export()) == ["waiting-1"]
    assert other.pending()[0] == ("waiting-1", "second")


# -- replicate / restore -------------------------------------------------------------------------------

def test_replicate_holds_a_copy_aside_and_restore_brings_it_in(busy: Engine, make: Callable[..., Engine]) -> None:
    holder = make()
    busy.peers.register("holder", holder)
    assert busy.replicate_to("holder") == 3
    assert holder.list() == []
    reborn = make(busy.name)  # the same instance, its disk lost
    reborn.peers.register("holder", holder)
    assert reborn.restore_from("holder") == ["waiting-1", "waiting-2", "done-1"]
    assert without_ownership(flows_of(reborn)) == without_ownership(flows_of(busy))
    for mine, original in zip(flows_of(reborn), flows_of(busy), strict=True):
        assert mine["owner"] == reborn.name, "a restore claims the flows"
        assert mine["epoch"] > original["epoch"]
    assert busy.status("waiting-1") == "suspended", "replication copies, it does not move"


def test_replicate_again_replaces_the_held_copy(busy: Engine, make: Callable[..., Engine]) -> None:
    holder = make()
    busy.peers.register("holder", holder)
    busy.replicate_to("holder")
    busy.forget("done-1")
    assert busy.replicate_to("holder") == 2
    assert holder.restore_from(holder.name, source=busy.name) == ["waiting-1", "waiting-2"]


def test_restore_is_idempotent(busy: Engine, make: Callable[..., Engine]) -> None:
    holder = make()
    busy.peers.register("holder", holder)
    busy.replicate_to("holder")
    assert len(holder.restore_from(holder.name, source=busy.name)) == 3
    before = holder.export()
    assert holder.restore_from(holder.name, source=busy.name) == []
    assert holder.export() == before


def test_restore_when_no_replica_is_held_is_replica_error(make: Callable[..., Engine]) -> None:
    a, holder = make(), make()
    a.peers.register("holder", holder)
    with pytest.raises(ReplicaError):
        a.restore_from("holder")
    with pytest.raises(ReplicaError):
        holder.restore_from(holder.name, source="nobody")


def test_replicate_and_restore_with_unknown_or_dict_peers(busy: Engine) -> None:
    with pytest.raises(UnknownPeer):
        busy.replicate_to("ghost")
    with pytest.raises(UnknownPeer):
        busy.restore_from("ghost")
    busy.peers.register("table", {"fn": lambda x: x})
    with pytest.raises(PeerError):
        busy.replicate_to("table")
    with pytest.raises(PeerError):
        busy.restore_from("table")


# -- handoff ----------------------------------------------------------------------------------------------

def test_handoff_moves_only_suspended_flows(busy: Engine, make: Callable[..., Engine],
                                           flow_name: tuple[str, Calls]) -> None:
    _name, calls = flow_name
    b = make()
    busy.peers.register("b", b)
    assert sorted(busy.handoff_to("b")) == ["waiting-1", "waiting-2"]
    assert busy.list() == [("waiting-1", "moved"), ("waiting-2", "moved"), ("done-1", "done")]
    assert sorted(b.pending()) == [("waiting-1", "first"), ("waiting-2", "second")]
    assert b.status("done-1") == "unknown"
    with pytest.raises(FlowMoved) as ei:
        busy.resume("waiting-1", 1)
    assert ei.value.owner == "b"
    s = b.resume("waiting-1", "x")
    assert b.resume(s.id, "y")[1:] == ["x", "y"]
    assert calls.n == 2, "journaled steps are not re-run after the move"


def test_handoff_with_nothing_suspended_moves_nothing(make: Callable[..., Engine]) -> None:
    a, b = make(), make()
    a.peers.register("b", b)
    a.start(node(lambda x: x), 1, id="d")
    assert a.handoff_to("b") == []
    assert a.list() == [("d", "done")]
    assert b.list() == []


def test_handoff_to_an_unknown_peer_changes_nothing(busy: Engine) -> None:
    before = busy.export()
    with pytest.raises(UnknownPeer):
        busy.handoff_to("ghost")
    assert busy.export() == before


def test_handoff_to_a_peer_that_cannot_hold_replicas_leaves_the_flows_suspended(busy: Engine) -> None:
    # Given a dict-table peer (it can run functions but cannot hold flows)
    busy.peers.register("table", {"fn": lambda x: x})
    pending, log = busy.pending(), log_of(busy, "waiting-1")
    # When a handoff to it fails
    with pytest.raises(PeerError):
        busy.handoff_to("table")
    # Then no flow is lost: all are suspended here again, and still resumable here
    assert busy.list() == [("waiting-1", "suspended"), ("waiting-2", "suspended"), ("done-1", "done")]
    assert busy.pending() == pending
    assert log_of(busy, "waiting-1") == log
    assert [f["owner"] for f in flows_of(busy)] == [None, None, None]
    assert busy.resume("waiting-2", "still here")[2] == "still here"


def test_moved_flows_come_back_when_handed_back(busy: Engine, make: Callable[..., Engine],
                                               flow_name: tuple[str, Calls]) -> None:
    _name, calls = flow_name
    b = make()
    busy.peers.register("b", b)
    b.peers.register("a", busy)
    busy.handoff_to("b")
    assert b.resume("waiting-1", "on b").tag == "second"
    # When b hands everything back
    assert sorted(b.handoff_to("a")) == ["waiting-1", "waiting-2"]
    # Then a owns them again, with what happened on b
    assert busy.list() == [("waiting-1", "suspended"), ("waiting-2", "suspended"), ("done-1", "done")]
    assert b.list() == [("waiting-1", "moved"), ("waiting-2", "moved")]
    assert busy.resume("waiting-1", "back on a")[1:] == ["on b", "back on a"]
    assert calls.n == 2
    with pytest.raises(FlowMoved) as ei:
        b.resume("waiting-2", 1)
    assert ei.value.owner == "a"


def test_gc_on_the_old_owner_drops_moved_records(busy: Engine, make: Callable[..., Engine]) -> None:
    b = make()
    busy.peers.register("b", b)
    busy.handoff_to("b")
    assert busy.gc() == 3
    assert busy.list() == []
    assert len(b.list()) == 2


def test_flows_received_by_handoff_survive_the_receivers_own_restore(make: Callable[..., Engine],
                                                                      flow_name: tuple[str, Calls]) -> None:
    # Given a receives b under the alias "receiver" (not b's engine name) and hands off to it
    name, _calls = flow_name
    a, b, holder = make(), make(), make()
    a.peers.register("receiver", b)
    b.peers.register("holder", holder)
    s = a.start(name, 1)
    assert a.handoff_to("receiver") == [s.id]
    assert b.pending() == [(s.id, "first")]
    # When b replicates, loses its disk, and restores itself
    assert b.replicate_to("holder") == 1
    reborn = make(b.name)
    reborn.peers.register("holder", holder)
    # Then the flow it owned comes back (it is owned nowhere else: a has it as moved)
    assert reborn.restore_from("holder") == [s.id]
    assert reborn.pending() == [(s.id, "first")]


def test_fence_marks_a_flow_left_running_by_a_crash_moved_so_recover_does_not_rerun_it() -> None:
    # Given A's flow was restored on B (B claims it at a newer epoch) while A's own copy was
    # left `running` by a crash, when A fences against B before recovering, the copy is
    # `moved` to B and recover() runs nothing.
    runs: list[Any] = []
    name = f"fence-running-{uuid.uuid4().hex[:8]}"
    fedflow.defflow(name, fedflow.sequence(fedflow.step(lambda x: runs.append(x) or x, name="effect"),
                                           fedflow.node(lambda x: fedflow.suspend("go"))))
    a, b = fedflow.Engine(name="fr-a"), fedflow.Engine(name="fr-b")
    a.peers.register("fr-b", b)
    flow_id = a.start(name, 1).id
    a.replicate_to("fr-b")
    assert b.restore_from("fr-b", source="fr-a") == [flow_id]
    assert a.store.transition(flow_id, ["suspended"], {"status": "running", "waiting": None})
    assert a.fence("fr-b") == [flow_id]
    assert a.status(flow_id) == "moved"
    assert a.recover() == []
    assert runs == [1]
    assert b.resume(flow_id, "on b") == "on b"


def test_a_flow_held_for_a_handoff_reads_suspended_and_cannot_be_resumed_or_cancelled(
        busy: Engine, make: Callable[..., Engine]) -> None:
    # Given a peer that stops in the middle of receiving the replica
    receiving, go_on = threading.Event(), threading.Event()

    class SlowPeer(LocalTransport):
        def push_replica(self, source: str, export_text: str, *, deadline: float) -> int:
            receiving.set()
            assert go_on.wait(10.0)
            return super().push_replica(source, export_text, deadline=deadline)

    b = make()
    busy.peers.add(SlowPeer("b", b))
    handoff = threading.Thread(target=busy.handoff_to, args=("b",))
    handoff.start()
    try:
        assert receiving.wait(10.0)
        # When the flows are held for the handoff
        # Then they still read suspended (they are not running), and nothing can resume or cancel them
        assert busy.status("waiting-1") == "suspended"
        assert ("waiting-1", "suspended") in busy.list()
        assert busy.pending() == [] and busy.resumable_ids() == []
        with pytest.raises(fedflow.FlowError, match="being handed off to 'b'"):
            busy.resume("waiting-1", "now")
        with pytest.raises(fedflow.FlowError, match="being handed off"):
            busy.cancel("waiting-1")
    finally:
        go_on.set()
        handoff.join(10.0)
    assert busy.status("waiting-1") == "moved" and b.status("waiting-1") == "suspended"
