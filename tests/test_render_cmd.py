"""`paasta render`, run through the real `paasta` group with click's CliRunner.

Behaviours covered:
- stdout is exactly the objects the renderer produces (the expected fixture files), namespace
  first and once, as YAML documents (no anchors) or one JSON `v1` List; each Deployment is
  followed by its HorizontalPodAutoscaler (autoscaled instances only) and PodDisruptionBudget;
- the loader's warnings about the instances rendered (autoscaling keys without effect) go to stderr;
- `-i` selects instances; an unknown instance or a cluster without instances is a usage error;
- not-deployed instances are reported on stderr: exit 0 for "all instances", 1 when asked for by
  name; an invalid instance exits 2 after the others are printed, and so does an instance whose
  deployments.json entry is malformed (the file's other deploy groups still render);
- the cluster comes from `-c` or the system config; neither is a clear error; no cluster needed.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from soa_builders import deployments_doc, simple_service, write_tree

from paasta_lite.cli.main import cli

FIXTURES = Path(__file__).parent / "fixtures" / "render"
SOA = str(FIXTURES / "soa")
LONG = "a-service-with-a-really-long-name-that-pushes-every-limit-hard"


def run(*args: str, system_dir: Path = FIXTURES / "system", soa: str = SOA) -> Result:
    runner = CliRunner()
    return runner.invoke(
        cli, ["render", "-d", soa, *args], env={"PAASTA_SYSTEM_CONFIG_DIR": str(system_dir)},
        catch_exceptions=False,
    )


def kinds(documents: list[dict[str, Any]]) -> list[str]:
    return [str(d["kind"]) for d in documents]


def expected(job: str) -> list[dict[str, Any]]:
    return list(yaml.safe_load_all((FIXTURES / "expected" / f"{job}.yaml").read_text()))


def test_one_instance_as_yaml() -> None:
    result = run("-s", "web_app", "-i", "main")
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.stdout))
    assert documents[:2] == expected("web_app.main")
    assert kinds(documents) == ["Namespace", "Deployment", "PodDisruptionBudget"]
    assert "&id" not in result.stdout and "*id" not in result.stdout
    assert result.stderr == ""


def test_json_is_one_list() -> None:
    result = run("-s", "web_app", "-i", "main", "-i", "canary", "-o", "json")
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["apiVersion"], document["kind"]) == ("v1", "List")
    namespace, *_ = expected("web_app.main")
    items = document["items"]
    assert kinds(items) == ["Namespace", *["Deployment", "PodDisruptionBudget"] * 2]
    canary, main = expected("web_app.canary")[1], expected("web_app.main")[1]
    assert [items[0], items[1], items[3]] == [namespace, canary, main]


def test_all_instances_namespace_once_and_problems_on_stderr() -> None:
    result = run("-s", "web_app", "-c", "testcluster")
    assert result.exit_code == 2  # `broken` is invalid
    documents = list(yaml.safe_load_all(result.stdout))
    assert [d["kind"] for d in documents].count("Namespace") == 1
    assert documents[0]["kind"] == "Namespace"
    names = [d["metadata"]["name"] for d in documents if d["kind"] == "Deployment"]
    assert names == sorted(names) and "web--app-main" in names and len(names) == 8
    assert kinds(documents).count("PodDisruptionBudget") == 8
    hpas = [d for d in documents if d["kind"] == "HorizontalPodAutoscaler"]
    assert [d["metadata"]["name"] for d in hpas] == ["web--app-autoscaled"]
    # each instance's objects together, named alike: Deployment, [HPA], PDB (autoscaled sorts first)
    assert kinds(documents[1:4]) == ["Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    for i, document in enumerate(documents[1:], start=1):
        if document["kind"] != "Deployment":
            assert document["metadata"]["name"] == documents[i - 1]["metadata"]["name"]
    assert "web_app.broken: cannot be rendered" in result.stderr
    assert "set either cmd or args, not both" in result.stderr
    assert "skipped web_app.later: not deployed yet" in result.stderr


def test_a_malformed_deployments_entry_stops_only_its_instances(tmp_path: Path) -> None:
    soa = tmp_path / "soa"
    shutil.copytree(FIXTURES / "soa" / "web_app", soa / "web_app")
    document = json.loads((soa / "web_app" / "deployments.json").read_text())
    del document["v2"]["deployments"]["testcluster.canary"]["docker_image"]
    (soa / "web_app" / "deployments.json").write_text(json.dumps(document))
    result = run("-d", str(soa), "-s", "web_app", "-i", "main", "-i", "canary")
    assert result.exit_code == 2
    documents = list(yaml.safe_load_all(result.stdout))
    assert kinds(documents) == ["Namespace", "Deployment", "PodDisruptionBudget"]
    assert documents[:2] == expected("web_app.main")
    assert "web_app.canary: cannot be rendered:" in result.stderr
    assert (f"{soa}/web_app/deployments.json, field 'v2.deployments.testcluster.canary': docker_image is "
            "missing; deploy group 'testcluster.canary' is not deployed until this entry is fixed"
            ) in result.stderr


def test_not_deployed_instance_by_name_exits_1() -> None:
    result = run("-s", "web_app", "-i", "later")
    assert result.exit_code == 1
    assert result.stdout == ""
    assert "not deployed yet" in result.stderr


def test_service_with_only_good_instances_exits_0() -> None:
    result = run("-s", LONG)
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.stdout))
    assert kinds(documents) == ["Namespace", "Deployment", "PodDisruptionBudget"]
    assert all(len(d["metadata"]["name"]) <= 63 for d in documents)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-s", "web_app", "-i", "nope"], "no instance 'nope' of 'web_app' on cluster 'testcluster'"),
        (["-s", "web_app", "-c", "othercluster"], "has no instances on cluster 'othercluster'"),
        (["-s", "no_such_service"], "no such service"),
    ],
)
def test_usage_errors(args: list[str], message: str) -> None:
    result = run(*args)
    assert result.exit_code == 2
    assert message in result.stderr
    assert result.stdout == ""


def test_cluster_is_required_from_flag_or_system_config(tmp_path: Path) -> None:
    (tmp_path / "registry.json").write_text(json.dumps({"docker_registry": "registry.test:5000"}))
    result = run("-s", "web_app", "-i", "main", system_dir=tmp_path)
    assert result.exit_code == 2
    assert "no cluster given" in result.stderr
    with_flag = run("-s", "web_app", "-i", "main", "-c", "testcluster", system_dir=tmp_path)
    assert with_flag.exit_code == 0, with_flag.output
    deployment = list(yaml.safe_load_all(with_flag.stdout))[1]
    main = deployment["spec"]["template"]["spec"]["containers"][0]
    mounted = [m["mountPath"] for m in main["volumeMounts"]]
    assert mounted == ["/etc/shared-config", "/srv/data"]  # the instance's only: no system volumes here


def test_missing_system_config_is_an_error(tmp_path: Path) -> None:
    result = run("-s", "web_app", system_dir=tmp_path / "missing")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_help_lists_render() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert "render" in result.stdout


def test_autoscaled_instance_prints_its_hpa_and_the_warnings_about_it(tmp_path: Path) -> None:
    sha = "c" * 40
    soa = write_tree(tmp_path / "soa", {
        **simple_service("svc", "testcluster", api={
            "max_instances": 4,
            "autoscaling": {"metrics_providers": [
                {"type": "cpu", "setpoint": 0.5},
                {"type": "uwsgi", "moving_average_window_seconds": 300},
            ]},
        }, plain={"instances": 2}),
        "svc/deployments.json": deployments_doc({"testcluster.api": sha, "testcluster.plain": sha}),
    })
    result = run("-s", "svc", "-i", "api", soa=str(soa))
    assert result.exit_code == 0, result.output
    documents = list(yaml.safe_load_all(result.stdout))
    assert kinds(documents) == ["Namespace", "Deployment", "HorizontalPodAutoscaler", "PodDisruptionBudget"]
    assert documents[1]["spec"]["replicas"] == 4  # first deploy at max_instances
    metrics = documents[2]["spec"]["metrics"]
    assert [m["resource"]["name"] for m in metrics] == ["cpu"]
    assert metrics[0]["resource"]["target"]["averageUtilization"] == 50
    assert "warning:" in result.stderr and "'uwsgi' needs PaaSTA's Prometheus adapter" in result.stderr
    assert "autoscaling.metrics_providers[1].type" in result.stderr
    plain = run("-s", "svc", "-i", "plain", soa=str(soa))  # warnings about other instances stay out
    assert plain.exit_code == 0 and plain.stderr == ""
