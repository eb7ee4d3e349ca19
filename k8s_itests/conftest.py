"""k8s_itests: end-to-end tests against the cluster in `KUBECONFIG` (Kind or any other).

The whole suite is skipped, with the reason, when `KUBECONFIG` is unset or its cluster does not
answer `GET /version` within a few seconds, or when an entry point the cycle needs is not in this
checkout. `make k8s_itests` creates the playground Kind cluster first; `tox -e k8s_itests` uses
your `KUBECONFIG` as it is.

Tests in a class marked `incremental` form one story: once a step fails, the later steps are
reported as xfail ("previous step failed") instead of failing for the same cause.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from itest_world import ImageLoader, World, get_json, wait_for

PROBE_TIMEOUT_S = 5.0
NEEDED_MODULES = {
    "paasta_lite.generate_deployments_for_service": "issue 2",
    "paasta_lite.setup_kubernetes_job": "issue 5",
    "paasta_lite.cleanup_kubernetes_jobs": "issue 5",
    "paasta_lite.cli.status_cmd": "issue 3",
    "paasta_lite.cli.mark_for_deployment_cmd": "issue 2",
    "paasta_lite.cli.start_stop_cmd": "issue 2",
    "paasta_lite.cli.logs_cmd": "issue 3",
    "paasta_lite.paasta_api": "issue 3",
}


def probe_cluster(kubeconfig: str) -> str | None:
    """None when the cluster answers GET /version in time, else why not (in a daemon thread, so
    an unroutable server cannot hold the run past the deadline)."""
    outcome: list[str | None] = []

    def attempt() -> None:
        from paasta_lite.kube.client import KubeClient
        from paasta_lite.kube.errors import KubeError

        try:
            with KubeClient(kubeconfig=None, attempts=1, timeout=PROBE_TIMEOUT_S) as client:
                client.version()
            outcome.append(None)
        except KubeError as error:
            outcome.append(str(error).splitlines()[0][:300])

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(PROBE_TIMEOUT_S + 1)
    return outcome[0] if outcome else f"no answer within {PROBE_TIMEOUT_S:.0f}s"


def skip_reason() -> str | None:
    kubeconfig = os.environ.get("KUBECONFIG")
    if not kubeconfig:
        return ("KUBECONFIG is not set: run `make k8s_itests` (creates the playground Kind cluster) or "
                "export KUBECONFIG=<a cluster you may create namespaces in>")
    problem = probe_cluster(kubeconfig)
    if problem:
        return (f"the cluster in KUBECONFIG={kubeconfig} does not answer ({problem}): "
                "`make k8s_fake_cluster` (or `make k8s_recreate_cluster`)")
    missing = [f"{module} ({issue})" for module, issue in NEEDED_MODULES.items()
               if importlib.util.find_spec(module) is None]
    if missing:
        return "entry points not in this checkout yet: " + ", ".join(missing)
    return None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "incremental: later tests in the class xfail once one fails")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not any(Path(str(item.fspath)).parent == Path(__file__).parent for item in items):
        return
    reason = skip_reason()
    if reason:
        marker = pytest.mark.skip(reason=reason)
        for item in items:
            item.add_marker(marker)


_failed_step: dict[Any, str] = {}


def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> None:
    failed = call.excinfo is not None and not call.excinfo.errisinstance(pytest.skip.Exception)
    if "incremental" in item.keywords and failed and call.when == "call":
        _failed_step[item.parent] = item.name


def pytest_runtest_setup(item: pytest.Item) -> None:
    if "incremental" in item.keywords and item.parent in _failed_step:
        pytest.xfail(f"previous step failed ({_failed_step[item.parent]})")


def current_kind_cluster(kubeconfig: str) -> str | None:
    """The Kind cluster name when the current context is `kind-<name>`."""
    if os.pathsep in kubeconfig:
        return None
    from kubernetes import config as kube_config

    config: Any = kube_config
    try:
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except (kube_config.ConfigException, OSError, ValueError):
        return None
    name = str(active["name"]) if active else ""
    return name[len("kind-"):] if name.startswith("kind-") else None


@pytest.fixture(scope="session")
def images() -> ImageLoader:
    return ImageLoader(current_kind_cluster(os.environ["KUBECONFIG"]))


@pytest.fixture(scope="session")
def kube() -> Iterator[Any]:
    from paasta_lite.kube.client import KubeClient

    with KubeClient() as client:
        yield client


def delete_namespace(namespace: str) -> None:
    """Last-resort cleanup: whatever the entry points left behind goes with the namespace."""
    from kubernetes import client
    from kubernetes import config as kube_config

    config: Any = kube_config
    api = config.new_client_from_config()
    try:
        client.CoreV1Api(api).delete_namespace(namespace, propagation_policy="Foreground")
    except client.ApiException as error:
        if error.status != 404:
            raise
    finally:
        api.close()


@pytest.fixture(scope="class")
def world(tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest) -> Iterator[World]:
    created = World(root=tmp_path_factory.mktemp("world"), kubeconfig=os.environ["KUBECONFIG"])
    created.create()
    try:
        yield created
    finally:
        if os.environ.get("ITEST_KEEP") != "1":
            delete_namespace(created.namespace)
        show_all = os.environ.get("ITEST_SHOW_LOG") == "1"
        if show_all or request.node in _failed_step:
            shown = created.log if show_all else created.log[-30:]
            print("\n---- commands run by this world ----\n" + "\n".join(shown))


@pytest.fixture(scope="class")
def api(world: World) -> Iterator[str]:
    """`paasta_api` for the world's cluster on a free local port; yields its base URL (…/v1)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen([*world.module("paasta_lite.paasta_api"), "--port", str(port),
                                "-d", str(world.soa), "-c", world.cluster], env=world.env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        wait_for("the API to answer /v1/version",
                 lambda: process.poll() is None and get_json(f"{base}/version"), timeout=30, interval=0.5)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
