"""Deterministic replay: the author contract, journaled steps (also inside `parallel`),
journaled errors, non-determinism, request tags, and the log as a recorded history."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import fedflow
from fedflow import (
    Engine,
    FlowError,
    FlowFailed,
    NonDeterminism,
    ReplayedError,
    is_suspended,
    journal,
    loop_while,
    map_flow,
    node,
    parallel,
    request,
    sequence,
    step,
    suspend,
    tap,
    try_catch,
)
from fedflow.store.base import SUSPENDED, FlowRecord

try:
    from support import WAIT, Calls, log_of, unique
except ImportError:  # tests/ imported as a package
    from tests.support import WAIT, Calls, log_of, unique


# -- the author contract ------------------------------------------------------------------------

def test_side_effects_outside_step_rerun_on_replay_inside_step_they_do_not(engine: Engine) -> None:
    # Given a flow with an effect in a plain node and one in a step, then two suspends
    outside, inside = Calls(), Calls()
    flow = sequence(
        tap(outside),
        step(lambda x: inside(x) or x, name="effect"),
        node(lambda x: [x, suspend("one"), suspend("two")]),
    )
    # When it starts and is resumed twice (two replays)
    s = engine.start(flow, "in")
    assert (outside.n, inside.n) == (1, 1)
    engine.resume(s.id, 1)
    assert (outside.n, inside.n) == (2, 1)
    assert engine.resume(s.id, 2) == ["in", 1, 2]
    # Then the plain node ran on every run, the step exactly once
    assert (outside.n, inside.n) == (3, 1)


def test_a_resolved_suspend_replays_its_value_without_stopping(engine: Engine) -> None:
    flow = node(lambda x: [suspend("a"), suspend("b"), suspend("a")])
    s = engine.start(flow, None)
    assert s.tag == "a"
    s = engine.resume(s.id, {"first": b"\x00"})
    assert s.tag == "b"
    assert engine.resume(s.id, 2**64 + 1) == [{"first": b"\x00"}, 2**64 + 1, {"first": b"\x00"}]


def test_resume_value_arrives_as_plain_data(engine: Engine) -> None:
    s = engine.start(node(lambda x: suspend("t")), None)
    assert engine.resume(s.id, ("a", ("b",))) == ["a", ["b"]]


# -- steps inside parallel --------------------------------------------------------------------------

def test_parallel_steps_keep_deterministic_keys_when_children_finish_in_another_order(engine: Engine) -> None:
    # Given two parallel children that each run two journaled steps. On the first run child
    # b finishes before child a; on the replay child a finishes before child b.
    replaying = threading.Event()
    a_done, b_done = threading.Event(), threading.Event()
    runs = {name: Calls() for name in ("a1", "a2", "b1", "b2")}

    def gate(me: str) -> Any:
        def run(x: Any) -> Any:
            goes_first = (me == "b") != replaying.is_set()
            if not goes_first:  # wait until the other child has finished its steps
                assert (b_done if me == "a" else a_done).wait(WAIT)
            return x
        return node(run)

    def child(me: str) -> Any:
        done = a_done if me == "a" else b_done
        return sequence(
            gate(me),
            step(lambda x: runs[f"{me}1"](x) or f"{me}1({x})", name=f"{me}1"),
            step(lambda x: runs[f"{me}2"](x) or f"{me}2({x})", name=f"{me}2"),
            tap(lambda _x: done.set()),
        )

    flow = sequence(parallel(child("a"), child("b")), node(lambda r: [r, suspend("after")]))
    s = engine.start(flow, "x")
    assert is_suspended(s)
    first_log = log_of(engine, s.id)
    # When it replays with the opposite finishing order
    replaying.set()
    a_done.clear()
    b_done.clear()
    out = engine.resume(s.id, "resumed")
    # Then every step was executed exactly once and no new step was journaled
    assert out == [["a2(a1(x))", "b2(b1(x))"], "resumed"]
    assert {k: c.n for k, c in runs.items()} == {"a1": 1, "a2": 1, "b1": 1, "b2": 1}
    final_log = log_of(engine, s.id)
    assert [e for e in final_log if e["t"] == "j"] == [e for e in first_log if e["t"] == "j"]
    assert len({e["k"] for e in first_log}) == 4


def test_parallel_children_that_each_suspend_resume_in_child_order(engine: Engine) -> None:
    side = Calls()
    flow = parallel(
        node(lambda x: suspend("a")),
        sequence(step(lambda x: side(x) or "stepped", name="side"), node(lambda x: [x, suspend("b")])),
    )
    s = engine.start(flow, 1)
    assert s.tag == "a"
    s = engine.resume(s.id, "A")
    assert s.tag == "b"
    assert engine.resume(s.id, "B") == ["A", ["stepped", "B"]]
    assert side.n == 1


def test_steps_in_nested_parallel_and_map_flow_run_once(engine: Engine) -> None:
    calls = Calls()
    leaf = step(lambda x: calls(x) or x * 10, name="leaf")
    flow = sequence(map_flow(parallel(leaf, parallel(leaf, leaf))), node(lambda r: [r, suspend("t")]))
    s = engine.start(flow, [1, 2])
    assert calls.n == 6
    assert engine.resume(s.id, None) == [[[10, [10, 10]], [20, [20, 20]]], None]
    assert calls.n == 6


# -- journaled errors ----------------------------------------------------------------------------

def test_a_step_that_raised_is_re_raised_on_replay_as_the_same_builtin_type(engine: Engine) -> None:
    # Given a step that raises ValueError, caught by try_catch, then a suspend
    calls, handled = Calls(), Calls()

    def bad(x: Any) -> Any:
        calls(x)
        raise ValueError("bad input", 42)

    def handler(e: Exception) -> Any:
        handled(e)
        return [type(e).__name__, list(e.args)]

    flow = sequence(try_catch(step(bad, name="bad"), handler), node(lambda r: [r, suspend("next")]))
    s = engine.start(flow, 1)
    # When the flow is resumed (replayed)
    out = engine.resume(s.id, "go")
    # Then the handler saw a ValueError both times and the step ran once
    assert out == [["ValueError", ["bad input", 42]], "go"]
    assert calls.n == 1
    assert [type(e) for e in handled.seen] == [ValueError, ValueError]
    assert fedflow.replay.is_replayed(handled.seen[1]) and not fedflow.replay.is_replayed(handled.seen[0])


@pytest.mark.parametrize("exc", [KeyError("k"), ZeroDivisionError("div"), FileNotFoundError(2, "gone"),
                                 TimeoutError("slow"), LookupError()], ids=lambda e: type(e).__name__)
def test_builtin_exceptions_replay_as_themselves(engine: Engine, exc: Exception) -> None:
    def bad(x: Any) -> Any:
        raise exc

    flow = sequence(try_catch(step(bad, name="bad"), lambda e: [type(e).__name__, str(e)]),
                    node(lambda r: [r, suspend("t")]))
    s = engine.start(flow, None)
    assert engine.resume(s.id, 0) == [[type(exc).__name__, str(exc)], 0]


class CustomError(Exception):
    pass


def test_a_custom_exception_replays_as_replayed_error_with_its_type_name(engine: Engine) -> None:
    seen: list[Exception] = []

    def bad(x: Any) -> Any:
        raise CustomError("custom boom")

    flow = sequence(try_catch(step(bad, name="bad"), lambda e: seen.append(e) or "handled"),
                    node(lambda r: [r, suspend("t")]))
    s = engine.start(flow, None)
    engine.resume(s.id, 0)
    assert type(seen[0]) is CustomError
    assert type(seen[1]) is ReplayedError
    assert seen[1].type_name == "CustomError"
    assert seen[1].message == "custom boom"
    assert "CustomError" in str(seen[1]) and "custom boom" in str(seen[1])


@pytest.mark.parametrize(("make", "attr", "value"), [
    (lambda: FlowError("other flow is gone; check its id", id="order-7"), "id", "order-7"),
    (lambda: fedflow.FlowMoved("moved; resume it there", id="f", owner="b"), "owner", "b"),
    (lambda: fedflow.PeerError("peer failed; retry later"), "peer", None),
    (lambda: fedflow.RemoteError("raised; fix it", peer="p", remote_type="KeyError"), "remote_type", "KeyError"),
], ids=["FlowError.id", "FlowMoved.owner", "PeerError.peer-None", "RemoteError.remote_type"])
def test_replayed_fedflow_errors_keep_their_attributes(engine: Engine, make: Any, attr: str, value: Any) -> None:
    # A journaled step that raised a fedflow error must hand the handler the same
    # attributes on replay as it did on the first run.
    seen: list[Exception] = []

    def bad(x: Any) -> Any:
        raise make()

    flow = sequence(try_catch(step(bad, name="bad"), lambda e: seen.append(e) or getattr(e, attr, "MISSING")),
                    node(lambda r: [r, suspend("t")]))
    s = engine.start(flow, None)
    assert engine.resume(s.id, 0) == [value, 0]
    assert [type(e) for e in seen] == [type(seen[0])] * 2


def test_an_uncaught_journaled_error_fails_the_flow_again_on_recovery(engine: Engine) -> None:
    calls = Calls()

    def bad(x: Any) -> Any:
        calls(x)
        raise ValueError("broken")

    with pytest.raises(FlowFailed) as ei:
        engine.start(step(bad, name="bad"), 1)
    assert isinstance(ei.value.cause, ValueError)
    assert ei.value.__cause__ is ei.value.cause
    assert engine.status(ei.value.id) == "failed"
    log = log_of(engine, ei.value.id)
    assert [(e["t"], e["n"], e["e"]["type"]) for e in log] == [("j", "step bad", "ValueError")]


# -- non-determinism ---------------------------------------------------------------------------------

def test_a_replay_that_asks_for_a_different_step_fails_with_non_determinism(engine: Engine) -> None:
    # Given a flow whose step depends on something outside the log
    which = {"name": "charge"}
    calls = Calls()
    flow = sequence(
        node(lambda x: step(lambda y: calls(which["name"]) or y, name=which["name"])(x)),
        node(lambda x: [x, suspend("t")]),
    )
    s = engine.start(flow, 1)
    which["name"] = "refund"
    # When it replays / Then NonDeterminism, which even try_catch cannot swallow
    with pytest.raises(NonDeterminism) as ei:
        engine.resume(s.id, 0)
    err = ei.value
    assert isinstance(err, FlowFailed)
    assert err.id == s.id
    assert err.expected == "step refund"
    assert err.recorded == "step charge"
    assert "deterministic" in str(err)
    assert engine.status(s.id) == "failed"
    assert calls.seen == ["charge"], "the diverging step must not run"
    with pytest.raises(FlowFailed):
        engine.result(s.id)


def test_non_determinism_is_not_caught_by_try_catch(engine: Engine) -> None:
    which = {"name": "a"}
    inner = node(lambda x: step(lambda y: y, name=which["name"])(x))
    flow = sequence(try_catch(inner, lambda e: "swallowed"), node(lambda x: [x, suspend("t")]))
    s = engine.start(flow, 1)
    which["name"] = "b"
    with pytest.raises(NonDeterminism):
        engine.resume(s.id, 0)


# A recorded history (Temporal style): the log a real run left, replayed against new code.
RECORDED = [
    {"t": "j", "k": "0", "n": "step render", "v": "<p>draft</p>"},
    {"t": "s", "tag": "review", "v": True},
]


def seed_history(engine: Engine, name: str) -> str:
    flow_id = unique("recorded")
    engine.store.put_flows([(FlowRecord(id=flow_id, name=name, status=SUSPENDED, input='"draft"',
                                        waiting="publish"), [journal.dump(e) for e in RECORDED])])
    return flow_id


def test_recorded_history_replays_against_compatible_code(engine: Engine) -> None:
    name = unique("history-ok")
    calls = Calls()
    fedflow.defflow(name, sequence(
        step(lambda x: calls("render") or "<p>recomputed</p>", name="render"),
        node(lambda html: {"html": html, "ok": suspend("review"), "published": suspend("publish")}),
    ))
    flow_id = seed_history(engine, name)
    assert engine.resume(flow_id, "yes") == {"html": "<p>draft</p>", "ok": True, "published": "yes"}
    assert calls.n == 0


def test_recorded_history_catches_a_renamed_step(engine: Engine) -> None:
    name = unique("history-bad")
    fedflow.defflow(name, sequence(
        step(lambda x: "<p>new</p>", name="render_v2"),
        node(lambda html: [suspend("review"), suspend("publish")]),
    ))
    flow_id = seed_history(engine, name)
    with pytest.raises(NonDeterminism) as ei:
        engine.resume(flow_id, "yes")
    assert (ei.value.expected, ei.value.recorded) == ("step render_v2", "step render")


# -- request tags, misuse -----------------------------------------------------------------------

def test_requests_inside_a_loop_get_distinct_tags(engine: Engine) -> None:
    flow = loop_while(lambda x: x < 3, node(lambda x: request("inc", x)), 10)
    s = engine.start(flow, 0)
    tags = [s.tag]
    while is_suspended(s):
        (_fid, kind, payload), = engine.requests()
        assert kind == "inc"
        s = engine.resume(s.id, payload + 1)
        if is_suspended(s):
            tags.append(s.tag)
    assert s == 3
    assert len(tags) == 3 and len(set(tags)) == 3


def test_suspend_and_request_outside_a_flow_raise_flow_error() -> None:
    with pytest.raises(FlowError) as ei:
        suspend("nowhere")
    assert "Engine.start" in str(ei.value)
    with pytest.raises(FlowError):
        request("kind", None)


@pytest.mark.parametrize("bad", [1, None, b"tag", ("t",)], ids=repr)
def test_non_str_tags_and_kinds_are_type_errors(engine: Engine, bad: Any) -> None:
    with pytest.raises(TypeError):
        suspend(bad)
    with pytest.raises(FlowFailed) as ei:
        engine.start(node(lambda x: suspend(bad)), None)
    assert isinstance(ei.value.cause, TypeError)
    with pytest.raises(FlowFailed) as ei:
        engine.start(node(lambda x: request(bad, None)), None)
    assert isinstance(ei.value.cause, TypeError)


def test_request_payload_must_be_plain_data(engine: Engine) -> None:
    with pytest.raises(FlowFailed) as ei:
        engine.start(node(lambda x: request("k", {"bad": {1}})), None)
    assert isinstance(ei.value.cause, fedflow.UnsupportedValue)
    assert "bad" in ei.value.cause.path


# -- the log as a recorded history -----------------------------------------------------------------

def test_the_log_after_a_run_is_exactly_the_recorded_history(engine: Engine) -> None:
    # Given a render -> review -> publish flow with a step, a suspend, a request and a step
    flow = sequence(
        step(lambda draft: {"html": f"<p>{draft}</p>", "raw": draft.encode()}, name="render"),
        node(lambda page: {**page, "ok": suspend("review")}),
        node(lambda page: {**page, "channel": request("pick-channel", page["raw"])}),
        step(lambda page: {"url": f"/{page['channel']}/1", "big": 2**64 + 1}, name="publish"),
    )
    # When it runs to completion
    s = engine.start(flow, "hi", id="history-1")
    s = engine.resume(s.id, True)
    assert engine.resume(s.id, "blog") == {"url": "/blog/1", "big": 2**64 + 1}
    # Then the log holds exactly these entries, in this order
    assert log_of(engine, "history-1") == [
        {"t": "j", "k": "0", "n": "step render", "v": {"html": "<p>hi</p>", "raw": {"$bytes": "aGk="}}},
        {"t": "s", "tag": "review", "v": True},
        {"t": "s", "tag": "request:1", "v": "blog"},
        {"t": "j", "k": "2", "n": "step publish", "v": {"url": "/blog/1", "big": 18446744073709551617}},
    ]


@pytest.mark.parametrize("text", ["\ud800\udc00" + "x" * 5000, "\U0001f600é" * 2000, '"\n' * 3000])
def test_a_first_run_sees_the_input_exactly_as_its_replays_do(engine: Engine, text: str) -> None:
    # The first run reads back the input just written; replays read it from the store.
    seen: list[str] = []

    def body(value: str) -> Any:
        seen.append(value)
        return suspend("go")

    started = engine.start(node(body), text)
    engine.start(node(lambda value: value), "y" * 5000)  # another long text written meanwhile
    engine.resume(started.id, 1)
    assert len(seen) == 2 and seen[0] == seen[1]
