"""Deploy event log: record format, drivers, failures that must not break a deploy, concurrent
appenders, and reading back (filters, limit, follow)."""

from __future__ import annotations

import json
import multiprocessing
import os
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from paasta_lite.errors import NotConfiguredError
from paasta_lite.status.event_log import (
    EventQuery,
    EventTail,
    event_location,
    format_timestamp,
    log_event,
    parse_event_line,
    read_events,
    reader_config,
    writer_config,
)
from paasta_lite.timestamps import parse_iso

T0 = datetime(2024, 5, 1, 12, 0, 0, tzinfo=timezone.utc)


def file_writer(directory: Path, **options: Any) -> dict[str, Any]:
    return {"driver": "file", "options": {"directory": str(directory), **options}}


def all_lines(directory: Path) -> list[str]:
    return [line for path in sorted(directory.rglob("*.jsonl")) for line in path.read_text().splitlines()]


def test_record_is_one_sorted_json_line(tmp_path: Path) -> None:
    log_event(
        file_writer(tmp_path),
        service="web",
        instance="main",
        cluster="kind",
        message="\x1b[32mcreated\x1b[0m Deployment web-main",
        now=T0,
    )
    (line,) = (tmp_path / "web" / "deploy.jsonl").read_text().splitlines()
    record = json.loads(line)
    assert list(record) == sorted(record)
    assert record == {
        "cluster": "kind",
        "component": "deploy",
        "instance": "main",
        "level": "event",
        "message": "created Deployment web-main",
        "service": "web",
        "timestamp": "2024-05-01T12:00:00.000000+00:00",
    }


def test_missing_cluster_and_instance_read_na(tmp_path: Path) -> None:
    log_event(file_writer(tmp_path), service="web", message="marked abc for prod", now=T0)
    record = json.loads(all_lines(tmp_path)[0])
    assert (record["cluster"], record["instance"]) == ("N/A", "N/A")


def test_location_never_shows_the_na_placeholders(tmp_path: Path) -> None:
    """The file keeps PaaSTA's N/A; people see `kind.main`, `kind`, or nothing (never N/A.N/A)."""
    writer = file_writer(tmp_path)
    log_event(writer, service="web", message="marked abc for prod", now=T0)
    log_event(writer, service="web", cluster="kind", message="namespace created", now=T0)
    log_event(writer, service="web", cluster="kind", instance="main", message="updated", now=T0)
    events = read_events(reader_config(writer), EventQuery(service="web"))
    assert [event_location(event) for event in events] == ["", "kind", "kind.main"]


def test_timestamps_are_utc(tmp_path: Path) -> None:
    plus_two = timezone(timedelta(hours=2))
    assert (
        format_timestamp(datetime(2024, 5, 1, 14, 0, tzinfo=plus_two)) == "2024-05-01T12:00:00.000000+00:00"
    )
    assert parse_iso("2024-05-01T12:00:00Z") == T0
    assert parse_iso("2024-05-01T12:00:00") == T0


def test_accepts_whole_raw_system_config_and_object_with_log_writer(tmp_path: Path) -> None:
    class Config:
        log_writer = file_writer(tmp_path / "a")

    log_event({"cluster": "kind", "log_writer": file_writer(tmp_path / "b")}, service="x", message="m")
    log_event(Config(), service="x", message="m")
    assert len(all_lines(tmp_path / "a")) == 1
    assert len(all_lines(tmp_path / "b")) == 1


def test_default_writer_is_a_file_under_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    log_event(None, service="web", message="m")
    assert (tmp_path / ".paasta_lite" / "logs" / "web" / "deploy.jsonl").is_file()
    assert writer_config({}).driver == "file"


def test_null_driver_discards(private_home: Path) -> None:
    log_event({"driver": "null"}, service="web", message="m")
    assert not list(private_home.rglob("*"))
    with pytest.raises(NotConfiguredError, match="null"):
        reader_config({"driver": "null"})


def test_failed_write_warns_and_returns(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    log_event(file_writer(blocker), service="web", message="created X")
    log_event({"driver": "scribe"}, service="web", message="created Y")
    log_event({"driver": 3}, service="web", message="created Z")
    err = capsys.readouterr().err
    assert "could not record event" in err and "created X" in err
    assert "unknown log_writer driver 'scribe'" in err
    assert "created Z" in err


def test_path_format_fields_are_sanitised(tmp_path: Path) -> None:
    writer = file_writer(tmp_path, path_format="{service}/{cluster}/{instance}.jsonl")
    log_event(writer, service="web", cluster="../../etc", instance="a/b", message="m")
    (path,) = tmp_path.rglob("*.jsonl")
    assert path.is_relative_to(tmp_path)
    assert path.name == "a_b.jsonl"


def _append_many(args: tuple[str, int]) -> None:
    directory, worker = args
    for n in range(200):
        log_event(
            file_writer(Path(directory)), service="web", instance=f"w{worker}", message=f"{worker}-{n}" * 50
        )


def test_concurrent_appenders_never_interleave(tmp_path: Path) -> None:
    with multiprocessing.get_context("fork").Pool(4) as pool:
        pool.map(_append_many, [(str(tmp_path), worker) for worker in range(4)])
    lines = all_lines(tmp_path)
    assert len(lines) == 800
    assert all(parse_event_line(line) is not None for line in lines)


def test_read_filters_sorts_and_limits(tmp_path: Path) -> None:
    writer = file_writer(tmp_path, path_format="{service}/{instance}.{component}.jsonl")
    log_event(writer, service="web", instance="canary", cluster="kind", message="c1", now=T0 + timedelta(2))
    log_event(writer, service="web", instance="main", cluster="kind", message="m1", now=T0)
    log_event(writer, service="web", instance="main", cluster="prod", message="p1", now=T0)
    log_event(writer, service="web", message="marked", now=T0 + timedelta(1))
    log_event(writer, service="web", instance="main", level="debug", message="dbg", now=T0)
    log_event(writer, service="api", instance="main", message="other", now=T0)
    config = reader_config(writer)

    everything = read_events(config, EventQuery(service="web"))
    assert [e.message for e in everything] == ["m1", "p1", "marked", "c1"]
    main_kind = read_events(config, EventQuery(service="web", instances=("main",), clusters=("kind",)))
    assert [e.message for e in main_kind] == ["m1", "marked"]
    since = read_events(config, EventQuery(service="web", since=T0 + timedelta(1)))
    assert [e.message for e in since] == ["marked", "c1"]
    assert [e.message for e in read_events(config, EventQuery(service="web"), limit=1)] == ["c1"]
    with_debug = read_events(config, EventQuery(service="web", levels=()))
    assert "dbg" in [e.message for e in with_debug]


def test_unparseable_lines_are_skipped(tmp_path: Path) -> None:
    writer = file_writer(tmp_path)
    log_event(writer, service="web", message="good", now=T0)
    with open(tmp_path / "web" / "deploy.jsonl", "a") as handle:
        handle.write("not json\n[1]\n{}\n")
    assert [e.message for e in read_events(reader_config(writer), EventQuery(service="web"))] == ["good"]


def test_tail_returns_only_new_complete_lines(tmp_path: Path) -> None:
    writer = file_writer(tmp_path, path_format="{service}/{instance}.jsonl")
    log_event(writer, service="web", instance="main", message="old", now=T0)
    tail = EventTail(reader_config(writer), EventQuery(service="web"))
    tail.skip_existing()
    assert tail.poll() == []

    log_event(writer, service="web", instance="main", message="new", now=T0)
    log_event(writer, service="web", instance="canary", message="new file", now=T0)
    path = tmp_path / "web" / "main.jsonl"
    partial = '{"cluster": "N/A", "component": "deploy", "instance": "main", '
    with open(path, "a") as handle:
        handle.write(partial)
    assert sorted(e.message for e in tail.poll()) == ["new", "new file"]
    assert tail.poll() == []
    with open(path, "a") as handle:
        handle.write(
            '"level": "event", "message": "done", "service": "web", "timestamp": "2024-05-01T12:00:00Z"}\n'
        )
    assert [e.message for e in tail.poll()] == ["done"]
    os.truncate(path, 0)
    assert tail.poll() == []
