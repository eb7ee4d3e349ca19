"""paasta_deployd end to end: soa dir on disk -> the loop -> the real client over HTTP -> fake API server.

Covers: the first sync creates every app and makes deployd ready; a soa edit and a new
deployments.json version reach only their Deployment; drift (replicas, a container's env, a
label) is reverted and a deleted app recreated, through the watch; a dropped watch and a 410
are recovered from; an idle deployd makes no writes, also across a full resync; an instance
removed from soa-configs is deleted once its service settles, but nothing is deleted from an
empty or missing soa dir or over the kill threshold; a follower writes nothing until it leads;
/metrics, /healthz and /readyz; actions reach the deploy event log; `--print-manifests`;
SIGTERM on the real process exits 0 after finishing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from conftest import FakeApi
from lease_builders import hold_lease
from soa_builders import deployments_doc, write_tree

from paasta_lite.config.system_config import load_system_config
from paasta_lite.controller.leader import LeaseElector, make_elector
from paasta_lite.controller.loop import Deployd, Settings
from paasta_lite.kube import labels
from paasta_lite.kube.client import KubeClient
from paasta_lite.kube.run_lock import LEASE_NAME, LEASE_NAMESPACE
from paasta_lite.paasta_deployd import paasta_deployd

CLUSTER = "c1"
SHA, NEW_SHA = "a" * 40, "b" * 40


def service_files(name: str, instances: dict[str, Any], *, sha: str = SHA) -> dict[str, Any]:
    versions = {f"{CLUSTER}.{instance}": sha for instance in instances}
    return {f"{name}/service.yaml": {"description": name},
            f"{name}/kubernetes-{CLUSTER}.yaml": instances,
            f"{name}/deployments.json": deployments_doc(versions, service=name)}


def edit(soa: Path, name: str, instances: dict[str, Any], *, sha: str = SHA) -> None:
    """Rewrite a service's files, moving their mtimes on so a scan sees the change whatever the size."""
    write_tree(soa, service_files(name, instances, sha=sha))
    for path in (soa / name).iterdir():
        stamp = path.stat().st_mtime_ns + 10**9
        os.utime(path, ns=(stamp, stamp))


def wait_for(condition: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s")
        time.sleep(0.02)


@dataclass
class Running:
    deployd: Deployd
    fake: FakeApi
    soa: Path
    thread: threading.Thread
    clients: list[KubeClient] = field(default_factory=list)

    @property
    def url(self) -> str:
        assert self.deployd.server is not None
        return f"http://127.0.0.1:{self.deployd.server.port}"

    def deployment(self, service: str, instance: str) -> dict[str, Any] | None:
        return self.fake.server.get_object("deployments", f"paastasvc-{service}", f"{service}-{instance}")

    def replicas(self, service: str, instance: str) -> Any:
        obj = self.deployment(service, instance)
        return None if obj is None else obj["spec"]["replicas"]

    def stop(self) -> None:
        self.deployd.request_stop()
        self.thread.join(10)
        for client in self.clients:
            client.close()


@pytest.fixture
def soa(tmp_path: Path) -> Path:
    files = {**service_files("web", {"main": {"instances": 2}, "canary": {"instances": 1}}),
             **service_files("api", {"main": {"instances": 3, "env": {"MODE": "fast"}}}),
             **service_files("batch", {"main": {"instances": 1}})}
    return write_tree(tmp_path / "soa", files)


@pytest.fixture
def system_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "system"
    directory.mkdir()
    config = {"cluster": CLUSTER, "docker_registry": "registry.test"}
    (directory / "cluster.json").write_text(json.dumps(config))
    monkeypatch.setenv("PAASTA_SYSTEM_CONFIG_DIR", str(directory))
    return directory


@pytest.fixture
def start(fake_api: FakeApi, soa: Path, system_dir: Path) -> Iterator[Callable[..., Running]]:
    started: list[Running] = []

    def launch(leader_elect: bool = False, identity: str = "test-host:1:paasta_deployd",
               lease_seconds: int = 30, **overrides: Any) -> Running:
        settings = Settings(**{"soa_dir": str(soa), "cluster": CLUSTER, "resync": 60.0, "concurrency": 2,
                               "scan_interval": 0.05, "metrics_host": "127.0.0.1", "metrics_port": 0,
                               "watch_timeout": 30, "settle": 0.3, **overrides})
        clients = [KubeClient(kubeconfig=fake_api.kubeconfig, base_delay=0.01, timeout=5.0) for _ in range(2)]
        elector = make_elector(leader_elect, clients[0], identity=identity, lease_seconds=lease_seconds)
        if isinstance(elector, LeaseElector):
            elector.retry_period = 0.1
        deployd = Deployd(settings, system=load_system_config(str(system_dir)), client=clients[0],
                          watch_client=clients[1], elector=elector)
        thread = threading.Thread(target=deployd.run, name="deployd-under-test", daemon=True)
        running = Running(deployd, fake_api, soa, thread, clients)
        started.append(running)
        thread.start()
        return running

    yield launch
    for running in started:
        running.stop()


@pytest.fixture
def running(start: Callable[..., Running]) -> Running:
    deployd = start()
    wait_for(deployd.deployd.ready, what="first full sync")
    return deployd


def writes_to(fake: FakeApi, name: str) -> list[tuple[str, str]]:
    return [(method, path) for method, path in fake.server.writes() if path.endswith(f"/{name}")]


# --------------------------------------------------------------------------- applying soa-configs


def test_first_sync_creates_every_app_and_makes_deployd_ready(running: Running) -> None:
    assert [running.replicas(*job) for job in (("web", "main"), ("web", "canary"), ("api", "main"),
                                               ("batch", "main"))] == [2, 1, 3, 1]
    assert get(f"{running.url}/readyz") == (200, "ready\n")
    assert get(f"{running.url}/healthz") == (200, "ok\n")


def test_a_soa_edit_is_applied_to_its_deployment_only(running: Running) -> None:
    running.fake.server.reset_counts()
    edit(running.soa, "web", {"main": {"instances": 5}, "canary": {"instances": 1}})
    wait_for(lambda: running.replicas("web", "main") == 5, what="the new replica count")
    time.sleep(0.3)  # our own write's watch event is reconciled too: it must not write again
    path = "/apis/apps/v1/namespaces/paastasvc-web/deployments/web-main"
    assert running.fake.server.app_writes() == [("PATCH", path)]  # server-side apply, as setup does


def test_a_new_deployments_json_version_rolls_out(running: Running) -> None:
    edit(running.soa, "api", {"main": {"instances": 3, "env": {"MODE": "fast"}}}, sha=NEW_SHA)
    def sha(service: str) -> str:
        return str((running.deployment(service, "main") or {})["metadata"]["labels"][labels.GIT_SHA])

    wait_for(lambda: sha("api") == NEW_SHA, what="the new git sha")
    assert sha("web") == SHA


def test_a_new_instance_is_created(running: Running) -> None:
    edit(running.soa, "batch", {"main": {"instances": 1}, "nightly": {"instances": 2}})
    wait_for(lambda: running.replicas("batch", "nightly") == 2, what="the new instance")


# --------------------------------------------------------------------------- drift


def test_drift_is_reverted(running: Running) -> None:
    client = running.fake.client
    client.patch_deployment("paastasvc-api", "api-main", {"spec": {"replicas": 9}})
    wait_for(lambda: running.replicas("api", "main") == 3, what="replicas reverted")
    live = running.deployment("api", "main")
    assert live is not None
    live["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "MODE", "value": "slow"}]
    client.replace_deployment("paastasvc-api", "api-main", live)

    def env() -> list[str]:
        obj = running.deployment("api", "main") or {}
        return [e.get("value") for e in obj["spec"]["template"]["spec"]["containers"][0]["env"]
                if e["name"] == "MODE"]

    wait_for(lambda: env() == ["fast"], what="env reverted")
    client.patch_deployment("paastasvc-api", "api-main", {"metadata": {"labels": {labels.GIT_SHA: "c" * 40}}})
    wait_for(lambda: (running.deployment("api", "main") or {})["metadata"]["labels"][labels.GIT_SHA] == SHA,
             what="label reverted")


def test_a_deleted_app_is_recreated(running: Running) -> None:
    before = running.deployment("web", "canary")
    assert before is not None
    running.fake.client.delete_deployment("paastasvc-web", "web-canary")
    recreated = wait_for(lambda: running.deployment("web", "canary"), what="the app recreated")
    assert recreated["metadata"]["uid"] != before["metadata"]["uid"]


def test_a_lost_watch_is_recovered(running: Running) -> None:
    server, client = running.fake.server, running.fake.client
    server.drop_watches()
    client.patch_deployment("paastasvc-web", "web-main", {"spec": {"replicas": 7}})
    wait_for(lambda: running.replicas("web", "main") == 2, what="drift reverted after a dropped watch")
    server.expire_watches()
    client.patch_deployment("paastasvc-web", "web-main", {"spec": {"replicas": 8}})
    wait_for(lambda: running.replicas("web", "main") == 2, what="drift reverted after a 410")
    assert running.deployd.informer.stats["gone"] >= 1


def test_an_idle_deployd_makes_no_writes_even_across_a_full_resync(running: Running) -> None:
    running.fake.server.settle_all()
    time.sleep(0.3)
    running.fake.server.reset_counts()
    running.deployd.full_resync()
    wait_for(lambda: running.deployd.queue.idle(), what="the resync reconciled")
    time.sleep(0.3)
    assert running.fake.server.writes() == []


def test_companions_deleted_or_edited_by_hand_are_repaired_as_they_happen(running: Running) -> None:
    """What `setup_kubernetes_job --full` repairs at its next run, the watch repairs at once: an app's
    HPA and PDB (owned by its Deployment) are planned from the informers' caches, every time."""
    server, client = running.fake.server, running.fake.client
    edit(running.soa, "batch", {"main": {"instances": 1}, "auto": {"min_instances": 2, "max_instances": 5}})
    ns, name = "paastasvc-batch", "batch-auto"
    hpa = wait_for(lambda: server.get_object("horizontalpodautoscalers", ns, name), what="the HPA")
    assert hpa["metadata"]["ownerReferences"][0]["name"] == name
    wait_for(lambda: server.get_object("poddisruptionbudgets", ns, name), what="the PDB")
    wait_for(lambda: running.deployd.queue.idle(), what="quiet")
    time.sleep(0.3)
    server.reset_counts()
    client.delete("HorizontalPodAutoscaler", ns, name)
    recreated = wait_for(lambda: server.get_object("horizontalpodautoscalers", ns, name), what="the HPA back")
    assert recreated["metadata"]["uid"] != hpa["metadata"]["uid"]
    assert recreated["spec"]["maxReplicas"] == 5
    client.merge_patch("PodDisruptionBudget", ns, name, {"spec": {"maxUnavailable": 3}})
    wait_for(lambda: (server.get_object("poddisruptionbudgets", ns, name) or {})["spec"].get("maxUnavailable")
             != 3, what="the PDB edit reverted")
    wait_for(lambda: running.deployd.queue.idle(), what="quiet")
    time.sleep(0.3)
    hpa_path = f"/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/{name}"
    pdb_path = f"/apis/policy/v1/namespaces/{ns}/poddisruptionbudgets/{name}"
    patches = [path.split("?")[0] for method, path in server.app_writes() if method == "PATCH"]
    # deployd's apply of the HPA; the hand edit of the PDB, deployd's apply of it; nothing else
    assert patches == [hpa_path, pdb_path, pdb_path]
    server.reset_counts()
    running.deployd.full_resync()  # and all of it is a no-op now
    wait_for(lambda: running.deployd.queue.idle(), what="the resync reconciled")
    time.sleep(0.3)
    assert server.writes() == []


def test_a_hand_edit_of_an_hpa_is_reverted_though_hpas_have_no_generation(running: Running) -> None:
    """autoscaling/v2 HPAs carry no metadata.generation (v1.28): the informer compares the spec."""
    server, client = running.fake.server, running.fake.client
    edit(running.soa, "batch", {"main": {"instances": 1}, "auto": {"min_instances": 2, "max_instances": 5}})
    ns, name = "paastasvc-batch", "batch-auto"
    hpa = wait_for(lambda: server.get_object("horizontalpodautoscalers", ns, name), what="the HPA")
    assert "generation" not in hpa["metadata"]
    wait_for(lambda: running.deployd.queue.idle(), what="quiet")
    time.sleep(0.3)
    client.merge_patch("HorizontalPodAutoscaler", ns, name, {"spec": {"maxReplicas": 1}})
    wait_for(lambda: server.get_object("horizontalpodautoscalers", ns, name)["spec"]["maxReplicas"] == 5,
             what="the HPA edit reverted")


def test_an_instance_moved_to_another_namespace_loses_its_old_deployment_once_the_new_is_ready(
        running: Running) -> None:
    """cleanup_kubernetes_jobs' "moved" rule, applied by deployd too: the old Deployment goes once
    the one in the new namespace is ready (the instance is still configured, so it is not 'gone')."""
    server = running.fake.server
    edit(running.soa, "web", {"main": {"instances": 2, "namespace": "paastasvc-moved"},
                              "canary": {"instances": 1}})
    moved = wait_for(lambda: server.get_object("deployments", "paastasvc-moved", "web-main"),
                     what="the new app")
    time.sleep(0.5)
    assert server.get_object("deployments", "paastasvc-web", "web-main") is not None  # not ready: kept
    moved["status"] = {"readyReplicas": 2, "replicas": 2, "availableReplicas": 2}
    server.put_object("deployments", moved)
    wait_for(lambda: server.get_object("deployments", "paastasvc-web", "web-main") is None,
             timeout=15, what="the old app deleted")


# --------------------------------------------------------------------------- deleting


def test_a_removed_instance_is_deleted_once_its_service_settles(running: Running) -> None:
    edit(running.soa, "web", {"main": {"instances": 2}})
    wait_for(lambda: running.deployment("web", "canary") is None, what="the removed instance deleted")
    assert running.deployment("web", "main") is not None
    assert running.fake.server.deletions == [("deployments", "paastasvc-web", "web-canary", "Foreground")]


def test_a_file_left_empty_mid_rewrite_deletes_nothing(start: Callable[..., Running]) -> None:
    running = start(settle=2.0)
    wait_for(running.deployd.ready, what="first full sync")
    path = running.soa / "web" / f"kubernetes-{CLUSTER}.yaml"
    text = path.read_text()
    running.fake.server.reset_counts()
    path.write_text("")  # a writer that truncated the file and stalls: "no instances" for a while
    wait_for(lambda: not running.deployd.configs.view().is_configured("web.main"), what="the empty file seen")
    time.sleep(0.5)  # many quiet scans of the empty file
    edit(running.soa, "web", yaml.safe_load(text))
    wait_for(lambda: running.deployd.configs.view().is_configured("web.main"), what="the file back")
    time.sleep(0.3)
    assert running.fake.server.writes() == []  # nothing deleted, so nothing to recreate either


def test_an_error_in_another_clusters_file_keeps_the_services_apps(running: Running) -> None:
    """As cleanup_kubernetes_jobs reads every file of a service: a broken kubernetes-other.yaml
    means what the service configures is unknown, so none of its apps is deleted."""
    broken = running.soa / "web" / "kubernetes-other.yaml"
    broken.write_text("main: [unclosed\n")
    edit(running.soa, "web", {"main": {"instances": 2}})  # canary removed
    wait_for(lambda: not running.deployd.configs.view().is_configured("web.canary"), what="the removal seen")
    time.sleep(1.0)  # past the settle time, several retries
    assert running.fake.server.deletions == []
    broken.unlink()
    running.deployd.full_resync()  # (scans watch this cluster's files; the resync reads again)
    wait_for(lambda: running.deployment("web", "canary") is None, what="deleted once the file is fixed")


def test_another_clusters_apps_are_not_deployds_business(running: Running) -> None:
    """Several PaaSTA clusters may share one Kubernetes cluster: apps labelled for another one are
    never queued, never deleted (as cleanup_kubernetes_jobs keeps them)."""
    web = running.deployment("web", "main")
    assert web is not None
    foreign = {"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "gone-main", "namespace": "paastasvc-web",
                            "labels": {**web["metadata"]["labels"], labels.INSTANCE: "gone",
                                       labels.CLUSTER: "elsewhere"}},
               "spec": web["spec"]}
    running.fake.client.create_deployment("paastasvc-web", foreign)
    edit(running.soa, "web", {"main": {"instances": 2}, "canary": {"instances": 1}})  # a change, then settle
    time.sleep(0.6)
    running.deployd.full_resync()
    wait_for(lambda: running.deployd.queue.idle(), what="the resync reconciled")
    assert "web.gone" not in running.deployd.informer.job_ids()
    assert running.fake.server.deletions == []
    assert running.fake.server.get_object("deployments", "paastasvc-web", "gone-main") is not None


@pytest.mark.parametrize("damage", ["empty", "missing"])
def test_nothing_is_deleted_from_an_empty_or_missing_soa_dir(running: Running, damage: str) -> None:
    for child in running.soa.iterdir():
        shutil.rmtree(child)
    if damage == "missing":
        running.soa.rmdir()
    wait_for(lambda: running.deployd.configs.view().doubt is not None, what="doubt")
    running.deployd.full_resync()
    wait_for(lambda: running.deployd.queue.idle(), what="the resync reconciled")
    time.sleep(0.5)  # many scans
    assert running.fake.server.deletions == []
    assert len(running.fake.server.list_objects("deployments")) == 4


def test_a_mass_removal_is_refused_by_the_kill_threshold(running: Running) -> None:
    shutil.rmtree(running.soa / "api")
    shutil.rmtree(running.soa / "batch")
    edit(running.soa, "web", {"main": {"instances": 2}})  # 3 of 4 apps would go
    wait_for(lambda: running.deployd.configs.view().doubt is None
             and not running.deployd.configs.view().unsettled, what="settled")
    running.deployd.full_resync()
    wait_for(lambda: running.deployd.queue.idle(), what="the resync reconciled")
    time.sleep(0.3)
    assert running.fake.server.deletions == []


# --------------------------------------------------------------------------- leadership, observability


def holder(fake: FakeApi) -> str | None:
    found = fake.server.get_object("leases", LEASE_NAMESPACE, LEASE_NAME)
    return None if found is None else found["spec"].get("holderIdentity")


def test_without_leader_election_each_batch_takes_the_cron_jobs_lease(running: Running) -> None:
    """A cron run holding the Lease holds deployd's writes back; deployd gives it back after a batch."""
    assert holder(running.fake) is None  # the first sync's batches gave it back
    hold_lease(running.fake.server, "cron-host:7:setup_kubernetes_job")
    running.fake.server.reset_counts()
    edit(running.soa, "web", {"main": {"instances": 4}, "canary": {"instances": 1}})
    wait_for(lambda: running.fake.server.count("GET", "/leases/") >= 2, what="deployd asking for the Lease")
    time.sleep(0.5)
    assert running.fake.server.app_writes() == [] and running.replicas("web", "main") == 2
    hold_lease(running.fake.server, "")  # the cron run ends
    wait_for(lambda: running.replicas("web", "main") == 4, what="the write once the Lease is free")
    wait_for(lambda: holder(running.fake) is None, what="the Lease given back")


def test_a_follower_writes_nothing_until_the_lease_is_free(start: Callable[..., Running]) -> None:
    follower = start(leader_elect=True, identity="b-host:2:paasta_deployd", lease_seconds=3)
    hold_lease(follower.fake.server, "cron-host:7:setup_kubernetes_job")
    wait_for(follower.deployd.ready, what="the follower's first sync")
    time.sleep(0.5)
    assert follower.fake.server.app_writes() == []
    assert "paasta_deployd_is_leader 0" in get(f"{follower.url}/metrics")[1]
    hold_lease(follower.fake.server, "")  # released
    wait_for(lambda: follower.replicas("web", "main") == 2, what="the new leader's resync")
    assert holder(follower.fake) == "b-host:2:paasta_deployd"  # kept while leading
    assert "paasta_deployd_is_leader 1" in get(f"{follower.url}/metrics")[1]


def test_leader_hand_over_in_process(start: Callable[..., Running]) -> None:
    """Two deployds on one Lease: only the leader writes; when it stops, the other takes over."""
    first = start(leader_elect=True, identity="a-host:1:paasta_deployd", lease_seconds=3)
    wait_for(lambda: first.replicas("web", "main") == 2, what="the leader's first sync")
    second = start(leader_elect=True, identity="b-host:2:paasta_deployd", lease_seconds=3)
    wait_for(second.deployd.ready, what="the follower's first sync")
    assert holder(first.fake) == "a-host:1:paasta_deployd"
    edit(first.soa, "web", {"main": {"instances": 3}, "canary": {"instances": 1}})
    wait_for(lambda: first.replicas("web", "main") == 3, what="the leader's write")
    wait_for(lambda: writes_of(first) == 5, what="the leader counting its 4 creates and 1 update")
    time.sleep(0.3)
    assert writes_of(second) == 0
    first.stop()  # SIGTERM: finishes, gives the Lease back
    wait_for(lambda: holder(first.fake) == "b-host:2:paasta_deployd", what="the hand-over")
    edit(first.soa, "web", {"main": {"instances": 5}, "canary": {"instances": 1}})
    wait_for(lambda: first.replicas("web", "main") == 5, what="the new leader's write")
    wait_for(lambda: writes_of(second) == 1, what="the new leader counting it")
    assert writes_of(first) == 5


def writes_of(running: Running) -> float:
    """The writes a deployd says it made."""
    metric = running.deployd.metrics.writes
    return sum(metric.value(verb=verb, outcome="ok") for verb in ("create", "update", "delete"))


def test_a_lost_lease_stops_writes_at_once(start: Callable[..., Running]) -> None:
    leader = start(leader_elect=True, identity="a-host:1:paasta_deployd", lease_seconds=3, concurrency=1)
    wait_for(lambda: leader.replicas("web", "main") == 2, what="the first sync")
    server = leader.fake.server
    many = {f"i{n:02}": {"instances": 1} for n in range(12)}

    def steal(_server: Any) -> None:
        current = server.get_object("leases", LEASE_NAMESPACE, LEASE_NAME)
        assert current is not None
        server.put_object("leases", {**current, "spec": {**current["spec"], "holderIdentity": "thief"}})

    server.before_next("PATCH", "/deployments/", steal)  # as the first of them goes out
    server.delay_next("PATCH", "/deployments/", 0.4, times=100)  # then 11 slow writes: ~4.5 s in all
    server.reset_counts()
    edit(leader.soa, "batch", many)
    wait_for(lambda: server.count("PATCH", "/deployments/") >= 1, what="the first write")
    wait_for(lambda: not leader.deployd.elector.is_leader(), what="the loss noticed (next renewal)")
    sent = server.count("PATCH", "/deployments/")
    time.sleep(2.0)
    assert server.count("PATCH", "/deployments/") == sent  # not one more write after the loss
    assert sent <= 4  # the renewal notices the theft within a second: a few 0.4 s writes at most
    assert leader.deployd.metrics.writes.value(verb="create", outcome="not_attempted") >= 1
    assert holder(leader.fake) == "thief"


def test_metrics_describe_the_work(running: Running) -> None:
    status, body = get(f"{running.url}/metrics")
    assert status == 200
    lines = body.splitlines()
    writes = [line for line in lines if line.startswith("paasta_deployd_writes_total")]
    assert writes == ['paasta_deployd_writes_total{verb="create",outcome="ok"} 4']
    assert "paasta_deployd_queue_depth 0" in lines
    assert "paasta_deployd_is_leader 1" in lines
    def value(name: str) -> float:
        return float(next(line for line in lines if line.startswith(name)).split()[1])

    assert value("paasta_deployd_reconcile_duration_seconds_count") >= 1
    assert abs(value("paasta_deployd_last_full_resync_timestamp_seconds") - time.time()) < 60
    assert 'paasta_deployd_watch_total{kind="Deployment",what="lists"} 1' in lines
    assert 'paasta_deployd_watch_total{kind="HorizontalPodAutoscaler",what="lists"} 1' in lines


def test_actions_reach_the_deploy_event_log(running: Running, private_home: Path) -> None:
    records = [json.loads(line) for line in
               (private_home / ".paasta_lite" / "logs" / "web" / "deploy.jsonl").read_text().splitlines()]
    messages = {(r["instance"], r["message"].split(" (")[0]) for r in records}
    assert ("main", "paasta_deployd: created web.main") in messages
    assert ("canary", "paasta_deployd: created web.canary") in messages


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


# --------------------------------------------------------------------------- the command


def test_print_manifests() -> None:
    result = CliRunner().invoke(paasta_deployd, ["--print-manifests", "--namespace", "ops", "-c", "prod"])
    assert result.exit_code == 0, result.output
    objects = list(yaml.safe_load_all(result.output))
    assert [o["kind"] for o in objects] == ["Namespace", "Namespace", "ServiceAccount", "ClusterRole",
                                            "ClusterRoleBinding", "Role", "RoleBinding", "Deployment"]
    assert [o["metadata"]["name"] for o in objects[:2]] == ["ops", LEASE_NAMESPACE]
    app_verbs = ["get", "list", "watch", "create", "patch", "delete"]  # no update: nothing PUTs apps
    assert {r["resources"][0]: r["verbs"] for r in objects[3]["rules"]} == {
        "deployments": app_verbs, "horizontalpodautoscalers": app_verbs, "poddisruptionbudgets": app_verbs,
        "namespaces": ["create"], "deployments/finalizers": ["update"]}  # (blockOwnerDeletion)
    role, binding = objects[5], objects[6]
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == LEASE_NAMESPACE
    assert role["rules"] == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "update"],
         "resourceNames": [LEASE_NAME]},
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["create"]}]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "paasta-deployd", "namespace": "ops"}]
    deployment = objects[-1]
    assert deployment["spec"]["replicas"] == 2
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["args"][-2:] == ["-c", "prod"] and "--leader-elect" in container["args"]
    assert all(labels.MANAGED not in (o["metadata"].get("labels") or {}) for o in objects)


def launch_process(fake_api: FakeApi, soa: Path, log: Path, *extra: str) -> subprocess.Popen[str]:
    env = {**os.environ, "KUBECONFIG": fake_api.kubeconfig, "PYTHONUNBUFFERED": "1"}
    with log.open("a") as stderr:
        return subprocess.Popen(
            [sys.executable, "-m", "paasta_lite.paasta_deployd", "-d", str(soa), "--scan-interval", "0.05",
             "--metrics-port", "0", "--metrics-host", "127.0.0.1", *extra],
            env=env, stderr=stderr, text=True)


def test_killing_the_leader_process_hands_over(fake_api: FakeApi, soa: Path, system_dir: Path,
                                              tmp_path: Path) -> None:
    """Two real processes with --leader-elect: kill -9 the leader (no release); the other takes
    over once the Lease expires, and writes."""
    processes = [launch_process(fake_api, soa, tmp_path / f"deployd{n}.log", "--leader-elect",
                                "--lease-seconds", "3") for n in range(2)]
    try:
        wait_for(lambda: holder(fake_api) is not None
                 and fake_api.server.get_object("deployments", "paastasvc-web", "web-main"), 15,
                 "a leader's sync")
        leading = next(p for p in processes if str(holder(fake_api)).endswith(f":{p.pid}:paasta_deployd"))
        other = next(p for p in processes if p is not leading)
        leading.kill()
        leading.wait(5)
        killed_at = time.monotonic()
        wait_for(lambda: str(holder(fake_api)).endswith(f":{other.pid}:paasta_deployd"), 10, "the take-over")
        took = time.monotonic() - killed_at
        assert 1.0 < took < 8.0  # not before the Lease (3 s, renewed every 1 s) expired; soon after
        edit(soa, "web", {"main": {"instances": 6}, "canary": {"instances": 1}})
        wait_for(lambda: (fake_api.server.get_object("deployments", "paastasvc-web", "web-main") or {})
                 .get("spec", {}).get("replicas") == 6, 10, "the new leader's write")
        other.send_signal(signal.SIGTERM)
        assert other.wait(15) == 0
        assert holder(fake_api) is None  # given back on SIGTERM
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
            process.wait(10)


def test_sigterm_finishes_and_exits_zero(fake_api: FakeApi, soa: Path, system_dir: Path) -> None:
    env = {**os.environ, "KUBECONFIG": fake_api.kubeconfig, "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "paasta_lite.paasta_deployd", "-d", str(soa), "--scan-interval", "0.05",
         "--metrics-port", "0", "--metrics-host", "127.0.0.1"],
        env=env, stderr=subprocess.PIPE, text=True)
    assert process.stderr is not None
    lines: list[str] = []
    for line in process.stderr:
        lines.append(line)
        if "first full sync done" in line:
            break
    assert fake_api.server.get_object("deployments", "paastasvc-web", "web-main") is not None
    process.send_signal(signal.SIGTERM)
    rest = process.communicate(timeout=10)[1]
    assert process.returncode == 0, "".join(lines) + rest
    assert "SIGTERM received" in rest and "stopped" in rest
