"""paasta_lite's own deploy event log: one small writer, and the reader behind `paasta logs -C deploy`.

PaaSTA's log readers only work inside Yelp (its issue #64); its `file` *writer* exists but nothing
reads it back. Here the entry points (mark-for-deployment, start/stop, the reconcilers) append one
JSON line per event through :func:`log_event`, and `paasta logs -C deploy` reads the same files.

Record format (PaaSTA's): one JSON object per line, keys sorted::

    {"cluster", "component", "instance", "level", "message", "service", "timestamp"}

``timestamp`` is UTC ISO-8601, ANSI escapes are stripped from the message, and ``cluster`` /
``instance`` default to ``"N/A"``.

Configuration is the system config's ``log_writer`` (raw dict)::

    {"driver": "file", "options": {"directory": "/var/log/paasta_lite",
                                   "path_format": "{service}/{component}.jsonl"}}
    {"driver": "null"}                      # discard every event

No ``log_writer`` means the ``file`` driver in ``~/.paasta_lite/logs``. ``path_format`` may use
``{service} {component} {level} {cluster} {instance}`` and is relative to ``directory`` unless
absolute. Writing never breaks a deploy: any failure is a warning on stderr.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Protocol

from paasta_lite.errors import NotConfiguredError
from paasta_lite.timestamps import parse_iso

DEFAULT_DIRECTORY = "~/.paasta_lite/logs"
DEFAULT_PATH_FORMAT = "{service}/{component}.jsonl"
NOT_APPLICABLE = "N/A"
PATH_FIELDS = ("service", "component", "level", "cluster", "instance")

_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
_UNSAFE_PATH_CHARS = re.compile(r"[^A-Za-z0-9_.\-]")


# --- pure: the record ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    """One deploy-log record, as written and as read back."""

    service: str
    component: str
    level: str
    message: str
    timestamp: datetime
    cluster: str = NOT_APPLICABLE
    instance: str = NOT_APPLICABLE


def event_location(event: Event) -> str:
    """Where an event happened, for people: ``kind.main``, ``kind`` (a namespace-wide event), or
    ``""`` for a service-wide one (mark-for-deployment has no cluster or instance). The record keeps
    PaaSTA's ``N/A`` placeholders; they are never shown.
    """
    parts = [part for part in (event.cluster, event.instance) if part and part != NOT_APPLICABLE]
    return ".".join(parts)


def strip_ansi(text: str) -> str:
    """Remove ANSI colour/cursor sequences so the log never carries terminal noise."""
    return _ANSI_ESCAPE.sub("", text)


def format_timestamp(moment: datetime) -> str:
    """UTC ISO-8601 with microseconds, e.g. ``2024-05-01T12:00:00.000000+00:00``."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def format_event(event: Event) -> str:
    """The JSON line for one event (sorted keys, no trailing newline)."""
    record = {
        "cluster": event.cluster or NOT_APPLICABLE,
        "component": event.component,
        "instance": event.instance or NOT_APPLICABLE,
        "level": event.level,
        "message": strip_ansi(event.message),
        "service": event.service,
        "timestamp": format_timestamp(event.timestamp),
    }
    return json.dumps(record, sort_keys=True)


def parse_event_line(line: str) -> Event | None:
    """Read one JSON line back; ``None`` for a line that is not a well-formed record."""
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    try:
        return Event(
            service=str(record["service"]),
            component=str(record["component"]),
            level=str(record.get("level", "event")),
            message=str(record.get("message", "")),
            timestamp=parse_iso(str(record["timestamp"])),
            cluster=str(record.get("cluster") or NOT_APPLICABLE),
            instance=str(record.get("instance") or NOT_APPLICABLE),
        )
    except (KeyError, ValueError):
        return None


# --- pure: configuration ------------------------------------------------------------------------


@dataclass(frozen=True)
class WriterConfig:
    """The parsed ``log_writer``: which driver, and for ``file`` where the files go."""

    driver: str
    directory: str = DEFAULT_DIRECTORY
    path_format: str = DEFAULT_PATH_FORMAT
    use_flock: bool = True


class _HasLogWriter(Protocol):
    @property
    def log_writer(self) -> Mapping[str, Any] | None: ...


SystemConfigLike = _HasLogWriter | Mapping[str, Any] | None


def writer_config(system_config: SystemConfigLike) -> WriterConfig:
    """Parse ``log_writer`` from a `SystemConfig`, its raw ``log_writer`` dict, or ``None``.

    Raises `NotConfiguredError` for a malformed value; callers that must not fail (writers) catch it.
    """
    raw: Any
    if system_config is None:
        raw = None
    elif isinstance(system_config, Mapping):
        # Either the ``log_writer`` dict itself or a whole raw system config.
        raw = system_config if "driver" in system_config else system_config.get("log_writer")
    else:
        raw = system_config.log_writer
    if not raw:
        return WriterConfig(driver="file")
    if not isinstance(raw, Mapping) or not isinstance(raw.get("driver"), str):
        raise NotConfiguredError(f"log_writer must be an object with a 'driver', got {raw!r}")
    options = raw.get("options") or {}
    if not isinstance(options, Mapping):
        raise NotConfiguredError(f"log_writer.options must be an object, got {options!r}")
    return WriterConfig(
        driver=raw["driver"],
        directory=str(options.get("directory", DEFAULT_DIRECTORY)),
        path_format=str(options.get("path_format", DEFAULT_PATH_FORMAT)),
        use_flock=bool(options.get("flock", True)),
    )


def _path_value(value: str) -> str:
    """Make a field safe as a path component (no separators, no ``..``)."""
    cleaned = _UNSAFE_PATH_CHARS.sub("_", value or NOT_APPLICABLE)
    return cleaned if cleaned.strip(".") else "_"


def event_path(config: WriterConfig, fields: Mapping[str, str]) -> str:
    """Absolute path of the file for these fields; missing fields become ``*`` (for globbing)."""
    values = {name: (_path_value(fields[name]) if name in fields else "*") for name in PATH_FIELDS}
    relative = config.path_format.format(**values)
    return os.path.join(os.path.expanduser(config.directory), relative)


# --- I/O: writing -------------------------------------------------------------------------------


def _warn(message: str) -> None:
    print(f"warning: deploy event log: {message}", file=sys.stderr)


def append_line(path: str, line: str, *, use_flock: bool = True) -> None:
    """Append one line with a single ``write`` on an ``O_APPEND`` descriptor.

    ``O_APPEND`` makes every write land at the current end of file, and one ``write`` call per
    line (under an advisory ``flock`` when available) keeps concurrent appenders from interleaving.
    """
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    data = (line.rstrip("\n") + "\n").encode("utf-8")
    descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        if use_flock:
            _lock(descriptor)
        written = os.write(descriptor, data)
        if written != len(data):
            raise OSError(f"short write to {path}: {written} of {len(data)} bytes")
    finally:
        os.close(descriptor)  # closing releases the flock


def _lock(descriptor: int) -> None:
    try:
        import fcntl
    except ImportError:  # not POSIX: rely on O_APPEND alone
        return
    # A filesystem without flock: the single O_APPEND write still holds.
    with contextlib.suppress(OSError):
        fcntl.flock(descriptor, fcntl.LOCK_EX)


def log_event(
    system_config: SystemConfigLike,
    *,
    service: str,
    message: str,
    instance: str | None = None,
    cluster: str | None = None,
    component: str = "deploy",
    level: str = "event",
    now: datetime | None = None,
) -> None:
    """Append one event to the deploy log configured by ``system_config.log_writer``.

    Call this from entry points for things a service owner wants in its deploy history: marks
    for deployment, stop/start, reconciler actions (created/updated/deleted, failures). Example::

        log_event(system_config, service="web", instance="main", cluster="kind",
                  message="updated Deployment web-main to git sha abc1234")

    ``system_config`` may be a `SystemConfig`, its raw ``log_writer`` dict, or ``None`` (default
    file writer). ``level`` is ``"event"`` (shown by default) or ``"debug"``. This never raises:
    a failed write (bad config, full disk, permissions) prints a warning to stderr and returns,
    so logging can never break a deploy.
    """
    event = Event(
        service=service,
        component=component,
        level=level,
        message=message,
        timestamp=now or datetime.now(timezone.utc),
        cluster=cluster or NOT_APPLICABLE,
        instance=instance or NOT_APPLICABLE,
    )
    try:
        config = writer_config(system_config)
        if config.driver == "null":
            return
        if config.driver != "file":
            _warn(f"unknown log_writer driver {config.driver!r}; event dropped: {message}")
            return
        path = event_path(config, _fields_of(event))
        append_line(path, format_event(event), use_flock=config.use_flock)
    except (OSError, NotConfiguredError, ValueError, KeyError, IndexError) as error:
        _warn(f"could not record event ({error}); event was: {message}")


def _fields_of(event: Event) -> dict[str, str]:
    return {
        "service": event.service,
        "component": event.component,
        "level": event.level,
        "cluster": event.cluster,
        "instance": event.instance,
    }


# --- I/O: reading -------------------------------------------------------------------------------


@dataclass(frozen=True)
class EventQuery:
    """Which events `paasta logs -C deploy` wants (empty tuples mean "any")."""

    service: str
    components: tuple[str, ...] = ("deploy",)
    clusters: tuple[str, ...] = ()
    instances: tuple[str, ...] = ()
    levels: tuple[str, ...] = ("event",)
    since: datetime | None = None

    def matches(self, event: Event) -> bool:
        """True when the event belongs to this query (N/A cluster/instance match any filter)."""
        return (
            event.service == self.service
            and event.component in self.components
            and (not self.levels or event.level in self.levels)
            and _matches_filter(event.cluster, self.clusters)
            and _matches_filter(event.instance, self.instances)
            and (self.since is None or event.timestamp >= self.since)
        )


def _matches_filter(value: str, wanted: Sequence[str]) -> bool:
    return not wanted or value == NOT_APPLICABLE or value in wanted


def reader_config(system_config: SystemConfigLike) -> WriterConfig:
    """The writer config the reader follows; raises `NotConfiguredError` when nothing is kept."""
    config = writer_config(system_config)
    if config.driver == "null":
        raise NotConfiguredError(
            "the system config's log_writer driver is 'null', so deploy events are not recorded; "
            'use {"driver": "file", "options": {"directory": ...}} to keep them'
        )
    if config.driver != "file":
        raise NotConfiguredError(f"cannot read deploy events written by log_writer driver {config.driver!r}")
    return config


def event_files(config: WriterConfig, query: EventQuery) -> list[str]:
    """Every file that may hold events for the query (one glob per component)."""
    paths: set[str] = set()
    for component in query.components:
        pattern = event_path(config, {"service": query.service, "component": component})
        paths.update(p for p in glob.glob(pattern) if os.path.isfile(p))
    return sorted(paths)


def _events_in(lines: Iterable[str], query: EventQuery) -> Iterator[Event]:
    for line in lines:
        event = parse_event_line(line)
        if event is not None and query.matches(event):
            yield event


def read_events(config: WriterConfig, query: EventQuery, *, limit: int | None = None) -> list[Event]:
    """All matching events across the files, oldest first; the last ``limit`` when given."""
    events: list[Event] = []
    for path in event_files(config, query):
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                events.extend(_events_in(handle, query))
        except OSError as error:
            _warn(f"cannot read {path}: {error}")
    events.sort(key=lambda event: event.timestamp)
    return events[-limit:] if limit else events


@dataclass
class EventTail:
    """Follow the event files: each `poll` returns events appended since the last one.

    Remembers a byte offset per file and only consumes complete lines, so a line being written
    while we read is picked up whole on the next poll; new files (a new instance) are found too.
    """

    config: WriterConfig
    query: EventQuery
    offsets: dict[str, int] = field(default_factory=dict)

    def skip_existing(self) -> None:
        """Start from the current end of every file (after printing history with `read_events`)."""
        for path in event_files(self.config, self.query):
            with contextlib.suppress(OSError):
                self.offsets[path] = os.path.getsize(path)

    def poll(self) -> list[Event]:
        events: list[Event] = []
        for path in event_files(self.config, self.query):
            events.extend(self._read_new(path))
        events.sort(key=lambda event: event.timestamp)
        return events

    def _read_new(self, path: str) -> list[Event]:
        offset = self.offsets.get(path, 0)
        try:
            with open(path, "rb") as handle:
                if os.fstat(handle.fileno()).st_size < offset:
                    offset = 0  # truncated or replaced: start over
                handle.seek(offset)
                data = handle.read()
        except OSError as error:
            _warn(f"cannot read {path}: {error}")
            return []
        complete = data[: data.rfind(b"\n") + 1]
        self.offsets[path] = offset + len(complete)
        lines = complete.decode("utf-8", errors="replace").splitlines()
        return list(_events_in(lines, self.query))
