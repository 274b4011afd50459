"""Remote nodes with in-process peers: dict tables and Engines, the peer errors,
payload and answer checks, failover order and journaling, idempotent invoke."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

import fedflow
from fedflow import (
    Engine,
    FlowError,
    FlowFailed,
    PeerError,
    RemoteError,
    UnknownFunction,
    UnknownPeer,
    UnsupportedValue,
    const,
    fail,
    node,
    remote_failover,
    remote_node,
    sequence,
    suspend,
    try_catch,
    values,
)
from fedflow.store.base import RUNNING, FlowRecord
from fedflow.store.memory import MemoryStore

try:
    from support import Calls, log_of, unique
except ImportError:  # tests/ imported as a package
    from tests.support import Calls, log_of, unique


@pytest.fixture
def callee() -> Iterator[Engine]:
    with Engine(name=unique("callee")) as made:
        yield made


def failure(engine: Engine, flow: Any, value: Any = None) -> BaseException:
    with pytest.raises(FlowFailed) as ei:
        engine.start(flow, value)
    return ei.value.cause


def then_wait(flow: Any) -> Any:
    return sequence(flow, node(lambda r: [r, suspend("after")]))


# -- calls that work ------------------------------------------------------------------------------

def test_a_dict_table_peer_gets_the_input_as_payload(engine: Engine) -> None:
    seen = Calls()
    engine.peers.register("calc", {"double": lambda x: seen(x) or x * 2})
    assert engine.start(remote_node("calc", "double"), 21) == 42
    assert seen.seen == [21]


def test_an_engine_peer_runs_its_exposed_function(engine: Engine, callee: Engine) -> None:
    callee.expose("greet", lambda who: f"hi {who} from {callee.name}")
    engine.peers.register("b", callee)
    assert engine.start(remote_node("b", "greet"), "ann") == f"hi ann from {callee.name}"
    assert callee.exposed() == ["greet"]


def test_expose_as_a_decorator_with_and_without_a_name(engine: Engine, callee: Engine) -> None:
    @callee.expose
    def triple(x: int) -> int:
        return x * 3

    @callee.expose("negate")
    def _negate(x: int) -> int:
        return -x

    engine.peers.register("math", callee)
    assert engine.start(sequence(remote_node("math", "triple"), remote_node("math", "negate")), 2) == -6
    assert callee.exposed() == ["negate", "triple"]


def test_payload_and_answer_cross_as_plain_data_exactly(engine: Engine) -> None:
    seen = Calls()
    engine.peers.register("echo", {"echo": lambda x: seen(x) or (x, b"")})
    value = {"big": 2**64 + 1, "raw": b"\x00", "no": fail("x"), "pair": (1, 2), "z": -0.0}
    out = engine.start(remote_node("echo", "echo"), value)
    expected = dict(value, pair=[1, 2])
    assert seen.seen == [expected]
    assert out == [expected, b""]


def test_the_peer_gets_a_copy_not_the_callers_object(engine: Engine) -> None:
    original = {"items": [1, 2]}
    got: list[Any] = []
    engine.peers.register("p", {"keep": lambda x: got.append(x) or "ok"})
    engine.start(sequence(const(original), remote_node("p", "keep")), None)
    assert got == [original] and got[0] is not original


def test_registering_something_else_as_a_peer_is_a_type_error(engine: Engine) -> None:
    with pytest.raises(TypeError):
        engine.peers.register("bad", [lambda x: x])


def test_remote_node_outside_a_flow_is_a_flow_error() -> None:
    with pytest.raises(FlowError):
        remote_node("p", "fn")(1)


# -- peer errors ------------------------------------------------------------------------------------

def test_an_unregistered_peer_is_unknown_peer(engine: Engine) -> None:
    err = failure(engine, remote_node("nowhere", "fn"))
    assert isinstance(err, UnknownPeer) and err.peer == "nowhere"


def test_a_missing_function_is_unknown_function_on_both_kinds_of_peer(engine: Engine, callee: Engine) -> None:
    engine.peers.register("tbl", {"known": lambda x: x})
    callee.expose("public", lambda x: x)
    engine.peers.register("eng", callee)
    for peer in ("tbl", "eng"):
        err = failure(engine, remote_node(peer, "private"))
        assert type(err) is UnknownFunction
        assert err.peer == peer


def test_a_raising_peer_function_is_remote_error_with_its_type(engine: Engine, callee: Engine) -> None:
    def broken(x: Any) -> Any:
        raise KeyError("missing thing")

    engine.peers.register("tbl", {"broken": broken})
    callee.expose("broken", broken)
    engine.peers.register("eng", callee)
    for peer in ("tbl", "eng"):
        err = failure(engine, remote_node(peer, "broken"))
        assert type(err) is RemoteError
        assert (err.peer, err.remote_type) == (peer, "KeyError")
        assert "missing thing" in err.remote_message


def test_a_payload_that_is_not_plain_data_is_refused_before_the_call(engine: Engine) -> None:
    calls = Calls()
    engine.peers.register("tbl", {"fn": calls})
    err = failure(engine, sequence(const({"payload": {1, 2}}), remote_node("tbl", "fn")))
    assert isinstance(err, UnsupportedValue)
    assert "payload" in err.path
    assert calls.n == 0


def test_an_answer_that_is_not_plain_data_is_remote_error(engine: Engine, callee: Engine) -> None:
    engine.peers.register("tbl", {"weird": lambda x: {"s": {1, 2}}})
    callee.expose("weird", lambda x: object())
    engine.peers.register("eng", callee)
    for peer in ("tbl", "eng"):
        err = failure(engine, remote_node(peer, "weird"))
        assert type(err) is RemoteError
        assert err.remote_type == "UnsupportedValue"


def test_a_peer_error_is_journaled_and_replayed_with_its_attributes(engine: Engine) -> None:
    calls = Calls()

    def broken(x: Any) -> Any:
        calls(x)
        raise ValueError("nope")

    engine.peers.register("tbl", {"broken": broken})
    seen: list[Any] = []
    flow = then_wait(try_catch(remote_node("tbl", "broken"),
                               lambda e: seen.append(e) or [type(e).__name__, e.peer, e.remote_type]))
    s = engine.start(flow, 1)
    assert engine.resume(s.id, "go") == [["RemoteError", "tbl", "ValueError"], "go"]
    assert calls.n == 1
    assert [type(e) for e in seen] == [RemoteError, RemoteError]


def test_a_completed_remote_call_is_never_made_again(engine: Engine, callee: Engine) -> None:
    calls = Calls()
    callee.expose("charge", lambda x: calls(x) or {"charged": x})
    engine.peers.register("bank", callee)
    s = engine.start(then_wait(remote_node("bank", "charge")), 100)
    assert engine.resume(s.id, "ok") == [{"charged": 100}, "ok"]
    assert calls.n == 1
    assert [e["n"] for e in log_of(engine, s.id) if e["t"] == "j"] == ["remote bank.charge"]


# -- failover ----------------------------------------------------------------------------------------

def test_failover_tries_peers_in_order_and_stops_at_the_first_answer(engine: Engine) -> None:
    order = Calls()

    def raising(name: str) -> Any:
        def run(x: Any) -> Any:
            order(name)
            raise RuntimeError(name)
        return run

    engine.peers.register("p1", {"fn": raising("p1")})
    engine.peers.register("p2", {"other": lambda x: order("p2-other")})
    engine.peers.register("p3", {"fn": lambda x: {1}})  # answers junk: a RemoteError
    engine.peers.register("p4", {"fn": lambda x: order("p4") or f"p4:{x}"})
    engine.peers.register("p5", {"fn": lambda x: order("p5") or "p5"})
    local = Calls()
    flow = remote_failover(["p1", "ghost", "p2", "p3", "p4", "p5"], "fn", node(lambda x: local(x) or "local"))
    assert engine.start(flow, "q") == "p4:q"
    assert order.seen == ["p1", "p4"]
    assert local.n == 0


def test_failover_runs_the_local_node_when_every_peer_fails(engine: Engine) -> None:
    engine.peers.register("down", {"fn": lambda x: 1 / 0})
    local = Calls()
    assert engine.start(remote_failover(["down", "ghost"], "fn", node(lambda x: local(x) or f"local {x}")),
                        "job") == "local job"
    assert local.seen == ["job"]


def test_failover_with_no_peers_runs_local(engine: Engine) -> None:
    assert engine.start(remote_failover([], "fn", node(lambda x: x + 1)), 1) == 2


def test_failover_treats_a_fail_answer_as_a_result(engine: Engine) -> None:
    second = Calls()
    engine.peers.register("p1", {"fn": lambda x: fail("declined")})
    engine.peers.register("p2", {"fn": lambda x: second(x) or "p2"})
    assert engine.start(remote_failover(["p1", "p2"], "fn", const("local")), None) == fail("declined")
    assert second.n == 0


def test_failover_does_not_move_on_for_a_payload_refusal(engine: Engine) -> None:
    calls, local = Calls(), Calls()
    engine.peers.register("p1", {"fn": calls})
    err = failure(engine, sequence(const({1}), remote_failover(["p1"], "fn", node(local))))
    assert isinstance(err, UnsupportedValue)
    assert (calls.n, local.n) == (0, 0)


def test_failover_outcome_is_journaled_peers_are_not_called_again(engine: Engine) -> None:
    order = Calls()

    def flaky(x: Any) -> Any:
        order("p1")
        raise RuntimeError("no")

    engine.peers.register("p1", {"fn": flaky})
    engine.peers.register("p2", {"fn": lambda x: order("p2") or "p2"})
    s = engine.start(then_wait(remote_failover(["p1", "p2"], "fn", const("local"))), 1)
    assert engine.resume(s.id, "v") == ["p2", "v"]
    assert order.seen == ["p1", "p2"]
    log = log_of(engine, s.id)
    assert [e["n"] for e in log if e["t"] == "j"] == ["failover p1,p2.fn"]


def test_failover_to_local_is_journaled_too(engine: Engine) -> None:
    down, local = Calls(), Calls()
    engine.peers.register("p1", {"fn": lambda x: down(x) or 1 / 0})
    flow = remote_failover(["p1"], "fn", node(lambda x: local(x) or f"local {local.n}"))
    s = engine.start(then_wait(flow), 1)
    assert engine.resume(s.id, "v") == ["local 1", "v"], "the replay took the journaled local answer"
    assert (down.n, local.n) == (1, 1), "neither the peer nor the local fallback ran again"
    journaled = [(e["n"], e.get("v")) for e in log_of(engine, s.id) if e["t"] == "j"]
    assert journaled == [("failover p1.fn", ["local"]), ("failover p1.fn local", "local 1")]


def test_failover_local_fallback_is_not_rerun_after_a_restart(tmp_path) -> None:
    local = Calls()
    name = unique("failover-local")
    fedflow.defflow(name, then_wait(remote_failover(["gone"], "fn", node(lambda x: local(x) or {"at": local.n}))))
    db = str(tmp_path / "s.db")
    with Engine(name="a", store=db) as first:
        first.peers.register("gone", {})  # answers nothing: UnknownFunction, a PeerError
        s = first.start(name, 1)
    with Engine(name="a", store=db) as again:
        assert again.resume(s.id, "v") == [{"at": 1}, "v"]
    assert local.n == 1


def test_failover_twice_in_one_flow_keeps_each_local_answer(engine: Engine) -> None:
    local = Calls()
    fallback = remote_failover(["ghost"], "fn", node(lambda x: local(x) or f"{x}+{local.n}"))
    s = engine.start(then_wait(sequence(fallback, fallback)), "in")
    assert engine.resume(s.id, "v") == ["in+1+2", "v"]
    assert local.n == 2


# -- idempotency -------------------------------------------------------------------------------------

def test_invoke_with_the_same_call_id_runs_the_function_once(callee: Engine) -> None:
    calls = Calls()
    callee.expose("charge", lambda x: calls(x) or {"charged": x, "n": calls.n})
    first = callee.invoke("charge", 5, call_id="flow-1/0")
    again = callee.invoke("charge", 5, call_id="flow-1/0")
    assert first == again == {"charged": 5, "n": 1}
    assert calls.n == 1
    assert callee.invoke("charge", 5, call_id="flow-1/1") == {"charged": 5, "n": 2}
    assert callee.invoke("charge", 5) == {"charged": 5, "n": 3}
    assert callee.invoke("charge", 5) == {"charged": 5, "n": 4}


def test_a_duplicate_call_arriving_while_the_first_still_runs_does_not_run_it_again(callee: Engine) -> None:
    # Given a slow exposed function, and the same call (same call_id) sent again while the
    # first is still running: what a transport retry after a missed deadline does.
    entered = threading.Event()
    second_entry = threading.Event()
    calls = Calls()

    def charge(x: Any) -> Any:
        calls(x)
        if calls.n == 1:
            entered.set()
            second_entry.wait(1.0)  # bounded: only a duplicate entry ends it early
        else:
            second_entry.set()
        return {"charged": x, "n": calls.n}

    callee.expose("charge", charge)
    answers: list[Any] = []

    def call() -> None:
        try:
            answers.append(callee.invoke("charge", 5, call_id="order-1/0"))
        except fedflow.FedflowError as exc:  # a fix may also refuse the duplicate as in progress
            answers.append(exc)

    first = threading.Thread(target=call)
    first.start()
    assert entered.wait(5.0)
    second = threading.Thread(target=call)
    second.start()
    first.join(5.0)
    second.join(5.0)
    # Then the function ran once
    assert calls.n == 1
    assert {"charged": 5, "n": 1} in answers


def test_the_call_id_is_per_function(callee: Engine) -> None:
    calls = Calls()
    callee.expose("a", lambda x: calls("a") or "a")
    callee.expose("b", lambda x: calls("b") or "b")
    assert (callee.invoke("a", None, call_id="k"), callee.invoke("b", None, call_id="k")) == ("a", "b")
    assert calls.seen == ["a", "b"]


def test_a_call_that_raised_is_not_remembered(callee: Engine) -> None:
    calls = Calls()

    def once_broken(x: Any) -> Any:
        calls(x)
        if calls.n == 1:
            raise RuntimeError("transient")
        return "ok"

    callee.expose("f", once_broken)
    with pytest.raises(RuntimeError):
        callee.invoke("f", None, call_id="k")
    assert callee.invoke("f", None, call_id="k") == "ok"
    assert callee.invoke("f", None, call_id="k") == "ok"
    assert calls.n == 2


def test_invoke_of_an_unexposed_function_is_unknown_function(callee: Engine) -> None:
    with pytest.raises(UnknownFunction) as ei:
        callee.invoke("secret", None)
    assert ei.value.peer == callee.name


def test_a_call_repeated_after_a_crash_reaches_the_peer_once() -> None:
    # Given a flow that called an Engine peer, and a crash that lost the journal entry
    name = f"charge-{uuid.uuid4().hex[:8]}"
    fedflow.defflow(name, remote_node("bank", "charge"))
    calls = Calls()
    with Engine(name="bank") as bank:
        bank.expose("charge", lambda x: calls(x) or {"charged": x})
        with Engine(name="shop") as shop:
            shop.peers.register("bank", bank)
            assert shop.start(name, 10, id="order-1") == {"charged": 10}
            created = shop.store.get("order-1").created
        # When the same flow (same record) is recovered from a store where it was still running
        store = MemoryStore()
        store.create(FlowRecord(id="order-1", name=name, status=RUNNING, input=values.dumps(10), created=created))
        reborn = Engine(name="shop", store=store, recover=False)
        reborn.peers.register("bank", bank)
        assert reborn.recover() == ["order-1"]
        # Then the retried call carried the same idempotency key: the bank charged once
        assert reborn.result("order-1") == {"charged": 10}
        assert calls.seen == [10]


def test_transport_call_is_idempotent_by_call_id(engine: Engine, callee: Engine) -> None:
    calls = Calls()
    callee.expose("f", lambda x: calls(x) or x)
    engine.peers.register("b", callee)
    transport = engine.peers.get("b")
    assert transport.call("f", 1, deadline=1.0, call_id="same") == 1
    assert transport.call("f", 1, deadline=1.0, call_id="same") == 1
    assert calls.n == 1


def test_peer_table_knows_its_peers(engine: Engine, callee: Engine) -> None:
    engine.peers.register("b", callee)
    engine.peers.register("t", {})
    assert engine.peers.names() == ["b", "t"]
    assert engine.peers.address("b") is None
    with pytest.raises(UnknownPeer):
        engine.peers.get("ghost")
    assert isinstance(UnknownPeer("m"), PeerError)


def test_the_duplicate_call_cache_keeps_recent_answers_and_bounds_its_bytes() -> None:
    # Given 600 distinct 64 KiB answers (about 38 MiB, more than the cache keeps),
    # when the first and the last call ids come again, the last is answered from the
    # cache and the first, evicted by the byte bound, runs again.
    engine = fedflow.Engine(name="cache-bound")
    runs: list[int] = []

    def big(n: int) -> str:
        runs.append(n)
        return "x" * 65536 + str(n)

    engine.expose("big", big)
    for n in range(600):
        engine.invoke("big", n, call_id=f"call-{n}")
    assert engine.invoke("big", 599, call_id="call-599").endswith("599")
    assert runs.count(599) == 1
    assert engine.invoke("big", 0, call_id="call-0").endswith("0")
    assert runs.count(0) == 2
