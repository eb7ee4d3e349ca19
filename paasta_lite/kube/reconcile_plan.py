"""Pure planning for the two reconcilers: desired apps + live Deployments -> what to do.

Where it sits: `setup_kubernetes_job` renders every instance (`render`), lists the managed
Deployments once (`kube_client`), and hands both to `plan_setup`; `cleanup_kubernetes_jobs`
hands the configured instances and the same list to `plan_cleanup`. Both entry points then
apply the plan and nothing else (STYLE practices 1, 2, 4, 5). Nothing here does I/O.

When is a live Deployment "different"? (`update_reasons`)
1. its config-hash label differs from the rendered one (any change to what we render, including
   `force_bounce`): a string comparison;
2. its git-sha label differs (also covered by 1; reported because it is the reason people read);
3. `spec.replicas` differs — only when the app is not autoscaled: for autoscaled apps the live
   count is the autoscaler's, and updates keep it;
4. someone edited it by hand: we compare the fields we own (`compare.hand_edits`).
Its companions (HPA, PDB) are judged by `companions.plan_companions`: from the record annotation
on the Deployment alone when it matches what is rendered, else from reading them (`Step.reads`).

What is written (`Write`): server-side applies of the rendered objects, Deployment first, then
its companions (with an ownerReference to it, so a Deployment being created is re-planned from
its answer, which has the uid), deletes of companions no longer wanted, and last the record.
Field manager `managed_fields.FIELD_MANAGER`, forced (we own every field we send). For
autoscaled apps `spec.replicas` is left out once the app exists (the autoscaler owns it), after
handing it over if we still own it alone (`managed_fields`); objects last written before
server-side apply are upgraded first. Those two preparatory writes carry the live
resourceVersion and are followed by a re-plan from their answer (`Write.replan`): a body is
never computed from data older than the write before it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Protocol

from paasta_lite.config.naming import job_id, label_value
from paasta_lite.kube import labels
from paasta_lite.kube.companions import KINDS as COMPANION_KINDS
from paasta_lite.kube.companions import CompanionPlan, plan_companions
from paasta_lite.kube.compare import hand_edits
from paasta_lite.kube.compare import label_of as _label
from paasta_lite.kube.managed_fields import (
    COMPANIONS_MANAGER,
    FIELD_MANAGER,
    HANDOVER_MANAGER,
    owners,
    upgrade_patch,
)

Obj = dict[str, Any]
#: (kind, namespace, name): how live and desired objects are paired
ObjKey = tuple[str, str, str]


class DesiredApp(Protocol):
    """What planning needs from a rendered app (`render.RenderedApp` satisfies it)."""

    @property
    def service(self) -> str: ...
    @property
    def instance(self) -> str: ...
    @property
    def namespace(self) -> str: ...
    @property
    def deployment(self) -> Obj: ...
    @property
    def config_hash(self) -> str: ...
    @property
    def git_sha(self) -> str: ...
    @property
    def replicas(self) -> int: ...
    @property
    def autoscaled(self) -> bool: ...
    @property
    def companions(self) -> Mapping[str, Obj | None]:
        """Companion kind -> its rendered manifest (hash-labelled), None: the app must have none."""
        ...


class Action(Enum):
    """Per-instance outcome of `setup_kubernetes_job`; the exit code is derived from these."""

    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    FAILED = "failed"  # invalid config, refused by the API, ...: not in the desired state
    NOT_DEPLOYED = "not deployed"  # no version in deployments.json yet: reported, not a failure
    NOT_ATTEMPTED = "not attempted"  # the run stopped writing first (deadline, circuit breaker, lock)

    @property
    def is_failure(self) -> bool:
        return self in (Action.FAILED, Action.NOT_ATTEMPTED)


class Purpose(Enum):
    """What one `Write` is for."""

    APPLY = "apply"  # server-side apply of a rendered object as FIELD_MANAGER, forced
    HANDOVER = "handover"  # apply live spec.replicas as HANDOVER_MANAGER (rv precondition, no force)
    UPGRADE = "upgrade"  # merge patch: our pre-apply ownership -> FIELD_MANAGER (rv precondition)
    DELETE = "delete"  # a companion no longer wanted; body: {"uid", "resourceVersion"} preconditions
    RECORD = "record"  # apply the Deployment's companions record as COMPANIONS_MANAGER, forced


@dataclass(frozen=True)
class Write:
    """One request of a step. ``create``: the object was not in the live lists."""

    kind: str
    namespace: str
    name: str
    body: Obj
    purpose: Purpose = Purpose.APPLY
    create: bool = False
    #: plan again after this write even though it is not preparatory (a Deployment created
    #: before its companions: their ownerReferences need the uid in its answer)
    then_replan: bool = False

    @property
    def key(self) -> ObjKey:
        return self.kind, self.namespace, self.name

    @property
    def field_manager(self) -> str:
        return {Purpose.HANDOVER: HANDOVER_MANAGER, Purpose.RECORD: COMPANIONS_MANAGER}.get(
            self.purpose, FIELD_MANAGER)

    @property
    def force(self) -> bool:
        return self.purpose in (Purpose.APPLY, Purpose.RECORD)

    @property
    def replan(self) -> bool:
        """Plan again from this write's answer before writing anything else for the app."""
        return self.purpose in (Purpose.HANDOVER, Purpose.UPGRADE) or self.then_replan


@dataclass(frozen=True)
class Step:
    """One instance's planned action; ``writes`` are sent in order (create/update)."""

    job_id: str
    action: Action
    namespace: str = ""
    name: str = ""
    reasons: tuple[str, ...] = ()
    writes: tuple[Write, ...] = ()
    #: objects to read (GET) before planning the app again: companions whose record differs
    reads: tuple[ObjKey, ...] = ()
    live: Obj | None = None
    #: what our apply of the Deployment will hold (also when a preparatory write comes first)
    body: Obj | None = None

    @property
    def message(self) -> str:
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class SetupPlan:
    steps: tuple[Step, ...]
    #: namespaces a create lands in that hold no managed Deployment yet (create them; 409 = fine)
    namespaces: tuple[str, ...] = ()
    #: the live objects the plan was made from, by `object_key` (for re-planning one app)
    live: Mapping[ObjKey, Obj] = field(default_factory=dict)
    #: kinds besides Deployments whose managed objects were all listed (`--full`)
    listed_kinds: frozenset[str] = frozenset()

    def with_action(self, action: Action) -> list[Step]:
        return [step for step in self.steps if step.action is action]

    @property
    def writes(self) -> list[Step]:
        return [step for step in self.steps if step.action in (Action.CREATE, Action.UPDATE)]


# --------------------------------------------------------------------------- comparing


def update_reasons(app: DesiredApp, live: Obj) -> list[str]:
    """Why ``live`` must be replaced by ``app`` (empty: it is up to date). See module docstring."""
    reasons = []
    live_hash, live_sha = _label(live, labels.CONFIG_SHA), _label(live, labels.GIT_SHA)
    if live_hash != app.config_hash:
        reasons.append(f"config changed ({live_hash} -> {app.config_hash})")
    desired_sha = _label(app.deployment, labels.GIT_SHA)
    if live_sha != desired_sha:
        reasons.append(f"git sha {(live_sha or 'none')[:8]} -> {(desired_sha or 'none')[:8]}")
    live_replicas = (live.get("spec") or {}).get("replicas")
    if live_replicas != app.replicas and (not app.autoscaled or 0 in (live_replicas, app.replicas)):
        # Autoscaled apps keep their live count, except to stop (0) and to start again from 0.
        reasons.append(f"replicas {live_replicas} -> {app.replicas}")
    if not reasons:
        reasons += hand_edits(app.deployment, live)
    return reasons


# --------------------------------------------------------------------------- setup


def _key(obj: Obj) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def object_key(obj: Obj, kind: str | None = None) -> ObjKey:
    """(kind, namespace, name) of a manifest, or of a list item (lists leave ``kind`` out)."""
    namespace, name = _key(obj)
    return str(kind or obj.get("kind") or ""), namespace, name


def _resource_version(live: Obj) -> Any:
    return (live.get("metadata") or {}).get("resourceVersion")


def keeps_replicas(app: DesiredApp, live: Obj | None) -> bool:
    """Whether we send `spec.replicas`: always on create and for fixed-size apps; for autoscaled
    apps only to stop (0) and to start again from 0 — otherwise the autoscaler owns it."""
    if live is None or not app.autoscaled:
        return True
    return 0 in ((live.get("spec") or {}).get("replicas"), app.replicas)


def deployment_writes(app: DesiredApp, live: Obj | None) -> tuple[Write, ...]:
    """The writes that bring the app's Deployment to ``app`` from ``live`` (None: missing).

    A preparatory write (upgrade, hand-over) comes alone: the plan is made again from its answer.
    """
    deployment = app.deployment
    namespace, name = _key(deployment)
    write = Write("Deployment", namespace, name, deployment, create=live is None)
    if live is None:
        return (write,)
    upgrade = upgrade_patch(live)
    if upgrade is not None:
        return (replace(write, body=upgrade, purpose=Purpose.UPGRADE),)
    if keeps_replicas(app, live):
        return (write,)
    if owners(live, ("spec", "replicas")) == {FIELD_MANAGER}:
        handover = {"apiVersion": deployment.get("apiVersion"), "kind": "Deployment",
                    "metadata": {"name": name, "namespace": namespace,
                                 "resourceVersion": _resource_version(live)},
                    "spec": {"replicas": (live.get("spec") or {}).get("replicas")}}
        return (replace(write, body=handover, purpose=Purpose.HANDOVER),)
    return (replace(write, body=apply_body(app, live)),)


def apply_body(app: DesiredApp, live: Obj | None) -> Obj:
    """The Deployment as we apply it: the rendered one, without `spec.replicas` when the
    autoscaler owns it (`keeps_replicas`)."""
    deployment = app.deployment
    if keeps_replicas(app, live):
        return deployment
    return {**deployment, "spec": {k: v for k, v in deployment["spec"].items() if k != "replicas"}}


def app_keys(app: DesiredApp) -> tuple[ObjKey, ...]:
    """Every object key the app may have: its Deployment and one per companion kind (wanted or not)."""
    kind, namespace, name = object_key(app.deployment)
    return ((kind, namespace, name), *((other, namespace, name) for other in COMPANION_KINDS
                                       if other in app.companions))


def plan_app(app: DesiredApp, live: Mapping[ObjKey, Obj], *, known: Collection[ObjKey] = (),
             listed_kinds: Collection[str] = ()) -> Step:
    """The step for one rendered app given the live objects (by `object_key`) it may have.

    ``known``: keys whose state ``live`` reflects (read, or in a namespace created this run);
    ``listed_kinds``: companion kinds whose managed objects were all listed (`--full`).
    """
    deployment_key = object_key(app.deployment)
    deployment = live.get(deployment_key)
    base = Step(job_id=job_id(app.service, app.instance), action=Action.UNCHANGED, namespace=app.namespace,
                name=deployment_key[2], live=deployment)
    if deployment is not None and (deployment.get("metadata") or {}).get("deletionTimestamp"):
        return replace(base, action=Action.FAILED, reasons=("is being deleted; run again once it is gone",))
    owner = _label(deployment, labels.CLUSTER) if deployment is not None else None
    ours = _label(app.deployment, labels.CLUSTER)
    if owner and ours and owner != ours:  # names carry no cluster: two clusters' configs can meet
        return replace(base, action=Action.FAILED, reasons=(
            f"belongs to cluster {owner}: not touched (cluster {owner} configures the same "
            "service.instance on this Kubernetes cluster)",))
    if deployment is None:  # its companions follow once its answer gives them an owner uid
        (write,) = deployment_writes(app, None)
        return replace(base, action=Action.CREATE, reasons=("does not exist yet",), body=write.body,
                       writes=(replace(write, then_replan=bool(app.companions)),))
    reasons = update_reasons(app, deployment)
    writes = deployment_writes(app, deployment) if reasons else ()
    if writes:  # `body`: what the Deployment will hold (for --dry-run's diff)
        base = replace(base, body=apply_body(app, deployment))
    if writes and writes[-1].replan:  # a preparatory write: the rest waits for the re-plan
        return replace(base, action=Action.UPDATE, reasons=tuple(reasons), writes=writes)
    companions = plan_companions(app.companions, deployment, live, known=known, listed_kinds=listed_kinds)
    if companions.blocked:
        return replace(base, action=Action.FAILED, reasons=(companions.blocked,))
    if companions.reads:
        return replace(base, action=Action.UPDATE, reasons=(*reasons, *companions.reasons),
                       reads=companions.reads)
    writes = (*writes, *companion_writes(companions))
    if not writes:
        return replace(base, reasons=("up to date",))
    return replace(base, action=Action.UPDATE, reasons=(*reasons, *companions.reasons), writes=writes)


def companion_writes(plan: CompanionPlan) -> tuple[Write, ...]:
    """The companion changes as writes, then the record (the planner decided; this only spells it)."""
    writes = []
    for change in plan.changes:
        if change.body is not None:
            writes.append(Write(change.kind, change.namespace, change.name, change.body,
                                create=change.live is None))
        else:
            metadata = (change.live or {}).get("metadata") or {}
            preconditions = {"uid": metadata.get("uid"), "resourceVersion": metadata.get("resourceVersion")}
            writes.append(Write(change.kind, change.namespace, change.name, preconditions,
                                purpose=Purpose.DELETE))
    if plan.record is not None:
        metadata = plan.record["metadata"]
        writes.append(Write("Deployment", metadata["namespace"], metadata["name"], plan.record,
                            purpose=Purpose.RECORD))
    return tuple(writes)


def plan_setup(desired: Iterable[DesiredApp], live: Iterable[Obj], *,
               live_others: Mapping[str, Iterable[Obj]] | None = None,
               failures: Mapping[str, str] | None = None,
               not_deployed: Mapping[str, str] | None = None) -> SetupPlan:
    """Pair rendered apps with live objects by (kind, namespace, name) and plan each one.

    ``live`` are the managed Deployments, ``live_others`` the managed objects of other kinds
    the apps render (kind -> list items; a kind listed here is compared for every app, whatever
    the companions record says: `--full`).

    ``failures`` / ``not_deployed`` map job ids that could not be rendered to why; they become
    FAILED / NOT_DEPLOYED steps so the report and the exit code cover every instance. Live
    Deployments with no desired app are left alone (that is cleanup's job).
    """
    by_key = {object_key(obj, "Deployment"): obj for obj in live}
    for kind, items in (live_others or {}).items():
        by_key.update({object_key(obj, kind): obj for obj in items})
    listed = frozenset(live_others or ())
    steps = [plan_app(app, by_key, listed_kinds=listed) for app in desired]
    steps += [Step(job_id=jid, action=Action.FAILED, reasons=(why,))
              for jid, why in (failures or {}).items()]
    steps += [Step(job_id=jid, action=Action.NOT_DEPLOYED, reasons=(why,))
              for jid, why in (not_deployed or {}).items()]
    occupied = {namespace for _, namespace, _ in by_key}
    new_namespaces = sorted({s.namespace for s in steps if s.action is Action.CREATE} - occupied)
    return SetupPlan(steps=tuple(sorted(steps, key=lambda s: s.job_id)), namespaces=tuple(new_namespaces),
                     live=by_key, listed_kinds=listed)


# --------------------------------------------------------------------------- cleanup


class CleanupDecision(Enum):
    NOTHING_TO_DO = "nothing to do"
    PROCEED = "proceed"
    REFUSED = "refused"  # over the kill threshold without --force


@dataclass(frozen=True)
class Victim:
    job_id: str
    namespace: str
    name: str
    reason: str
    #: from the list: the delete is refused (409) if the object changed or was replaced since
    uid: str = ""
    resource_version: str = ""


@dataclass(frozen=True)
class CleanupPlan:
    decision: CleanupDecision
    delete: tuple[Victim, ...]
    kept: tuple[tuple[str, str], ...] = ()  # (namespace/name, why) for every skipped delete
    managed_apps: int = 0  # distinct (service, instance) among live managed Deployments
    message: str = ""
    warnings: tuple[str, ...] = field(default_factory=tuple)
    #: (namespace/name, why) of apps kept because their service's configuration is in doubt;
    #: unlike `kept` (e.g. another cluster's apps), always worth telling
    held: tuple[tuple[str, str], ...] = ()
    # Managed Deployments of this cluster left in place (still configured, or held): the
    # summary's "kept", so deleted + failed + kept adds up to this cluster's managed Deployments.
    staying: int = 0


@dataclass(frozen=True)
class Configured:
    """What the soa dir says for one cluster: the instances to keep and where they live."""

    cluster: str
    instances: frozenset[tuple[str, str]]  # (service, instance), valid or not
    namespaces: Mapping[tuple[str, str], str]  # (service, instance) -> configured namespace
    unreadable_services: frozenset[str] = frozenset()  # any file-level error: keep all their apps


def _ready(obj: Obj) -> bool:
    wanted = (obj.get("spec") or {}).get("replicas", 1)
    return int((obj.get("status") or {}).get("readyReplicas") or 0) >= int(wanted or 0)


def foreign_cluster(obj: Obj, cluster: str) -> str | None:
    """The cluster ``obj`` is labelled for when that is not ``cluster`` (not ours to touch), else None."""
    obj_cluster = _label(obj, labels.CLUSTER)
    return obj_cluster if obj_cluster and obj_cluster != label_value(cluster) else None


def _cleanup_verdict(obj: Obj, configured: Configured,
                     live_keys: Mapping[tuple[str, str], Obj]) -> str | None:
    """Why ``obj`` should go, or None to keep it."""
    service, instance = _label(obj, labels.SERVICE) or "", _label(obj, labels.INSTANCE) or ""
    if (service, instance) not in configured.instances:
        return f"{job_id(service, instance)} is no longer configured for cluster {configured.cluster}"
    wanted_ns = configured.namespaces.get((service, instance))
    namespace, name = _key(obj)
    if wanted_ns and wanted_ns != namespace:
        replacement = live_keys.get((wanted_ns, name))
        if replacement is not None and _ready(replacement):
            return f"moved to namespace {wanted_ns}, where it is ready"
    return None


def plan_cleanup(live: Iterable[Obj], configured: Configured, *, kill_threshold: float,
                 force: bool) -> CleanupPlan:
    """Decide which managed Deployments to delete, guarded by the kill threshold.

    Never deletes: objects without the managed label or without service/instance labels,
    objects labelled for another cluster, apps of services whose configuration has an error
    (held: what they configure is unknown, not gone), or an app moved to another namespace
    before the new one is ready. Refuses (REFUSED) when the fraction of managed apps to delete
    exceeds ``kill_threshold``, unless ``force``.
    """
    kept, held, warnings, victims = [], [], [], []
    managed = [obj for obj in live if _label(obj, labels.MANAGED) == "true"]
    live_keys = {_key(obj): obj for obj in managed}
    groups = set()
    ours = 0  # managed Deployments of this cluster with service/instance labels
    for obj in managed:
        namespace, name = _key(obj)
        where = f"{namespace}/{name}"
        service, instance = _label(obj, labels.SERVICE), _label(obj, labels.INSTANCE)
        if not service or not instance:
            warnings.append(f"{where}: managed but without service/instance labels; not touched")
            continue
        obj_cluster = foreign_cluster(obj, configured.cluster)
        if obj_cluster:
            kept.append((where, f"belongs to cluster {obj_cluster}"))
            continue  # not ours: it must not dilute the kill threshold either
        groups.add((service, instance))
        ours += 1
        if service in configured.unreadable_services:
            held.append((where, f"service {service} has a configuration error; none of its apps is deleted"))
        else:
            reason = _cleanup_verdict(obj, configured, live_keys)
            if reason is not None:
                metadata = obj.get("metadata") or {}
                victims.append(Victim(job_id(service, instance), namespace, name, reason,
                                      uid=str(metadata.get("uid") or ""),
                                      resource_version=str(metadata.get("resourceVersion") or "")))
    plan = _decide(tuple(victims), tuple(kept), tuple(warnings), len(groups), kill_threshold, force)
    return replace(plan, held=tuple(held), staying=ours - len(victims))


def _decide(victims: tuple[Victim, ...], kept: tuple[tuple[str, str], ...], warnings: tuple[str, ...],
            managed_apps: int, kill_threshold: float, force: bool) -> CleanupPlan:
    doomed_apps = len({victim.job_id for victim in victims})
    fraction = doomed_apps / managed_apps if managed_apps else 0.0
    if not victims:
        return CleanupPlan(CleanupDecision.NOTHING_TO_DO, (), kept, managed_apps, "nothing to delete",
                           warnings)
    summary = f"{doomed_apps} of {managed_apps} managed apps ({fraction:.0%})"
    if fraction > kill_threshold and not force:
        message = (f"refusing to delete {summary}: more than the kill threshold of {kill_threshold:.0%}. "
                   "Check the soa-configs directory and the cluster name; run again with --force if "
                   "this is really intended")
        return CleanupPlan(CleanupDecision.REFUSED, victims, kept, managed_apps, message, warnings)
    return CleanupPlan(CleanupDecision.PROCEED, victims, kept, managed_apps, f"deleting {summary}", warnings)


def configured_from(cluster: str, instances: Collection[tuple[str, str, str | None]],
                    unreadable_services: Collection[str] = ()) -> Configured:
    """Build `Configured` from (service, instance, namespace or None when unknown) triples."""
    return Configured(
        cluster=cluster,
        instances=frozenset((service, instance) for service, instance, _ in instances),
        namespaces={(service, instance): ns for service, instance, ns in instances if ns},
        unreadable_services=frozenset(unreadable_services),
    )
