"""Pure container-log logic: timestamp parsing, --since, pod listings, time-ordered merge, colours,
line format, and following through a bounce without duplicating or losing lines."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paasta_lite.status.pod_logs import (
    NANOS_PER_SECOND,
    FollowState,
    LogLine,
    Marker,
    PodLogSource,
    StreamKey,
    assign_colours,
    collect_fresh,
    format_line,
    fresh_lines,
    last_lines,
    merge_lines,
    parse_k8s_timestamp,
    parse_log_text,
    parse_since,
    pod_log_source,
    window_complete,
)

EPOCH_2024 = int(datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc).timestamp()) * NANOS_PER_SECOND
A = StreamKey("web-main-1", "main")
B = StreamKey("web-main-2", "main")


def line(key: StreamKey, nanos: int, text: str) -> LogLine:
    return LogLine(pod=key.pod, container=key.container, nanos=nanos, text=text)


def test_parse_k8s_timestamp_keeps_nanoseconds() -> None:
    assert parse_k8s_timestamp("2024-05-01T12:00:00.123456789Z") == EPOCH_2024 + 123456789
    assert parse_k8s_timestamp("2024-05-01T12:00:00Z") == EPOCH_2024
    assert parse_k8s_timestamp("2024-05-01T12:00:00.5Z") == EPOCH_2024 + 500_000_000
    assert parse_k8s_timestamp("2024-05-01T14:00:00+02:00") == EPOCH_2024
    assert parse_k8s_timestamp("hello") is None
    assert parse_k8s_timestamp("2024-13-01T12:00:00Z") is None


def test_parse_log_text() -> None:
    text = "2024-05-01T12:00:00.1Z hello world\n2024-05-01T12:00:01Z \nno timestamp here\n"
    parsed = parse_log_text(text, A)
    assert [(p.nanos - EPOCH_2024, p.text) for p in parsed] == [
        (100_000_000, "hello world"),
        (NANOS_PER_SECOND, ""),
        (NANOS_PER_SECOND, "no timestamp here"),
    ]
    assert parsed[0].key == A
    assert parse_log_text("", A) == []


def test_parse_since() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=timezone.utc)
    assert parse_since("10m", now) == now - timedelta(minutes=10)
    assert parse_since("1h30m", now) == now - timedelta(minutes=90)
    assert parse_since("2d", now) == now - timedelta(days=2)
    assert parse_since("2024-05-01T11:00:00Z", now) == now - timedelta(hours=1)
    assert parse_since("2024-05-01T11:00:00", now) == now - timedelta(hours=1)
    for bad in ("", "ten minutes", "10x", "m"):
        with pytest.raises(ValueError, match="--since"):
            parse_since(bad, now)


def pod(
    name: str, statuses: dict[str, dict[str, Any]], containers: list[str] | None = None
) -> dict[str, Any]:
    names = containers if containers is not None else list(statuses)
    return {
        "metadata": {"name": name},
        "spec": {"containers": [{"name": n} for n in names]},
        "status": {"containerStatuses": [{"name": n, **s} for n, s in statuses.items()]},
    }


def test_pod_log_source_knows_which_containers_can_give_logs() -> None:
    raw = pod(
        "p",
        {
            "main": {"state": {"running": {}}, "restartCount": 0},
            "sidecar": {"state": {"waiting": {"reason": "CrashLoopBackOff"}}, "restartCount": 3},
            "new": {"state": {"waiting": {"reason": "ContainerCreating"}}, "restartCount": 0},
            "done": {"state": {"terminated": {"exitCode": 0}}},
        },
    )
    source = pod_log_source(raw)
    assert source.containers == ("main", "sidecar", "new", "done")
    assert [k.container for k in source.streams()] == ["main", "sidecar", "done"]
    pending = pod_log_source(
        {"metadata": {"name": "q"}, "spec": {"containers": [{"name": "main"}]}, "status": {}}
    )
    assert pending.streams() == []


def test_merge_is_time_ordered_and_deterministic_on_ties() -> None:
    a = [line(A, 1, "a1"), line(A, 5, "a5"), line(A, 5, "a5bis")]
    b = [line(B, 2, "b2"), line(B, 5, "b5"), line(B, 9, "b9")]
    assert [x.text for x in merge_lines([a, b])] == ["a1", "b2", "a5", "a5bis", "b5", "b9"]
    assert [x.text for x in last_lines(merge_lines([a, b]), 2)] == ["b5", "b9"]
    assert last_lines(a, 0) == []
    assert last_lines(a, None) == a


def test_colours_are_stable_and_new_pods_get_unused_ones() -> None:
    first = assign_colours({}, ["old-1", "old-2"])
    assert first == {"old-1": 0, "old-2": 1}
    during_bounce = assign_colours(first, ["old-1", "old-2", "new-1"])
    assert during_bounce == {"old-1": 0, "old-2": 1, "new-1": 2}
    after = assign_colours(during_bounce, ["new-1", "new-2"])
    assert after == {"new-1": 2, "new-2": 0}


def test_format_line() -> None:
    entry = line(A, EPOCH_2024 + 7, "GET / 200")
    assert format_line(entry, show_container=False, colour=None, tz=timezone.utc) == (
        "2024-05-01 12:00:00 [web-main-1] GET / 200"
    )
    assert format_line(entry, show_container=True, colour=1, tz=timezone.utc) == (
        "2024-05-01 12:00:00 \x1b[33m[web-main-1/main]\x1b[0m GET / 200"
    )


def test_fresh_lines_skips_overlap_including_same_timestamp_repeats() -> None:
    first = [line(A, 10, "x"), line(A, 20, "y"), line(A, 20, "z")]
    fresh, marker = fresh_lines(first, None)
    assert fresh == first and marker == Marker(nanos=20, repeat=2)
    reread = [line(A, 20, "y"), line(A, 20, "z"), line(A, 20, "w"), line(A, 30, "v")]
    fresh, marker = fresh_lines(reread, marker)
    assert [x.text for x in fresh] == ["w", "v"]
    assert marker == Marker(nanos=30, repeat=1)
    assert fresh_lines([line(A, 30, "v")], marker) == ([], marker)


def source(name: str, *containers: str) -> PodLogSource:
    return PodLogSource(name=name, containers=containers, loggable=frozenset(containers))


def test_follow_tracks_pods_through_a_bounce() -> None:
    state, added, gone = FollowState().track([source("old-1", "main"), source("old-2", "main")])
    assert added == [StreamKey("old-1", "main"), StreamKey("old-2", "main")] and gone == []
    assert state.first_window(StreamKey("old-1", "main"), 100) is None
    state = state.seen(StreamKey("old-1", "main"), [line(StreamKey("old-1", "main"), EPOCH_2024, "hi")])
    assert state.first_window(StreamKey("old-1", "main"), 100) == 100

    state, added, gone = state.track([source("old-1", "main"), source("new-1", "main", "envoy")])
    assert added == [StreamKey("new-1", "main"), StreamKey("new-1", "envoy")]
    assert gone == [StreamKey("old-2", "main")]
    assert "new-1" in state.multi_container and "old-1" not in state.multi_container
    assert state.colours == {"old-1": 0, "new-1": 1}
    assert state.first_window(StreamKey("old-1", "main"), 100) == 100

    state, added, gone = state.track([source("new-1", "main", "envoy")])
    assert added == [] and gone == [StreamKey("old-1", "main")]
    assert set(state.markers) == {StreamKey("new-1", "main"), StreamKey("new-1", "envoy")}


def test_window_must_reach_back_past_the_marker() -> None:
    seen = Marker(nanos=20, repeat=2)
    assert window_complete([line(A, 10, "a"), line(A, 30, "b")], seen, 2)
    assert not window_complete([line(A, 20, "b"), line(A, 20, "c")], seen, 2)  # a seen @20 may be cut
    assert not window_complete([line(A, 30, "c"), line(A, 40, "d")], seen, 2)
    assert window_complete([line(A, 30, "c")], seen, 2)  # shorter than asked: the whole log
    assert window_complete([], None, None)


class LogStore:
    """What the API would serve: each stream's lines so far, ``tailLines`` applied."""

    def __init__(self, lines: list[LogLine]) -> None:
        self.lines = lines
        self.reads: list[int | None] = []

    def read(self, key: StreamKey, upto: int, tail: int | None) -> list[LogLine]:
        self.reads.append(tail)
        stream = [x for x in self.lines[:upto] if x.key == key]
        return stream[-tail:] if tail is not None else stream


def test_collect_fresh_grows_the_window_when_many_lines_arrived() -> None:
    lines = [line(A, EPOCH_2024 + n, f"l{n}") for n in range(50)]
    store = LogStore(lines)
    state, _, _ = FollowState().track([source(A.pod, A.container)])
    state, fresh = collect_fresh(state, A, lambda tail: store.read(A, 5, tail), window=2, cap=100)
    assert [x.text for x in fresh] == ["l0", "l1", "l2", "l3", "l4"] and store.reads == [None]
    state, fresh = collect_fresh(state, A, lambda tail: store.read(A, 50, tail), window=2, cap=100)
    assert len(fresh) == 45 and fresh[0].text == "l5"
    assert store.reads == [None, 2, 8, 32, None]  # 4x each time, then the whole log past the cap
    state, fresh = collect_fresh(state, A, lambda tail: store.read(A, 50, tail), window=2, cap=100)
    assert fresh == [] and store.reads[-1] == 2


stream_lines = st.lists(
    st.tuples(
        st.sampled_from([A, B]), st.sampled_from([0, 0, 0, 7, NANOS_PER_SECOND // 2, NANOS_PER_SECOND])
    ),
    max_size=40,
)


@given(
    entries=stream_lines,
    polls=st.lists(st.integers(min_value=0, max_value=40), max_size=6),
    window=st.integers(min_value=1, max_value=5),
)
def test_following_prints_every_line_exactly_once(
    entries: list[tuple[StreamKey, int]], polls: list[int], window: int
) -> None:
    # Lines arrive in time order per stream; timestamps often repeat exactly and share seconds.
    per_stream: dict[StreamKey, int] = {}
    lines = []
    for n, (key, step) in enumerate(entries):
        nanos = per_stream.get(key, EPOCH_2024) + step
        per_stream[key] = nanos
        lines.append(line(key, nanos, f"line {n}"))
    store = LogStore(lines)
    state, _, _ = FollowState().track([source(A.pod, A.container), source(B.pod, B.container)])
    printed: list[LogLine] = []
    for upto in [*sorted(polls), len(lines)]:
        for key in (A, B):
            state, fresh = collect_fresh(
                state, key, lambda tail, k=key, n=upto: store.read(k, n, tail), window=window, cap=16
            )
            printed.extend(fresh)
    assert sorted(x.text for x in printed) == sorted(x.text for x in lines)
    assert len(printed) == len(lines)
