"""setup_kubernetes_job: make the cluster's Deployments match soa-configs (create and update only).

    setup_kubernetes_job [-d SOA_DIR] [-c CLUSTER] [--dry-run] [-v] [SERVICE.INSTANCE ...]
    python -m paasta_lite.setup_kubernetes_job ...

The run, in order: load the system config and the soa dir (every instance of the cluster, or
the ones named); render each instance (`render`); list the managed Deployments once, across
namespaces (`kube_client`); pair and decide (`reconcile_plan.plan_setup`, pure); then apply only
what the plan says: create missing namespaces, create, replace. A run with nothing to change
makes one GET and no writes. It never deletes (that is `cleanup_kubernetes_jobs`).

Each instance succeeds or fails on its own: a config error or an API refusal (e.g. 422) is
reported with the service.instance and the API's message, and the others still reconcile.
Retries (409/429/5xx/timeouts) happen inside `kube_client`. Output: one line per action
(unchanged ones with -v) and a summary line. Exit 0 only when every requested instance is in
the desired state (or simply not deployed yet); 1 otherwise; 2 for usage/configuration errors
that stop the whole run (no cluster name, no soa dir).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import click
import yaml

from paasta_lite.cli.base import CONTEXT_SETTINGS, PaastaCommand
from paasta_lite.cli.options import cluster_option, soa_dir_option, verbose_option
from paasta_lite.config.naming import job_id, split_job_id
from paasta_lite.config.soa_config import ServiceConfig, SoaDir
from paasta_lite.config.system_config import SystemConfig, load_system_config
from paasta_lite.errors import ConfigError, NotDeployedError, PaastaLiteError
from paasta_lite.kube import labels
from paasta_lite.kube.client import KubeClient
from paasta_lite.kube.errors import AlreadyExists, KubeError
from paasta_lite.kube.reconcile_plan import Action, SetupPlan, Step, owned_view, plan_setup
from paasta_lite.kube.render import RenderedApp, render_service_instances
from paasta_lite.status.event_log import log_event

Obj = dict[str, Any]


@dataclass
class Desired:
    """Everything the soa dir asks for on this cluster, as rendered apps and per-job problems."""

    apps: list[RenderedApp] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)
    not_deployed: dict[str, str] = field(default_factory=dict)

    def add_service(self, service: ServiceConfig, cluster: str, system: SystemConfig,
                    only: set[str] | None) -> None:
        rendered, errors = render_service_instances(service, cluster, system, only=only)
        self.apps.extend(rendered)
        for jid, error in errors.items():
            target = self.not_deployed if isinstance(error, NotDeployedError) else self.failures
            target[jid] = _one_line(error)


def _one_line(error: PaastaLiteError) -> str:
    if isinstance(error, ConfigError):
        return "; ".join(str(problem) for problem in error.problems)
    return str(error)


def parse_jobs(jobs: Sequence[str], desired: Desired) -> dict[str, set[str]]:
    """SERVICE.INSTANCE arguments grouped by service; malformed ones become failures."""
    wanted: dict[str, set[str]] = {}
    for job in jobs:
        try:
            service, instance = split_job_id(job)
        except ValueError as error:
            desired.failures[job] = str(error)
            continue
        wanted.setdefault(service, set()).add(instance)
    return wanted


def gather_desired(soa: SoaDir, cluster: str, system: SystemConfig, jobs: Sequence[str]) -> Desired:
    """Load and render what the run covers: the named instances, or every one of the cluster."""
    desired = Desired()
    soa.check()
    if not jobs:
        loaded = soa.instances_for_cluster(cluster)
        for name, error in loaded.errors.items():
            desired.failures[f"{name}.*"] = _one_line(error)
        for service in loaded.services.values():
            desired.add_service(service, cluster, system, None)
        return desired
    for name, instances in parse_jobs(jobs, desired).items():
        try:
            service = soa.load_service(name, clusters=[cluster])
        except ConfigError as error:
            desired.failures.update({job_id(name, i): _one_line(error) for i in instances})
            continue
        for instance in sorted(instances - service.instance_names(cluster)):
            desired.failures[job_id(name, instance)] = f"not configured for cluster {cluster}"
        desired.add_service(service, cluster, system, instances & service.instance_names(cluster))
    return desired


def apply_plan(plan: SetupPlan, client: KubeClient, namespace_labels: dict[str, Obj]) -> Iterator[Step]:
    """Carry out the plan's writes; yield every step with its final outcome, as it happens."""
    broken_namespaces: dict[str, str] = {}
    for namespace in plan.namespaces:
        try:
            client.create_namespace(namespace, namespace_labels.get(namespace))
        except KubeError as error:
            broken_namespaces[namespace] = f"cannot create namespace {namespace}: {error}"
    for step in plan.steps:
        if step.action not in (Action.CREATE, Action.UPDATE):
            yield step
        elif step.namespace in broken_namespaces:
            yield replace(step, action=Action.FAILED, reasons=(broken_namespaces[step.namespace],))
        else:
            yield _write(step, client)


def _write(step: Step, client: KubeClient) -> Step:
    assert step.body is not None
    try:
        if step.action is Action.CREATE:
            try:
                client.create_deployment(step.namespace, step.body)
            except AlreadyExists:
                # A retried create whose first attempt landed (the answer was lost): fine if the
                # object now there is ours, by config hash; anything else is a real conflict.
                live = client.get_deployment(step.namespace, step.name)
                if _hash_of(live) is None or _hash_of(live) != _hash_of(step.body):
                    raise
        else:
            client.replace_deployment(step.namespace, step.name, step.body)
    except KubeError as error:
        verb = "create" if step.action is Action.CREATE else "update"
        return replace(step, action=Action.FAILED, reasons=(f"{verb} refused by the API: {error}",))
    return step


def _hash_of(obj: Obj) -> str | None:
    value = ((obj.get("metadata") or {}).get("labels") or {}).get(labels.CONFIG_SHA)
    return str(value) if value else None


def log_step(system: SystemConfig, cluster: str, step: Step) -> None:
    """Record what the reconciler did in the service's deploy event log (`paasta logs -C deploy`)."""
    if step.action not in (Action.CREATE, Action.UPDATE, Action.FAILED):
        return
    service, _, instance = step.job_id.partition(".")
    log_event(system, service=service, instance=instance or None, cluster=cluster,
              level="error" if step.action is Action.FAILED else "event",
              message=f"setup_kubernetes_job: {step_line(step, dry_run=False)}")


# --------------------------------------------------------------------------- output

_PAST = {Action.CREATE: "created", Action.UPDATE: "updated", Action.UNCHANGED: "unchanged",
         Action.FAILED: "failed", Action.NOT_DEPLOYED: "not deployed"}
_FUTURE = {Action.CREATE: "would create", Action.UPDATE: "would update", Action.UNCHANGED: "unchanged",
           Action.FAILED: "failed", Action.NOT_DEPLOYED: "not deployed"}


def step_line(step: Step, *, dry_run: bool) -> str:
    verb = (_FUTURE if dry_run else _PAST)[step.action]
    where = f" ({step.namespace}/{step.name})" if step.name else ""
    return f"{verb} {step.job_id}{where}: {step.message}"


def update_diff(step: Step) -> str:
    """Unified diff, in YAML, of the fields we own: live (cut to our keys) -> what we would send."""
    assert step.body is not None and step.live is not None
    body = {k: v for k, v in step.body.items() if k != "status"}
    body["metadata"] = {k: v for k, v in body.get("metadata", {}).items() if k != "resourceVersion"}
    before = yaml.safe_dump(owned_view(step.live, body), sort_keys=True).splitlines(keepends=True)
    after = yaml.safe_dump(body, sort_keys=True).splitlines(keepends=True)
    return "".join(difflib.unified_diff(before, after, f"live/{step.namespace}/{step.name}",
                                        f"desired/{step.namespace}/{step.name}"))


def report(step: Step, *, dry_run: bool, verbose: int) -> None:
    if step.action is Action.UNCHANGED and not verbose:
        return
    click.echo(step_line(step, dry_run=dry_run), err=step.action is Action.FAILED)
    if dry_run and step.action is Action.UPDATE:
        click.echo(update_diff(step), nl=False)


def summary(steps: Sequence[Step], cluster: str, *, dry_run: bool) -> str:
    counts = {action: sum(1 for s in steps if s.action is action) for action in Action}
    verbs = _FUTURE if dry_run else _PAST
    parts = ", ".join(f"{counts[a]} {verbs[a]}" for a in Action)
    return f"{'dry run: ' if dry_run else ''}cluster {cluster}: {parts}"


# --------------------------------------------------------------------------- entry point


@click.command("setup_kubernetes_job", cls=PaastaCommand, context_settings=CONTEXT_SETTINGS)
@soa_dir_option
@cluster_option()
@click.option("--dry-run", is_flag=True, help="Print the plan (with a diff for updates); change nothing.")
@verbose_option
@click.argument("jobs", nargs=-1, metavar="[SERVICE.INSTANCE]...")
@click.pass_context
def setup_kubernetes_job(ctx: click.Context, soa_dir: str, cluster: str | None, dry_run: bool,
                         verbose: int, jobs: tuple[str, ...]) -> None:
    """Create or update the Deployments of every instance of the cluster (or those named)."""
    system = load_system_config()
    cluster_name = system.require_cluster(cluster)
    desired = gather_desired(SoaDir(soa_dir), cluster_name, system, jobs)
    with KubeClient() as client:
        plan = plan_setup(desired.apps, client.list_managed_deployments(),
                          failures=desired.failures, not_deployed=desired.not_deployed)
        namespace_labels = {app.namespace: app.namespace_manifest["metadata"].get("labels") or {}
                            for app in desired.apps}
        outcomes = list(plan.steps) if dry_run else []
        for step in plan.steps if dry_run else apply_plan(plan, client, namespace_labels):
            report(step, dry_run=dry_run, verbose=verbose)
            if not dry_run:
                outcomes.append(step)
                log_step(system, cluster_name, step)
    if dry_run and plan.namespaces:
        click.echo(f"would create namespaces: {', '.join(plan.namespaces)}")
    click.echo(summary(outcomes, cluster_name, dry_run=dry_run))
    ctx.exit(1 if any(step.action.is_failure for step in outcomes) else 0)


def main() -> None:
    setup_kubernetes_job.main(prog_name="setup_kubernetes_job")


if __name__ == "__main__":
    main()
