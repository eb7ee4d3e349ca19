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

The soa hash (`soa_config_hash`, in the `paasta.yelp.com/soa_config_sha` annotation of the
Deployment): the same idea over the soa-configs side only (instance config, deployed version,
force_bounce), with no system config in it. `paasta status` run from a laptop cannot know the
cluster's system config (its own /etc/paasta may differ: other volumes, registry...), so it cannot
recompute the config hash; it can recompute this one and tell "soa-configs not applied yet" from
"applied". The annotation is written after hashing and `hashable_view` leaves it out, so adding
it changed no config hash (and restarted no pod).

Stability: the input is canonical JSON (sorted keys, no whitespace, ASCII escapes), so the hash
does not depend on dict order, on the Kubernetes client's version (we never serialise its model
classes) or on the machine. Lists keep their order: the renderer sorts the lists whose order is
not meaningful (env, volumes). SHA-256 rather than PaaSTA's md5 (works on FIPS hosts); the
format is PaaSTA's: `config` + the first 8 hex characters.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from paasta_lite.kube.labels import CONFIG_SHA, SOA_CONFIG_SHA

if TYPE_CHECKING:
    from paasta_lite.config.deployments_json import DeployedVersion
    from paasta_lite.config.instance_config import InstanceConfig

PREFIX = "config"
SOA_PREFIX = "soa"
HEX_LENGTH = 8
#: Instance fields the soa hash leaves out: `source` is a path on the machine that loaded the
#: soa-configs (a laptop's checkout is not the cluster's), and the replica counts only reach
#: `spec.replicas`, which the config hash ignores too (scaling is not a new configuration).
SOA_HASH_IGNORES = frozenset({"source", "instances", "min_instances", "max_instances"})
#: Instance fields whose order the renderer does not keep (it sorts volumes), sorted here too.
SOA_HASH_UNORDERED = frozenset({"extra_volumes"})

JsonDict = dict[str, Any]


def canonical_json(data: Any) -> str:
    """Deterministic JSON text: sorted keys, no whitespace, non-ASCII escaped.

    Raises TypeError for anything that is not plain JSON data (a bug in the caller: rendered
    objects are plain dicts, lists, strings, numbers, booleans and None).
    """
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _strip_metadata(metadata: Any) -> Any:
    """`metadata` minus the config-hash label and the soa-hash annotation (copies only what it
    changes; an annotations map left empty is dropped, as it was before the annotation existed)."""
    if not isinstance(metadata, dict):
        return metadata
    result = dict(metadata)
    if isinstance(metadata.get("labels"), dict):
        result["labels"] = {k: v for k, v in metadata["labels"].items() if k != CONFIG_SHA}
    if isinstance(metadata.get("annotations"), dict) and SOA_CONFIG_SHA in metadata["annotations"]:
        annotations = {k: v for k, v in metadata["annotations"].items() if k != SOA_CONFIG_SHA}
        if annotations:
            result["annotations"] = annotations
        else:
            del result["annotations"]
    return result


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


def _plain(value: Any) -> Any:
    """Instance-config values as JSON data: mappings, tuples and nested dataclasses unwrapped."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _non_default_fields(instance: InstanceConfig) -> dict[str, Any]:
    """The instance's fields that differ from their defaults, minus `SOA_HASH_IGNORES`.

    Leaving defaults out means a paasta_lite that learns a new key (with a default) hashes the
    existing configs exactly as before, so a newer client still agrees with an older reconciler.
    """
    found = {}
    for spec in dataclasses.fields(instance):
        if spec.name in SOA_HASH_IGNORES:
            continue
        value = _plain(getattr(instance, spec.name))
        if spec.default is not dataclasses.MISSING and value == _plain(spec.default):
            continue
        if spec.default_factory is not dataclasses.MISSING and value == _plain(spec.default_factory()):
            continue
        if spec.name in SOA_HASH_UNORDERED:
            value = sorted(value, key=canonical_json)
        found[spec.name] = value
    return found


def soa_config_hash(
    instance: InstanceConfig, version: DeployedVersion, *, force_bounce: str | None = None
) -> str:
    """`soa` + 8 hex chars of SHA-256 over the soa-configs inputs of one render.

    In it: the instance config's non-default fields (see `_non_default_fields`), whether it is
    autoscaled, the deployed version (image, git sha, image version) and `force_bounce`. Not in
    it: the system config, the replica counts and `desired_state` (stopping changes replicas
    only, as in the config hash). Every input is also an input of `config_hash`.
    """
    document = {
        "instance": _non_default_fields(instance),
        "autoscaled": instance.is_autoscaled,
        "version": _plain(version),
        "force_bounce": force_bounce,
    }
    return SOA_PREFIX + hashlib.sha256(canonical_json(document).encode("utf-8")).hexdigest()[:HEX_LENGTH]


def with_soa_config_hash(manifest: Mapping[str, Any], value: str) -> JsonDict:
    """A copy of `manifest` with `value` in the soa-hash annotation of the object itself (never
    of its pod template: a new pod-template annotation would replace every pod)."""
    result: JsonDict = dict(manifest)
    metadata: JsonDict = dict(result.get("metadata") or {})
    metadata["annotations"] = {**(metadata.get("annotations") or {}), SOA_CONFIG_SHA: value}
    result["metadata"] = metadata
    return result


def soa_config_hash_annotation(manifest: Mapping[str, Any]) -> str | None:
    """The soa hash recorded on a live Deployment, if the reconciler that applied it wrote one."""
    annotations = (manifest.get("metadata") or {}).get("annotations") or {}
    value = annotations.get(SOA_CONFIG_SHA)
    return value if isinstance(value, str) else None


def config_hash_label(manifest: Mapping[str, Any]) -> str | None:
    """The config hash recorded on a (live or rendered) object, if any."""
    labels = (manifest.get("metadata") or {}).get("labels") or {}
    value = labels.get(CONFIG_SHA)
    return value if isinstance(value, str) else None
