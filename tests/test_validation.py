"""validation: one plain sentence per schema error (no "Additional properties are not allowed"),
field paths, and the split of keys into errors (unknown, with a hint) and warnings (ignored PaaSTA
keys), also for keys nested in a file (deploy.yaml steps). One test per error class a service owner
can hit."""

from __future__ import annotations

from typing import Any

import pytest

from paasta_lite.config.config_keys import (
    IGNORED_INSTANCE_KEYS,
    IGNORED_STEP_KEYS,
    INSTANCE_KEYS,
    PIPELINE_ENTRY_KEYS,
    STEP_KEYS,
)
from paasta_lite.config.validation import classify_keys, did_you_mean, field_path, schema_problems


def one(data: dict[str, Any], schema: str = "instance") -> tuple[str | None, str]:
    (problem,) = schema_problems(schema, data, path="f.yaml", instance="main")
    assert problem.path == "f.yaml" and problem.instance == "main"
    return problem.field, problem.message


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"cpus": "x"}, "cpus", "must be a number (got 'x')"),
        ({"cpus": True}, "cpus", "must be a number (got true)"),
        ({"instances": 1.5}, "instances", "must be a whole number (got 1.5)"),
        ({"instances": -1}, "instances", "must be at least 0 (got -1)"),
        ({"cpus": 0}, "cpus", "must be greater than 0 (got 0)"),
        ({"bounce_margin_factor": 2}, "bounce_margin_factor", "must be at most 1 (got 2)"),
        ({"bounce_method": "yolo"}, "bounce_method", "must be one of crossover, downthenup, brutal"),
        ({"healthcheck_uri": "status"}, "healthcheck_uri", "must be a path starting with / (got 'status')"),
        ({"cmd": ""}, "cmd", "must not be empty"),
        ({"env": []}, "env", "must be a mapping (key: value) (got a list)"),
        ({"env": {"A": None}}, "env.A", "environment values must be text, numbers or true/false (got null)"),
        ({"env": {"A": {"b": 1}}}, "env.A", "environment values must be text"),
        ({"extra_volumes": [{"containerPath": "/c"}]}, "extra_volumes[0]", "'hostPath' is required"),
        ({"bounce_health_params": {"x": 1}}, "bounce_health_params", "unknown field(s): x"),
        ({"namespace": "Bad_NS"}, "namespace", "must be a DNS label"),
    ],
)
def test_error_messages(data: dict[str, Any], field: str, message: str) -> None:
    got_field, got_message = one(data)
    assert got_field == field
    assert message in got_message
    assert "Additional properties" not in got_message


def test_env_name_rule() -> None:
    field, message = one({"env": {"1X": "v"}})
    assert field == "env" and "environment variable names" in message


def test_valid_data_has_no_problems() -> None:
    assert schema_problems("instance", {"cpus": 0.1, "env": {"A": 1}}, path="f") == []
    assert schema_problems("deploy", {"pipeline": [{"step": "a"}]}, path="d") == []


def test_every_problem_is_reported_in_field_order() -> None:
    problems = schema_problems("instance", {"mem": 1, "cpus": -1, "disk": 0}, path="f")
    assert [p.field for p in problems] == ["cpus", "disk", "mem"]


def test_field_path() -> None:
    assert field_path(["extra_volumes", 0, "hostPath"]) == "extra_volumes[0].hostPath"
    assert field_path(["a"], "v2") == "v2.a"
    assert field_path([]) == ""


def test_classify_keys() -> None:
    errors, warnings = classify_keys(
        {"cpus": 1, "pool": "x", "intances": 2, "zzz": 1},
        known=INSTANCE_KEYS, ignored=IGNORED_INSTANCE_KEYS, path="f", instance="main",
    )
    assert {(p.field, p.message) for p in errors} == {
        ("intances", "unknown field (did you mean 'instances'?)"),
        ("zzz", "unknown field"),
    }
    assert [(w.field, w.instance) for w in warnings] == [("pool", "main")]
    assert "does not implement; ignored" in warnings[0].message


def test_classify_keys_locates_nested_keys() -> None:
    errors, warnings = classify_keys(
        {"step": "prod.main", "wait_for_deploymnet": True, "auto_rollback": True},
        known=STEP_KEYS, ignored=IGNORED_STEP_KEYS, path="deploy.yaml", instance=None,
        field_prefix="pipeline[1].parallel[0]",
    )
    assert [(p.field, p.message) for p in errors] == [
        ("pipeline[1].parallel[0].wait_for_deploymnet", "unknown field (did you mean 'wait_for_deployment'?)")
    ]
    assert [w.field for w in warnings] == ["pipeline[1].parallel[0].auto_rollback"]


def test_did_you_mean() -> None:
    assert did_you_mean("healthcheck_url", INSTANCE_KEYS) == " (did you mean 'healthcheck_uri'?)"
    assert did_you_mean("qqqqq", INSTANCE_KEYS) == ""


def test_known_and_ignored_keys_do_not_overlap() -> None:
    assert not INSTANCE_KEYS & IGNORED_INSTANCE_KEYS
    assert not (STEP_KEYS | PIPELINE_ENTRY_KEYS) & IGNORED_STEP_KEYS
    assert STEP_KEYS < PIPELINE_ENTRY_KEYS == STEP_KEYS | {"parallel"}
