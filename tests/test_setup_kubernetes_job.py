"""setup_kubernetes_job end to end: soa dir on disk -> the real client over HTTP -> fake API server.

Covers: first run creates namespaces and Deployments; a second run makes zero writes (one GET);
config, git sha, replica and stop changes become updates; hand edits are reverted; one bad
instance (config error, 422, AlreadyExists from an unmanaged object, a malformed deployments.json
entry, two instances with one Kubernetes name) fails alone with a non-zero exit; 409/429/500 are
retried; not-deployed instances are reported without failing; named instances; --dry-run prints
the plan and a diff and writes nothing; `python -m` works.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import FakeApi
from soa_builders import deployments_doc, write_tree

from paasta_lite.kube import labels
from paasta_lite.kube.run_lock import LEASE_NAMESPACE as LOCK_NAMESPACE
from paasta_lite.setup_kubernetes_job import setup_kubernetes_job

CLUSTER = "c1"
SHA = "a" * 40
NEW_SHA = "b" * 40
DEPLOYMENTS = "/apis/apps/v1/namespaces/{ns}/deployments"
MANAGED = labels.MANAGED_SELECTOR
#: query of our applies of rendered objects (not the companions record, not the hand-over)
APPLIES = "fieldManager=paasta_lite(&|$)"


def last_line(result: Result) -> str:
    return result.stdout.splitlines()[-1]


def service_files(name: str, instances: dict[str, Any], *, sha: str = SHA,
                  controls: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = deployments_doc({f"{CLUSTER}.{i}": sha for i in instances}, service=name)
    doc["v2"]["controls"] = controls or {}
    return {f"{name}/service.yaml": {"description": name, "git_url": f"git@example:{name}"},
            f"{name}/kubernetes-{CLUSTER}.yaml": instances,
            f"{name}/deployments.json": doc}


@pytest.fixture
def soa(tmp_path: Path) -> Path:
    files = {**service_files("web", {"main": {"instances": 2}, "canary": {"instances": 1}}),
             **service_files("api", {"main": {"instances": 3, "env": {"MODE": "fast"}}})}
    return write_tree(tmp_path / "soa", files)


@pytest.fixture
def system(tmp_path: Path) -> Path:
    directory = tmp_path / "system"
    directory.mkdir()
    config = {"cluster": CLUSTER, "docker_registry": "registry.test"}
    (directory / "cluster.json").write_text(json.dumps(config))
    return directory


@pytest.fixture(autouse=True)
def lock_namespace(fake_api: FakeApi) -> None:
    """The run lock's namespace, as on a cluster used before (its own creation is tested apart)."""
    fake_api.server.put_object("namespaces", {"metadata": {"name": LOCK_NAMESPACE}})


@pytest.fixture
def run(fake_api: FakeApi, soa: Path, system: Path) -> Any:
    def invoke(*args: str) -> Result:
        env = {"KUBECONFIG": fake_api.kubeconfig, "PAASTA_SYSTEM_CONFIG_DIR": str(system), "KUBECONTEXT": ""}
        return CliRunner().invoke(setup_kubernetes_job, ["-d", str(soa), *args], env=env)

    return invoke


def deployment(fake_api: FakeApi, service: str, instance: str) -> dict[str, Any]:
    obj = fake_api.server.get_object("deployments", f"paastasvc-{service}", f"{service}-{instance}")
    assert obj is not None
    return obj


def edit(soa: Path, service: str, instances: dict[str, Any], **kwargs: Any) -> None:
    write_tree(soa, service_files(service, instances, **kwargs))


def test_first_run_creates_everything(run: Any, fake_api: FakeApi) -> None:
    result = run()
    assert result.exit_code == 0, result.output
    assert "created web.main (paastasvc-web/web-main): does not exist yet" in result.stdout
    assert result.stdout.splitlines()[-1] == (
        "cluster c1: 3 created, 0 updated, 0 unchanged, 0 failed, 0 not deployed")
    namespaces = fake_api.server.list_objects("namespaces", label_selector=MANAGED)
    assert {n["metadata"]["name"] for n in namespaces} == {"paastasvc-web", "paastasvc-api"}
    api = deployment(fake_api, "api", "main")
    assert api["spec"]["replicas"] == 3 and api["metadata"]["labels"][labels.MANAGED] == "true"
    assert fake_api.server.count("POST", "/api/v1/namespaces$") == 2


def test_second_run_makes_no_writes(run: Any, fake_api: FakeApi) -> None:
    run()
    fake_api.server.settle_all()
    fake_api.server.reset_counts()
    result = run("-v")
    assert result.exit_code == 0, result.output
    assert fake_api.server.app_writes() == []
    assert fake_api.server.app_requests() == [("GET", "/apis/apps/v1/deployments")]
    assert fake_api.server.count(path="/leases") <= 3  # the run lock: read, take, give back
    assert "unchanged web.canary (paastasvc-web/web-canary): up to date" in result.stdout
    assert last_line(result).endswith("0 created, 0 updated, 3 unchanged, 0 failed, 0 not deployed")


def test_changes_become_updates(run: Any, fake_api: FakeApi, soa: Path) -> None:
    run()
    before = deployment(fake_api, "api", "main")
    edit(soa, "api", {"main": {"instances": 4, "env": {"MODE": "slow"}}}, sha=NEW_SHA)
    fake_api.server.reset_counts()
    result = run()
    assert result.exit_code == 0, result.output
    after = deployment(fake_api, "api", "main")
    line = next(x for x in result.stdout.splitlines() if x.startswith("updated api.main"))
    assert "config changed" in line and "git sha aaaaaaaa -> bbbbbbbb" in line and "replicas 3 -> 4" in line
    assert after["spec"]["replicas"] == 4
    assert after["metadata"]["generation"] == before["metadata"]["generation"] + 1
    assert after["metadata"]["labels"][labels.GIT_SHA] == NEW_SHA
    assert after["metadata"]["labels"][labels.CONFIG_SHA] != before["metadata"]["labels"][labels.CONFIG_SHA]
    assert fake_api.server.app_writes() == [("PATCH", f"{DEPLOYMENTS.format(ns='paastasvc-api')}/api-main")]


def test_stop_scales_to_zero(run: Any, fake_api: FakeApi, soa: Path) -> None:
    run()
    edit(soa, "web", {"main": {"instances": 2}, "canary": {"instances": 1}},
         controls={f"web:{CLUSTER}.main": {"desired_state": "stop", "force_bounce": None}})
    result = run()
    assert result.exit_code == 0, result.output
    assert deployment(fake_api, "web", "main")["spec"]["replicas"] == 0
    assert deployment(fake_api, "web", "canary")["spec"]["replicas"] == 1


def test_hand_edits_are_reverted(run: Any, fake_api: FakeApi) -> None:
    run()
    fake_api.client.patch_deployment("paastasvc-web", "web-main", {"spec": {"template": {"spec": {
        "containers": [{"name": "main", "image": "evil/image:latest"}]}}}})
    result = run()
    assert "updated web.main (paastasvc-web/web-main): edited by hand" in result.stdout
    container = deployment(fake_api, "web", "main")["spec"]["template"]["spec"]["containers"][0]
    assert container["image"].startswith("registry.test/")


def test_one_refused_instance_does_not_stop_the_others(run: Any, fake_api: FakeApi) -> None:
    message = 'Deployment.apps "api-main" is invalid: spec.template.spec.containers[0].image: Required value'
    fake_api.server.fail_next("PATCH", "paastasvc-api/deployments/api-main$", 422, message=message)
    result = run()
    assert result.exit_code == 1
    assert f"failed api.main (paastasvc-api/api-main): create refused by the API: {message}" in result.stderr
    assert last_line(result).endswith("2 created, 0 updated, 0 unchanged, 1 failed, 0 not deployed")
    assert fake_api.server.count("PATCH", "deployments/", query=APPLIES) == 3  # 422 is not retried


def test_unmanaged_object_in_the_way_is_reported_not_touched(run: Any, fake_api: FakeApi) -> None:
    squatter = {"metadata": {"name": "web-main", "namespace": "paastasvc-web", "labels": {"team": "x"}},
                "spec": {"replicas": 9}}
    fake_api.server.put_object("deployments", squatter)
    result = run()
    assert result.exit_code == 1
    assert ('failed web.main (paastasvc-web/web-main): Deployment "web-main" already exists in paastasvc-web '
            'and is not managed by paasta_lite') in result.stderr
    assert deployment(fake_api, "web", "main")["spec"]["replicas"] == 9
    assert fake_api.server.count("PATCH", "web-main") == 0


@pytest.mark.parametrize("status", [409, 429, 500])
def test_transient_errors_are_retried(run: Any, fake_api: FakeApi, status: int) -> None:
    fake_api.server.fail_next("PATCH", "deployments/", status, times=2)
    result = run()
    assert result.exit_code == 0, result.output
    assert len(fake_api.server.list_objects("deployments")) == 3
    assert fake_api.server.count("PATCH", "deployments/", query=APPLIES) == 5


def test_config_errors_and_not_deployed_instances(run: Any, fake_api: FakeApi, soa: Path) -> None:
    write_tree(soa, {f"web/kubernetes-{CLUSTER}.yaml": {"main": {"instances": 2}, "canary": {"instances": 1},
                                                         "broken": {"instances": -1}, "fresh": {}}})
    result = run()
    assert result.exit_code == 1
    assert "failed web.broken: " in result.stderr and "instances" in result.stderr
    assert "not deployed web.fresh: " in result.stdout
    assert last_line(result).endswith("3 created, 0 updated, 0 unchanged, 1 failed, 1 not deployed")


def test_a_malformed_deployments_entry_fails_only_its_deploy_group(run: Any, fake_api: FakeApi,
                                                                    soa: Path) -> None:
    files = service_files("web", {"main": {"instances": 2}, "canary": {"instances": 1}})
    files["web/deployments.json"]["v2"]["deployments"][f"{CLUSTER}.canary"]["git_sha"] = "abc123"
    write_tree(soa, files)
    result = run()
    assert result.exit_code == 1
    assert (f"failed web.canary: {soa}/web/deployments.json, field 'v2.deployments.c1.canary': git_sha must "
            "be a full commit sha, 40 lower-case hexadecimal characters (got 'abc123')") in result.stderr
    created = sorted(d["metadata"]["name"] for d in fake_api.server.list_objects("deployments"))
    assert created == ["api-main", "web-main"]  # the file's other deploy group still deploys
    assert last_line(result).endswith("2 created, 0 updated, 0 unchanged, 1 failed, 0 not deployed")


def test_instances_with_the_same_kubernetes_name_fail_alone_every_run(run: Any, fake_api: FakeApi,
                                                                      soa: Path) -> None:
    files = service_files("web", {"main": {"instances": 2}, "main_1": {}, "main--1": {}})
    write_tree(soa, files)
    for _ in range(2):
        result = run()
        assert result.exit_code == 1
        assert "failed web.main--1: " in result.stderr and "failed web.main_1: " in result.stderr
        assert "both get the Kubernetes name 'web-main--1'" in result.stderr
        created = [d["metadata"]["name"] for d in fake_api.server.list_objects("deployments")]
        assert "web-main--1" not in created
        assert not [write for write in fake_api.server.app_writes() if "web-main--1" in write[1]]


def test_not_deployed_alone_is_success(run: Any, fake_api: FakeApi, soa: Path) -> None:
    write_tree(soa, {f"web/kubernetes-{CLUSTER}.yaml": {"main": {"instances": 2}, "later": {}}})
    result = run("web.main", "web.later")
    assert result.exit_code == 0, result.output
    assert [d["metadata"]["name"] for d in fake_api.server.list_objects("deployments")] == ["web-main"]


def test_named_instances_only(run: Any, fake_api: FakeApi) -> None:
    result = run("web.canary", "web.nope", "nodots", "ghost.main")
    assert result.exit_code == 1
    assert [d["metadata"]["name"] for d in fake_api.server.list_objects("deployments")] == ["web-canary"]
    assert "failed web.nope: not configured for cluster c1" in result.stderr
    assert "failed nodots: 'nodots' is not of the form service.instance" in result.stderr
    assert "failed ghost.main: " in result.stderr


def test_dry_run_prints_plan_and_diff_without_writing(run: Any, fake_api: FakeApi, soa: Path) -> None:
    fresh = run("--dry-run")
    assert "would create web.main (paastasvc-web/web-main)" in fresh.stdout
    assert "would create namespaces: paastasvc-api, paastasvc-web" in fresh.stdout
    assert fake_api.server.writes() == []
    run()
    edit(soa, "api", {"main": {"instances": 3, "env": {"MODE": "slow"}}})
    fake_api.server.reset_counts()
    result = run("--dry-run")
    assert result.exit_code == 0, result.output
    assert "would update api.main (paastasvc-api/api-main): config changed" in result.stdout
    assert "         - name: MODE\n-          value: fast\n+          value: slow\n" in result.stdout
    assert fake_api.server.writes() == []


def test_missing_soa_dir_and_cluster(fake_api: FakeApi, tmp_path: Path, system: Path) -> None:
    env = {"KUBECONFIG": fake_api.kubeconfig, "PAASTA_SYSTEM_CONFIG_DIR": str(system)}
    missing = CliRunner().invoke(setup_kubernetes_job, ["-d", str(tmp_path / "nope")], env=env)
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    (system / "cluster.json").write_text(json.dumps({"docker_registry": "r"}))
    no_cluster = CliRunner().invoke(setup_kubernetes_job, ["-d", str(tmp_path)], env=env)
    assert no_cluster.exit_code == 2 and "no cluster given" in no_cluster.stderr
    assert fake_api.server.requests == []


def test_runs_as_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "paasta_lite.setup_kubernetes_job", "--help"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "--dry-run" in done.stdout


def test_actions_are_recorded_in_the_deploy_log(run: Any, private_home: Path) -> None:
    assert run().exit_code == 0
    log = private_home / ".paasta_lite" / "logs" / "web" / "deploy.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    assert {(e["instance"], e["level"]) for e in events} == {("main", "event"), ("canary", "event")}
    assert all(e["message"].startswith("setup_kubernetes_job: created web.") for e in events)
    assert run().exit_code == 0  # a no-op run records nothing
    assert len(log.read_text().splitlines()) == 2


def test_a_create_whose_answer_was_lost_is_not_a_failure(run: Any, fake_api: FakeApi) -> None:
    """The first apply lands but its answer is a 500; applying again is harmless."""
    fake_api.server.fail_next("PATCH", r"/deployments/", 500, after_applying=True)
    result = run()
    assert result.exit_code == 0, result.output
    assert "3 created" in last_line(result) and "0 failed" in last_line(result)
    assert run().exit_code == 0 and "0 updated" in last_line(run())


def test_a_conflict_then_a_refused_reread_fails_that_app_alone(run: Any, fake_api: FakeApi,
                                                               soa: Path) -> None:
    """409 on the write, then the fresh GET refused: that app fails with the reason, and the run
    still reports every other app and its summary (the error used to abort the whole run)."""
    assert run().exit_code == 0
    edit(soa, "api", {"main": {"instances": 4}})
    edit(soa, "web", {"main": {"instances": 3}, "canary": {"instances": 1}})
    fake_api.server.fail_next("PATCH", "paastasvc-api/deployments/api-main$", 409)
    fake_api.server.fail_next("GET", "paastasvc-api/deployments/api-main$", 403)
    result = run("-v")
    assert result.exit_code == 1
    assert "conflict, then cannot re-read its objects" in result.output
    assert "updated web.main" in result.output
    assert result.output.splitlines()[-1].startswith("cluster c1: ")


def test_an_app_of_another_cluster_with_the_same_name_is_not_taken_over(run: Any,
                                                                        fake_api: FakeApi) -> None:
    """Names carry no cluster: when two PaaSTA clusters share one Kubernetes cluster, the other
    cluster's app is reported and left alone, never relabelled and rewritten."""
    assert run().exit_code == 0
    obj = deployment(fake_api, "web", "main")
    obj["metadata"]["labels"][labels.CLUSTER] = "other"
    obj["metadata"]["labels"][labels.CONFIG_SHA] = "configother"
    fake_api.server.put_object("deployments", obj)
    fake_api.server.reset_counts()
    result = run("web.main")
    assert result.exit_code == 1
    assert "belongs to cluster other: not touched" in result.output
    assert deployment(fake_api, "web", "main")["metadata"]["labels"][labels.CLUSTER] == "other"
    assert fake_api.server.app_writes() == []
