"""`paasta validate`, `list`, `list-clusters`, `info` through click's CliRunner on the real group,
and `--help` of the group and of every registered command without any system config.

validate fails (exit 1) on every doubt: an instance file naming no instance, an unreadable service
directory, instances with the same Kubernetes name, unknown deploy.yaml keys, a malformed
deployments.json entry (naming the instances it stops); a pipeline step no instance uses warns."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from soa_builders import GOOD_SHA, deployments_doc, simple_service, write_tree

from paasta_lite.cli.main import COMMANDS, cli


@pytest.fixture(autouse=True)
def no_system_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAASTA_SYSTEM_CONFIG_DIR", str(tmp_path / "no-etc-paasta"))
    monkeypatch.delenv("PAASTA_SOA_DIR", raising=False)


@pytest.fixture
def soa_dir(tmp_path: Path) -> Path:
    return write_tree(
        tmp_path / "soa",
        {
            **simple_service("good", "c1", main={"instances": 2}, canary={}),
            "good/kubernetes-c2.yaml": {"main": {}},
            "good/deploy.yaml": {"pipeline": [{"step": g} for g in ("c1.canary", "c1.main", "c2.main")]},
            "good/deployments.json": deployments_doc({"c1.main": GOOD_SHA}, "good"),
            **simple_service("bad", "c1", main={"cpus": "x", "intances": 1}, Upper={}, fine={}),
        },
    )


def run(*args: str, cwd: Path | None = None) -> Result:
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(cli, list(args), catch_exceptions=False)
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def test_validate_valid_service_exits_0(soa_dir: Path) -> None:
    result = run("validate", "-s", "good", "-d", str(soa_dir))
    assert result.exit_code == 0, result.output
    assert "✓ good: 3 valid instance(s) on 2 cluster(s)" in result.output


def test_validate_invalid_service_lists_every_problem(soa_dir: Path) -> None:
    result = run("validate", "-s", "bad", "-d", str(soa_dir))
    assert result.exit_code == 1
    assert "✗ bad: 3 problem(s)" in result.output
    assert "instance 'main', field 'cpus': must be a number (got 'x')" in result.output
    assert "field 'intances': unknown field (did you mean 'instances'?)" in result.output
    assert "must be lower case (try 'upper')" in result.output
    assert "Traceback" not in result.output


def test_validate_all(soa_dir: Path) -> None:
    result = run("validate", "--all", "-d", str(soa_dir))
    assert result.exit_code == 1
    assert "✓ good" in result.output and "✗ bad" in result.output
    assert "1 of 2 service(s) invalid" in result.output


def test_validate_in_a_service_directory(soa_dir: Path) -> None:
    assert run("validate", cwd=soa_dir / "good").exit_code == 0
    result = run("validate", cwd=soa_dir / "bad")
    assert result.exit_code == 1 and "✗ bad" in result.output


def test_validate_without_a_service_is_a_usage_error(tmp_path: Path, soa_dir: Path) -> None:
    result = run("validate", cwd=tmp_path)
    assert result.exit_code == 2 and "pass -s SERVICE or --all" in result.output
    both = run("validate", "-s", "good", "--all", "-d", str(soa_dir))
    assert both.exit_code == 2


def test_validate_unloadable_service(soa_dir: Path) -> None:
    (soa_dir / "good" / "service.yaml").write_bytes(b"\xff")
    broken = run("validate", "-s", "good", "-d", str(soa_dir))
    assert broken.exit_code == 1 and "is not valid UTF-8" in broken.output


def test_validate_warns_about_ignored_keys_but_passes(tmp_path: Path) -> None:
    soa = write_tree(tmp_path / "soa", simple_service("svc", "c1", main={"pool": "x"}))
    result = run("validate", "-s", "svc", "-d", str(soa))
    assert result.exit_code == 0
    assert "field 'pool': is a PaaSTA key that paasta_lite does not implement; ignored" in result.output


def test_validate_empty_soa_dir(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    result = run("validate", "--all", "-d", str(tmp_path / "empty"))
    assert result.exit_code == 0 and "no services in" in result.output


def test_list(soa_dir: Path) -> None:
    result = run("list", "-d", str(soa_dir))
    assert result.exit_code == 0 and result.output.split() == ["bad", "good"]


def test_list_instances(soa_dir: Path) -> None:
    result = run("list", "-i", "-d", str(soa_dir))
    assert result.exit_code == 1  # 'bad' has an invalid instance, reported on stderr
    assert result.stdout.split() == ["bad.fine", "good.canary", "good.main"]
    on_c2 = run("list", "-i", "-c", "c2", "-d", str(soa_dir))
    assert on_c2.output.split() == ["good.main"]


def test_list_instances_reports_broken_services(soa_dir: Path) -> None:
    (soa_dir / "bad" / "service.yaml").write_text("[")
    result = run("list", "-i", "-d", str(soa_dir))
    assert result.exit_code == 1
    assert "good.main" in result.output and "bad: cannot be loaded" in result.output


def test_list_missing_soa_dir(tmp_path: Path) -> None:
    result = run("list", "-d", str(tmp_path / "missing"))
    assert result.exit_code == 2 and "does not exist" in result.output


def test_list_clusters(soa_dir: Path) -> None:
    result = run("list-clusters", "-d", str(soa_dir))
    assert result.exit_code == 0 and result.output.split() == ["c1", "c2"]


def test_info(soa_dir: Path) -> None:
    result = run("info", "-s", "good", "-d", str(soa_dir))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "Service: good" in lines
    assert "Deploy pipeline: c1.canary -> c1.main -> c2.main" in lines
    assert f"  main: 2 x (1 cpu, 4096 MiB), deploy group c1.main, deployed {GOOD_SHA[:8]}" in lines
    assert "  canary: 1 x (1 cpu, 4096 MiB), deploy group c1.canary, not deployed yet" in lines
    bad = run("info", "-s", "bad", "-d", str(soa_dir))
    assert "  Upper: INVALID (run `paasta validate -s bad`)" in bad.output.splitlines()


def test_info_unknown_service(soa_dir: Path) -> None:
    result = run("info", "-s", "nope", "-d", str(soa_dir))
    assert result.exit_code == 2 and "no such service" in result.output


def test_soa_dir_from_environment(soa_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAASTA_SOA_DIR", str(soa_dir))
    assert run("list").output.split() == ["bad", "good"]


def help_targets() -> Iterator[list[str]]:
    yield ["--help"]
    for name in sorted(COMMANDS):
        yield [name, "--help"]


@pytest.mark.parametrize("args", list(help_targets()), ids=" ".join)
def test_help_works_without_system_config(args: list[str]) -> None:
    assert not os.path.exists(os.environ["PAASTA_SYSTEM_CONFIG_DIR"])
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


def test_group_help_lists_every_command() -> None:
    output = run("--help").output
    assert all(name in output for name in COMMANDS)


def test_list_clusters_reports_a_broken_service_and_lists_the_rest(tmp_path: Path) -> None:
    soa_dir = tmp_path / "soa"
    (soa_dir / "good").mkdir(parents=True)
    (soa_dir / "good" / "kubernetes-c1.yaml").write_text("main: {}\n")
    (soa_dir / "Bad").mkdir()
    result = CliRunner().invoke(cli, ["list-clusters", "-d", str(soa_dir)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["c1"]
    assert "Bad" in result.stderr


def test_list_instances_reports_invalid_instances(tmp_path: Path) -> None:
    soa_dir = tmp_path / "soa"
    (soa_dir / "svc").mkdir(parents=True)
    (soa_dir / "svc" / "kubernetes-c1.yaml").write_text("main: {}\nbroken: {cpus: lots}\n")
    result = CliRunner().invoke(cli, ["list", "-i", "-d", str(soa_dir)])
    assert result.exit_code == 1
    assert result.stdout.splitlines() == ["svc.main"]
    assert "broken" in result.stderr and "cpus" in result.stderr


def test_validate_unknown_service_is_a_usage_error(tmp_path: Path) -> None:
    (tmp_path / "soa").mkdir()
    result = run("validate", "-s", "nope", "-d", str(tmp_path / "soa"))
    assert result.exit_code == 2 and "no service 'nope'" in result.output


# --------------------------------------------------------------------------- doubts are errors


@pytest.mark.parametrize("content", ["", "# main: {}\n", "null\n", "[main]\n"])
def test_validate_an_instance_file_without_instances_fails_naming_it(tmp_path: Path, content: str) -> None:
    soa = write_tree(tmp_path / "soa", {**simple_service("svc", "c1"), "svc/kubernetes-c2.yaml": content})
    result = run("validate", "-s", "svc", "-d", str(soa))
    assert result.exit_code == 1
    assert f"  - {soa}/svc/kubernetes-c2.yaml: " in result.output
    assert "to remove every instance of cluster 'c2', delete the file instead" in result.output
    assert "Traceback" not in result.output


def test_validate_all_with_a_looping_or_misplaced_service_directory(soa_dir: Path) -> None:
    os.symlink("loop", soa_dir / "loop")
    (soa_dir / "filed").write_text("not a directory\n")
    result = run("validate", "--all", "-d", str(soa_dir))
    assert result.exit_code == 1
    assert f"  - {soa_dir}/loop: is a symlink loop" in result.output
    assert f"  - {soa_dir}/filed: is not a directory (a service is a directory of files)" in result.output
    assert "✓ good" in result.output and "3 of 4 service(s) invalid" in result.output


def test_validate_instances_with_the_same_kubernetes_name(tmp_path: Path) -> None:
    soa = write_tree(tmp_path / "soa", simple_service("svc", "c1", main_1={}, **{"main--1": {}}, ok={}))
    result = run("validate", "-s", "svc", "-d", str(soa))
    assert result.exit_code == 1
    message = ("instances 'main--1' and 'main_1' both get the Kubernetes name 'svc-main--1' "
               "(sanitising turns '_' into '--'); rename all but one")
    assert f"{soa}/svc/kubernetes-c1.yaml: instance 'main_1': {message}" in result.output
    assert f"{soa}/svc/kubernetes-c1.yaml: instance 'main--1': {message}" in result.output


def test_validate_deploy_yaml_keys_and_unused_steps(tmp_path: Path) -> None:
    deploy = {"pipeline": [{"step": "c1.main", "wait_for_deploymnet": True}, {"step": "c1.mian"}]}
    soa = write_tree(tmp_path / "soa", {**simple_service("svc", "c1", main={}), "svc/deploy.yaml": deploy})
    result = run("validate", "-s", "svc", "-d", str(soa))
    assert result.exit_code == 1
    assert (f"{soa}/svc/deploy.yaml, field 'pipeline[0].wait_for_deploymnet': unknown field "
            "(did you mean 'wait_for_deployment'?)") in result.output
    (soa / "svc" / "deploy.yaml").write_text("pipeline:\n- step: c1.main\n- step: c1.mian\n")
    warned = run("validate", "-s", "svc", "-d", str(soa))
    assert warned.exit_code == 0, warned.output  # a warning, not an error
    assert (f"! {soa}/svc/deploy.yaml, field 'pipeline[1].step': deploy group 'c1.mian' is not used by any "
            "instance (did you mean 'c1.main'?)") in warned.output


def test_validate_a_malformed_deployments_entry_names_its_instances(soa_dir: Path) -> None:
    doc = deployments_doc({"c1.main": GOOD_SHA, "c1.canary": "abc123"}, "good")
    write_tree(soa_dir, {"good/deployments.json": doc})
    result = run("validate", "-s", "good", "-d", str(soa_dir))
    assert result.exit_code == 1
    assert "✗ good: 1 problem(s)" in result.output
    assert (f"{soa_dir}/good/deployments.json, field 'v2.deployments.c1.canary': git_sha must be a full "
            "commit sha, 40 lower-case hexadecimal characters (got 'abc123'); deploy group 'c1.canary' is "
            "not deployed until this entry is fixed (generate_deployments_for_service rewrites it) "
            "(needed by canary on c1)") in result.output
    info = run("info", "-s", "good", "-d", str(soa_dir))
    assert "deploy group c1.canary, its deployments.json entry is malformed" in info.output
    latest = run("get-latest-deployment", "-s", "good", "-l", "c1.canary", "-d", str(soa_dir))
    assert latest.exit_code == 2 and "git_sha must be a full commit sha" in latest.output
    good = run("get-latest-deployment", "-s", "good", "-l", "c1.main", "-d", str(soa_dir))
    assert good.exit_code == 0 and good.output.strip() == GOOD_SHA
