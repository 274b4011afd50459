"""The command line against a real `fedflow serve`: `resume ID JSON [--tag TAG]` (the value
required), `pending` with a host request's kind and payload, `start`'s refusals, and errors that
name CLI verbs where the same error in Python names methods."""

from __future__ import annotations

import textwrap
from pathlib import Path

import grpc
import pytest

import fedflow
from fedflow.v1 import fedflow_pb2 as pb
from fedflow.v1 import fedflow_pb2_grpc as pb_grpc

try:
    from test_cli_support import assert_one_line_error, cli_json, run_cli
except ImportError:  # tests/ imported as a package
    from tests.test_cli_support import assert_one_line_error, cli_json, run_cli

MODULE = textwrap.dedent('''
    """Flows for the CLI resume/pending tests, loaded with --load."""
    from fedflow import defflow, node, request, sequence, suspend


    def register(engine):
        defflow("cli_two_waits", sequence(
            node(lambda x: {"input": x, "first": suspend("first")}),
            node(lambda d: {**d, "second": suspend("second")}),
        ))
        defflow("cli_render", node(lambda x: {"frame": request("render", {"scene": x, "raw": b"\\x00"})}))
        defflow("cli_boom", node(lambda x: 1 // 0))
''')


@pytest.fixture
def at(fedflow_serve, tmp_path: Path) -> str:
    module = tmp_path / "cli_flows.py"
    module.write_text(MODULE)
    return fedflow_serve("clirp", load=[module]).address


def pending_of(at: str, flow_id: str) -> dict:
    (entry,) = [e for e in cli_json(["pending", "--at", at])["pending"] if e["id"] == flow_id]
    return entry


@pytest.mark.timeout(180)
def test_resume_needs_its_value_and_honours_tag(at: str) -> None:
    cli_json(["start", "--at", at, "cli_two_waits", '"doc"', "--id", "r-1"])

    assert_one_line_error(run_cli(["resume", "--at", at, "r-1"]), 2, "required: JSON")
    assert_one_line_error(run_cli(["resume", "--at", at, "r-1", '{"$byte": "AA=="}']), 2,
                          "JSON: unknown tag '$byte'")
    assert pending_of(at, "r-1")["tag"] == "first", "a refused command sends nothing"

    line = assert_one_line_error(run_cli(["resume", "--at", at, "r-1", '"early"', "--tag", "second"]), 1,
                                 "does not wait on 'second'", "`fedflow pending` shows")
    assert "pending()" not in line
    assert cli_json(["resume", "--at", at, "r-1", "null", "--tag", "first"]) == {
        "id": "r-1", "status": "suspended", "tag": "second"}
    assert_one_line_error(run_cli(["resume", "--at", at, "r-1", "null", "--tag", "first"]), 1, "'second'")
    assert pending_of(at, "r-1") == {"id": "r-1", "tag": "second", "kind": None, "payload": None}
    out = cli_json(["resume", "--at", at, "r-1", '"b"', "--tag", "second"])
    assert out == {"id": "r-1", "status": "done", "result": {"input": "doc", "first": None, "second": "b"}}


@pytest.mark.timeout(180)
def test_pending_prints_the_request_kind_and_payload(at: str) -> None:
    cli_json(["start", "--at", at, "cli_render", '"intro"', "--id", "p-1"])

    entry = pending_of(at, "p-1")

    assert entry["kind"] == "render"
    assert entry["payload"] == {"scene": "intro", "raw": {"$bytes": "AA=="}}, "bytes in the tagged form"
    assert entry["tag"].startswith("request:")
    out = cli_json(["resume", "--at", at, "p-1", '"frame-1"', "--tag", entry["tag"]])
    assert out == {"id": "p-1", "status": "done", "result": {"frame": "frame-1"}}


@pytest.mark.timeout(180)
def test_start_refuses_an_empty_id_an_unknown_flow_and_another_flows_id(at: str) -> None:
    first = cli_json(["start", "--at", at, "cli_two_waits", '"doc"', "--id", "s-1"])

    assert_one_line_error(run_cli(["start", "--at", at, "cli_render", '"x"', "--id", "s-1"]), 1,
                          "FlowExists", "'cli_two_waits'", "pick another id")
    assert_one_line_error(run_cli(["start", "--at", at, "no_such_flow", "--id", "s-2"]), 1,
                          "UnknownFlow", "no flow named 'no_such_flow'")
    assert_one_line_error(run_cli(["start", "--at", at, "cli_two_waits", "--id", ""]), 1, "non-empty")
    assert cli_json(["start", "--at", at, "cli_two_waits", '"again"', "--id", "s-1"]) == first
    assert {f["id"] for f in cli_json(["list", "--at", at])["flows"]} == {"s-1"}


@pytest.mark.timeout(180)
def test_errors_name_verbs_on_the_cli_and_methods_in_python(at: str) -> None:
    line = assert_one_line_error(run_cli(["result", "--at", at, "nope-1"]), 1, "`fedflow list` shows the flows")
    assert "list()" not in line
    assert_one_line_error(run_cli(["start", "--at", at, "cli_boom", "1", "--id", "f-1"]), 1,
                          "FlowFailed", "`fedflow forget f-1` or `fedflow gc` drop the failed record")
    cli_json(["start", "--at", at, "cli_two_waits", '"doc"', "--id", "w-1"])
    assert_one_line_error(run_cli(["result", "--at", at, "w-1"]), 1, "FlowNotDone", "`fedflow pending` shows",
                          "`fedflow status w-1`")

    with fedflow.Engine(name="py-words") as engine:  # the same errors, seen by a Python user
        with pytest.raises(fedflow.UnknownFlow, match=r"list\(\) shows the flows"):
            engine.result("nope-1")
        with pytest.raises(fedflow.FlowFailed, match=r"forget\(\) or gc\(\) drop"):
            engine.start(fedflow.node(lambda x: 1 // 0), 1, id="f-1")


@pytest.mark.timeout(180)
def test_the_bearer_scheme_is_case_insensitive_on_a_real_serve(fedflow_serve) -> None:
    served = fedflow_serve("bearer", token="case-t0ken")

    with grpc.insecure_channel(served.address) as channel:
        stub = pb_grpc.ControlServiceStub(channel)
        for scheme in ("Bearer", "bearer", "BEARER"):
            reply = stub.List(pb.ListRequest(), timeout=20, metadata=(("authorization", f"{scheme} case-t0ken"),))
            assert list(reply.flows) == []
        with pytest.raises(grpc.RpcError) as caught:
            stub.List(pb.ListRequest(), timeout=20, metadata=(("authorization", "bearer wrong"),))
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
