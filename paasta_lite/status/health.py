"""The one health model: what is running for one service.instance, and is it what we want.

`assess(observed, desired)` is pure. It takes the Deployment, its ReplicaSets, pods and recent
events exactly as the Kubernetes API returns them (plain camelCase dicts) plus what we want (the
desired version, replicas, desired_state, bounce_margin_factor, soa hash) and returns an
`InstanceHealth`. `paasta status`, the API's `status` and `bounce_status` endpoints and
`wait-for-deployment` all read this one result, so they can never disagree. Whether a rollout is
complete comes from the Deployment controller's own report (`rollout`: observedGeneration,
updated/available/old replicas, the Progressing and Available conditions), never from counting
ready pods: a pod is only *available* once ready for `minReadySeconds`.

States (`State`), checked in this order:

- ``NotDeployed`` — no version marked for deployment, or no Deployment in the cluster yet.
- ``Stopped``     — we want 0 replicas (desired_state ``stop`` or ``instances: 0``) and none remain.
- ``Stopping``    — we want 0 replicas and some pods remain.
- ``Pending``     — the cluster has not caught up: the Deployment's template is not the desired
  version or its soa-configs (the reconciler has not applied it), the controller has not
  observed the latest spec yet (``status.observedGeneration < metadata.generation``), or the
  Deployment is paused.
- ``Degraded``    — something will not fix itself: the rollout failed (``Progressing=False``,
  ProgressDeadlineExceeded: always, whatever the counts), or, short of Running, CrashLoopBackOff,
  ImagePullBackOff, OOMKilled, Unschedulable, ReplicaFailure...
- ``Bouncing``    — more than one version has replicas (or the controller reports old ones).
- ``Starting``    — only the desired version, no replica available yet.
- ``Scaling``     — only the desired version, fewer replicas available than wanted, or the
  controller still reports a blocker (see `rollout.blocker`).
- ``Running``     — only the desired version, at least as many available replicas as wanted, and
  the controller reports the rollout complete.

Config drift: the template's git sha and image version must be the desired ones; the config is
compared through the soa hash annotation (`kube.config_hash.soa_config_hash`, computable without
the cluster's system config) and, when the caller rendered with the cluster's own system config
(the API does), through the full config hash. When neither can be compared, `config_note` says so.

A stopped instance reads ``Stopped``, never "Critical (0/N)": when we want 0 replicas, 0 is
what we expect. ``healthy`` means serving what we asked for (intentionally stopped counts);
``done`` is the wait-for-deployment rule (see `_deploy_done`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from enum import Enum
from typing import Any

from paasta_lite.kube import labels
from paasta_lite.status.objects import (
    EventInfo,
    PodStatus,
    RunningVersion,
    Version,
    is_live_pod,
    pod_status,
    recent_events,
    running_versions,
)
from paasta_lite.status.rollout import Blocker, Rollout, blocker, needed, read_rollout

__all__ = ["Desired", "InstanceHealth", "Observed", "State", "Version", "assess"]

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
class Desired:
    """What we want for the instance (from soa-configs, deployments.json and the renderer)."""

    version: Version | None
    replicas: int
    desired_state: str = "start"
    bounce_margin_factor: float = 1.0
    #: `soa_config_hash` of the instance: compared with the Deployment's annotation
    soa_config_sha: str | None = None

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
    #: replicas the Deployment controller counts as available (ready for minReadySeconds)
    available: int = 0
    #: set when config drift could not be judged (and why); None when it was, or is moot
    config_note: str | None = None

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


@dataclass(frozen=True)
class _Facts:
    """What `_decide` and `_deploy_done` read, gathered once by `assess`."""

    desired: Desired
    versions: tuple[RunningVersion, ...]
    pods: tuple[PodStatus, ...]
    rollout: Rollout | None
    blocker: Blocker | None
    ready: int
    available: int


def assess(observed: Observed, desired: Desired) -> InstanceHealth:
    """Compute the health of one instance from its cluster objects and what we want."""
    desired = _with_known_config(observed.deployment, desired)
    target = desired.version
    versions = running_versions(observed.replicasets, observed.pods, target)
    pods = tuple(pod_status(pod) for pod in observed.pods if is_live_pod(pod))
    ready = sum(v.ready for v in versions)
    expected = desired.expected
    rollout = read_rollout(observed.deployment) if observed.deployment is not None else None
    available = rollout.available if rollout is not None else sum(v.available for v in versions)
    stop = None
    if rollout is not None:
        stop = blocker(rollout, need=needed(expected, desired.bounce_margin_factor), expected=expected)
    facts = _Facts(desired, versions, pods, rollout, stop, ready, available)
    state, reason, message, note = _decide(observed, facts)
    healthy = state in (State.RUNNING, State.STOPPED, State.STOPPING) or (
        state in (State.BOUNCING, State.PENDING, State.SCALING) and available >= expected
    )
    done, done_message = _deploy_done(facts, state, message)
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
        events=recent_events(observed.events),
        available=available,
        config_note=note,
    )


def _decide(observed: Observed, facts: _Facts) -> tuple[State, str | None, str, str | None]:
    """The ordered state rules from the module docstring -> (state, reason, message, config note)."""
    desired = facts.desired
    expected = desired.expected
    if expected == 0:
        live = sum(v.replicas for v in facts.versions) + len(facts.pods)
        if live:
            return State.STOPPING, "Stopping", f"{live} pod(s) still shutting down", None
        what = "desired_state is stop" if desired.desired_state == "stop" else "0 instances configured"
        return State.STOPPED, None, f"stopped ({what})", None
    if desired.version is None:
        return State.NOT_DEPLOYED, "NotMarked", "no version has been marked for deployment yet", None
    deployment, rollout, stop = observed.deployment, facts.rollout, facts.blocker
    if deployment is None or rollout is None:
        message = "no Deployment in the cluster yet (reconciler not run?)"
        return State.NOT_DEPLOYED, "NoDeployment", message, None
    pending, note = _not_applied(deployment, desired)
    if pending is not None:
        return State.PENDING, "NotApplied", pending, note
    if stop is not None and stop.reason in ("NotObservedYet", "Paused"):
        return State.PENDING, stop.reason, stop.message, note
    failure = _worst(_failures(rollout, facts.pods), FAILURE_REASONS)
    if stop is not None and stop.failed:
        cause = f"; {failure[1]}" if failure is not None and failure[0] != stop.reason else ""
        return State.DEGRADED, failure[0] if failure else stop.reason, stop.message + cause, note
    lifecycle, message = _lifecycle(facts, desired.version)
    if lifecycle is State.RUNNING:
        return lifecycle, None, message, note
    if failure is not None:
        return State.DEGRADED, failure[0], f"{message}; {failure[1]}", note
    waiting = [(p.reason, f"pod {p.name}: {p.message}") for p in facts.pods if p.reason]
    soft = _worst(waiting, TRANSIENT_REASONS)
    if soft is not None:
        return lifecycle, soft[0], f"{message}; {soft[1]}", note
    if stop is not None:  # `reason` names it; `done_message` has the details
        return lifecycle, stop.reason, message, note
    return lifecycle, "WaitingForReady", message, note


def _with_known_config(deployment: JsonDict | None, desired: Desired) -> Desired:
    """`desired`, its version completed with the applied template's config hash when only the
    soa hash could be compared (direct mode) and it says the Deployment is what soa-configs want.

    That config hash then marks which ReplicaSet is the target during a config-only bounce, as
    the API's rendered hash does.
    """
    want = desired.version
    if want is None or want.config_sha or deployment is None or not desired.soa_config_sha:
        return desired
    recorded = (deployment.get("metadata", {}).get("annotations") or {}).get(labels.SOA_CONFIG_SHA)
    template = deployment.get("spec", {}).get("template", {})
    applied = Version.from_labels(template.get("metadata", {}).get("labels"))
    same_code = (applied.git_sha, applied.image_version) == (want.git_sha, want.image_version)
    if recorded != desired.soa_config_sha or not same_code or not applied.config_sha:
        return desired
    return replace(desired, version=replace(want, config_sha=applied.config_sha))


def _not_applied(deployment: JsonDict, desired: Desired) -> tuple[str | None, str | None]:
    """(why the Deployment is not what soa-configs want, else None; why config drift could not
    be judged, else None). Code identity first (git sha, image version), then the config."""
    assert desired.version is not None
    want = desired.version
    template = deployment.get("spec", {}).get("template", {})
    applied = Version.from_labels(template.get("metadata", {}).get("labels"))
    if (applied.git_sha, applied.image_version) != (want.git_sha, want.image_version):
        return f"the cluster is at {applied.short()}; {want.short()} has not been applied yet", None
    recorded = (deployment.get("metadata", {}).get("annotations") or {}).get(labels.SOA_CONFIG_SHA)
    differs = "the configuration in the cluster differs from soa-configs ({}); not applied yet"
    if desired.soa_config_sha and recorded and recorded != desired.soa_config_sha:
        return differs.format(f"soa hash {recorded}, soa-configs give {desired.soa_config_sha}"), None
    if want.config_sha and applied.config_sha and want.config_sha != applied.config_sha:
        return differs.format(f"config hash {applied.config_sha}, expected {want.config_sha}"), None
    if want.config_sha and applied.config_sha:
        return None, None
    if desired.soa_config_sha and recorded:
        return None, None
    if not recorded:
        why = (
            f"the Deployment has no {labels.SOA_CONFIG_SHA} annotation (applied by an older"
            " setup_kubernetes_job; its next run adds it)"
        )
    else:
        why = "no soa-config hash to compare with"
    return None, f"cannot judge config drift from here: {why}; compared the git sha only"


def _counts(facts: _Facts, expected: int) -> str:
    """"2/3 ready", or "2/2 ready, 0 available" while minReadySeconds holds ready pods back."""
    text = f"{facts.ready}/{expected} ready"
    return text if facts.available == facts.ready else f"{text}, {facts.available} available"


def _lifecycle(facts: _Facts, target: Version) -> tuple[State, str]:
    """Bouncing / Starting / Scaling / Running from versions and the controller's counts."""
    expected, rollout = facts.desired.expected, facts.rollout
    old = sum(v.replicas for v in facts.versions if not v.target) or (rollout.old_replicas if rollout else 0)
    if old:
        return State.BOUNCING, f"bouncing to {target.short()}: {old} old replica(s) left"
    if facts.available == 0:
        return State.STARTING, f"starting: {_counts(facts, expected)}"
    if facts.available < expected or facts.blocker is not None:
        return State.SCALING, f"scaling: {_counts(facts, expected)}"
    return State.RUNNING, f"running {target.short()}: {_counts(facts, expected)}"


def _worst(found: Iterable[tuple[str | None, str]], order: Sequence[str]) -> tuple[str, str] | None:
    """The (reason, message) whose reason comes first in `order`; None if none is listed."""
    ranked = [(order.index(r), r, m) for r, m in found if r is not None and r in order]
    if not ranked:
        return None
    _, reason, message = min(ranked, key=lambda item: item[0])
    return reason, message


def _failures(rollout: Rollout, pods: Sequence[PodStatus]) -> list[tuple[str | None, str]]:
    """Pod failures plus the controller's ReplicaFailure condition (e.g. quota exceeded)."""
    found: list[tuple[str | None, str]] = [(p.reason, f"pod {p.name}: {p.message}") for p in pods]
    failure = rollout.condition("ReplicaFailure")
    if failure is not None and failure.status == "True":
        found.append(("ReplicaFailure", failure.text()))
    return found


def _deploy_done(facts: _Facts, state: State, message: str) -> tuple[bool, str]:
    """The wait-for-deployment rule.

    Done when we want 0 replicas (stopped counts as done), or when the Deployment runs the desired
    version, the controller reports no blocker (`rollout.blocker`: generation observed, no failed
    rollout, all replicas updated, no old ones, at least ceil(bounce_margin_factor x expected)
    available, Available not False), only the desired version has replicas and the state is
    Running or Scaling (never Degraded) — so 11/10 or 19/20 at margin 0.95 are done.
    """
    desired = facts.desired
    expected = desired.expected
    if expected == 0:
        return True, "stopped: 0 replicas wanted"
    if desired.version is None:
        return False, "no version marked for deployment yet"
    target = [v for v in facts.versions if v.target]
    short = desired.version.short()
    if state is State.NOT_DEPLOYED or not target:
        return False, f"{short} hasn't started bouncing yet ({state.value}: {message})"
    if state is State.PENDING:
        return False, f"{state.value}: {message}"
    if facts.blocker is not None and facts.blocker.failed:
        return False, facts.blocker.message
    if len(target) != len(facts.versions):
        bouncing = message if message.startswith("bouncing to") else f"bouncing to {short}: {message}"
        return False, f"still {bouncing}"
    if facts.blocker is not None:
        return False, facts.blocker.message
    if state not in (State.RUNNING, State.SCALING):
        return False, f"{state.value}: {message}"
    return True, f"complete: {short} deployed at {facts.available} replica(s)"


