"""`paasta status`: is my service healthy, and is my deploy done?

For each selected cluster the status comes from that cluster's paasta API (`api_endpoints` in
the system config) or, when none is configured, straight from the cluster in KUBECONFIG (`-v`
says which). Every instance is queried concurrently; one slow cluster costs at most `--timeout`.
Errors are printed under the instance they concern, never swallowed, with the fix when there is
one. Exit 0 when every shown instance is healthy or intentionally stopped; 2 when some status
could not be read for a reason that asking again will not fix (no kubeconfig, a cluster this
host cannot read, 401/403, an instance the API does not know, invalid configuration: see
`instance_status.failure_kind`), so scripts that poll stop at once; 1 otherwise (unhealthy, or
could not tell this time). `-o json` prints one `StatusReport` (api/openapi.yaml): the API's
`InstanceStatus` per instance, or an error row. Colour only on a terminal, and `NO_COLOR` is
honoured (`--color always|never` overrides both).
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from paasta_lite.cli.base import CONTEXT_SETTINGS, PaastaCommand
from paasta_lite.cli.options import (
    colour_option,
    service_option,
    soa_dir_option,
    stdout_wants_colour,
    verbose_option,
)
from paasta_lite.config.instance_config import InstanceConfig
from paasta_lite.config.soa_config import ServiceConfig, SoaDir
from paasta_lite.config.system_config import SystemConfig, load_system_config
from paasta_lite.errors import PaastaLiteError, UsageError
from paasta_lite.status.health import InstanceHealth, State
from paasta_lite.status.instance_status import (
    Failure,
    InstanceStatus,
    KubeReader,
    explained,
    failure_kind,
    fetch_instance_status,
    kube_from_kubeconfig,
    require_direct_cluster,
)

STATE_COLOURS = {
    State.RUNNING: "green",
    State.STOPPED: "blue",
    State.STOPPING: "blue",
    State.BOUNCING: "yellow",
    State.SCALING: "yellow",
    State.STARTING: "yellow",
    State.PENDING: "yellow",
    State.DEGRADED: "red",
    State.NOT_DEPLOYED: "red",
}


@dataclass(frozen=True)
class Target:
    """One instance on one cluster to ask about, or the reason it cannot be asked."""

    service: str
    cluster: str
    instance: str
    config: InstanceConfig | None
    problem: str | None = None


@dataclass(frozen=True)
class Outcome:
    target: Target
    status: InstanceStatus | None
    error: str | None
    #: what kind of error (`instance_status.Failure`); None when there is a status
    failure: Failure | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and self.status.health.healthy


def exit_code(outcomes: Sequence[Outcome]) -> int:
    """2 if any status could not be read for a permanent reason, else 1 unless all are healthy."""
    if any(outcome.failure is Failure.PERMANENT for outcome in outcomes):
        return 2
    return 0 if all(outcome.ok for outcome in outcomes) else 1


def split_list(value: str | None) -> list[str] | None:
    if not value:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def select_targets(
    service: ServiceConfig,
    *,
    clusters: Sequence[str] | None,
    instances: Sequence[str] | None,
    deploy_group: str | None,
) -> list[Target]:
    """The instances the filters select (pure); invalid ones are kept with their problem."""
    known_clusters = sorted(set(service.instances) | set(service.invalid_instances))
    for name in clusters or ():
        if name not in known_clusters:
            raise UsageError(
                f"{service.name} has no instances on cluster '{name}' (it runs on: "
                f"{', '.join(known_clusters) or 'no cluster'})"
            )
    targets = []
    for cluster in clusters or known_clusters:
        for name, config in sorted(service.instances.get(cluster, {}).items()):
            if deploy_group is None or config.deploy_group == deploy_group:
                targets.append(Target(service.name, cluster, name, config))
        for name, error in sorted(service.invalid_instances.get(cluster, {}).items()):
            targets.append(Target(service.name, cluster, name, None, f"invalid configuration: {error}"))
    if instances:
        targets = [t for t in targets if t.instance in instances]
        missing = set(instances) - {t.instance for t in targets}
        if missing:
            known = sorted({name for cluster in known_clusters for name in _names(service, cluster)})
            raise UsageError(
                f"no instance {', '.join(sorted(missing))} of {service.name} on the selected clusters "
                f"(instances: {', '.join(known) or 'none'})"
            )
    if deploy_group is not None and not targets:
        raise UsageError(f"no instance of {service.name} is in deploy group '{deploy_group}'")
    return targets


def _names(service: ServiceConfig, cluster: str) -> set[str]:
    return set(service.instances.get(cluster, {})) | set(service.invalid_instances.get(cluster, {}))


Answer = tuple[Any, str | None, Failure | None]


def run_concurrently(tasks: dict[int, Callable[[], Any]], timeout: float) -> dict[int, Answer]:
    """Run every task on its own daemon thread; (result, error, failure kind) within `timeout` s.

    Daemon threads: a hung request never keeps the process alive after we print the answer.
    """
    results: queue.Queue[tuple[int, Answer]] = queue.Queue()

    def worker(key: int, task: Callable[[], Any]) -> None:
        try:
            results.put((key, (task(), None, None)))
        except PaastaLiteError as error:
            results.put((key, (None, explained(error), failure_kind(error))))
        except Exception as error:  # report a bug against its instance; the others still print
            results.put((key, (None, f"internal error: {type(error).__name__}: {error}", Failure.PERMANENT)))

    for key, task in tasks.items():
        threading.Thread(target=worker, args=(key, task), daemon=True).start()
    done: dict[int, Answer] = {}
    deadline = time.monotonic() + timeout
    while len(done) < len(tasks):
        try:
            key, answer = results.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            break
        done[key] = answer
    for key in tasks:
        done.setdefault(key, (None, f"no answer within {timeout:g} s (timed out)", Failure.TRANSIENT))
    return done


class DirectClient:
    """The KUBECONFIG client, built once and shared, only if some cluster needs it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: tuple[KubeReader, str] | None = None

    def get(self) -> tuple[KubeReader, str]:
        with self._lock:
            if self._value is None:
                self._value = kube_from_kubeconfig()
            return self._value


def fetch_all(
    system: SystemConfig, service: ServiceConfig, targets: Sequence[Target], *, verbose: int, timeout: float
) -> list[Outcome]:
    direct = DirectClient()

    def task(target: Target) -> Callable[[], InstanceStatus]:
        def call() -> InstanceStatus:
            assert target.config is not None
            if system.api_endpoints.get(target.cluster):
                return fetch_instance_status(system, service, target.config, verbose=verbose, timeout=timeout)
            require_direct_cluster(system, target.cluster)
            kube, where = direct.get()
            status = fetch_instance_status(system, service, target.config, verbose=verbose, kube=kube)
            return InstanceStatus(
                status.service,
                status.instance,
                status.cluster,
                f"KUBECONFIG {where}",
                status.health,
                status.logs,
            )

        return call

    tasks = {n: task(t) for n, t in enumerate(targets) if t.problem is None}
    answers = run_concurrently(tasks, timeout)
    outcomes = []
    for n, target in enumerate(targets):
        value, error, failure = answers.get(n, (None, target.problem, Failure.PERMANENT))
        outcomes.append(Outcome(target, value, error, failure))
    return outcomes


# --------------------------------------------------------------------------- text output
def age(seconds_ago: float | None) -> str:
    if seconds_ago is None:
        return "?"
    seconds = max(0, int(seconds_ago))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            rest = seconds % size // {"d": 3600, "h": 60, "m": 1}[unit]
            second = {"d": "h", "h": "m", "m": "s"}[unit]
            return f"{seconds // size}{unit}{rest}{second}" if rest else f"{seconds // size}{unit}"
    return f"{seconds}s"


def health_text(health: InstanceHealth) -> str:
    if health.state in (State.STOPPED, State.STOPPING):
        return f"stopped on purpose ({health.ready} ready, 0 wanted)"
    verdict = "healthy" if health.healthy else "unhealthy"
    available = f", {health.available} available" if health.available != health.ready else ""
    return f"{health.ready}/{health.expected} ready{available} ({verdict})"


def render_outcome(outcome: Outcome, *, verbose: int, now: float, style: Callable[..., str]) -> list[str]:
    """The lines printed for one instance (pure apart from `style`)."""
    target = outcome.target
    lines = [style(f"{target.service}.{target.instance} in {target.cluster}", bold=True)]
    if outcome.status is None:
        lines.append("    " + style(f"Error: {outcome.error}", fg="red"))
        return lines
    status, health = outcome.status, outcome.status.health
    if verbose:
        lines.append(f"    Source:     {status.source}")
    desired = health.desired_version
    version = f"{desired.short()} (desired)" if desired else "not marked for deployment yet"
    if desired and (verbose >= 2 or desired.config_sha):
        version += f", config {desired.config_sha or '?'}"
    lines.append(f"    Version:    {version}")
    state = style(health.state.value, fg=STATE_COLOURS[health.state], bold=True)
    lines.append(f"    State:      {state} - {health.message}")
    lines.append(f"    Health:     {style(health_text(health), fg='green' if health.healthy else 'red')}")
    if health.reason and health.state not in (State.RUNNING, State.STOPPED):
        lines.append(f"    Reason:     {health.reason}")
    lines.append(f"    Deploy:     {'done' if health.done else 'not done'} - {health.done_message}")
    if health.config_note:
        lines.append(f"    Config:     {health.config_note}")
    if health.versions:
        lines.append("    Versions:")
    for running in health.versions:
        mark = " (desired)" if running.target else ""
        config = f" {running.version.config_sha}" if verbose >= 2 or len(health.versions) > 1 else ""
        created = age(now - running.created) if running.created else "?"
        lines.append(
            f"      {running.version.short()}{config}  {running.ready}/{running.replicas} ready,"
            f" started {created} ago{mark}"
        )
    lines.extend(_pod_lines(health, verbose=verbose, now=now, style=style))
    if verbose >= 2:
        lines.extend(_event_and_log_lines(status, now=now))
    return lines


def _pod_lines(health: InstanceHealth, *, verbose: int, now: float, style: Callable[..., str]) -> list[str]:
    pods = health.pods if verbose else [p for p in health.pods if p.reason and not p.ready]
    if not pods:
        return []
    lines = ["    Pods:" if verbose else "    Unhealthy pods:"]
    for pod in pods:
        ready = style("ready", fg="green") if pod.ready else style("not ready", fg="red")
        reason = f"  {pod.reason}: {pod.message}" if pod.reason else ""
        lines.append(
            f"      {pod.name}  node {pod.node or '-'}  age {age(now - pod.created) if pod.created else '?'}"
            f"  {ready}  restarts {pod.restarts}{reason}"
        )
    return lines


def _event_and_log_lines(status: InstanceStatus, *, now: float) -> list[str]:
    lines = []
    if status.health.events:
        lines.append("    Events:")
    for event in status.health.events:
        when = age(now - event.last_seen) + " ago" if event.last_seen else "?"
        lines.append(
            f"      {when}  {event.type} {event.reason} {event.kind}/{event.name} (x{event.count}):"
            f" {event.message}"
        )
    for log in status.logs:
        lines.append(f"    Last {len(log.lines)} log lines of {log.pod}/{log.container}:")
        lines.extend(f"      {line}" for line in log.lines)
    return lines


def load_service(soa_dir: str, name: str) -> ServiceConfig:
    soa = SoaDir(soa_dir)
    if name not in soa.list_services():
        raise UsageError(f"the service '{name}' does not exist in {soa_dir}")
    return soa.load_service(name)


@click.command("status", cls=PaastaCommand, context_settings=CONTEXT_SETTINGS)
@service_option()
@click.option("-i", "--instances", default=None, help="Only these instances (comma-separated).")
@click.option("-c", "--clusters", default=None, help="Only these clusters (comma-separated).")
@click.option("-l", "--deploy-group", default=None, help="Only instances in this deploy group.")
@soa_dir_option
@verbose_option
@click.option("-o", "--output", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option(
    "--timeout",
    type=click.FloatRange(0.1),
    default=None,
    help="Seconds to wait for each cluster (default: api_client_timeout, 30).",
)
@colour_option
@click.pass_context
def status(
    ctx: click.Context,
    service: str,
    instances: str | None,
    clusters: str | None,
    deploy_group: str | None,
    soa_dir: str,
    verbose: int,
    output: str,
    timeout: float | None,
    colour_mode: str,
) -> None:
    """Show what is running for a service: version, state, health, and why when unhealthy."""
    system = load_system_config(missing_ok=True)
    config = load_service(soa_dir, service)
    targets = select_targets(
        config, clusters=split_list(clusters), instances=split_list(instances), deploy_group=deploy_group
    )
    wait = timeout if timeout is not None else system.api_client_timeout
    outcomes = fetch_all(system, config, targets, verbose=verbose, timeout=wait)
    if output == "json":
        click.echo(json.dumps(json_report(outcomes), indent=2, sort_keys=True))
    else:
        colour = stdout_wants_colour(colour_mode)

        def style(text: str, **kwargs: Any) -> str:
            return click.style(text, **kwargs) if colour else text

        now = time.time()
        for outcome in outcomes:
            click.echo(
                "\n".join(render_outcome(outcome, verbose=verbose, now=now, style=style)), color=colour
            )
    code = exit_code(outcomes)
    if code:
        ctx.exit(code)


def json_report(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    """The `StatusReport` of api/openapi.yaml: per instance the API's `InstanceStatus`, or an
    `InstanceError` row (service, cluster, instance, error, failure)."""
    rows = []
    for outcome in outcomes:
        if outcome.status is not None:
            rows.append(outcome.status.to_dict())
        else:
            target = outcome.target
            failure = outcome.failure or Failure.PERMANENT
            rows.append(
                {
                    "service": target.service,
                    "cluster": target.cluster,
                    "instance": target.instance,
                    "error": outcome.error or "unknown error",
                    "failure": failure.value,
                }
            )
    return {"healthy": all(o.ok for o in outcomes), "instances": rows}
