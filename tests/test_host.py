"""The host ABI: request / requests / drive_host / run_host / NOT_READY, and the reference
render -> human-review -> publish pipeline driven entirely by run_host."""

from __future__ import annotations

import importlib.util
import uuid
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

import fedflow
from fedflow import NOT_READY, Engine, fail, node, request, sequence, step, suspend


class Dispatch:
    """A dispatch function that records every (kind, payload) it is asked."""

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers
        self.asked: list[tuple[str, Any]] = []

    def __call__(self, kind: str, payload: Any) -> Any:
        self.asked.append((kind, payload))
        answer = self.answers[kind]
        return answer(payload) if callable(answer) else answer

    def kinds(self) -> list[str]:
        return [k for k, _p in self.asked]


def asks(kind: str) -> Any:
    return node(lambda x: request(kind, x))


# -- requests -------------------------------------------------------------------------------------

def test_request_suspends_with_a_pending_request(engine: Engine) -> None:
    s = engine.start(asks("render"), {"scene": b"\x00"}, id="r1")
    assert fedflow.is_suspended(s) and s.id == "r1"
    assert engine.requests() == [("r1", "render", {"scene": b"\x00"})]
    assert engine.pending() == [("r1", s.tag)]


def test_a_plain_suspend_is_not_a_host_request(engine: Engine) -> None:
    engine.start(node(lambda x: suspend("human")), None, id="plain")
    dispatch = Dispatch({})
    assert engine.requests() == []
    assert engine.drive_host(dispatch) == 0
    assert dispatch.asked == []
    assert engine.status("plain") == "suspended"


# -- drive_host ----------------------------------------------------------------------------------

def test_drive_host_answers_every_pending_request_and_counts_them(engine: Engine) -> None:
    for i in range(3):
        engine.start(node(lambda x: [x, request("square", x)]), i, id=f"sq{i}")
    dispatch = Dispatch({"square": lambda p: p * p})
    assert engine.drive_host(dispatch) == 3
    assert sorted(dispatch.asked) == [("square", 0), ("square", 1), ("square", 2)]
    assert [engine.result(f"sq{i}") for i in range(3)] == [[0, 0], [1, 1], [2, 4]]
    assert engine.drive_host(dispatch) == 0
    assert len(dispatch.asked) == 3


def test_a_tick_answers_only_the_requests_pending_when_it_starts(engine: Engine) -> None:
    flow = sequence(asks("one"), asks("two"), asks("three"))
    engine.start(flow, 0, id="chain")
    dispatch = Dispatch({"one": 1, "two": 2, "three": 3})
    assert engine.drive_host(dispatch) == 1
    assert engine.requests() == [("chain", "two", 1)]
    assert engine.drive_host(dispatch) == 1
    assert engine.drive_host(dispatch) == 1
    assert engine.result("chain") == 3
    assert dispatch.kinds() == ["one", "two", "three"]


def test_not_ready_leaves_the_request_pending_and_is_not_counted(engine: Engine) -> None:
    engine.start(asks("review"), "draft", id="wait")
    engine.start(asks("lint"), "code", id="now")
    dispatch = Dispatch({"review": NOT_READY, "lint": "clean"})
    assert engine.drive_host(dispatch) == 1
    assert engine.result("now") == "clean"
    assert engine.status("wait") == "suspended"
    assert engine.requests() == [("wait", "review", "draft")]
    assert engine.drive_host(dispatch) == 0
    assert dispatch.kinds() == ["review", "lint", "review"]


def test_a_flow_that_fails_after_being_answered_is_counted_and_the_tick_goes_on(engine: Engine) -> None:
    def explode(answer: Any) -> Any:
        raise RuntimeError(f"cannot use {answer}")

    engine.start(sequence(asks("a"), node(explode)), None, id="breaks")
    engine.start(asks("b"), None, id="fine")
    dispatch = Dispatch({"a": "A", "b": "B"})
    assert engine.drive_host(dispatch) == 2
    assert engine.status("breaks") == "failed"
    assert engine.result("fine") == "B"
    with pytest.raises(fedflow.FlowFailed):
        engine.result("breaks")


def test_a_dispatch_answer_that_is_not_plain_data_is_refused_and_the_request_stays(engine: Engine) -> None:
    engine.start(asks("k"), None, id="strict")
    with pytest.raises(fedflow.UnsupportedValue):
        engine.drive_host(Dispatch({"k": {1, 2}}))
    assert engine.requests() == [("strict", "k", None)]


def test_answers_are_delivered_exactly(engine: Engine) -> None:
    engine.start(asks("echo"), None, id="exact")
    engine.drive_host(Dispatch({"echo": {"n": 2**64 + 1, "b": b"", "f": fail({"$fail": 1}), "z": -0.0}}))
    assert engine.result("exact") == {"n": 2**64 + 1, "b": b"", "f": fail({"$fail": 1}), "z": -0.0}


def test_cancelled_flows_leave_the_request_queue(engine: Engine) -> None:
    engine.start(asks("x"), None, id="gone")
    engine.cancel("gone")
    dispatch = Dispatch({"x": 1})
    assert engine.requests() == []
    assert engine.drive_host(dispatch) == 0
    assert dispatch.asked == []


# -- run_host ---------------------------------------------------------------------------------------

def test_run_host_ticks_until_quiescent_and_counts_busy_ticks(engine: Engine) -> None:
    engine.start(sequence(asks("one"), asks("two"), asks("three")), 0, id="chain")
    engine.start(asks("one"), 0, id="short")
    dispatch = Dispatch({"one": 1, "two": 2, "three": 3})
    assert engine.run_host(dispatch) == 3
    assert (engine.result("chain"), engine.result("short")) == (3, 1)
    assert engine.run_host(dispatch) == 0


def test_run_host_is_bounded_by_max_ticks(engine: Engine) -> None:
    endless = fedflow.loop_while(lambda x: True, asks("more"), 10_000)
    engine.start(endless, 0, id="endless")
    dispatch = Dispatch({"more": lambda p: p + 1})
    assert engine.run_host(dispatch, max_ticks=4) == 4
    assert [p for _k, p in dispatch.asked] == [0, 1, 2, 3]
    assert engine.requests() == [("endless", "more", 4)]
    assert engine.run_host(dispatch, max_ticks=0) == 0
    assert len(dispatch.asked) == 4


def test_run_host_stops_when_only_not_ready_requests_remain(engine: Engine) -> None:
    engine.start(asks("human"), None, id="h")
    dispatch = Dispatch({"human": NOT_READY})
    assert engine.run_host(dispatch, max_ticks=50) == 0
    assert len(dispatch.asked) == 1


# -- the reference pipeline -----------------------------------------------------------------------------

def pipeline() -> Any:
    """render -> human-review -> publish, every piece of work asked of the host."""
    def review(rendered: Any) -> Any:
        return {"rendered": rendered, "verdict": request("human-review", rendered)}

    def publish(reviewed: Any) -> Any:
        if reviewed["verdict"] != "approve":
            return fail({"rejected": reviewed["verdict"]})
        return request("publish", reviewed["rendered"])

    return sequence(
        step(lambda draft: draft.strip(), name="normalise"),
        node(lambda draft: request("render", {"draft": draft})),
        node(review),
        node(publish),
    )


@pytest.fixture
def pipeline_name() -> str:
    name = f"pipeline-{uuid.uuid4().hex[:8]}"
    fedflow.defflow(name, pipeline())
    return name


class Host:
    """The host side of the pipeline: renders, publishes, and holds the human's verdicts."""

    def __init__(self) -> None:
        self.verdicts: dict[str, str] = {}
        self.asked: list[tuple[str, Any]] = []

    def __call__(self, kind: str, payload: Any) -> Any:
        self.asked.append((kind, payload))
        if kind == "render":
            return f"<h1>{payload['draft']}</h1>"
        if kind == "human-review":
            return self.verdicts.get(payload, NOT_READY)
        if kind == "publish":
            return {"url": f"https://example.test/{len(payload)}", "body": payload}
        raise AssertionError(kind)

    def count(self, kind: str) -> int:
        return sum(1 for k, _p in self.asked if k == kind)


def test_the_pipeline_driven_entirely_by_run_host(engine: Engine, pipeline_name: str) -> None:
    # Given two posts started, and a host whose human has reviewed nothing yet
    a = engine.start(pipeline_name, "  first  ", id="post-a")
    b = engine.start(pipeline_name, "second", id="post-b")
    assert fedflow.is_suspended(a) and fedflow.is_suspended(b)
    host = Host()
    # When the host runs / Then both are rendered and wait, quiescent, for review
    assert engine.run_host(host) == 1
    assert sorted(k for _f, k, _p in engine.requests()) == ["human-review", "human-review"]
    assert (engine.status("post-a"), engine.status("post-b")) == ("suspended", "suspended")
    # When the human approves one and rejects the other
    host.verdicts = {"<h1>first</h1>": "approve", "<h1>second</h1>": "too short"}
    assert engine.run_host(host) == 2
    # Then one is published, the other ends as a Fail value (a business outcome, not an error)
    assert engine.result("post-a") == {"url": "https://example.test/14", "body": "<h1>first</h1>"}
    assert engine.result("post-b") == fail({"rejected": "too short"})
    assert engine.list() == [("post-a", "done"), ("post-b", "done")]
    # And replays never asked the host twice for an answered request
    assert (host.count("render"), host.count("publish")) == (2, 1)
    assert engine.requests() == []


def test_the_pipeline_survives_a_restart_between_ticks(engine: Engine, pipeline_name: str) -> None:
    engine.start(pipeline_name, "post", id="durable")
    host = Host()
    engine.run_host(host)
    restarted = Engine(name=engine.name, store=engine.store)
    host.verdicts = {"<h1>post</h1>": "approve"}
    assert restarted.run_host(host) == 2
    assert restarted.result("durable")["body"] == "<h1>post</h1>"
    assert host.count("render") == 1


# -- the pipeline shipped under peers/ ---------------------------------------------------------------

PEERS = Path(__file__).resolve().parent.parent / "peers"


def load_peer_module(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"peers_{name}_under_test", PEERS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_pipeline_is_driven_entirely_by_run_host(engine: Engine) -> None:
    # Given peers/pipeline.py registered on an engine, and its Desk as the host
    shipped = load_peer_module("pipeline")
    shipped.register(engine)
    desk = shipped.Desk()
    engine.start("pipeline", {"title": "Hello", "body": "first"}, id="p1")
    engine.start("pipeline", {"title": "Spam", "body": "buy"}, id="p2")
    # When the host runs before anyone has reviewed / Then both wait for review, quiescent
    assert engine.run_host(desk) == 1
    drafts = {fid: payload for fid, kind, payload in engine.requests() if kind == "review"}
    assert sorted(drafts) == ["p1", "p2"]
    assert engine.run_host(desk) == 0
    # When the reviewer approves one and rejects the other
    desk.verdicts = {drafts["p1"]: "approved", drafts["p2"]: "off topic"}
    assert engine.run_host(desk) == 2
    # Then one is published once, the other ends as a Fail value
    assert engine.result("p1") == {"url": "/posts/1", "html": drafts["p1"]}
    assert fedflow.is_failed(engine.result("p2"))
    assert "off topic" in fedflow.fail_reason(engine.result("p2"))
    assert desk.published == [drafts["p1"]]
    assert engine.list() == [("p1", "done"), ("p2", "done")]
