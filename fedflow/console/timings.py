"""Histograms and counters for the paths every flow takes, exposed through prometheus-client.

prometheus-client's `Histogram.observe` takes a lock for the sum and another
for the bucket it touches (~1 µs), and `labels()` looks the child up under a
third (~1 µs more). A 3-step flow passes nine such points when the console
watches it, which made an idle console cost a flow 10-40% (docs/performance.md,
"Console"). Here an observation is one `bisect` and two additions under one
lock, children are looked up without a lock once made, and the cumulative
buckets are only summed when `/metrics` is scraped. The exposition is the same
`_bucket`, `_sum` and `_count` samples (and `_total` for counters).
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from prometheus_client.core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString


class Timing:
    """One histogram child: a count per bucket and the sum of what was observed."""

    def __init__(self, bounds: Sequence[float]) -> None:
        self._bounds = tuple(bounds)
        self._counts = [0] * (len(self._bounds) + 1)  # the last one: above every bound (+Inf)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        """Count one observation of `seconds`."""
        slot = bisect.bisect_left(self._bounds, seconds)  # the first bound >= seconds: Prometheus' "le"
        with self._lock:
            self._counts[slot] += 1
            self._sum += seconds

    def buckets(self) -> tuple[list[tuple[str, float]], float]:
        """(cumulative ("le", count) pairs ending with "+Inf", sum), as the exposition wants them."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        pairs, running = [], 0
        for bound, count in zip((*self._bounds, float("inf")), counts, strict=True):
            running += count
            pairs.append((floatToGoString(bound), float(running)))
        return pairs, total


class Tally:
    """One counter child."""

    def __init__(self) -> None:
        self._value = 0.0
        self._lock = threading.Lock()

    def inc(self, amount: float = 1.0) -> None:
        """Add `amount` (default 1)."""
        with self._lock:
            self._value += amount

    @property
    def value(self) -> float:
        """What was added so far."""
        return self._value


class _Family:
    """Children by label values, made on first use."""

    def __init__(self, registry: Any, name: str, documentation: str, labelnames: Sequence[str]) -> None:
        self.name, self.documentation, self.labelnames = name, documentation, tuple(labelnames)
        self._children: dict[tuple[str, ...], Any] = {}
        self._lock = threading.Lock()
        registry.register(self)

    def _new_child(self) -> Any:
        raise NotImplementedError

    def labels(self, *values: str) -> Any:
        """The child for these label values (in the order of the label names)."""
        child = self._children.get(values)
        if child is None:
            if len(values) != len(self.labelnames):
                raise ValueError(f"{self.name} takes labels {self.labelnames}, not {values!r}")
            with self._lock:
                child = self._children.setdefault(values, self._new_child())
        return child

    def _items(self) -> list[tuple[tuple[str, ...], Any]]:
        with self._lock:
            return sorted(self._children.items())

    def describe(self) -> list[Metric]:
        """The metric without samples (so the registry knows its names without collecting)."""
        return [self._empty()]

    def _empty(self) -> Metric:
        raise NotImplementedError


class Timings(_Family):
    """A histogram metric (seconds) with labels; without labels, observe() on the family itself."""

    def __init__(self, registry: Any, name: str, documentation: str, labelnames: Sequence[str] = (), *,
                 buckets: Sequence[float]) -> None:
        self.bounds = tuple(buckets)
        super().__init__(registry, name, documentation, labelnames)
        if not self.labelnames:
            self.observe = self.labels().observe

    def _new_child(self) -> Timing:
        return Timing(self.bounds)

    def _empty(self) -> Metric:
        return HistogramMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        """The histogram's samples, summed into cumulative buckets now."""
        family = self._empty()
        for values, child in self._items():
            buckets, total = child.buckets()
            family.add_metric(list(values), buckets, total)
        yield family


class Tallies(_Family):
    """A counter metric with labels; without labels, inc() on the family itself."""

    def __init__(self, registry: Any, name: str, documentation: str, labelnames: Sequence[str] = ()) -> None:
        super().__init__(registry, name, documentation, labelnames)
        if not self.labelnames:
            self.inc = self.labels().inc

    def _new_child(self) -> Tally:
        return Tally()

    def _empty(self) -> Metric:
        return CounterMetricFamily(self.name, self.documentation, labels=self.labelnames)

    def collect(self) -> Iterator[Metric]:
        """The counter's samples."""
        family = self._empty()
        for values, child in self._items():
            family.add_metric(list(values), child.value)
        yield family
