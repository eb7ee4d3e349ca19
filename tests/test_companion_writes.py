"""setup and cleanup manage each app's HPA and PDB (issue 12 item 4), end to end through the fake API server.

Covers: a first deploy creates the Deployment, then its HPA (autoscaled only) and PDB owned by it,
then the companions record, with no read in a new namespace; a second run is one list and no
write; a min/max change reads and applies only the HPA, then the record; a Deployment update
keeps the record (its own field manager); stopping an autoscaled instance deletes its HPA (with
preconditions: a changed HPA is re-read, not deleted blind), starting it again brings it back;
cleanup deletes only the Deployment and the garbage collector takes the companions; a PDB
deleted by hand survives a cheap run and `--full` repairs it; a failed HPA write leaves the
record unwritten, so the next run tries again; a PDB we do not manage fails the app untouched.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import FakeApi
from fake_apiserver import FakeApiServer
from soa_builders import deployments_doc, write_tree

from paasta_lite.cleanup_kubernetes_jobs import cleanup_kubernetes_jobs
from paasta_lite.kube import labels
from paasta_lite.kube.run_lock import LEASE_NAMESPACE
from paasta_lite.setup_kubernetes_job import setup_kubernetes_job

CLUSTER = "c1"
SHA = "a" * 40
NS = "paastasvc-web"
AUTO, PLAIN = {"min_instances": 2, "max_instances": 6}, {"instances": 2}
HPAS = f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers"
PDBS = f"/apis/policy/v1/namespaces/{NS}/poddisruptionbudgets"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"
RECORDS = "fieldManager=paasta_lite-companions"


def service_files(instances: dict[str, Any], *, stopped: tuple[str, ...] = ()) -> dict[str, Any]:
    doc = deployments_doc({f"{CLUSTER}.{i}": SHA for i in instances}, service="web")
    doc["v2"]["controls"] = {f"web:{CLUSTER}.{i}": {"desired_state": "stop", "force_bounce": None}
                             for i in stopped}
    return {"web/service.yaml": {"description": "web", "git_url": "git@example:web"},
            f"web/kubernetes-{CLUSTER}.yaml": instances, "web/deployments.json": doc}


@pytest.fixture
def soa(tmp_path: Path) -> Path:
    return write_tree(tmp_path / "soa", service_files({"auto": AUTO, "plain": PLAIN}))


@pytest.fixture
def env(fake_api: FakeApi, tmp_path: Path) -> dict[str, str]:
    directory = tmp_path / "system"
    directory.mkdir()
    config = {"cluster": CLUSTER, "docker_registry": "registry.test"}
    (directory / "cluster.json").write_text(json.dumps(config))
    fake_api.server.put_object("namespaces", {"metadata": {"name": LEASE_NAMESPACE}})
    return {"KUBECONFIG": fake_api.kubeconfig, "PAASTA_SYSTEM_CONFIG_DIR": str(directory), "KUBECONTEXT": ""}


def setup(soa: Path, env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(setup_kubernetes_job, ["-d", str(soa), *args], env=env)


def get(server: FakeApiServer, plural: str, name: str) -> dict[str, Any] | None:
    return server.get_object(plural, NS, name)


def record_of(server: FakeApiServer, name: str) -> str | None:
    obj = get(server, "deployments", name)
    assert obj is not None
    return (obj["metadata"].get("annotations") or {}).get(labels.COMPANIONS)


def hash_of(obj: dict[str, Any] | None) -> str:
    assert obj is not None
    return str(obj["metadata"]["labels"][labels.CONFIG_SHA])


@pytest.fixture
def deployed(fake_api: FakeApi, soa: Path, env: dict[str, str]) -> FakeApiServer:
    """web.auto and web.plain deployed, their pods running, the request counts reset."""
    result = setup(soa, env)
    assert result.exit_code == 0, result.output
    fake_api.server.settle_all()
    fake_api.server.reset_counts()
    return fake_api.server


def test_a_first_deploy_creates_each_deployment_then_its_companions_owned_by_it(
        fake_api: FakeApi, soa: Path, env: dict[str, str]) -> None:
    result = setup(soa, env)
    assert result.exit_code == 0, result.output
    assert "created web.auto (paastasvc-web/web-auto): does not exist yet" in result.stdout
    server = fake_api.server
    for name in ("web-auto", "web-plain"):
        deployment = get(server, "deployments", name)
        assert deployment is not None
        owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": name,
                 "uid": deployment["metadata"]["uid"], "controller": False, "blockOwnerDeletion": True}
        pdb = get(server, "poddisruptionbudgets", name)
        assert pdb is not None and pdb["metadata"]["ownerReferences"] == [owner]
        assert pdb["metadata"]["labels"][labels.MANAGED] == "true"
    hpa = get(server, "horizontalpodautoscalers", "web-auto")
    assert hpa is not None and (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert hpa["metadata"]["ownerReferences"][0]["name"] == "web-auto"
    assert get(server, "horizontalpodautoscalers", "web-plain") is None
    pdb_auto, pdb_plain = get(server, "poddisruptionbudgets", "web-auto"), get(server, "poddisruptionbudgets",
                                                                               "web-plain")
    assert record_of(server, "web-auto") == f"hpa={hash_of(hpa)},pdb={hash_of(pdb_auto)}"
    assert record_of(server, "web-plain") == f"hpa=none,pdb={hash_of(pdb_plain)}"
    # In a namespace this run created nothing needs reading: one list, then writes only.
    kinds = Counter((method, path.rsplit("/", 2)[-2] if method == "PATCH" else path)
                    for method, path in server.app_requests())
    assert kinds == Counter({("GET", "/apis/apps/v1/deployments"): 1, ("POST", "/api/v1/namespaces"): 1,
                             ("PATCH", "deployments"): 4, ("PATCH", "horizontalpodautoscalers"): 1,
                             ("PATCH", "poddisruptionbudgets"): 2})
    assert server.count("PATCH", "/deployments/", query=RECORDS) == 2  # one record per app, last


def test_a_second_run_is_one_list_and_no_write(deployed: FakeApiServer, soa: Path,
                                               env: dict[str, str]) -> None:
    result = setup(soa, env)
    assert result.exit_code == 0, result.output
    assert deployed.app_requests() == [("GET", "/apis/apps/v1/deployments")]
    assert "0 created, 0 updated, 2 unchanged" in result.stdout


def test_a_min_max_change_reads_and_applies_only_the_hpa(deployed: FakeApiServer, soa: Path,
                                                         env: dict[str, str]) -> None:
    before = get(deployed, "deployments", "web-auto")
    deployed.scale(NS, "web-auto", 4)  # what the HPA did meanwhile
    write_tree(soa, service_files({"auto": {"min_instances": 3, "max_instances": 8}, "plain": PLAIN}))
    result = setup(soa, env)
    assert result.exit_code == 0, result.output
    assert "updated web.auto (paastasvc-web/web-auto): HorizontalPodAutoscaler config" in result.stdout
    assert deployed.app_requests() == [("GET", "/apis/apps/v1/deployments"), ("GET", f"{HPAS}/web-auto"),
                                       ("PATCH", f"{HPAS}/web-auto"), ("PATCH", f"{DEPLOYMENTS}/web-auto")]
    assert deployed.count("PATCH", "/deployments/", query=RECORDS) == 1
    hpa = get(deployed, "horizontalpodautoscalers", "web-auto")
    assert hpa is not None and (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 8)
    after = get(deployed, "deployments", "web-auto")
    assert after is not None and before is not None
    assert after["spec"] == {**before["spec"], "replicas": 4}  # the HPA's count, the same pod template
    pdb = get(deployed, "poddisruptionbudgets", "web-auto")
    assert record_of(deployed, "web-auto") == f"hpa={hash_of(hpa)},pdb={hash_of(pdb)}"
    deployed.reset_counts()
    assert setup(soa, env).exit_code == 0 and deployed.app_writes() == []


def test_a_deployment_update_keeps_the_record(deployed: FakeApiServer, soa: Path,
                                              env: dict[str, str]) -> None:
    recorded = record_of(deployed, "web-plain")
    write_tree(soa, service_files({"auto": AUTO, "plain": {**PLAIN, "env": {"MODE": "new"}}}))
    assert setup(soa, env).exit_code == 0
    assert deployed.app_writes() == [("PATCH", f"{DEPLOYMENTS}/web-plain")]  # no companion, no record
    assert record_of(deployed, "web-plain") == recorded  # our Deployment applies do not own it


def test_stopping_an_autoscaled_instance_deletes_its_hpa_and_starting_brings_it_back(
        deployed: FakeApiServer, soa: Path, env: dict[str, str]) -> None:
    def touch_hpa(server: FakeApiServer) -> None:  # someone edits it after we read it
        hpa = server.get_object("horizontalpodautoscalers", NS, "web-auto")
        assert hpa is not None
        server.put_object("horizontalpodautoscalers", {**hpa, "metadata": {**hpa["metadata"],
                                                                            "annotations": {"x": "y"}}})

    deployed.before_next("DELETE", f"{HPAS}/web-auto$", touch_hpa)
    write_tree(soa, service_files({"auto": AUTO, "plain": PLAIN}, stopped=("auto",)))
    result = setup(soa, env)
    assert result.exit_code == 0, result.output
    assert "HorizontalPodAutoscaler no longer wanted: deleted" in result.stdout
    deployment = get(deployed, "deployments", "web-auto")
    assert deployment is not None and deployment["spec"]["replicas"] == 0
    assert get(deployed, "horizontalpodautoscalers", "web-auto") is None
    assert deployed.count("DELETE", f"{HPAS}/web-auto$") == 2  # the first one's preconditions failed: re-read
    assert (record_of(deployed, "web-auto") or "").startswith("hpa=none,")
    assert get(deployed, "poddisruptionbudgets", "web-auto") is not None  # every instance keeps its PDB

    write_tree(soa, service_files({"auto": AUTO, "plain": PLAIN}))
    assert setup(soa, env).exit_code == 0
    deployment = get(deployed, "deployments", "web-auto")
    assert deployment is not None and deployment["spec"]["replicas"] == 6  # from 0: max_instances again
    assert get(deployed, "horizontalpodautoscalers", "web-auto") is not None


def test_cleanup_deletes_the_deployment_and_the_garbage_collector_its_companions(
        deployed: FakeApiServer, soa: Path, env: dict[str, str]) -> None:
    write_tree(soa, service_files({"plain": PLAIN}))
    result = CliRunner().invoke(cleanup_kubernetes_jobs, ["-d", str(soa)], env=env)
    assert result.exit_code == 0, result.output
    assert [(m, p) for m, p in deployed.app_writes()] == [("DELETE", f"{DEPLOYMENTS}/web-auto")]
    for plural in ("deployments", "horizontalpodautoscalers", "poddisruptionbudgets", "replicasets"):
        assert [o["metadata"]["name"] for o in deployed.list_objects(plural, NS)
                if o["metadata"]["name"].startswith("web-auto")] == []
    assert get(deployed, "poddisruptionbudgets", "web-plain") is not None


def test_a_pdb_deleted_by_hand_is_repaired_by_full(deployed: FakeApiServer, soa: Path,
                                                  env: dict[str, str]) -> None:
    deployed.delete_object("poddisruptionbudgets", NS, "web-plain")
    assert setup(soa, env).exit_code == 0  # the cheap run trusts the record (the documented price)
    assert deployed.app_writes() == [] and get(deployed, "poddisruptionbudgets", "web-plain") is None
    deployed.reset_counts()
    result = setup(soa, env, "--full")
    assert result.exit_code == 0, result.output
    line = "updated web.plain (paastasvc-web/web-plain): PodDisruptionBudget does not exist yet"
    assert line in result.stdout
    assert [r for r in deployed.app_requests() if r[0] == "GET"] == [
        ("GET", "/apis/apps/v1/deployments"), ("GET", "/apis/autoscaling/v2/horizontalpodautoscalers"),
        ("GET", "/apis/policy/v1/poddisruptionbudgets"), ("GET", f"{PDBS}/web-plain")]  # one list per kind
    assert deployed.app_writes() == [("PATCH", f"{PDBS}/web-plain")]  # the record was right all along
    pdb = get(deployed, "poddisruptionbudgets", "web-plain")
    assert pdb is not None and pdb["metadata"]["ownerReferences"][0]["name"] == "web-plain"
    deployed.reset_counts()
    assert setup(soa, env, "--full").exit_code == 0 and deployed.app_writes() == []


def test_a_failed_hpa_write_is_tried_again_next_run(fake_api: FakeApi, soa: Path,
                                                    env: dict[str, str]) -> None:
    server = fake_api.server
    server.fail_next("PATCH", f"{HPAS}/web-auto$", 403, message="horizontalpodautoscalers is forbidden")
    result = setup(soa, env)
    assert result.exit_code == 1
    assert ("failed web.auto (paastasvc-web/web-auto): create of HorizontalPodAutoscaler web-auto refused by "
            "the API: horizontalpodautoscalers is forbidden") in result.stderr
    assert get(server, "deployments", "web-auto") is not None
    assert record_of(server, "web-auto") is None  # nothing recorded: the next run looks again
    server.reset_counts()
    result = setup(soa, env)
    assert result.exit_code == 0, result.output
    assert get(server, "horizontalpodautoscalers", "web-auto") is not None
    assert ("GET", f"{HPAS}/web-auto") in server.app_requests()
    assert record_of(server, "web-auto") is not None


def test_a_pdb_we_do_not_manage_fails_the_app_and_is_not_touched(fake_api: FakeApi, soa: Path,
                                                                 env: dict[str, str]) -> None:
    theirs = {"metadata": {"name": "web-plain", "namespace": NS, "labels": {"team": "x"}},
              "spec": {"minAvailable": 1}}
    fake_api.server.put_object("poddisruptionbudgets", theirs)
    result = setup(soa, env)
    assert result.exit_code == 1
    assert ('failed web.plain (paastasvc-web/web-plain): PodDisruptionBudget "web-plain" already exists in '
            f"{NS} and is not managed by paasta_lite") in result.stderr
    pdb = get(fake_api.server, "poddisruptionbudgets", "web-plain")
    assert pdb is not None and pdb["spec"] == {"minAvailable": 1} and "ownerReferences" not in pdb["metadata"]
    assert get(fake_api.server, "poddisruptionbudgets", "web-auto") is not None  # the other app is fine
