"""The console's own histograms and counters: what /metrics shows of them, and that no observation is lost."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from fedflow.console.timings import Tallies, Timings


def exposition(registry: CollectorRegistry) -> list[str]:
    return generate_latest(registry).decode().splitlines()


def test_a_histogram_shows_cumulative_buckets_sum_and_count() -> None:
    registry = CollectorRegistry()
    latency = Timings(registry, "demo_seconds", "A demo.", buckets=(0.001, 0.01, 1.0))
    for seconds in (0.0005, 0.001, 0.005, 2.0):  # 0.001 falls in le="0.001": Prometheus buckets are <=
        latency.observe(seconds)
    lines = exposition(registry)
    assert 'demo_seconds_bucket{le="0.001"} 2.0' in lines
    assert 'demo_seconds_bucket{le="0.01"} 3.0' in lines
    assert 'demo_seconds_bucket{le="1.0"} 3.0' in lines
    assert 'demo_seconds_bucket{le="+Inf"} 4.0' in lines
    assert "demo_seconds_count 4.0" in lines
    assert "demo_seconds_sum 2.0065" in lines
    assert "# TYPE demo_seconds histogram" in lines


def test_labelled_children_appear_once_used_and_counters_get_total() -> None:
    registry = CollectorRegistry()
    calls = Tallies(registry, "demo_calls", "Calls.", ["peer", "outcome"])
    started = Tallies(registry, "demo_started", "Started.")
    assert "demo_started_total 0.0" in exposition(registry)  # a counter without labels shows from the start
    assert not [line for line in exposition(registry) if line.startswith("demo_calls_total")]
    calls.labels("b", "ok").inc()
    calls.labels("b", "ok").inc(2)
    started.inc()
    lines = exposition(registry)
    assert 'demo_calls_total{outcome="ok",peer="b"} 3.0' in lines
    assert "demo_started_total 1.0" in lines


def test_wrong_label_values_are_a_clear_error() -> None:
    calls = Tallies(CollectorRegistry(), "demo_calls", "Calls.", ["peer", "outcome"])
    with pytest.raises(ValueError, match="takes labels"):
        calls.labels("b")


def test_threads_observing_at_once_lose_nothing() -> None:
    registry = CollectorRegistry()
    latency = Timings(registry, "demo_seconds", "A demo.", ["kind"], buckets=(0.5,))
    done = Tallies(registry, "demo_done", "Done.")
    threads, each = 8, 5_000

    def work() -> None:
        child = latency.labels("step")
        for _ in range(each):
            child.observe(0.25)
            done.inc()
    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    lines = exposition(registry)
    assert f'demo_seconds_count{{kind="step"}} {float(threads * each)}' in lines
    assert f"demo_done_total {float(threads * each)}" in lines
