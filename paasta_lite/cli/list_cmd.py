"""`paasta list`, `paasta list-clusters`, `paasta info`: answers from config alone, no cluster."""

from __future__ import annotations

import click

from paasta_lite.cli.base import CONTEXT_SETTINGS, PaastaCommand
from paasta_lite.cli.options import service_option, soa_dir_option
from paasta_lite.config.soa_config import ServiceConfig, SoaDir
from paasta_lite.errors import ConfigError


@click.command("list", cls=PaastaCommand, context_settings=CONTEXT_SETTINGS)
@click.option("-i", "--instances", "show_instances", is_flag=True, help="Print service.instance pairs.")
@click.option("-c", "--cluster", default=None, help="Only instances on this cluster (with -i).")
@soa_dir_option
@click.pass_context
def list_services(ctx: click.Context, show_instances: bool, cluster: str | None, soa_dir: str) -> None:
    """List the services in the soa dir (or their instances with -i).

    Services that fail to load are reported on stderr and the exit code is 1; the others are listed.
    """
    soa = SoaDir(soa_dir)
    broken = 0
    for name in soa.list_services():
        if not show_instances:
            click.echo(name)
            continue
        try:
            service = soa.load_service(name, clusters=[cluster] if cluster else None)
        except ConfigError as error:
            broken += 1
            click.secho(f"{name}: cannot be loaded: {error.problems[0]}", fg="red", err=True)
            continue
        for instance in sorted({c.instance for c in service.all_instances()}):
            click.echo(f"{name}.{instance}")
        for problem in service.problems:
            broken += 1
            click.secho(f"{name}: invalid instance: {problem}", fg="red", err=True)
    if broken:
        ctx.exit(1)


@click.command("list-clusters", cls=PaastaCommand, context_settings=CONTEXT_SETTINGS)
@soa_dir_option
@click.pass_context
def list_clusters(ctx: click.Context, soa_dir: str) -> None:
    """List every cluster any service has a kubernetes-<cluster>.yaml for.

    A service directory that cannot be read is reported on stderr (exit 1); the others still count.
    """
    soa = SoaDir(soa_dir)
    clusters: set[str] = set()
    broken = 0
    for name in soa.list_services():
        try:
            clusters.update(soa.clusters_of(name))
        except ConfigError as error:
            broken += 1
            click.secho(f"{name}: cannot be read: {error}", fg="red", err=True)
    for cluster in sorted(clusters):
        click.echo(cluster)
    if broken:
        ctx.exit(1)


def describe_service(service: ServiceConfig) -> list[str]:
    """The lines of `paasta info` (pure, for testing)."""
    lines = [f"Service: {service.name}"]
    for label, value in (
        ("Description", service.description),
        ("External link", service.external_link),
        ("Git repository", service.git_url),
        ("Docker registry", service.docker_registry),
    ):
        if value:
            lines.append(f"{label}: {value}")
    lines.append("Deploy pipeline: " + (" -> ".join(service.deploy_groups) or "(no deploy.yaml)"))
    for cluster in service.clusters:
        lines.append(f"Cluster {cluster}:")
        for config in service.instances.get(cluster, {}).values():
            deployments = service.deployments
            version = deployments.version_for(config.deploy_group) if deployments else None
            deployed = f"deployed {version.short_sha}" if version else "not deployed yet"
            if deployments and deployments.problems_for(service.name, cluster, config.instance,
                                                        config.deploy_group):
                deployed = "its deployments.json entry is malformed (run `paasta validate`)"
            lines.append(
                f"  {config.instance}: {config.instances} x ({config.cpus:g} cpu, {config.mem:g} MiB), "
                f"deploy group {config.deploy_group}, {deployed}"
            )
        for instance in service.invalid_instances.get(cluster, {}):
            lines.append(f"  {instance}: INVALID (run `paasta validate -s {service.name}`)")
    return lines


@click.command(cls=PaastaCommand, context_settings=CONTEXT_SETTINGS)
@service_option()
@soa_dir_option
def info(service: str, soa_dir: str) -> None:
    """Describe a service from its soa-configs: metadata, pipeline, instances per cluster."""
    for line in describe_service(SoaDir(soa_dir).load_service(service)):
        click.echo(line)
