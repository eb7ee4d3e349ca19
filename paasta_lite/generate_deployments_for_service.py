"""`generate_deployments_for_service -s SERVICE [-d SOA_DIR] [-v]`: git tags -> deployments.json.

The step between "a deploy tag was pushed" (`paasta mark-for-deployment`, `paasta start|stop|
restart`) and "the reconciler runs it" (`setup_kubernetes_job` reads deployments.json):

1. load the service (service.yaml's ``git_url``, deploy.yaml's groups, every instance's group);
2. list every ref of the repository in one ``git ls-remote`` (`git_remote.list_refs`);
3. pick the newest deploy tag of each group and the start/stop state of each instance on the
   deployed sha (`git_tags`), and build a `DeploymentsJson` (pure: `deployments_from_refs`);
4. write it atomically, only when it changed (`deployments_json.write_deployments_json`).

An unreachable repository raises before anything is written, so the old file stays.
Also runnable as ``python -m paasta_lite.generate_deployments_for_service``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

import click

from paasta_lite.cli.base import CONTEXT_SETTINGS, PaastaCommand
from paasta_lite.cli.options import service_option, soa_dir_option, verbose_option
from paasta_lite.config.deployments_json import (
    Control,
    DeployedVersion,
    DeploymentsJson,
    control_key,
    docker_image_for,
    write_deployments_json,
)
from paasta_lite.config.soa_config import ServiceConfig, SoaDir
from paasta_lite.gitflow import remote as git_remote
from paasta_lite.gitflow import tags as git_tags

log = logging.getLogger(__name__)

DEPLOYMENTS_JSON = "deployments.json"


def instance_groups(service: ServiceConfig) -> dict[tuple[str, str], str]:
    """(cluster, instance) -> deploy group, for every valid instance of the service."""
    return {(config.cluster, config.instance): config.deploy_group for config in service.all_instances()}


def deployments_from_refs(
    service: str,
    *,
    deploy_groups: Iterable[str],
    instances: Mapping[tuple[str, str], str],
    refs: Mapping[str, str],
) -> DeploymentsJson:
    """The deployments.json content for ``service`` given its repository's refs (pure).

    Groups considered: deploy.yaml's plus those instances use. Groups without a deploy tag are
    absent; controls exist for the instances whose group is deployed.
    """
    parsed = git_tags.parse_refs(refs)
    wanted = set(deploy_groups) | set(instances.values())
    latest = git_tags.latest_deploy_tags(parsed.deploy_tags, wanted)
    deployments = {
        group: DeployedVersion(
            docker_image=docker_image_for(service, tag.sha, tag.image_version),
            git_sha=tag.sha,
            image_version=tag.image_version,
        )
        for group, tag in latest.items()
    }
    controls: dict[str, Control] = {}
    for (cluster, instance), group in instances.items():
        if group not in latest:
            continue
        branch = git_tags.branch_name(cluster, instance)
        state, force_bounce = git_tags.desired_state(branch, latest[group].sha, parsed.state_tags)
        controls[control_key(service, cluster, instance)] = Control(state, force_bounce)
    return DeploymentsJson(deployments=deployments, controls=controls)


def generate(soa_dir: str, service_name: str, *, timeout: float = git_remote.DEFAULT_TIMEOUT_S) -> bool:
    """Regenerate ``<soa_dir>/<service>/deployments.json``; True when the file changed."""
    service = SoaDir(soa_dir).load_service(service_name, with_deployments=False)
    url = git_remote.require_git_url(service.git_url, service.path)
    started = time.monotonic()
    refs = git_remote.list_refs(url, timeout=timeout)
    listed = time.monotonic()
    deployments = deployments_from_refs(
        service.name, deploy_groups=service.deploy_groups, instances=instance_groups(service), refs=refs
    )
    changed = write_deployments_json(Path(service.path) / DEPLOYMENTS_JSON, deployments)
    log.info(
        "%s: %d refs listed in %.3fs, processed in %.3fs; %d deploy group(s) deployed; %s",
        service.name,
        len(refs),
        listed - started,
        time.monotonic() - listed,
        len(deployments.deployments),
        "deployments.json written" if changed else "deployments.json unchanged",
    )
    return changed


@click.command(cls=PaastaCommand, context_settings=CONTEXT_SETTINGS)
@service_option()
@soa_dir_option
@verbose_option
def main(service: str, soa_dir: str, verbose: int) -> None:
    """Turn SERVICE's deploy and start/stop tags into <soa-dir>/SERVICE/deployments.json.

    Exit codes: 0 written or already up to date, 1 git failed (the old file is kept),
    2 configuration error.
    """
    logging.basicConfig(
        level=logging.DEBUG if verbose > 1 else logging.INFO if verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    changed = generate(soa_dir, service)
    click.echo(f"{service}: deployments.json {'updated' if changed else 'unchanged'}")


if __name__ == "__main__":
    main(prog_name="generate_deployments_for_service")
