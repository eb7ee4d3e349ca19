"""An app's companions: the HorizontalPodAutoscaler and PodDisruptionBudget of its Deployment (pure).

Where it sits: `render` renders them (`render_scaling`, `RenderedApp.companions`); once the
Deployment exists, `reconcile_plan.plan_app` asks `plan_companions` what to read, apply, delete
and record; `plan_writer` carries that out. Nothing here does I/O.

The decisions, and why:
- **Owned by their Deployment.** Every companion is applied with an ownerReference to the live
  Deployment (`owner_reference`: apps/v1 Deployment, name, uid; `controller: false` because the
  Deployment controller does not manage them, paasta_lite does; `blockOwnerDeletion: true`).
  Kubernetes' garbage collector deletes them with the Deployment, so cleanup deletes only the
  Deployment; with its Foreground propagation the Deployment stays visible until the companions
  are gone too (v1.28: about 1 s). A Deployment re-created under the same name has a new uid:
  the next apply replaces the reference (server-side apply keys the list item by uid).
- **The record** (`labels.COMPANIONS` on the Deployment, e.g. `hpa=none,pdb=config1a2b3c4d`):
  each companion's config hash as last applied, `none` for one the app must not have. A no-op
  run lists only Deployments: when the record matches what is rendered, the companions are up to
  date without reading them (issue 12: one list, zero writes). Otherwise only the kinds whose
  hash differs are read (GET), compared, applied or deleted, and the record is written last,
  after all of them succeeded, by its own field manager (`COMPANIONS_MANAGER`): our Deployment
  applies neither carry nor remove it, and a failed companion write leaves the old record, so
  the next run tries again. The price: an HPA or PDB deleted or edited by hand while its config
  stays the same goes unnoticed by that cheap run; `setup_kubernetes_job --full` (one list per
  managed kind, `listed_kinds`) and paasta_deployd (watches) repair it.
- **Unwanted companions are deleted**: an HPA when the instance is stopped (it would scale the
  Deployment back up), has no `max_instances`, or is `bespoke` (`render_scaling.has_hpa`); with
  the read uid and resourceVersion as preconditions, like cleanup's deletes.
- **Only our objects.** An HPA or PDB under the app's name without our managed label is never
  deleted and never applied over: the app fails, naming it (`CompanionPlan.blocked`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

from paasta_lite.kube import labels
from paasta_lite.kube.compare import label_of, object_reasons

Obj = dict[str, Any]
ObjKey = tuple[str, str, str]

HPA = "HorizontalPodAutoscaler"
PDB = "PodDisruptionBudget"
#: Every companion kind, in the order they are applied (and written in the record).
KINDS = (HPA, PDB)
SHORT_NAMES = {HPA: "hpa", PDB: "pdb"}
NONE = "none"


# --------------------------------------------------------------------------- the record


def record(companions: Mapping[str, Obj | None]) -> str:
    """The record of ``companions`` (kind -> rendered object, None: must have none)."""
    return ",".join(f"{SHORT_NAMES[kind]}={_hash_of(companions[kind])}"
                    for kind in KINDS if kind in companions)


def _hash_of(obj: Obj | None) -> str:
    return (label_of(obj, labels.CONFIG_SHA) or NONE) if obj is not None else NONE


def parse_record(text: str | None) -> dict[str, str]:
    """``hpa=x,pdb=y`` -> {"hpa": "x", "pdb": "y"}; anything malformed is simply not in it."""
    entries = {}
    for part in (text or "").split(","):
        short, sep, value = part.strip().partition("=")
        if sep and short:
            entries[short] = value
    return entries


def recorded(deployment: Obj) -> str | None:
    """The record on a live Deployment (None: never written, e.g. applied by an older paasta_lite)."""
    value = ((deployment.get("metadata") or {}).get("annotations") or {}).get(labels.COMPANIONS)
    return value if isinstance(value, str) else None


def record_body(deployment: Obj, value: str) -> Obj:
    """The apply that writes the record: the annotation alone, plus the live uid (the API server
    refuses, 422, to write it onto a Deployment that was re-created since it was read)."""
    metadata = deployment.get("metadata") or {}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": metadata.get("name"), "namespace": metadata.get("namespace"),
                         "uid": metadata.get("uid"), "annotations": {labels.COMPANIONS: value}}}


# --------------------------------------------------------------------------- ownership


def owner_reference(deployment: Obj) -> Obj:
    """The ownerReference that lets the garbage collector delete a companion with ``deployment``."""
    metadata = deployment.get("metadata") or {}
    return {"apiVersion": "apps/v1", "kind": "Deployment", "name": metadata.get("name"),
            "uid": metadata.get("uid"), "controller": False, "blockOwnerDeletion": True}


def owned_by(obj: Obj, deployment: Obj) -> bool:
    uid = (deployment.get("metadata") or {}).get("uid")
    references = (obj.get("metadata") or {}).get("ownerReferences") or []
    return any(isinstance(ref, dict) and ref.get("uid") == uid for ref in references)


def with_owner(obj: Obj, deployment: Obj) -> Obj:
    """``obj`` as applied: the rendered companion plus its ownerReference (not hashed: the uid
    is the cluster's, not the config's)."""
    return {**obj, "metadata": {**obj["metadata"], "ownerReferences": [owner_reference(deployment)]}}


# --------------------------------------------------------------------------- planning


@dataclass(frozen=True)
class Change:
    """Apply ``body`` (create when ``live`` is None), or delete ``live`` when ``body`` is None."""

    kind: str
    namespace: str
    name: str
    reason: str
    body: Obj | None = None
    live: Obj | None = None


@dataclass(frozen=True)
class CompanionPlan:
    """What to do about one app's companions; empty when they are up to date."""

    #: read these first (GET), then plan again: the changes depend on what they hold
    reads: tuple[ObjKey, ...] = ()
    changes: tuple[Change, ...] = ()
    #: the record write, after every change succeeded (None: the record is right)
    record: Obj | None = None
    reasons: tuple[str, ...] = ()
    #: why nothing may be written for the app (an object we do not manage holds the name)
    blocked: str = ""


def stale_kinds(companions: Mapping[str, Obj | None], deployment: Obj,
                listed_kinds: Collection[str] = ()) -> list[str]:
    """The companion kinds to look at: recorded differently from what is rendered, or listed
    (``--full``: every kind whose managed objects were all listed is compared, record or not)."""
    have, want = parse_record(recorded(deployment)), parse_record(record(companions))
    return [kind for kind in KINDS if kind in companions
            and (kind in listed_kinds or have.get(SHORT_NAMES[kind]) != want.get(SHORT_NAMES[kind]))]


def plan_companions(companions: Mapping[str, Obj | None], deployment: Obj, live: Mapping[ObjKey, Obj], *,
                    known: Collection[ObjKey] = (), listed_kinds: Collection[str] = ()) -> CompanionPlan:
    """What to do about the companions of the live ``deployment`` (see the module docstring).

    ``live``: the objects known by (kind, namespace, name); ``known``: keys whose state ``live``
    reflects (absent there: there is none), besides every key of ``listed_kinds``.
    """
    metadata = deployment.get("metadata") or {}
    namespace, name = str(metadata.get("namespace") or ""), str(metadata.get("name") or "")
    stale = stale_kinds(companions, deployment, listed_kinds)
    want = record(companions)
    up_to_date_record = parse_record(recorded(deployment)) == parse_record(want)
    if not stale and up_to_date_record:
        return CompanionPlan()
    unread = tuple((kind, namespace, name) for kind in stale
                   if kind not in listed_kinds and (kind, namespace, name) not in known)
    if unread:
        return CompanionPlan(reads=unread, reasons=tuple(_recorded_change(kind, deployment, want)
                                                         for kind, _, _ in unread))
    changes: list[Change] = []
    for kind in stale:
        current = live.get((kind, namespace, name))
        if current is not None and label_of(current, labels.MANAGED) != "true":
            if companions[kind] is None:
                continue  # not ours and not wanted: left alone
            return CompanionPlan(blocked=f'{kind} "{name}" already exists in {namespace} and is not managed '
                                         f"by paasta_lite (no {labels.MANAGED}=true label): not touched")
        change = _change(kind, companions[kind], current, deployment)
        if change is not None:
            changes.append(change)
    reasons = tuple(f"{change.kind} {change.reason}" for change in changes)
    new_record = None if up_to_date_record else record_body(deployment, want)
    if new_record is not None and not reasons:
        reasons = (f"companions record {recorded(deployment) or 'missing'} -> {want}",)
    return CompanionPlan(changes=tuple(changes), record=new_record, reasons=reasons)


def _recorded_change(kind: str, deployment: Obj, want: str) -> str:
    """Why ``kind`` is read: what the record says changed (the read tells whether it really did)."""
    old = parse_record(recorded(deployment)).get(SHORT_NAMES[kind])
    new = parse_record(want)[SHORT_NAMES[kind]]
    if old is None:
        return f"{kind} not recorded yet (-> {new}; to read)"
    return f"{kind} changed per the companions record ({old} -> {new}; to read)"


def _change(kind: str, desired: Obj | None, current: Obj | None, deployment: Obj) -> Change | None:
    metadata = deployment.get("metadata") or {}
    namespace, name = str(metadata.get("namespace")), str(metadata.get("name"))
    if desired is None:
        return None if current is None else Change(kind, namespace, name, "no longer wanted: deleted",
                                                   live=current)
    if current is None:
        why = ["does not exist yet"]
    else:
        why = object_reasons(desired, current)
        if not owned_by(current, deployment):
            why.append("not owned by its Deployment")
    if not why:
        return None
    return Change(kind, namespace, name, "; ".join(why), body=with_owner(desired, deployment), live=current)
