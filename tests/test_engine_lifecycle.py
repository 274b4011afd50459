"""Every Engine verb and every error it raises: start, resume, cancel, status, result,
list, pending, gc, forget, resumable_ids; restart, recovery, concurrency, close."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

import fedflow
from fedflow import (
    Engine,
    FlowCancelled,
    FlowError,
    FlowFailed,
    FlowMoved,
    FlowNotDone,
    Suspended,
    UnknownFlow,
    node,
    sequence,
    step,
    suspend,
    tap,
    values,
)
from fedflow.store.base import CANCELLED, DONE, FAILED, MOVED, RUNNING, SUSPENDED, FlowRecord
from fedflow.store.memory import MemoryStore

try:
    from support import WAIT, Calls, log_of, unique
except ImportError:  # tests/ imported as a package
    from tests.support import WAIT, Calls, log_of, unique


def waiting(tag: str = "go") -> Any:
    return node(lambda x: [x, suspend(tag)])


def boom(x: Any) -> Any:
    raise RuntimeError("broken body")


def make_each_status(engine: Engine) -> tuple[str, ...]:
    """One flow in every status (ids are the status names, 'moved' via the store API)."""
    engine.start(node(lambda x: "result"), None, id="done")
    engine.start(waiting(), None, id="suspended")
    with pytest.raises(FlowFailed):
        engine.start(node(boom), None, id="failed")
    engine.start(waiting(), None, id="cancelled")
    engine.cancel("cancelled")
    engine.store.create(FlowRecord(id="moved", name=None, status=MOVED, input="null", owner="elsewhere"))
    engine.store.create(FlowRecord(id="running", name=None, status=RUNNING, input="null"))
    return (DONE, SUSPENDED, FAILED, CANCELLED, MOVED, RUNNING)


# -- start ---------------------------------------------------------------------------------------

def test_start_returns_the_result_of_a_flow_that_completes(engine: Engine) -> None:
    assert engine.start(node(lambda x: x + 1), 1, id="f1") == 2
    assert engine.status("f1") == "done"
    assert engine.result("f1") == 2


def test_start_returns_suspended_with_id_and_tag(engine: Engine) -> None:
    s = engine.start(waiting("review"), None, id="f2")
    assert s == Suspended("f2", "review")
    assert fedflow.is_suspended(s) and not fedflow.is_suspended("f2")
    assert (s.id, s.tag) == ("f2", "review")
    assert engine.status("f2") == "suspended"


def test_generated_ids_are_unique_strings(engine: Engine) -> None:
    ids = {engine.start(waiting(), i).id for i in range(50)}
    assert len(ids) == 50 and all(isinstance(i, str) and i for i in ids)


def test_start_by_registered_name(engine: Engine) -> None:
    name = unique("named")
    fedflow.defflow(name, node(lambda x: x * 2))
    assert engine.start(name, 21) == 42


def test_start_by_an_unregistered_name_is_a_flow_error_saying_defflow(engine: Engine) -> None:
    with pytest.raises(FlowError) as ei:
        engine.start(unique("never-registered"), 1)
    assert "defflow" in str(ei.value)
    assert engine.list() == []


def test_start_refuses_a_non_callable(engine: Engine) -> None:
    with pytest.raises(TypeError):
        engine.start(42, 1)  # type: ignore[arg-type]


def test_start_refuses_a_non_plain_input_and_stores_nothing(engine: Engine) -> None:
    calls = Calls()
    with pytest.raises(fedflow.UnsupportedValue) as ei:
        engine.start(tap(calls), {"a": [1, 2, {3}]}, id="bad-input")
    assert ei.value.path == "input['a'][2]"
    assert calls.n == 0
    assert engine.status("bad-input") == "unknown"


def test_texts_with_lone_surrogates_round_trip_through_a_sqlite_store(tmp_path) -> None:
    # A str may hold a lone surrogate, which UTF-8 (and so SQLite's TEXT) cannot: the input,
    # the journal, the resume value and the result are stored with it escaped, and come back.
    fedflow.defflow("surrogates.echo", fedflow.sequence(
        fedflow.step(lambda x: x + "\udc00", name="tail"), waiting()))
    with Engine(name=unique("sur"), store=str(tmp_path / "s.db")) as first:
        started = first.start("surrogates.echo", "\ud800" + "x" * 5000)
        exported = first.export()
    with Engine(name=unique("sur"), store=str(tmp_path / "t.db")) as second:
        assert second.import_store(exported) == [started.id]
        assert second.resume(started.id, "\udfff") == ["\ud800" + "x" * 5000 + "\udc00", "\udfff"]


def test_a_result_that_is_not_plain_data_fails_the_flow(engine: Engine) -> None:
    with pytest.raises(FlowFailed) as ei:
        engine.start(node(lambda x: {"r": {1, 2}}), None, id="bad-result")
    assert isinstance(ei.value.cause, fedflow.UnsupportedValue)
    assert engine.status("bad-result") == "failed"


def test_a_body_that_raises_fails_the_flow_with_the_cause_chained(engine: Engine) -> None:
    with pytest.raises(FlowFailed) as ei:
        engine.start(node(boom), None, id="raises")
    err = ei.value
    assert err.id == "raises"
    assert isinstance(err.cause, RuntimeError) and str(err.cause) == "broken body"
    assert err.__cause__ is err.cause
    assert engine.status("raises") == "failed"


def test_start_with_an_existing_done_id_returns_the_result_without_running_again(engine: Engine) -> None:
    calls = Calls()
    flow = node(lambda x: calls(x) or x * 2)
    assert engine.start(flow, 2, id="once") == 4
    assert engine.start(flow, 2, id="once") == 4
    assert engine.start(node(lambda x: "another flow"), 99, id="once") == 4
    assert calls.n == 1


def test_start_with_an_existing_suspended_id_returns_its_suspension(engine: Engine) -> None:
    calls = Calls()
    flow = sequence(tap(calls), waiting("t"))
    first = engine.start(flow, 1, id="s")
    assert engine.start(flow, 1, id="s") == first == Suspended("s", "t")
    assert calls.n == 1


@pytest.mark.parametrize(("status", "error"), [(FAILED, FlowFailed), (CANCELLED, FlowCancelled),
                                               (MOVED, FlowMoved), (RUNNING, FlowError)])
def test_start_with_an_existing_unhappy_id_raises_its_outcome(status: str, error: type[Exception]) -> None:
    with Engine(name=unique("start-existing"), recover=False) as engine:
        make_each_status(engine)
        calls = Calls()
        with pytest.raises(error) as ei:
            engine.start(tap(calls), None, id=status)
        assert calls.n == 0
        assert engine.status(status) == status
        if status == MOVED:
            assert ei.value.owner == "elsewhere"


# -- resume ---------------------------------------------------------------------------------------

def test_resume_delivers_the_value_and_completes(engine: Engine) -> None:
    s = engine.start(waiting(), "in")
    assert engine.resume(s.id, {"v": 2**64 + 1}) == ["in", {"v": 2**64 + 1}]
    assert engine.status(s.id) == "done"


def test_resume_of_an_unknown_id_is_unknown_flow_and_a_key_error(engine: Engine) -> None:
    with pytest.raises(UnknownFlow) as ei:
        engine.resume("no-such-flow", 1)
    assert isinstance(ei.value, KeyError) and isinstance(ei.value, FlowError)
    assert ei.value.id == "no-such-flow"
    with pytest.raises(KeyError):
        engine.resume("no-such-flow", 1)


@pytest.mark.parametrize(("status", "error", "says"), [
    (DONE, FlowError, "result()"), (FAILED, FlowFailed, "failed"), (CANCELLED, FlowCancelled, "cancelled"),
    (MOVED, FlowMoved, "elsewhere"), (RUNNING, FlowError, "running"),
])
def test_resume_of_a_flow_that_is_not_suspended_raises(status: str, error: type[Exception], says: str) -> None:
    with Engine(name=unique("resume-bad"), recover=False) as engine:
        make_each_status(engine)
        before = engine.export()["flows"]
        with pytest.raises(error) as ei:
            engine.resume(status, "value")
        assert says in str(ei.value)
        assert ei.value.id == status
        assert engine.export()["flows"] == before, "a refused resume changes nothing"


def test_resume_of_a_done_flow_is_a_plain_flow_error_not_a_subclass(engine: Engine) -> None:
    engine.start(node(lambda x: x), 1, id="d")
    with pytest.raises(FlowError) as ei:
        engine.resume("d", 1)
    assert type(ei.value) is FlowError


def test_resume_with_a_non_plain_value_changes_nothing(engine: Engine) -> None:
    s = engine.start(waiting(), None)
    log = log_of(engine, s.id)
    with pytest.raises(fedflow.UnsupportedValue):
        engine.resume(s.id, {"x": object()})
    assert engine.status(s.id) == "suspended"
    assert log_of(engine, s.id) == log
    assert engine.resume(s.id, "ok") == [None, "ok"]


def test_a_flow_failing_on_resume_is_failed(engine: Engine) -> None:
    s = engine.start(sequence(waiting(), node(boom)), None)
    with pytest.raises(FlowFailed) as ei:
        engine.resume(s.id, 1)
    assert isinstance(ei.value.cause, RuntimeError)
    assert engine.status(s.id) == "failed"


def race(n: int, attempt: Callable[[int], Any], release: threading.Event,
         while_held: Callable[[], None] = lambda: None) -> list[Any]:
    """Run `attempt(i)` from `n` threads at once; once n-1 of them are refused with FlowError
    (the winner still held by `release`), call `while_held`, set `release` and join.
    The outcomes: results, or the FlowErrors raised."""
    barrier = threading.Barrier(n, timeout=WAIT)
    refused = threading.Semaphore(0)
    outcomes: list[Any] = []
    lock = threading.Lock()

    def racer(i: int) -> None:
        barrier.wait()
        try:
            got: Any = attempt(i)
        except FlowError as exc:
            got = exc
            refused.release()
        with lock:
            outcomes.append(got)

    threads = [threading.Thread(target=racer, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for _ in range(n - 1):
        assert refused.acquire(timeout=WAIT)
    while_held()
    release.set()
    for t in threads:
        t.join(WAIT)
    return outcomes


def test_concurrent_resume_of_one_id_lets_exactly_one_through() -> None:
    # Given a suspended flow whose replay blocks until every other resume has been refused
    n = 8
    release = threading.Event()
    body_runs = Calls()

    def after(x: Any) -> Any:
        body_runs(x)
        assert release.wait(WAIT)
        return "winner"

    with Engine(name=unique("race")) as engine:
        s = engine.start(sequence(node(lambda x: suspend("go")), node(after)), None)

        def still_running() -> None:
            assert engine.status(s.id) == "running"

        # When all N resume at once / Then N-1 are refused while the winner still runs
        outcomes = race(n, lambda i: engine.resume(s.id, i), release, still_running)
        winners = [o for o in outcomes if o == "winner"]
        losers = [o for o in outcomes if isinstance(o, FlowError)]
        assert (len(winners), len(losers)) == (1, n - 1)
        assert all(type(e) is FlowError and "running" in str(e) for e in losers)
        assert body_runs.n == 1
        assert engine.status(s.id) == "done"
        assert len([e for e in log_of(engine, s.id) if e["t"] == "s"]) == 1


def test_concurrent_start_with_one_id_runs_the_body_once() -> None:
    n = 6
    release = threading.Event()
    body_runs = Calls()

    def body(x: Any) -> Any:
        body_runs(x)
        assert release.wait(WAIT)
        return "ran"

    with Engine(name=unique("start-race")) as engine:
        outcomes = race(n, lambda i: engine.start(node(body), i, id="one-id"), release)
        assert body_runs.n == 1
        assert [o for o in outcomes if not isinstance(o, FlowError)] == ["ran"]
        assert engine.start(node(body), 0, id="one-id") == "ran"
        assert body_runs.n == 1


# -- cancel -----------------------------------------------------------------------------------------

def test_cancel_a_suspended_flow(engine: Engine) -> None:
    s = engine.start(waiting(), None)
    assert engine.cancel(s.id) is None
    assert engine.status(s.id) == "cancelled"
    assert engine.pending() == [] and engine.resumable_ids() == []
    with pytest.raises(FlowCancelled) as ei:
        engine.resume(s.id, 1)
    assert ei.value.id == s.id


def test_cancel_twice_is_harmless(engine: Engine) -> None:
    s = engine.start(waiting(), None)
    engine.cancel(s.id)
    engine.cancel(s.id)
    assert engine.status(s.id) == "cancelled"


@pytest.mark.parametrize("status", [DONE, FAILED, MOVED])
def test_cancel_of_a_finished_flow_is_a_flow_error(status: str) -> None:
    with Engine(name=unique("cancel-bad"), recover=False) as engine:
        make_each_status(engine)
        with pytest.raises(FlowError) as ei:
            engine.cancel(status)
        assert type(ei.value) is FlowError
        assert "forget()" in str(ei.value)
        assert engine.status(status) == status


def test_cancel_of_an_unknown_flow(engine: Engine) -> None:
    with pytest.raises(UnknownFlow):
        engine.cancel("nope")


# -- status / result ---------------------------------------------------------------------------------

def test_status_of_every_kind_of_flow() -> None:
    with Engine(name=unique("status"), recover=False) as engine:
        for status in make_each_status(engine):
            assert engine.status(status) == status
        assert engine.status("never-existed") == "unknown"


@pytest.mark.parametrize(("status", "error"), [
    (SUSPENDED, FlowNotDone), (RUNNING, FlowNotDone), (FAILED, FlowFailed), (CANCELLED, FlowCancelled),
    (MOVED, FlowMoved), ("unknown", UnknownFlow),
])
def test_result_of_a_flow_that_is_not_done_says_why(status: str, error: type[Exception]) -> None:
    with Engine(name=unique("result"), recover=False) as engine:
        make_each_status(engine)
        with pytest.raises(error) as ei:
            engine.result(status)
        assert isinstance(ei.value, FlowError)
        assert str(ei.value)
        if status == MOVED:
            assert ei.value.owner == "elsewhere"


def test_result_of_a_done_flow(engine: Engine) -> None:
    engine.start(node(lambda x: {"bytes": b"\x00", "n": -(2**70), "fail": fedflow.fail("no")}), None, id="r")
    assert engine.result("r") == {"bytes": b"\x00", "n": -(2**70), "fail": fedflow.fail("no")}
    assert engine.result("r") == engine.result("r")


def test_result_of_a_done_flow_whose_result_is_none(engine: Engine) -> None:
    engine.start(node(lambda x: None), 1, id="none")
    assert engine.result("none") is None


# -- list / pending / resumable_ids / gc / forget -------------------------------------------------------

def test_list_and_pending_in_creation_order(engine: Engine) -> None:
    engine.start(waiting("b"), None, id="z1")
    engine.start(node(lambda x: x), None, id="a2")
    engine.start(waiting("a"), None, id="m3")
    assert engine.list() == [("z1", "suspended"), ("a2", "done"), ("m3", "suspended")]
    assert engine.pending() == [("z1", "b"), ("m3", "a")]
    assert engine.resumable_ids() == ["z1", "m3"]
    engine.resume("z1", 0)
    assert engine.pending() == [("m3", "a")]
    assert engine.list() == [("z1", "done"), ("a2", "done"), ("m3", "suspended")]


def test_empty_engine_lists_nothing(engine: Engine) -> None:
    assert (engine.list(), engine.pending(), engine.resumable_ids(), engine.requests(), engine.gc()) == \
        ([], [], [], [], 0)


def test_gc_drops_terminal_records_and_keeps_live_ones() -> None:
    with Engine(name=unique("gc"), recover=False) as engine:
        make_each_status(engine)
        assert engine.gc() == 4
        assert engine.list() == [("suspended", "suspended"), ("running", "running")]
        assert engine.gc() == 0
        assert engine.resume("suspended", 1) == [None, 1]
        assert engine.gc() == 1


@pytest.mark.parametrize("status", [DONE, FAILED, CANCELLED, MOVED])
def test_forget_drops_one_terminal_record(status: str) -> None:
    with Engine(name=unique("forget"), recover=False) as engine:
        make_each_status(engine)
        assert engine.forget(status) is None
        assert engine.status(status) == "unknown"
        assert len(engine.list()) == 5
        assert log_of(engine, status) == []


@pytest.mark.parametrize("status", [SUSPENDED, RUNNING])
def test_forget_refuses_a_live_flow(status: str) -> None:
    with Engine(name=unique("forget-live"), recover=False) as engine:
        make_each_status(engine)
        with pytest.raises(FlowError) as ei:
            engine.forget(status)
        assert "cancel" in str(ei.value)
        assert engine.status(status) == status


def test_forget_of_an_unknown_flow(engine: Engine) -> None:
    with pytest.raises(UnknownFlow):
        engine.forget("ghost")


def test_forget_then_start_with_the_same_id_runs_again(engine: Engine) -> None:
    calls = Calls()
    engine.start(tap(calls), 1, id="again")
    engine.forget("again")
    engine.start(tap(calls), 2, id="again")
    assert calls.seen == [1, 2]


# -- restart and recovery ------------------------------------------------------------------------------

def test_an_anonymous_flow_cannot_be_resumed_after_a_restart(engine: Engine) -> None:
    s = engine.start(waiting(), None)
    log = log_of(engine, s.id)
    restarted = Engine(name=engine.name, store=engine.store)
    with pytest.raises(FlowError) as ei:
        restarted.resume(s.id, 1)
    assert "defflow" in str(ei.value)
    assert ei.value.id == s.id
    assert restarted.status(s.id) == "suspended", "the flow is not lost"
    assert log_of(restarted, s.id) == log
    assert engine.resume(s.id, "same process") == [None, "same process"]


def test_an_anonymous_flow_cannot_be_resumed_after_export_and_import(engine: Engine) -> None:
    s = engine.start(waiting(), None)
    with Engine(name=unique("other")) as other:
        other.import_store(engine.export())
        with pytest.raises(FlowError) as ei:
            other.resume(s.id, 1)
        assert "defflow" in str(ei.value)
        assert other.status(s.id) == "suspended"


def test_a_named_flow_resumes_after_a_restart_without_rerunning_its_steps(engine: Engine) -> None:
    name = unique("restartable")
    calls = Calls()
    fedflow.defflow(name, sequence(step(lambda x: calls(x) or x + 1, name="inc"), waiting()))
    s = engine.start(name, 1)
    restarted = Engine(name=engine.name, store=engine.store)
    assert restarted.resume(s.id, "after restart") == [2, "after restart"]
    assert calls.n == 1


def test_flow_decorator_registers_a_resumable_flow(engine: Engine) -> None:
    name = unique("decorated")

    @fedflow.flow(name)
    def body(x: Any) -> Any:
        return [x, suspend("t")]

    s = engine.start(body, "in")
    assert Engine(name="r", store=engine.store).resume(s.id, 1) == ["in", 1]


def crashed_record(name: str, value: Any, flow_id: str) -> FlowRecord:
    return FlowRecord(id=flow_id, name=name, status=RUNNING, input=values.dumps(value))


def test_recover_reruns_running_records_by_replay() -> None:
    # Given a store holding a flow that crashed while running, one step already journaled
    name = unique("crashed")
    inside, outside = Calls(), Calls()
    fedflow.defflow(name, sequence(step(lambda x: inside(x) or x * 10, name="charge"), tap(outside),
                                   node(lambda x: x + 1)))
    store = MemoryStore()
    store.create(crashed_record(name, 4, "crash-1"))
    store.append_log("crash-1", '{"t":"j","k":"0","n":"step charge","v":40}')
    # When an engine opens the store
    with Engine(name="recovering", store=store) as engine:
        # Then the flow ran to completion by replay: the journaled step did not run again
        assert engine.status("crash-1") == "done"
        assert engine.result("crash-1") == 41
        assert (inside.n, outside.seen) == (0, [40])


def test_recover_returns_the_ids_rerun_and_skips_unresolvable_ones() -> None:
    name = unique("later")
    store = MemoryStore()
    store.create(crashed_record(name, 1, "needs-definition"))
    store.create(FlowRecord(id="anonymous", name=None, status=RUNNING, input="null"))
    with Engine(name="early", store=store) as engine:
        assert engine.status("needs-definition") == "running"
        assert engine.status("anonymous") == "running"
        fedflow.defflow(name, node(lambda x: [x, suspend("wait")]))
        assert engine.recover() == ["needs-definition"]
        assert engine.pending() == [("needs-definition", "wait")]
        assert engine.status("anonymous") == "running"
        assert engine.recover() == []


def test_recover_of_a_flow_that_fails_marks_it_failed() -> None:
    name = unique("fails-on-recovery")
    fedflow.defflow(name, node(boom))
    store = MemoryStore()
    store.create(crashed_record(name, None, "f"))
    with Engine(name="rec", store=store) as engine:
        assert engine.status("f") == "failed"


def test_engine_with_recover_false_leaves_running_records_alone() -> None:
    name = unique("not-yet")
    calls = Calls()
    fedflow.defflow(name, tap(calls))
    store = MemoryStore()
    store.create(crashed_record(name, 1, "r"))
    with Engine(name="no-recover", store=store, recover=False) as engine:
        assert engine.status("r") == "running"
        assert calls.n == 0
        assert engine.recover() == ["r"]
        assert engine.result("r") == 1


# -- close ----------------------------------------------------------------------------------------------

class CountingStore(MemoryStore):
    def __init__(self) -> None:
        super().__init__()
        self.closed = 0

    def close(self) -> None:
        self.closed += 1


def test_the_engine_as_a_context_manager_closes_its_store() -> None:
    store = CountingStore()
    with Engine(name="ctx", store=store) as engine:
        assert engine.store is store
        assert engine.start(node(lambda x: x), 1) == 1
        assert store.closed == 0
    assert store.closed == 1


def test_the_context_manager_closes_the_store_on_an_exception() -> None:
    store = CountingStore()
    with pytest.raises(RuntimeError), Engine(name="ctx", store=store):
        raise RuntimeError("inside")
    assert store.closed == 1
