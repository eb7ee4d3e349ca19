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

import click
import yaml

from paasta_lite.cli.base import CONTEXT_SETTINGS, PaastaCommand
from paasta_lite.cli.options import cluster_option, soa_dir_option, verbose_option
from paasta_lite.config.soa_config import SoaDir
from paasta_lite.config.system_config import SystemConfig, load_system_config
from paasta_lite.kube.apply import apply_plan, gather_desired, step_line, summary
from paasta_lite.kube.client import KubeClient
from paasta_lite.kube.reconcile_plan import Action, Step, owned_view, plan_setup
from paasta_lite.status.event_log import log_event


def log_step(system: SystemConfig, cluster: str, step: Step) -> None:
    """Record what the reconciler did in the service's deploy event log (`paasta logs -C deploy`)."""
    if step.action not in (Action.CREATE, Action.UPDATE, Action.FAILED):
        return
    service, _, instance = step.job_id.partition(".")
    log_event(system, service=service, instance=instance or None, cluster=cluster,
              level="error" if step.action is Action.FAILED else "event",
              message=f"setup_kubernetes_job: {step_line(step, dry_run=False)}")


# --------------------------------------------------------------------------- output

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
