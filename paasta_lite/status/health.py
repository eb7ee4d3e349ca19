"""The one health model: what is running for one service.instance, and is it what we want.

`assess(observed, desired)` is pure. It takes the Deployment, its ReplicaSets, pods and recent
events exactly as the Kubernetes API returns them (plain camelCase dicts) plus what we want (the
desired version, replicas, desired_state, bounce_margin_factor) and returns an `InstanceHealth`.
`paasta status`, the API's `status` and `bounce_status` endpoints and `wait-for-deployment` all
read this one result, so they can never disagree.

States (`State`), checked in this order:

- ``NotDeployed`` — no version marked for deployment, or no Deployment in the cluster yet.
- ``Stopped``     — we want 0 replicas (desired_state ``stop`` or ``instances: 0``) and none remain.
- ``Stopping``    — we want 0 replicas and some pods remain.
- ``Pending``     — the cluster has not caught up: the Deployment's template is not the desired
  version (the reconciler has not applied it), or the controller has not observed the latest
  spec yet (``status.observedGeneration < metadata.generation``).
- ``Degraded``    — something will not fix itself: CrashLoopBackOff, ImagePullBackOff, OOMKilled,
  Unschedulable, ProgressDeadlineExceeded, ReplicaFailure... (never while ``Running``).
- ``Bouncing``    — more than one version has replicas.
- ``Starting``    — only the desired version, no replica ready yet.
- ``Scaling``     — only the desired version, some but fewer replicas ready than wanted.
- ``Running``     — only the desired version, at least as many ready replicas as wanted.

A stopped instance reads ``Stopped``, never "Critical (0/N)": when we want 0 replicas, 0 is
what we expect. ``healthy`` means serving what we asked for (intentionally stopped counts);
``done`` is the wait-for-deployment rule (see `_deploy_done`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from paasta_lite.kube import labels
from paasta_lite.timestamps import parse_iso

JsonDict = Mapping[str, Any]


class State(str, Enum):
    NOT_DEPLOYED = "NotDeployed"
    STOPPED = "Stopped"
    STOPPING = "Stopping"
    PENDING = "Pending"
    DEGRADED = "Degraded"
    BOUNCING = "Bouncing"
    STARTING = "Starting"
    SCALING = "Scaling"
    RUNNING = "Running"


#: Pod and controller reasons that will not resolve by waiting, most useful first.
FAILURE_REASONS = (
    "OOMKilled",
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "Unschedulable",
    "ReplicaFailure",
    "ProgressDeadlineExceeded",
)
#: Reasons of a pod that is on its way (shown, but not a failure), most useful first.
TRANSIENT_REASONS = ("NotReady", "ContainerCreating", "PodInitializing", "Pending", "Terminating")


@dataclass(frozen=True)
class Version:
    """What identifies a version: git sha (+ image version) and the rendered config hash."""

    git_sha: str | None
    config_sha: str | None = None
    image_version: str | None = None

    def matches(self, other: Version) -> bool:
        """Same code; same config too when both sides know their config hash."""
        if self.git_sha != other.git_sha or self.image_version != other.image_version:
            return False
        return self.config_sha is None or other.config_sha is None or self.config_sha == other.config_sha

    def short(self) -> str:
        text = (self.git_sha or "?")[:8]
        if self.image_version:
            text += f"+{self.image_version}"
        return text

    @classmethod
    def from_labels(cls, object_labels: JsonDict | None) -> Version:
        found = object_labels or {}
        return cls(found.get(labels.GIT_SHA), found.get(labels.CONFIG_SHA), found.get(labels.IMAGE_VERSION))


@dataclass(frozen=True)
class Desired:
    """What we want for the instance (from soa-configs, deployments.json and the renderer)."""

    version: Version | None
    replicas: int
    desired_state: str = "start"
    bounce_margin_factor: float = 1.0

    @property
    def expected(self) -> int:
        return 0 if self.desired_state == "stop" else self.replicas


@dataclass(frozen=True)
class Observed:
    """The raw objects read from the cluster for one instance (already filtered by its labels)."""

    deployment: JsonDict | None
    replicasets: Sequence[JsonDict] = ()
    pods: Sequence[JsonDict] = ()
    events: Sequence[JsonDict] = ()


@dataclass(frozen=True)
class RunningVersion:
    version: Version
    replicas: int
    ready: int
    created: float | None
    target: bool
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class PodStatus:
    name: str
    version: Version
    node: str | None
    created: float | None
    phase: str
    ready: bool
    restarts: int
    reason: str | None
    message: str
    deleting: bool
    containers: tuple[str, ...] = ()


@dataclass(frozen=True)
class EventInfo:
    kind: str
    name: str
    type: str
    reason: str
    message: str
    count: int
    last_seen: float | None


@dataclass(frozen=True)
class InstanceHealth:
    """Everything status, the API and wait-for-deployment need to know about one instance."""

    state: State
    healthy: bool
    ready: int
    expected: int
    reason: str | None
    message: str
    done: bool
    done_message: str
    desired_version: Version | None
    desired_state: str
    bounce_margin_factor: float
    app_name: str | None = None
    namespace: str | None = None
    versions: tuple[RunningVersion, ...] = ()
    pods: tuple[PodStatus, ...] = ()
    events: tuple[EventInfo, ...] = field(default=())

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["state"] = self.state.value
        return data

    @classmethod
    def from_dict(cls, data: JsonDict) -> InstanceHealth:
        """Inverse of `to_dict` (the CLI rebuilds the API's answer with it)."""
        values = dict(data)
        values["state"] = State(values["state"])
        desired = values.get("desired_version")
        values["desired_version"] = Version(**desired) if desired else None
        values["versions"] = tuple(
            RunningVersion(**{**v, "version": Version(**v["version"]), "names": tuple(v.get("names", ()))})
            for v in values.get("versions", ())
        )
        values["pods"] = tuple(
            PodStatus(**{**p, "version": Version(**p["version"]), "containers": tuple(p["containers"])})
            for p in values.get("pods", ())
        )
        values["events"] = tuple(EventInfo(**e) for e in values.get("events", ()))
        return cls(**values)


def parse_time(value: str | None) -> float | None:
    """RFC 3339 timestamp from the API -> epoch seconds (None stays None)."""
    if not value:
        return None
    return parse_iso(value).timestamp()


def assess(observed: Observed, desired: Desired) -> InstanceHealth:
    """Compute the health of one instance from its cluster objects and what we want."""
    target = desired.version
    versions = _running_versions(observed, target)
    pods = tuple(_pod_status(pod) for pod in observed.pods if _is_live_pod(pod))
    ready = sum(v.ready for v in versions)
    state, reason, message = _decide(observed, desired, versions, pods)
    expected = desired.expected
    healthy = state in (State.RUNNING, State.STOPPED, State.STOPPING) or (
        state in (State.BOUNCING, State.PENDING, State.SCALING) and ready >= expected
    )
    done, done_message = _deploy_done(desired, state, versions, message)
    metadata = (observed.deployment or {}).get("metadata", {})
    return InstanceHealth(
        state=state,
        healthy=healthy,
        ready=ready,
        expected=expected,
        reason=reason,
        message=message,
        done=done,
        done_message=done_message,
        desired_version=target,
        desired_state=desired.desired_state,
        bounce_margin_factor=desired.bounce_margin_factor,
        app_name=metadata.get("name"),
        namespace=metadata.get("namespace"),
        versions=versions,
        pods=pods,
        events=_events(observed.events),
    )


def _decide(
    observed: Observed, desired: Desired, versions: Sequence[RunningVersion], pods: Sequence[PodStatus]
) -> tuple[State, str | None, str]:
    """The ordered state rules from the module docstring -> (state, reason, message)."""
    expected = desired.expected
    if expected == 0:
        live = sum(v.replicas for v in versions) + sum(1 for p in pods)
        if live:
            return State.STOPPING, "Stopping", f"{live} pod(s) still shutting down"
        what = "desired_state is stop" if desired.desired_state == "stop" else "0 instances configured"
        return State.STOPPED, None, f"stopped ({what})"
    if desired.version is None:
        return State.NOT_DEPLOYED, "NotMarked", "no version has been marked for deployment yet"
    deployment = observed.deployment
    if deployment is None:
        return State.NOT_DEPLOYED, "NoDeployment", "no Deployment in the cluster yet (reconciler not run?)"
    template = deployment.get("spec", {}).get("template", {})
    applied = Version.from_labels(template.get("metadata", {}).get("labels"))
    if not applied.matches(desired.version):
        message = f"the cluster is at {applied.short()}; {desired.version.short()} has not been applied yet"
        if applied.git_sha == desired.version.git_sha:
            message = "the configuration in the cluster differs from soa-configs; not applied yet"
        return State.PENDING, "NotApplied", message
    ready = sum(v.ready for v in versions)
    others = [v for v in versions if not v.target]
    if others:
        old = sum(v.replicas for v in others)
        lifecycle = State.BOUNCING
        message = f"bouncing to {desired.version.short()}: {old} old replica(s) left"
    elif ready == 0:
        lifecycle, message = State.STARTING, f"starting: 0/{expected} ready"
    elif ready < expected:
        lifecycle, message = State.SCALING, f"scaling: {ready}/{expected} ready"
    else:
        lifecycle, message = State.RUNNING, f"running {desired.version.short()}: {ready}/{expected} ready"
    failure = _worst(_failures(deployment, pods), FAILURE_REASONS)
    if lifecycle is not State.RUNNING and failure is not None:
        return State.DEGRADED, failure[0], f"{message}; {failure[1]}"
    metadata, status = deployment.get("metadata", {}), deployment.get("status", {})
    generation, seen = metadata.get("generation"), status.get("observedGeneration")
    if generation is not None and (seen is None or seen < generation):
        note = f"generation {generation} not yet observed by the controller (observed {seen})"
        return State.PENDING, "NotObservedYet", note
    if lifecycle is State.RUNNING:
        return lifecycle, None, message
    soft = _worst([(p.reason, f"pod {p.name}: {p.message}") for p in pods if p.reason], TRANSIENT_REASONS)
    return lifecycle, (soft[0] if soft else "WaitingForReady"), message + (f"; {soft[1]}" if soft else "")


def _worst(found: Iterable[tuple[str | None, str]], order: Sequence[str]) -> tuple[str, str] | None:
    """The (reason, message) whose reason comes first in `order`; None if none is listed."""
    ranked = [(order.index(r), r, m) for r, m in found if r is not None and r in order]
    if not ranked:
        return None
    _, reason, message = min(ranked, key=lambda item: item[0])
    return reason, message


def _failures(deployment: JsonDict, pods: Sequence[PodStatus]) -> list[tuple[str | None, str]]:
    found: list[tuple[str | None, str]] = [(p.reason, f"pod {p.name}: {p.message}") for p in pods]
    for condition in deployment.get("status", {}).get("conditions") or ():
        kind, status, reason = condition.get("type"), condition.get("status"), condition.get("reason")
        if kind == "Progressing" and status == "False" and reason == "ProgressDeadlineExceeded":
            found.append((reason, condition.get("message") or "progress deadline exceeded"))
        if kind == "ReplicaFailure" and status == "True":
            found.append(("ReplicaFailure", f"{reason}: {condition.get('message', '')}".strip()))
    return found


def _deploy_done(
    desired: Desired, state: State, versions: Sequence[RunningVersion], message: str
) -> tuple[bool, str]:
    """The wait-for-deployment rule.

    Done when we want 0 replicas (stopped counts as done), or when only the desired version has
    replicas, the state is Running or Scaling (never Degraded/Pending/Bouncing), and at least
    ceil(bounce_margin_factor x expected) replicas are ready — so 11/10 or a 0.95 margin are fine.
    """
    expected = desired.expected
    if expected == 0:
        return True, "stopped: 0 replicas wanted"
    if desired.version is None:
        return False, "no version marked for deployment yet"
    target = [v for v in versions if v.target]
    short = desired.version.short()
    if not target:
        return False, f"{short} hasn't started bouncing yet ({state.value}: {message})"
    if len(target) != len(versions):
        return False, f"still bouncing to {short}: {message}"
    if state not in (State.RUNNING, State.SCALING):
        return False, f"{state.value}: {message}"
    need = math.ceil(desired.bounce_margin_factor * expected - 1e-9)
    ready = sum(v.ready for v in target)
    if ready < need:
        return False, f"{ready}/{expected} replicas of {short} ready, waiting for {need}"
    return True, f"complete: {short} deployed at {ready} replica(s)"


def _running_versions(observed: Observed, target: Version | None) -> tuple[RunningVersion, ...]:
    """Versions with replicas, from the ReplicaSets (or the pods when there are none), newest first."""
    groups: dict[Version, list[tuple[int, int, float | None, str]]] = {}
    for rs in observed.replicasets:
        spec, status, metadata = rs.get("spec", {}), rs.get("status", {}), rs.get("metadata", {})
        replicas, ready = int(spec.get("replicas") or 0), int(status.get("readyReplicas") or 0)
        if replicas == 0 and ready == 0 and not status.get("replicas"):
            continue
        row = (replicas, ready, parse_time(metadata.get("creationTimestamp")), metadata.get("name", ""))
        groups.setdefault(Version.from_labels(metadata.get("labels")), []).append(row)
    if not observed.replicasets:
        for pod in filter(_is_live_pod, observed.pods):
            metadata = pod.get("metadata", {})
            created = parse_time(metadata.get("creationTimestamp"))
            row = (1, int(_pod_ready(pod)), created, metadata.get("name", ""))
            groups.setdefault(Version.from_labels(metadata.get("labels")), []).append(row)
    result = [
        RunningVersion(
            version=version,
            replicas=sum(r[0] for r in rows),
            ready=sum(r[1] for r in rows),
            created=min((r[2] for r in rows if r[2] is not None), default=None),
            target=target is not None and version.matches(target),
            names=tuple(sorted(r[3] for r in rows)),
        )
        for version, rows in groups.items()
    ]
    return tuple(sorted(result, key=lambda v: (v.created or 0.0, v.target), reverse=True))


def _is_live_pod(pod: JsonDict) -> bool:
    return pod.get("status", {}).get("phase") not in ("Succeeded",)


def _pod_ready(pod: JsonDict) -> bool:
    conditions = pod.get("status", {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def _pod_status(pod: JsonDict) -> PodStatus:
    metadata, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    statuses = list(status.get("initContainerStatuses") or ()) + list(status.get("containerStatuses") or ())
    reason, message = _pod_problem(pod, statuses)
    return PodStatus(
        name=metadata.get("name", ""),
        version=Version.from_labels(metadata.get("labels")),
        node=spec.get("nodeName"),
        created=parse_time(status.get("startTime") or metadata.get("creationTimestamp")),
        phase=status.get("phase", "Unknown"),
        ready=_pod_ready(pod),
        restarts=sum(int(c.get("restartCount") or 0) for c in statuses),
        reason=reason,
        message=message,
        deleting=bool(metadata.get("deletionTimestamp")),
        containers=tuple(c.get("name", "") for c in spec.get("containers") or ()),
    )


def _pod_problem(pod: JsonDict, statuses: Sequence[JsonDict]) -> tuple[str | None, str]:
    """Why a pod is not (yet) serving, as (reason, message); (None, "") when it is fine."""
    status = pod.get("status", {})
    if pod.get("metadata", {}).get("deletionTimestamp"):
        return "Terminating", "being deleted"
    for condition in status.get("conditions") or ():
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return condition.get("reason") or "Unschedulable", condition.get("message") or "not scheduled"
    for container in statuses:
        name, state = container.get("name", "?"), container.get("state") or {}
        last = (container.get("lastState") or {}).get("terminated") or {}
        restarts = int(container.get("restartCount") or 0)
        if "waiting" in state:
            waiting = state["waiting"] or {}
            reason = waiting.get("reason") or "Waiting"
            if last.get("reason") == "OOMKilled":
                return "OOMKilled", f"container {name} was OOMKilled (restarted {restarts} times)"
            detail = waiting.get("message") or f"restarted {restarts} times"
            return reason, f"container {name} is waiting: {reason} ({detail})"
        if "terminated" in state:
            terminated = state["terminated"] or {}
            reason = terminated.get("reason") or "Terminated"
            return reason, f"container {name} exited with code {terminated.get('exitCode')} ({reason})"
        if not container.get("ready", False):
            return "NotReady", f"container {name} is running but not ready (readiness check)"
    if status.get("phase") == "Failed":
        return status.get("reason") or "Failed", status.get("message") or "pod failed"
    if status.get("phase") == "Pending":
        return "Pending", "waiting to start"
    return None, ""


def _events(events: Sequence[JsonDict], limit: int = 20) -> tuple[EventInfo, ...]:
    """The most recent events (newest last), trimmed to `limit`."""
    rows = []
    for event in events:
        involved = event.get("involvedObject") or event.get("regarding") or {}
        when = (
            event.get("lastTimestamp")
            or event.get("eventTime")
            or event.get("metadata", {}).get("creationTimestamp")
        )
        rows.append(
            EventInfo(
                kind=involved.get("kind", ""),
                name=involved.get("name", ""),
                type=event.get("type", "Normal"),
                reason=event.get("reason", ""),
                message=(event.get("message") or event.get("note") or "").strip(),
                count=int(event.get("count") or 1),
                last_seen=parse_time(when),
            )
        )
    rows.sort(key=lambda e: e.last_seen or 0.0)
    return tuple(rows[-limit:])
