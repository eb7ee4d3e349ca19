"""cleanup_kubernetes_jobs end to end against the fake API server.

Covers: unconfigured apps are deleted with their ReplicaSets and pods (Foreground propagation);
configured and unmanaged objects are untouched; the kill threshold refuses (exit 1, nothing
deleted) and --force overrides; --dry-run deletes nothing; an empty, missing or unreadable soa
dir is refused (exit 2) even with --force; a service with any file-level error (an instance file
naming no instance, a broken file of another cluster, deploy.yaml, service.yaml, deployments.json,
an unreadable or looping service directory) keeps all its apps, says so, and exits 1; `-c` is
honoured; a failed delete gives exit 1; `python -m` works.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from conftest import FakeApi
from soa_builders import deployments_doc, write_tree

from paasta_lite.cleanup_kubernetes_jobs import cleanup_kubernetes_jobs
from paasta_lite.setup_kubernetes_job import setup_kubernetes_job

CLUSTER = "c1"
SERVICES = ("alpha", "beta", "gamma", "delta")


def service_files(name: str, cluster: str = CLUSTER) -> dict[str, Any]:
    return {f"{name}/service.yaml": {"description": name},
            f"{name}/kubernetes-{cluster}.yaml": {"main": {"instances": 1}},
            f"{name}/deployments.json": deployments_doc({f"{cluster}.main": "a" * 40}, service=name)}


@pytest.fixture
def soa(tmp_path: Path) -> Path:
    files: dict[str, Any] = {}
    for name in SERVICES:
        files.update(service_files(name))
    return write_tree(tmp_path / "soa", files)


@pytest.fixture
def env(fake_api: FakeApi, tmp_path: Path) -> dict[str, str]:
    system = tmp_path / "system"
    system.mkdir()
    (system / "cluster.json").write_text(json.dumps({"cluster": CLUSTER, "docker_registry": "registry.test"}))
    return {"KUBECONFIG": fake_api.kubeconfig, "PAASTA_SYSTEM_CONFIG_DIR": str(system), "KUBECONTEXT": ""}


@pytest.fixture
def deployed(fake_api: FakeApi, soa: Path, env: dict[str, str]) -> Path:
    """Every service set up and settled (ReplicaSets and pods exist); counters reset."""
    result = CliRunner().invoke(setup_kubernetes_job, ["-d", str(soa)], env=env)
    assert result.exit_code == 0, result.output
    fake_api.server.settle_all()
    fake_api.server.reset_counts()
    return soa


def cleanup(soa: Path, env: dict[str, str], *args: str) -> Result:
    return CliRunner().invoke(cleanup_kubernetes_jobs, ["-d", str(soa), *args], env=env)


def names(fake_api: FakeApi, plural: str = "deployments") -> list[str]:
    return sorted(obj["metadata"]["name"] for obj in fake_api.server.list_objects(plural))


def test_removed_instance_is_deleted_with_its_pods(fake_api: FakeApi, deployed: Path,
                                                    env: dict[str, str]) -> None:
    (deployed / "delta" / f"kubernetes-{CLUSTER}.yaml").unlink()
    result = cleanup(deployed, env)
    assert result.exit_code == 0, result.output
    assert ("deleted paastasvc-delta/delta-main (delta.main): delta.main is no longer configured for "
            "cluster c1") in result.stdout
    assert result.stdout.splitlines()[-1] == "cluster c1: 1 deleted, 0 failed, 3 kept, 4 managed apps"
    assert names(fake_api) == ["alpha-main", "beta-main", "gamma-main"]
    children = names(fake_api, "pods") + names(fake_api, "replicasets")
    assert children and not any(name.startswith("delta") for name in children)
    assert fake_api.server.deletions == [("deployments", "paastasvc-delta", "delta-main", "Foreground")]


def test_nothing_to_delete_makes_no_writes(fake_api: FakeApi, deployed: Path, env: dict[str, str]) -> None:
    result = cleanup(deployed, env)
    assert result.exit_code == 0, result.output
    assert fake_api.server.app_writes() == []


def test_unmanaged_objects_are_never_touched(fake_api: FakeApi, deployed: Path, env: dict[str, str]) -> None:
    fake_api.server.put_object("deployments", {"metadata": {
        "name": "hand-made", "namespace": "paastasvc-alpha", "labels": {"paasta.yelp.com/service": "gone"}}})
    shutil.rmtree(deployed / "delta")
    result = cleanup(deployed, env, "--force")
    assert result.exit_code == 0, result.output
    assert "hand-made" in names(fake_api) and "delta-main" not in names(fake_api)


def test_kill_threshold_refuses_then_force_deletes(fake_api: FakeApi, deployed: Path,
                                                   env: dict[str, str]) -> None:
    for name in ("beta", "gamma", "delta"):
        shutil.rmtree(deployed / name)
    refused = cleanup(deployed, env)
    assert refused.exit_code == 1
    assert "refusing to delete 3 of 4 managed apps (75%)" in refused.stderr
    assert "--force" in refused.stderr
    assert fake_api.server.app_writes() == [] and len(names(fake_api)) == 4
    assert cleanup(deployed, env, "--kill-threshold", "0.8").exit_code == 0
    assert names(fake_api) == ["alpha-main"]


def test_force_overrides_the_threshold(fake_api: FakeApi, deployed: Path, env: dict[str, str]) -> None:
    for name in ("beta", "gamma", "delta"):
        shutil.rmtree(deployed / name)
    result = cleanup(deployed, env, "--force")
    assert result.exit_code == 0, result.output
    assert names(fake_api) == ["alpha-main"]


def test_dry_run_deletes_nothing(fake_api: FakeApi, deployed: Path, env: dict[str, str]) -> None:
    shutil.rmtree(deployed / "delta")
    result = cleanup(deployed, env, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would delete paastasvc-delta/delta-main (delta.main)" in result.stdout
    assert result.stdout.splitlines()[-1].startswith("dry run: cluster c1: 1 would delete")
    assert fake_api.server.app_writes() == [] and len(names(fake_api)) == 4


@pytest.mark.parametrize("force", [[], ["--force"]])
def test_empty_or_missing_soa_dir_is_refused(fake_api: FakeApi, deployed: Path, env: dict[str, str],
                                             tmp_path: Path, force: list[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    refused = cleanup(empty, env, *force)
    assert refused.exit_code == 2 and "contains no services" in refused.stderr
    missing = cleanup(tmp_path / "missing", env, *force)
    assert missing.exit_code == 2 and "does not exist" in missing.stderr
    assert fake_api.server.requests == [] and len(names(fake_api)) == 4


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads unreadable directories")
def test_unreadable_soa_dir_is_refused(fake_api: FakeApi, deployed: Path, env: dict[str, str]) -> None:
    deployed.chmod(0)
    try:
        result = cleanup(deployed, env, "--force")
    finally:
        deployed.chmod(0o755)
    assert result.exit_code == 2 and len(names(fake_api)) == 4


def test_service_that_fails_to_load_keeps_its_apps(fake_api: FakeApi, deployed: Path,
                                                   env: dict[str, str]) -> None:
    (deployed / "beta" / f"kubernetes-{CLUSTER}.yaml").write_text("main: [unclosed\n")
    result = cleanup(deployed, env, "-v", "--force")
    assert result.exit_code == 1, result.output  # a cron run must not hide a broken service
    assert "warning: service beta has a configuration error, so none of its apps is deleted" in result.stderr
    assert ("kept paastasvc-beta/beta-main: service beta has a configuration error; none of its apps is "
            "deleted") in result.stdout
    assert result.stdout.splitlines()[-1] == "cluster c1: 0 deleted, 0 failed, 4 kept, 4 managed apps"
    assert len(names(fake_api)) == 4


def assert_beta_kept(fake_api: FakeApi, result: Result, reason: str) -> None:
    """Nothing deleted, exit 1, and the output says which app was kept and why."""
    assert result.exit_code == 1, result.output
    assert fake_api.server.deletions == [] and len(names(fake_api)) == 4
    assert ("kept paastasvc-beta/beta-main: service beta has a configuration error; none of its apps is "
            "deleted") in result.stdout  # without -v
    warning = "warning: service beta has a configuration error, so none of its apps is deleted: "
    assert warning in result.stderr and reason in result.stderr
    # every app stays: the three configured ones and beta's, held
    assert result.stdout.splitlines()[-1] == "cluster c1: 0 deleted, 0 failed, 4 kept, 4 managed apps"


@pytest.mark.parametrize(
    "content",
    ["", "# main:\n#   instances: 1\n", "null\n", "{}\n", "_base: &base\n  cpus: 1\n", "[]\n", "main\n"],
    ids=["empty", "comments", "null", "empty-mapping", "cut-short", "list", "scalar"],
)
def test_an_instance_file_without_instances_deletes_nothing(fake_api: FakeApi, deployed: Path,
                                                           env: dict[str, str], content: str) -> None:
    path = deployed / "beta" / f"kubernetes-{CLUSTER}.yaml"
    path.write_text(content)
    result = cleanup(deployed, env, "--force")
    assert_beta_kept(fake_api, result, f"{path}: ")
    assert "to remove every instance of cluster 'c1', delete the file instead" in result.stderr
    path.unlink()  # the way to say "remove every instance of beta on c1"
    assert cleanup(deployed, env, "--force").exit_code == 0
    assert "beta-main" not in names(fake_api)


def test_a_broken_file_of_another_cluster_keeps_the_service(fake_api: FakeApi, deployed: Path,
                                                            env: dict[str, str]) -> None:
    (deployed / "beta" / f"kubernetes-{CLUSTER}.yaml").unlink()
    (deployed / "beta" / "kubernetes-c2.yaml").write_text("main: [unclosed\n")
    result = cleanup(deployed, env, "--force")
    assert_beta_kept(fake_api, result, "beta/kubernetes-c2.yaml: is not valid YAML")


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("deployments.json", "{ torn", "beta/deployments.json: is not valid JSON"),
        ("deploy.yaml", "pipline: []\n", "beta/deploy.yaml, field 'pipline': unknown field (did you mean"),
        ("service.yaml", "- not a mapping\n", "beta/service.yaml: must be a mapping at the top level"),
    ],
)
def test_any_file_level_error_keeps_the_service(fake_api: FakeApi, deployed: Path, env: dict[str, str],
                                                name: str, content: str, reason: str) -> None:
    (deployed / "beta" / f"kubernetes-{CLUSTER}.yaml").write_text("other: {}\n")  # main removed...
    (deployed / "beta" / name).write_text(content)  # ...but the service is in doubt
    result = cleanup(deployed, env, "--force")
    assert_beta_kept(fake_api, result, reason)


@pytest.mark.parametrize("how", ["symlink-loop", "file"])
def test_an_unreadable_service_directory_keeps_its_apps(fake_api: FakeApi, deployed: Path,
                                                        env: dict[str, str], how: str) -> None:
    beta = deployed / "beta"
    shutil.rmtree(beta)
    if how == "symlink-loop":
        os.symlink("beta", beta)
    else:
        beta.write_text("a file where the service directory should be\n")
    result = cleanup(deployed, env, "--force")
    reason = "is a symlink loop" if how == "symlink-loop" else "is not a directory"
    assert_beta_kept(fake_api, result, f"{beta}: {reason}")


def test_an_empty_service_directory_keeps_its_apps(fake_api: FakeApi, deployed: Path,
                                                   env: dict[str, str]) -> None:
    beta = deployed / "beta"
    shutil.rmtree(beta)
    beta.mkdir()
    (beta / ".hidden").write_text("editors and checkouts leave these\n")
    result = cleanup(deployed, env, "--force")
    assert_beta_kept(fake_api, result, f"{beta}: is an empty service directory; none of its apps is deleted")
    shutil.rmtree(beta)  # removing the directory is how a service is removed
    assert cleanup(deployed, env, "--force").exit_code == 0
    assert "beta-main" not in names(fake_api)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads directories whatever their mode")
def test_a_service_directory_without_permission_keeps_its_apps(fake_api: FakeApi, deployed: Path,
                                                               env: dict[str, str]) -> None:
    beta = deployed / "beta"
    beta.chmod(0o100)  # can be entered but not listed: its files "do not exist" to a careless reader
    try:
        result = cleanup(deployed, env, "--force")
    finally:
        beta.chmod(0o755)
    assert_beta_kept(fake_api, result, "is not readable (permission denied)")


def test_cluster_flag_is_honoured(fake_api: FakeApi, deployed: Path, env: dict[str, str]) -> None:
    result = cleanup(deployed, env, "-c", "c2", "--force", "-v")
    assert result.exit_code == 0, result.output
    assert "kept paastasvc-alpha/alpha-main: belongs to cluster c1" in result.stdout
    assert result.stdout.splitlines()[-1] == "cluster c2: 0 deleted, 0 failed, 0 kept, 0 managed apps"
    assert len(names(fake_api)) == 4


def test_failed_delete_is_exit_1(fake_api: FakeApi, deployed: Path, env: dict[str, str]) -> None:
    shutil.rmtree(deployed / "delta")
    fake_api.server.fail_next("DELETE", "delta-main$", 403, message="forbidden: RBAC says no")
    result = cleanup(deployed, env)
    assert result.exit_code == 1
    expected = "failed to delete paastasvc-delta/delta-main (delta.main): forbidden: RBAC says no"
    assert expected in result.stderr


def test_transient_delete_errors_are_retried(fake_api: FakeApi, deployed: Path,
                                            env: dict[str, str]) -> None:
    shutil.rmtree(deployed / "delta")
    fake_api.server.fail_next("DELETE", "delta-main$", 503, times=2)
    assert cleanup(deployed, env).exit_code == 0
    assert "delta-main" not in names(fake_api)


def test_runs_as_a_module() -> None:
    done = subprocess.run([sys.executable, "-m", "paasta_lite.cleanup_kubernetes_jobs", "--help"],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and "--kill-threshold" in done.stdout


def test_deletions_are_recorded_in_the_deploy_log(fake_api: FakeApi, deployed: Path, env: dict[str, str],
                                                 private_home: Path) -> None:
    shutil.rmtree(deployed / "delta")
    assert cleanup(deployed, env).exit_code == 0
    log = private_home / ".paasta_lite" / "logs" / "delta" / "deploy.jsonl"
    events = [json.loads(line) for line in log.read_text().splitlines()]
    (event,) = [e for e in events if e["message"].startswith("cleanup_kubernetes_jobs")]
    assert event["instance"] == "main" and event["cluster"] == CLUSTER
    assert event["message"].startswith("cleanup_kubernetes_jobs: deleted paastasvc-delta/delta-main")
