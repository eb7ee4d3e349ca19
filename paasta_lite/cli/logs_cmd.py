"""`paasta logs`: what a service prints (container logs) and what was done to it (deploy events).

Components ``stdout``/``stderr`` (the default; ``app_output`` means both) read the container logs
of every pod of the instance(s) through the Kubernetes API (the cluster in ``KUBECONFIG``),
merged in time order, one colour per pod. Component ``deploy`` reads paasta_lite's own event log
(`paasta_lite.status.event_log`). Both together are merged into one timeline.

``-f`` polls: each round lists the pods (so pods of a new ReplicaSet appear mid-bounce and
deleted ones drop out) and re-reads each container's tail, printing only lines not seen yet
(`pod_logs.collect_fresh`). Polling re-reads by ``tailLines``, not by time, so it does not depend
on the clocks of this machine and the nodes agreeing.

Everything decided here is in `pod_logs` / `event_log`; this module only fetches and prints.
"""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import click

from paasta_lite.cli.base import CONTEXT_SETTINGS, PaastaCommand
from paasta_lite.cli.options import (
    cluster_option,
    colour_option,
    service_option,
    soa_dir_option,
    stdout_wants_colour,
)
from paasta_lite.config.naming import namespace_for
from paasta_lite.config.soa_config import SoaDir
from paasta_lite.config.system_config import SystemConfig, load_system_config
from paasta_lite.errors import ConfigError, UsageError
from paasta_lite.kube import labels
from paasta_lite.status import event_log, pod_logs
from paasta_lite.status.event_log import Event, EventQuery, EventTail
from paasta_lite.status.instance_status import KubeReader
from paasta_lite.status.pod_logs import FollowState, LogLine, PodLogSource, StreamKey

DEFAULT_LINES = 100
POD_COMPONENTS = frozenset({"stdout", "stderr"})
EVENT_COMPONENTS = frozenset({"deploy"})
ALIASES = {"app_output": POD_COMPONENTS}
DEPLOY_COLOUR = "\x1b[36m"
RESET = "\x1b[0m"
EXIT_INTERRUPTED = 130


@dataclass(frozen=True)
class LogsRequest:
    """The parsed command line."""

    service: str
    cluster: str | None
    instances: tuple[str, ...]
    components: frozenset[str]
    lines: int | None
    since: datetime | None
    colour: bool
    #: where the pods live: the instances' `namespace` setting, else `paastasvc-<service>`
    namespace: str = ""

    @property
    def pod_namespace(self) -> str:
        return self.namespace or namespace_for(self.service)

    @property
    def wants_pods(self) -> bool:
        return bool(self.components & POD_COMPONENTS)

    @property
    def wants_events(self) -> bool:
        return bool(self.components & EVENT_COMPONENTS)


@dataclass(frozen=True)
class Printed:
    """One output line with the time it sorts by."""

    nanos: int
    text: str


# --- parsing the command line (pure) ------------------------------------------------------------


def split_list(text: str | None) -> tuple[str, ...]:
    """``a,b , c`` -> ("a", "b", "c"), duplicates dropped, order kept."""
    return tuple(dict.fromkeys(part.strip() for part in (text or "").split(",") if part.strip()))


def parse_components(text: str) -> frozenset[str]:
    """``-C``: stdout, stderr, app_output (= both) and deploy; anything else is a usage error."""
    wanted: set[str] = set()
    for name in split_list(text):
        if name in ALIASES:
            wanted |= ALIASES[name]
        elif name in POD_COMPONENTS | EVENT_COMPONENTS:
            wanted.add(name)
        else:
            known = ", ".join(sorted(POD_COMPONENTS | EVENT_COMPONENTS | set(ALIASES)))
            raise UsageError(f"unknown log component {name!r} (paasta_lite keeps: {known})")
    if not wanted:
        raise UsageError("-C/--components needs at least one component")
    return frozenset(wanted)


# --- formatting (pure) --------------------------------------------------------------------------


def format_pod_lines(lines: Iterable[LogLine], state: FollowState, *, colour: bool) -> list[Printed]:
    return [
        Printed(
            line.nanos,
            pod_logs.format_line(
                line,
                show_container=line.pod in state.multi_container,
                colour=state.colours.get(line.pod, 0) if colour else None,
            ),
        )
        for line in lines
    ]


def format_events(events: Iterable[Event], *, colour: bool) -> list[Printed]:
    """``2024-05-01 14:00:00 [deploy] kind.main: message`` (local time, like PaaSTA); a service-wide
    event (mark-for-deployment) has no location: ``... [deploy] message``."""
    printed = []
    for event in events:
        when = event.timestamp.astimezone().strftime("%Y-%m-%d %H:%M:%S")
        tag = f"[{event.component}]"
        if colour:
            tag = f"{DEPLOY_COLOUR}{tag}{RESET}"
        where = event_log.event_location(event)
        nanos = (
            int(event.timestamp.timestamp()) * pod_logs.NANOS_PER_SECOND + event.timestamp.microsecond * 1000
        )
        printed.append(Printed(nanos, f"{when} {tag} {where + ': ' if where else ''}{event.message}"))
    return printed


def timeline(*parts: Sequence[Printed], limit: int | None) -> list[str]:
    """Merge already-formatted lines of every source in time order; keep the newest ``limit``."""
    merged = sorted((p for part in parts for p in part), key=lambda p: p.nanos)
    if limit is not None:
        merged = merged[-limit:] if limit > 0 else []
    return [p.text for p in merged]


# --- pod logs (I/O through the API) -------------------------------------------------------------


def pod_selectors(service: str, instances: Sequence[str]) -> list[str]:
    if instances:
        return [labels.instance_selector(service, instance) for instance in instances]
    return [labels.service_selector(service)]


def list_sources(api: KubeReader, request: LogsRequest) -> list[PodLogSource]:
    """Every pod of the instance(s), oldest name first, each once."""
    namespace = request.pod_namespace
    pods: dict[str, PodLogSource] = {}
    for selector in pod_selectors(request.service, request.instances):
        for pod in api.list_pods(namespace, selector):
            source = pod_logs.pod_log_source(pod)
            pods[source.name] = source
    return [pods[name] for name in sorted(pods)]


def _reader(
    api: KubeReader, request: LogsRequest, key: StreamKey, since_seconds: int | None
) -> Callable[[int | None], list[LogLine]]:
    namespace = request.pod_namespace

    def read(tail_lines: int | None) -> list[LogLine]:
        text = api.read_pod_log(
            namespace,
            key.pod,
            container=key.container,
            tail_lines=tail_lines,
            since_seconds=since_seconds,
            timestamps=True,
        )
        return pod_logs.parse_log_text(text, key)

    return read


def since_seconds(since: datetime | None, now: datetime) -> int | None:
    """``sinceSeconds`` for ``--since`` (at least 1, as the API requires)."""
    if since is None:
        return None
    return max(1, math.ceil((now - since).total_seconds()))


def read_pod_history(api: KubeReader, request: LogsRequest) -> tuple[FollowState, list[LogLine]]:
    """The initial read: each container's last ``lines`` (since ``--since``), merged."""
    state, added, _ = FollowState().track(list_sources(api, request))
    seconds = since_seconds(request.since, datetime.now(timezone.utc))
    streams = []
    for key in added:
        lines = _reader(api, request, key, seconds)(request.lines)
        if request.since is not None:
            cutoff = int(request.since.timestamp() * pod_logs.NANOS_PER_SECOND)
            lines = [line for line in lines if line.nanos >= cutoff]
        state = state.seen(key, lines)
        streams.append(lines)
    return state, pod_logs.last_lines(pod_logs.merge_lines(streams), request.lines)


def poll_pods(api: KubeReader, request: LogsRequest, state: FollowState) -> tuple[FollowState, list[LogLine]]:
    """One follow round: re-list pods, read what is new in every live container, merge."""
    state, _, _ = state.track(list_sources(api, request))
    streams = []
    for key in list(state.markers):
        state, fresh = pod_logs.collect_fresh(state, key, _reader(api, request, key, None))
        streams.append(fresh)
    return state, pod_logs.merge_lines(streams)


# --- the command --------------------------------------------------------------------------------


def _event_query(request: LogsRequest) -> EventQuery:
    return EventQuery(
        service=request.service,
        components=tuple(sorted(request.components & EVENT_COMPONENTS)),
        clusters=(request.cluster,) if request.cluster else (),
        instances=request.instances,
        since=request.since,
    )


def _connect() -> KubeReader:
    from paasta_lite.kube.client import KubeClient  # lazy: imports the kubernetes package

    return KubeClient(timeout=30.0)


def show_history(
    request: LogsRequest, system: SystemConfig, api: KubeReader | None
) -> tuple[FollowState, EventTail | None]:
    """Print the past lines; return what following needs to continue from there."""
    state, pod_part, tail = FollowState(), [], None
    if api is not None:
        state, lines = read_pod_history(api, request)
        pod_part = format_pod_lines(lines, state, colour=request.colour)
        if not state.markers:
            click.echo(f"No running containers found for {_what(request)}.", err=True)
    event_part: list[Printed] = []
    if request.wants_events:
        tail = EventTail(event_log.reader_config(system), _event_query(request))
        tail.skip_existing()
        events = event_log.read_events(tail.config, tail.query, limit=request.lines)
        if not events:
            where = os.path.expanduser(tail.config.directory)
            click.echo(f"No deploy events recorded for {request.service} (in {where}).", err=True)
        event_part = format_events(events, colour=request.colour)
    for text in timeline(pod_part, event_part, limit=request.lines):
        click.echo(text, color=request.colour)
    return state, tail


def follow(
    request: LogsRequest,
    api: KubeReader | None,
    state: FollowState,
    tail: EventTail | None,
    *,
    interval: float,
) -> None:
    """Poll until interrupted (Ctrl-C raises KeyboardInterrupt out of `time.sleep`)."""
    while True:
        time.sleep(interval)
        pod_part: list[Printed] = []
        if api is not None:
            state, lines = poll_pods(api, request, state)
            pod_part = format_pod_lines(lines, state, colour=request.colour)
        event_part = format_events(tail.poll(), colour=request.colour) if tail else []
        for text in timeline(pod_part, event_part, limit=None):
            click.echo(text, color=request.colour)


def _what(request: LogsRequest) -> str:
    instances = ",".join(request.instances) or "any instance"
    return f"{request.service} ({instances}) in namespace {request.pod_namespace}"


def configured_namespace(soa_dir: str, service: str, instances: Sequence[str], cluster: str | None) -> str:
    """The namespace the instances are configured to run in ('' = the service's default one).

    Without readable soa-configs (a laptop without them) the default namespace is the best guess.
    """
    try:
        config = SoaDir(soa_dir).load_service(service, with_deployments=False)
    except ConfigError:
        return ""
    namespaces = {
        instance.namespace
        for instance in config.all_instances()
        if (not instances or instance.instance in instances) and (not cluster or instance.cluster == cluster)
    }
    if len(namespaces) > 1:
        raise UsageError(
            f"instances of {service} run in several namespaces ({', '.join(sorted(namespaces))}); "
            "pick instances with -i"
        )
    return namespaces.pop() if namespaces else ""


def _warn_components(components: frozenset[str]) -> None:
    if components & POD_COMPONENTS and not components >= POD_COMPONENTS:
        click.echo("note: Kubernetes keeps stdout and stderr in one stream; showing both.", err=True)


@click.command("logs", cls=PaastaCommand, context_settings=CONTEXT_SETTINGS)
@service_option()
@cluster_option("Cluster whose deploy events to show (default: `cluster` from the system config).")
@click.option(
    "-i", "--instance", "--instances", "instances", help="Instance(s), comma-separated (default: all)."
)
@click.option("-f", "-F", "--follow", "--tail", "follow_logs", is_flag=True, help="Keep printing new lines.")
@click.option(
    "-l",
    "-n",
    "--lines",
    "lines",
    type=click.IntRange(min=0),
    default=None,
    help=f"How many of the newest lines to show (default: {DEFAULT_LINES}; all when --since is given).",
)
@click.option(
    "--since", "-a", "--from", "--after", "since", help="Only lines newer than 10m, 2h, 1d or an ISO time."
)
@click.option(
    "-C",
    "--components",
    "components",
    default="stdout,stderr",
    show_default=True,
    help="Comma-separated: stdout, stderr (container output; app_output = both), deploy (events).",
)
@soa_dir_option
@colour_option
@click.option("--poll-interval", type=click.FloatRange(min=0.05), default=1.0, hidden=True)
@click.pass_context
def logs(
    ctx: click.Context,
    service: str,
    cluster: str | None,
    instances: str | None,
    follow_logs: bool,
    lines: int | None,
    since: str | None,
    components: str,
    soa_dir: str,
    colour_mode: str,
    poll_interval: float,
) -> None:
    """Show a service's container output and deploy events, merged in time order."""
    system = load_system_config(missing_ok=True)
    request = LogsRequest(
        namespace=configured_namespace(soa_dir, service, split_list(instances), cluster or system.cluster),
        service=service,
        cluster=cluster or system.cluster,
        instances=split_list(instances),
        components=parse_components(components),
        lines=lines if lines is not None else (None if since else DEFAULT_LINES),
        since=_parse_since(since),
        colour=stdout_wants_colour(colour_mode),
    )
    _warn_components(request.components)
    try:
        api = _connect() if request.wants_pods else None
        state, tail = show_history(request, system, api)
        if follow_logs:
            follow(request, api, state, tail, interval=poll_interval)
    except KeyboardInterrupt:
        ctx.exit(EXIT_INTERRUPTED)
    except BrokenPipeError:  # `paasta logs ... | head`: stop quietly
        _silence_stdout()
        ctx.exit(0)


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush does not complain again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # no real file descriptor (e.g. under a test runner)
        pass


def _parse_since(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        return pod_logs.parse_since(text, datetime.now(timezone.utc))
    except ValueError as error:
        raise UsageError(str(error)) from None
