"""What the reconcilers share around their plans: what soa-configs ask for, what cleanup keeps, and
one line per step.

`setup_kubernetes_job` (a cron run over every instance, or the named ones) and `paasta_deployd`
(a batch of service.instances at a time) both load and render through `Desired` /
`gather_desired`, plan with `reconcile_plan.plan_setup` and write with
`plan_writer.write_setup_plan`; `cleanup_kubernetes_jobs` and deployd both compare the live apps
with `configured_from_services` through `reconcile_plan.plan_cleanup` and delete with
`plan_writer.delete_victims`. `step_line` / `deletion_line` are how an outcome is told, in the
terminal and in the deploy event log alike. `cron_run` is the client both cron entry points work
through: one run budget for every request, under the cluster's run lock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from paasta_lite.config.naming import job_id, split_job_id
from paasta_lite.config.soa_config import ServiceConfig, SoaDir
from paasta_lite.config.system_config import SystemConfig
from paasta_lite.errors import ConfigError, NotDeployedError, PaastaLiteError
from paasta_lite.kube.client import KubeClient
from paasta_lite.kube.plan_writer import Deletion
from paasta_lite.kube.reconcile_plan import Action, Configured, Step, Victim, configured_from
from paasta_lite.kube.render import RenderedApp, render_service_instances
from paasta_lite.kube.run_budget import RunBudget
from paasta_lite.kube.run_lock import RunLock, identity

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

    def namespace_labels(self) -> dict[str, Obj]:
        """The labels of each app's namespace, for creating the ones that are missing."""
        return {app.namespace: app.namespace_manifest["metadata"].get("labels") or {} for app in self.apps}


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


# --------------------------------------------------------------------------- output

_PAST = {Action.CREATE: "created", Action.UPDATE: "updated", Action.UNCHANGED: "unchanged",
         Action.FAILED: "failed", Action.NOT_DEPLOYED: "not deployed",
         Action.NOT_ATTEMPTED: "not attempted"}
_FUTURE = {Action.CREATE: "would create", Action.UPDATE: "would update", Action.UNCHANGED: "unchanged",
           Action.FAILED: "failed", Action.NOT_DEPLOYED: "not deployed",
           Action.NOT_ATTEMPTED: "not attempted"}


def step_line(step: Step, *, dry_run: bool) -> str:
    verb = (_FUTURE if dry_run else _PAST)[step.action]
    where = f" ({step.namespace}/{step.name})" if step.name else ""
    return f"{verb} {step.job_id}{where}: {step.message}"


def summary(steps: Sequence[Step], cluster: str, *, dry_run: bool) -> str:
    counts = {action: sum(1 for s in steps if s.action is action) for action in Action}
    verbs = _FUTURE if dry_run else _PAST
    shown = [a for a in Action if a is not Action.NOT_ATTEMPTED or counts[a]]  # only when it happened
    parts = ", ".join(f"{counts[a]} {verbs[a]}" for a in shown)
    return f"{'dry run: ' if dry_run else ''}cluster {cluster}: {parts}"


def configured_from_services(cluster: str, services: Mapping[str, ServiceConfig],
                             unreadable_services: Collection[str] = ()) -> Configured:
    """What cleanup keeps: every instance (valid or not) of ``services`` on ``cluster``, with its
    namespace when known; ``unreadable_services`` (any file-level error) keep all their apps."""
    triples: list[tuple[str, str, str | None]] = []
    for name, service in services.items():
        valid = service.instances.get(cluster, {})
        triples += [(name, instance, config.namespace) for instance, config in valid.items()]
        triples += [(name, instance, None) for instance in service.invalid_instances.get(cluster, {})]
    return configured_from(cluster, triples, unreadable_services=unreadable_services)


def deletion_line(victim: Victim, outcome: Deletion, detail: str) -> str:
    """One line for a delete's outcome (`plan_writer.delete_victims`)."""
    where = f"{victim.namespace}/{victim.name} ({victim.job_id})"
    return {Deletion.DELETED: f"deleted {where}: {victim.reason}",
            Deletion.GONE: f"already gone {where}",
            Deletion.CHANGED: f"kept {where}: changed since list ({detail})",
            Deletion.FAILED: f"failed to delete {where}: {detail}",
            Deletion.NOT_ATTEMPTED: f"not attempted: delete {where}: {detail}"}[outcome]


@contextmanager
def cron_run(entry_point: str, *, concurrency: int, deadline: float, lock_timeout: float,
             dry_run: bool) -> Iterator[KubeClient]:
    """A client for one cron run of ``entry_point``: every request shares one `RunBudget` (deadline,
    Retry-After, circuit breaker), and the run holds the cluster's Lease so two runs never fight.
    A dry run writes nothing, so it takes no lock. Losing the Lease halts the budget: no write
    goes out after another holder may have started."""
    budget = RunBudget(deadline=deadline)
    with KubeClient(pool_size=concurrency + 2) as base:
        if dry_run:
            yield base.governed(budget)
            return
        with RunLock(base, holder=identity(entry_point), on_lost=budget.halt).held(lock_timeout) as lock:
            budget.guard_with(lambda: None if lock.holding else "the run lock is no longer held for sure")
            yield base.governed(budget)
