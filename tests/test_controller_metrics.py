"""The metrics registry (Prometheus text format 0.0.4) and the /healthz, /readyz, /metrics server.

Covers: counters per label combination with HELP/TYPE lines and escaped label values; gauges set
or read at scrape time; cumulative histogram buckets with +Inf, _sum and _count; wrong labels
and negative increments refused; the server answers each path with the right status over HTTP.
"""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest

from paasta_lite.controller.metrics import Registry, StatusServer


def test_counters_gauges_and_histograms_render_in_text_format() -> None:
    registry = Registry()
    writes = registry.counter("deployd_writes_total", "Writes.", ["verb", "outcome"])
    writes.inc(verb="update", outcome="ok")
    writes.inc(2, verb="create", outcome="ok")
    writes.inc(verb="create", outcome='so "bad"\n')
    registry.gauge("deployd_depth", "Depth.", function=lambda: 7)
    stamp = registry.gauge("deployd_last", "Last.")
    stamp.set(1700000000.5)
    histogram = registry.histogram("deployd_seconds", "Duration.", buckets=[0.1, 1.0])
    for value in (0.05, 0.1, 0.5, 3.0):
        histogram.observe(value)
    assert registry.render() == "\n".join([
        "# HELP deployd_writes_total Writes.",
        "# TYPE deployd_writes_total counter",
        'deployd_writes_total{verb="create",outcome="ok"} 2',
        'deployd_writes_total{verb="create",outcome="so \\"bad\\"\\n"} 1',
        'deployd_writes_total{verb="update",outcome="ok"} 1',
        "# HELP deployd_depth Depth.",
        "# TYPE deployd_depth gauge",
        "deployd_depth 7",
        "# HELP deployd_last Last.",
        "# TYPE deployd_last gauge",
        "deployd_last 1700000000.5",
        "# HELP deployd_seconds Duration.",
        "# TYPE deployd_seconds histogram",
        'deployd_seconds_bucket{le="0.1"} 2',
        'deployd_seconds_bucket{le="1"} 3',
        'deployd_seconds_bucket{le="+Inf"} 4',
        "deployd_seconds_sum 3.65",
        "deployd_seconds_count 4",
    ]) + "\n"


def test_misuse_is_refused() -> None:
    registry = Registry()
    counter = registry.counter("x_total", "X.", ["verb"])
    with pytest.raises(ValueError):
        counter.inc(outcome="ok")
    with pytest.raises(ValueError):
        counter.inc(-1, verb="create")
    with pytest.raises(ValueError):
        registry.gauge("x_total", "again")


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def test_the_server_answers_health_readiness_and_metrics() -> None:
    registry = Registry()
    registry.counter("x_total", "X.").inc()
    state = {"problem": None, "ready": False}
    server = StatusServer(registry, host="127.0.0.1", port=0, health=lambda: state["problem"],
                          ready=lambda: bool(state["ready"])).start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert get(f"{base}/healthz") == (200, "ok\n")
        assert get(f"{base}/readyz") == (503, "not ready\n")
        state.update(problem="main loop stuck for 60 s", ready=True)
        assert get(f"{base}/healthz") == (500, "main loop stuck for 60 s\n")
        assert get(f"{base}/readyz") == (200, "ready\n")
        status, body = get(f"{base}/metrics")
        assert status == 200 and "x_total 1\n" in body
        assert get(f"{base}/nothing")[0] == 404
    finally:
        server.stop()
