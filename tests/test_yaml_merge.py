"""parse_yaml: `<<` merge keys follow the YAML merge spec, and hostile documents stay bounded.

Covers: merge precedence for one- and multi-character keys (`<<: [*a, *b]`: the first mapping
wins; explicit keys win over merged ones; PyYAML 6.0.4 gets the multi-character case wrong,
yaml/pyyaml#953), checked against a reference model for generated templates; templates nested in
templates (merged keys are not duplicates of explicit ones, a template's own merges come first,
templates are not changed by being merged); merge values that are not mappings; alias bombs and
merge-key bombs refused within bounded time and memory; deep nesting (in the text or through
aliases) refused with "nested too deeply"; recursive aliases refused; scalars that claim a tag
they do not fit; and no exception other than ConfigError for generated garbage.

These properties must hold on every PyYAML the project allows (the loader uses only its public
API), so run this file against the newest release too (`make test-latest`).
"""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paasta_lite.config.files import MAX_EXPANDED_NODES, MAX_NESTING_DEPTH, parse_yaml
from paasta_lite.errors import ConfigError

#: CPU seconds (not wall time: a busy, shared runner must not fail these), and generous: the bound
#: tells "refused early" from an unbounded expansion, which takes minutes or never ends.
FAST_SECONDS = 5.0
#: Peak Python allocations while refusing a bomb (an expanded bomb needs gigabytes).
SMALL_PEAK_BYTES = 64 * 1024 * 1024


def parse(text: str) -> Any:
    return parse_yaml(text, "f.yaml")


def refusal(text: str) -> str:
    with pytest.raises(ConfigError) as excinfo:
        parse(text)
    return str(excinfo.value)


def bounded(action: Callable[[], object]) -> tuple[float, int]:
    """Seconds taken by `action` and its peak traced memory (timed without tracing)."""
    start = time.process_time()
    with pytest.raises(ConfigError):
        action()
    seconds = time.process_time() - start
    tracemalloc.start()
    try:
        with pytest.raises(ConfigError):
            action()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return seconds, peak


# --- precedence -------------------------------------------------------------------------------

@pytest.mark.parametrize("key", ["x", "xy", "cpus", "a_much_longer_key_name"])
def test_first_mapping_of_a_merge_list_wins(key: str) -> None:
    text = f"a: &a {{{key}: from_a}}\nb: &b {{{key}: from_b}}\nc: {{<<: [*a, *b]}}\n"
    assert parse(text)["c"] == {key: "from_a"}


@pytest.mark.parametrize("key", ["x", "xy", "cpus"])
def test_explicit_key_wins_over_every_merged_mapping(key: str) -> None:
    text = f"a: &a {{{key}: from_a}}\nb: &b {{{key}: from_b}}\nc: {{<<: [*a, *b], {key}: own}}\n"
    assert parse(text)["c"] == {key: "own"}
    # wherever the explicit key stands relative to `<<`
    text = f"a: &a {{{key}: from_a}}\nc:\n  {key}: own\n  <<: *a\n"
    assert parse(text)["c"] == {key: "own"}


def test_a_later_mapping_fills_only_the_keys_earlier_ones_lack() -> None:
    text = (
        "a: &a {cpus: 1}\n"
        "b: &b {cpus: 2, mem: 200}\n"
        "c: &c {cpus: 3, mem: 300, disk: 30}\n"
        "m: {<<: [*a, *b, *c]}\n"
    )
    assert parse(text)["m"] == {"cpus": 1, "mem": 200, "disk": 30}


def test_merged_values_replace_whole_not_deep_merge() -> None:
    # The YAML merge key is shallow: a nested mapping is taken or replaced as a whole.
    text = "t: &t {env: {A: '1', B: '2'}}\nm: {<<: *t, env: {B: '3'}}\n"
    assert parse(text)["m"] == {"env": {"B": "3"}}


def test_inline_mapping_as_merge_value() -> None:
    assert parse("m: {<<: {x: 1, y: 2}, y: 3}\n")["m"] == {"x": 1, "y": 3}


#: Few keys, so templates overlap often; one- and multi-character ones (PyYAML 6.0.4 differs).
keys = st.sampled_from(["a", "b", "x", "ab", "xy", "cpus", "mem", "env_x"])
templates = st.dictionaries(keys, st.integers(0, 9), max_size=5)


@given(sources=st.lists(templates, min_size=1, max_size=4), explicit=templates)
def test_merge_matches_the_spec_for_any_templates(sources: list[dict[str, int]],
                                                 explicit: dict[str, int]) -> None:
    """Reference model of the YAML merge spec: explicit keys, then each source in list order
    adds only the keys not yet present."""
    expected = dict(explicit)
    for source in sources:
        for key, value in source.items():
            expected.setdefault(key, value)

    def flow(mapping: dict[str, int]) -> str:
        return "{" + ", ".join(f"{key}: {value}" for key, value in mapping.items()) + "}"

    lines = [f"t{i}: &t{i} {flow(source)}" for i, source in enumerate(sources)]
    aliases = ", ".join(f"*t{i}" for i in range(len(sources)))
    body = ", ".join([f"<<: [{aliases}]"] + [f"{key}: {value}" for key, value in explicit.items()])
    document = parse("\n".join([*lines, f"m: {{{body}}}"]) + "\n")
    assert document["m"] == expected
    assert [document[f"t{i}"] for i in range(len(sources))] == sources  # templates untouched


# --- nested templates ---------------------------------------------------------------------------

NESTED = """\
_base: &base
  cpus: 1
  mem: 1000
  env: {TEAM: core}
_web: &web
  <<: *base
  cpus: 2
  healthcheck_uri: /status
_canary: &canary
  instances: 1
  cpus: 0.5
main:
  <<: [*web, *canary]
  mem: 2000
canary:
  <<: [*canary, *web]
"""


def test_templates_nested_in_templates() -> None:
    document = parse(NESTED)
    # _web's own merge is resolved first: its explicit cpus beats _base's
    assert document["_web"] == {"cpus": 2, "mem": 1000, "env": {"TEAM": "core"}, "healthcheck_uri": "/status"}
    # keys that arrive through two merges are not duplicates; first in the list wins; explicit wins
    assert document["main"] == {
        "cpus": 2, "mem": 2000, "env": {"TEAM": "core"}, "healthcheck_uri": "/status", "instances": 1,
    }
    assert document["canary"] == {
        "instances": 1, "cpus": 0.5, "mem": 1000, "env": {"TEAM": "core"}, "healthcheck_uri": "/status",
    }
    # merging never changes the template itself
    assert document["_base"] == {"cpus": 1, "mem": 1000, "env": {"TEAM": "core"}}


def test_the_same_template_reached_twice_is_not_a_duplicate() -> None:
    text = "a: &a {x: 1}\nb: &b {<<: *a, y: 2}\nc: &c {<<: *a, z: 3}\nd: {<<: [*b, *c, *a]}\n"
    assert parse(text)["d"] == {"x": 1, "y": 2, "z": 3}


def test_duplicate_explicit_keys_are_still_refused_next_to_a_merge() -> None:
    error = refusal("a: &a {x: 1}\nb:\n  <<: *a\n  y: 1\n  y: 2\n")
    assert "duplicate key 'y'" in error and "line 5, column 3" in error
    assert "duplicate key '<<'" in refusal("a: &a {x: 1}\nb: {<<: *a, <<: *a}\n")


def test_a_quoted_double_angle_is_an_ordinary_key() -> None:
    assert parse("'<<': 1\nx: 2\n") == {"<<": 1, "x": 2}


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("a:\n  <<: 1\n", "line 2, column 7"),
        ("a:\n  <<: [x]\n", "line 2, column 8"),  # the list's item that is not a mapping
        ("t: &t {x: 1}\na:\n  <<: [*t, [1]]\n", "line 3, column 12"),
        ("t: &t [1]\na: {<<: *t}\n", "line 1, column 8"),  # in the aliased list, where it is written
    ],
)
def test_merge_value_that_is_not_mappings_names_the_line(text: str, where: str) -> None:
    error = refusal(text)
    assert "merge key (<<) takes a mapping or a list of mappings" in error
    assert f"f.yaml: is not valid YAML ({where})" in error


# --- bombs, depth, recursion ----------------------------------------------------------------------

BILLION_LAUGHS = "a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [" + ", ".join([f"*{chr(97 + i)}"] * 10) + "]\n" for i in range(9)
)


def wide_merge_bomb(copies: int, width: int = 1000) -> str:
    """One wide template merged into many mappings: small text, `copies * width` merged entries."""
    template = "t: &t {" + ", ".join(f"k{i}: {i}" for i in range(width)) + "}\n"
    return template + "".join(f"m{i}: {{<<: *t}}\n" for i in range(copies))


def doubling_merge_chain(levels: int) -> str:
    """Each level merges the previous one twice: PyYAML's flattening copies 2**levels entries."""
    lines = ["l0: &l0 {k0: 1, k1: 2}"]
    lines += [f"l{i}: &l{i} {{<<: [*l{i - 1}, *l{i - 1}], z{i}: 1}}" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


def test_alias_bomb_is_refused_fast_and_small() -> None:
    seconds, peak = bounded(lambda: parse_yaml(BILLION_LAUGHS, "lol.yaml"))
    assert seconds < FAST_SECONDS and peak < SMALL_PEAK_BYTES
    error = refusal(BILLION_LAUGHS)
    assert f"f.yaml: expands to more than {MAX_EXPANDED_NODES} values" in error and "alias bomb" in error


def test_merge_key_bomb_is_refused_fast_and_small() -> None:
    text = wide_merge_bomb(2 * MAX_EXPANDED_NODES // 1000)
    seconds, peak = bounded(lambda: parse_yaml(text, "lol.yaml"))
    assert seconds < FAST_SECONDS and peak < SMALL_PEAK_BYTES
    error = refusal(text)
    assert "merge keys (<<) expand to more than" in error and "alias bomb" in error


def test_the_same_merges_below_the_budget_load() -> None:
    document = parse(wide_merge_bomb(10))
    assert document["m9"] == document["t"] and len(document["t"]) == 1000


def test_doubling_merge_chain_costs_linear_work() -> None:
    # 40 levels are 2**40 entries for a loader that copies merged entries; merged by key they
    # are 41 keys, built in well under the time budget.
    start = time.process_time()
    document = parse(doubling_merge_chain(40))
    assert time.process_time() - start < FAST_SECONDS
    assert document["l39"] == {"k0": 1, "k1": 2, **{f"z{i}": 1 for i in range(1, 40)}}


def test_long_merge_chain_is_refused_fast() -> None:
    # each level adds one key to the previous: quadratic entries in all
    lines = [f"l{i}: &l{i} {{<<: *l{i - 1}, z{i}: {i}}}\n" for i in range(1, 3000)]
    text = "l0: &l0 {z0: 0}\n" + "".join(lines)
    start = time.process_time()
    assert "merge keys (<<) expand to more than" in refusal(text)
    assert time.process_time() - start < FAST_SECONDS


@pytest.mark.parametrize("text", ["[" * 600 + "]" * 600, "- " * 600 + "x\n", "a: {" * 600 + "}" * 600])
def test_deep_text_is_refused(text: str) -> None:
    assert "nested too deeply" in refusal(text)


def test_deep_nesting_through_aliases_is_refused() -> None:
    # every line is shallow; following the aliases, level i holds level i - 1
    levels = MAX_NESTING_DEPTH + 10
    text = "a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, levels))
    error = refusal(text)
    assert "nested too deeply" in error and f"at line {MAX_NESTING_DEPTH + 1}, column" in error
    shallow = "a0: &a0 [x]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 100))
    assert parse(shallow)["a2"] == [[["x"]]]


@pytest.mark.parametrize(
    "text",
    [
        "a: &a [*a]\n", "a: &a {b: *a}\n", "a: &a {b: [1, {c: *a}]}\n",
        "a: &a {<<: *a}\n", "a: &a {<<: [{}, *a]}\n",  # through a merge key
    ],
)
def test_recursive_aliases_are_refused(text: str) -> None:
    assert "recursive YAML alias" in refusal(text)


# --- scalars and garbage --------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("a: !!int x\n", "'x' is not a valid !!int"),
        ("a: !!int ''\n", "'' is not a valid !!int"),
        ("a: !!bool maybe\n", "'maybe' is not a valid !!bool"),
        ("a: !!float 1.5.5\n", "'1.5.5' is not a valid !!float"),
        ("a: 2024-13-45\n", "'2024-13-45' is not a valid !!timestamp"),  # the form of a date, no such day
        ("a: !!set {x}\n", "uses the tag !!set, which is not allowed"),
        ("a: !custom x\n", "uses the tag !custom, which is not allowed"),
        ("a: !!map [1]\n", "uses the tag !!map on a sequence, which is not allowed"),
        ("? [a]\n: 1\n", "a mapping key must be a plain value, not a sequence"),
    ],
)
def test_scalars_and_tags_that_do_not_fit_are_errors_with_a_line(text: str, problem: str) -> None:
    error = refusal(text)
    assert error.startswith("f.yaml: is not valid YAML (line 1, column")
    assert error.endswith(problem)


def test_tags_that_fit_still_work() -> None:
    text = "a: !!float 1\nb: !!str 12\nc: !!int '0x1f'\nd: 2024-01-31\ne: ~\nf: =\n"
    document = parse(text)
    assert document["a"] == 1.0 and isinstance(document["a"], float)
    assert document["b"] == "12" and document["c"] == 31 and str(document["d"]) == "2024-01-31"
    assert document["e"] is None and document["f"] == "="


YAML_PIECES = [
    "a", "bb", ": ", "- ", "[", "]", "{", "}", ", ", "&x ", "*x", "&y ", "*y", "<<: ", "? ", "!!int ",
    "!!python/name:os.system ", "!t ", "'", '"', "|\n", ">\n", "\n", "\n  ", "\n    ", "#", "%YAML 1.1\n",
    "---\n", "...\n", "2024-13-45", "0x", ".inf", "~", "=", "\t", "\\", "\x00", "é",
]


@settings(max_examples=400)
@given(st.lists(st.sampled_from(YAML_PIECES), max_size=40).map("".join) | st.text(max_size=120))
def test_garbage_is_data_or_a_config_error(text: str) -> None:
    try:
        parse(text)
    except ConfigError as error:
        assert str(error).startswith("f.yaml: ")
