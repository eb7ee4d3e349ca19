"""Pure logic behind `paasta logs` for container output: parse, merge, colour, follow.

`cli/logs_cmd` fetches pod lists and log text from the Kubernetes API (asked for with
``timestamps=true``, so every line starts with an RFC 3339 timestamp); everything it decides —
which containers to read, from when, which lines are new, in what order and colour to print
them — is computed here from plain data, so it is tested without a cluster.

Following a service through a bounce: each poll lists the pods, `FollowState.track` says which
containers appeared (read them from their first line) and which went (forget them), and
`FollowState.accept` keeps a per-container marker (last timestamp seen, and how many lines carried
exactly that timestamp) so re-reading overlapping windows never prints a line twice.
"""

from __future__ import annotations

import heapq
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta, timezone

from paasta_lite.timestamps import parse_iso

NANOS_PER_SECOND = 1_000_000_000

#: ANSI foreground colours given to pods in turn (no red: it reads as an error).
PALETTE = (36, 33, 32, 35, 34, 96, 93, 92, 95, 94)

_K8S_TIMESTAMP = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$")
_DURATION = re.compile(r"(\d+)\s*([smhdw])", re.IGNORECASE)
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, order=True)
class StreamKey:
    """One container of one pod: the unit Kubernetes serves logs for."""

    pod: str
    container: str


@dataclass(frozen=True)
class LogLine:
    """One line of container output; ``nanos`` (since the epoch) orders lines across pods."""

    pod: str
    container: str
    nanos: int
    text: str

    @property
    def key(self) -> StreamKey:
        return StreamKey(self.pod, self.container)

    @property
    def timestamp(self) -> datetime:
        return datetime.fromtimestamp(self.nanos / NANOS_PER_SECOND, tz=timezone.utc)


@dataclass(frozen=True)
class PodLogSource:
    """What a pod listing tells us: the pod, its containers, and which can serve logs yet."""

    name: str
    containers: tuple[str, ...]
    loggable: frozenset[str]

    def streams(self) -> list[StreamKey]:
        return [StreamKey(self.name, c) for c in self.containers if c in self.loggable]


# --- parsing ------------------------------------------------------------------------------------


def parse_k8s_timestamp(text: str) -> int | None:
    """RFC 3339 (nanosecond precision, as the kubelet writes it) -> nanoseconds since the epoch."""
    match = _K8S_TIMESTAMP.match(text)
    if match is None:
        return None
    whole, fraction, zone = match.groups()
    zone = "+00:00" if zone == "Z" else zone
    try:
        seconds = datetime.fromisoformat(whole + zone).timestamp()
    except ValueError:
        return None
    return int(seconds) * NANOS_PER_SECOND + int((fraction or "0").ljust(9, "0"))


def parse_log_text(text: str, key: StreamKey) -> list[LogLine]:
    """Split a ``timestamps=true`` log response into lines.

    A line without a timestamp (should not happen, but logs are messy) inherits the previous
    line's, so it stays next to its neighbours when merged.
    """
    lines: list[LogLine] = []
    previous = 0
    for raw in text.splitlines():
        stamp, _, rest = raw.partition(" ")
        nanos = parse_k8s_timestamp(stamp)
        if nanos is None:
            nanos, rest = previous, raw
        previous = nanos
        lines.append(LogLine(pod=key.pod, container=key.container, nanos=nanos, text=rest))
    return lines


def pod_log_source(pod: Mapping[str, object]) -> PodLogSource:
    """Read a raw pod dict (as listed by the API): which containers exist and can give logs.

    A container can give logs once it has run: running, terminated, or restarted at least once.
    One still waiting for its first start (ContainerCreating, ImagePullBackOff) cannot.
    """
    metadata = _dict(pod.get("metadata"))
    spec = _dict(pod.get("spec"))
    status = _dict(pod.get("status"))
    containers = tuple(str(_dict(c).get("name")) for c in _list(spec.get("containers")))
    loggable = {str(s.get("name")) for s in map(_dict, _list(status.get("containerStatuses"))) if _has_run(s)}
    return PodLogSource(name=str(metadata.get("name")), containers=containers, loggable=frozenset(loggable))


def _has_run(container_status: Mapping[str, object]) -> bool:
    state = _dict(container_status.get("state"))
    restarts = container_status.get("restartCount")
    return "running" in state or "terminated" in state or (isinstance(restarts, int) and restarts > 0)


def _dict(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[object]:
    return value if isinstance(value, list) else []


def parse_since(text: str, now: datetime) -> datetime:
    """``--since``: a duration (``10m``, ``1h30m``, ``2d``, ``90s``) before ``now``, or ISO-8601.

    Raises ``ValueError`` with a message a user understands.
    """
    stripped = text.strip()
    if _DURATION.sub("", stripped).strip() == "" and stripped:
        seconds = sum(int(n) * _DURATION_UNITS[unit.lower()] for n, unit in _DURATION.findall(stripped))
        return now - timedelta(seconds=seconds)
    try:
        return parse_iso(stripped, naive_zone=now.tzinfo or timezone.utc)
    except ValueError:
        raise ValueError(
            f"--since {text!r}: expected a duration such as 10m, 2h30m, 1d, or an ISO-8601 time"
        ) from None


# --- merging and printing -----------------------------------------------------------------------


def merge_lines(streams: Iterable[Sequence[LogLine]]) -> list[LogLine]:
    """Merge per-container streams (each already in time order) into one, oldest first.

    Lines with the same timestamp keep their stream's order; ties between streams go to the
    stream listed first, so the output is deterministic.
    """
    return list(heapq.merge(*streams, key=lambda line: line.nanos))


def last_lines(lines: Sequence[LogLine], count: int | None) -> list[LogLine]:
    """The newest ``count`` lines of a merged list (all of them for ``None``)."""
    if count is None:
        return list(lines)
    return list(lines[-count:]) if count > 0 else []


def assign_colours(current: Mapping[str, int], pods: Iterable[str]) -> dict[str, int]:
    """Give each pod a palette index, keeping the colour a pod already has.

    New pods get the least-used colour among the pods still present (lowest index on a tie), so
    the new ReplicaSet's pods in a bounce do not reuse an old pod's colour while both are shown.
    """
    live = list(dict.fromkeys(pods))
    colours = {pod: current[pod] for pod in live if pod in current}
    for pod in live:
        if pod not in colours:
            used = [list(colours.values()).count(i) for i in range(len(PALETTE))]
            colours[pod] = used.index(min(used))
    return colours


def multi_container_pods(sources: Iterable[PodLogSource]) -> frozenset[str]:
    """Pods whose lines need the container name in their prefix."""
    return frozenset(source.name for source in sources if len(source.containers) > 1)


def format_line(
    line: LogLine,
    *,
    show_container: bool,
    colour: int | None,
    tz: timezone | None = None,
) -> str:
    """``2024-05-01 14:00:00 [pod/container] text``, the prefix in the pod's colour when given.

    The time is local (``tz`` for tests), to the second, like PaaSTA's log output.
    """
    when = line.timestamp.astimezone(tz).strftime("%Y-%m-%d %H:%M:%S")
    label = f"{line.pod}/{line.container}" if show_container else line.pod
    prefix = f"[{label}]"
    if colour is not None:
        prefix = f"\x1b[{PALETTE[colour % len(PALETTE)]}m{prefix}\x1b[0m"
    return f"{when} {prefix} {line.text}"


# --- following ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Marker:
    """The newest line seen in one stream: its timestamp, and how many lines had exactly it."""

    nanos: int
    repeat: int


def fresh_lines(lines: Sequence[LogLine], marker: Marker | None) -> tuple[list[LogLine], Marker | None]:
    """Drop lines already seen (at or before ``marker``) and move the marker past the rest.

    ``lines`` is a re-read of one stream from ``sinceTime`` (whole seconds, so it overlaps what we
    have); lines with the marker's exact timestamp are skipped ``repeat`` times, the rest are new.
    """
    fresh: list[LogLine] = []
    skip_at_marker = marker.repeat if marker else 0
    for line in lines:
        if marker is not None and line.nanos < marker.nanos:
            continue
        if marker is not None and line.nanos == marker.nanos and skip_at_marker > 0:
            skip_at_marker -= 1
            continue
        fresh.append(line)
    return fresh, _advance(marker, fresh)


def _advance(marker: Marker | None, fresh: Sequence[LogLine]) -> Marker | None:
    if not fresh:
        return marker
    newest = fresh[-1].nanos
    repeat = sum(1 for line in fresh if line.nanos == newest)
    if marker is not None and marker.nanos == newest:
        repeat += marker.repeat
    return Marker(nanos=newest, repeat=repeat)


def window_complete(lines: Sequence[LogLine], marker: Marker | None, requested: int | None) -> bool:
    """Does a ``tailLines=requested`` re-read reach back past the marker (so nothing is skipped)?

    Following re-reads each container's last N lines (no clock involved, unlike ``sinceSeconds``).
    The window must start strictly before the marker: starting at it, some already-seen lines
    with the marker's timestamp may have fallen out, and `fresh_lines` would then skip new ones.
    A window shorter than asked for is the whole log (a restarted container starts a new one).
    """
    if marker is None or requested is None or len(lines) < requested:
        return True
    return bool(lines) and lines[0].nanos < marker.nanos


def next_window(requested: int, cap: int) -> int | None:
    """The next, larger ``tailLines`` to try; ``None`` (whole log) once past ``cap``."""
    return requested * 4 if requested * 4 <= cap else None


@dataclass(frozen=True)
class FollowState:
    """What `paasta logs -f` knows between polls: the markers and colours of live streams."""

    markers: Mapping[StreamKey, Marker | None] = field(default_factory=dict)
    colours: Mapping[str, int] = field(default_factory=dict)
    multi_container: frozenset[str] = frozenset()

    def track(self, sources: Sequence[PodLogSource]) -> tuple[FollowState, list[StreamKey], list[StreamKey]]:
        """Update for the pods now listed: returns (state, streams that appeared, streams gone).

        An appeared stream has no marker, so it is read from its first line.
        """
        live = [key for source in sources for key in source.streams()]
        live_set = set(live)
        added = [key for key in live if key not in self.markers]
        gone = [key for key in self.markers if key not in live_set]
        markers = {key: self.markers.get(key) for key in live}
        state = replace(
            self,
            markers=markers,
            colours=assign_colours(self.colours, [source.name for source in sources]),
            multi_container=self.multi_container | multi_container_pods(sources),
        )
        return state, added, gone

    def first_window(self, key: StreamKey, size: int) -> int | None:
        """``tailLines`` for the next read of a stream: ``None`` (everything) for a new stream."""
        return size if self.markers.get(key) is not None else None

    def accept(self, key: StreamKey, lines: Sequence[LogLine]) -> tuple[FollowState, list[LogLine]]:
        """Take a (re-)read of one stream; return the state and only the lines not printed yet."""
        fresh, marker = fresh_lines(lines, self.markers.get(key))
        return replace(self, markers={**self.markers, key: marker}), fresh

    def seen(self, key: StreamKey, lines: Sequence[LogLine]) -> FollowState:
        """Mark lines as printed (the initial tail) without re-filtering them."""
        return self.accept(key, lines)[0]


def collect_fresh(
    state: FollowState,
    key: StreamKey,
    read: Callable[[int | None], Sequence[LogLine]],
    *,
    window: int = 100,
    cap: int = 10_000,
) -> tuple[FollowState, list[LogLine]]:
    """One follow step for one stream: re-read its tail, growing the window until it reaches
    back past the marker, and return only the unseen lines.

    ``read(tail_lines)`` does the I/O (``None``: the whole log); it is passed in so this stays pure.
    """
    requested = state.first_window(key, window)
    lines = read(requested)
    while requested is not None and not window_complete(lines, state.markers.get(key), requested):
        requested = next_window(requested, cap)
        lines = read(requested)
    return state.accept(key, lines)
