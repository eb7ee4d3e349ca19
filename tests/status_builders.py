"""Test builders for status and the API: a soa dir with one service, Deployments shaped like the
reconciler's in the fake cluster, and the API app served on a local port."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import requests
import yaml

from paasta_lite.api.app import ApiSettings, make_app
from paasta_lite.config.naming import app_name, namespace_for
from paasta_lite.kube import labels

SERVICE = "example_svc"
CLUSTER = "kind-test"
SHA = "1" * 40
OLD_SHA = "0" * 40
NAMESPACE = namespace_for(SERVICE)


def write_soa(
    root: Path,
    *,
    instances: dict[str, Any] | None = None,
    sha: str | None = SHA,
    stopped: tuple[str, ...] = (),
    cluster: str = CLUSTER,
    extra_clusters: tuple[str, ...] = (),
) -> Path:
    """A soa dir with SERVICE on `cluster` (instances main x3, canary x1 by default)."""
    soa = root / "soa"
    service_dir = soa / SERVICE
    service_dir.mkdir(parents=True, exist_ok=True)
    (service_dir / "service.yaml").write_text("description: test service\n")
    instances = instances or {"main": {"instances": 3}, "canary": {"instances": 1}}
    for name in (cluster, *extra_clusters):
        (service_dir / f"kubernetes-{name}.yaml").write_text(yaml.safe_dump(instances))
    groups = {f"{c}.{i}" for c in (cluster, *extra_clusters) for i in instances}
    deployments = {}
    if sha is not None:
        image = f"services-{SERVICE}:paasta-{sha}"
        deployments = {g: {"docker_image": image, "git_sha": sha, "image_version": None} for g in groups}
    controls = {f"{SERVICE}:{cluster}.{i}": {"desired_state": "stop", "force_bounce": None} for i in stopped}
    (service_dir / "deployments.json").write_text(
        json.dumps({"v2": {"deployments": deployments, "controls": controls}})
    )
    return soa


def deployment(
    instance: str, *, sha: str = SHA, replicas: int = 3, config_sha: str = "configabcd1234",
    min_ready_seconds: int = 0,
) -> dict[str, Any]:
    """A Deployment shaped like the reconciler's (labels, selector, one container); no soa hash
    annotation (status then says it cannot judge config drift), unlike `render`'s."""
    pod_labels = {
        labels.SERVICE: SERVICE,
        labels.INSTANCE: instance,
        labels.GIT_SHA: sha,
        labels.CONFIG_SHA: config_sha,
        labels.MANAGED: "true",
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app_name(SERVICE, instance), "namespace": NAMESPACE, "labels": dict(pod_labels)},
        "spec": {
            "replicas": replicas,
            "minReadySeconds": min_ready_seconds,
            "selector": {"matchLabels": {labels.SERVICE: SERVICE, labels.INSTANCE: instance}},
            "template": {
                "metadata": {"labels": pod_labels},
                "spec": {
                    "containers": [
                        {"name": "main", "image": f"registry.test/services-{SERVICE}:paasta-{sha}"}
                    ]
                },
            },
        },
    }


def deploy(server: Any, instance: str, **settle: Any) -> None:
    """Create or update the instance's Deployment in the fake cluster, then let it settle."""
    sha = settle.pop("sha", SHA)
    replicas = settle.pop("replicas", 3)
    min_ready = settle.pop("min_ready_seconds", 0)
    existing = server.get_object("deployments", NAMESPACE, app_name(SERVICE, instance))
    body = deployment(instance, sha=sha, replicas=replicas, min_ready_seconds=min_ready)
    if existing is not None:
        existing["spec"] = body["spec"]
        existing["metadata"]["generation"] = existing["metadata"].get("generation", 1) + 1
        body = existing
    server.put_object("deployments", body)
    server.settle(NAMESPACE, app_name(SERVICE, instance), **settle)


def dead_kubeconfig(path: Path) -> str:
    """A kubeconfig pointing at a port nobody listens on."""
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "dead",
                "clusters": [{"name": "dead", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "dead", "user": {"token": "x"}}],
                "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "dead"}}],
            }
        )
    )
    return str(path)


class Served:
    def __init__(self, url: str) -> None:
        self.url = url

    def get(self, path: str, **kwargs: Any) -> requests.Response:
        return requests.get(self.url + path, timeout=10, **kwargs)


def serve(settings: ApiSettings) -> Iterator[Served]:
    """Serve the app with waitress on a free local port for the duration of the block.

    The loop runs in slices so the serving thread itself closes the server (closing it from
    another thread mid-select makes waitress's loop fail with EBADF).
    """
    import waitress
    from waitress import wasyncore

    server = waitress.create_server(make_app(settings), host="127.0.0.1", port=0, threads=4)
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            wasyncore.loop(timeout=0.05, map=server._map, count=1)
        server.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield Served(f"http://127.0.0.1:{server.effective_port}")
    finally:
        stop.set()
        thread.join(timeout=5)


def crash_loop(server: Any, *, restart_count: int, event_count: int, log_lines: list[str]) -> str:
    """Deploy `main` crash-looping, with log lines and a BackOff event on its first pod; the pod's name."""
    deploy(server, "main", ready=False, waiting_reason="CrashLoopBackOff", restart_count=restart_count)
    pod: str = server.list_objects("pods", NAMESPACE)[0]["metadata"]["name"]
    server.append_log(NAMESPACE, pod, log_lines)
    server.add_event(
        NAMESPACE,
        involved_kind="Pod",
        involved_name=pod,
        reason="BackOff",
        message="Back-off restarting failed container",
        type="Warning",
        count=event_count,
    )
    return pod
