"""setup_kubernetes_job: make the cluster's Deployments match soa-configs (create and update only).

    setup_kubernetes_job [-d SOA_DIR] [-c CLUSTER] [--dry-run] [--full] [--concurrency 8] [--deadline 600]
                         [--lock-timeout 60] [-v] [SERVICE.INSTANCE ...]
    python -m paasta_lite.setup_kubernetes_job ...

The run, in order: take the cluster's run lock (`run_lock`, not for --dry-run); load the system
config and the soa dir (every instance of the cluster, or the ones named) and render each
instance (`render`); list the managed Deployments once, across namespaces; pair and decide
(`reconcile_plan.plan_setup`, pure); then write only what the plan says (`plan_writer`):
namespaces first, then the apps in parallel, each by server-side apply: the Deployment, its HPA
and PDB (owned by it), their record on the Deployment (`companions`). A run with nothing to
change makes one list and no writes (plus the lock's Lease requests): the companions are judged
from that record; `--full` lists every managed HPA and PDB too (one list per kind) and repairs
any deleted or edited by hand. It deletes only companions an instance no longer needs (an HPA
once it is stopped, for one); deleting apps is `cleanup_kubernetes_jobs`' job.

Each instance succeeds or fails on its own: a config error or an API refusal (e.g. 422) is
reported with the service.instance and the API's message, and the others still reconcile. One
budget covers the run (`run_budget`): when the API server keeps failing, or the deadline
passes, writing stops and what is left is reported as not attempted. Output: one line per
action (unchanged ones with -v) and a summary line. Exit 0 only when every requested instance
is in the desired state (or simply not deployed yet); 1 otherwise (also when another run holds
the lock past --lock-timeout); 2 for usage/configuration errors that stop the whole run (no
cluster name, no soa dir).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from typing import Any

import click
import yaml

from paasta_lite.cli.base import CONTEXT_SETTINGS, PaastaCommand
from paasta_lite.cli.options import (
    cluster_option,
    reconciler_write_options,
    soa_dir_option,
    verbose_option,
)
from paasta_lite.config.soa_config import SoaDir
from paasta_lite.config.system_config import SystemConfig, load_system_config
from paasta_lite.kube.client import KubeClient
from paasta_lite.kube.companions import KINDS as COMPANION_KINDS
from paasta_lite.kube.compare import owned_view
from paasta_lite.kube.errors import KubeError
from paasta_lite.kube.plan_writer import write_setup_plan
from paasta_lite.kube.reconcile_plan import Action, Step, plan_setup
from paasta_lite.kube.reconcile_run import Desired, cron_run, gather_desired, step_line, summary
from paasta_lite.status.event_log import log_event

Obj = dict[str, Any]


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
    click.echo(step_line(step, dry_run=dry_run), err=step.action.is_failure)
    if dry_run and step.action is Action.UPDATE and step.body is not None:  # (None: companions only)
        click.echo(update_diff(step), nl=False)


# --------------------------------------------------------------------------- entry point


@click.command("setup_kubernetes_job", cls=PaastaCommand, context_settings=CONTEXT_SETTINGS)
@soa_dir_option
@cluster_option()
@click.option("--dry-run", is_flag=True, help="Print the plan (with a diff for updates); change nothing.")
@click.option("--full", is_flag=True,
              help="Also list every managed HPA and PDB (one list per kind) and repair the ones deleted or "
                   "edited by hand, whatever the Deployments' companions record says.")
@reconciler_write_options
@verbose_option
@click.argument("jobs", nargs=-1, metavar="[SERVICE.INSTANCE]...")
@click.pass_context
def setup_kubernetes_job(ctx: click.Context, soa_dir: str, cluster: str | None, dry_run: bool, full: bool,
                         concurrency: int, deadline: float, lock_timeout: float, verbose: int,
                         jobs: tuple[str, ...]) -> None:
    """Create or update the Deployments of every instance of the cluster (or those named)."""
    system = load_system_config()
    cluster_name = system.require_cluster(cluster)
    soa = SoaDir(soa_dir)
    soa.check()  # before any request: a missing soa dir is a usage error, not a cluster matter
    with cron_run("setup_kubernetes_job", concurrency=concurrency, deadline=deadline,
                  lock_timeout=lock_timeout, dry_run=dry_run) as client:
        desired = gather_desired(soa, cluster_name, system, jobs)
        outcomes = list(reconcile(desired, client, dry_run=dry_run, verbose=verbose, full=full,
                                  concurrency=concurrency, system=system, cluster=cluster_name))
    click.echo(summary(outcomes, cluster_name, dry_run=dry_run))
    ctx.exit(1 if any(step.action.is_failure for step in outcomes) else 0)


def reconcile(desired: Desired, client: KubeClient, *, dry_run: bool, verbose: int, concurrency: int,
              system: SystemConfig, cluster: str, full: bool = False) -> Iterator[Step]:
    """List, plan, and (unless ``dry_run``) write; report and yield every step's outcome.
    ``full``: list the companion kinds too, so every app's HPA and PDB are compared."""
    try:
        live = client.list_managed_deployments()
        others = {kind: client.list_managed(kind) for kind in COMPANION_KINDS} if full else None
    except KubeError as error:  # the budget gave up on a list: nothing can be planned
        what = "objects" if full else "Deployments"
        click.echo(f"error: cannot list the managed {what}: {error}", err=True)
        yield from _not_attempted(desired, str(error))
        return
    plan = plan_setup(desired.apps, live, live_others=others, failures=desired.failures,
                      not_deployed=desired.not_deployed)
    if dry_run:
        for step in plan.steps:
            report(step, dry_run=True, verbose=verbose)
            yield step
        if plan.namespaces:
            click.echo(f"would create namespaces: {', '.join(plan.namespaces)}")
        return
    for step in write_setup_plan(plan, desired.apps, client, namespace_labels=desired.namespace_labels(),
                                 concurrency=concurrency):
        report(step, dry_run=False, verbose=verbose)
        log_step(system, cluster, step)
        yield step


def _not_attempted(desired: Desired, why: str) -> Iterator[Step]:
    for app in desired.apps:
        step = Step(job_id=app.job_id, action=Action.NOT_ATTEMPTED, namespace=app.namespace, name=app.name,
                    reasons=(f"not attempted: {why}",))
        report(step, dry_run=False, verbose=0)
        yield step
    for jid, why_failed in desired.failures.items():
        yield Step(job_id=jid, action=Action.FAILED, reasons=(why_failed,))


def main() -> None:
    setup_kubernetes_job.main(prog_name="setup_kubernetes_job")


if __name__ == "__main__":
    main()
