"""Prometheus metrics of the inference server, through ``prometheus_client``.

Each app has its own registry. With several worker processes (``conveyor serve --workers
N``) the parent points ``PROMETHEUS_MULTIPROC_DIR`` at a fresh folder before the workers
start, so each worker writes its values to memory-mapped files there and ``/metrics`` —
whichever worker answers it — adds up every worker's files (prometheus_client's
multiprocess mode). One process alone renders its registry directly.

Labels are bounded by what is served: ``model`` and ``version`` name served models and
loaded versions only; a request for any other name counts under ``model="(unknown)"``
(``version=""``), so no client can grow the exposition by asking for made-up names.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)
#: the ``model`` label of requests for names that are not served
UNKNOWN = "(unknown)"
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

#: what a gauge reads at scrape time: ((model, version), value) pairs
GaugeRead = Callable[[], Iterable[tuple[tuple[str, str], float]]]


class Metrics:
    """The server's counters, histograms and gauges (per served model and version).

    Example::

        >>> m = Metrics(); m.request("iris", "3", "oip", 200, 0.004)
        >>> "conveyor_requests_total" in m.render().decode()
        True
    """

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry()
        mv = ["model", "version"]
        r = self.registry
        self.requests = Counter("conveyor_requests", "Inference requests answered, by model, version, protocol "
                                "and status code.", [*mv, "protocol", "code"], registry=r)
        self.errors = Counter("conveyor_request_errors", "Inference requests answered with 4xx (client) or 5xx "
                              "(server).", [*mv, "kind"], registry=r)
        self.duration = Histogram("conveyor_request_duration_seconds", "Time from request to answer of inference "
                                  "requests.", mv, buckets=LATENCY_BUCKETS, registry=r)
        self.batch_rows = Histogram("conveyor_batch_size_rows", "Rows per predict call (micro-batches).", mv,
                                    buckets=BATCH_BUCKETS, registry=r)
        self.queue_depth = Gauge("conveyor_queue_depth", "Requests waiting or being predicted, per model version.",
                                 mv, multiprocess_mode="livesum", registry=r)
        self.log_dropped = Counter("conveyor_prediction_log_dropped", "Prediction-log rows dropped because the "
                                   "buffer was full.", registry=r)
        self.log_rejected = Counter("conveyor_prediction_log_rejected", "Prediction-log rows set aside because "
                                    "they could not be written.", registry=r)
        # label children by label values; bounded like the labels (served names and versions)
        self._children: dict[tuple[str, str, str, int], tuple[Any, Any, Any]] = {}
        self._batch_children: dict[tuple[str, str], Any] = {}
        self._depth: GaugeRead | None = None
        self._log: Callable[[], tuple[int, int]] | None = None
        self._log_seen = (0, 0)

    def request(self, model: str, version: str, protocol: str, status: int, seconds: float) -> None:
        """Count one answered inference request and its latency (``model`` is a served name or UNKNOWN)."""
        key = (model, version, protocol, status)
        children = self._children.get(key)
        if children is None:  # label lookups cost a lock each: resolve them once per label set
            errors = self.errors.labels(model, version, "client" if status < 500 else "server") if status >= 400 else None
            children = self._children[key] = (self.requests.labels(model, version, protocol, str(status)),
                                              self.duration.labels(model, version), errors)
        children[0].inc()
        children[1].observe(seconds)
        if children[2] is not None:
            children[2].inc()

    def batch(self, model: str, version: str, rows: int) -> None:
        child = self._batch_children.get((model, version))
        if child is None:
            child = self._batch_children[(model, version)] = self.batch_rows.labels(model, version)
        child.observe(rows)

    def watch(self, depth: GaugeRead, log: Callable[[], tuple[int, int]] | None = None) -> None:
        """Values read when metrics are refreshed: queue depth per version, and the
        prediction log's (dropped, rejected) row counts."""
        self._depth, self._log = depth, log

    def refresh(self) -> None:
        """Copy this process's current values into the metrics (at scrape time and, with
        several workers, every second, so every worker's queue depth is known)."""
        if self._depth is not None:
            for (model, version), value in self._depth():
                self.queue_depth.labels(model, version).set(value)
        if self._log is not None:
            dropped, rejected = self._log()
            if dropped > self._log_seen[0]:
                self.log_dropped.inc(dropped - self._log_seen[0])
            if rejected > self._log_seen[1]:
                self.log_rejected.inc(rejected - self._log_seen[1])
            self._log_seen = (dropped, rejected)

    def render(self) -> bytes:
        """The text exposition of this process, or of every worker in multiprocess mode."""
        self.refresh()
        if self.multiprocess_dir is None:
            return bytes(generate_latest(self.registry))
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged, path=self.multiprocess_dir)
        return bytes(generate_latest(merged))

    def close(self) -> None:
        """A worker that stops takes its live gauges (queue depth) out of the sum."""
        if self.multiprocess_dir is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(os.getpid(), self.multiprocess_dir)
