"""`paasta start|stop|restart`: push a state tag onto the sha an instance currently deploys.

The tag ``paasta-<cluster>.<instance>-<UTC ts>-start|stop`` goes on the sha of the newest deploy
tag of the instance's deploy group. `generate_deployments_for_service` turns the newest state
tag on the deployed sha into the instance's control (desired_state, force_bounce = the tag's
timestamp) and `setup_kubernetes_job` applies it. Restart is a start with a fresh timestamp: a
new force_bounce changes the config hash, which replaces every pod. A state tag only counts on
the sha it was pushed to, so the next deploy of a new sha undoes a stop (as in PaaSTA).
"""

from __future__ import annotations

from dataclasses import dataclass

import click

from paasta_lite.cli.base import CONTEXT_SETTINGS, PaastaCommand
from paasta_lite.cli.options import service_option, soa_dir_option
from paasta_lite.config.instance_config import InstanceConfig
from paasta_lite.config.soa_config import ServiceConfig, SoaDir
from paasta_lite.config.system_config import load_system_config
from paasta_lite.errors import PaastaLiteError, UsageError
from paasta_lite.gitflow import remote as git_remote
from paasta_lite.gitflow import tags as git_tags
from paasta_lite.status import event_log


@dataclass(frozen=True)
class Action:
    """What a command asks for: the state tag it pushes and how to tell the user."""

    name: str
    state: str
    effect: str


ACTIONS = {
    "start": Action("start", "start", "will be started"),
    "stop": Action("stop", "stop", "will be stopped (scaled to 0 replicas)"),
    "restart": Action("restart", "start", "will be restarted (every pod replaced)"),
}


def select_instances(
    service: ServiceConfig, cluster: str, names: str, *, clusters: list[str]
) -> list[InstanceConfig]:
    """The instances named in ``names`` (comma separated) on ``cluster``; unknown ones are an error.

    ``service`` is loaded for ``cluster`` only, so the service's clusters (``clusters``, from its
    file names) are passed in for the message that names them.
    """
    on_cluster = service.instances.get(cluster)
    if not on_cluster:
        known = ", ".join(sorted(clusters)) or "none"
        raise UsageError(f"{service.name} has no valid instance on cluster {cluster} (clusters: {known})")
    wanted = [name.strip() for name in names.split(",") if name.strip()]
    unknown = [name for name in wanted if name not in on_cluster]
    if unknown or not wanted:
        raise UsageError(
            f"unknown instance(s) {', '.join(unknown) or '(none given)'} of {service.name} on {cluster} "
            f"(known: {', '.join(sorted(on_cluster))})"
        )
    return [on_cluster[name] for name in wanted]


def outcome_message(action: Action, config: InstanceConfig, tag: str, sha: str) -> str:
    """What will happen, when, and what undoes it."""
    lines = [
        f"{config.service}.{config.instance} on {config.cluster} {action.effect} at the next "
        "generate_deployments_for_service + setup_kubernetes_job run",
        f"  (pushed tag {tag} on {sha[:8]}, the version deployed to {config.deploy_group}).",
    ]
    if action.state == "stop":
        lines.append(
            f"  A new deploy to {config.deploy_group} (a new sha) undoes this stop; "
            f"paasta start -s {config.service} -c {config.cluster} -i {config.instance} starts it again."
        )
    return "\n".join(lines)


def set_state(action: Action, soa_dir: str, service_name: str, cluster: str, instances: str) -> None:
    """Push one state tag per selected instance and say what happens next."""
    soa = SoaDir(soa_dir)
    service = soa.load_service(service_name, clusters=[cluster])
    selected = select_instances(service, cluster, instances, clusters=soa.clusters_of(service_name))
    url = git_remote.require_git_url(service.git_url, service.path)
    system = load_system_config(missing_ok=True)
    with git_remote.RemoteRepo(url) as remote:
        refs = remote.refs()
        parsed = git_tags.parse_refs(refs)
        for config in selected:
            deployed = git_tags.latest_deploy_tag(refs, config.deploy_group)
            if deployed is None:
                raise PaastaLiteError(
                    f"No deploy tags found for {config.deploy_group} in {url}. "
                    f"Has {service.name} been deployed there yet?"
                )
            branch = git_tags.branch_name(cluster, config.instance)
            newest = git_tags.latest_state_tag(branch, deployed.sha, parsed.state_tags)
            stamp = git_tags.next_timestamp(newest.timestamp if newest else None, git_tags.now_timestamp())
            tag = git_tags.state_tag_name(cluster, config.instance, stamp, action.state)
            remote.push_tag(deployed.sha, tag)
            click.echo(outcome_message(action, config, tag, deployed.sha))
            event_log.log_event(
                system,
                service=service.name,
                cluster=cluster,
                instance=config.instance,
                message=f"paasta {action.name}: pushed {tag} on {deployed.sha}",
            )


def _command(action: Action, summary: str) -> click.Command:
    @click.command(action.name, cls=PaastaCommand, context_settings=CONTEXT_SETTINGS, help=summary)
    @service_option()
    @click.option("-c", "--cluster", required=True, help="Cluster of the instance(s).")
    @click.option("-i", "--instances", "instances", required=True, help="Instance name(s), comma separated.")
    @soa_dir_option
    def command(service: str, cluster: str, instances: str, soa_dir: str) -> None:
        set_state(action, soa_dir, service, cluster, instances)

    return command


start = _command(
    ACTIONS["start"],
    "Start instances (undo a stop) by pushing a start tag on the deployed sha. Exit 0 pushed, "
    "1 git failed or nothing deployed, 2 usage or configuration error.",
)
stop = _command(
    ACTIONS["stop"],
    "Stop instances (0 replicas) by pushing a stop tag on the deployed sha; the next deploy of a "
    "new sha undoes it. Exit 0 pushed, 1 git failed or nothing deployed, 2 usage or configuration error.",
)
restart = _command(
    ACTIONS["restart"],
    "Restart instances (replace every pod) by pushing a fresh start tag on the deployed sha. "
    "Exit 0 pushed, 1 git failed or nothing deployed, 2 usage or configuration error.",
)
