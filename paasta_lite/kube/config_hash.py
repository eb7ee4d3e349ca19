"""The config hash: one short string that says "this is the object we rendered".

Where it sits in the pipeline: `render` builds the whole Deployment manifest (a plain dict in the
API's camelCase JSON shape), calls `config_hash` once on the finished object, and only then writes
the result into the `paasta.yelp.com/config_sha` labels with `with_config_hash` (STYLE practice 6:
never hash mid-construction). The reconciler decides "unchanged" by comparing that label with the
live object's: a string comparison, no deep diff of server-defaulted fields.

What goes in, and why:
- everything we render, except `spec.replicas` (scaling must never bounce pods; the reconciler
  compares replicas separately) and the config-hash labels themselves (so the hash is a fixed
  point: hashing a finished object again gives the same value);
- `force_bounce` from deployments.json, appended like PaaSTA does, so `paasta restart` changes the
  hash (and so the pod template label) even when nothing else changed.

Stability: the input is canonical JSON (sorted keys, no whitespace, ASCII escapes), so the hash
does not depend on dict order, on the Kubernetes client's version (we never serialise its model
classes) or on the machine. Lists keep their order: the renderer sorts the lists whose order is
not meaningful (env, volumes). SHA-256 rather than PaaSTA's md5 (works on FIPS hosts); the
format is PaaSTA's: `config` + the first 8 hex characters.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from paasta_lite.kube.labels import CONFIG_SHA

PREFIX = "config"
HEX_LENGTH = 8

JsonDict = dict[str, Any]


def canonical_json(data: Any) -> str:
    """Deterministic JSON text: sorted keys, no whitespace, non-ASCII escaped.

    Raises TypeError for anything that is not plain JSON data (a bug in the caller: rendered
    objects are plain dicts, lists, strings, numbers, booleans and None).
    """
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _strip_metadata(metadata: Any) -> Any:
    """`metadata` minus the config-hash label (copies only what it changes)."""
    if not isinstance(metadata, dict) or not isinstance(metadata.get("labels"), dict):
        return metadata
    labels = {k: v for k, v in metadata["labels"].items() if k != CONFIG_SHA}
    return {**metadata, "labels": labels}


def hashable_view(manifest: Mapping[str, Any]) -> JsonDict:
    """`manifest` minus what the hash ignores (`spec.replicas`, config-hash labels).

    Copies only the dicts on the paths it changes; `manifest` itself is never modified.
    """
    view: JsonDict = dict(manifest)
    if "metadata" in view:
        view["metadata"] = _strip_metadata(view["metadata"])
    spec = view.get("spec")
    if isinstance(spec, dict):
        spec = {k: v for k, v in spec.items() if k != "replicas"}
        template = spec.get("template")
        if isinstance(template, dict) and "metadata" in template:
            spec["template"] = {**template, "metadata": _strip_metadata(template["metadata"])}
        view["spec"] = spec
    return view


def config_hash(manifest: Mapping[str, Any], *, force_bounce: str | None = None) -> str:
    """`config` + 8 hex chars of SHA-256 over the canonical hashable view plus `force_bounce`."""
    text = canonical_json(hashable_view(manifest)) + (force_bounce or "")
    return PREFIX + hashlib.sha256(text.encode("utf-8")).hexdigest()[:HEX_LENGTH]


def with_config_hash(manifest: Mapping[str, Any], value: str) -> JsonDict:
    """A copy of `manifest` with `value` in the config-hash label of the object and of its pod
    template (the only change after hashing). Shares unchanged parts with `manifest`."""
    result: JsonDict = dict(manifest)
    result["metadata"] = _with_label(result.get("metadata"), value)
    spec = result.get("spec")
    if isinstance(spec, dict) and isinstance(spec.get("template"), dict):
        template = spec["template"]
        template = {**template, "metadata": _with_label(template.get("metadata"), value)}
        result["spec"] = {**spec, "template": template}
    return result


def _with_label(metadata: Any, value: str) -> JsonDict:
    result: JsonDict = dict(metadata or {})
    result["labels"] = {**(result.get("labels") or {}), CONFIG_SHA: value}
    return result


def config_hash_label(manifest: Mapping[str, Any]) -> str | None:
    """The config hash recorded on a (live or rendered) object, if any."""
    labels = (manifest.get("metadata") or {}).get("labels") or {}
    value = labels.get(CONFIG_SHA)
    return value if isinstance(value, str) else None
