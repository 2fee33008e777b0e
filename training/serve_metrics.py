"""`/metrics` of `qism serve` in Prometheus' text format, summed over the worker processes.

prometheus-client picks where it keeps values when it is first imported: in memory, or, when
$PROMETHEUS_MULTIPROC_DIR names a folder, in files there that every worker writes and `/metrics` sums.
`qism serve` makes that folder before any worker starts, so it is imported here only when a server
starts.
"""

from __future__ import annotations

import os

from .errors import QismError

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Latency buckets in seconds: one article takes milliseconds, a batch of 256 long ones seconds.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """The server's counters: requests and errors by endpoint and status, latency, articles, the model."""

    def __init__(self):
        try:
            import prometheus_client as prometheus
        except ImportError:
            raise QismError("qism serve needs prometheus-client: pip install 'qism[serve]'") from None
        self.prometheus = prometheus
        self.registry = prometheus.CollectorRegistry()
        ours = {"registry": self.registry}
        self.requests = prometheus.Counter(
            "qism_http_requests", "HTTP requests answered", ["endpoint", "status"], **ours
        )
        self.errors = prometheus.Counter(
            "qism_http_errors", "HTTP requests answered with a 4xx or 5xx status", ["endpoint", "status"], **ours
        )
        self.latency = prometheus.Histogram(
            "qism_http_request_seconds", "Seconds from a request's headers to its answer", ["endpoint"],
            buckets=LATENCY_BUCKETS, **ours,
        )  # fmt: skip
        self.articles = prometheus.Counter("qism_articles_labeled", "Articles labeled", **ours)
        #: (endpoint, status) -> its counters, found once: `labels()` takes a lock and builds keys each time.
        self.by_outcome: dict[tuple[str, int], tuple] = {}
        self.model = prometheus.Gauge(
            "qism_model_info", "1 for the model a worker serves: its name and card checksum",
            ["name", "card_sha256"], multiprocess_mode="liveall", **ours,
        )  # fmt: skip

    def observe(self, endpoint: str, status: int, seconds: float) -> None:
        counted = self.by_outcome.get((endpoint, status))
        if counted is None:  # endpoints are a fixed set, statuses a few: this stays small
            errors = self.errors.labels(endpoint, str(status)) if status >= 400 else None
            counted = self.requests.labels(endpoint, str(status)), errors, self.latency.labels(endpoint)
            self.by_outcome[(endpoint, status)] = counted
        requests, errors, latency = counted
        requests.inc()
        if errors is not None:
            errors.inc()
        latency.observe(seconds)

    def serving(self, old: tuple[str, str] | None, new: tuple[str, str]) -> None:
        """The worker now serves `new` (name, card checksum) instead of `old`."""
        if old is not None and old != new:
            self.model.labels(*old).set(0)
        self.model.labels(*new).set(1)

    def exposition(self) -> tuple[bytes, str]:
        """The text `/metrics` answers, and its content type."""
        registry = self.registry
        if os.environ.get(MULTIPROCESS_ENV):
            from prometheus_client import multiprocess

            registry = self.prometheus.CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return self.prometheus.generate_latest(registry), self.prometheus.CONTENT_TYPE_LATEST

    def worker_stopped(self) -> None:
        """This worker's model gauge is no longer shown (its counters stay in the sums)."""
        if os.environ.get(MULTIPROCESS_ENV):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid())
