"""fastjsonschema's yes/no (`validation.compile_is_valid`) answers exactly as jsonschema's `is_valid`, and
is what loading uses; jsonschema still writes every message.

Behaviours covered: equal answers on generated data for every shipped schema (values drawn from
the schema's own property names and near its limits, plus arbitrary JSON-like junk, strings ending
in a newline included); JSON Schema corner cases (1.0 is an integer, True is not, NaN, non-string
keys, extra properties, $ref cycles, `$` before a final newline, `format` not asserted); the
shipped schemas use only keywords fastjsonschema implements as jsonschema does (a new one fails
here instead of being silently ignored); the compiled check never writes `default`s into the data;
a valid tree loads without importing jsonschema, and `paasta --help` imports neither library.
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from paasta_lite.config.validation import _is_valid, compile_is_valid, load_schema, schema_problems

SCHEMAS = ["instance", "deploy", "system_config"]

#: Keywords fastjsonschema compiles with jsonschema's semantics for our data (YAML gives lists,
#: never tuples; `pattern`'s `$` is given Python's meaning by `validation._python_patterns`).
#: Checked against fastjsonschema's own table below. Not here on purpose: `$ref` with sibling
#: keywords (fastjsonschema ignores the siblings, 2020-12 does not), `unevaluated*`, `$dynamicRef`.
COMPILED = frozenset({
    "type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "pattern", "minItems", "maxItems", "items", "required",
    "minProperties", "maxProperties", "properties", "additionalProperties", "propertyNames", "$ref",
})
#: Keywords that assert nothing: annotations, and `$defs` (a container for `$ref` targets).
ANNOTATIONS = frozenset({"$schema", "$defs", "title", "description", "x-message"})


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


def keywords_in(schema: Any) -> set[str]:
    """Every keyword used anywhere in a schema (property names and `$defs` names excluded)."""
    found: set[str] = set()
    if isinstance(schema, dict):
        for key, value in schema.items():
            found.add(key)
            named = key in ("properties", "$defs") and isinstance(value, dict)
            children = value.values() if named else [value]
            for child in children:
                found |= keywords_in(child)
    elif isinstance(schema, list):
        for value in schema:
            found |= keywords_in(value)
    return found


def data_for(schema: dict[str, Any]) -> st.SearchStrategy[Any]:
    texts = ["", "a", "RO", "RW", "http", "/x", "A_B", "9x", "-", "A_B\n", "ab\n", "50%", "50%\n", "a-"]
    keys = st.sampled_from(names_in(schema) or ["x"]) | st.sampled_from(texts) | st.text(max_size=4) \
        | st.integers(-2, 2)
    scalars = (
        st.none() | st.booleans() | st.integers(-3, 70000) | st.sampled_from([0.0, 0.5, 1.0, 32.0, -1.5])
        | st.floats(allow_nan=True) | st.sampled_from(texts) | st.text(max_size=6)
    )
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
        max_leaves=12,
    )


@pytest.mark.parametrize("name", SCHEMAS)
def test_same_answers_as_jsonschema_on_generated_data(name: str) -> None:
    schema = load_schema(name)
    compiled = _is_valid(name)
    reference = Draft202012Validator(schema)

    @settings(max_examples=400)
    @given(data_for(schema))
    def check(data: Any) -> None:
        assert compiled(data) == reference.is_valid(data), data

    check()


@pytest.mark.parametrize("name", SCHEMAS)
def test_same_answers_for_each_property_alone(name: str) -> None:
    """One property at a time, with values of every kind: the common shape of a config."""
    schema = load_schema(name)
    compiled = _is_valid(name)
    reference = Draft202012Validator(schema)
    values: list[Any] = [None, True, False, 0, 1, -1, 1.0, 0.5, 2**40, math.nan, math.inf, "", "x", "RO",
                         "/a", "a b", "ab\n", "/a\n", "50%\n", [], ["x"], [1], [{}], {}, {"A": "b"},
                         {"1A": 1}, {1: "x"}, {"A\n": "b"},
                         [{"containerPath": "/a", "hostPath": "/b", "mode": "RO"}],
                         [{"step": "prod"}], [{"parallel": [{"step": "a"}, {}]}]]
    for prop in names_in(schema):
        for value in values:
            data = {prop: value}
            assert compiled(data) == reference.is_valid(data), data


@pytest.mark.parametrize("name", SCHEMAS)
def test_shipped_schemas_use_only_keywords_compiled_as_jsonschema_does(name: str) -> None:
    schema = load_schema(name)
    assert keywords_in(schema) - COMPILED - ANNOTATIONS == set()
    refs_with_siblings: list[Any] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if "$ref" in node and set(node) - {"$ref"} - ANNOTATIONS:
                refs_with_siblings.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    assert refs_with_siblings == []


def test_every_compiled_keyword_is_one_fastjsonschema_implements() -> None:
    from fastjsonschema import _get_code_generator_class

    generator = _get_code_generator_class(load_schema("instance"))(load_schema("instance"))
    assert COMPILED - {"$ref"} <= set(generator._json_keywords_to_function)


def test_json_schema_corner_cases() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 1}, "x": {"exclusiveMaximum": 2},
            "e": {"enum": ["a", "b", None]}, "s": {"type": "string", "format": "email"},
            "tree": {"$ref": "#/$defs/tree"}, "p": {"pattern": "^(a|b)$"}, "q": {"pattern": r"\$$"},
        },
        "propertyNames": {"pattern": "^[a-z]+$"},
        "additionalProperties": {"type": "string"},
        "$defs": {"tree": {"type": "object", "properties": {"kids": {"items": {"$ref": "#/$defs/tree"}}},
                           "required": ["name"]}},
    }
    compiled = compile_is_valid(schema)
    reference = Draft202012Validator(schema)
    cases: list[Any] = [
        {"n": 1.0}, {"n": True}, {"n": 0}, {"x": math.nan}, {"x": 2}, {"x": "2"},
        {"e": "a"}, {"e": None}, {"e": "c"}, {"s": "not an email"},
        {"other": "s"}, {"other": 1}, {1: "x"}, {"Upper": "s"}, {"abc\n": "s"}, {"abc\n\n": "s"},
        {"p": "a\n"}, {"p": "ab"}, {"p": "b"}, {"q": "x$"}, {"q": "x$\n"}, {"q": "x"},
        {"tree": {"name": 1, "kids": [{"name": 2, "kids": [{}]}]}},
        {"tree": {"name": 1, "kids": [{"name": 2}]}}, [], "text",
    ]
    answers = [compiled(data) for data in cases]
    assert answers == [reference.is_valid(data) for data in cases]
    assert answers[:4] == [True, False, False, True]  # the cases test something
    assert compiled({"abc\n": "s"}) and compiled({"p": "a\n"})  # `$` as Python means it


def test_the_compiled_check_never_writes_defaults_into_the_data() -> None:
    data: dict[str, Any] = {}
    assert compile_is_valid({"properties": {"a": {"type": "integer", "default": 3}}})(data)
    assert data == {}


def test_a_rejected_instance_gets_jsonschema_messages() -> None:
    data = {"instances": -1, "env": {"1A": "x"}}
    problems = schema_problems("instance", data, path="f.yaml", instance="main")
    assert [(p.field, p.message) for p in problems] == [
        ("env", "environment variable names must be letters, digits and _, not starting with a digit "
                "(got '1A')"),
        ("instances", "must be at least 0 (got -1)"),
    ]
    assert schema_problems("instance", {"env": {"A\n": "x"}}, path="f.yaml") == []  # jsonschema's verdict


def run_python(code: str, *args: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True,
                          env=env).stdout.strip()


def test_a_valid_tree_is_validated_without_importing_jsonschema(tmp_path: Any) -> None:
    service = tmp_path / "svc"
    service.mkdir()
    (service / "service.yaml").write_text("cpus: 0.5\nenv: {A: b}\n")
    (service / "deploy.yaml").write_text("pipeline:\n  - step: prod\n")
    (service / "kubernetes-c1.yaml").write_text("main: {instances: 2, deploy_group: prod}\n")
    code = (
        "import sys; from paasta_lite.config.soa_config import SoaDir; "
        f"s = SoaDir({str(tmp_path)!r}).load_service('svc'); "
        "assert not s.problems, s.problems; "
        "print('jsonschema' in sys.modules, 'fastjsonschema' in sys.modules)"
    )
    assert run_python(code) == "False True"


def test_help_imports_no_schema_library() -> None:
    code = (
        "import sys; from paasta_lite.cli.main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "print('fastjsonschema' in sys.modules, 'jsonschema' in sys.modules, file=sys.stderr)"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    result = subprocess.run([sys.executable, "-c", code, "--help"], capture_output=True, text=True, env=env)
    assert "Usage" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == "False False"
