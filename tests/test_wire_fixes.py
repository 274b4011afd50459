"""What a client in another language sees over the wire: Start's refusals (an empty id, an unknown
flow name, another flow's id), a guarded Resume, Pending with a host request's kind and payload,
decode errors naming the value's path, unknown `$` tags refused. Raw protobuf calls against a
served Engine (127.0.0.1, port 0), as grpcurl or @grpc/grpc-js would make them."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

import fedflow
from fedflow import defflow, node, request, sequence, suspend
from fedflow.client import ControlClient
from fedflow.grpc.server import run_server
from fedflow.v1 import fedflow_pb2 as pb
from fedflow.v1 import fedflow_pb2_grpc as pb_grpc

try:
    from support import unique
except ImportError:  # tests/ imported as a package
    from tests.support import unique


class Wire:
    """A served engine, a raw ControlService stub and a ControlClient on it."""

    def __init__(self, engine: fedflow.Engine, address: str, channel: grpc.Channel) -> None:
        self.engine, self.address = engine, address
        self.stub = pb_grpc.ControlServiceStub(channel)
        self.client = ControlClient(address, deadline=20)

    def refused(self, method: str, request: object) -> grpc.RpcError:
        """The RpcError `method` answers `request` with (the test fails if it succeeds)."""
        with pytest.raises(grpc.RpcError) as caught:
            getattr(self.stub, method)(request, timeout=20)
        return caught.value


@pytest.fixture
def wire() -> Iterator[Wire]:
    with contextlib.ExitStack() as stack:
        engine = stack.enter_context(fedflow.Engine(name=unique("wire")))
        port = stack.enter_context(run_server(engine, grace=0.5))
        channel = stack.enter_context(grpc.insecure_channel(f"127.0.0.1:{port}"))
        made = Wire(engine, f"127.0.0.1:{port}", channel)
        stack.callback(made.client.close)
        yield made


@pytest.fixture(scope="module")
def flows() -> dict[str, str]:
    names = {"two": unique("two-waits"), "render": unique("render"), "echo": unique("echo")}
    defflow(names["two"], sequence(node(lambda x: {"input": x, "first": suspend("first")}),
                                   node(lambda d: {**d, "second": suspend("second")})))
    defflow(names["render"], node(lambda x: {"frame": request("render", {"scene": x, "raw": b"\x00", "fps": 24})}))
    defflow(names["echo"], node(lambda x: x))
    return names


def trailer(exc: grpc.RpcError, key: str) -> str | bytes | None:
    return dict(exc.trailing_metadata() or ()).get(key)


def pack(value: object) -> bytes:
    return json.dumps(value).encode()


# ------------------------------------------------------------------ Start
def test_start_with_an_empty_id_is_invalid_argument_and_creates_nothing(wire: Wire, flows: dict[str, str]) -> None:
    exc = wire.refused("Start", pb.StartRequest(flow=flows["echo"], input=pack(1), id=""))

    assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT, exc
    assert "non-empty" in exc.details() and "leave id out" in exc.details()
    assert wire.engine.list() == []
    with pytest.raises(fedflow.UnsupportedValue):
        wire.engine.start(flows["echo"], 1, id="")
    assert wire.engine.list() == [], "in-process too, nothing is created"


def test_start_of_an_unknown_flow_name_is_not_found(wire: Wire) -> None:
    name = unique("never-defined")

    exc = wire.refused("Start", pb.StartRequest(flow=name, input=pack(1), id="x-1"))

    assert exc.code() is grpc.StatusCode.NOT_FOUND, exc
    assert trailer(exc, "fedflow-error") == "UnknownFlow"
    assert name in exc.details() and "defflow" in exc.details()
    assert wire.engine.status("x-1") == "unknown"
    with pytest.raises(fedflow.UnknownFlow):
        wire.client.start(name, 1, flow_id="x-2")


def test_start_of_an_existing_id_with_another_flow_is_already_exists(wire: Wire, flows: dict[str, str]) -> None:
    first = wire.client.start(flows["two"], "doc", flow_id="s-1")
    before = json.dumps(wire.engine.export(), sort_keys=True)

    exc = wire.refused("Start", pb.StartRequest(flow=flows["echo"], input=pack(1), id="s-1"))

    assert exc.code() is grpc.StatusCode.ALREADY_EXISTS, exc
    assert trailer(exc, "fedflow-error") == "FlowExists"
    assert flows["two"] in exc.details() and flows["echo"] in exc.details()
    with pytest.raises(fedflow.FlowExists) as caught:
        wire.client.start(flows["echo"], 1, flow_id="s-1")
    assert caught.value.id == "s-1"
    assert json.dumps(wire.engine.export(), sort_keys=True) == before, "nothing changed"
    assert wire.client.start(flows["two"], "other input", flow_id="s-1") == first, "the same flow: its outcome"


def test_in_process_start_of_another_flows_id_raises_flow_exists(flows: dict[str, str]) -> None:
    with fedflow.Engine(name=unique("exists")) as engine:
        engine.start(flows["echo"], 7, id="e-1")
        with pytest.raises(fedflow.FlowExists, match="pick another id"):
            engine.start(flows["two"], "doc", id="e-1")
        with pytest.raises(fedflow.FlowExists):
            engine.start(node(lambda x: x), 7, id="e-1")  # an anonymous flow is another flow too
        assert engine.result("e-1") == 7 and engine.pending() == []


# ------------------------------------------------------------------ Resume with a guard, Pending
def test_a_guarded_resume_over_the_wire_is_refused_on_another_tag(wire: Wire, flows: dict[str, str]) -> None:
    wire.client.start(flows["two"], "doc", flow_id="g-1")

    exc = wire.refused("Resume", pb.ResumeRequest(id="g-1", value=pack("late"), tag="second"))

    assert exc.code() is grpc.StatusCode.FAILED_PRECONDITION, exc
    assert "'first'" in exc.details()
    assert wire.engine.pending() == [("g-1", "first")]
    assert wire.client.resume("g-1", "a", tag="first") == {"id": "g-1", "status": "suspended", "tag": "second"}
    with pytest.raises(fedflow.FlowError):
        wire.client.resume("g-1", "a", tag="first")  # a duplicate never feeds the next wait
    assert wire.engine.pending() == [("g-1", "second")]
    assert wire.client.resume("g-1", "b")["result"] == {"input": "doc", "first": "a", "second": "b"}, "unguarded"


def test_pending_carries_a_host_requests_kind_and_payload(wire: Wire, flows: dict[str, str]) -> None:
    wire.client.start(flows["render"], "intro", flow_id="r-1")
    wire.client.start(flows["two"], "doc", flow_id="p-1")

    entries = {e.id: e for e in wire.stub.Pending(pb.PendingRequest(), timeout=20).pending}

    assert entries["r-1"].HasField("kind") and entries["r-1"].kind == "render"
    assert json.loads(entries["r-1"].payload) == {"scene": "intro", "raw": {"$bytes": "AA=="}, "fps": 24}
    assert not entries["p-1"].HasField("kind") and entries["p-1"].payload == b""
    assert sorted(wire.client.pending()["pending"], key=lambda e: e["id"]) == [
        {"id": "p-1", "tag": "first", "kind": None, "payload": None},
        {"id": "r-1", "tag": entries["r-1"].tag, "kind": "render",
         "payload": {"scene": "intro", "raw": b"\x00", "fps": 24}},
    ]
    answered = wire.client.resume("r-1", "frame-1", tag=entries["r-1"].tag)
    assert answered == {"id": "r-1", "status": "done", "result": {"frame": "frame-1"}}


def test_engine_waits_reads_tags_and_requests_together(flows: dict[str, str]) -> None:
    with fedflow.Engine(name=unique("waits")) as engine:
        engine.start(flows["render"], "intro", id="r-1")
        engine.start(flows["two"], "doc", id="p-1")

        waits = sorted(engine.waits())

        tag, payload = dict(engine.pending())["r-1"], {"scene": "intro", "raw": b"\x00", "fps": 24}
        assert waits == [("p-1", "first", None), ("r-1", tag, ("render", payload))]
        assert engine.requests() == [("r-1", "render", payload)]


# ------------------------------------------------------------------ values: paths and tags
@pytest.mark.parametrize(("text", "path", "says"), [
    ('{"items": [1, 2, {"$byte": "AA=="}]}', "input['items'][2]", "unknown tag '$byte'"),
    ('{"items": [1, 2, {"$bytes": "!!"}]}', "input['items'][2]", "invalid base64"),
    ('{"items": [1, {"$int": 5}]}', "input['items'][1]", "$int must hold a hex string"),
    ('{"a": {"$map": "x"}}', "input['a']", "$map must hold"),
    ('{"a": [{"$text": 0}]}', "input['a'][0]", "no blobs came"),
    ('[1, NaN]', "input[1]", "not a finite float"),
    ('{"a": 1e999}', "input['a']", "not a finite float"),
])
def test_a_bad_value_is_refused_naming_its_path(wire: Wire, flows: dict[str, str], text: str, path: str,
                                                says: str) -> None:
    exc = wire.refused("Start", pb.StartRequest(flow=flows["echo"], input=text.encode(), id="v-1"))

    assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT, exc
    assert exc.details().startswith(f"{path}: ") and says in exc.details(), exc.details()
    detail = json.loads(trailer(exc, "fedflow-detail-bin"))
    assert detail["attrs"]["path"] == path
    assert wire.engine.status("v-1") == "unknown"


def test_a_resume_value_error_names_value_and_changes_nothing(wire: Wire, flows: dict[str, str]) -> None:
    wire.client.start(flows["two"], "doc", flow_id="v-2")

    exc = wire.refused("Resume", pb.ResumeRequest(id="v-2", value=b'{"ok": {"$fial": "typo"}}'))

    assert exc.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert exc.details().startswith("value['ok']: unknown tag '$fial'"), exc.details()
    assert wire.engine.pending() == [("v-2", "first")]


def test_a_one_key_dollar_object_written_as_map_still_passes(wire: Wire, flows: dict[str, str]) -> None:
    text = b'{"m": {"$map": [["$byte", 1]]}, "n": {"$x": 1, "y": 2}}'

    outcome = wire.stub.Start(pb.StartRequest(flow=flows["echo"], input=text, id="v-3"), timeout=20).outcome

    assert wire.engine.result("v-3") == {"m": {"$byte": 1}, "n": {"$x": 1, "y": 2}}
    assert json.loads(outcome.result) == json.loads(text), "a two-key object is data, never a tag"


def test_a_call_payload_error_names_its_path_with_blobs(wire: Wire) -> None:
    wire.engine.expose("echo", lambda x: x)
    request_ = pb.CallRequest(fn="echo", payload=b'{"a": [{"$text": 0}, {"$blb": 1}]}', blobs=[b"hi"], call_id="c")

    with grpc.insecure_channel(wire.address) as channel, pytest.raises(grpc.RpcError) as caught:
        pb_grpc.PeerServiceStub(channel).Call(request_, timeout=20)

    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("payload['a'][1]: unknown tag '$blb'"), caught.value.details()


def test_the_proto_tells_receivers_to_expand_blobs_and_how_the_guard_works() -> None:
    text = (Path(__file__).resolve().parent.parent / "proto" / "fedflow" / "v1" / "fedflow.proto").read_text()

    assert "Every receiver MUST expand blobs" in text
    assert "optional string tag = 3;" in text and "unless the flow waits on exactly this tag" in text
    assert "optional string kind = 3;" in text and "bytes payload = 4;" in text
