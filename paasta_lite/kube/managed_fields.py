"""Reading server-side apply's `metadata.managedFields`: who owns which field (pure).

We write with server-side apply as field manager `FIELD_MANAGER`. The API server records, per
manager, the set of fields it owns (`fieldsV1`: nested `f:<field>` keys, `k:{...}` for items
of keyed lists, `.` for the item itself). Two decisions in `reconcile_plan` read it:

- **Replicas hand-over.** When we stop sending `spec.replicas` (an autoscaled app), a field we
  own alone is *removed* by the apply and the Deployment falls back to 1 replica (checked on
  v1.28: the autoscaler's writes through `/scale` do not take ownership). So while we own
  `spec.replicas`, the plan first applies the live count as `HANDOVER_MANAGER` (with the live
  resourceVersion as precondition) and only then drops it from our apply: the field keeps a
  co-owner and its value, and the autoscaler moves it freely from then on. This is the
  hand-over the Kubernetes documentation describes ("Transferring ownership").
- **Upgrading objects written before server-side apply.** Our earlier PUT/POST writes are
  recorded as operation `Update` of manager `OpenAPI-Generator` (the Python client's default
  user agent). Such a co-owner keeps every field we stop sending alive, so removing an env var
  from soa-configs would never remove it. `upgrade_patch` moves those fields into our `Apply`
  entry once (as `kubectl apply --server-side` does for client-side-applied objects), after
  which our applies own, change and remove them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Obj = dict[str, Any]

FIELD_MANAGER = "paasta_lite"
HANDOVER_MANAGER = "paasta_lite-handover"
#: Writes only the Deployment's companions record (`companions`), after the companions themselves:
#: a manager of its own, so our Deployment applies neither carry nor remove that annotation.
COMPANIONS_MANAGER = "paasta_lite-companions"
#: Managers our own writes had before server-side apply (the Python client's default name).
LEGACY_MANAGERS = frozenset({"OpenAPI-Generator"})


def _entries(obj: Obj) -> list[Obj]:
    entries = (obj.get("metadata") or {}).get("managedFields") or []
    return [entry for entry in entries if isinstance(entry, dict)]


def owned_fields(obj: Obj, manager: str = FIELD_MANAGER, operation: str = "Apply") -> Obj:
    """The `fieldsV1` set ``manager`` owns through ``operation`` (empty when none)."""
    for entry in _entries(obj):
        if (entry.get("manager"), entry.get("operation"), entry.get("subresource")) == (
                manager, operation, None):
            fields = entry.get("fieldsV1")
            return fields if isinstance(fields, dict) else {}
    return {}


def _has(fields: Any, path: Sequence[str]) -> bool:
    node = fields
    for name in path:
        node = node.get(f"f:{name}") if isinstance(node, dict) else None
        if node is None:
            return False
    return True


def owns(obj: Obj, path: Sequence[str], manager: str = FIELD_MANAGER) -> bool:
    """Whether ``manager`` owns (through apply) the field at ``path`` (e.g. spec, replicas)."""
    return _has(owned_fields(obj, manager), path)


def owners(obj: Obj, path: Sequence[str]) -> set[str]:
    """Every manager that owns the field at ``path`` on the main resource (any operation)."""
    return {str(entry.get("manager")) for entry in _entries(obj)
            if not entry.get("subresource") and _has(entry.get("fieldsV1"), path)}


def _union(left: Obj, right: Obj) -> Obj:
    merged = dict(left)
    for key, value in right.items():
        merged[key] = _union(merged.get(key) or {}, value) if isinstance(value, dict) else value
    return merged


def _is_legacy(entry: Obj) -> bool:
    return (entry.get("manager") in LEGACY_MANAGERS and entry.get("operation") == "Update"
            and not entry.get("subresource"))


def upgrade_patch(live: Obj) -> Obj | None:
    """A JSON merge patch that hands our pre-server-side-apply ownership to `FIELD_MANAGER`.

    None when there is nothing to upgrade. The patch carries the live resourceVersion, so it
    fails with 409 (and the app is re-planned) if the object changed since it was read.
    """
    entries = _entries(live)
    legacy = [entry for entry in entries if _is_legacy(entry)]
    if not legacy:
        return None
    fields: Obj = owned_fields(live)
    for entry in legacy:
        fields = _union(fields, entry.get("fieldsV1") or {})
    ours = {"manager": FIELD_MANAGER, "operation": "Apply",
            "apiVersion": str(live.get("apiVersion") or legacy[0].get("apiVersion") or ""),
            "fieldsType": "FieldsV1", "fieldsV1": fields}
    kept = [entry for entry in entries if not _is_legacy(entry)
            and (entry.get("manager"), entry.get("operation")) != (FIELD_MANAGER, "Apply")]
    metadata = live.get("metadata") or {}
    return {"metadata": {"resourceVersion": metadata.get("resourceVersion"),
                         "managedFields": [ours, *kept]}}
