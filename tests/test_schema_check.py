"""The compiled schema check answers exactly as jsonschema's `is_valid`, and is what loading uses.

Behaviours covered: equal answers on generated data for every shipped schema (values drawn from
the schema's own property names and near its limits, plus arbitrary JSON-like junk); JSON Schema
corner cases (1.0 is an integer, True is not, NaN, non-string keys, extra properties, $ref
cycles); a subschema with a keyword left to jsonschema is answered by jsonschema; every keyword
jsonschema implements is either compiled or delegated; a valid tree loads without importing
jsonschema at all (the fast path is the one taken).
"""

from __future__ import annotations

import math
import subprocess
import sys
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from paasta_lite.config.schema_check import DELEGATED, SUPPORTED, compile_schema
from paasta_lite.config.validation import load_schema

SCHEMAS = ["instance", "deploy", "system_config"]


def never_delegate(subschema: Any) -> Any:
    raise AssertionError(f"our schemas compile without delegating: {subschema}")


def jsonschema_delegate(root: dict[str, Any]) -> Any:
    validator = Draft202012Validator(root)
    return lambda subschema: validator.evolve(schema=subschema).is_valid


def names_in(schema: Any) -> list[str]:
    """Every property name anywhere in a schema, so generated mappings hit real properties."""
    found: list[str] = []
    if isinstance(schema, dict):
        found += [key for key in schema.get("properties", {}) if isinstance(key, str)]
        for value in schema.values():
            found += names_in(value)
    elif isinstance(schema, list):
        for value in schema:
            found += names_in(value)
    return sorted(set(found))


def data_for(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(names_in(schema) or ["x"]) | st.text(max_size=4) | st.integers(-2, 2)
    scalars = (
        st.none() | st.booleans() | st.integers(-3, 70000) | st.sampled_from([0.0, 0.5, 1.0, 32.0, -1.5])
        | st.floats(allow_nan=True) | st.sampled_from(["", "a", "RO", "RW", "http", "/x", "A_B", "9x", "-"])
        | st.text(max_size=6)
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=12,
    )


@pytest.mark.parametrize("name", SCHEMAS)
def test_same_answers_as_jsonschema_on_generated_data(name: str) -> None:
    schema = load_schema(name)
    fast = compile_schema(schema, never_delegate)
    reference = Draft202012Validator(schema)

    @settings(max_examples=400)
    @given(data_for(schema))
    def check(data: Any) -> None:
        assert fast(data) == reference.is_valid(data), data

    check()


@pytest.mark.parametrize("name", SCHEMAS)
def test_same_answers_for_each_property_alone(name: str) -> None:
    """One property at a time, with values of every kind: the common shape of a config."""
    schema = load_schema(name)
    fast = compile_schema(schema, never_delegate)
    reference = Draft202012Validator(schema)
    values: list[Any] = [None, True, False, 0, 1, -1, 1.0, 0.5, 2**40, math.nan, math.inf, "", "x", "RO",
                         "/a", "a b", [], ["x"], [1], [{}], {}, {"A": "b"}, {"1A": 1}, {1: "x"},
                         [{"containerPath": "/a", "hostPath": "/b", "mode": "RO"}],
                         [{"step": "prod"}], [{"parallel": [{"step": "a"}, {}]}]]
    for prop in names_in(schema):
        for value in values:
            data = {prop: value}
            assert fast(data) == reference.is_valid(data), data


def test_json_schema_corner_cases() -> None:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 1}, "x": {"exclusiveMaximum": 2},
            "e": {"enum": [1, "a", None]}, "c": {"const": False},
            "tree": {"$ref": "#/$defs/tree"},
        },
        "propertyNames": {"pattern": "^[a-z]+$"},
        "additionalProperties": {"type": "string"},
        "$defs": {"tree": {"type": "object", "properties": {"kids": {"items": {"$ref": "#/$defs/tree"}}},
                           "required": ["name"]}},
    }
    fast = compile_schema(schema, never_delegate)
    reference = Draft202012Validator(schema)
    cases: list[Any] = [
        {"n": 1.0}, {"n": True}, {"n": 0}, {"x": math.nan}, {"x": 2}, {"x": "2"},
        {"e": True}, {"e": 1.0}, {"e": "a"}, {"c": 0}, {"c": False},
        {"other": "s"}, {"other": 1}, {1: "x"}, {"Upper": "s"},
        {"tree": {"name": 1, "kids": [{"name": 2, "kids": [{}]}]}},
        {"tree": {"name": 1, "kids": [{"name": 2}]}}, [], "text",
    ]
    for data in cases:
        assert fast(data) == reference.is_valid(data), data


def test_a_keyword_left_to_jsonschema_is_answered_by_it() -> None:
    schema = {"type": "object", "properties": {"a": {"anyOf": [{"type": "string"}, {"minimum": 3}]}}}
    asked: list[Any] = []

    def delegate(subschema: Any) -> Any:
        asked.append(subschema)
        return Draft202012Validator(subschema).is_valid

    fast = compile_schema(schema, delegate)
    assert asked == [schema["properties"]["a"]]  # only the part it does not compile
    values = ("s", 4, 1, None, [])  # `minimum` says nothing about a non-number
    assert [fast({"a": value}) for value in values] == [True, True, False, True, True]
    assert [fast({"a": value}) for value in values] == [
        Draft202012Validator(schema).is_valid({"a": value}) for value in values]


def test_every_keyword_of_jsonschema_is_compiled_or_delegated() -> None:
    implemented = set(Draft202012Validator.VALIDATORS)
    assert implemented - SUPPORTED - DELEGATED == set()


def test_a_valid_tree_is_validated_without_importing_jsonschema(tmp_path: Any) -> None:
    service = tmp_path / "svc"
    service.mkdir()
    (service / "service.yaml").write_text("cpus: 0.5\nenv: {A: b}\n")
    (service / "deploy.yaml").write_text("pipeline:\n  - step: prod\n")
    (service / "kubernetes-c1.yaml").write_text("main: {instances: 2, deploy_group: prod}\n")
    code = (
        "import sys; from paasta_lite.config.soa_config import SoaDir; "
        f"s = SoaDir({str(tmp_path)!r}).load_service('svc'); "
        "assert not s.problems, s.problems; print('jsonschema' in sys.modules)"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert output.stdout.strip() == "False"
