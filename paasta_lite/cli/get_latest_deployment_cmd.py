"""`paasta get-latest-deployment -s SERVICE -l DEPLOY_GROUP`: what deployments.json says a group runs.

Reads the local deployments.json (as PaaSTA does), i.e. what the reconciler will run, which can
lag the newest tag in git until `generate_deployments_for_service` runs again.
"""

from __future__ import annotations

import json

import click

from paasta_lite.cli.base import CONTEXT_SETTINGS, PaastaCommand
from paasta_lite.cli.options import service_option, soa_dir_option
from paasta_lite.config.soa_config import SoaDir
from paasta_lite.errors import ConfigError, NotDeployedError


@click.command("get-latest-deployment", cls=PaastaCommand, context_settings=CONTEXT_SETTINGS)
@service_option()
@click.option("-l", "-i", "--deploy-group", "group", required=True, help="Deploy group.")
@click.option(
    "-j", "--json", "as_json", is_flag=True, help="Print docker_image, git_sha and image_version as JSON."
)
@soa_dir_option
def get_latest_deployment(service: str, group: str, as_json: bool, soa_dir: str) -> None:
    """Print the git sha deployed to a deploy group (exit 1 if none, 2 on configuration errors)."""
    config = SoaDir(soa_dir).load_service(service, clusters=[])
    broken = config.deployments.broken_deployments.get(group) if config.deployments else None
    if broken is not None:
        raise ConfigError([broken])
    deployed = config.deployments.version_for(group) if config.deployments else None
    if deployed is None:
        raise NotDeployedError(
            f"nothing is deployed to {group} in {config.path}/deployments.json "
            "(mark a version with paasta mark-for-deployment, then run "
            f"generate_deployments_for_service -s {service})"
        )
    if as_json:
        click.echo(json.dumps(deployed.to_dict(), sort_keys=True))
    else:
        click.echo(deployed.git_sha)
