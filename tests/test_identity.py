"""Peers with their own identity: per-peer tokens reach only PeerService and write only their
own replica slot, control verbs need the operator token, slots are capped, tokens rotate
without a restart, and `fedflow replicas` shows the slots."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import fedflow
from fedflow.client import ControlClient
from fedflow.errors import FedflowError, LimitExceeded, ReplicaError
from fedflow.grpc.identity import Caller, Credentials
from fedflow.grpc.server import run_server
from fedflow.slots import SlotLimits
from fedflow.transport.grpc import GrpcTransport

EXPORT = json.dumps({"format": "fedflow-store", "version": 1, "engine": "b", "flows": []})


def _token(path: Path, text: str) -> str:
    path.write_text(text + "\n")
    return str(path)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, str]:
    return {"operator": _token(tmp_path / "op", "op-secret"), "b": _token(tmp_path / "b", "b-secret"),
            "c": _token(tmp_path / "c", "c-secret")}


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_each_token_names_its_caller(files: dict[str, str]) -> None:
    creds = Credentials(operator_file=files["operator"], peer_files={"b": files["b"], "c": files["c"]})
    assert creds.who("op-secret") == Caller(None, True)
    assert creds.who("b-secret") == Caller("b", False)
    assert creds.who("nope") is None and creds.who("") is None
    assert Caller("b", False).may_write_slot("b") and not Caller("b", False).may_write_slot("c")


def test_a_rewritten_token_file_is_read_again_and_the_old_token_lasts_the_grace(files: dict[str, str]) -> None:
    clock = Clock()
    creds = Credentials(peer_files={"b": files["b"]}, operator_file=files["operator"], grace=60, clock=clock)
    Path(files["b"]).write_text("b-rotated-secret\n")
    clock.now += 2  # past the once-a-second recheck
    assert creds.who("b-rotated-secret") == Caller("b", False)
    assert creds.who("b-secret") == Caller("b", False), "the old token is still accepted"
    clock.now += 61
    assert creds.who("b-secret") is None, "after the grace period only the new one"
    assert creds.who("b-rotated-secret") == Caller("b", False)


@pytest.fixture
def served(files: dict[str, str]) -> Iterator[tuple[fedflow.Engine, str]]:
    creds = Credentials(operator_file=files["operator"], peer_files={"b": files["b"], "c": files["c"]})
    with fedflow.Engine(name="holder") as engine, run_server(engine, credentials=creds) as port:
        engine.expose("echo", lambda x: x)
        yield engine, f"127.0.0.1:{port}"


def test_a_peer_writes_only_its_own_slot_and_calls_only_peer_service(served: tuple[fedflow.Engine, str]) -> None:
    engine, address = served
    with contextlib.closing(GrpcTransport("holder", address, token="b-secret")) as b:
        assert b.call("echo", 1, deadline=5, call_id="") == 1
        assert b.push_replica("b", EXPORT, deadline=5) == 0
        with pytest.raises(ReplicaError, match="only its own replica slot"):
            b.push_replica("c", EXPORT, deadline=5)
    with ControlClient(address, token="b-secret") as as_peer, pytest.raises(FedflowError, match="operator credential"):
        as_peer.status("x")
    with ControlClient(address, token="op-secret") as operator:
        assert operator.status("x")["status"] == "unknown"
    assert [(s, who) for s, _n, _at, who in engine.store.replica_slots()] == [("b", "b")]


def test_replica_slots_are_capped_in_number_and_bytes(served: tuple[fedflow.Engine, str]) -> None:
    engine, address = served
    engine.federation.slot_limits = SlotLimits(max_slots=1, max_total_bytes=len(EXPORT) + 10)
    with contextlib.closing(GrpcTransport("holder", address, token="b-secret")) as b, \
            contextlib.closing(GrpcTransport("holder", address, token="c-secret")) as c:
        b.push_replica("b", EXPORT, deadline=5)
        with pytest.raises(LimitExceeded, match="max-replica-slots"):
            c.push_replica("c", EXPORT, deadline=5)
        engine.federation.slot_limits = SlotLimits(max_slots=2, max_total_bytes=len(EXPORT) + 10)
        with pytest.raises(LimitExceeded, match="max-replica-total-bytes"):
            c.push_replica("c", EXPORT, deadline=5)
        b.push_replica("b", EXPORT, deadline=5)  # replacing its own slot fits
    assert engine.store.replica_sources() == ["b"]


def test_fedflow_replicas_lists_the_slots(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    with fedflow.Engine(name="a", store=db) as engine:
        engine.accept_replica("b", EXPORT, sender="b")
    out = subprocess.run([sys.executable, "-m", "fedflow", "replicas", "--db", str(db)], capture_output=True,
                         text=True, timeout=60, env={**os.environ})
    assert out.returncode == 0, out.stderr
    (slot,) = json.loads(out.stdout)["replicas"]
    assert (slot["source"], slot["flows"], slot["bytes"], slot["sender"]) == ("b", 0, len(EXPORT), "b")
    assert slot["updated"] > 0


def test_fedflow_replicas_at_an_instance_asks_over_the_wire(served: tuple[fedflow.Engine, str]) -> None:
    engine, address = served
    with contextlib.closing(GrpcTransport("holder", address, token="b-secret")) as b:
        b.push_replica("b", EXPORT, deadline=5)
    engine.store.put_replica("c", "not a store export")  # an unreadable slot lists without a flow count
    with ControlClient(address, token="op-secret") as operator:
        listed = operator.replicas()["replicas"]
    by_source = {slot["source"]: slot for slot in listed}
    assert set(by_source) == {"b", "c"}
    assert (by_source["b"]["flows"], by_source["b"]["bytes"], by_source["b"]["sender"]) == (0, len(EXPORT), "b")
    assert by_source["b"]["updated"] > 0
    assert (by_source["c"]["flows"], by_source["c"]["sender"]) == (None, None)
    out = subprocess.run([sys.executable, "-m", "fedflow", "replicas", "--at", address], capture_output=True,
                         text=True, timeout=60, env={**os.environ, "FEDFLOW_TOKEN": "op-secret"})
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"replicas": listed}
    with ControlClient(address, token="b-secret") as as_peer, pytest.raises(FedflowError, match="operator credential"):
        as_peer.replicas()


def test_fedflow_replicas_needs_at_or_db() -> None:
    env = {k: v for k, v in os.environ.items() if k != "FEDFLOW_AT"}
    out = subprocess.run([sys.executable, "-m", "fedflow", "replicas"], capture_output=True, text=True,
                         timeout=60, env=env)
    assert out.returncode == 2
    assert "--at HOST:PORT" in out.stderr and "--db FILE" in out.stderr
