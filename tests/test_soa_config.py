"""soa_config: service.yaml defaults overlaid by instances, templates and anchors, deploy_group
defaults and formatting, listing, per-service and per-instance isolation, deploy.yaml pipelines,
ignored PaaSTA keys (one warning each), unknown keys (error with a hint), bad names, and hostile or
broken files (always a ConfigError naming the file, never "no instances")."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from soa_builders import GOOD_SHA, deployments_doc, simple_service, write_tree

from paasta_lite.config.deploy_yaml import parse_pipeline
from paasta_lite.config.soa_config import SoaDir
from paasta_lite.errors import ConfigError, Problem

ANCHORS = """\
_base: &base
  cpus: 0.5
  env: {A: "1"}
main:
  <<: *base
  instances: 3
canary:
  <<: *base
  env: {B: "2"}
"""


def soa(tmp_path: Path, files: dict[str, Any]) -> SoaDir:
    return SoaDir(write_tree(tmp_path / "soa", files))


def problems_of(excinfo: pytest.ExceptionInfo[ConfigError]) -> list[str]:
    return [str(p) for p in excinfo.value.problems]


def test_service_yaml_defaults_are_overlaid_by_the_instance(tmp_path: Path) -> None:
    soa_dir = soa(
        tmp_path,
        {
            "svc/service.yaml": {
                "description": "d", "cpus": 2, "env": {"A": "base", "B": "base"}, "args": ["x", "y"],
            },
            "svc/kubernetes-c1.yaml": {
                "main": {"env": {"B": "own", "C": "own"}, "args": ["z"]},
                "other": {},
            },
        },
    )
    service = soa_dir.load_service("svc")
    main = service.instances["c1"]["main"]
    assert dict(main.env) == {"A": "base", "B": "own", "C": "own"}
    assert main.args == ("z",)
    assert main.cpus == 2.0
    other = service.instances["c1"]["other"]
    assert other.args == ("x", "y") and dict(other.env) == {"A": "base", "B": "base"}
    assert service.description == "d"


def test_templates_are_never_instances_and_anchors_merge(tmp_path: Path) -> None:
    soa_dir = soa(tmp_path, {"svc/kubernetes-c1.yaml": ANCHORS})
    service = soa_dir.load_service("svc")
    assert sorted(service.instances["c1"]) == ["canary", "main"]
    assert service.instance_names("c1") == {"canary", "main"}
    main, canary = service.instances["c1"]["main"], service.instances["c1"]["canary"]
    assert (main.cpus, main.instances, dict(main.env)) == (0.5, 3, {"A": "1"})
    assert dict(canary.env) == {"B": "2"}  # YAML merge keys replace a whole key, like PaaSTA


def test_deploy_group_default_and_formatting(tmp_path: Path) -> None:
    soa_dir = soa(
        tmp_path,
        {
            "svc/service.yaml": {"deploy_group": "{cluster}.everything"},
            "svc/kubernetes-c1.yaml": {"a": {}, "b": {"deploy_group": "prod.{instance}-{service}"}},
            "svc/kubernetes-c2.yaml": {"c": {}},
            "other/kubernetes-c1.yaml": {"main": {}},
        },
    )
    svc = soa_dir.load_service("svc")
    assert svc.instances["c1"]["a"].deploy_group == "c1.everything"
    assert svc.instances["c1"]["b"].deploy_group == "prod.b-svc"
    assert svc.instances["c2"]["c"].deploy_group == "c2.everything"
    assert soa_dir.load_service("other").instances["c1"]["main"].deploy_group == "c1.main"


def test_defaults_follow_the_reference(tmp_path: Path) -> None:
    config = soa(tmp_path, {"svc/kubernetes-c1.yaml": {"main": None}}).load_service("svc").instances["c1"][
        "main"
    ]
    assert (config.instances, config.cpus, config.cpu_burst_add, config.mem, config.disk) == (
        1, 1.0, 1.0, 4096.0, 1024.0,
    )
    assert config.bounce_margin_factor == 0.95
    assert config.container_port == 8888
    assert config.bounce_method == "crossover"
    assert config.healthcheck_mode is None  # no probes unless asked for (PaaSTA: not in mesh)
    assert config.namespace == "paastasvc-svc"
    assert config.source.endswith("svc/kubernetes-c1.yaml")
    assert config.job_id == "svc.main"


def test_listing_services_clusters_and_instances(tmp_path: Path) -> None:
    soa_dir = soa(
        tmp_path,
        {
            **simple_service("b", "c2", x={}),
            **simple_service("a", "c1", main={}, canary={}),
            "a/kubernetes-c2.yaml": {"main": {}},
            "a/tron-c1.yaml": {"job": {}},
            "_shared/secrets/x.json": {},
            ".git/config": "x",
            "README.md": "x",
        },
    )
    assert soa_dir.list_services() == ["a", "b"]
    assert soa_dir.clusters_of("a") == ["c1", "c2"]
    assert soa_dir.clusters_of("b") == ["c2"]
    service = soa_dir.load_service("a")
    assert service.clusters == ("c1", "c2")
    assert sorted(service.instances["c1"]) == ["canary", "main"]
    only_c2 = soa_dir.load_service("a", clusters=["c2"])
    assert list(only_c2.instances) == ["c2"]
    cluster = soa_dir.instances_for_cluster("c1")
    assert [c.job_id for c in cluster.instances] == ["a.canary", "a.main"]
    assert sorted(cluster.services) == ["a", "b"] and cluster.errors == {}


def test_missing_soa_dir_raises_and_empty_returns_nothing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        SoaDir(tmp_path / "missing").list_services()
    with pytest.raises(ConfigError, match="does not exist"):
        SoaDir(tmp_path / "missing").instances_for_cluster("c1")
    (tmp_path / "empty").mkdir()
    assert SoaDir(tmp_path / "empty").list_services() == []
    assert SoaDir(tmp_path / "empty").instances_for_cluster("c1").instances == []
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is not a directory"):
        SoaDir(tmp_path / "file").list_services()


def test_one_broken_service_does_not_stop_the_others(tmp_path: Path) -> None:
    soa_dir = soa(
        tmp_path,
        {
            **simple_service("good", "c1", main={}),
            "broken/kubernetes-c1.yaml": "main: {cpus: [\n",
        },
    )
    cluster = soa_dir.instances_for_cluster("c1")
    assert [c.job_id for c in cluster.instances] == ["good.main"]
    assert list(cluster.errors) == ["broken"]
    assert "broken/kubernetes-c1.yaml: is not valid YAML (line" in str(cluster.errors["broken"])


def test_broken_instance_is_recorded_and_siblings_load(tmp_path: Path) -> None:
    soa_dir = soa(tmp_path, simple_service("svc", "c1", main={}, bad={"cpus": "lots"}, Upper={}))
    service = soa_dir.load_service("svc")
    assert list(service.instances["c1"]) == ["main"]
    assert sorted(service.invalid_instances["c1"]) == ["Upper", "bad"]
    assert service.instance_names("c1") == {"main", "bad", "Upper"}
    cluster = soa_dir.instances_for_cluster("c1")
    assert sorted(cluster.instance_errors) == ["svc.Upper", "svc.bad"]
    messages = [str(p) for p in service.problems]
    assert any("instance 'bad', field 'cpus': must be a number (got 'lots')" in m for m in messages)
    assert any("must be lower case (try 'upper')" in m for m in messages)
    assert not any("Additional properties" in m for m in messages)


def test_problem_names_file_instance_and_field(tmp_path: Path) -> None:
    soa_dir = soa(tmp_path, simple_service("svc", "c1", main={"extra_volumes": [{"hostPath": "/h"}]}))
    (problem,) = soa_dir.load_service("svc").problems
    assert problem.path.endswith("svc/kubernetes-c1.yaml")
    assert problem.instance == "main"
    assert problem.field == "extra_volumes[0]"
    assert "'containerPath' is required" in problem.message


def test_every_problem_of_an_instance_is_reported(tmp_path: Path) -> None:
    body = {"cpus": 0, "mem": 1, "bounce_method": "yolo", "env": {"1BAD": "x"}, "instancez": 1}
    problems = soa(tmp_path, simple_service("svc", "c1", main=body)).load_service("svc").problems
    fields = {p.field for p in problems}
    assert {"cpus", "mem", "bounce_method", "env", "instancez"} <= fields


def test_ignored_paasta_keys_warn_once_each(tmp_path: Path) -> None:
    soa_dir = soa(
        tmp_path,
        {
            "svc/service.yaml": {"description": "d", "owner": "team", "pool": "default"},
            "svc/kubernetes-c1.yaml": {
                "a": {"registrations": ["svc.a"], "pool": "x"},
                "b": {"registrations": ["svc.b"]},
            },
            "svc/monitoring.yaml": {"team": "t"},
            "svc/tron-c1.yaml": {},
        },
    )
    service = soa_dir.load_service("svc")
    assert set(service.instances["c1"]) == {"a", "b"}
    keyed = [(os.path.basename(w.path), w.field) for w in service.warnings]
    assert len(keyed) == len(set(keyed))
    assert ("kubernetes-c1.yaml", "registrations") in keyed
    assert ("kubernetes-c1.yaml", "pool") in keyed
    assert ("service.yaml", "owner") in keyed and ("service.yaml", "pool") in keyed
    assert ("monitoring.yaml", None) in keyed and ("tron-c1.yaml", None) in keyed
    assert all("ignored" in w.message for w in service.warnings)


def test_unknown_key_is_an_error_with_did_you_mean(tmp_path: Path) -> None:
    soa_dir = soa(tmp_path, simple_service("svc", "c1", main={"intances": 3}))
    (problem,) = soa_dir.load_service("svc").problems
    assert problem.field == "intances"
    assert "unknown field (did you mean 'instances'?)" in problem.message


def test_unknown_key_in_service_yaml_fails_the_service(tmp_path: Path) -> None:
    soa_dir = soa(tmp_path, {"svc/service.yaml": {"cpu": 1}, "svc/kubernetes-c1.yaml": {"main": {}}})
    with pytest.raises(ConfigError) as excinfo:
        soa_dir.load_service("svc")
    assert "service.yaml, field 'cpu': unknown field (did you mean 'cpus'?)" in str(excinfo.value)


def test_semantic_rules(tmp_path: Path) -> None:
    soa_dir = soa(
        tmp_path,
        simple_service(
            "svc", "c1",
            both={"cmd": "run", "args": ["x"]},
            nocmd={"healthcheck_mode": "cmd"},
            minmax={"min_instances": 5, "max_instances": 2},
        ),
    )
    messages = {p.instance: p.message for p in soa_dir.load_service("svc").problems}
    assert messages == {
        "both": "set either cmd or args, not both",
        "nocmd": "healthcheck_mode cmd needs healthcheck_cmd",
        "minmax": "min_instances (5) is above max_instances (2)",
    }


@pytest.mark.parametrize("name", ["..", "../soa", "a/b", ".", "Svc", "s.x"])
def test_bad_service_names_are_rejected(tmp_path: Path, name: str) -> None:
    soa_dir = soa(tmp_path, simple_service("svc"))
    with pytest.raises(ConfigError) as excinfo:
        soa_dir.load_service(name)
    assert "service name" in str(excinfo.value)


def test_unknown_service_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such service: 'nope'"):
        soa(tmp_path, simple_service("svc")).load_service("nope")


def test_service_dir_with_bad_name_is_an_error_not_skipped(tmp_path: Path) -> None:
    soa_dir = soa(tmp_path, {**simple_service("good"), **simple_service("Bad")})
    cluster = soa_dir.instances_for_cluster("c1")
    assert list(cluster.errors) == ["Bad"]
    assert "must be lower case" in str(cluster.errors["Bad"])


def test_deploy_yaml_pipeline(tmp_path: Path) -> None:
    deploy = {
        "pipeline": [
            {"step": "itest"},
            {"step": "push-to-registry"},
            {"step": "command-thing"},
            {"step": "c1.canary", "wait_for_deployment": True, "trigger_next_step_manually": True},
            {"parallel": [{"step": "a.main"}, {"step": "b.main", "wait_for_deployment": True}]},
            {"step": "c1.main"},
        ]
    }
    files = {**simple_service("svc", "c1", canary={"deploy_group": "c1.canary"}), "svc/deploy.yaml": deploy}
    service = soa(tmp_path, files).load_service("svc")
    assert service.deploy_groups == ("c1.canary", "a.main", "b.main", "c1.main")
    assert service.wait_for_deployment_groups == {"c1.canary", "b.main"}
    unused = {w.field: w.message for w in service.warnings}
    assert unused == {
        "pipeline[4].parallel[0].step": "deploy group 'a.main' is not used by any instance",
        "pipeline[4].parallel[1].step": "deploy group 'b.main' is not used by any instance",
        "pipeline[5].step": "deploy group 'c1.main' is not used by any instance (did you mean 'c1.canary'?)",
    }


def test_pipeline_warns_about_groups_not_in_it(tmp_path: Path) -> None:
    files = {**simple_service("svc", "c1", main={}), "svc/deploy.yaml": {"pipeline": [{"step": "x"}]}}
    warnings = [w.message for w in soa(tmp_path, files).load_service("svc").warnings]
    assert warnings == ["deploy group 'c1.main' is used by instances but is not a step of the pipeline",
                        "deploy group 'x' is not used by any instance"]


def test_bad_deploy_yaml_fails_the_service(tmp_path: Path) -> None:
    files = {**simple_service("svc"), "svc/deploy.yaml": {"pipeline": [{"step": 3}]}}
    with pytest.raises(ConfigError) as excinfo:
        soa(tmp_path, files).load_service("svc")
    (problem,) = excinfo.value.problems
    assert problem.path.endswith("deploy.yaml") and problem.field == "pipeline[0].step"


def test_parse_pipeline_without_pipeline() -> None:
    assert parse_pipeline({}) == ((), frozenset())


def test_deployments_json_is_attached(tmp_path: Path) -> None:
    files = {**simple_service("svc"), "svc/deployments.json": deployments_doc({"c1.main": GOOD_SHA})}
    service = soa(tmp_path, files).load_service("svc")
    assert service.deployments is not None
    version = service.deployments.version_for("c1.main")
    assert version is not None and version.git_sha == GOOD_SHA
    assert soa(tmp_path / "other", simple_service("svc")).load_service("svc").deployments is None


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("- a\n- b\n", "must be a mapping of instance names to settings (got list)"),
        ("just text\n", "must be a mapping of instance names to settings (got str)"),
        ("main: {}\nmain: {}\n", "duplicate key 'main'"),
        ("main: {cpus: 1\n", "is not valid YAML (line"),
        (b"main: {cmd: \xff}\n", "is not valid UTF-8"),
        ("x: !!python/object/apply:os.system [id]\n", "apply:os.system, which is not allowed"),
        ("a: &a [*a]\n", "recursive YAML alias"),
    ],
)
def test_hostile_instance_files_fail_the_service_with_the_file_named(
    tmp_path: Path, content: str | bytes, fragment: str
) -> None:
    soa_dir = soa(tmp_path, {"svc/kubernetes-c1.yaml": content, **simple_service("ok")})
    with pytest.raises(ConfigError) as excinfo:
        soa_dir.load_service("svc")
    text = str(excinfo.value)
    assert "svc/kubernetes-c1.yaml" in text and fragment in text
    assert list(soa_dir.instances_for_cluster("c1").errors) == ["svc"]


def test_empty_service_and_deploy_files_are_fine(tmp_path: Path) -> None:
    files = {"svc/service.yaml": "", "svc/deploy.yaml": "# nothing yet\n",
             "svc/kubernetes-c1.yaml": "main: {}\n"}
    service = soa(tmp_path, files).load_service("svc")
    assert service.instance_names("c1") == frozenset({"main"}) and service.deploy_groups == ()


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("", "defines no instances"),
        ("# every instance commented out\n# main:\n#   cpus: 1\n", "defines no instances"),
        ("null\n", "defines no instances"),
        ("---\n", "defines no instances"),
        ("{}\n", "defines no instances"),
        ("_template: &t\n  cpus: 1\n", "defines no instances"),  # cut short before the instances
        ("- main\n", "must be a mapping of instance names to settings (got list)"),
        ("main\n", "must be a mapping of instance names to settings (got str)"),
        ("3\n", "must be a mapping of instance names to settings (got int)"),
    ],
)
def test_an_instance_file_without_instances_is_an_error_not_no_instances(
    tmp_path: Path, content: str, fragment: str
) -> None:
    soa_dir = soa(tmp_path, {**simple_service("svc"), "svc/kubernetes-c2.yaml": content})
    with pytest.raises(ConfigError) as excinfo:
        soa_dir.load_service("svc")
    (problem,) = excinfo.value.problems
    assert problem.path.endswith("svc/kubernetes-c2.yaml") and fragment in problem.message
    assert "to remove every instance of cluster 'c2', delete the file instead" in problem.message
    assert list(soa_dir.instances_for_cluster("c2").errors) == ["svc"]


def test_instance_body_of_wrong_type(tmp_path: Path) -> None:
    service = soa(tmp_path, {"svc/kubernetes-c1.yaml": {"main": [1], "n": 3}}).load_service("svc")
    messages = {p.instance: p.message for p in service.problems}
    assert messages == {
        "main": "must be a mapping of settings (got list)",
        "n": "must be a mapping of settings (got int)",
    }


def test_non_text_instance_name(tmp_path: Path) -> None:
    service = soa(tmp_path, {"svc/kubernetes-c1.yaml": "123: {}\nok: {}\n"}).load_service("svc")
    assert list(service.instances["c1"]) == ["ok"]
    assert "must be text, got int" in str(service.invalid_instances["c1"]["123"])


def test_directory_and_symlink_loop_where_files_should_be(tmp_path: Path) -> None:
    soa_dir = soa(tmp_path, simple_service("a"))
    (soa_dir.path / "a" / "kubernetes-c2.yaml").mkdir()
    with pytest.raises(ConfigError, match="is a directory, expected a file"):
        soa_dir.load_service("a")
    b = soa_dir.path / "b"
    b.mkdir()
    os.symlink(b / "service.yaml", b / "service.yaml")
    with pytest.raises(ConfigError, match="is a symlink loop"):
        soa_dir.load_service("b")


def test_huge_file_fails_the_service(tmp_path: Path) -> None:
    soa_dir = soa(tmp_path, {"svc/kubernetes-c1.yaml": "# " + "x" * (5 * 1024 * 1024)})
    with pytest.raises(ConfigError, match="is larger than"):
        soa_dir.load_service("svc")


def test_service_dir_that_is_a_broken_symlink_is_an_error(tmp_path: Path) -> None:
    soa_dir = soa(tmp_path, simple_service("good"))
    os.symlink(tmp_path / "unmounted", soa_dir.path / "gone")
    assert "gone" in soa_dir.instances_for_cluster("c1").errors


def test_path_like_cluster_names_are_refused(tmp_path: Path) -> None:
    soa_dir = soa(tmp_path, simple_service("good"))
    with pytest.raises(ConfigError, match="not a valid cluster name"):
        soa_dir.load_service("good", clusters=["../etc"])


def test_short_transposed_typo_gets_a_hint(tmp_path: Path) -> None:
    soa_dir = soa(tmp_path, {"svc/kubernetes-c1.yaml": "main:\n  mme: 128\n"})
    error = soa_dir.instances_for_cluster("c1").instance_errors["svc.main"]
    assert "did you mean 'mem'" in str(error)


# --------------------------------------------------------------------------- unreadable service dirs


def test_service_dir_symlink_loop_is_that_services_error(tmp_path: Path) -> None:
    soa_dir = soa(tmp_path, simple_service("good"))
    os.symlink("loop", soa_dir.path / "loop")  # a symlink to itself
    assert soa_dir.list_services() == ["good", "loop"]
    cluster = soa_dir.instances_for_cluster("c1")
    assert list(cluster.services) == ["good"]
    assert str(cluster.errors["loop"]).endswith("soa/loop: is a symlink loop")


def test_file_where_the_service_dir_should_be_is_an_error(tmp_path: Path) -> None:
    soa_dir = soa(tmp_path, {**simple_service("good"), "beta": "not a directory\n"})
    os.symlink(soa_dir.path / "beta", soa_dir.path / "gamma")  # a symlink to a file
    cluster = soa_dir.instances_for_cluster("c1")
    assert sorted(cluster.errors) == ["beta", "gamma"]
    for name in ("beta", "gamma"):
        assert "is not a directory" in str(cluster.errors[name])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads directories whatever their mode")
def test_unreadable_service_dir_is_an_error_not_no_instances(tmp_path: Path) -> None:
    soa_dir = soa(tmp_path, {**simple_service("good"), **simple_service("locked")})
    locked = soa_dir.path / "locked"
    for mode in (0o000, 0o100, 0o400):  # nothing, search only (no listing), listing only (no files)
        locked.chmod(mode)
        try:
            cluster = soa_dir.instances_for_cluster("c1")
        finally:
            locked.chmod(0o755)
        assert list(cluster.errors) == ["locked"], oct(mode)
        assert "permission denied" in str(cluster.errors["locked"]), oct(mode)


# --------------------------------------------------------------------------- Kubernetes name clashes


def test_instances_with_the_same_kubernetes_name_are_both_invalid(tmp_path: Path) -> None:
    files = simple_service("svc", "c1", main_1={}, **{"main--1": {}}, other={})
    service = soa(tmp_path, files).load_service("svc")
    assert list(service.instances["c1"]) == ["other"]
    assert service.instance_names("c1") == frozenset({"main_1", "main--1", "other"})  # cleanup keeps both
    message = ("instances 'main--1' and 'main_1' both get the Kubernetes name 'svc-main--1' "
               "(sanitising turns '_' into '--'); rename all but one")
    found = sorted((p.instance, p.message) for p in service.problems)
    assert found == [("main--1", message), ("main_1", message)]


def test_a_clash_adds_to_an_instances_other_problems(tmp_path: Path) -> None:
    files = simple_service("svc", "c1", a_b={"cpus": "x"}, **{"a--b": {}})
    service = soa(tmp_path, files).load_service("svc")
    assert [p.field for p in service.invalid_instances["c1"]["a_b"].problems] == ["cpus", None]
    assert not service.instances["c1"]


def test_clashes_are_per_cluster(tmp_path: Path) -> None:
    files = {**simple_service("svc", "c1", main_1={}), "svc/kubernetes-c2.yaml": {"main--1": {}}}
    service = soa(tmp_path, files).load_service("svc")
    assert service.problems == () and list(service.instances["c2"]) == ["main--1"]


# --------------------------------------------------------------------------- deploy.yaml keys and groups


def test_deploy_yaml_unknown_keys_are_errors_with_a_hint(tmp_path: Path) -> None:
    deploy = {
        "pipline": [],
        "pipeline": [
            {"step": "c1.main", "wait_for_deploymnet": True},
            {"parallel": [{"step": "c1.main", "parallel": []}]},
        ],
    }
    with pytest.raises(ConfigError) as excinfo:
        soa(tmp_path, {**simple_service("svc", "c1", main={}), "svc/deploy.yaml": deploy}).load_service("svc")
    found = {(p.field, p.message) for p in excinfo.value.problems}
    assert found == {
        ("pipline", "unknown field (did you mean 'pipeline'?)"),
        ("pipeline[0].wait_for_deploymnet", "unknown field (did you mean 'wait_for_deployment'?)"),
        ("pipeline[1].parallel[0].parallel", "unknown field"),
    }
    assert all(p.path.endswith("svc/deploy.yaml") for p in excinfo.value.problems)


def test_deploy_yaml_paasta_only_step_keys_warn(tmp_path: Path) -> None:
    deploy = {"pipeline": [{"step": "c1.main", "auto_rollback": True, "slack_notify": False}]}
    files = {**simple_service("svc", "c1", main={}), "svc/deploy.yaml": deploy}
    service = soa(tmp_path, files).load_service("svc")
    assert {w.field for w in service.warnings} == {"pipeline[0].auto_rollback", "pipeline[0].slack_notify"}
    assert service.deploy_groups == ("c1.main",)


def test_a_step_no_instance_uses_is_reported_with_a_hint(tmp_path: Path) -> None:
    files = {
        **simple_service("svc", "c1", main={"deploy_group": "prod.main"}),
        "svc/kubernetes-c2.yaml": {"main": {"deploy_group": "prod.canary"}},
        "svc/deploy.yaml": {"pipeline": [{"step": "prod.canary"}, {"step": "prod.mian"}, {"step": "itest"}]},
    }
    soa_dir = soa(tmp_path, files)
    warnings = soa_dir.load_service("svc").warnings
    assert warnings == (
        Problem(str(soa_dir.path / "svc" / "deploy.yaml"),
                "deploy group 'prod.main' is used by instances but is not a step of the pipeline"),
        Problem(str(soa_dir.path / "svc" / "deploy.yaml"),
                "deploy group 'prod.mian' is not used by any instance (did you mean 'prod.main'?)",
                field="pipeline[1].step"),
    )
    # with one cluster loaded, the other clusters' groups are unknown: no guess is made
    only_c2 = soa_dir.load_service("svc", clusters=["c2"]).warnings
    assert not any("not used by any instance" in w.message for w in only_c2)


# --------------------------------------------------------------------------- deployments.json entries


def test_a_malformed_deployments_entry_stops_only_its_instances(tmp_path: Path) -> None:
    doc = deployments_doc({"c1.main": GOOD_SHA, "c1.canary": GOOD_SHA, "c2.main": GOOD_SHA, "old": GOOD_SHA})
    doc["v2"]["deployments"]["c1.main"]["git_sha"] = "abc123"
    del doc["v2"]["deployments"]["c1.canary"]["docker_image"]
    doc["v2"]["deployments"]["old"]["git_sha"] = None
    files = {
        **simple_service("svc", "c1", main={}, canary={}, other={}),
        "svc/kubernetes-c2.yaml": {"main": {"deploy_group": "c1.main"}},
        "svc/deployments.json": doc,
    }
    service = soa(tmp_path, files).load_service("svc")
    assert sorted(service.instances["c1"]) == ["canary", "main", "other"]  # the configs are fine
    assert service.deployments is not None and sorted(service.deployments.deployments) == ["c2.main"]
    problems = {p.field: p.message for p in service.deployment_problems}
    assert problems == {
        "v2.deployments.c1.canary": "docker_image is missing; deploy group 'c1.canary' is not deployed until "
        "this entry is fixed (generate_deployments_for_service rewrites it) (needed by canary on c1)",
        "v2.deployments.c1.main": "git_sha must be a full commit sha, 40 lower-case hexadecimal characters "
        "(got 'abc123'); deploy group 'c1.main' is not deployed until this entry is fixed "
        "(generate_deployments_for_service rewrites it) (needed by main on c1, main on c2)",
    }
    (unused,) = [w for w in service.warnings if w.field == "v2.deployments.old"]
    assert unused.message.startswith("git_sha is missing;") and unused.message.endswith(
        "(no instance uses this deploy group)")
