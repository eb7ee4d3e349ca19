"""`paasta render`: print the objects `setup_kubernetes_job` would apply, without a cluster.

It loads the service and the system config exactly as the reconciler does and calls the same
`render_service_instances`, so what it prints is what would be sent (Namespace, then for each
instance its Deployment, HorizontalPodAutoscaler if autoscaled, and PodDisruptionBudget). stdout
holds only the documents (pipe it to `kubectl apply -f -` or `diff`); instances that cannot be
rendered and the loader's warnings about them (e.g. autoscaling keys that have no effect) go to
stderr. For an autoscaled instance `spec.replicas` is its first-deploy count (`max_instances`);
on updates the reconciler keeps the live count, which the HPA owns.

Exit code: 0 when everything asked for was rendered or is simply not deployed yet; an instance
named with `-i` that is not deployed yet gives 1; a configuration problem gives its error's code.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

import click
import yaml

from paasta_lite.cli.base import CONTEXT_SETTINGS, PaastaCommand
from paasta_lite.cli.options import cluster_option, service_option, soa_dir_option
from paasta_lite.config.soa_config import ServiceConfig, SoaDir
from paasta_lite.config.system_config import load_system_config
from paasta_lite.errors import ConfigError, NotDeployedError, PaastaLiteError, UsageError
from paasta_lite.kube.render import RenderedApp, render_service_instances

JsonDict = dict[str, Any]


class _PlainDumper(yaml.SafeDumper):
    """Never emit YAML anchors/aliases: the output should read like `kubectl get -o yaml`."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def manifests(apps: Iterable[RenderedApp]) -> list[JsonDict]:
    """Each app's Namespace (once per namespace, before its first Deployment), then the Deployment,
    its HorizontalPodAutoscaler (autoscaled instances) and its PodDisruptionBudget."""
    documents: list[JsonDict] = []
    seen: set[str] = set()
    for app in apps:
        if app.namespace not in seen:
            seen.add(app.namespace)
            documents.append(app.namespace_manifest)
        documents.extend(doc for doc in (app.deployment, app.hpa, app.pdb) if doc is not None)
    return documents


def format_manifests(documents: Sequence[JsonDict], output: str) -> str:
    """YAML: a `---`-separated stream. JSON: one `v1` List (what `kubectl apply -f` takes)."""
    if output == "json":
        return json.dumps({"apiVersion": "v1", "kind": "List", "items": list(documents)}, indent=2) + "\n"
    if not documents:
        return ""
    return yaml.dump_all(documents, Dumper=_PlainDumper, sort_keys=False, default_flow_style=False)


def _check_instances(service: ServiceConfig, cluster: str, instances: Sequence[str]) -> None:
    known = service.instance_names(cluster)
    if not known:
        raise UsageError(f"service '{service.name}' has no instances on cluster '{cluster}'")
    unknown = sorted(set(instances) - known)
    if unknown:
        raise UsageError(
            f"no instance {', '.join(repr(u) for u in unknown)} of '{service.name}' on cluster '{cluster}' "
            f"(instances: {', '.join(sorted(known))})"
        )


def _warn(service: ServiceConfig, instances: Sequence[str]) -> None:
    """The loader's warnings about the service and the instances asked for (all when none named)."""
    for warning in service.warnings:
        if warning.instance is None or not instances or warning.instance in instances:
            click.echo(f"warning: {warning}", err=True)


def _report(errors: dict[str, PaastaLiteError], *, explicit: bool) -> int:
    """Print why instances were not rendered; return the exit code they call for."""
    code = 0
    for name, error in sorted(errors.items()):
        if isinstance(error, NotDeployedError):
            click.echo(f"skipped {error}", err=True)
            code = max(code, 1 if explicit else 0)
        elif isinstance(error, ConfigError):
            click.secho(f"{name}: cannot be rendered:", fg="red", err=True)
            for problem in error.problems:
                click.echo(f"  - {problem}", err=True)
            code = max(code, error.exit_code)
        else:
            click.secho(f"{name}: cannot be rendered: {error}", fg="red", err=True)
            code = max(code, error.exit_code)
    return code


@click.command("render", cls=PaastaCommand, context_settings=CONTEXT_SETTINGS)
@service_option()
@click.option(
    "-i", "--instance", "instances", multiple=True, help="Only this instance (repeatable; default: all)."
)
@cluster_option()
@soa_dir_option
@click.option(
    "-o", "--output", type=click.Choice(["yaml", "json"]), default="yaml", show_default=True,
    help="Output format.",
)
@click.pass_context
def render(
    ctx: click.Context, service: str, instances: tuple[str, ...], cluster: str | None, soa_dir: str,
    output: str,
) -> None:
    """Print the Namespace, Deployment(s), HPA(s) and PDB(s) setup_kubernetes_job would apply.

    Needs no cluster.
    """
    system = load_system_config()
    cluster_name = system.require_cluster(cluster)
    config = SoaDir(soa_dir).load_service(service, clusters=[cluster_name])
    _check_instances(config, cluster_name, instances)
    apps, errors = render_service_instances(config, cluster_name, system, only=instances or None)
    click.echo(format_manifests(manifests(apps), output), nl=False)
    _warn(config, instances)
    code = _report(errors, explicit=bool(instances))
    if code:
        ctx.exit(code)
