"""Shared fixtures.

`fake_api`: a fake Kubernetes API server (see `fake_apiserver.py`) started for one test, a
kubeconfig pointing at it (for CLI tests: set ``KUBECONFIG`` to ``fake_api.kubeconfig``), and a
`KubeClient` connected to it with fast retries.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fake_apiserver import FakeApiServer
from git_builders import GitRepos
from hypothesis import HealthCheck, settings

from paasta_lite.kube.client import KubeClient

# CI runs the same examples every time (HYPOTHESIS_PROFILE=ci in .ci/run): a red run is
# reproducible from its log, and a shared, busy runner's timing never fails a test.
settings.register_profile(
    "ci", derandomize=True, deadline=None, print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


@dataclass(frozen=True)
class FakeApi:
    """What the `fake_api` fixture yields: the server, its kubeconfig path, a connected client."""

    server: FakeApiServer
    kubeconfig: str
    client: KubeClient


@pytest.fixture
def repos(tmp_path: Path) -> GitRepos:
    """A bare git "remote" and a working clone (see git_builders.py)."""
    return GitRepos(tmp_path)


@pytest.fixture(autouse=True)
def private_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own HOME (outside its tmp_path), so the default deploy event log
    (~/.paasta_lite/logs) and anything else under ~ never touches the real one."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def fake_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeApi]:
    server = FakeApiServer(follow_linger=0.3).start()
    kubeconfig = server.write_kubeconfig(tmp_path / "kubeconfig")
    monkeypatch.delenv("KUBECONTEXT", raising=False)
    client = KubeClient(kubeconfig=kubeconfig, base_delay=0.01, timeout=5.0)
    try:
        yield FakeApi(server=server, kubeconfig=kubeconfig, client=client)
    finally:
        client.close()
        server.stop()
