"""Prometheus metrics: requests by route and status, latency, and the state of the
event log read at scrape time (events stored, dead letters, projection lag).

Each app has its own registry, so tests and several apps in one process do
not share counters. The log-derived figures come from the database when
/metrics is scraped, so they are right whichever process ingests.

Under ``casetrack serve --workers N`` a scrape reaches one worker of N: each counts into
prometheus_client's per-process files in one directory (PROMETHEUS_MULTIPROC_DIR,
set for them by ``shared_across_processes``) and /metrics sums them all, so the
request counters are the server's, not one worker's share (the ``process_*`` figures,
which describe one process, are left out then).

No metric may move with what a request matched: a count of account emails (sent
or failed) would tell whoever reads /metrics which registrations and resets hit a
real file or login. Mail failures are logged ("code not sent") instead.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"  # prometheus_client reads it at import
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


@dataclass
class LogSnapshot:
    """The event log and projections as last read for a scrape."""

    events: int = 0
    dead_letters: int = 0
    projection_dead_letters: dict[str, int] = field(default_factory=dict)
    lag_events: dict[str, int] = field(default_factory=dict)
    halted: dict[str, bool] = field(default_factory=dict)


class _LogCollector(Collector):
    def __init__(self) -> None:
        self.snapshot = LogSnapshot()

    def collect(self) -> Iterator[Metric]:
        s = self.snapshot
        yield CounterMetricFamily(
            "casetrack_events_stored", "Events in the case event log", value=s.events
        )
        yield CounterMetricFamily(
            "casetrack_ingest_dead_letters",
            "Inbound messages rejected into dead_letters",
            value=s.dead_letters,
        )
        lag = GaugeMetricFamily(
            "casetrack_projection_lag_events", "Events not yet applied", labels=["projection"]
        )
        halted = GaugeMetricFamily(
            "casetrack_projection_halted", "1 when the projection is halted", labels=["projection"]
        )
        dead = CounterMetricFamily(
            "casetrack_projection_dead_letters",
            "Events a projection could not apply",
            labels=["projection"],
        )
        for name, value in sorted(s.lag_events.items()):
            lag.add_metric([name], value)
            halted.add_metric([name], 1 if s.halted.get(name) else 0)
            dead.add_metric([name], s.projection_dead_letters.get(name, 0))
        yield lag
        yield halted
        yield dead


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "casetrack_http_requests",
            "HTTP requests by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "casetrack_http_request_duration_seconds",
            "HTTP request latency by route template",
            ["route", "method"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.limited = Counter(
            "casetrack_rate_limited",
            "Calls refused by a rate limit",
            ["action"],
            registry=self.registry,
        )
        self._children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._log = _LogCollector()
        self.registry.register(self._log)
        self._exposed = self.registry
        directory = os.environ.get(MULTIPROCESS_DIR)
        if directory:  # every worker's counts, summed from their files
            self._exposed = CollectorRegistry()
            MultiProcessCollector(self._exposed, directory)
            self._exposed.register(self._log)

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        key = (route, method, status)
        children = self._children.get(key)
        if children is None:  # labels() costs more than the update: resolve once per key
            children = (
                self.requests.labels(route, method, str(status)),
                self.latency.labels(route, method),
            )
            self._children[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def rate_limited(self, action: str) -> None:
        self.limited.labels(action).inc()

    def render(self, snapshot: LogSnapshot) -> bytes:
        self._log.snapshot = snapshot
        return generate_latest(self._exposed)


@contextmanager
def shared_across_processes() -> Iterator[None]:
    """Processes started inside the block count into files of one directory, summed by
    each one's /metrics: the operator's PROMETHEUS_MULTIPROC_DIR when set (emptied by
    them before a start, as prometheus_client asks), else a new one removed after."""
    if os.environ.get(MULTIPROCESS_DIR):
        yield
        return
    with tempfile.TemporaryDirectory(prefix="casetrack-metrics-") as directory:
        os.environ[MULTIPROCESS_DIR] = directory
        try:
            yield
        finally:
            del os.environ[MULTIPROCESS_DIR]
