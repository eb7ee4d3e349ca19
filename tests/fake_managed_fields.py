"""Server-side apply and `managedFields` for the fake API server: a faithful subset, checked on v1.28.

What it models (enough for paasta_lite's writes; see `fake_apiserver.FakeCluster.apply`):
- field sets in the real `fieldsV1` shape: `f:<field>`, `k:{"name":"x"}` for items of keyed lists
  (containers, env, volumes, volumeMounts, ports, ...), `.` on list items; metadata labels,
  annotations and ownerReferences (whole items, keyed by uid) and everything outside
  metadata/status are tracked;
- an apply (`apply`) sets the applier's field set to exactly what it sent; a field another
  manager owns with a different value is a conflict (409 unless ``force``, which takes it over);
  fields the applier owned before, no longer sends, and nobody else owns are removed (so a
  Deployment whose `spec.replicas` only we owned falls back to the default, as on v1.28);
  keyed lists merge by key (other managers' items keep their place), other lists are replaced;
- every other write (`attribute`: POST, PUT, merge patch) gives the writer (``fieldManager`` or
  the User-Agent's product name, e.g. `OpenAPI-Generator`) an `Update` entry for the fields it
  changed and takes them from the others; a write that sends `managedFields` replaces them;
- the `/scale` subresource records no owner (what v1.28 does for the HPA's writes).
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone
from typing import Any

Obj = dict[str, Any]
Path = tuple[str, ...]

MERGE_KEYS: dict[str, tuple[str, ...]] = {
    "containers": ("name",), "initContainers": ("name",), "env": ("name",), "volumes": ("name",),
    "volumeMounts": ("mountPath",), "ports": ("containerPort", "protocol"), "imagePullSecrets": ("name",),
    "ownerReferences": ("uid",),
}
_DEFAULTS = {"protocol": "TCP"}
_MISSING = object()


class ApplyConflict(Exception):
    def __init__(self, conflicts: list[tuple[str, Path]], api_version: str) -> None:
        self.conflicts = conflicts
        self.api_version = api_version
        super().__init__(self.message)

    @property
    def message(self) -> str:
        shown = [(manager, dotted(path)) for manager, path in self.conflicts]
        if len(shown) == 1:
            manager, field = shown[0]
            return (f'Apply failed with 1 conflict: conflict with "{manager}" using {self.api_version}: '
                    f"{field}")
        lines = "".join(f'\n- conflict with "{manager}" using {self.api_version}: {field}'
                        for manager, field in shown)
        return f"Apply failed with {len(shown)} conflicts:{lines}"

    @property
    def causes(self) -> list[Obj]:
        return [{"reason": "FieldManagerConflict", "field": dotted(path),
                 "message": f'conflict with "{manager}" using {self.api_version}'}
                for manager, path in self.conflicts]


def dotted(path: Path) -> str:
    return "".join(f".{seg[2:]}" if seg.startswith("f:") else f"[{seg[2:]}]" for seg in path)


def item_key(item: Obj, fields: tuple[str, ...]) -> str:
    values = {f: item.get(f, _DEFAULTS.get(f)) for f in fields}
    return "k:" + json.dumps({k: v for k, v in values.items() if v is not None}, separators=(",", ":"),
                             sort_keys=True)


# --------------------------------------------------------------------------- field sets


def paths(obj: Obj | None) -> set[Path]:
    """Every tracked field path of ``obj`` (leaves and keyed-list items)."""
    found: set[Path] = set()
    if not obj:
        return found
    metadata = obj.get("metadata") or {}
    for group in ("labels", "annotations"):
        for key in metadata.get(group) or {}:
            found.add(("f:metadata", f"f:{group}", f"f:{key}"))
    for ref in metadata.get("ownerReferences") or []:  # owned as whole items, as v1.28 records them
        found.add(("f:metadata", "f:ownerReferences", item_key(ref, MERGE_KEYS["ownerReferences"])))
    for key, value in obj.items():
        if key not in ("apiVersion", "kind", "metadata", "status"):
            _walk(value, (f"f:{key}",), key, found)
    return found


def _walk(value: Any, prefix: Path, name: str, found: set[Path]) -> None:
    if isinstance(value, dict) and value:
        for key, sub in value.items():
            _walk(sub, (*prefix, f"f:{key}"), key, found)
    elif isinstance(value, list) and value and name in MERGE_KEYS and all(isinstance(i, dict) for i in value):
        for item in value:
            node = (*prefix, item_key(item, MERGE_KEYS[name]))
            found.add(node)
            for key, sub in item.items():
                _walk(sub, (*node, f"f:{key}"), key, found)
    else:
        found.add(prefix)


def to_fields_v1(field_paths: set[Path]) -> Obj:
    root: Obj = {}
    for path in sorted(field_paths):
        node = root
        for seg in path:
            node = node.setdefault(seg, {})
            if seg.startswith("k:"):
                node.setdefault(".", {})
    return root


def from_fields_v1(fields: Any, prefix: Path = ()) -> set[Path]:
    found: set[Path] = set()
    if not isinstance(fields, dict):
        return found
    for key, sub in fields.items():
        if key == ".":
            continue
        path = (*prefix, key)
        children = {k for k in (sub or {}) if k != "."} if isinstance(sub, dict) else set()
        if key.startswith("k:") or not children:
            found.add(path)
        found |= from_fields_v1(sub, path)
    return found


def value_at(obj: Any, path: Path) -> Any:
    node = obj
    for seg in path:
        if seg.startswith("f:"):
            node = node.get(seg[2:], _MISSING) if isinstance(node, dict) else _MISSING
        else:
            node = _find_item(node, seg)
        if node is _MISSING:
            return _MISSING
    return node


def _find_item(items: Any, key: str) -> Any:
    if not isinstance(items, list):
        return _MISSING
    wanted = json.loads(key[2:])
    for item in items:
        if isinstance(item, dict) and all(item.get(k, _DEFAULTS.get(k)) == v for k, v in wanted.items()):
            return item
    return _MISSING


def delete_at(obj: Obj, path: Path) -> None:
    """Remove the field (or list item) at ``path``, dropping dicts it leaves empty."""
    parents: list[tuple[Any, str]] = []
    node: Any = obj
    for seg in path[:-1]:
        parents.append((node, seg))
        node = node.get(seg[2:]) if seg.startswith("f:") and isinstance(node, dict) else _find_item(node, seg)
        if node is None or node is _MISSING:
            return
    last = path[-1]
    if last.startswith("f:") and isinstance(node, dict):
        node.pop(last[2:], None)
    elif isinstance(node, list):
        item = _find_item(node, last)
        if item is not _MISSING:
            node.remove(item)
    for parent, seg in reversed(parents):  # prune what became empty
        child = parent.get(seg[2:]) if seg.startswith("f:") and isinstance(parent, dict) else None
        if isinstance(child, (dict, list)) and not child and seg.startswith("f:"):
            parent.pop(seg[2:])
        else:
            break


# --------------------------------------------------------------------------- merging


def merge(live: Any, applied: Any, name: str = "") -> Any:
    """``applied`` over ``live``: dicts recursively, keyed lists by key, anything else replaced."""
    if isinstance(live, dict) and isinstance(applied, dict):
        result = dict(live)
        for key, value in applied.items():
            result[key] = merge(live.get(key), value, key)
        return result
    if isinstance(live, list) and isinstance(applied, list) and name in MERGE_KEYS:
        fields = MERGE_KEYS[name]
        applied_keys = [item_key(item, fields) for item in applied]
        live_by_key = {item_key(item, fields): item for item in live if isinstance(item, dict)}
        merged = [merge(live_by_key.get(key), item) for key, item in zip(applied_keys, applied, strict=True)]
        others = [item for item in live if item_key(item, fields) not in applied_keys]
        first = next((i for i, item in enumerate(live) if item_key(item, fields) in applied_keys), len(live))
        leading = [item for item in live[:first] if item in others]
        return leading + merged + [item for item in others if item not in leading]
    return copy.deepcopy(applied)


# --------------------------------------------------------------------------- entries


def _entries(obj: Obj | None) -> list[Obj]:
    return copy.deepcopy(((obj or {}).get("metadata") or {}).get("managedFields") or [])


def _sets(entries: list[Obj]) -> list[tuple[Obj, set[Path]]]:
    return [(entry, from_fields_v1(entry.get("fieldsV1"))) for entry in entries]


def _now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _store(pairs: list[tuple[Obj, set[Path]]], changed: set[int]) -> list[Obj]:
    result = []
    for index, (entry, owned) in enumerate(pairs):
        if not owned and not entry.get("subresource"):
            continue
        if index in changed:
            entry["fieldsV1"], entry["time"] = to_fields_v1(owned), _now()
        result.append(entry)
    return result


def _mine(pairs: list[tuple[Obj, set[Path]]], manager: str, operation: str, api_version: str) -> int:
    for index, (entry, _) in enumerate(pairs):
        if (entry.get("manager"), entry.get("operation"), entry.get("subresource")) == (
                manager, operation, None):
            return index
    pairs.append(({"manager": manager, "operation": operation, "apiVersion": api_version,
                   "fieldsType": "FieldsV1"}, set()))
    return len(pairs) - 1


def apply(live: Obj | None, body: Obj, *, manager: str, force: bool, api_version: str) -> Obj:
    """The object after ``manager`` applies ``body`` over ``live`` (None: a create), with its
    `managedFields`; raises `ApplyConflict`."""
    sent = paths(body)
    pairs = _sets(_entries(live))
    me = _mine(pairs, manager, "Apply", api_version)
    conflicts: list[tuple[str, Path]] = []
    for path in sorted(sent):
        if path[-1].startswith("k:") or value_at(live, path) == value_at(body, path):
            continue
        conflicts += [(str(entry.get("manager")), path) for index, (entry, owned) in enumerate(pairs)
                      if index != me and path in owned]
    if conflicts and not force:
        raise ApplyConflict(conflicts, api_version)
    changed = {me}
    for index, (_, owned) in enumerate(pairs):
        if index != me and owned & {path for _, path in conflicts}:
            owned -= {path for _, path in conflicts}
            changed.add(index)
    result = merge(copy.deepcopy(live) if live else {}, body)
    others = set().union(*(owned for index, (_, owned) in enumerate(pairs) if index != me))
    for path in sorted(pairs[me][1] - sent, key=len):  # a list item before its fields
        if not any(other[:len(path)] == path for other in others):
            delete_at(result, path)
    pairs[me] = (pairs[me][0], sent)
    result.setdefault("metadata", {})["managedFields"] = _store(pairs, changed)
    return result


def attribute(old: Obj | None, new: Obj, *, manager: str, api_version: str) -> list[Obj]:
    """`managedFields` after a non-apply write by ``manager`` turned ``old`` into ``new``."""
    sent_entries = (new.get("metadata") or {}).get("managedFields")
    base = copy.deepcopy(sent_entries) if sent_entries and sent_entries != _entries(old) else _entries(old)
    pairs = _sets(base)
    before, after = paths(old), paths(new)
    touched = {path for path in after if path not in before or value_at(old, path) != value_at(new, path)}
    gone = before - after
    changed: set[int] = set()
    for index, (_, owned) in enumerate(pairs):
        if owned & (touched | gone):
            owned -= touched | gone
            changed.add(index)
    if touched:
        me = _mine(pairs, manager, "Update", api_version)
        pairs[me][1].update(touched)
        changed.add(me)
    return _store(pairs, changed)
