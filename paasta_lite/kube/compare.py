"""Comparing a rendered object with its live copy: which fields we own still hold our values (pure).

Used by `reconcile_plan` (is a live Deployment different?) and `companions` (is a live HPA or
PDB different?). Two questions, two answers:
1. the config-hash label: a string comparison that catches any change to what we render;
2. hand edits: every field of the rendered object's `metadata.labels`, `metadata.annotations`
   and `spec` compared with the live object (`first_difference`). Fields the API server adds
   (defaults, status, extra labels) are not ours and are ignored; keyed lists (containers, env,
   volumes, mounts, ports) are matched by their merge key, and an extra live item is a
   difference only if we own it (per `managedFields`); other lists must match element by
   element; quantities compare by value, because the API server rewrites `1024Mi` as `1Gi`.
   Re-hashing the live object instead would never match.
"""

from __future__ import annotations

import json
import re
from typing import Any

from paasta_lite.kube import labels
from paasta_lite.kube.managed_fields import owned_fields

Obj = dict[str, Any]


def label_of(obj: Obj, key: str) -> str | None:
    """The label ``key`` of ``obj`` as a string, or None."""
    value = ((obj.get("metadata") or {}).get("labels") or {}).get(key)
    return None if value is None else str(value)

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


#: Lists the API server merges by key (as server-side apply does), field name -> key fields.
MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",), "initContainers": ("name",), "env": ("name",), "volumes": ("name",),
    "volumeMounts": ("mountPath",), "ports": ("containerPort", "protocol"), "imagePullSecrets": ("name",),
}
_DEFAULT_KEY_VALUES = {"protocol": "TCP"}


def item_key(item: Any, key_fields: tuple[str, ...]) -> str:
    """The `k:{...}` name server-side apply gives a keyed list item (`k:{"name":"main"}`)."""
    values = {f: (item.get(f) if item.get(f) is not None else _DEFAULT_KEY_VALUES.get(f))
              for f in key_fields} if isinstance(item, dict) else {}
    present = {f: v for f, v in sorted(values.items()) if v is not None}
    return "k:" + json.dumps(present, separators=(",", ":"), sort_keys=True)


def _keyed_difference(desired: list[Any], live: Any, path: str, key_fields: tuple[str, ...],
                      owned: Obj | None) -> str | None:
    if not isinstance(live, list):
        return path
    by_key = {item_key(item, key_fields): item for item in live}
    wanted = [item_key(item, key_fields) for item in desired]
    for index, (key, want) in enumerate(zip(wanted, desired, strict=True)):
        if key not in by_key:
            return f"{path}[{index}]"
        found = first_difference(want, by_key[key], f"{path}[{index}]",
                                 None if owned is None else owned.get(key) or {})
        if found is not None:
            return found
    for key in set(by_key) - set(wanted):  # an extra item matters only if it is ours
        if owned is None or key in owned:
            return f"{path}[{key[2:]}]"
    return None


def first_difference(desired: Any, live: Any, path: str = "", owned: Obj | None = None) -> str | None:
    """The first path where ``live`` does not hold what ``desired`` says, or None.

    Dict keys absent from ``desired`` are not ours and are ignored. Keyed lists (`MERGE_KEYS`)
    match items by key; an extra live item counts only when ``owned`` (our `fieldsV1` node at
    this path) says it is ours, or when ``owned`` is None (nothing known: every item counts).
    Other lists must have the same length and matching elements.
    """
    if isinstance(desired, dict):
        if not isinstance(live, dict):
            return path or "."
        for key in desired:
            sub = None if owned is None else owned.get(f"f:{key}") or {}
            where = f"{path}.{key}" if path else key
            if isinstance(desired[key], list) and key in MERGE_KEYS:
                found = _keyed_difference(desired[key], live.get(key), where, MERGE_KEYS[key], sub)
            else:
                found = first_difference(desired[key], live.get(key), where, sub)
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


def ours_to_compare(desired: Obj) -> Obj:
    """The parts of a rendered object we own and compare (replicas handled separately)."""
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


def _our_record(live: Obj) -> Obj | None:
    """Our `fieldsV1` on ``live``, or None when the object has no record of our applies."""
    fields = owned_fields(live)
    return fields or None


def hand_edits(desired: Obj, live: Obj) -> list[str]:
    """["edited by hand (<path> differs)"] when a field we own does not hold our value."""
    edited = first_difference(ours_to_compare(desired), live, owned=_our_record(live))
    return [] if edited is None else [f"edited by hand ({edited} differs)"]


def object_reasons(desired: Obj, live: Obj) -> list[str]:
    """Why a live non-Deployment object (HPA, PDB, ...) must be applied again (empty: it is not)."""
    live_hash, want = label_of(live, labels.CONFIG_SHA), label_of(desired, labels.CONFIG_SHA)
    if live_hash != want:
        return [f"config changed ({live_hash} -> {want})"]
    return hand_edits(desired, live)
