"""Every combinator, run inside an Engine: outcomes asserted, side effects counted."""

from __future__ import annotations

import threading
from typing import Any

import pytest

import fedflow
from fedflow import (
    Engine,
    FlowFailed,
    FlowTimeout,
    attempt,
    branch,
    const,
    fail,
    identity,
    is_failed,
    loop_until,
    loop_while,
    map_flow,
    node,
    parallel,
    recover,
    retry,
    sequence,
    step,
    suspend,
    tap,
    tick,
    timeout,
    try_catch,
)
from fedflow import combinators as combinators_module

try:
    from support import WAIT, Calls
except ImportError:  # tests/ imported as a package
    from tests.support import WAIT, Calls


def ticks(n: int) -> Any:
    """A node that ticks n times and returns its input."""
    def run(x: Any) -> Any:
        for _ in range(n):
            tick()
        return x
    return node(run)


def cause_of(excinfo: pytest.ExceptionInfo[FlowFailed]) -> BaseException:
    return excinfo.value.cause


# -- leaves ---------------------------------------------------------------------------------

def test_node_calls_its_function_once_with_the_input(engine: Engine) -> None:
    calls = Calls()
    assert engine.start(node(lambda x: calls(x) or x * 2), 21) == 42
    assert calls.seen == [21]


def test_node_refuses_a_non_callable() -> None:
    with pytest.raises(TypeError):
        node(42)  # type: ignore[arg-type]


def test_identity_and_const(engine: Engine) -> None:
    assert engine.start(identity, {"k": [1, b"\x00"]}) == {"k": [1, b"\x00"]}
    calls = Calls()
    assert engine.start(sequence(tap(calls), const("fixed")), "ignored") == "fixed"
    assert calls.seen == ["ignored"]


def test_flows_are_plain_callables_outside_an_engine() -> None:
    inc = node(lambda x: x + 1)
    assert sequence(inc, parallel(inc, const("c")))(1) == [3, "c"]
    assert step(lambda x: x * 2)(4) == 8


# -- sequence ---------------------------------------------------------------------------------

def test_sequence_threads_the_value_left_to_right(engine: Engine) -> None:
    order = Calls()
    flow = sequence(*(node(lambda x, c=c: order(c) or x + c) for c in "abc"))
    assert engine.start(flow, ">") == ">abc"
    assert order.seen == ["a", "b", "c"]


def test_empty_sequence_is_identity(engine: Engine) -> None:
    assert engine.start(sequence(), 7) == 7


def test_sequence_stops_at_a_raise(engine: Engine) -> None:
    later = Calls()

    def boom(x: Any) -> Any:
        raise KeyError("k")

    with pytest.raises(FlowFailed) as ei:
        engine.start(sequence(node(boom), tap(later)), 1)
    assert isinstance(cause_of(ei), KeyError)
    assert later.n == 0


def test_sequence_passes_a_fail_value_downstream_as_data(engine: Engine) -> None:
    seen = Calls()
    out = engine.start(sequence(const(fail("no")), tap(seen), node(lambda x: [x])), None)
    assert out == [fail("no")]
    assert seen.seen == [fail("no")]


# -- parallel ---------------------------------------------------------------------------------

def test_parallel_children_really_run_concurrently(engine: Engine) -> None:
    # Given two children that each wait for the other at a barrier
    barrier = threading.Barrier(2, timeout=WAIT)

    def meet(tag: str) -> Any:
        def run(x: Any) -> str:
            barrier.wait()  # run one after the other, this raises BrokenBarrierError
            return f"{tag}{x}"
        return node(run)

    # When they run in parallel / Then both got past the barrier
    assert engine.start(parallel(meet("a"), meet("b")), 1) == ["a1", "b1"]


def test_parallel_results_are_in_child_order_not_finish_order(engine: Engine) -> None:
    first_done = threading.Event()
    finished = Calls()

    def slow(x: Any) -> str:
        assert first_done.wait(WAIT)
        finished("slow")
        return "slow"

    def fast(x: Any) -> str:
        finished("fast")
        first_done.set()
        return "fast"

    assert engine.start(parallel(node(slow), node(fast), const("c")), None) == ["slow", "fast", "c"]
    assert finished.seen == ["fast", "slow"]


def test_parallel_gives_every_child_the_same_input(engine: Engine) -> None:
    seen = Calls()
    assert engine.start(parallel(*(tap(seen) for _ in range(5))), {"x": 1}) == [{"x": 1}] * 5
    assert seen.seen == [{"x": 1}] * 5


def test_parallel_of_zero_and_one_children(engine: Engine) -> None:
    assert engine.start(parallel(), 1) == []
    assert engine.start(parallel(node(lambda x: x + 1)), 1) == [2]


def test_parallel_first_child_in_order_decides_the_error_after_all_finish(engine: Engine) -> None:
    # Given child 1 raises first in time, child 0 raises later, child 2 succeeds slowly
    one_raised = threading.Event()
    finished = Calls()

    def child0(x: Any) -> Any:
        assert one_raised.wait(WAIT)
        raise KeyError("child 0")

    def child1(x: Any) -> Any:
        one_raised.set()
        raise ValueError("child 1")

    def child2(x: Any) -> Any:
        assert one_raised.wait(WAIT)
        finished("child 2")
        return 2

    with pytest.raises(FlowFailed) as ei:
        engine.start(parallel(node(child0), node(child1), node(child2)), None)
    # Then the error is child 0's (child order), and child 2 still ran to the end
    assert isinstance(cause_of(ei), KeyError)
    assert finished.seen == ["child 2"]


def test_parallel_nests(engine: Engine) -> None:
    inc = node(lambda x: x + 1)
    flow = parallel(parallel(inc, identity), sequence(inc, parallel(inc, inc)))
    assert engine.start(flow, 0) == [[1, 0], [2, 2]]


# -- map_flow ---------------------------------------------------------------------------------

def test_map_flow_runs_over_each_item_in_order(engine: Engine) -> None:
    seen = Calls()
    assert engine.start(map_flow(node(lambda x: seen(x) or x * x)), [3, 1, 2]) == [9, 1, 4]
    assert seen.seen == [3, 1, 2]
    assert engine.start(map_flow(identity), []) == []


def test_map_flow_accepts_a_tuple_outside_a_boundary() -> None:
    assert map_flow(node(lambda x: -x))((1, 2)) == [-1, -2]


@pytest.mark.parametrize("bad", [5, "abc", {"a": 1}, None])
def test_map_flow_refuses_a_non_list_input(engine: Engine, bad: Any) -> None:
    with pytest.raises(FlowFailed) as ei:
        engine.start(map_flow(identity), bad)
    assert isinstance(cause_of(ei), TypeError)


# -- loops ---------------------------------------------------------------------------------

def test_loop_while_checks_pred_before_each_body_run(engine: Engine) -> None:
    preds, body = Calls(), Calls()
    flow = loop_while(lambda x: preds(x) or x < 3, node(lambda x: body(x) or x + 1), 100)
    assert engine.start(flow, 0) == 3
    assert body.seen == [0, 1, 2]
    assert preds.seen == [0, 1, 2, 3]


@pytest.mark.parametrize(("max_steps", "runs"), [(0, 0), (1, 1), (7, 7)])
def test_loop_while_runs_body_at_most_max_steps_times(engine: Engine, max_steps: int, runs: int) -> None:
    body = Calls()
    flow = loop_while(lambda x: True, node(lambda x: body(x) or x + 1), max_steps)
    assert engine.start(flow, 0) == runs
    assert body.n == runs


def test_loop_until_runs_body_before_the_first_pred_check(engine: Engine) -> None:
    order = Calls()
    flow = loop_until(lambda x: order(("pred", x)) or True, node(lambda x: order(("body", x)) or x + 1), 5)
    assert engine.start(flow, 0) == 1
    assert order.seen == [("body", 0), ("pred", 1)]


@pytest.mark.parametrize(("max_steps", "runs"), [(1, 1), (4, 4)])
def test_loop_until_stops_at_max_steps(engine: Engine, max_steps: int, runs: int) -> None:
    body = Calls()
    flow = loop_until(lambda x: False, node(lambda x: body(x) or x + 1), max_steps)
    assert engine.start(flow, 0) == runs
    assert body.n == runs


def test_loop_until_stops_when_pred_holds(engine: Engine) -> None:
    assert engine.start(loop_until(lambda x: x >= 3, node(lambda x: x + 1), 100), 0) == 3


@pytest.mark.parametrize("max_steps", [0, -1])
def test_loop_until_refuses_max_steps_below_one(max_steps: int) -> None:
    with pytest.raises(ValueError):
        loop_until(lambda x: True, identity, max_steps)


def test_loop_while_refuses_a_negative_max_steps() -> None:
    # "at most max_steps times" has no meaning below zero; loop_until validates its bound
    # when the flow is built, loop_while must too (not silently run zero times).
    with pytest.raises(ValueError):
        loop_while(lambda x: True, identity, -1)


# -- branch ---------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "taken"), [(1, "then"), ([0], "then"), (0, "else"), ("", "else"),
                                              (None, "else"), ([], "else")])
def test_branch_runs_only_the_selected_side(engine: Engine, value: Any, taken: str) -> None:
    ran = Calls()
    flow = branch(lambda x: x, node(lambda x: ran("then") or "then"), node(lambda x: ran("else") or "else"))
    assert engine.start(flow, value) == taken
    assert ran.seen == [taken]


def test_branch_passes_the_input_to_the_chosen_side(engine: Engine) -> None:
    flow = branch(lambda x: x["ok"], node(lambda x: ["yes", x]), node(lambda x: ["no", x]))
    assert engine.start(flow, {"ok": False}) == ["no", {"ok": False}]


# -- retry ------------------------------------------------------------------------------------

def flaky(failures: int, calls: Calls, exc: type[Exception] = RuntimeError) -> Any:
    """A function that raises `failures` times, then returns its input."""
    def run(x: Any) -> Any:
        calls(x)
        if calls.n <= failures:
            raise exc(f"failure {calls.n}")
        return x
    return run


@pytest.mark.parametrize(("attempts", "failures", "runs"), [(1, 0, 1), (3, 0, 1), (3, 2, 3), (5, 1, 2)])
def test_retry_reruns_until_success_within_attempts(engine: Engine, attempts: int, failures: int,
                                                    runs: int) -> None:
    calls = Calls()
    assert engine.start(retry(attempts, node(flaky(failures, calls))), "ok") == "ok"
    assert calls.n == runs


def test_retry_gives_up_after_n_attempts_with_the_last_error(engine: Engine) -> None:
    calls = Calls()
    with pytest.raises(FlowFailed) as ei:
        engine.start(retry(3, node(flaky(10, calls))), None)
    assert calls.n == 3
    assert str(cause_of(ei)) == "failure 3"


@pytest.mark.parametrize("attempts", [0, -2])
def test_retry_refuses_fewer_than_one_attempt(attempts: int) -> None:
    with pytest.raises(ValueError):
        retry(attempts, identity)


def test_retry_does_not_retry_a_fail_value(engine: Engine) -> None:
    calls = Calls()
    assert engine.start(retry(3, node(lambda x: calls(x) or fail("declined"))), 1) == fail("declined")
    assert calls.n == 1


def test_retry_does_not_retry_a_suspend(engine: Engine) -> None:
    calls = Calls()
    s = engine.start(retry(3, node(lambda x: calls(x) or suspend("wait"))), 1)
    assert fedflow.is_suspended(s) and s.tag == "wait"
    assert calls.n == 1


def test_retry_backoff_is_exponential_and_jittered(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    slept = Calls()
    monkeypatch.setattr(combinators_module.time, "sleep", slept)
    calls = Calls()
    assert engine.start(retry(4, node(flaky(3, calls)), backoff=0.5), "v") == "v"
    assert calls.n == 4
    assert len(slept.seen) == 3
    for k, seconds in enumerate(slept.seen):
        base = 0.5 * 2**k
        assert 0.5 * base <= seconds <= 1.5 * base, (k, seconds)


def test_retry_without_backoff_never_sleeps(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    slept = Calls()
    monkeypatch.setattr(combinators_module.time, "sleep", slept)
    engine.start(retry(3, node(flaky(2, Calls()))), None)
    assert slept.n == 0


def test_retry_of_replayed_errors_does_not_sleep_again(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a journaled step that failed twice before succeeding, with backoff, then a suspend
    slept = Calls()
    monkeypatch.setattr(combinators_module.time, "sleep", slept)
    calls = Calls()
    flow = sequence(retry(3, step(flaky(2, calls), name="flaky"), backoff=1.0), node(lambda x: [x, suspend("go")]))
    s = engine.start(flow, "v")
    assert (calls.n, slept.n) == (3, 2)
    # When the flow replays on resume
    assert engine.resume(s.id, "resumed") == ["v", "resumed"]
    # Then the journaled errors are retried at once: no new sleep, no new call
    assert (calls.n, slept.n) == (3, 2)


# -- timeout and tick ------------------------------------------------------------------------

@pytest.mark.parametrize(("budget", "used", "ok"), [(0, 0, True), (0, 1, False), (3, 3, True), (3, 4, False)])
def test_timeout_allows_exactly_budget_ticks(engine: Engine, budget: int, used: int, ok: bool) -> None:
    flow = timeout(budget, ticks(used))
    if ok:
        assert engine.start(flow, "x") == "x"
    else:
        with pytest.raises(FlowFailed) as ei:
            engine.start(flow, "x")
        assert isinstance(cause_of(ei), FlowTimeout)


def test_timeout_stops_the_work_at_the_exhausting_tick(engine: Engine) -> None:
    done = Calls()

    def work(x: Any) -> Any:
        for i in range(10):
            tick()
            done(i)
        return x

    flow = try_catch(timeout(3, node(work)), lambda e: type(e).__name__)
    assert engine.start(flow, None) == "FlowTimeout"
    assert done.seen == [0, 1, 2]


def test_tick_outside_any_timeout_is_a_no_op(engine: Engine) -> None:
    assert engine.start(ticks(10_000), "free") == "free"
    assert ticks(3)("outside a flow") == "outside a flow"


def test_nested_budgets_inner_runs_out_first(engine: Engine) -> None:
    flow = timeout(100, sequence(try_catch(timeout(2, ticks(3)), const("inner out")), ticks(5)))
    assert engine.start(flow, None) == "inner out"


def test_nested_budgets_inner_ticks_count_against_the_outer_budget(engine: Engine) -> None:
    # the inner timeout is satisfied (2 <= 2) but the outer sees 2 + 3 = 5 > 4
    over = timeout(4, sequence(timeout(2, ticks(2)), ticks(3)))
    assert engine.start(try_catch(over, lambda e: type(e).__name__), None) == "FlowTimeout"
    within = timeout(5, sequence(timeout(2, ticks(2)), ticks(3)))
    assert engine.start(within, "fits") == "fits"


def test_timeout_budget_is_fresh_for_each_run_of_the_node(engine: Engine) -> None:
    assert engine.start(map_flow(timeout(2, ticks(2))), [1, 2, 3, 4]) == [1, 2, 3, 4]


def test_timeout_budget_ends_with_its_node(engine: Engine) -> None:
    assert engine.start(sequence(timeout(1, ticks(1)), ticks(50)), "after") == "after"


def test_parallel_children_share_the_enclosing_budget(engine: Engine) -> None:
    barrier = threading.Barrier(2, timeout=WAIT)

    def child(x: Any) -> Any:
        barrier.wait()
        tick()
        tick()
        return x

    over = timeout(3, parallel(node(child), node(child)))
    assert engine.start(try_catch(over, lambda e: type(e).__name__), 1) == "FlowTimeout"
    assert engine.start(timeout(4, parallel(ticks(2), ticks(2))), 1) == [1, 1]


# -- try_catch, recover, attempt, tap ----------------------------------------------------------

def test_try_catch_hands_the_raised_exception_to_the_handler(engine: Engine) -> None:
    raised: list[Exception] = []

    def boom(x: Any) -> Any:
        raised.append(ValueError(f"bad {x}"))
        raise raised[0]

    seen: list[Exception] = []
    flow = try_catch(node(boom), lambda e: seen.append(e) or ["handled", str(e)])
    assert engine.start(flow, 1) == ["handled", "bad 1"]
    assert seen == raised and seen[0] is raised[0]


def test_try_catch_does_not_call_the_handler_on_success_or_on_a_fail_value(engine: Engine) -> None:
    handled = Calls()
    assert engine.start(try_catch(const(5), handled), None) == 5
    assert engine.start(try_catch(const(fail("no")), handled), None) == fail("no")
    assert handled.n == 0


def test_try_catch_does_not_swallow_a_suspend(engine: Engine) -> None:
    handled = Calls()
    s = engine.start(try_catch(node(lambda x: suspend("inside")), handled), None)
    assert fedflow.is_suspended(s) and s.tag == "inside"
    assert handled.n == 0
    assert engine.resume(s.id, "v") == "v"


def test_a_handler_that_raises_fails_the_flow(engine: Engine) -> None:
    def boom(x: Any) -> Any:
        raise ValueError("first")

    def handler(e: Exception) -> Any:
        raise KeyError("handler broke")

    with pytest.raises(FlowFailed) as ei:
        engine.start(try_catch(node(boom), handler), None)
    assert isinstance(cause_of(ei), KeyError)


def test_recover_turns_a_fail_value_into_the_handler_result(engine: Engine) -> None:
    reasons = Calls()
    flow = recover(const(fail({"code": 7})), lambda reason: reasons(reason) or ["recovered", reason["code"]])
    assert engine.start(flow, None) == ["recovered", 7]
    assert reasons.seen == [{"code": 7}]


def test_recover_passes_a_plain_result_and_exceptions_through(engine: Engine) -> None:
    handled = Calls()
    assert engine.start(recover(const("fine"), handled), None) == "fine"

    def boom(x: Any) -> Any:
        raise RuntimeError("not a Fail")

    with pytest.raises(FlowFailed):
        engine.start(recover(node(boom), handled), None)
    assert handled.n == 0


def test_attempt_stops_at_the_first_fail_and_returns_it(engine: Engine) -> None:
    ran = Calls()
    flow = attempt(node(lambda x: ran("a") or x + 1), node(lambda x: ran("b") or fail(f"stop at {x}")),
                   node(lambda x: ran("c") or x))
    assert engine.start(flow, 1) == fail("stop at 2")
    assert ran.seen == ["a", "b"]


def test_attempt_threads_values_when_nothing_fails(engine: Engine) -> None:
    assert engine.start(attempt(node(lambda x: x + 1), node(lambda x: x * 10)), 1) == 20
    assert engine.start(attempt(), "same") == "same"


def test_a_fail_from_attempt_composes_with_recover(engine: Engine) -> None:
    flow = recover(attempt(const(fail("declined")), const("unreached")), lambda r: f"handled {r}")
    assert engine.start(flow, None) == "handled declined"


def test_tap_runs_the_effect_and_returns_its_input(engine: Engine) -> None:
    seen = Calls()
    assert engine.start(tap(lambda x: seen(x) or "ignored"), {"v": 1}) == {"v": 1}
    assert seen.seen == [{"v": 1}]


def test_tap_effect_that_raises_fails_the_flow(engine: Engine) -> None:
    def boom(x: Any) -> Any:
        raise OSError("disk full")

    with pytest.raises(FlowFailed) as ei:
        engine.start(tap(boom), None)
    assert isinstance(cause_of(ei), OSError)


# -- step ---------------------------------------------------------------------------------------

def test_step_returns_its_function_result_once(engine: Engine) -> None:
    calls = Calls()
    assert engine.start(step(lambda x: calls(x) or x * 3), 5) == 15
    assert calls.seen == [5]


def test_step_result_must_be_plain_data(engine: Engine) -> None:
    with pytest.raises(FlowFailed) as ei:
        engine.start(step(lambda x: {1, 2}, name="makes-a-set"), None)
    assert isinstance(cause_of(ei), fedflow.UnsupportedValue)


def test_step_result_is_normalised_like_the_wire(engine: Engine) -> None:
    got = engine.start(sequence(step(lambda x: (1, (2,)), name="tuple"), node(lambda x: [type(x).__name__, x])), 0)
    assert got == ["list", [1, [2]]]


def test_is_failed_distinguishes_results(engine: Engine) -> None:
    assert is_failed(engine.start(const(fail("x")), None))
    assert not is_failed(engine.start(const("x"), None))
