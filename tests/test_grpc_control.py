"""Every control verb through ControlClient against served Engines (127.0.0.1 port 0)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest

import fedflow
from fedflow.client import ControlClient
from fedflow.grpc.server import run_server

try:
    from support import unique
except ImportError:  # tests/ imported as a package
    from tests.support import unique


class Served:
    """Engines served on ephemeral ports, each with a ControlClient."""

    def __init__(self, stack: contextlib.ExitStack) -> None:
        self._stack = stack
        self.engines: dict[str, fedflow.Engine] = {}
        self.addresses: dict[str, str] = {}

    def add(self, name: str) -> ControlClient:
        engine = fedflow.Engine(name=name)
        self._stack.callback(engine.close)
        port = self._stack.enter_context(run_server(engine, grace=0.5))
        self.engines[name] = engine
        self.addresses[name] = f"127.0.0.1:{port}"
        return self._stack.enter_context(ControlClient(self.addresses[name], deadline=20))

    def connect(self, frm: str, to: str) -> None:
        self.engines[frm].peers.connect(to, self.addresses[to])


@pytest.fixture
def served() -> Iterator[Served]:
    with contextlib.ExitStack() as stack:
        yield Served(stack)


@pytest.fixture
def flows() -> dict[str, str]:
    """Registered flows with unique names: wait (suspends on "go"), done, boom, counted."""
    names = {k: unique(k) for k in ("wait", "done", "boom", "counted")}
    runs: list = []

    def boom(x):
        raise ValueError(f"boom {x}")

    fedflow.defflow(names["wait"], fedflow.node(lambda x: {"input": x, "go": fedflow.suspend("go")}))
    fedflow.defflow(names["done"], fedflow.node(lambda x: {"echo": x}))
    fedflow.defflow(names["boom"], fedflow.node(boom))
    fedflow.defflow(names["counted"], fedflow.node(lambda x: runs.append(x) or len(runs)))
    names["runs"] = runs  # type: ignore[assignment]
    return names


def test_start_resume_status_result_pending_list(served: Served, flows: dict):
    c = served.add(unique("ctl"))
    out = c.start(flows["wait"], {"big": 2**64 + 1}, flow_id="job-1")
    assert out == {"id": "job-1", "status": "suspended", "tag": "go"}
    assert c.status("job-1") == {"id": "job-1", "status": "suspended"}
    assert c.pending() == {"pending": [{"id": "job-1", "tag": "go", "kind": None, "payload": None}]}
    assert c.list() == {"flows": [{"id": "job-1", "status": "suspended"}]}
    done = c.resume("job-1", b"\x00yes")
    assert done == {"id": "job-1", "status": "done", "result": {"input": {"big": 2**64 + 1}, "go": b"\x00yes"}}
    assert c.result("job-1") == {"id": "job-1", "result": done["result"]}
    assert c.status("nope") == {"id": "nope", "status": "unknown"}


def test_start_without_an_id_gets_one_and_a_done_flow_reports_its_result(served: Served, flows: dict):
    c = served.add(unique("ctl"))
    out = c.start(flows["done"], fedflow.fail("as data"))
    assert out["status"] == "done" and out["id"]
    assert out["result"] == {"echo": fedflow.fail("as data")}
    assert c.status(out["id"])["status"] == "done"


def test_start_with_an_existing_id_reports_that_flow_and_does_not_run_twice(served: Served, flows: dict):
    c = served.add(unique("ctl"))
    assert c.start(flows["counted"], "a", flow_id="once")["result"] == 1
    assert c.start(flows["counted"], "b", flow_id="once") == {"id": "once", "status": "done", "result": 1}
    assert flows["runs"] == ["a"]


def test_cancel_forget_and_gc(served: Served, flows: dict):
    c = served.add(unique("ctl"))
    c.start(flows["wait"], 1, flow_id="c1")
    c.start(flows["wait"], 2, flow_id="live")
    c.start(flows["done"], 3, flow_id="d1")
    assert c.cancel("c1") == {"id": "c1", "status": "cancelled"}
    with pytest.raises(fedflow.FlowCancelled):
        c.resume("c1", 1)
    with pytest.raises(fedflow.FlowError):
        c.forget("live")
    assert c.forget("d1") == {"id": "d1", "status": "unknown"}
    assert c.gc() == {"removed": 1}
    assert c.list() == {"flows": [{"id": "live", "status": "suspended"}]}


def test_flow_errors_come_back_as_the_same_fedflow_classes(served: Served, flows: dict):
    c = served.add(unique("ctl"))
    with pytest.raises(fedflow.UnknownFlow) as unknown:
        c.resume("ghost", 1)
    assert unknown.value.id == "ghost" and isinstance(unknown.value, KeyError)
    c.start(flows["wait"], 1, flow_id="w")
    with pytest.raises(fedflow.FlowNotDone):
        c.result("w")
    with pytest.raises(fedflow.FlowFailed) as failed:
        c.start(flows["boom"], 7, flow_id="b")
    assert failed.value.id == "b"
    assert (failed.value.cause.remote_type, failed.value.cause.remote_message) == ("ValueError", "boom 7")
    with pytest.raises(fedflow.FlowFailed) as again:
        c.result("b")
    assert again.value.cause.remote_type == "ValueError"
    with pytest.raises(fedflow.FlowError, match="defflow"):
        c.start(unique("unregistered"), 1)


def test_call_returns_the_result_or_raises_remote_error(served: Served):
    name = unique("callee")
    c = served.add(name)
    served.engines[name].expose("inc", lambda x: x + 1)
    served.engines[name].expose("bad", lambda x: 1 / 0)
    assert c.call("inc", 2**64) == {"result": 2**64 + 1}
    with pytest.raises(fedflow.RemoteError) as ei:
        c.call("bad", 1)
    assert ei.value.remote_type == "ZeroDivisionError"
    with pytest.raises(fedflow.UnknownFunction):
        c.call("missing", 1)


def test_call_carries_long_texts_and_bytes_both_ways(served: Served):
    name = unique("callee")
    c = served.add(name)
    served.engines[name].expose("double", lambda x: {"text": x["text"] * 2, "raw": x["raw"] * 2})
    value = {"text": "ß" * 6000, "raw": b"\x01\x02" * 4000}
    assert c.call("double", value) == {"result": {"text": "ß" * 12000, "raw": b"\x01\x02" * 8000}}


def test_replicate_restore_and_handoff_between_served_instances(served: Served, flows: dict):
    a, b, c = unique("a"), unique("b"), unique("c")
    ca, cb, cc = served.add(a), served.add(b), served.add(c)
    served.connect(a, b)
    served.connect(c, b)
    served.connect(b, c)
    ca.start(flows["wait"], "r", flow_id="r1")
    assert ca.replicate(b) == {"to": b, "flows": 1}
    assert cc.restore(b, source=a) == {"ids": ["r1"]}
    assert cc.resume("r1", "on c")["result"] == {"input": "r", "go": "on c"}
    cb.start(flows["wait"], "h", flow_id="h1")
    assert cb.handoff(c) == {"to": c, "ids": ["h1"]}
    assert cb.status("h1")["status"] == "moved"
    with pytest.raises(fedflow.FlowMoved) as moved:
        cb.resume("h1", 1)
    assert moved.value.owner == c and moved.value.id == "h1"
    assert cc.resume("h1", "moved ok")["result"] == {"input": "h", "go": "moved ok"}


def test_restore_defaults_to_the_instances_own_replica(served: Served, flows: dict):
    a, holder = unique("self"), unique("holder")
    ca, _ = served.add(a), served.add(holder)
    served.connect(a, holder)
    ca.start(flows["wait"], 1, flow_id="s1")
    ca.replicate(holder)
    ca.cancel("s1")
    ca.forget("s1")
    assert ca.restore(holder) == {"ids": ["s1"]}
    assert ca.status("s1")["status"] == "suspended"


def test_peers_lists_addresses_and_who_is_serving(served: Served):
    a, b = unique("a"), unique("b")
    ca, _ = served.add(a), served.add(b)
    served.connect(a, b)
    served.engines[a].peers.connect("down", "127.0.0.1:1")
    served.engines[a].peers.register("local", {"f": lambda x: x})
    assert ca.peers() == {"peers": [
        {"name": b, "address": served.addresses[b], "serving": True},
        {"name": "down", "address": "127.0.0.1:1", "serving": False},
        {"name": "local", "address": None, "serving": True},
    ]}


def test_peer_errors_of_control_verbs(served: Served):
    c = served.add(unique("ctl"))
    with pytest.raises(fedflow.UnknownPeer) as ei:
        c.replicate("nobody")
    assert ei.value.peer == "nobody"
    with pytest.raises(fedflow.UnknownPeer):
        c.handoff("nobody")


def test_an_unexpected_server_error_is_internal_without_a_traceback(served: Served, monkeypatch, caplog):
    name = unique("ctl")
    c = served.add(name)

    def broken(flow_id):
        raise RuntimeError("secret internals")

    monkeypatch.setattr(served.engines[name], "status", broken)
    with pytest.raises(fedflow.PeerError) as ei:
        c.status("x")
    assert "INTERNAL" in str(ei.value) and "secret" not in str(ei.value)
    assert "RuntimeError" in str(ei.value)
    assert c.list() == {"flows": []}, "the server stays up"
    assert any("secret internals" in (r.exc_text or str(r.exc_info)) for r in caplog.records), \
        "the server logs what went wrong"


def test_a_client_of_an_instance_that_is_not_running_gets_peer_unavailable():
    with ControlClient("127.0.0.1:1", deadline=1.0) as c:
        with pytest.raises(fedflow.PeerUnavailable):
            c.status("x")
        assert c.health() is False


def test_a_token_instance_needs_the_token(flows: dict):
    engine = fedflow.Engine(name=unique("tok"))
    try:
        with run_server(engine, token="t0k", grace=0.5) as port:
            address = f"127.0.0.1:{port}"
            with ControlClient(address, deadline=5) as anonymous:
                with pytest.raises(fedflow.PeerError, match="--token-file"):
                    anonymous.list()
                assert anonymous.health() is True
            with ControlClient(address, token="t0k", deadline=5) as client:
                assert client.start(flows["done"], 1, flow_id="t")["result"] == {"echo": 1}
    finally:
        engine.close()
