"""deployments_json: v2 parsing (v1-only refused with a hint; a malformed entry breaks only its
deploy group or instance), control defaults, deterministic formatting, and write_deployments_json
that writes atomically and only when the content changed (a refused write is one
`FileSystemError` naming the file)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from paasta_lite.config.deployments_json import (
    Control,
    DeployedVersion,
    DeploymentsJson,
    control_key,
    docker_image_for,
    format_deployments_json,
    load_deployments_json,
    parse_deployments_json,
    write_deployments_json,
)
from paasta_lite.errors import ConfigError, FileSystemError

SHA = "0123456789abcdef0123456789abcdef01234567"
DOC = {
    "v1": {"svc:paasta-c1.main": {"docker_image": "ignored", "desired_state": "start", "force_bounce": None}},
    "v2": {
        "deployments": {
            "c1.main": {"docker_image": f"services-svc:paasta-{SHA}", "git_sha": SHA, "image_version": None},
            "c1.canary": {
                "docker_image": f"services-svc:paasta-{SHA}-v2", "git_sha": SHA, "image_version": "v2",
            },
        },
        "controls": {
            "svc:c1.main": {"desired_state": "stop", "force_bounce": "20240131T235959"},
            "svc:c1.x": {},
        },
    },
}


def sample() -> DeploymentsJson:
    return parse_deployments_json(DOC, "deployments.json")


def test_parse_v2() -> None:
    dj = sample()
    main = dj.version_for("c1.main")
    assert main == DeployedVersion(f"services-svc:paasta-{SHA}", SHA, None)
    assert main.short_sha == SHA[:8]
    canary = dj.version_for("c1.canary")
    assert canary is not None and canary.image_version == "v2"
    assert dj.version_for("nope") is None
    assert dj.control_for("svc", "c1", "main") == Control("stop", "20240131T235959")


def test_control_defaults() -> None:
    dj = sample()
    assert dj.control_for("svc", "c1", "x") == Control("start", None)
    assert dj.control_for("svc", "c9", "unknown") == Control("start", None)


def test_v1_only_is_refused_with_a_hint() -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_deployments_json({"v1": DOC["v1"]}, "svc/deployments.json")
    text = str(excinfo.value)
    assert "svc/deployments.json" in text and "has no v2 section" in text
    assert "generate_deployments_for_service" in text


@pytest.mark.parametrize(
    ("doc", "fragment"),
    [
        ([], "must contain a JSON object"),
        ({"v2": {"deployments": []}}, "must be mappings"),
    ],
)
def test_bad_documents(doc: object, fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        parse_deployments_json(doc, "d.json")


GOOD = {"docker_image": f"services-svc:paasta-{SHA}", "git_sha": SHA, "image_version": None}


@pytest.mark.parametrize(
    ("entry", "message"),
    [
        ({"git_sha": SHA}, "docker_image is missing"),
        ({**GOOD, "docker_image": ""}, "docker_image must be text (got '')"),
        ({"docker_image": "i"}, "git_sha is missing"),
        ({**GOOD, "git_sha": "abc123"}, "git_sha must be a full commit sha, 40 lower-case hexadecimal "
         "characters (got 'abc123')"),
        ({**GOOD, "git_sha": SHA.upper()}, "git_sha must be a full commit sha"),
        ({**GOOD, "git_sha": SHA + "0"}, "git_sha must be a full commit sha"),
        ({**GOOD, "git_sha": "g" * 40}, "git_sha must be a full commit sha"),
        ({**GOOD, "git_sha": 1234}, "git_sha must be a full commit sha"),
        ({**GOOD, "image_version": 1}, "image_version must be text or null"),
        ("services-svc:paasta-x", "must be a mapping with docker_image and git_sha"),
        ({}, "docker_image is missing; git_sha is missing"),
    ],
)
def test_a_malformed_deployment_entry_breaks_only_its_group(entry: object, message: str) -> None:
    doc = {"v2": {"deployments": {"c1.main": GOOD, "c1.canary": entry}, "controls": {}}}
    dj = parse_deployments_json(doc, "svc/deployments.json")
    assert dj.version_for("c1.main") == DeployedVersion(GOOD["docker_image"], SHA, None)
    assert dj.version_for("c1.canary") is None
    (problem,) = dj.problems_for("svc", "c1", "canary", "c1.canary")
    assert problem.path == "svc/deployments.json" and problem.field == "v2.deployments.c1.canary"
    assert problem.message.startswith(message)
    assert problem.message.endswith(
        "deploy group 'c1.canary' is not deployed until this entry is fixed "
        "(generate_deployments_for_service rewrites it)"
    )
    assert dj.problems_for("svc", "c1", "main", "c1.main") == ()


@pytest.mark.parametrize(
    ("control", "message"),
    [
        ({"desired_state": "paused"}, "desired_state must be start or stop (got 'paused')"),
        ({"force_bounce": 5}, "force_bounce must be text or null"),
        ("start", "must be a mapping"),
    ],
)
def test_a_malformed_control_breaks_only_its_instance(control: object, message: str) -> None:
    doc = {"v2": {"deployments": {"c1.main": GOOD}, "controls": {"svc:c1.main": control, "svc:c1.x": {}}}}
    dj = parse_deployments_json(doc, "d.json")
    (problem,) = dj.problems_for("svc", "c1", "main", "c1.main")
    assert problem.field == "v2.controls.svc:c1.main" and problem.message.startswith(message)
    assert "instance svc:c1.main is not deployed until this entry is fixed" in problem.message
    assert dj.problems_for("svc", "c1", "x", "c1.main") == ()  # same group, its own control is fine


def test_broken_entries_are_replaced_by_the_next_write(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    broken = json.loads(json.dumps(DOC))
    broken["v2"]["deployments"]["c1.main"]["git_sha"] = "short"
    path.write_text(json.dumps(broken))
    assert load_deployments_json(path) != sample()
    assert write_deployments_json(path, sample()) is True
    assert load_deployments_json(path) == sample()


def test_format_is_deterministic_and_roundtrips() -> None:
    dj = sample()
    text = format_deployments_json(dj)
    reordered = DeploymentsJson(
        deployments=dict(reversed(list(dj.deployments.items()))),
        controls=dict(reversed(list(dj.controls.items()))),
    )
    assert format_deployments_json(reordered) == text
    assert text.endswith("\n")
    assert "v1" not in json.loads(text)
    assert parse_deployments_json(json.loads(text), "d") == dj


def test_helpers() -> None:
    assert control_key("svc", "c1", "main") == "svc:c1.main"
    assert docker_image_for("svc", SHA) == f"services-svc:paasta-{SHA}"
    assert docker_image_for("svc", SHA, "v2") == f"services-svc:paasta-{SHA}-v2"


def test_load_missing_is_none(tmp_path: Path) -> None:
    assert load_deployments_json(tmp_path / "deployments.json") is None


def test_write_only_when_changed(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    assert write_deployments_json(path, sample()) is True
    assert load_deployments_json(path) == sample()
    before = path.stat()
    assert write_deployments_json(path, sample()) is False
    after = path.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
    changed = DeploymentsJson(deployments=sample().deployments, controls={})
    assert write_deployments_json(path, changed) is True
    assert path.stat().st_ino != before.st_ino  # replaced by rename, not rewritten in place
    assert load_deployments_json(path) == changed
    assert [p.name for p in tmp_path.iterdir()] == ["deployments.json"]


def test_write_replaces_a_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    path.write_text("{not json")
    assert write_deployments_json(path, sample()) is True
    assert load_deployments_json(path) == sample()


def test_equal_content_in_other_formatting_is_not_rewritten(tmp_path: Path) -> None:
    path = tmp_path / "deployments.json"
    path.write_text(json.dumps(DOC))  # PaaSTA writes compact, unsorted, with v1
    assert write_deployments_json(path, sample()) is False


def test_a_refused_write_is_one_error_naming_the_file_and_leaves_nothing_behind(tmp_path: Path) -> None:
    target = tmp_path / "deployments.json"
    target.mkdir()  # a directory where the file should be: rename fails with EISDIR
    with pytest.raises(FileSystemError) as excinfo:
        write_deployments_json(target, sample())
    assert str(excinfo.value) == f"{target}: cannot be written: Is a directory"
    assert excinfo.value.exit_code == 1
    assert [p.name for p in tmp_path.iterdir()] == ["deployments.json"]  # no temporary file left
    missing_dir = tmp_path / "gone" / "deployments.json"
    with pytest.raises(FileSystemError, match=r"gone/deployments\.json: cannot be written: No such file"):
        write_deployments_json(missing_dir, sample())
