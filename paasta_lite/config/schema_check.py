"""A fast yes/no for "is this data valid against that JSON Schema?", compiled once per schema.

Nearly every config is valid, and asking jsonschema costs a generic walk per value (about half
of `paasta validate --all`, before YAML). `compile_schema` turns one of our schemas into nested
Python closures that answer exactly as `Draft202012Validator(schema).is_valid` (no format
checker, as `validation._validator` builds it). Only the yes/no is ours: when the answer is no,
`validation.schema_problems` asks jsonschema for the errors, so every message stays jsonschema's.

A subschema that uses a keyword implemented here neither as jsonschema does nor on purpose
ignored (`DELEGATED`: `anyOf`, `if`, `patternProperties`, ...) is answered by `delegate(subschema)`:
jsonschema itself, for that part only. Keywords jsonschema does not know (`title`, `x-message`)
are annotations to it, and ignored here too. tests/test_schema_check.py holds the two to the
same answers on generated data, and fails when jsonschema grows a keyword this module does not
place in one list or the other.
"""

from __future__ import annotations

import numbers
import re
from collections.abc import Callable, Mapping, Sequence, Sized
from typing import Any

Predicate = Callable[[Any], bool]

#: Keywords compiled here, with jsonschema's semantics (`format` is a no-op: no format checker).
SUPPORTED = frozenset({
    "type", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minLength", "maxLength", "pattern", "minItems", "maxItems", "items", "required",
    "minProperties", "maxProperties", "properties", "additionalProperties", "propertyNames",
    "$ref", "$defs", "definitions", "format",
})
#: Keywords jsonschema implements and this module leaves to it (the whole subschema).
DELEGATED = frozenset({
    "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas",
    "dependencies", "prefixItems", "additionalItems", "contains", "minContains", "maxContains",
    "patternProperties", "unevaluatedItems", "unevaluatedProperties", "uniqueItems", "multipleOf",
    "$dynamicRef", "$recursiveRef", "$id", "$anchor", "$dynamicAnchor", "$recursiveAnchor",
})


def _always(value: Any) -> bool:
    return True


def _never(value: Any) -> bool:
    return False


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


_TYPES: dict[str, Predicate] = {
    "object": lambda value: isinstance(value, dict),
    "array": lambda value: isinstance(value, list),
    "string": lambda value: isinstance(value, str),
    "boolean": lambda value: isinstance(value, bool),
    "null": lambda value: value is None,
    "number": _is_number,
    "integer": _is_integer,
}

_TRUE, _FALSE = object(), object()


def _unbool(value: Any) -> Any:
    """jsonschema's equality keeps True/1 and False/0 apart."""
    return _TRUE if value is True else _FALSE if value is False else value


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, (str, int, float))


def _equals(expected: Any) -> Predicate:
    """`value` equals the scalar `expected` as jsonschema's `equal` decides."""
    if isinstance(expected, str):
        return lambda value: value == expected
    unbooled = _unbool(expected)
    return lambda value: not isinstance(value, str) and _unbool(value) == unbooled


def _all_of(checks: Sequence[Predicate]) -> Predicate:
    if not checks:
        return _always
    if len(checks) == 1:
        return checks[0]

    def check(value: Any) -> bool:
        for one in checks:  # noqa: SIM110 (a plain loop: this runs for every value of every config)
            if not one(value):
                return False
        return True

    return check


class _Compiler:
    def __init__(self, root: Mapping[str, Any], delegate: Callable[[Any], Predicate]) -> None:
        self.root = root
        self.delegate = delegate
        self.refs: dict[str, Predicate] = {}

    def compile(self, schema: Any) -> Predicate:
        if schema is True:
            return _always
        if schema is False:
            return _never
        if not isinstance(schema, dict) or any(keyword in DELEGATED for keyword in schema):
            return self.delegate(schema)
        checks: list[Predicate] = []
        for keyword, value in schema.items():
            if keyword not in SUPPORTED:
                continue  # an annotation to jsonschema too
            check = self._keyword(keyword, value, schema)
            if check is None:
                return self.delegate(schema)
            if check is not _always:
                checks.append(check)
        return _all_of(checks)

    def _keyword(self, keyword: str, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        """The check for one keyword; None when this value is beyond what is compiled here."""
        builder = getattr(self, "_" + keyword.lstrip("$"), None)
        return builder(value, schema) if builder else _always

    def _type(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or not all(name in _TYPES for name in names):
            return None
        tests = [_TYPES[name] for name in names]
        return tests[0] if len(tests) == 1 else (lambda v: any(test(v) for test in tests))

    def _enum(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        if not isinstance(value, list) or not all(_is_scalar(item) for item in value):
            return None
        tests = [_equals(item) for item in value]
        return lambda v: any(test(v) for test in tests)

    def _const(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        return _equals(value) if _is_scalar(value) else None

    def _bound(self, value: Any, fails: Callable[[Any, Any], bool]) -> Predicate | None:
        if not _is_number(value):
            return None
        return lambda v: not _is_number(v) or not fails(v, value)

    def _minimum(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        return self._bound(value, lambda v, limit: v < limit)

    def _maximum(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        return self._bound(value, lambda v, limit: v > limit)

    def _exclusiveMinimum(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        return self._bound(value, lambda v, limit: v <= limit)

    def _exclusiveMaximum(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        return self._bound(value, lambda v, limit: v >= limit)

    def _size(self, kind: type[Sized], value: Any, fails: Callable[[int, int], bool]) -> Predicate | None:
        if not _is_integer(value):
            return None
        return lambda v: not isinstance(v, kind) or not fails(len(v), value)

    def _minLength(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        return self._size(str, value, lambda n, limit: n < limit)

    def _maxLength(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        return self._size(str, value, lambda n, limit: n > limit)

    def _minItems(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        return self._size(list, value, lambda n, limit: n < limit)

    def _maxItems(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        return self._size(list, value, lambda n, limit: n > limit)

    def _minProperties(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        return self._size(dict, value, lambda n, limit: n < limit)

    def _maxProperties(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        return self._size(dict, value, lambda n, limit: n > limit)

    def _pattern(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        if not isinstance(value, str):
            return None
        search = re.compile(value).search
        return lambda v: not isinstance(v, str) or search(v) is not None

    def _required(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        if not isinstance(value, list):
            return None
        names = tuple(value)
        return lambda v: not isinstance(v, dict) or all(name in v for name in names)

    def _properties(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        if not isinstance(value, dict):
            return None
        tests = {name: self.compile(sub) for name, sub in value.items()}

        def check(v: Any) -> bool:
            if not isinstance(v, dict):
                return True
            for key, item in v.items():  # a config sets a few of the schema's many properties
                test = tests.get(key)
                if test is not None and not test(item):
                    return False
            return True

        return check

    def _additionalProperties(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        known = frozenset(schema.get("properties") or ())
        if value is True or value == {}:
            return _always
        if value is False:
            return lambda v: not isinstance(v, dict) or all(key in known for key in v)
        test = self.compile(value)
        return lambda v: not isinstance(v, dict) or all(test(v[key]) for key in v if key not in known)

    def _propertyNames(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        test = self.compile(value)
        return lambda v: not isinstance(v, dict) or all(test(key) for key in v)

    def _items(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        if value is False:
            return lambda v: not isinstance(v, list) or not v
        test = self.compile(value)
        return lambda v: not isinstance(v, list) or all(test(item) for item in v)

    def _ref(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        """Local references only (`#/$defs/name`); compiled once, recursion allowed."""
        if not isinstance(value, str) or not value.startswith("#/"):
            return None
        if value not in self.refs:
            target: Any = self.root
            for part in value[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                if not isinstance(target, dict) or part not in target:
                    return None
                target = target[part]
            compiled: list[Predicate] = []
            self.refs[value] = lambda v: compiled[0](v)  # placeholder while compiling a cycle
            compiled.append(self.compile(target))
            self.refs[value] = compiled[0]
        return self.refs[value]

    def _defs(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        return _always  # a container for $ref targets

    _definitions = _defs

    def _format(self, value: Any, schema: Mapping[str, Any]) -> Predicate | None:
        return _always  # asserted only with a format checker, and ours has none


def compile_schema(schema: Mapping[str, Any], delegate: Callable[[Any], Predicate]) -> Predicate:
    """A predicate equal to `Draft202012Validator(schema).is_valid`; `delegate(subschema)` answers
    the subschemas it does not compile."""
    return _Compiler(schema, delegate).compile(schema)
