"""`paasta validate`: load services exactly as every entry point does and report all problems."""

from __future__ import annotations

import os
from pathlib import Path

import click

from paasta_lite.cli.base import CONTEXT_SETTINGS, PaastaCommand
from paasta_lite.cli.options import soa_dir_option
from paasta_lite.config.soa_config import INSTANCE_FILE_PREFIX, ServiceConfig, SoaDir
from paasta_lite.config.system_config import SystemConfig, load_system_config
from paasta_lite.errors import ConfigError, FileSystemError, NotConfiguredError, Problem, UsageError


def _service_from_cwd() -> tuple[str, str] | None:
    """(soa_dir, service) when the current directory looks like a service directory."""
    try:
        cwd = Path.cwd()
        names = os.listdir(cwd)
    except OSError as error:
        raise FileSystemError(".", f"cannot be listed: {error.strerror or error}") from error
    if "service.yaml" in names or any(n.startswith(INSTANCE_FILE_PREFIX) for n in names):
        return str(cwd.parent), cwd.name
    return None


def _cluster_warnings(service: ServiceConfig, system: SystemConfig) -> list[Problem]:
    """Clusters are decided by file names; a `clusters` list that lacks one is worth a warning."""
    if not system.clusters:
        return []
    return [
        Problem(
            f"{service.path}/{INSTANCE_FILE_PREFIX}{cluster}.yaml",
            f"cluster '{cluster}' is not in the system config's clusters list "
            f"({', '.join(system.clusters)}); paasta_lite still uses it",
        )
        for cluster in service.clusters
        if cluster not in system.clusters
    ]


def validate_service(
    soa: SoaDir, name: str, system: SystemConfig
) -> tuple[list[Problem], list[Problem], str]:
    """(errors, warnings, summary) for one service."""
    try:
        service = soa.load_service(name)
    except ConfigError as error:
        return list(error.problems), [], "could not be loaded"
    warnings = list(service.warnings) + _cluster_warnings(service, system)
    count = sum(len(by_name) for by_name in service.instances.values())
    summary = f"{count} valid instance(s) on {len(service.clusters)} cluster(s)"
    return [*service.problems, *service.deployment_problems], warnings, summary


@click.command(cls=PaastaCommand, context_settings=CONTEXT_SETTINGS)
@click.option("-s", "--service", help="Service to validate (default: the service directory you are in).")
@click.option("-a", "--all", "all_services", is_flag=True, help="Validate every service in the soa dir.")
@soa_dir_option
@click.pass_context
def validate(ctx: click.Context, service: str | None, all_services: bool, soa_dir: str) -> None:
    """Check soa-configs the way every paasta_lite command loads them.

    Exit 0 when everything is valid, 1 with every problem listed otherwise. Warnings (PaaSTA keys
    paasta_lite ignores, files it does not use) do not fail validation.
    """
    if service and all_services:
        raise UsageError("give either -s SERVICE or --all, not both")
    soa_dir_given = ctx.get_parameter_source("soa_dir") == click.core.ParameterSource.COMMANDLINE
    if not service and not all_services:
        found = None if soa_dir_given else _service_from_cwd()
        if found is None:
            raise UsageError("which service? pass -s SERVICE or --all, or run this in a service directory")
        soa_dir, service = found
    soa = SoaDir(soa_dir)
    names = soa.list_services() if all_services else [str(service)]
    if not all_services and str(service) not in soa.list_services():
        raise UsageError(f"no service '{service}' in {soa_dir}")
    try:
        system = load_system_config(missing_ok=True)
    except (ConfigError, NotConfiguredError) as error:
        click.secho(f"! system config: {error}", fg="yellow", err=True)
        system = SystemConfig(directory="")
    failed = 0
    for name in names:
        errors, warnings, summary = validate_service(soa, name, system)
        for warning in warnings:
            click.secho(f"  ! {warning}", fg="yellow")
        if errors:
            failed += 1
            click.secho(f"✗ {name}: {len(errors)} problem(s)", fg="red")
            for problem in errors:
                click.echo(f"  - {problem}")
        else:
            click.secho(f"✓ {name}: {summary}", fg="green")
    if not names:
        click.echo(f"no services in {soa_dir}")
    if failed:
        click.secho(f"{failed} of {len(names)} service(s) invalid", fg="red", err=True)
        ctx.exit(1)
