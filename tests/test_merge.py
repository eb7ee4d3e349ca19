"""deep_merge: dicts merge recursively, lists and scalars replace, inputs are never mutated;
overridden_leaves names the leaves an override replaces. Property tests check the rule for
arbitrary nested dicts."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from paasta_lite.config.merge import deep_merge, overridden_leaves

keys = st.sampled_from(["a", "b", "c", "env", "cpus", "x"])
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
values = st.recursive(
    scalars | st.lists(scalars, max_size=3),
    lambda children: st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)
dicts = st.dictionaries(keys, values, max_size=5)


def leaves(data: Any, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], Any]:
    """Every non-dict value (or empty dict) by its key path."""
    if isinstance(data, dict) and data:
        found: dict[tuple[str, ...], Any] = {}
        for key, value in data.items():
            found.update(leaves(value, (*prefix, key)))
        return found
    return {prefix: data}


def test_dicts_merge_recursively() -> None:
    base = {"env": {"A": "1", "B": "2"}, "cpus": 1}
    override = {"env": {"B": "3", "C": "4"}}
    assert deep_merge(base, override) == {"env": {"A": "1", "B": "3", "C": "4"}, "cpus": 1}


def test_lists_replace_wholesale() -> None:
    assert deep_merge({"args": ["a", "b"]}, {"args": ["c"]}) == {"args": ["c"]}


def test_scalars_and_none_replace() -> None:
    assert deep_merge({"cpus": 1, "cmd": "x"}, {"cpus": 2.5, "cmd": None}) == {"cpus": 2.5, "cmd": None}


def test_dict_replaces_scalar_and_scalar_replaces_dict() -> None:
    assert deep_merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert deep_merge({"a": {"b": 2}}, {"a": 1}) == {"a": 1}


def test_empty_override_and_empty_base() -> None:
    assert deep_merge({"a": {"b": 1}}, {}) == {"a": {"b": 1}}
    assert deep_merge({}, {"a": {"b": 1}}) == {"a": {"b": 1}}


def test_overridden_leaves_reports_only_changed_leaves() -> None:
    base = {"a": {"b": 1, "c": 2}, "d": [1], "e": "same"}
    override = {"a": {"b": 9, "new": 1}, "d": [2], "e": "same", "f": 1}
    assert sorted(overridden_leaves(base, override)) == ["a.b", "d"]


@given(dicts, dicts)
def test_inputs_are_not_mutated(base: dict[str, Any], override: dict[str, Any]) -> None:
    base_copy, override_copy = copy.deepcopy(base), copy.deepcopy(override)
    deep_merge(base, override)
    assert base == base_copy
    assert override == override_copy


@given(dicts, dicts)
def test_keys_of_both_sides_are_preserved(base: dict[str, Any], override: dict[str, Any]) -> None:
    assert set(deep_merge(base, override)) == set(base) | set(override)


@given(dicts, dicts)
def test_every_override_leaf_wins(base: dict[str, Any], override: dict[str, Any]) -> None:
    merged = deep_merge(base, override)
    for path, value in leaves(override).items():
        if not path:
            continue
        node: Any = merged
        for key in path:
            node = node[key]
        if value == {}:
            assert isinstance(node, dict)  # an empty dict merges into (and keeps) the base dict
        else:
            assert node == value


@given(dicts, dicts)
def test_base_leaves_survive_unless_overridden(base: dict[str, Any], override: dict[str, Any]) -> None:
    merged = deep_merge(base, override)
    override_paths = leaves(override)
    for path, value in leaves(base).items():
        if any(path[: len(p)] == p or p[: len(path)] == path for p in override_paths if p):
            continue
        node: Any = merged
        for key in path:
            node = node[key]
        assert node == value


@given(dicts)
def test_identity_and_idempotence(data: dict[str, Any]) -> None:
    assert deep_merge({}, data) == data
    assert deep_merge(data, {}) == data
    assert deep_merge(data, data) == data


def _shaped(depth: int) -> st.SearchStrategy[dict[str, Any]]:
    """Dicts where a key's kind is fixed by its name (`d*` -> dict, others -> scalar or list),
    as in real configs, where `env` is always a dict and `cpus` always a number."""
    plain = {k: scalars | st.lists(scalars, max_size=2) for k in ("s1", "s2", "l")}
    nested = {k: _shaped(depth - 1) for k in ("d1", "d2")} if depth else {}
    return st.fixed_dictionaries({}, optional={**plain, **nested})


shaped = _shaped(2)


def test_not_associative_when_a_scalar_replaces_a_dict_in_between() -> None:
    # documented consequence of "scalars replace": the middle file's scalar erases the dict
    a: dict[str, Any] = {"a": {"x": 1}}
    b: dict[str, Any] = {"a": None}
    c: dict[str, Any] = {"a": {}}
    assert deep_merge(deep_merge(a, b), c) == {"a": {}}
    assert deep_merge(a, deep_merge(b, c)) == {"a": {"x": 1}}


@given(shaped, shaped, shaped)
def test_associative_for_consistently_shaped_configs(
    a: dict[str, Any], b: dict[str, Any], c: dict[str, Any]
) -> None:
    assert deep_merge(deep_merge(a, b), c) == deep_merge(a, deep_merge(b, c))


@given(dicts, dicts)
def test_overridden_leaves_are_real_leaf_paths(base: dict[str, Any], override: dict[str, Any]) -> None:
    for dotted in overridden_leaves(base, override):
        path = tuple(dotted.split("."))
        b: Any = base
        o: Any = override
        for key in path:
            b, o = b[key], o[key]
        assert b != o
