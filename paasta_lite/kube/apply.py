"""Applying soa-configs to the cluster: gather what is desired, carry out a setup plan, describe steps.

The one code path behind `setup_kubernetes_job` (a cron run over every instance, or the named
ones) and `paasta_deployd` (a batch of service.instances at a time): load and render
(`gather_desired` / `Desired.add_service`), pair with the live Deployments
(`reconcile_plan.plan_setup`, pure), then `apply_plan` carries out only what the plan says:
create missing namespaces, create, replace. `configured_from_services` is what cleanup compares
the live apps against. Moved here unchanged from the entry points so both callers share it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from paasta_lite.config.naming import job_id, split_job_id
from paasta_lite.config.soa_config import ServiceConfig, SoaDir
from paasta_lite.config.system_config import SystemConfig
from paasta_lite.errors import ConfigError, NotDeployedError, PaastaLiteError
from paasta_lite.kube import labels
from paasta_lite.kube.client import KubeClient
from paasta_lite.kube.errors import AlreadyExists, KubeError
from paasta_lite.kube.reconcile_plan import Action, Configured, SetupPlan, Step, configured_from
from paasta_lite.kube.render import RenderedApp, render_service_instances

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



# --------------------------------------------------------------------------- describing steps

_PAST = {Action.CREATE: "created", Action.UPDATE: "updated", Action.UNCHANGED: "unchanged",
         Action.FAILED: "failed", Action.NOT_DEPLOYED: "not deployed"}
_FUTURE = {Action.CREATE: "would create", Action.UPDATE: "would update", Action.UNCHANGED: "unchanged",
           Action.FAILED: "failed", Action.NOT_DEPLOYED: "not deployed"}


def step_line(step: Step, *, dry_run: bool) -> str:
    verb = (_FUTURE if dry_run else _PAST)[step.action]
    where = f" ({step.namespace}/{step.name})" if step.name else ""
    return f"{verb} {step.job_id}{where}: {step.message}"


def summary(steps: Sequence[Step], cluster: str, *, dry_run: bool) -> str:
    counts = {action: sum(1 for s in steps if s.action is action) for action in Action}
    verbs = _FUTURE if dry_run else _PAST
    parts = ", ".join(f"{counts[a]} {verbs[a]}" for a in Action)
    return f"{'dry run: ' if dry_run else ''}cluster {cluster}: {parts}"


def configured_from_services(cluster: str, services: Mapping[str, ServiceConfig],
                             unreadable_services: Collection[str] = ()) -> Configured:
    """What cleanup keeps: every instance (valid or not) of ``services`` on ``cluster``, with its
    namespace when known; services that failed to load keep all their apps."""
    triples: list[tuple[str, str, str | None]] = []
    for name, service in services.items():
        valid = service.instances.get(cluster, {})
        triples += [(name, instance, config.namespace) for instance, config in valid.items()]
        triples += [(name, instance, None) for instance in service.invalid_instances.get(cluster, {})]
    return configured_from(cluster, triples, unreadable_services=unreadable_services)
