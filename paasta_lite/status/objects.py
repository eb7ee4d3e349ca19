"""What the cluster's objects say, one plain record each, read from the API's camelCase dicts.

Pure readers for the health model (`health.assess` decides; this module only reads): which
version an object carries (`Version`, from its labels), the versions with replicas
(`running_versions`, from the ReplicaSets, or the pods when there are none), each pod's state
and why it is not serving (`pod_status`), and recent events (`recent_events`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from paasta_lite.kube import labels
from paasta_lite.timestamps import parse_iso

JsonDict = Mapping[str, Any]


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
class RunningVersion:
    version: Version
    replicas: int
    ready: int
    created: float | None
    target: bool
    names: tuple[str, ...] = ()
    #: ready for minReadySeconds, as the ReplicaSet controller counts them
    available: int = 0


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


def parse_time(value: str | None) -> float | None:
    """RFC 3339 timestamp from the API -> epoch seconds (None stays None)."""
    if not value:
        return None
    return parse_iso(value).timestamp()


def running_versions(
    replicasets: Sequence[JsonDict], pods: Sequence[JsonDict], target: Version | None
) -> tuple[RunningVersion, ...]:
    """Versions with replicas, from the ReplicaSets (or the pods when there are none), newest first."""
    groups: dict[Version, list[tuple[int, int, int, float | None, str]]] = {}
    for rs in replicasets:
        spec, status, metadata = rs.get("spec", {}), rs.get("status", {}), rs.get("metadata", {})
        replicas, ready = int(spec.get("replicas") or 0), int(status.get("readyReplicas") or 0)
        if replicas == 0 and ready == 0 and not status.get("replicas"):
            continue
        available, created = int(status.get("availableReplicas") or 0), metadata.get("creationTimestamp")
        row = (replicas, ready, available, parse_time(created), metadata.get("name", ""))
        groups.setdefault(Version.from_labels(metadata.get("labels")), []).append(row)
    if not replicasets:  # pods only: availability is unknown, ready is the best guess
        for pod in filter(is_live_pod, pods):
            metadata = pod.get("metadata", {})
            created = parse_time(metadata.get("creationTimestamp"))
            ready = int(pod_ready(pod))
            row = (1, ready, ready, created, metadata.get("name", ""))
            groups.setdefault(Version.from_labels(metadata.get("labels")), []).append(row)
    result = [
        RunningVersion(
            version=version,
            replicas=sum(r[0] for r in rows),
            ready=sum(r[1] for r in rows),
            created=min((r[3] for r in rows if r[3] is not None), default=None),
            target=target is not None and version.matches(target),
            names=tuple(sorted(r[4] for r in rows)),
            available=sum(r[2] for r in rows),
        )
        for version, rows in groups.items()
    ]
    return tuple(sorted(result, key=lambda v: (v.created or 0.0, v.target), reverse=True))


def is_live_pod(pod: JsonDict) -> bool:
    return pod.get("status", {}).get("phase") not in ("Succeeded",)


def pod_ready(pod: JsonDict) -> bool:
    conditions = pod.get("status", {}).get("conditions") or ()
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)


def pod_status(pod: JsonDict) -> PodStatus:
    metadata, spec, status = pod.get("metadata", {}), pod.get("spec", {}), pod.get("status", {})
    statuses = list(status.get("initContainerStatuses") or ()) + list(status.get("containerStatuses") or ())
    reason, message = _pod_problem(pod, statuses)
    return PodStatus(
        name=metadata.get("name", ""),
        version=Version.from_labels(metadata.get("labels")),
        node=spec.get("nodeName"),
        created=parse_time(status.get("startTime") or metadata.get("creationTimestamp")),
        phase=status.get("phase", "Unknown"),
        ready=pod_ready(pod),
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


def recent_events(events: Sequence[JsonDict], limit: int = 20) -> tuple[EventInfo, ...]:
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
