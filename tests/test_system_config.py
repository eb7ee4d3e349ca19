"""System config: every *.json under the directory, merged in sorted relative-path order (sub-
directories included); last file wins per leaf and `overrides` records it; bad JSON, unreadable
files, missing directories and wrong types give errors naming the file; require_cluster and
require_docker_registry."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from soa_builders import write_tree

from paasta_lite.config.system_config import (
    SystemConfig,
    find_config_files,
    load_system_config,
    parse_system_config,
)
from paasta_lite.config.volumes import Volume
from paasta_lite.errors import ConfigError, NotConfiguredError


def test_files_merge_in_sorted_path_order_including_subdirectories(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "b.json": {"cluster": "from-b"},
            "a.json": {"cluster": "from-a", "docker_registry": "reg-a"},
            "c/00.json": {"cluster": "from-c-subdir"},
            "README": "not json",
            ".hidden.json": {"cluster": "hidden"},
        },
    )
    files = find_config_files(str(tmp_path))
    assert [os.path.relpath(f, tmp_path) for f in files] == ["a.json", "b.json", "c/00.json"]
    config = load_system_config(str(tmp_path))
    assert config.cluster == "from-c-subdir"
    assert config.docker_registry == "reg-a"
    assert config.sources["cluster"] == str(tmp_path / "c/00.json")


def test_last_file_wins_per_leaf_and_overrides_are_recorded(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "10-base.json": {"api_endpoints": {"c1": "http://a", "c2": "http://b"}, "cluster": "c1"},
            "20-local.json": {"api_endpoints": {"c1": "http://local"}},
        },
    )
    config = load_system_config(str(tmp_path))
    assert dict(config.api_endpoints) == {"c1": "http://local", "c2": "http://b"}
    assert config.cluster == "c1"
    assert len(config.overrides) == 1
    note = config.overrides[0]
    assert note.startswith("api_endpoints.c1 (")
    assert "10-base.json overridden by" in note and note.endswith("20-local.json)")


def test_same_value_twice_is_not_an_override() -> None:
    config = parse_system_config([("a.json", {"cluster": "c"}), ("b.json", {"cluster": "c"})], "d")
    assert config.overrides == ()


def test_typed_fields_and_defaults() -> None:
    config = parse_system_config(
        [
            (
                "a.json",
                {
                    "cluster": "c1",
                    "clusters": ["c1", "c2"],
                    "volumes": [{"containerPath": "/x", "hostPath": "/y"}],
                    "log_writer": {"driver": "null"},
                    "default_bounce_overprovision_factor": 1.5,
                    "some_future_key": {"kept": True},
                },
            )
        ],
        "d",
    )
    assert config.clusters == ("c1", "c2")
    assert config.volumes == (Volume("/x", "/y", "RO"),)
    assert config.volumes[0].read_only
    assert config.log_writer["driver"] == "null"
    assert config.default_bounce_overprovision_factor == 1.5
    assert config.raw["some_future_key"] == {"kept": True}
    empty = parse_system_config([], "d")
    assert empty.cluster is None and empty.clusters == () and empty.log_writer["driver"] == "file"
    assert empty.api_client_timeout == 30.0


def test_bad_json_names_file_line_and_column(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.json": {"cluster": "c1"}, "b.json": '{"cluster": "c1",}'})
    with pytest.raises(ConfigError) as excinfo:
        load_system_config(str(tmp_path))
    assert f"{tmp_path / 'b.json'}: is not valid JSON (line 1, column 18)" in str(excinfo.value)


def test_top_level_not_an_object_names_the_file(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.json": "[1, 2]"})
    with pytest.raises(ConfigError, match=r"a\.json: must contain a JSON object"):
        load_system_config(str(tmp_path))


def test_wrong_type_names_the_file_that_set_the_key(tmp_path: Path) -> None:
    write_tree(
        tmp_path,
        {
            "a.json": {"cluster": "c1"},
            "b.json": {"clusters": "c1", "api_endpoints": {"c1": "ftp://x"}},
        },
    )
    with pytest.raises(ConfigError) as excinfo:
        load_system_config(str(tmp_path))
    problems = {p.field: p for p in excinfo.value.problems}
    assert problems["clusters"].path == str(tmp_path / "b.json")
    assert "must be a list" in problems["clusters"].message
    assert problems["api_endpoints.c1"].path == str(tmp_path / "b.json")
    assert "http://" in problems["api_endpoints.c1"].message


def test_wrong_volume_is_located() -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_system_config([("v.json", {"volumes": [{"containerPath": "rel", "hostPath": "/h"}]})], "d")
    (problem,) = excinfo.value.problems
    assert problem.path == "v.json"
    assert problem.field == "volumes[0].containerPath"
    assert "absolute path" in problem.message


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file_is_named(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.json": {"cluster": "c1"}})
    (tmp_path / "a.json").chmod(0)
    try:
        with pytest.raises(ConfigError, match=r"a\.json: is not readable"):
            load_system_config(str(tmp_path))
    finally:
        (tmp_path / "a.json").chmod(0o600)


def test_missing_directory_is_an_error_unless_missing_ok(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(NotConfiguredError, match=str(missing)):
        load_system_config(str(missing))
    config = load_system_config(str(missing), missing_ok=True)
    assert config == SystemConfig(directory=str(missing))


def test_a_file_where_the_directory_should_be_is_an_error_even_if_missing_ok(tmp_path: Path) -> None:
    path = tmp_path / "file"
    path.write_text("{}")
    with pytest.raises(NotConfiguredError, match="not a directory"):
        load_system_config(str(path), missing_ok=True)


def test_bad_files_are_an_error_even_with_missing_ok(tmp_path: Path) -> None:
    write_tree(tmp_path, {"a.json": "{"})
    with pytest.raises(ConfigError):
        load_system_config(str(tmp_path), missing_ok=True)


def test_environment_variable_picks_the_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_tree(tmp_path, {"a.json": {"cluster": "from-env"}})
    monkeypatch.setenv("PAASTA_SYSTEM_CONFIG_DIR", str(tmp_path))
    assert load_system_config().cluster == "from-env"


def test_symlink_loop_file_is_an_error(tmp_path: Path) -> None:
    os.symlink(tmp_path / "loop.json", tmp_path / "loop.json")
    with pytest.raises(ConfigError, match=r"loop\.json: is a symlink loop"):
        load_system_config(str(tmp_path))


def test_require_cluster() -> None:
    assert SystemConfig(directory="d", cluster="c1").require_cluster() == "c1"
    assert SystemConfig(directory="d", cluster="c1").require_cluster("c2") == "c2"
    assert SystemConfig(directory="d").require_cluster("c2") == "c2"
    with pytest.raises(NotConfiguredError, match="-c/--cluster") as excinfo:
        SystemConfig(directory="/etc/x").require_cluster()
    assert "/etc/x" in str(excinfo.value)
    assert excinfo.value.exit_code == 2


def test_require_docker_registry() -> None:
    assert SystemConfig(directory="d", docker_registry="sys").require_docker_registry() == "sys"
    assert SystemConfig(directory="d", docker_registry="sys").require_docker_registry("svc") == "svc"
    with pytest.raises(NotConfiguredError, match="docker_registry"):
        SystemConfig(directory="d").require_docker_registry()
