"""`paasta logs` end to end: the real click command and the real Kubernetes client against the fake
API server over HTTP. Covers: pods merged in time order with pod (and container) prefixes, instance
filter, line limit, --since, colours, waiting containers, deploy events (alone and merged),
usage errors, following through a bounce without duplicates, and Ctrl-C (exit 130, no traceback).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from paasta_lite.cli.logs_cmd import LogsRequest, logs, poll_pods, read_pod_history
from paasta_lite.cli.options import wants_colour
from paasta_lite.config.naming import namespace_for
from paasta_lite.kube import labels
from paasta_lite.status.event_log import log_event

SERVICE = "web"
NS = namespace_for(SERVICE)
T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)
RUNNING = {"state": {"running": {"startedAt": "2024-05-01T11:00:00Z"}}, "restartCount": 0}


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Printed times are local; pin the zone so expected lines are exact."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.delenv("TZ")
    time.tzset()


@pytest.fixture
def env(fake_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A system config (cluster kind, file event log) and KUBECONFIG pointing at the fake."""
    config_dir = tmp_path / "etc_paasta"
    config_dir.mkdir()
    log_writer = {"driver": "file", "options": {"directory": str(tmp_path / "events")}}
    (config_dir / "cluster.json").write_text(json.dumps({"cluster": "kind", "log_writer": log_writer}))
    values = {
        "PAASTA_SYSTEM_CONFIG_DIR": str(config_dir),
        "KUBECONFIG": fake_api.kubeconfig,
        "NO_COLOR": "",
    }
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


def add_pod(
    fake_api: Any, name: str, instance: str = "main", containers: dict[str, Any] | None = None
) -> None:
    containers = containers or {"main": RUNNING}
    fake_api.server.put_object(
        "pods",
        {
            "metadata": {
                "name": name,
                "namespace": NS,
                "labels": {labels.SERVICE: SERVICE, labels.INSTANCE: instance},
            },
            "spec": {"containers": [{"name": c, "image": "img"} for c in containers]},
            "status": {
                "phase": "Running",
                "containerStatuses": [{"name": c, **s} for c, s in containers.items()],
            },
        },
    )


def log(fake_api: Any, pod: str, at: datetime, *lines: str, container: str | None = None) -> None:
    fake_api.server.append_log(NS, pod, list(lines), container=container, at=at, step=timedelta(seconds=1))


def run(*args: str) -> Result:
    return CliRunner().invoke(logs, ["-s", SERVICE, *args], catch_exceptions=False)


def test_pods_merged_in_time_order_with_prefixes(fake_api: Any, env: dict[str, str]) -> None:
    add_pod(fake_api, "web-main-a")
    add_pod(fake_api, "web-main-b")
    log(fake_api, "web-main-a", T0, "a0", "a1")
    log(fake_api, "web-main-b", T0 + timedelta(milliseconds=500), "b0", "b1")
    result = run("-i", "main")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "2024-05-01 12:00:00 [web-main-a] a0",
        "2024-05-01 12:00:00 [web-main-b] b0",
        "2024-05-01 12:00:01 [web-main-a] a1",
        "2024-05-01 12:00:01 [web-main-b] b1",
    ]


def test_container_named_when_a_pod_has_several(fake_api: Any, env: dict[str, str]) -> None:
    add_pod(fake_api, "web-main-a", containers={"main": RUNNING, "envoy": RUNNING})
    log(fake_api, "web-main-a", T0, "app line", container="main")
    log(fake_api, "web-main-a", T0 + timedelta(seconds=5), "proxy line", container="envoy")
    assert run().stdout.splitlines() == [
        "2024-05-01 12:00:00 [web-main-a/main] app line",
        "2024-05-01 12:00:05 [web-main-a/envoy] proxy line",
    ]


def test_instance_filter_and_line_limit(fake_api: Any, env: dict[str, str]) -> None:
    add_pod(fake_api, "web-main-a")
    add_pod(fake_api, "web-canary-a", instance="canary")
    log(fake_api, "web-main-a", T0, *(f"main {n}" for n in range(5)))
    log(fake_api, "web-canary-a", T0, "canary 0")
    assert [line.split("] ")[1] for line in run("-i", "main", "-l", "2").stdout.splitlines()] == [
        "main 3",
        "main 4",
    ]
    both = run("-i", "main,canary").stdout
    assert "canary 0" in both and "main 0" in both
    assert "canary 0" in run().stdout  # no -i: every instance of the service


def test_since_keeps_only_recent_lines(fake_api: Any, env: dict[str, str]) -> None:
    add_pod(fake_api, "web-main-a")
    now = datetime.now(timezone.utc)
    log(fake_api, "web-main-a", now - timedelta(hours=1), "old")
    log(fake_api, "web-main-a", now - timedelta(minutes=2), "recent")
    assert [line.split("] ")[1] for line in run("--since", "10m").stdout.splitlines()] == ["recent"]
    iso = (now - timedelta(hours=2)).isoformat()
    assert len(run("--since", iso).stdout.splitlines()) == 2


def test_one_colour_per_pod_only_when_asked(fake_api: Any, env: dict[str, str]) -> None:
    add_pod(fake_api, "web-main-a")
    add_pod(fake_api, "web-main-b")
    log(fake_api, "web-main-a", T0, "a0")
    log(fake_api, "web-main-b", T0 + timedelta(seconds=1), "b0")
    assert "\x1b[" not in run().stdout  # not a terminal
    coloured = CliRunner().invoke(logs, ["-s", SERVICE, "--color", "always"], color=True).stdout.splitlines()
    assert coloured[0].startswith("2024-05-01 12:00:00 \x1b[36m[web-main-a]\x1b[0m")
    assert coloured[1].startswith("2024-05-01 12:00:01 \x1b[33m[web-main-b]\x1b[0m")
    assert not wants_colour("auto", isatty=True, no_colour_env="1")
    assert wants_colour("auto", isatty=True, no_colour_env="")
    assert not wants_colour("auto", isatty=False, no_colour_env=None)


def test_waiting_containers_are_skipped_and_no_pods_is_said(fake_api: Any, env: dict[str, str]) -> None:
    add_pod(
        fake_api, "web-main-a", containers={"main": {"state": {"waiting": {"reason": "ContainerCreating"}}}}
    )
    result = run()
    assert result.exit_code == 0 and result.stdout == ""
    assert "No running containers found for web" in result.stderr


def test_deploy_events_without_touching_the_cluster(
    fake_api: Any, env: dict[str, str], tmp_path: Path
) -> None:
    writer = {"driver": "file", "options": {"directory": str(tmp_path / "events")}}
    log_event(writer, service=SERVICE, message="marked abc123 for prod", now=T0)
    log_event(writer, service=SERVICE, cluster="kind", instance="main", message="updated web-main", now=T0)
    log_event(writer, service=SERVICE, cluster="other", instance="main", message="elsewhere", now=T0)
    log_event(writer, service="api", cluster="kind", instance="main", message="not ours", now=T0)
    fake_api.server.reset_counts()
    result = run("-C", "deploy")
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == [
        "2024-05-01 12:00:00 [deploy] marked abc123 for prod",
        "2024-05-01 12:00:00 [deploy] kind.main: updated web-main",
    ]
    assert fake_api.server.count() == 0
    assert "elsewhere" in run("-C", "deploy", "-c", "other").stdout


def test_deploy_events_merge_with_container_output(
    fake_api: Any, env: dict[str, str], tmp_path: Path
) -> None:
    add_pod(fake_api, "web-main-a")
    log(fake_api, "web-main-a", T0, "before", "after")
    writer = {"driver": "file", "options": {"directory": str(tmp_path / "events")}}
    log_event(
        writer, service=SERVICE, cluster="kind", instance="main", message="bounced", now=T0 + timedelta(0.5)
    )
    assert [line.split(" ", 3)[3] for line in run("-C", "stdout,deploy").stdout.splitlines()] == [
        "before",
        "after",
        "kind.main: bounced",
    ]


def test_usage_errors(env: dict[str, str], tmp_path: Path) -> None:
    result = run("-C", "build")
    assert result.exit_code == 2 and "unknown log component 'build'" in result.stderr
    result = run("--since", "yesterday")
    assert result.exit_code == 2 and "--since 'yesterday'" in result.stderr
    (Path(env["PAASTA_SYSTEM_CONFIG_DIR"]) / "zz.json").write_text('{"log_writer": {"driver": "null"}}')
    result = run("-C", "deploy")
    assert result.exit_code == 2 and "'null'" in result.stderr


def test_unreachable_cluster_is_one_error_line(
    fake_api: Any, env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = fake_api.server.kubeconfig()
    config["clusters"][0]["cluster"]["server"] = "http://127.0.0.1:1"  # nothing listens there
    (tmp_path / "dead").write_text(json.dumps(config))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "dead"))
    result = run()
    assert result.exit_code == 1
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr


def request(**overrides: Any) -> LogsRequest:
    values: dict[str, Any] = {
        "service": SERVICE,
        "cluster": "kind",
        "instances": ("main",),
        "components": frozenset({"stdout"}),
        "lines": 100,
        "since": None,
        "colour": False,
    }
    return LogsRequest(**{**values, **overrides})


def test_follow_through_a_bounce_prints_each_line_once(fake_api: Any, env: dict[str, str]) -> None:
    api = fake_api.client
    add_pod(fake_api, "web-main-old")
    log(fake_api, "web-main-old", T0, "old 0", "old 1")
    state, lines = read_pod_history(api, request(lines=1))
    assert [line.text for line in lines] == ["old 1"]

    state, lines = poll_pods(api, request(), state)
    assert lines == []  # nothing new: nothing printed twice

    log(fake_api, "web-main-old", T0 + timedelta(seconds=10), *(f"old more {n}" for n in range(300)))
    add_pod(fake_api, "web-main-new")  # the new ReplicaSet's pod appears mid-bounce
    log(fake_api, "web-main-new", T0 + timedelta(seconds=400), "new 0")
    fake_api.server.reset_counts()
    state, lines = poll_pods(api, request(), state)
    old_reads = [q for _, p, q in fake_api.server.request_log if p.endswith("web-main-old/log")]
    assert ["tailLines=100" in old_reads[0], "tailLines=400" in old_reads[1]] == [
        True,
        True,
    ]  # grown past 300
    assert [line.text for line in lines] == [f"old more {n}" for n in range(300)] + ["new 0"]
    assert state.colours["web-main-new"] != state.colours["web-main-old"]

    fake_api.server.delete_object("pods", NS, "web-main-old")  # the old pod goes
    log(fake_api, "web-main-new", T0 + timedelta(seconds=500), "new 1")
    state, lines = poll_pods(api, request(), state)
    assert [line.text for line in lines] == ["new 1"]
    assert {key.pod for key in state.markers} == {"web-main-new"}


def test_follow_exits_130_on_ctrl_c(fake_api: Any, env: dict[str, str]) -> None:
    add_pod(fake_api, "web-main-a")
    log(fake_api, "web-main-a", T0, "hello")
    command = [sys.executable, "-m", "paasta_lite.cli", "logs", "-s", SERVICE, "-f", "--poll-interval", "0.1"]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ
    )
    assert process.stdout is not None
    assert process.stdout.readline().endswith("[web-main-a] hello\n")
    log(fake_api, "web-main-a", datetime.now(timezone.utc), "while following")
    assert process.stdout.readline().endswith("[web-main-a] while following\n")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 130
    assert "Traceback" not in err and out == ""


def test_registered_in_the_paasta_group(env: dict[str, str], tmp_path: Path) -> None:
    from paasta_lite.cli.main import cli

    log_event(
        {"driver": "file", "options": {"directory": str(tmp_path / "events")}},
        service=SERVICE,
        message="stopped main",
        now=T0,
    )
    result = CliRunner().invoke(cli, ["logs", "-s", SERVICE, "-C", "deploy"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "2024-05-01 12:00:00 [deploy] stopped main\n"


def test_pods_are_found_in_the_instance_namespace(fake_api: Any, env: dict[str, str], tmp_path: Path) -> None:
    service_dir = tmp_path / "soa" / SERVICE
    service_dir.mkdir(parents=True)
    (service_dir / "kubernetes-kind.yaml").write_text("main:\n  namespace: custom-ns\n")
    fake_api.server.put_object("pods", {
        "metadata": {"name": "web-main-x", "namespace": "custom-ns",
                     "labels": {labels.SERVICE: SERVICE, labels.INSTANCE: "main"}},
        "spec": {"containers": [{"name": "main", "image": "img"}]},
        "status": {"phase": "Running", "containerStatuses": [{"name": "main", **RUNNING}]},
    })
    fake_api.server.append_log("custom-ns", "web-main-x", ["from custom"], at=T0)
    result = run("-i", "main", "-d", str(tmp_path / "soa"))
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines() == ["2024-05-01 12:00:00 [web-main-x] from custom"]
