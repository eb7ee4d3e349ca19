"""Prometheus text-format metrics and the small HTTP server behind /healthz, /readyz, /metrics.

A tiny registry rather than `prometheus_client`: deployd needs counters with labels, gauges
(some read at scrape time), one histogram, and the text exposition format 0.0.4 — about a
hundred lines, against a new dependency in the lock. The server is the standard library's
threading HTTP server in a daemon thread (probes and scrapes are a few requests a minute).

- ``/healthz``: 200 while the process works (its ``health()`` returns None), else 500 with why;
  the liveness probe: a stuck main loop or a dead watch thread gets the pod restarted.
- ``/readyz``: 200 once ``ready()`` (after the first full sync), else 503.
- ``/metrics``: the registry, rendered at each scrape.
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

LabelValues = tuple[str, ...]
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else repr(float(value))


def _labels(names: Sequence[str], values: Sequence[str], extra: str = "") -> str:
    parts = [f'{name}="{_escape(value)}"' for name, value in zip(names, values, strict=True)]
    if extra:
        parts.append(extra)
    return "{" + ",".join(parts) + "}" if parts else ""


class _Metric:
    kind = "untyped"

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = ()) -> None:
        self.name = name
        self.help = help_text
        self.labelnames = tuple(labelnames)
        self._lock = threading.Lock()

    def _key(self, labels: dict[str, str]) -> LabelValues:
        if set(labels) != set(self.labelnames):
            raise ValueError(f"{self.name} takes labels {self.labelnames}, got {sorted(labels)}")
        return tuple(str(labels[name]) for name in self.labelnames)

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {_escape(self.help)}", f"# TYPE {self.name} {self.kind}"]

    def samples(self) -> list[str]:
        raise NotImplementedError


#: A value read at scrape time: one number, or one per label-values tuple.
Reader = Callable[[], "float | Mapping[LabelValues, float]"]


class _Valued(_Metric):
    """Values per label combination, set by the program or read from ``function`` at each scrape."""

    def __init__(self, name: str, help_text: str, labelnames: Sequence[str] = (),
                 function: Reader | None = None) -> None:
        super().__init__(name, help_text, labelnames)
        self._values: dict[LabelValues, float] = {}
        self._function = function

    def _current(self) -> dict[LabelValues, float]:
        if self._function is None:
            with self._lock:
                return dict(self._values)
        read = self._function()
        if isinstance(read, Mapping):
            return {tuple(key): float(value) for key, value in read.items()}
        return {(): float(read)}

    def value(self, **labels: str) -> float:
        return self._current().get(self._key(labels), 0.0)

    def samples(self) -> list[str]:
        return [f"{self.name}{_labels(self.labelnames, key)} {_number(value)}"
                for key, value in sorted(self._current().items())]


class Counter(_Valued):
    """A value that only goes up (``*_total``), per label combination."""

    kind = "counter"

    def inc(self, amount: float = 1.0, **labels: str) -> None:
        if amount < 0:
            raise ValueError("a counter only goes up")
        key = self._key(labels)
        with self._lock:
            self._values[key] = self._values.get(key, 0.0) + amount


class Gauge(_Valued):
    """A value set at will, or read from ``function`` at each scrape (e.g. the queue depth)."""

    kind = "gauge"

    def set(self, value: float, **labels: str) -> None:
        key = self._key(labels)
        with self._lock:
            self._values[key] = float(value)


class Histogram(_Metric):
    """Observations counted into cumulative ``le`` buckets, with ``_sum`` and ``_count``."""

    kind = "histogram"

    def __init__(self, name: str, help_text: str, buckets: Iterable[float] = DEFAULT_BUCKETS) -> None:
        super().__init__(name, help_text)
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * (len(self.buckets) + 1)  # the last one is +Inf
        self._sum = 0.0

    def observe(self, value: float) -> None:
        with self._lock:
            self._counts[bisect.bisect_left(self.buckets, value)] += 1
            self._sum += value

    @property
    def count(self) -> int:
        with self._lock:
            return sum(self._counts)

    def samples(self) -> list[str]:
        with self._lock:
            counts, total = list(self._counts), self._sum
        lines, running = [], 0
        for bound, count in zip((*self.buckets, math.inf), counts, strict=True):
            running += count
            lines.append(f'{self.name}_bucket{{le="{_number(bound)}"}} {running}')
        return [*lines, f"{self.name}_sum {_number(total)}", f"{self.name}_count {running}"]


class Registry:
    """The metrics of one process, rendered in registration order."""

    def __init__(self) -> None:
        self._metrics: list[_Metric] = []

    def register(self, metric: Any) -> Any:
        if any(existing.name == metric.name for existing in self._metrics):
            raise ValueError(f"metric {metric.name} is registered twice")
        self._metrics.append(metric)
        return metric

    def counter(self, name: str, help_text: str, labelnames: Sequence[str] = (),
                function: Reader | None = None) -> Counter:
        metric: Counter = self.register(Counter(name, help_text, labelnames, function))
        return metric

    def gauge(self, name: str, help_text: str, labelnames: Sequence[str] = (),
              function: Reader | None = None) -> Gauge:
        metric: Gauge = self.register(Gauge(name, help_text, labelnames, function))
        return metric

    def histogram(self, name: str, help_text: str, buckets: Iterable[float] = DEFAULT_BUCKETS) -> Histogram:
        metric: Histogram = self.register(Histogram(name, help_text, buckets))
        return metric

    def render(self) -> str:
        lines: list[str] = []
        for metric in self._metrics:
            lines += metric.header() + metric.samples()
        return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- deployd's metrics


class DeploydMetrics:
    """The metrics paasta_deployd exposes (all named ``paasta_deployd_*``)."""

    def __init__(self, *, queue_depth: Callable[[], float], retries_waiting: Callable[[], float],
                 is_leader: Callable[[], bool],
                 watch_stats: Callable[[], Mapping[tuple[str, str], int]]) -> None:
        registry = self.registry = Registry()
        registry.gauge("paasta_deployd_queue_depth", "Job ids queued for a worker.", function=queue_depth)
        registry.gauge("paasta_deployd_queue_retries_waiting", "Job ids waiting for their retry backoff.",
                       function=retries_waiting)
        self.reconcile_seconds = registry.histogram(
            "paasta_deployd_reconcile_duration_seconds", "Wall time of one reconcile of a batch of job ids.")
        self.writes = registry.counter(
            "paasta_deployd_writes_total", "Writes to the Kubernetes API, by verb and outcome.",
            ["verb", "outcome"])
        self.last_full_resync = registry.gauge(
            "paasta_deployd_last_full_resync_timestamp_seconds", "Unix time of the last full resync.")
        registry.gauge("paasta_deployd_is_leader",
                       "1 when this replica leads (always, without --leader-elect).",
                       function=lambda: 1.0 if is_leader() else 0.0)
        registry.counter("paasta_deployd_watch_total",
                         "Informer activity by kind: lists, watches, events, reconnects, gone (410).",
                         ["kind", "what"],
                         function=lambda: {key: float(n) for key, n in watch_stats().items()})


# --------------------------------------------------------------------------- the HTTP server


class StatusServer:
    """Serves /healthz, /readyz and /metrics on ``host:port`` (port 0: any free one, see `port`)."""

    def __init__(self, registry: Registry, *, host: str, port: int,
                 health: Callable[[], str | None], ready: Callable[[], bool]) -> None:
        self.registry = registry
        self.health = health
        self.ready = ready
        self._httpd = ThreadingHTTPServer((host, port), _make_handler(self))
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.2},
                                        name="deployd-status", daemon=True)

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    def start(self) -> StatusServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()

    def answer(self, path: str) -> tuple[int, str, str]:
        """(status, content type, body) for a GET of ``path``."""
        if path == "/metrics":
            return 200, CONTENT_TYPE, self.registry.render()
        if path == "/healthz":
            problem = self.health()
            return (200, "text/plain", "ok\n") if problem is None else (500, "text/plain", f"{problem}\n")
        if path == "/readyz":
            return (200, "text/plain", "ready\n") if self.ready() else (503, "text/plain", "not ready\n")
        return 404, "text/plain", "not found: /healthz, /readyz, /metrics\n"


def _make_handler(server: StatusServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            status, content_type, body = server.answer(self.path.split("?", 1)[0])
            data = body.encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # probes every few seconds would drown the action log

    return Handler
