"""`paasta mark-for-deployment` and `paasta wait-for-deployment`: deploy by pushing a git tag.

Marking pushes ``paasta-<group>[+<image_version>]-<UTC ts>-deploy`` onto a commit of the service's
repository (`git_remote`); `generate_deployments_for_service` turns it into deployments.json and
`setup_kubernetes_job` rolls it out. Waiting polls every instance of the deploy group, on every
cluster, through `instance_status.fetch_instance_health` (the API of the cluster when
`api_endpoints` names one, else the cluster in KUBECONFIG) and decides with the one health rule
(`InstanceHealth.done`, the same verdict `paasta status` and the API show). The only thing added
here: the health must be about the version we marked, not an older one still in deployments.json.

A status that cannot be read ends the wait at once when asking again cannot help (no kubeconfig,
a cluster this host cannot read, 401/403, an instance the API does not know: exit 2 with the
fix); "connection refused" is retried for `UNREACHABLE_GIVE_UP_S`, timeouts and 5xx/429 until
the timeout (`instance_status.failure_kind`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import click

from paasta_lite.cli.base import CONTEXT_SETTINGS, PaastaCommand
from paasta_lite.cli.options import service_option, soa_dir_option, verbose_option
from paasta_lite.config.instance_config import InstanceConfig
from paasta_lite.config.soa_config import ServiceConfig, SoaDir
from paasta_lite.config.system_config import SystemConfig, load_system_config
from paasta_lite.errors import PaastaLiteError, UsageError
from paasta_lite.gitflow import remote as git_remote
from paasta_lite.gitflow import tags as git_tags
from paasta_lite.status import event_log
from paasta_lite.status.health import InstanceHealth, Version
from paasta_lite.status.instance_status import (
    UNREACHABLE_GIVE_UP_S,
    CannotGetStatus,
    Failure,
    KubeReader,
    explained,
    failure_kind,
    fetch_instance_health,
    kube_from_kubeconfig,
    require_direct_cluster,
)

DEFAULT_TIMEOUT_S = 3600.0
DEFAULT_POLL_S = 10.0
EXIT_CODES = (
    "Exit codes: 0 done (marked; with waiting, every instance runs the new version), 1 the push "
    "failed, the deployment failed or timed out, 2 usage or configuration error, or a status that "
    "cannot be read however long we wait (no kubeconfig, 401/403, unknown cluster or instance)."
)


class DeploymentTimeout(PaastaLiteError):
    """Waiting ended before every instance ran the marked version (exit 1)."""


@dataclass(frozen=True)
class Verdict:
    """Is one instance done deploying the marked version, and if not, why (one line)."""

    done: bool
    message: str
    reason: str | None = None


HealthCheck = Callable[[InstanceConfig], InstanceHealth]
Echo = Callable[[str], None]


# --- pure ----------------------------------------------------------------------------------------


def service_name(raw: str) -> str:
    """PaaSTA accepts ``services-<name>`` and a trailing slash (tab completion of a directory)."""
    name = raw.rstrip("/")
    return name[len("services-") :] if name.startswith("services-") else name


def check_deploy_group(service: ServiceConfig, group: str) -> None:
    """The group must be a deploy.yaml step (or, without deploy.yaml, used by an instance)."""
    used = {config.deploy_group for config in service.all_instances()}
    known = set(service.deploy_groups) or used
    if group not in known:
        raise UsageError(
            f"deploy group '{group}' is not in {service.path}/deploy.yaml "
            f"(known: {', '.join(sorted(known)) or 'none'})"
        )


def instances_of_group(service: ServiceConfig, group: str) -> list[InstanceConfig]:
    """Every valid instance, on every cluster, that runs ``group``."""
    return [config for config in service.all_instances() if config.deploy_group == group]


def verdict_for(health: InstanceHealth, target: Version) -> Verdict:
    """Apply the health rule, after checking the health is about ``target`` (git sha + image version)."""
    if health.expected == 0:
        return Verdict(health.done, health.done_message, health.reason)
    wanted = health.desired_version
    if wanted is None or (wanted.git_sha, wanted.image_version) != (target.git_sha, target.image_version):
        now = wanted.short() if wanted else "nothing"
        return Verdict(
            False,
            f"deployments.json still targets {now}, not {target.short()} "
            "(generate_deployments_for_service has not picked up the tag yet)",
            "NotGenerated",
        )
    return Verdict(health.done, health.done_message, None if health.done else health.reason)


def inspect_commands(service: str, group: str, sha: str, pending: Iterable[InstanceConfig]) -> list[str]:
    """The commands a user runs next to see why instances are not done."""
    by_cluster: dict[str, list[str]] = {}
    for config in pending:
        by_cluster.setdefault(config.cluster, []).append(config.instance)
    lines = [f"paasta status -s {service} -c {c} -i {','.join(i)} -vv" for c, i in sorted(by_cluster.items())]
    lines += [f"paasta logs -s {service} -c {c} -C deploy" for c in sorted(by_cluster)]
    lines.append(f"paasta wait-for-deployment -s {service} -l {group} -c {sha}")
    return lines


def timeout_message(
    service: str,
    group: str,
    target: Version,
    pending: Sequence[tuple[InstanceConfig, Verdict]],
    timeout: float,
) -> str:
    """What is not done after ``timeout`` seconds, why, and how to look closer."""
    lines = [
        f"{service} {target.short()} in deploy group {group}: {len(pending)} instance(s) not done "
        f"after {timeout:g}s (paasta_lite keeps deploying; only the waiting stopped):"
    ]
    ordered = sorted(pending, key=lambda item: (item[0].cluster, item[0].instance))
    for config, verdict in ordered:
        reason = f"[{verdict.reason}] " if verdict.reason else ""
        lines.append(f"  {config.cluster} {config.instance}: {reason}{verdict.message}")
    lines.append("Inspect with:")
    configs = [config for config, _ in ordered]
    lines += [f"  {command}" for command in inspect_commands(service, group, target.git_sha or "?", configs)]
    return "\n".join(lines)


# --- the wait loop -------------------------------------------------------------------------------


class _Reader:
    """Asks for one instance's verdict; turns read failures into a verdict or a `CannotGetStatus`.

    Remembers since when the instance's status source has not answered at all, so "connection
    refused" ends the wait after `give_up` seconds instead of after the whole timeout.
    """

    def __init__(
        self, check: HealthCheck, target: Version, clock: Callable[[], float], give_up: float
    ) -> None:
        self.check, self.target, self.clock, self.give_up = check, target, clock, give_up
        self.silent_since: dict[tuple[str, str], float] = {}

    def verdict(self, config: InstanceConfig) -> Verdict:
        key = (config.cluster, config.instance)
        try:
            verdict = verdict_for(self.check(config), self.target)
        except PaastaLiteError as error:
            return self._failed(config, key, error)
        self.silent_since.pop(key, None)
        return verdict

    def _failed(self, config: InstanceConfig, key: tuple[str, str], error: PaastaLiteError) -> Verdict:
        kind = failure_kind(error)
        where = f"{config.service}.{config.instance} in {config.cluster}"
        stopped = "paasta_lite keeps deploying; only the waiting stopped"
        if kind is Failure.PERMANENT:
            message = f"cannot get the status of {where}: {explained(error)} ({stopped})"
            raise CannotGetStatus(message) from error
        if kind is Failure.UNREACHABLE:
            since = self.silent_since.setdefault(key, self.clock())
            if self.clock() - since >= self.give_up:
                raise CannotGetStatus(
                    f"no answer about {where} for {self.give_up:g} s: {explained(error)} ({stopped})"
                ) from error
        else:
            self.silent_since.pop(key, None)
        return Verdict(False, f"could not get status this time: {explained(error)}", "StatusUnavailable")


def wait_for_instances(
    targets: Iterable[InstanceConfig],
    target: Version,
    check: HealthCheck,
    *,
    timeout: float,
    interval: float,
    echo: Echo,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
    give_up_unreachable: float = UNREACHABLE_GIVE_UP_S,
) -> None:
    """Poll until every target is done; print a line whenever an instance's verdict changes.

    ``timeout=0`` checks once. Raises `DeploymentTimeout` listing what is not done, or
    `CannotGetStatus` (exit 2) as soon as a status cannot be read for good.
    """
    targets = list(targets)
    deadline = clock() + timeout
    pending = {(c.cluster, c.instance): c for c in targets}
    last: dict[tuple[str, str], Verdict] = {}
    reader = _Reader(check, target, clock, give_up_unreachable)
    while True:
        for key, config in list(pending.items()):
            verdict = reader.verdict(config)
            if last.get(key) != verdict:
                mark = "done" if verdict.done else "waiting"
                echo(f"  [{config.cluster}] {config.instance}: {mark}: {verdict.message}")
            last[key] = verdict
            if verdict.done:
                del pending[key]
        if not pending:
            echo(f"{len(targets)} instance(s) run {target.short()}.")
            return
        if clock() >= deadline:
            service, group = targets[0].service, targets[0].deploy_group
            raise DeploymentTimeout(
                timeout_message(service, group, target, [(c, last[k]) for k, c in pending.items()], timeout)
            )
        sleep(max(0.0, min(interval, deadline - clock())))


def health_checker(system: SystemConfig, soa_dir: str, service: str) -> HealthCheck:
    """A `HealthCheck` reading the API of each cluster (or KUBECONFIG), with a fresh soa load.

    The service is reloaded per call so a deployments.json regenerated while we wait is seen;
    the KUBECONFIG client is built once, on first need.
    """
    kube: list[KubeReader] = []

    def check(config: InstanceConfig) -> InstanceHealth:
        loaded = SoaDir(soa_dir).load_service(service, clusters=[config.cluster])
        current = loaded.instances.get(config.cluster, {}).get(config.instance, config)
        client = None
        if not system.api_endpoints.get(config.cluster):
            require_direct_cluster(system, config.cluster)
            if not kube:
                kube.append(kube_from_kubeconfig()[0])
            client = kube[0]
        return fetch_instance_health(system, loaded, current, kube=client)

    return check


def wait_for_deployment(
    system: SystemConfig,
    soa_dir: str,
    service: ServiceConfig,
    group: str,
    target: Version,
    *,
    timeout: float,
    interval: float,
    check: HealthCheck | None = None,
) -> None:
    """Wait for every instance of ``group`` to run ``target``; `DeploymentTimeout` if not in time."""
    targets = instances_of_group(service, group)
    if not targets:
        click.echo(f"No instance of {service.name} uses deploy group {group}: nothing to wait for.")
        return
    clusters = sorted({c.cluster for c in targets})
    click.echo(
        f"Waiting up to {timeout:g}s for {len(targets)} instance(s) of {service.name} on "
        f"{', '.join(clusters)} to run {target.short()}:"
    )
    wait_for_instances(
        targets,
        target,
        check or health_checker(system, soa_dir, service.name),
        timeout=timeout,
        interval=interval,
        echo=click.echo,
    )


# --- commands ------------------------------------------------------------------------------------


def _load(soa_dir: str, raw_service: str, group: str) -> ServiceConfig:
    service = SoaDir(soa_dir).load_service(service_name(raw_service))
    check_deploy_group(service, group)
    return service


def _image_version_option(function: Callable[..., None]) -> Callable[..., None]:
    return click.option(
        "-i", "--image-version", default=None, help="Extra image version (tag '+IV', image 'paasta-SHA-IV')."
    )(function)


def _wait_options(default_timeout: float) -> Callable[[Callable[..., None]], Callable[..., None]]:
    def decorate(function: Callable[..., None]) -> Callable[..., None]:
        function = click.option(
            "--polling-interval",
            type=click.FloatRange(min=0.1),
            default=DEFAULT_POLL_S,
            show_default=True,
            help="Seconds between status checks.",
        )(function)
        return click.option(
            "-t",
            "--timeout",
            type=click.FloatRange(min=0),
            default=default_timeout,
            show_default=True,
            help="Seconds to wait before giving up (the deploy itself goes on).",
        )(function)

    return decorate


@click.command("mark-for-deployment", cls=PaastaCommand, context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES)
@service_option()
@click.option("-l", "--deploy-group", "group", required=True, help="Deploy group (a step of deploy.yaml).")
@click.option(
    "-c", "-k", "--commit", required=True, help="Commit to deploy: full or short sha, branch or tag."
)
@click.option("-u", "--git-url", default=None, help="Repository to tag (default: git_url in service.yaml).")
@_image_version_option
@click.option("--wait-for-deployment", "wait", is_flag=True, help="Wait until every instance runs it.")
@_wait_options(DEFAULT_TIMEOUT_S)
@soa_dir_option
@verbose_option
def mark_for_deployment(
    service: str,
    group: str,
    commit: str,
    git_url: str | None,
    image_version: str | None,
    wait: bool,
    timeout: float,
    polling_interval: float,
    soa_dir: str,
    verbose: int,
) -> None:
    """Deploy COMMIT to a deploy group by pushing a deploy tag to the service's repository.

    Marking the version that is already marked pushes nothing; with waiting on, its health is
    checked once (exit 0 healthy, 1 not).

    It runs once generate_deployments_for_service and setup_kubernetes_job have picked up the tag.
    With --wait-for-deployment (or `wait_for_deployment: true` on the step in deploy.yaml) it
    then waits until every instance of the group, on every cluster, runs only the new version
    with enough ready replicas.
    """
    config = _load(soa_dir, service, group)
    problem = git_tags.image_version_problem(image_version) if image_version is not None else None
    if problem:
        raise UsageError(problem)
    url = git_url or git_remote.require_git_url(config.git_url, config.path)
    system = load_system_config(missing_ok=True)
    with git_remote.RemoteRepo(url) as remote:
        sha = remote.resolve_commit(commit)
        if sha != commit:
            click.echo(f"Resolved {commit} to {sha}.")
        target = Version(sha, None, image_version)
        current = git_tags.latest_deploy_tag(remote.refs(), group)
        already = current is not None and (current.sha, current.image_version) == (sha, image_version)
        if already:
            click.echo(f"{target.short()} is already the version marked for {group}; no new tag pushed.")
        else:
            stamp = git_tags.next_timestamp(current.timestamp if current else None, git_tags.now_timestamp())
            tag = git_tags.deploy_tag_name(group, stamp, image_version)
            remote.push_tag(sha, tag)
            click.echo(f"Marked {target.short()} for deployment in deploy group {group} (tag {tag}).")
            event_log.log_event(
                system, service=config.name, message=f"Marked {sha} ({tag}) for deployment in {group}"
            )
    if wait or group in config.wait_for_deployment_groups:
        # Re-marking the deployed version does not start a deploy: check its health once.
        wait_for_deployment(
            system,
            soa_dir,
            config,
            group,
            target,
            timeout=0 if already else timeout,
            interval=polling_interval,
        )


@click.command("wait-for-deployment", cls=PaastaCommand, context_settings=CONTEXT_SETTINGS, epilog=EXIT_CODES)
@service_option()
@click.option("-l", "--deploy-group", "group", required=True, help="Deploy group (a step of deploy.yaml).")
@click.option("-c", "-k", "--commit", required=True, help="The marked commit (full or short sha, or ref).")
@click.option("-u", "--git-url", default=None, help="Repository (default: git_url in service.yaml).")
@_image_version_option
@_wait_options(DEFAULT_TIMEOUT_S)
@soa_dir_option
@verbose_option
def wait_for_deployment_cmd(
    service: str,
    group: str,
    commit: str,
    git_url: str | None,
    image_version: str | None,
    timeout: float,
    polling_interval: float,
    soa_dir: str,
    verbose: int,
) -> None:
    """Wait until every instance of a deploy group runs COMMIT (it must be the latest marked)."""
    config = _load(soa_dir, service, group)
    url = git_url or git_remote.require_git_url(config.git_url, config.path)
    with git_remote.RemoteRepo(url) as remote:
        sha = remote.resolve_commit(commit)
        latest = git_tags.latest_deploy_tag(remote.refs(), group)
    if latest is None or (latest.sha, latest.image_version) != (sha, image_version):
        marked = Version(latest.sha, None, latest.image_version).short() if latest else "nothing"
        raise UsageError(
            f"{Version(sha, None, image_version).short()} is not the latest version marked for {group} "
            f"(that is {marked}); mark it first with paasta mark-for-deployment"
        )
    system = load_system_config(missing_ok=True)
    target = Version(sha, None, image_version)
    wait_for_deployment(system, soa_dir, config, group, target, timeout=timeout, interval=polling_interval)
