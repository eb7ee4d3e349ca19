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
4. someone edited it by hand: we compare the fields we own, i.e. every field of the rendered
   manifest's `metadata.labels`, `metadata.annotations` and `spec`, against the live object.
   Fields the API server adds (defaults, status, extra labels) are not ours and are ignored;
   lists we render (containers, env, volumes) must match in length and element by element;
   quantities compare by value, because the API server rewrites `1024Mi` as `1Gi`.
   Re-hashing the live object instead would never match: the server adds defaulted fields.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, Protocol

from paasta_lite.config.naming import job_id, label_value
from paasta_lite.kube import labels

Obj = dict[str, Any]


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


class Action(Enum):
    """Per-instance outcome of `setup_kubernetes_job`; the exit code is derived from these."""

    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    FAILED = "failed"  # invalid config, refused by the API, ...: not in the desired state
    NOT_DEPLOYED = "not deployed"  # no version in deployments.json yet: reported, not a failure

    @property
    def is_failure(self) -> bool:
        return self is Action.FAILED


@dataclass(frozen=True)
class Step:
    """One instance's planned action. ``body`` is what to send (create/update)."""

    job_id: str
    action: Action
    namespace: str = ""
    name: str = ""
    reasons: tuple[str, ...] = ()
    body: Obj | None = None
    live: Obj | None = None

    @property
    def message(self) -> str:
        return "; ".join(self.reasons)


@dataclass(frozen=True)
class SetupPlan:
    steps: tuple[Step, ...]
    #: namespaces a create lands in that hold no managed Deployment yet (create them; 409 = fine)
    namespaces: tuple[str, ...] = ()

    def with_action(self, action: Action) -> list[Step]:
        return [step for step in self.steps if step.action is action]

    @property
    def writes(self) -> list[Step]:
        return [step for step in self.steps if step.action in (Action.CREATE, Action.UPDATE)]


# --------------------------------------------------------------------------- comparing


_QUANTITY = re.compile(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))([KMGTPE]i|[numkMGTPE]|[eE][+-]?\d+)?$")
_SUFFIX = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60,
           "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}


def quantity(value: Any) -> float | None:
    """A Kubernetes quantity (`"500m"`, `"1Gi"`, `2`) as a number; None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    match = _QUANTITY.match(value) if isinstance(value, str) else None
    if match is None:
        return None
    number, suffix = float(match.group(1)), match.group(2) or ""
    if suffix[:1] in ("e", "E"):
        return number * 10.0 ** int(suffix[1:])
    return number * _SUFFIX.get(suffix, 1)


#: Zero values the API server leaves out of what it returns (Go `omitempty`): a field we render as
#: 0, false, "" or [] comes back absent, and must not read as "edited by hand".
_EMPTY_VALUES: tuple[Any, ...] = (0, False, "", [], {})


def _same_leaf(desired: Any, live: Any, path: str) -> bool:
    if desired == live:
        return True
    if live is None and any(desired == empty and type(desired) is type(empty) for empty in _EMPTY_VALUES):
        return True
    if ".resources." in f"{path}.":
        wanted, got = quantity(desired), quantity(live)
        return wanted is not None and got is not None and abs(wanted - got) <= 1e-9 * max(1.0, abs(wanted))
    return False


def first_difference(desired: Any, live: Any, path: str = "") -> str | None:
    """The first path where ``live`` does not hold what ``desired`` says, or None.

    Dict keys absent from ``desired`` are not ours and are ignored; lists must have the same
    length and matching elements.
    """
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return path or "."
        for key in desired:
            found = first_difference(desired[key], live.get(key), f"{path}.{key}" if path else key)
            if found is not None:
                return found
        return None
    if isinstance(desired, list):
        if not isinstance(live, list) or len(live) != len(desired):
            return path
        for index, (want, got) in enumerate(zip(desired, live, strict=True)):
            found = first_difference(want, got, f"{path}[{index}]")
            if found is not None:
                return found
        return None
    return None if _same_leaf(desired, live, path) else path


def owned_fields(desired: Obj) -> Obj:
    """The parts of a rendered Deployment we own and compare (replicas handled separately)."""
    metadata = desired.get("metadata") or {}
    spec = {k: v for k, v in (desired.get("spec") or {}).items() if k != "replicas"}
    owned: Obj = {"metadata": {k: metadata[k] for k in ("labels", "annotations") if k in metadata}}
    owned["spec"] = spec
    return owned


def owned_view(live: Any, desired: Any) -> Any:
    """``live`` cut down to the keys ``desired`` has (for a readable dry-run diff)."""
    if isinstance(desired, dict) and isinstance(live, dict):
        return {key: owned_view(live[key], value) for key, value in desired.items() if key in live}
    if isinstance(desired, list) and isinstance(live, list):
        return [owned_view(got, want) for want, got in zip(desired, live, strict=False)] + live[len(desired):]
    return live


def _label(obj: Obj, key: str) -> str | None:
    value = ((obj.get("metadata") or {}).get("labels") or {}).get(key)
    return None if value is None else str(value)


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
        edited = first_difference(owned_fields(app.deployment), live)
        if edited is not None:
            reasons.append(f"edited by hand ({edited} differs)")
    return reasons


# --------------------------------------------------------------------------- setup


def _key(obj: Obj) -> tuple[str, str]:
    metadata = obj.get("metadata") or {}
    return str(metadata.get("namespace") or ""), str(metadata.get("name") or "")


def update_body(app: DesiredApp, live: Obj) -> Obj:
    """The object to PUT: the rendered one, with the live resourceVersion (one PUT, no GET) and,
    for autoscaled apps, the live replica count."""
    body = dict(app.deployment)
    metadata = dict(body.get("metadata") or {})
    metadata["resourceVersion"] = (live.get("metadata") or {}).get("resourceVersion")
    body["metadata"] = metadata
    live_replicas = (live.get("spec") or {}).get("replicas")
    if app.autoscaled and isinstance(live_replicas, int) and 0 not in (live_replicas, app.replicas):
        body["spec"] = {**body["spec"], "replicas": live_replicas}
    return body


def plan_app(app: DesiredApp, live: Obj | None) -> Step:
    """The step for one rendered app given its live Deployment (same namespace and name)."""
    base = Step(job_id=job_id(app.service, app.instance), action=Action.UNCHANGED, namespace=app.namespace,
                name=str(app.deployment["metadata"]["name"]), live=live)
    if live is None:
        return replace(base, action=Action.CREATE, reasons=("does not exist yet",), body=app.deployment)
    if (live.get("metadata") or {}).get("deletionTimestamp"):
        return replace(base, action=Action.FAILED, reasons=("is being deleted; run again once it is gone",))
    reasons = update_reasons(app, live)
    if not reasons:
        return replace(base, reasons=("up to date",))
    return replace(base, action=Action.UPDATE, reasons=tuple(reasons), body=update_body(app, live))


def plan_setup(desired: Iterable[DesiredApp], live: Iterable[Obj], *,
               failures: Mapping[str, str] | None = None,
               not_deployed: Mapping[str, str] | None = None) -> SetupPlan:
    """Pair rendered apps with live Deployments by (namespace, name) and plan each one.

    ``failures`` / ``not_deployed`` map job ids that could not be rendered to why; they become
    FAILED / NOT_DEPLOYED steps so the report and the exit code cover every instance. Live
    Deployments with no desired app are left alone (that is cleanup's job).
    """
    by_key = {_key(obj): obj for obj in live}
    steps = [plan_app(app, by_key.get((app.namespace, str(app.deployment["metadata"]["name"]))))
             for app in desired]
    steps += [Step(job_id=jid, action=Action.FAILED, reasons=(why,))
              for jid, why in (failures or {}).items()]
    steps += [Step(job_id=jid, action=Action.NOT_DEPLOYED, reasons=(why,))
              for jid, why in (not_deployed or {}).items()]
    occupied = {namespace for namespace, _ in by_key}
    new_namespaces = sorted({s.namespace for s in steps if s.action is Action.CREATE} - occupied)
    return SetupPlan(steps=tuple(sorted(steps, key=lambda s: s.job_id)), namespaces=tuple(new_namespaces))


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
    for obj in managed:
        namespace, name = _key(obj)
        where = f"{namespace}/{name}"
        service, instance = _label(obj, labels.SERVICE), _label(obj, labels.INSTANCE)
        if not service or not instance:
            warnings.append(f"{where}: managed but without service/instance labels; not touched")
            continue
        obj_cluster = _label(obj, labels.CLUSTER)
        if obj_cluster and obj_cluster != label_value(configured.cluster):
            kept.append((where, f"belongs to cluster {obj_cluster}"))
            continue  # not ours: it must not dilute the kill threshold either
        groups.add((service, instance))
        if service in configured.unreadable_services:
            held.append((where, f"service {service} has a configuration error; none of its apps is deleted"))
        else:
            reason = _cleanup_verdict(obj, configured, live_keys)
            if reason is not None:
                victims.append(Victim(job_id(service, instance), namespace, name, reason))
    plan = _decide(tuple(victims), tuple(kept), tuple(warnings), len(groups), kill_threshold, force)
    return replace(plan, held=tuple(held))


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
