"""Building flows: a flow is a callable of one argument; combinators return flows.

>>> from fedflow import Engine
>>> inc = node(lambda x: x + 1)
>>> Engine(name="doc").start(sequence(inc, parallel(inc, const("c"))), 1)
[3, 'c']
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from . import replay
from .railway import Fail

Flow = Callable[[Any], Any]

#: Most threads one `parallel` uses at once.
PARALLEL_WORKERS = 8


def _named(fn: Flow, label: str) -> Flow:
    fn.__qualname__ = fn.__name__ = label
    return fn


def node(f: Callable[[Any], Any]) -> Flow:
    """A leaf flow wrapping the function `f` (re-run on every replay)."""
    if not callable(f):
        raise TypeError(f"node() needs a callable, got {type(f).__name__}")
    return _named(lambda x: f(x), f"node({getattr(f, '__qualname__', f)!s})")


def identity(x: Any) -> Any:
    """The flow that returns its input.

    >>> identity(5)
    5
    """
    return x


def const(value: Any) -> Flow:
    """A flow that ignores its input and returns `value`."""
    return _named(lambda _x: value, f"const({value!r})")


def sequence(*flows: Flow) -> Flow:
    """Thread the value through `flows` left to right."""
    def run(x: Any) -> Any:
        for f in flows:
            x = f(x)
        return x
    return _named(run, f"sequence[{len(flows)}]")


def parallel(*flows: Flow) -> Flow:
    """Give every child the same input; the list of results in child order.

    Children run concurrently on threads; the first child (in child order) that
    raises or suspends decides the outcome, after every child has finished."""
    def run(x: Any) -> list[Any]:
        if len(flows) <= 1:
            return [f(x) for f in flows]
        base = replay.next_key()
        jobs = [replay.in_child_scope(base, i, lambda f=f: f(x)) for i, f in enumerate(flows)]
        with ThreadPoolExecutor(max_workers=min(len(jobs), PARALLEL_WORKERS),
                                thread_name_prefix="fedflow-parallel") as pool:
            futures = [pool.submit(job) for job in jobs]
        for fut in futures:
            exc = fut.exception()
            if exc is not None:
                raise exc
        return [fut.result() for fut in futures]
    return _named(run, f"parallel[{len(flows)}]")


def map_flow(flow: Flow) -> Flow:
    """Run `flow` over each item of a list input; the list of results in order."""
    def run(items: Sequence[Any]) -> list[Any]:
        if not isinstance(items, list | tuple):
            raise TypeError(f"map_flow needs a list input, got {type(items).__name__}")
        return [flow(item) for item in items]
    return _named(run, "map_flow")


def loop_while(pred: Callable[[Any], Any], body: Flow, max_steps: int) -> Flow:
    """While `pred(x)`: `x = body(x)`, at most `max_steps` times; returns x."""
    if max_steps < 0:
        raise ValueError(f"loop_while needs max_steps >= 0, got {max_steps}")

    def run(x: Any) -> Any:
        for _ in range(max_steps):
            if not pred(x):
                break
            x = body(x)
        return x
    return _named(run, "loop_while")


def loop_until(pred: Callable[[Any], Any], body: Flow, max_steps: int) -> Flow:
    """`x = body(x)` until `pred(x)`: at least once, at most `max_steps` times; returns x."""
    if max_steps < 1:
        raise ValueError(f"loop_until needs max_steps >= 1, got {max_steps}")

    def run(x: Any) -> Any:
        for _ in range(max_steps):
            x = body(x)
            if pred(x):
                break
        return x
    return _named(run, "loop_until")


def branch(pred: Callable[[Any], Any], then: Flow, otherwise: Flow) -> Flow:
    """`then(x)` when `pred(x)` is truthy, else `otherwise(x)`."""
    return _named(lambda x: then(x) if pred(x) else otherwise(x), "branch")


def retry(attempts: int, flow: Flow, backoff: float | None = None) -> Flow:
    """Re-run `flow` on a raised exception, up to `attempts` runs in all.

    With `backoff` (seconds) wait backoff * 2**k, jittered, between attempts; an
    exception replayed from the journal is retried at once (the wait already happened)."""
    if attempts < 1:
        raise ValueError(f"retry needs attempts >= 1, got {attempts}")

    def run(x: Any) -> Any:
        for attempt in range(1, attempts + 1):
            try:
                return flow(x)
            except Exception as exc:
                if attempt == attempts:
                    raise
                if backoff and not replay.is_replayed(exc):
                    time.sleep(backoff * (2 ** (attempt - 1)) * random.uniform(0.5, 1.5))
        raise AssertionError("unreachable")  # pragma: no cover
    return _named(run, f"retry[{attempts}]")


def timeout(budget: int, flow: Flow) -> Flow:
    """Cooperative step budget: the (budget+1)-th `tick()` inside raises FlowTimeout."""
    return _named(lambda x: replay.with_budget(budget, lambda: flow(x)), f"timeout[{budget}]")


def try_catch(flow: Flow, handler: Callable[[Exception], Any]) -> Flow:
    """A raised exception `e` becomes `handler(e)` (a `Fail` value is not an exception)."""
    def run(x: Any) -> Any:
        try:
            return flow(x)
        except Exception as exc:
            return handler(exc)
    return _named(run, "try_catch")


def recover(flow: Flow, handler: Callable[[Any], Any]) -> Flow:
    """If `flow` returns a `Fail`, return `handler(reason)`; else its result."""
    def run(x: Any) -> Any:
        out = flow(x)
        return handler(out.reason) if isinstance(out, Fail) else out
    return _named(run, "recover")


def attempt(*flows: Flow) -> Flow:
    """Railway sequence: stop at the first flow that returns a `Fail`, and return it."""
    def run(x: Any) -> Any:
        for f in flows:
            x = f(x)
            if isinstance(x, Fail):
                return x
        return x
    return _named(run, f"attempt[{len(flows)}]")


def tap(effect: Callable[[Any], Any]) -> Flow:
    """Call `effect(x)` for its side effect and return x."""
    def run(x: Any) -> Any:
        effect(x)
        return x
    return _named(run, "tap")


def step(f: Callable[[Any], Any], name: str | None = None) -> Flow:
    """Like `node(f)`, but journaled: its result is logged and never recomputed on replay.

    `name` (default: the function's qualified name) is checked on replay; a different
    step at the same position fails the flow with NonDeterminism."""
    label = name or getattr(f, "__qualname__", None) or repr(f)
    return _named(lambda x: replay.journaled(f"step {label}", lambda _key: f(x)), f"step({label})")
