"""setup/cleanup write like a controller (issue 12), end to end through the fake API server.

Covers: an HPA-style replica change between plan and write survives (and replicas are handed
over, not reset to 1); annotations and labels other managers own survive an update; a run that
waited for the lock deploys what is current then, never the older config it started with; a
second run waits, then exits 1 naming the holder; an expired lease is taken over; a 503 storm
ends in seconds with every unwritten instance reported "not attempted"; a dead API server ends
the run at once; Retry-After pauses the run; cleanup's delete preconditions keep an app that
changed or was recreated since the list; the deadline; a create whose answer was lost; the
run lock's namespace and Lease are created when missing.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import FakeApi
from fake_apiserver import RESOURCES, FakeApiServer
from lease_builders import hold_lease
from soa_builders import deployments_doc, write_tree

from paasta_lite.cleanup_kubernetes_jobs import cleanup_kubernetes_jobs
from paasta_lite.kube import labels
from paasta_lite.kube.run_lock import LEASE_NAME, LEASE_NAMESPACE
from paasta_lite.setup_kubernetes_job import setup_kubernetes_job

CLUSTER = "c1"
SHA, NEW_SHA = "a" * 40, "b" * 40
NS = "paastasvc-web"
ROOT = Path(__file__).resolve().parent.parent
#: query of our applies of rendered objects (not the companions record, not the hand-over)
APPLIES = "fieldManager=paasta_lite(&|$)"


def service_files(instances: dict[str, Any], *, sha: str = SHA, name: str = "web") -> dict[str, Any]:
    doc = deployments_doc({f"{CLUSTER}.{i}": sha for i in instances}, service=name)
    return {f"{name}/service.yaml": {"description": name, "git_url": f"git@example:{name}"},
            f"{name}/kubernetes-{CLUSTER}.yaml": instances, f"{name}/deployments.json": doc}


@pytest.fixture
def system(tmp_path: Path) -> Path:
    directory = tmp_path / "system"
    directory.mkdir()
    config = {"cluster": CLUSTER, "docker_registry": "registry.test"}
    (directory / "cluster.json").write_text(json.dumps(config))
    return directory


@pytest.fixture
def soa(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "soa", service_files({"main": {"instances": 2}, "canary": {"instances": 1}}))


@pytest.fixture
def env(fake_api: FakeApi, system: Path) -> dict[str, str]:
    return {"KUBECONFIG": fake_api.kubeconfig, "PAASTA_SYSTEM_CONFIG_DIR": str(system), "KUBECONTEXT": ""}


def setup(soa: Path, env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(setup_kubernetes_job, ["-d", str(soa), *args], env=env)


def cleanup(soa: Path, env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cleanup_kubernetes_jobs, ["-d", str(soa), *args], env=env)


def live(fake_api: FakeApi, name: str = "web-main") -> dict[str, Any]:
    obj = fake_api.server.get_object("deployments", NS, name)
    assert obj is not None
    return obj


def managers(obj: dict[str, Any]) -> set[str]:
    return {entry["manager"] for entry in obj["metadata"].get("managedFields", [])}


# --------------------------------------------------------------------------- server-side apply


def test_an_autoscaler_change_between_plan_and_write_survives(fake_api: FakeApi, soa: Path,
                                                              env: dict[str, str]) -> None:
    write_tree(soa, service_files({"main": {"min_instances": 3, "max_instances": 10}}))
    assert setup(soa, env).exit_code == 0
    assert live(fake_api)["spec"]["replicas"] == 10  # first deploy: max_instances (PaaSTA rule)
    write_tree(soa, service_files({"main": {"min_instances": 3, "max_instances": 10,
                                            "env": {"MODE": "new"}}}))
    # the HPA scales to 9 after our list, just before our first write for the app
    fake_api.server.before_next("PATCH", f"{NS}/deployments/web-main$",
                                lambda server: server.scale(NS, "web-main", 9))
    result = setup(soa, env)
    assert result.exit_code == 0, result.output
    after = live(fake_api)
    assert after["spec"]["replicas"] == 9
    assert {"name": "MODE", "value": "new"} in after["spec"]["template"]["spec"]["containers"][0]["env"]
    assert "paasta_lite-handover" in managers(after)  # spec.replicas keeps a co-owner: never reset to 1
    fake_api.server.scale(NS, "web-main", 5)  # the autoscaler moves it again; we change config again
    write_tree(soa, service_files({"main": {"min_instances": 3, "max_instances": 10, "env": {"MODE": "3"}}}))
    assert setup(soa, env).exit_code == 0
    assert live(fake_api)["spec"]["replicas"] == 5


def test_without_the_handover_replicas_would_fall_back_to_one(fake_api: FakeApi) -> None:
    """The fake models what v1.28 does (checked on the real server): the reason for the hand-over."""
    body = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x", "namespace": "ns"},
            "spec": {"replicas": 3, "selector": {"matchLabels": {"a": "b"}}, "template": {
                "metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}}
    fake_api.server.put_object("namespaces", {"metadata": {"name": "ns"}})
    fake_api.client.apply(body)
    without = {**body, "spec": {k: v for k, v in body["spec"].items() if k != "replicas"}}
    assert "replicas" not in fake_api.client.apply(without)["spec"]  # i.e. the default, 1


def test_fields_other_managers_own_survive_an_update(fake_api: FakeApi, soa: Path,
                                                     env: dict[str, str]) -> None:
    assert setup(soa, env).exit_code == 0
    restarted = {"kubectl.kubernetes.io/restartedAt": "2026-12-02T04:00:00Z"}
    fake_api.client.merge_patch("Deployment", NS, "web-main", {
        "metadata": {"labels": {"team": "payments"}},
        "spec": {"template": {"metadata": {"annotations": restarted}}}}, field_manager="kubectl-rollout")
    write_tree(soa, service_files({"main": {"instances": 2, "env": {"MODE": "new"}},
                                   "canary": {"instances": 1}},
                                  sha=NEW_SHA))
    result = setup(soa, env)
    assert result.exit_code == 0 and "updated web.main" in result.stdout, result.output
    after = live(fake_api)
    assert after["spec"]["template"]["metadata"]["annotations"] == restarted
    assert after["metadata"]["labels"]["team"] == "payments"
    assert after["metadata"]["labels"][labels.GIT_SHA] == NEW_SHA
    fake_api.server.reset_counts()
    assert "0 updated, 2 unchanged" in setup(soa, env).stdout  # their fields are not ours to revert
    assert fake_api.server.app_writes() == []


def test_objects_written_before_server_side_apply_are_upgraded(fake_api: FakeApi, soa: Path,
                                                               env: dict[str, str]) -> None:
    """Our old PUTs left an `OpenAPI-Generator` co-owner; without the upgrade a removed env var stayed."""
    write_tree(soa, service_files({"main": {"instances": 2, "env": {"OLD": "1"}},
                                   "canary": {"instances": 1}}))
    assert setup(soa, env).exit_code == 0
    obj = live(fake_api)
    for entry in obj["metadata"]["managedFields"]:
        entry["manager"], entry["operation"] = "OpenAPI-Generator", "Update"
    fake_api.server.put_object("deployments", obj)
    write_tree(soa, service_files({"main": {"instances": 2}, "canary": {"instances": 1}}))
    assert setup(soa, env).exit_code == 0
    after = live(fake_api)
    assert all(e["name"] != "OLD" for e in after["spec"]["template"]["spec"]["containers"][0]["env"])
    assert managers(after) == {"paasta_lite"}


def test_a_create_into_an_existing_namespace_looks_first(fake_api: FakeApi, soa: Path,
                                                        env: dict[str, str]) -> None:
    assert setup(soa, env, "web.main").exit_code == 0
    fake_api.server.reset_counts()
    assert setup(soa, env).exit_code == 0
    gets = [path for method, path in fake_api.server.app_requests()
            if method == "GET" and "web-canary" in path]
    # nothing in the way of the Deployment; then its companions are read: an HPA to delete or a
    # PDB to take over could be there (this namespace existed before the run)
    assert gets == [f"/apis/apps/v1/namespaces/{NS}/deployments/web-canary",
                    f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/web-canary",
                    f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets/web-canary"]


# --------------------------------------------------------------------------- the run lock


def test_a_second_run_waits_then_exits_naming_the_holder(fake_api: FakeApi, soa: Path,
                                                         env: dict[str, str]) -> None:
    hold_lease(fake_api.server, "deploy-host:4242:setup_kubernetes_job")
    start = time.monotonic()
    result = setup(soa, env, "--lock-timeout", "1.5")
    took = time.monotonic() - start
    assert result.exit_code == 1
    assert "another run holds the lock: deploy-host:4242:setup_kubernetes_job" in result.stderr
    assert "--lock-timeout" in result.stderr
    assert 1.5 <= took < 5
    assert fake_api.server.app_requests() == []  # not even the list
    assert cleanup(soa, env, "--lock-timeout", "0").exit_code == 1  # cleanup takes the same lock


def test_an_expired_lease_is_taken_over_and_given_back(fake_api: FakeApi, soa: Path,
                                                       env: dict[str, str]) -> None:
    hold_lease(fake_api.server, "crashed-host:1:setup_kubernetes_job", renewed=time.time() - 120)
    result = setup(soa, env, "--lock-timeout", "0")
    assert result.exit_code == 0, result.output
    lease = fake_api.server.get_object("leases", LEASE_NAMESPACE, LEASE_NAME)
    assert lease is not None and lease["spec"]["leaseTransitions"] == 4
    assert "holderIdentity" not in lease["spec"] or not lease["spec"]["holderIdentity"]  # released


def test_the_lock_namespace_and_lease_are_created_when_missing(fake_api: FakeApi, soa: Path,
                                                               env: dict[str, str]) -> None:
    assert setup(soa, env).exit_code == 0
    assert fake_api.server.get_object("namespaces", None, LEASE_NAMESPACE) is not None
    lease = fake_api.server.get_object("leases", LEASE_NAMESPACE, LEASE_NAME)
    assert lease is not None and not lease["spec"].get("holderIdentity")  # given back at the end
    assert lease["metadata"]["labels"] == {labels.APP_MANAGED_BY: labels.MANAGED_BY_VALUE}
    fake_api.server.reset_counts()
    assert setup(soa, env, "--dry-run").exit_code == 0
    assert fake_api.server.count(path="/leases") == 0  # a dry run takes no lock


def test_a_run_that_waited_deploys_what_is_current_not_what_it_started_with(
        fake_api: FakeApi, soa: Path, env: dict[str, str]) -> None:
    """An older run overlapping a newer one cannot roll it back: config is read once the lock is held."""
    assert setup(soa, env).exit_code == 0
    hold_lease(fake_api.server, "newer-run:1:setup_kubernetes_job")
    older = subprocess.Popen([sys.executable, "-m", "paasta_lite.setup_kubernetes_job", "-d", str(soa),
                              "--lock-timeout", "20"], env={**os.environ, **env, "PYTHONPATH": str(ROOT)},
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 15
        while fake_api.server.count("GET", "/leases/") < 2 and time.monotonic() < deadline:
            time.sleep(0.1)  # the older run is waiting for the lock
        # meanwhile the newer run deploys NEW_SHA, then lets go
        write_tree(soa, service_files({"main": {"instances": 2}, "canary": {"instances": 1}}, sha=NEW_SHA))
        assert setup(soa, env, "--lock-timeout", "0").exit_code == 1  # (we are not the holder either)
        lease = fake_api.server.get_object("leases", LEASE_NAMESPACE, LEASE_NAME)
        assert lease is not None
        fake_api.server.put_object("leases", {**lease, "spec": {**lease["spec"], "holderIdentity": None}})
        out, err = older.communicate(timeout=30)
    finally:
        older.kill()
    assert older.returncode == 0, err
    assert "git sha aaaaaaaa -> bbbbbbbb" in out
    assert live(fake_api)["metadata"]["labels"][labels.GIT_SHA] == NEW_SHA


# --------------------------------------------------------------------------- the run budget


def test_a_503_storm_ends_in_seconds_and_says_what_was_not_attempted(fake_api: FakeApi, soa: Path,
                                                                      env: dict[str, str]) -> None:
    write_tree(soa, service_files({f"i{n}": {"instances": 1} for n in range(40)}))
    fake_api.server.fail_next("PATCH", "/deployments/", 503, times=10_000, retry_after=0.5)
    start = time.monotonic()
    result = setup(soa, env)
    took = time.monotonic() - start
    assert result.exit_code == 1
    assert took < 5, f"a 503 storm took {took:.1f} s"
    sent = fake_api.server.count("PATCH", "/deployments/")
    assert sent <= 5 + 8  # the breaker's threshold plus what was already in flight; no retries per request
    not_attempted = [line for line in result.stderr.splitlines() if line.startswith("not attempted web.")]
    assert len(not_attempted) >= 40 - sent
    assert "consecutive server-side failures" in not_attempted[0]
    assert result.stdout.splitlines()[-1].endswith(f"{len(not_attempted)} not attempted")


def test_a_dead_api_server_ends_the_run_at_once(soa: Path, system: Path, tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nobody listens here once closed
    dead = FakeApiServer()
    kubeconfig = dead.write_kubeconfig(tmp_path / "dead.kubeconfig")
    text = Path(kubeconfig).read_text().replace(dead.url, f"http://127.0.0.1:{port}")
    Path(kubeconfig).write_text(text)
    start = time.monotonic()
    result = setup(soa, {"KUBECONFIG": kubeconfig, "PAASTA_SYSTEM_CONFIG_DIR": str(system)})
    assert result.exit_code == 1 and "unreachable" in result.stderr.lower()
    assert time.monotonic() - start < 10


def test_retry_after_pauses_the_run(fake_api: FakeApi, soa: Path, env: dict[str, str]) -> None:
    fake_api.server.fail_next("PATCH", "/deployments/", 429, times=1, retry_after=1.0)
    start = time.monotonic()
    result = setup(soa, env, "--concurrency", "1")
    assert result.exit_code == 0, result.output
    assert time.monotonic() - start >= 1.0
    assert fake_api.server.count("PATCH", "/deployments/", query=APPLIES) == 3


def test_the_deadline_stops_writing(fake_api: FakeApi, soa: Path, env: dict[str, str]) -> None:
    fake_api.server.delay_next("PATCH", "/deployments/web-canary", 1.5)
    result = setup(soa, env, "--concurrency", "1", "--deadline", "1")
    assert result.exit_code == 1
    assert "not attempted web.main" in result.stderr or "failed web.canary" in result.stderr


# --------------------------------------------------------------------------- cleanup preconditions


@pytest.fixture
def removed(fake_api: FakeApi, soa: Path, env: dict[str, str]) -> Path:
    """web.canary deployed, then removed from soa-configs."""
    assert setup(soa, env).exit_code == 0
    write_tree(soa, service_files({"main": {"instances": 2}}))
    fake_api.server.reset_counts()
    return soa


def test_a_delete_carries_the_listed_uid_and_resource_version(fake_api: FakeApi, removed: Path,
                                                              env: dict[str, str]) -> None:
    changed = {"metadata": {"labels": {"touched": "yes"}}}
    fake_api.server.before_next("DELETE", "web-canary$", lambda server: server.cluster.patch(
        RESOURCES["deployments"], NS, "web-canary", changed, "application/merge-patch+json"))
    result = cleanup(removed, env)
    assert result.exit_code == 0, result.output
    assert "kept paastasvc-web/web-canary (web.canary): changed since list" in result.stdout
    assert "ResourceVersion in the precondition" in result.stdout
    assert live(fake_api, "web-canary")["metadata"]["labels"]["touched"] == "yes"
    assert "1 changed since list (kept)" in result.stdout.splitlines()[-1]
    result = cleanup(removed, env)  # the next run decides again, from a fresh list
    assert "deleted paastasvc-web/web-canary" in result.stdout
    assert fake_api.server.get_object("deployments", NS, "web-canary") is None


def test_a_recreated_app_is_not_deleted_by_a_stale_list(fake_api: FakeApi, removed: Path,
                                                        env: dict[str, str]) -> None:
    def recreate(server: FakeApiServer) -> None:
        obj = server.get_object("deployments", NS, "web-canary")
        assert obj is not None
        server.delete_object("deployments", NS, "web-canary")
        obj["metadata"].pop("uid")
        server.put_object("deployments", obj)

    fake_api.server.before_next("DELETE", "web-canary$", recreate)
    result = cleanup(removed, env)
    assert "UID in the precondition" in result.stdout
    assert fake_api.server.get_object("deployments", NS, "web-canary") is not None
