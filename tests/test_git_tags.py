"""git_tags: tag names round-trip, odd refs are skipped, newest deploy tag wins, state tags.

Behaviours covered:
- formatting then parsing gives back deploy group, image version and timestamp, for any group
  made of dots, dashes and letters (property-style, hypothesis);
- a dotted group never matches a look-alike ("prod.main" vs "prodXmain") - PaaSTA's regex bug;
- refs that are not ours are ignored; paasta-* refs that do not parse are ignored with a debug line;
- newest deploy tag per group regardless of listing order; ties decided by ref name;
- state tags only count on the deployed sha; newest wins; the legacy paasta-paasta- prefix.
"""

from __future__ import annotations

import logging
import random
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paasta_lite.gitflow import tags as git_tags
from paasta_lite.gitflow.tags import (
    DeployTag,
    deploy_tag_name,
    desired_state,
    latest_deploy_tags,
    parse_deploy_tag,
    parse_refs,
    parse_state_tag,
    state_tag_name,
)

SHA_A = "a" * 40
SHA_B = "b" * 40

groups = st.from_regex(r"[a-z0-9][a-z0-9.\-_]{0,30}[a-z0-9]", fullmatch=True).filter(
    lambda g: ".." not in g and not g.endswith(".lock")
)
image_versions = st.from_regex(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,20}", fullmatch=True).filter(
    lambda v: ".." not in v and not v.endswith(".") and not v.endswith(".lock")
)
timestamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31), timezones=st.just(timezone.utc)
).map(git_tags.format_timestamp)


@given(group=groups, image_version=st.none() | image_versions, timestamp=timestamps)
def test_deploy_tag_round_trips(group: str, image_version: str | None, timestamp: str) -> None:
    name = deploy_tag_name(group, timestamp, image_version)
    parsed = parse_deploy_tag(f"refs/tags/{name}", SHA_A)
    assert parsed == DeployTag(group, image_version, timestamp, SHA_A, f"refs/tags/{name}")
    assert parse_state_tag(f"refs/tags/{name}", SHA_A) is None


@given(
    cluster=groups,
    instance=st.from_regex(r"[a-z0-9][a-z0-9_\-]{0,20}", fullmatch=True),
    timestamp=timestamps,
    state=st.sampled_from(["start", "stop"]),
)
def test_state_tag_round_trips(cluster: str, instance: str, timestamp: str, state: str) -> None:
    name = state_tag_name(cluster, instance, timestamp, state)
    parsed = parse_state_tag(f"refs/tags/{name}", SHA_B)
    assert parsed is not None
    assert (parsed.branch, parsed.state, parsed.timestamp) == (f"{cluster}.{instance}", state, timestamp)
    assert parse_deploy_tag(f"refs/tags/{name}", SHA_B) is None


@given(
    tags=st.lists(st.tuples(st.sampled_from(["a.b", "a-b", "a.b-c"]), timestamps), min_size=1, max_size=20),
    seed=st.integers(),
)
def test_latest_deploy_tag_ignores_listing_order(tags: list[tuple[str, str]], seed: int) -> None:
    refs = {f"refs/tags/{deploy_tag_name(g, ts)}": f"{i:040x}" for i, (g, ts) in enumerate(tags)}
    shuffled = list(refs.items())
    random.Random(seed).shuffle(shuffled)
    latest = latest_deploy_tags(parse_refs(refs).deploy_tags)
    assert latest == latest_deploy_tags(parse_refs(dict(shuffled)).deploy_tags)
    for group, tag in latest.items():
        assert tag.timestamp == max(ts for g, ts in tags if g == group)


def test_format_timestamp_converts_to_utc() -> None:
    local = datetime(2024, 1, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-5)))
    assert git_tags.format_timestamp(local) == "20240201T045959"
    assert git_tags.format_timestamp(datetime(2024, 1, 2, 3, 4, 5)) == "20240102T030405"


def test_dotted_group_does_not_match_lookalike() -> None:
    refs = {
        "refs/tags/paasta-prodXmain-20240101T000000-deploy": SHA_A,
        "refs/tags/paasta-prod.main-20230101T000000-deploy": SHA_B,
    }
    latest = latest_deploy_tags(parse_refs(refs).deploy_tags, ["prod.main"])
    assert latest["prod.main"].sha == SHA_B
    assert set(latest) == {"prod.main"}


def test_dashes_in_group_and_image_version() -> None:
    tag = parse_deploy_tag("refs/tags/paasta-us-west-2.canary+build-7.1-20240101T000000-deploy", SHA_A)
    assert tag is not None
    assert (tag.deploy_group, tag.image_version) == ("us-west-2.canary", "build-7.1")


def test_group_that_looks_like_it_holds_a_timestamp() -> None:
    tag = parse_deploy_tag("refs/tags/paasta-a-20240101T000000-b-20240102T000000-deploy", SHA_A)
    assert tag is not None
    assert (tag.deploy_group, tag.timestamp) == ("a-20240101T000000-b", "20240102T000000")


def test_unparsable_refs_are_ignored_with_a_debug_line(caplog: pytest.LogCaptureFixture) -> None:
    refs = {
        "refs/heads/main": SHA_A,
        "refs/tags/v1.0": SHA_A,
        "refs/tags/paasta-prod.main-2024-deploy": SHA_A,  # bad timestamp
        "refs/tags/paasta-prod.main-20240101T000000-rollback": SHA_A,
        "refs/tags/paasta--20240101T000000-deploy": SHA_A,  # empty group
        "refs/tags/paasta-prod.main-20240101T000000-deploy": SHA_B,
        "refs/tags/paasta-c1.main-20240101T000000-restart": SHA_B,
    }
    with caplog.at_level(logging.DEBUG, logger="paasta_lite.gitflow.tags"):
        parsed = parse_refs(refs)
    assert [t.deploy_group for t in parsed.deploy_tags] == ["prod.main"]
    assert parsed.state_tags == ()
    ignored = [r.getMessage() for r in caplog.records]
    assert len(ignored) == 4
    assert any("paasta-prod.main-2024-deploy" in m for m in ignored)
    assert not any("refs/heads/main" in m or "v1.0" in m for m in ignored)


def test_equal_timestamps_are_decided_by_ref_name() -> None:
    refs = {
        "refs/tags/paasta-g+b-20240101T000000-deploy": SHA_B,
        "refs/tags/paasta-g+a-20240101T000000-deploy": SHA_A,
    }
    assert latest_deploy_tags(parse_refs(refs).deploy_tags)["g"].image_version == "b"


@pytest.mark.parametrize(
    ("group", "image_version", "fragment"),
    [
        ("a+b", None, "'+'"),
        ("a b", None, "' '"),
        ("a..b", None, "'..'"),
        ("a/b", None, "'/'"),
        ("", None, "empty"),
        ("x.lock", None, ".lock"),
        ("ok", "has space", "docker image tag"),
        ("ok", "x" * 81, "1-80"),
    ],
)
def test_names_that_cannot_be_tags_are_refused(group: str, image_version: str | None, fragment: str) -> None:
    with pytest.raises(ValueError) as info:
        deploy_tag_name(group, "20240101T000000", image_version)
    assert fragment in str(info.value)


def test_bad_timestamp_and_state_are_refused() -> None:
    with pytest.raises(ValueError):
        deploy_tag_name("g", "2024-01-01")
    with pytest.raises(ValueError):
        state_tag_name("c", "i", "20240101T000000", "restart")


def _state_refs(*tags: tuple[str, str, str, str, str]) -> dict[str, str]:
    """(cluster, instance, timestamp, state, sha) -> {ref: sha}."""
    return {f"refs/tags/{state_tag_name(c, i, ts, state)}": sha for c, i, ts, state, sha in tags}


def test_state_tags_only_count_on_the_deployed_sha() -> None:
    refs = _state_refs(
        ("c1", "main", "20240101T000000", "stop", SHA_A),
        ("c1", "main", "20240102T000000", "start", SHA_A),
        ("c1", "main", "20240103T000000", "stop", SHA_B),
        ("c1", "other", "20240104T000000", "stop", SHA_A),
    )
    tags = parse_refs(refs).state_tags
    # newest on sha A is the start (a restart): force_bounce is its timestamp
    assert desired_state("c1.main", SHA_A, tags) == ("start", "20240102T000000")
    # a new deploy (sha B) carries its own stop
    assert desired_state("c1.main", SHA_B, tags) == ("stop", "20240103T000000")
    # nothing on an unrelated sha: a newer deploy undoes a stop
    assert desired_state("c1.main", "c" * 40, tags) == ("start", None)
    assert desired_state("c1.other", SHA_A, tags) == ("stop", "20240104T000000")


def test_legacy_double_prefix_counts() -> None:
    refs = {"refs/tags/paasta-paasta-c1.main-20240101T000000-stop": SHA_A}
    assert desired_state("c1.main", SHA_A, parse_refs(refs).state_tags) == ("stop", "20240101T000000")


def test_cluster_named_paasta_something() -> None:
    refs = {"refs/tags/paasta-paasta-dev.main-20240101T000000-stop": SHA_A}
    tags = parse_refs(refs).state_tags
    assert desired_state("paasta-dev.main", SHA_A, tags) == ("stop", "20240101T000000")


def test_next_timestamp_always_sorts_after_the_newest() -> None:
    assert git_tags.next_timestamp(None, "20240101T000000") == "20240101T000000"
    assert git_tags.next_timestamp("20231231T235959", "20240101T000000") == "20240101T000000"
    assert git_tags.next_timestamp("20240101T000000", "20240101T000000") == "20240101T000001"
    assert git_tags.next_timestamp("20241231T235959", "20240101T000000") == "20250101T000000"
