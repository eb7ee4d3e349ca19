"""Schema validation with messages a service owner understands.

Schemas ship in `paasta_lite/config/schemas/`. Every loader validates through here, so every entry point
validates, not only `paasta validate`. jsonschema's own messages ("Additional properties are not
allowed") are replaced by one sentence per problem naming the field and the rule broken.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from importlib import resources
from typing import TYPE_CHECKING, Any

from paasta_lite.errors import Problem

if TYPE_CHECKING:  # jsonschema and fastjsonschema are imported on first use: `--help` must be fast
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

_TYPE_WORDS = {
    "string": "text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "object": "a mapping (key: value)",
    "array": "a list",
    "null": "null",
}


@cache
def load_schema(name: str) -> dict[str, Any]:
    """The schema `schemas/<name>.json` shipped with the package."""
    text = resources.files("paasta_lite.config").joinpath(f"schemas/{name}.json").read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@cache
def _validator(name: str) -> Draft202012Validator:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name))


#: An un-escaped `$`, found as fastjsonschema finds it (it rewrites each to `\Z`, the ECMA-262 end).
_DOLLAR = re.compile(r"(?<!\\)\$")


def _python_patterns(schema: Any) -> Any:
    """`schema` with each `pattern`'s `$` spelled `(?=\\n?\\Z)`, which is what `$` means to
    jsonschema (Python's `re.search`: the end, or just before a final newline). fastjsonschema
    would make `$` the very end, and `"FOO\\n"` an env name jsonschema accepts but it refuses."""
    if isinstance(schema, list):
        return [_python_patterns(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    fixed = {key: _python_patterns(value) for key, value in schema.items()}
    if isinstance(fixed.get("pattern"), str):
        fixed["pattern"] = _DOLLAR.sub(lambda _: r"(?=\n?\Z)", fixed["pattern"])
    return fixed


def compile_is_valid(schema: Mapping[str, Any]) -> Callable[[Any], bool]:
    """A yes/no equal to `Draft202012Validator(schema).is_valid` (no format checker, as
    `_validator` builds it), compiled to Python by fastjsonschema: the common, valid case, fast.
    No format is asserted (`use_formats`) and no `default` is written into the data
    (`use_default`). tests/test_schema_fast.py holds the two to the same answers on the shipped
    schemas, and lists the keywords a schema may use for that to hold."""
    import fastjsonschema

    validate = fastjsonschema.compile(
        _python_patterns(schema), use_default=False, use_formats=False, detailed_exceptions=False
    )

    def is_valid(data: Any) -> bool:
        try:
            validate(data)
        except fastjsonschema.JsonSchemaValueException:
            return False
        return True

    return is_valid


@cache
def _is_valid(name: str) -> Callable[[Any], bool]:
    """Schema `name` compiled on first use, once per process (compiling costs ~10 ms a schema).
    Only the yes/no comes from it: on a no, `schema_problems` asks jsonschema, so every verdict
    and message stays jsonschema's."""
    return compile_is_valid(load_schema(name))


def describe_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (dict, list)):
        return _TYPE_WORDS["object" if isinstance(value, dict) else "array"]
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _type_words(expected: Any) -> str:
    names = expected if isinstance(expected, list) else [expected]
    return " or ".join(_TYPE_WORDS.get(str(name), str(name)) for name in names)


def describe_error(error: ValidationError) -> str:
    """One plain sentence for one jsonschema error."""
    custom = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    got = describe_value(error.instance)
    validator, expected = error.validator, error.validator_value
    if custom:
        return f"{custom} (got {got})"
    messages: dict[str, Callable[[], str]] = {
        "type": lambda: f"must be {_type_words(expected)} (got {got})",
        "minimum": lambda: f"must be at least {expected} (got {got})",
        "exclusiveMinimum": lambda: f"must be greater than {expected} (got {got})",
        "maximum": lambda: f"must be at most {expected} (got {got})",
        "exclusiveMaximum": lambda: f"must be less than {expected} (got {got})",
        "enum": lambda: "must be one of " + ", ".join(map(str, expected)) + f" (got {got})",
        "const": lambda: f"must be {expected!r} (got {got})",
        "minLength": lambda: "must not be empty" if expected == 1 else f"must be at least {expected} long",
        "maxLength": lambda: f"must be at most {expected} characters long (got {len(error.instance)})",
        "pattern": lambda: f"has an invalid format (got {got})",
        "minItems": lambda: "must not be empty" if expected == 1 else f"needs at least {expected} items",
        "minProperties": lambda: "must not be empty",
    }
    if validator == "required":
        return str(error.message).replace(" is a required property", " is required")
    if validator == "additionalProperties":
        extra = sorted(set(error.instance) - set(error.schema.get("properties", {})))
        return "unknown field(s): " + ", ".join(map(str, extra))
    if validator == "propertyNames":
        return f"has an invalid key ({error.message})"
    describe = messages.get(str(validator))
    return describe() if describe else str(error.message)


def field_path(parts: Iterable[Any], prefix: str = "") -> str:
    """`env.FOO`, `extra_volumes[0].hostPath`: the path of a field inside an instance."""
    text = prefix
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text


def schema_problems(
    schema_name: str,
    data: Any,
    *,
    path: str,
    instance: str | None = None,
    field_prefix: str = "",
) -> list[Problem]:
    """Every way `data` breaks schema `schema_name`, as Problems located in `path`."""
    if _is_valid(schema_name)(data):
        return []
    validator = _validator(schema_name)
    problems = []
    for error in sorted(validator.iter_errors(data), key=lambda e: list(map(str, e.absolute_path))):
        if error.validator in ("allOf", "anyOf", "oneOf") and error.context:
            error = min(error.context, key=lambda e: len(e.absolute_path) * -1)
        problems.append(
            Problem(
                path=path,
                instance=instance,
                field=field_path(error.absolute_path, field_prefix) or None,
                message=describe_error(error),
            )
        )
    return problems


def did_you_mean(key: str, candidates: Iterable[str]) -> str:
    match = difflib.get_close_matches(key, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def classify_keys(
    data: Mapping[str, Any],
    *,
    known: Iterable[str],
    ignored: Iterable[str],
    path: str,
    instance: str | None,
    field_prefix: str = "",
) -> tuple[list[Problem], list[Problem]]:
    """Split the keys of `data` into errors (nobody knows them) and warnings (PaaSTA-only keys).

    Keys PaaSTA knows but paasta_lite does not implement are accepted with a warning, so existing
    soa-configs load; a key nobody knows is most likely a typo and is an error with a hint.
    `field_prefix` locates `data` inside its file (`pipeline[2]`).
    """
    known_set, ignored_set = set(known), set(ignored)
    errors, warnings = [], []
    for key in data:
        if key in known_set:
            continue
        where = field_path([str(key)], field_prefix)
        if key in ignored_set:
            warnings.append(
                Problem(path, "is a PaaSTA key that paasta_lite does not implement; ignored", instance, where)
            )
        else:
            errors.append(Problem(path, "unknown field" + did_you_mean(str(key), known_set), instance, where))
    return errors, warnings
