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

from paasta_lite.config.soa_config import SoaDir, parse_pipeline
from paasta_lite.errors import ConfigError

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
            "not-a-dir": "x",
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
    assert service.warnings == ()


def test_pipeline_warns_about_groups_not_in_it(tmp_path: Path) -> None:
    files = {**simple_service("svc", "c1", main={}), "svc/deploy.yaml": {"pipeline": [{"step": "x"}]}}
    (warning,) = soa(tmp_path, files).load_service("svc").warnings
    assert "deploy group 'c1.main' is used by instances but is not a step" in warning.message


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
        ("- a\n- b\n", "must be a mapping at the top level (got list)"),
        ("just text\n", "must be a mapping at the top level (got str)"),
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


def test_empty_files_are_fine(tmp_path: Path) -> None:
    service = soa(tmp_path, {"svc/service.yaml": "", "svc/kubernetes-c1.yaml": ""}).load_service("svc")
    assert service.instances == {"c1": {}} and service.instance_names("c1") == frozenset()


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
