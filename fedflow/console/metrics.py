"""The Prometheus metrics of one engine, served at ``/metrics`` (prometheus-client).

Each console has its own registry (several engines may share a process).
Counters and histograms (`fedflow.console.timings`) are fed by `fedflow.console.hooks`; the flows-by-status
gauge and the pending-timer gauge are read from the store when scraped (a
count query each, not a listing). Names and what each one means: docs/console.md.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4

from ..store.base import STATUSES
from .timings import Tallies, Timings

#: Content-Type of the exposition: the classic text format.
CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4

#: Bucket bounds (seconds) for work that takes from well under a millisecond to a minute.
FAST_BUCKETS = (0.0001, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                10.0, 30.0, 60.0)
#: Bucket bounds (seconds) for how late a timer fires: the service wakes at the due time, and looks
#: at least once a second for timers another process wrote; a busy or stopped instance fires later.
LATENESS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0)
#: Bucket bounds (seconds) for replication, which moves whole stores.
SLOW_BUCKETS = (0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0)


class _EngineGauges:
    """Collector: flows by status and timers pending, each one count query when scraped."""

    def __init__(self, engine: Any) -> None:
        self._engine = engine

    def collect(self) -> Iterator[Metric]:
        counts = self._engine.count_by_status()
        flows = GaugeMetricFamily("fedflow_flows", "Flows in the store, by status.", labels=["status"])
        for status in sorted(STATUSES):
            flows.add_metric([status], counts.get(status, 0))
        yield flows
        yield GaugeMetricFamily("fedflow_timers_pending", "Suspended flows waiting on a timer (a sleep or a "
                                "timed suspend).", value=self._engine.store.count_timers())


class Metrics:
    """The metric objects of one engine and the registry that exposes them."""

    def __init__(self, engine: Any) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.started = Tallies(r, "fedflow_flows_started", "Flows started (created in the store).")
        self.finished = Tallies(r, "fedflow_flows_finished", "Flows that reached a final status, by status.",
                                ["status"])
        self.resume_seconds = Timings(r, "fedflow_resume_seconds", "Time to resume a flow, until it suspends "
                                      "again or ends.", buckets=FAST_BUCKETS)
        self.step_seconds = Timings(r, "fedflow_step_seconds", "Time a journaled step ran, by kind (step, "
                                    "remote, failover).", ["kind"], buckets=FAST_BUCKETS)
        self.peer_calls = Tallies(r, "fedflow_peer_calls", "Calls to peers, by peer and outcome (ok or the "
                                  "error class).", ["peer", "outcome"])
        self.peer_call_seconds = Timings(r, "fedflow_peer_call_seconds", "Time of a call to a peer, retries "
                                         "included.", ["peer"], buckets=FAST_BUCKETS)
        self.commit_seconds = Timings(r, "fedflow_store_commit_seconds", "Time of a store write, until it is "
                                      "committed (and synced when acknowledged).", ["operation"],
                                      buckets=FAST_BUCKETS)
        self.fsync_seconds = Timings(r, "fedflow_store_fsync_seconds", "Time of one fsync of the store's WAL "
                                     "(shared by the commits it covers).", buckets=FAST_BUCKETS)
        self.replication_bytes = Tallies(r, "fedflow_replication_bytes", "Replica text moved, by direction "
                                         "(sent, received).", ["direction"])
        self.replication_seconds = Timings(r, "fedflow_replication_seconds", "Time of replicate, handoff and "
                                           "restore.", ["operation"], buckets=SLOW_BUCKETS)
        self.timer_lateness_seconds = Timings(r, "fedflow_timer_lateness_seconds", "How long after its due "
                                              "time a timer fired.", buckets=LATENESS_BUCKETS)
        r.register(_EngineGauges(engine))

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
