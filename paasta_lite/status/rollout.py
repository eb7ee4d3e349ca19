"""What the Deployment controller reports about a rollout, read as `kubectl rollout status` and
Argo CD's Deployment health check read it.

Pure: a Deployment (the API's camelCase dict) in, a `Rollout` and at most one `Blocker` out.
`health.assess` decides the state and `done` with it, so `paasta status`, the API and
wait-for-deployment judge a rollout by the controller's own numbers rather than by counting
ready pods: only the controller knows `minReadySeconds` (a pod is *available* once it has been
ready that long) and the progress deadline. Checked in this order (`blocker`):

1. ``status.observedGeneration >= metadata.generation``: otherwise every number below describes
   an older spec ("waiting for the controller to observe generation N");
2. ``Progressing=False`` with reason ``ProgressDeadlineExceeded``: the rollout **failed** (made no
   progress for ``progressDeadlineSeconds``; Kubernetes keeps trying, but waiting rarely helps);
3. ``spec.paused``: nothing rolls out until someone resumes it;
4. ``status.updatedReplicas >= spec.replicas``: every replica runs the new pod template;
5. no old replicas: ``status.replicas <= status.updatedReplicas``;
6. ``status.availableReplicas >= need``, where ``need`` is ceil(bounce_margin_factor x expected),
   PaaSTA's margin (kubectl and Argo CD want all: the same rule at margin 1);
7. the ``Available`` condition is not False (the controller's minimum-availability verdict).

Checked against a v1.28.4 API server: with ``minReadySeconds: 30`` the Deployment reports
readyReplicas 2 with no availableReplicas (omitted: 0), ``Available=False
(MinimumReplicasUnavailable)`` and ``Progressing=True (ReplicaSetUpdated)`` for 30 s, then
availableReplicas 2, ``Available=True`` and ``Progressing=True (NewReplicaSetAvailable)``; pods that
never get ready turn ``Progressing`` to False with ``ProgressDeadlineExceeded`` after the deadline.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JsonDict = Mapping[str, Any]

#: The controller's default when the Deployment does not say (it always does once defaulted).
DEFAULT_PROGRESS_DEADLINE_S = 600


@dataclass(frozen=True)
class Condition:
    """One entry of ``status.conditions`` (type Available, Progressing or ReplicaFailure)."""

    type: str
    status: str
    reason: str
    message: str

    def text(self) -> str:
        """``Available=False (MinimumReplicasUnavailable): Deployment does not have ...``."""
        detail = f": {self.message}" if self.message else ""
        return f"{self.type}={self.status} ({self.reason}){detail}"


@dataclass(frozen=True)
class Rollout:
    """The fields of a Deployment that say how its rollout is going (zeros when omitted)."""

    name: str
    namespace: str
    generation: int | None
    observed_generation: int | None
    spec_replicas: int
    replicas: int
    updated: int
    ready: int
    available: int
    min_ready_seconds: int = 0
    progress_deadline_seconds: int = DEFAULT_PROGRESS_DEADLINE_S
    paused: bool = False
    conditions: Mapping[str, Condition] = field(default_factory=dict)

    @property
    def observed(self) -> bool:
        """Has the controller seen the latest spec? (No generation at all: nothing to wait for.)"""
        if self.generation is None:
            return True
        return self.observed_generation is not None and self.observed_generation >= self.generation

    @property
    def old_replicas(self) -> int:
        """Replicas still running an older pod template."""
        return max(0, self.replicas - self.updated)

    def condition(self, kind: str) -> Condition | None:
        return self.conditions.get(kind)

    @property
    def deadline_exceeded(self) -> Condition | None:
        """The Progressing condition when it says the rollout failed, else None."""
        progressing = self.condition("Progressing")
        if progressing and progressing.status == "False" and progressing.reason == "ProgressDeadlineExceeded":
            return progressing
        return None


@dataclass(frozen=True)
class Blocker:
    """Why a rollout is not complete: ``reason`` names the blocking condition or count."""

    reason: str
    message: str
    #: the rollout failed (ProgressDeadlineExceeded), rather than still being under way
    failed: bool = False


def _int(value: Any, default: int = 0) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else default


def read_rollout(deployment: JsonDict) -> Rollout:
    """The rollout fields of `deployment` (a missing count is 0: the API omits zero values)."""
    metadata, spec = deployment.get("metadata") or {}, deployment.get("spec") or {}
    status = deployment.get("status") or {}
    conditions = {}
    for raw in status.get("conditions") or ():
        if isinstance(raw, Mapping) and raw.get("type"):
            kind = str(raw["type"])
            values = (str(raw.get(key) or "") for key in ("status", "reason", "message"))
            conditions[kind] = Condition(kind, *values)
    generation, observed = metadata.get("generation"), status.get("observedGeneration")
    return Rollout(
        name=str(metadata.get("name") or ""),
        namespace=str(metadata.get("namespace") or ""),
        generation=_int(generation) if generation is not None else None,
        observed_generation=_int(observed) if observed is not None else None,
        spec_replicas=_int(spec.get("replicas"), 1),
        replicas=_int(status.get("replicas")),
        updated=_int(status.get("updatedReplicas")),
        ready=_int(status.get("readyReplicas")),
        available=_int(status.get("availableReplicas")),
        min_ready_seconds=_int(spec.get("minReadySeconds")),
        progress_deadline_seconds=_int(spec.get("progressDeadlineSeconds"), DEFAULT_PROGRESS_DEADLINE_S),
        paused=bool(spec.get("paused")),
        conditions=conditions,
    )


def needed(expected: int, bounce_margin_factor: float) -> int:
    """Available replicas a deploy needs: ceil(margin x expected), so 19/20 at 0.95 is enough."""
    return math.ceil(bounce_margin_factor * expected - 1e-9)


def blocker(rollout: Rollout, *, need: int, expected: int) -> Blocker | None:
    """The first reason (module docstring order) the rollout is not complete; None when it is."""
    if not rollout.observed:
        seen = rollout.observed_generation if rollout.observed_generation is not None else "none yet"
        return Blocker(
            "NotObservedYet",
            f"waiting for the controller to observe generation {rollout.generation} (observed: {seen})",
        )
    failed = rollout.deadline_exceeded
    if failed is not None:
        return Blocker(
            "ProgressDeadlineExceeded",
            f"rollout failed: no progress for {rollout.progress_deadline_seconds}s ({failed.text()})",
            failed=True,
        )
    if rollout.paused:
        where = f"deployment/{rollout.name} -n {rollout.namespace}"
        return Blocker("Paused", f"the Deployment is paused (kubectl rollout resume {where})")
    if rollout.updated < rollout.spec_replicas:
        return Blocker(
            "UpdatingReplicas", f"{rollout.updated}/{rollout.spec_replicas} replicas run the new pod template"
        )
    if rollout.old_replicas:
        return Blocker("OldReplicas", f"{rollout.old_replicas} old replica(s) pending termination")
    available = rollout.condition("Available")
    unavailable = available is not None and available.status == "False"
    if rollout.available < need:
        condition = available if unavailable else None
        return _not_available(rollout, need=need, expected=expected, condition=condition)
    if unavailable and available is not None:
        return Blocker(available.reason or "Unavailable", available.text())
    return None


def _not_available(rollout: Rollout, *, need: int, expected: int, condition: Condition | None) -> Blocker:
    """Too few available replicas; says when minReadySeconds is what holds ready pods back."""
    message = f"{rollout.available}/{expected} replicas available, waiting for {need}"
    reason = "NotAvailable"
    if rollout.min_ready_seconds and rollout.ready > rollout.available:
        reason = "MinReadySeconds"
        message += (
            f" ({rollout.ready} ready; a pod counts as available once ready for"
            f" minReadySeconds {rollout.min_ready_seconds}s)"
        )
    if condition is not None:
        message += f"; {condition.text()}"
    return Blocker(reason, message)
