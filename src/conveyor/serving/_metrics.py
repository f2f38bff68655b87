"""Prometheus metrics in the text exposition format, written by hand.

Counters and histograms live in plain dicts touched only from the event loop, so a
request costs a few dict updates; ``render`` formats them on scrape. With several
workers each process answers for itself (the scrape sees one worker's counts).
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Callable, Iterable

Labels = tuple[tuple[str, str], ...]

LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class _Histogram:
    __slots__ = ("bounds", "counts", "total", "n")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0
        self.n = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.total += value
        self.n += 1


def _fmt_labels(labels: Labels, extra: str = "") -> str:
    parts = [f'{k}="{_escape(v)}"' for k, v in labels]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """The server's counters, histograms and gauges (per model and version).

    Example::

        >>> m = Metrics(); m.request("iris", "3", "oip", 200, 0.004)
        >>> "conveyor_requests_total" in m.render()
        True
    """

    def __init__(self) -> None:
        self.counters: dict[str, dict[Labels, float]] = defaultdict(lambda: defaultdict(float))
        self.histograms: dict[str, dict[Labels, _Histogram]] = defaultdict(dict)
        self.gauges: list[tuple[str, str, Callable[[], Iterable[tuple[Labels, float]]]]] = []

    def inc(self, name: str, labels: Labels, amount: float = 1.0) -> None:
        self.counters[name][labels] += amount

    def observe(self, name: str, labels: Labels, value: float, bounds: tuple[float, ...]) -> None:
        series = self.histograms[name]
        hist = series.get(labels)
        if hist is None:
            hist = series[labels] = _Histogram(bounds)
        hist.observe(value)

    def request(self, model: str, version: str, protocol: str, status: int, seconds: float) -> None:
        """Count one answered inference request and its latency."""
        base = (("model", model), ("version", version))
        self.inc("conveyor_requests_total", (*base, ("protocol", protocol), ("code", str(status))))
        self.observe("conveyor_request_duration_seconds", base, seconds, LATENCY_BUCKETS)
        if status >= 400:
            kind = "client" if status < 500 else "server"
            self.inc("conveyor_request_errors_total", (*base, ("kind", kind)))

    def batch(self, model: str, version: str, rows: int) -> None:
        self.observe("conveyor_batch_size_rows", (("model", model), ("version", version)), rows, BATCH_BUCKETS)

    def gauge(self, name: str, help_text: str, read: Callable[[], Iterable[tuple[Labels, float]]]) -> None:
        """A value read at scrape time (queue depth, …)."""
        self.gauges.append((name, help_text, read))

    def render(self) -> str:
        lines: list[str] = []
        for name, series in sorted(self.counters.items()):
            lines += [f"# HELP {name} {_HELP.get(name, name)}", f"# TYPE {name} counter"]
            lines += [f"{name}{_fmt_labels(labels)} {value:g}" for labels, value in sorted(series.items())]
        for name, hists in sorted(self.histograms.items()):
            lines += [f"# HELP {name} {_HELP.get(name, name)}", f"# TYPE {name} histogram"]
            for labels, hist in sorted(hists.items()):
                running = 0
                for bound, count in zip((*hist.bounds, float("inf")), hist.counts, strict=True):
                    running += count
                    le = "+Inf" if bound == float("inf") else f"{bound:g}"
                    bucket = _fmt_labels(labels, 'le="' + le + '"')
                    lines.append(f"{name}_bucket{bucket} {running}")
                lines.append(f"{name}_sum{_fmt_labels(labels)} {hist.total:g}")
                lines.append(f"{name}_count{_fmt_labels(labels)} {hist.n}")
        for name, help_text, read in self.gauges:
            lines += [f"# HELP {name} {help_text}", f"# TYPE {name} gauge"]
            lines += [f"{name}{_fmt_labels(labels)} {value:g}" for labels, value in read()]
        return "\n".join(lines) + "\n"


_HELP = {
    "conveyor_requests_total": "Inference requests answered, by model, version, protocol and status code.",
    "conveyor_request_errors_total": "Inference requests answered with 4xx (client) or 5xx (server).",
    "conveyor_request_duration_seconds": "Time from request to answer of inference requests.",
    "conveyor_batch_size_rows": "Rows per predict call (micro-batches).",
    "conveyor_prediction_log_dropped_total": "Prediction-log rows dropped because the buffer was full.",
    "conveyor_prediction_log_rows_total": "Prediction-log rows written to the artifact store.",
    "conveyor_shadow_requests_total": "Copies of requests sent to shadow versions.",
}
