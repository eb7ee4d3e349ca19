"""cleanup_kubernetes_jobs: delete managed Deployments that soa-configs no longer asks for.

    cleanup_kubernetes_jobs [-d SOA_DIR] [-c CLUSTER] [--dry-run] [--force] [-t/--kill-threshold 0.5]
                            [--concurrency 8] [--deadline 600] [--lock-timeout 60] [-v]
    python -m paasta_lite.cleanup_kubernetes_jobs ...

Deleting is the most guarded action (STYLE practice 5), so this refuses rather than guesses:
- a missing, unreadable or empty soa dir is an error (exit 2), never "nothing is configured";
- a service with any file-level configuration error keeps all its apps, and the run exits 1:
  its service.yaml, deploy.yaml or deployments.json, any of its kubernetes-*.yaml (of every
  cluster; an instance file naming no instance is an error), or its directory itself
  (unreadable, a symlink loop, a file). What it configures is unknown, not gone. Every app
  kept this way is listed, with the reason;
- only Deployments with the managed label and service/instance labels are considered, and
  ones labelled for another cluster are left alone; `-c` is honoured (PaaSTA ignores it);
- if more than the kill threshold (a fraction of the managed apps) would go, nothing is
  deleted and the exit code is 1, unless `--force`.

- each delete carries the uid and resourceVersion seen in the list as preconditions: an app
  recreated or changed in between is kept ("changed since list: kept"; the next run decides again).

It holds the cluster's run lock (`run_lock`; not with --dry-run) from before reading soa-configs
to the end, so it never races a setup run, and writes under one run budget (`run_budget`).
Deletion cascades to ReplicaSets and pods (`kube_client.DELETE_PROPAGATION`), and to the app's HPA and
PDB, which setup applied with an ownerReference to the Deployment (`companions`): the garbage collector
deletes them, so cleanup deletes only Deployments. One line per
deletion, every skipped delete with -v, a summary line. Exit 1 if any deletion failed or was not
attempted, or another run held the lock past --lock-timeout.
"""

from __future__ import annotations

from collections import Counter

import click

from paasta_lite.cli.base import CONTEXT_SETTINGS, PaastaCommand
from paasta_lite.cli.options import (
    cluster_option,
    reconciler_write_options,
    soa_dir_option,
    verbose_option,
)
from paasta_lite.config.soa_config import SoaDir
from paasta_lite.config.system_config import SystemConfig, load_system_config
from paasta_lite.errors import ConfigError, PaastaLiteError
from paasta_lite.kube.client import KubeClient
from paasta_lite.kube.plan_writer import Deletion, delete_victims
from paasta_lite.kube.reconcile_plan import (
    CleanupDecision,
    CleanupPlan,
    Configured,
    plan_cleanup,
)
from paasta_lite.kube.reconcile_run import configured_from_services, cron_run, deletion_line
from paasta_lite.status.event_log import log_event


class CleanupRefused(PaastaLiteError):
    """Over the kill threshold without --force: nothing was deleted."""

    exit_code = 1


def refuse_empty(soa: SoaDir) -> None:
    """An empty (or missing, or unreadable) soa dir is an error, never "nothing is configured"."""
    if not soa.list_services():  # also raises for a missing or unreadable directory
        raise ConfigError.single(
            str(soa.path), "contains no services; refusing to treat an empty soa-configs directory as "
            "'delete every app' (delete apps one by one with kubectl if that is really meant)")


def load_configured(soa: SoaDir, cluster: str) -> Configured:
    """Every (service, instance, namespace) configured for ``cluster``; refuses an empty soa dir."""
    refuse_empty(soa)
    # Every file of every service is read (deployments.json and other clusters' files too): any
    # file-level error puts the whole service in `errors`, and then none of its apps is deleted.
    loaded = soa.instances_for_cluster(cluster, every_file=True)
    for name, error in sorted(loaded.errors.items()):
        more = f" (and {len(error.problems) - 1} more problem(s))" if len(error.problems) > 1 else ""
        click.echo(f"warning: service {name} has a configuration error, so none of its apps is deleted: "
                   f"{error.problems[0]}{more}", err=True)
    return configured_from_services(cluster, loaded.services, loaded.errors.keys())


def report_plan(plan: CleanupPlan, *, verbose: int) -> None:
    for warning in plan.warnings:
        click.echo(f"warning: {warning}", err=True)
    for where, why in plan.held:
        click.echo(f"kept {where}: {why}")
    if verbose:
        for where, why in plan.kept:
            click.echo(f"kept {where}: {why}")


def delete_all(plan: CleanupPlan, client: KubeClient, *, dry_run: bool, system: SystemConfig,
               cluster: str, concurrency: int) -> Counter[Deletion]:
    """Delete (or list, with ``dry_run``) every victim; report each one; count the outcomes."""
    counts: Counter[Deletion] = Counter()
    if dry_run:
        for victim in plan.delete:
            click.echo(f"would delete {victim.namespace}/{victim.name} ({victim.job_id}): {victim.reason}")
            counts[Deletion.DELETED] += 1
        return counts
    for victim, outcome, detail in delete_victims(plan.delete, client, concurrency=concurrency):
        counts[outcome] += 1
        failed = outcome in (Deletion.FAILED, Deletion.NOT_ATTEMPTED)
        message = deletion_line(victim, outcome, detail)
        click.echo(message, err=failed)
        service, _, instance = victim.job_id.partition(".")
        log_event(system, service=service, instance=instance or None, cluster=cluster,
                  level="error" if failed else "event", message=f"cleanup_kubernetes_jobs: {message}")
    return counts


@click.command("cleanup_kubernetes_jobs", cls=PaastaCommand, context_settings=CONTEXT_SETTINGS)
@soa_dir_option
@cluster_option()
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
@click.option("-f", "--force", is_flag=True, help="Delete even when over the kill threshold.")
@click.option("-t", "--kill-threshold", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Refuse when more than this fraction of the managed apps would be deleted.")
@reconciler_write_options
@verbose_option
@click.pass_context
def cleanup_kubernetes_jobs(ctx: click.Context, soa_dir: str, cluster: str | None, dry_run: bool,
                            force: bool, kill_threshold: float, concurrency: int, deadline: float,
                            lock_timeout: float, verbose: int) -> None:
    """Delete managed Deployments whose service.instance is no longer configured for the cluster."""
    system = load_system_config()
    cluster_name = system.require_cluster(cluster)
    soa = SoaDir(soa_dir)
    refuse_empty(soa)  # before any request (and again once the lock is held)
    with cron_run("cleanup_kubernetes_jobs", concurrency=concurrency, deadline=deadline,
                  lock_timeout=lock_timeout, dry_run=dry_run) as client:
        configured = load_configured(soa, cluster_name)
        plan = plan_cleanup(client.list_managed_deployments(), configured,
                            kill_threshold=kill_threshold, force=force)
        report_plan(plan, verbose=verbose)
        if plan.decision is CleanupDecision.REFUSED:
            raise CleanupRefused(plan.message)
        counts = delete_all(plan, client, dry_run=dry_run, system=system, cluster=cluster_name,
                            concurrency=concurrency)
    verb = "would delete" if dry_run else "deleted"
    failed = counts[Deletion.FAILED] + counts[Deletion.NOT_ATTEMPTED]
    extra = "".join(f", {counts[kind]} {text}" for kind, text in (
        (Deletion.CHANGED, "changed since list (kept)"), (Deletion.NOT_ATTEMPTED, "not attempted"),
        (Deletion.GONE, "already gone")) if counts[kind])
    click.echo(f"{'dry run: ' if dry_run else ''}cluster {cluster_name}: {counts[Deletion.DELETED]} {verb}, "
               f"{counts[Deletion.FAILED]} failed{extra}, {plan.staying} kept, "
               f"{plan.managed_apps} managed apps")
    ctx.exit(1 if failed or configured.unreadable_services else 0)


def main() -> None:
    cleanup_kubernetes_jobs.main(prog_name="cleanup_kubernetes_jobs")


if __name__ == "__main__":
    main()
