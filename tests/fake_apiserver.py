"""A fake Kubernetes API server, over real HTTP, for testing Kubernetes-facing code.

Tests talk to it through the real `kubernetes` Python client (via `paasta_lite.kube.client`), so
URL building, query parameters, JSON bodies, status codes and error bodies are exercised for
real; nothing is patched. It holds Namespaces, Deployments, ReplicaSets, Pods, Events and pod
logs in memory and enforces what the real API server enforces for them:

- names: DNS-1123 label (namespaces, 63 chars) or subdomain (other objects, 253 chars); label
  keys (prefix/name, name part <= 63) and values (<= 63): 422 with a `Status` body whose message
  reads like the real one (``Namespace "X" is invalid: metadata.name: Invalid value: ...``);
- Deployments: selector required, must match the template labels, immutable on update;
  containers and images required; replicas >= 0; rolling-update percentages; quantities; requests
  <= limits;
- optimistic concurrency: PUT with a stale ``resourceVersion`` -> 409 Conflict; create of an
  existing object -> 409 AlreadyExists; 404 for missing objects and for creates in a missing
  namespace; ``generation`` bumped on spec changes (and, for Deployments, annotation changes, as
  v1.28 does); an update that changes nothing keeps its resourceVersion;
- label selectors (=, ==, !=, exists, !exists, in, notin) and field selectors (metadata.name,
  metadata.namespace, involvedObject.*, status.phase, spec.nodeName, reason, type) on lists;
- a garbage collector for ownerReferences, at once: deleting an owner deletes every object (any
  kind: ReplicaSets, Pods, HPAs, PDBs...) whose owners are then all gone, recursively; with
  ``propagationPolicy=Orphan``, or while another owner exists, the dependent only loses the
  reference. Deleting a namespace deletes everything in it. Deletion is immediate (no
  finalizers): Foreground and Background end the same; the policy asked for is recorded in
  ``deletions``. Delete preconditions (uid, resourceVersion) answer 409 with the real server's
  wording;
- server-side apply (``PATCH`` with ``application/apply-patch+yaml``) with `managedFields` per
  field manager, conflicts and ``force`` (see `fake_managed_fields`); every other write is
  attributed to its field manager too; the Deployment ``/scale`` subresource (PATCH merge,
  GET), which records no owner, as the HPA's writes on v1.28; an apply may set
  ``metadata.ownerReferences``, and a ``metadata.uid`` in it that is not the object's is refused
  with 422 "field is immutable", as v1.28 does;
- also Leases (coordination.k8s.io/v1), HorizontalPodAutoscalers (autoscaling/v2) and
  PodDisruptionBudgets (policy/v1): plain CRUD and apply, no spec validation.

Not a controller: nothing happens by itself. ``settle()`` plays the Deployment controller (and
kubelet) on demand, so tests decide exactly which state the cluster is in.

Test helpers: ``requests`` / ``count()`` / ``writes()`` / ``reset_counts()`` (request counting),
``fail_next()`` (with ``retry_after``) / ``delay_next()`` / ``before_next()`` (fault injection and
"something happens between plan and write"), ``latency`` (seconds added to every request, for
benchmarks), ``scale()``, ``put_object`` / ``get_object`` /
``list_objects`` / ``delete_object`` (direct seeding, no validation, not counted),
``append_log()``, ``add_event()``, ``settle()``; watch streams (``?watch=true``, see "watch
streams" below) with ``drop_watches()`` / ``expire_watches()`` / ``open_watches()``.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import json
import re
import socket
import threading
import time
import traceback
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import fake_managed_fields as managed_fields
import yaml

Obj = dict[str, Any]



#: Fields the real API server leaves out when they hold their zero value (Go `omitempty`).
OMITTED_WHEN_EMPTY = frozenset(
    {"minReadySeconds", "readOnly", "initialDelaySeconds", "args", "command", "value", "privileged"}
)
_BINARY = (("Ei", 2**60), ("Pi", 2**50), ("Ti", 2**40), ("Gi", 2**30), ("Mi", 2**20), ("Ki", 2**10))


def _canonical_quantity(value: Any) -> Any:
    """What the real server returns for a quantity: `1024Mi` -> `1Gi`, `1000m` -> `1`."""
    if not isinstance(value, str):
        return value
    if value.endswith("m") and value[:-1].isdigit() and int(value[:-1]) % 1000 == 0:
        return str(int(value[:-1]) // 1000)
    for suffix, factor in _BINARY[::-1]:
        if value.endswith(suffix) and value[: -len(suffix)].isdigit():
            number = int(value[: -len(suffix)]) * factor
            for bigger, big_factor in _BINARY:
                if number % big_factor == 0:
                    return f"{number // big_factor}{bigger}"
    return value


def as_served(obj: Any) -> Any:
    """Rewrite `obj` in place the way the real API server stores and returns it: zero-valued
    omitempty fields dropped, resource quantities in canonical form. Without this, a client that
    compares what it sent with what it reads back would pass here and flap on a real cluster."""
    if isinstance(obj, dict):
        for key in list(obj):
            value = obj[key]
            if key in OMITTED_WHEN_EMPTY and value in (0, False, "", []) and not isinstance(value, dict):
                del obj[key]
            elif key in ("requests", "limits") and isinstance(value, dict):
                obj[key] = {name: _canonical_quantity(v) for name, v in value.items()}
            else:
                as_served(value)
    elif isinstance(obj, list):
        for item in obj:
            as_served(item)
    return obj


@dataclass(frozen=True)


class Resource:
    plural: str
    kind: str
    api_version: str
    namespaced: bool
    group: str = ""
    has_generation: bool = False
    field_labels: frozenset[str] = frozenset({"metadata.name", "metadata.namespace"})

    @property
    def qualified(self) -> str:
        """`deployments.apps`, `pods`: how the real server names the resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def kind_qualified(self) -> str:
        """`Deployment.apps`, `Namespace`: the prefix of 422 messages."""
        return f"{self.kind}.{self.group}" if self.group else self.kind


RESOURCES: dict[str, Resource] = {
    "namespaces": Resource("namespaces", "Namespace", "v1", namespaced=False,
                           field_labels=frozenset({"metadata.name", "status.phase"})),
    "deployments": Resource("deployments", "Deployment", "apps/v1", True, "apps", has_generation=True),
    "replicasets": Resource("replicasets", "ReplicaSet", "apps/v1", True, "apps", has_generation=True),
    "pods": Resource("pods", "Pod", "v1", True, field_labels=frozenset(
        {"metadata.name", "metadata.namespace", "spec.nodeName", "status.phase", "spec.restartPolicy"})),
    "events": Resource("events", "Event", "v1", True, field_labels=frozenset(
        {"metadata.name", "metadata.namespace", "involvedObject.kind", "involvedObject.name",
         "involvedObject.namespace", "involvedObject.uid", "involvedObject.apiVersion",
         "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason", "source", "type"})),
    "leases": Resource("leases", "Lease", "coordination.k8s.io/v1", True, "coordination.k8s.io"),
    "horizontalpodautoscalers": Resource("horizontalpodautoscalers", "HorizontalPodAutoscaler",
                                         "autoscaling/v2", True, "autoscaling"),
    "poddisruptionbudgets": Resource("poddisruptionbudgets", "PodDisruptionBudget", "policy/v1", True,
                                     "policy", has_generation=True),
}

_ROUTES = [
    re.compile(r"^/api/v1/(?P<res>namespaces)(?:/(?P<name>[^/]+))?$"),
    re.compile(r"^/api/v1/namespaces/(?P<ns>[^/]+)/(?P<res>pods|events)"
               r"(?:/(?P<name>[^/]+)(?:/(?P<sub>log))?)?$"),
    re.compile(r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/(?P<res>deployments)/(?P<name>[^/]+)/(?P<sub>scale)$"),
    re.compile(r"^/apis/apps/v1/namespaces/(?P<ns>[^/]+)/(?P<res>deployments|replicasets)(?:/(?P<name>[^/]+))?$"),
    re.compile(r"^/api/v1/(?P<res>pods|events)$"),
    re.compile(r"^/apis/apps/v1/(?P<res>deployments|replicasets)$"),
    re.compile(r"^/apis/(?:coordination\.k8s\.io/v1|autoscaling/v2|policy/v1)/namespaces/(?P<ns>[^/]+)/"
               r"(?P<res>leases|horizontalpodautoscalers|poddisruptionbudgets)(?:/(?P<name>[^/]+))?$"),
    re.compile(r"^/apis/(?:coordination\.k8s\.io/v1|autoscaling/v2|policy/v1)/"
               r"(?P<res>leases|horizontalpodautoscalers|poddisruptionbudgets)$"),
]

_REASONS = {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
            405: "MethodNotAllowed", 409: "Conflict", 415: "UnsupportedMediaType", 422: "Invalid",
            429: "TooManyRequests", 500: "InternalError", 503: "ServiceUnavailable", 504: "Timeout"}

_HASH_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


class ApiError(Exception):
    """Raised inside request handling; becomes a `Status` response."""

    def __init__(self, code: int, message: str, *, reason: str | None = None,
                 details: Obj | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason or _REASONS.get(code, "Unknown")
        self.details = details


def status_body(code: int, message: str, reason: str, details: Obj | None = None) -> Obj:
    body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                 "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


def now_rfc3339() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def template_hash(template: Obj) -> str:
    """A stable pod-template-hash for a pod template (like the controller's, not byte-equal)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(_HASH_ALPHABET[b % len(_HASH_ALPHABET)] for b in digest[:10])


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    remaining: int
    status: int = 0
    message: str = ""
    retry_after: float | None = None
    delay: float = 0.0
    after: bool = False  # perform the request, then answer with the failure (a lost answer)
    action: Any = None  # called (with the FakeApiServer) before the request is handled


@dataclass
class _LogLine:
    at: datetime
    text: str


@dataclass
class FakeCluster:
    """The in-memory state and the REST semantics; `FakeApiServer` adds HTTP around it."""

    objects: dict[str, dict[tuple[str, str], Obj]] = field(
        default_factory=lambda: {name: {} for name in RESOURCES})
    logs: dict[tuple[str, str, str], list[_LogLine]] = field(default_factory=dict)
    requests: list[tuple[str, str, str]] = field(default_factory=list)
    deletions: list[tuple[str, str, str, str]] = field(default_factory=list)
    faults: list[_Fault] = field(default_factory=list)
    follow_linger: float = 0.5
    latency: float = 0.0
    lock: threading.RLock = field(default_factory=threading.RLock)
    changed: threading.Condition = field(init=False)
    watch_log: WatchLog = field(init=False)
    _rv: int = 1000
    _pod_counter: int = 0

    def __post_init__(self) -> None:
        self.watch_log = WatchLog(self)  # watch streams: see "watch streams" below
        self.changed = _RecordingCondition(self.lock, self.watch_log.record)

    # ----------------------------------------------------------------- bookkeeping helpers
    def next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _store(self, res: str) -> dict[tuple[str, str], Obj]:
        return self.objects[res]

    def _finish(self, res: Resource, obj: Obj, *, namespace: str) -> Obj:
        """Fill the fields the server owns on a new object."""
        as_served(obj)
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            meta["namespace"] = namespace
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", now_rfc3339())
        meta["resourceVersion"] = self.next_rv()
        if res.has_generation:
            meta.setdefault("generation", 1)
        obj["kind"], obj["apiVersion"] = res.kind, res.api_version
        if res.plural == "namespaces":
            obj.setdefault("spec", {"finalizers": ["kubernetes"]})
            obj["status"] = {"phase": "Active"}
        return obj

    def _namespace_must_exist(self, namespace: str) -> None:
        if ("", namespace) not in self.objects["namespaces"]:
            raise ApiError(404, f'namespaces "{namespace}" not found',
                           details={"name": namespace, "kind": "namespaces"})

    def _not_found(self, res: Resource, name: str) -> ApiError:
        details: Obj = {"name": name, "kind": res.plural}
        if res.group:
            details["group"] = res.group
        return ApiError(404, f'{res.qualified} "{name}" not found', details=details)

    def _invalid(self, res: Resource, name: str, problems: list[tuple[str, str]]) -> ApiError:
        texts = [text for _, text in problems]
        joined = texts[0] if len(texts) == 1 else "[" + ", ".join(texts) + "]"
        details: Obj = {"name": name, "kind": res.kind, "causes": [
            {"reason": "FieldValueInvalid", "message": text.split(": ", 1)[-1], "field": path}
            for path, text in problems]}
        if res.group:
            details["group"] = res.group
        return ApiError(422, f'{res.kind_qualified} "{name}" is invalid: {joined}', details=details)

    def _validate(self, res: Resource, obj: Obj, old: Obj | None) -> None:
        problems = metadata_problems(obj, namespace_like=res.plural == "namespaces")
        if res.plural == "deployments":
            problems += deployment_problems(obj)
            if old is not None:
                problems += selector_immutable_problem(old, obj)
        if any("quantities must match" in text for _, text in problems):
            raise ApiError(400, f'{res.kind} in version "{res.api_version.split("/")[-1]}" cannot be '
                                f"handled as a {res.kind}: quantities must match the regular expression "
                                "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
        if problems:
            raise self._invalid(res, str(obj.get("metadata", {}).get("name", "")), problems)

    # ----------------------------------------------------------------- REST verbs
    def list(self, res: Resource, namespace: str | None, query: dict[str, str]) -> Obj:
        if query.get("watch") in ("true", "1"):
            raise ApiError(400, "watch is not supported by the fake API server")
        try:
            labels = parse_label_selector(query.get("labelSelector", ""))
            fields = parse_field_selector(query.get("fieldSelector", ""), res.field_labels)
        except (LabelSelectorError, FieldSelectorError) as error:
            raise ApiError(400, str(error)) from error
        if namespace:
            self._namespace_must_exist(namespace)
        items = [copy.deepcopy(obj) for (ns, _), obj in sorted(self._store(res.plural).items())
                 if (namespace is None or ns == namespace)
                 and matches_labels(obj.get("metadata", {}).get("labels") or {}, labels)
                 and matches_fields(obj, fields)]
        for item in items:
            item.pop("kind", None)
            item.pop("apiVersion", None)
        return {"kind": f"{res.kind}List", "apiVersion": res.api_version,
                "metadata": {"resourceVersion": str(self._rv)}, "items": items}

    def get(self, res: Resource, namespace: str, name: str) -> Obj:
        obj = self._store(res.plural).get((namespace, name))
        if obj is None:
            raise self._not_found(res, name)
        return copy.deepcopy(obj)

    def create(self, res: Resource, namespace: str, body: Obj, manager: str = "unknown") -> Obj:
        meta = body.setdefault("metadata", {})
        if res.namespaced:
            if meta.get("namespace") not in (None, "", namespace):
                raise ApiError(400, "the namespace of the provided object does not match the "
                                    "namespace sent on the request")
            self._namespace_must_exist(namespace)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = meta["generateName"] + uuid.uuid4().hex[:5]
        for key in ("uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp"):
            meta.pop(key, None)
        if res.plural != "pods":
            body.pop("status", None)
        self._validate(res, body, None)
        key = (namespace if res.namespaced else "", meta["name"])
        if key in self._store(res.plural):
            details: Obj = {"name": meta["name"], "kind": res.plural}
            if res.group:
                details["group"] = res.group
            raise ApiError(409, f'{res.qualified} "{meta["name"]}" already exists',
                           reason="AlreadyExists", details=details)
        obj = self._finish(res, body, namespace=namespace)
        obj["metadata"]["managedFields"] = managed_fields.attribute(
            None, obj, manager=manager, api_version=res.api_version)
        self._store(res.plural)[key] = obj
        self.changed.notify_all()
        return copy.deepcopy(obj)

    def replace(self, res: Resource, namespace: str, name: str, body: Obj, manager: str = "unknown") -> Obj:
        old = self._store(res.plural).get((namespace, name))
        if old is None:
            raise self._not_found(res, name)
        meta = body.setdefault("metadata", {})
        if meta.get("name") not in (None, name):
            raise ApiError(400, f"the name of the object ({meta.get('name')}) does not match the "
                                f"name on the request ({name})")
        if meta.get("namespace") not in (None, "", namespace):
            raise ApiError(400, "the namespace of the provided object does not match the "
                                "namespace sent on the request")
        sent_rv = meta.get("resourceVersion")
        if sent_rv not in (None, "") and sent_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, f'Operation cannot be fulfilled on {res.qualified} "{name}": the '
                                "object has been modified; please apply your changes to the latest "
                                "version and try again", details={"name": name, "kind": res.plural})
        meta["name"] = name
        self._validate(res, body, old)
        body = as_served(copy.deepcopy(body))
        meta = body["metadata"]
        meta["managedFields"] = managed_fields.attribute(old, body, manager=manager,
                                                         api_version=res.api_version)
        new = self._merge_update(res, old, body)
        self._store(res.plural)[(namespace, name)] = new
        self.changed.notify_all()
        return copy.deepcopy(new)

    def _merge_update(self, res: Resource, old: Obj, body: Obj) -> Obj:
        new = as_served(copy.deepcopy(body))
        meta, old_meta = new["metadata"], old["metadata"]
        for key in ("uid", "creationTimestamp", "generation", "namespace", "deletionTimestamp"):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        if res.plural != "pods" and "status" in old:
            new["status"] = copy.deepcopy(old["status"])  # status is a subresource
        elif res.plural != "pods":
            new.pop("status", None)
        new["kind"], new["apiVersion"] = res.kind, res.api_version
        if res.has_generation and (new.get("spec") != old.get("spec") or (
                res.plural == "deployments"  # v1.28 counts annotation changes of Deployments too
                and meta.get("annotations") != old_meta.get("annotations"))):
            meta["generation"] = int(old_meta.get("generation", 1)) + 1
        meta["resourceVersion"] = old_meta["resourceVersion"]
        if new == old:
            return new  # a no-op update does not bump resourceVersion
        meta["resourceVersion"] = self.next_rv()
        return new

    def patch(self, res: Resource, namespace: str, name: str, body: Obj, content_type: str,
              manager: str = "unknown") -> Obj:
        if "merge-patch" not in content_type and "strategic-merge-patch" not in content_type:
            raise ApiError(415, f"the body of the request was in an unknown format - accepted media "
                                f"types include: application/merge-patch+json, "
                                f"application/strategic-merge-patch+json, application/apply-patch+yaml "
                                f"(got {content_type})")
        current = self.get(res, namespace, name)
        sent_rv = (body.get("metadata") or {}).get("resourceVersion")
        merged = _merge_patch(current, body)
        if not sent_rv:
            merged["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
        return self.replace(res, namespace, name, merged, manager)

    def apply(self, res: Resource, namespace: str, name: str, body: Obj, *, manager: str,
              force: bool) -> tuple[int, Obj]:
        """Server-side apply (see `fake_managed_fields`): 201 when it created the object."""
        meta = body.get("metadata") or {}
        if meta.get("name") != name:
            raise ApiError(400, f"the name of the object ({meta.get('name')}) does not match the name "
                                f"on the request ({name})")
        if meta.get("managedFields"):
            raise ApiError(400, "metadata.managedFields must be nil")
        old = self._store(res.plural).get((namespace if res.namespaced else "", name))
        sent_rv = meta.get("resourceVersion")
        if old is not None and sent_rv and sent_rv != old["metadata"]["resourceVersion"]:
            raise ApiError(409, f'Operation cannot be fulfilled on {res.qualified} "{name}": the '
                                "object has been modified; please apply your changes to the latest "
                                "version and try again", details={"name": name, "kind": res.plural})
        sent_uid = meta.get("uid")
        if old is not None and sent_uid and sent_uid != old["metadata"].get("uid"):
            raise self._invalid(res, name, [_invalid_value("metadata.uid", sent_uid, "field is immutable")])
        sent = as_served(copy.deepcopy(body))
        kept = ("name", "namespace", "labels", "annotations", "ownerReferences")
        sent["metadata"] = {k: v for k, v in sent["metadata"].items() if k in kept}
        try:
            result = managed_fields.apply(old, sent, manager=manager, force=force,
                                          api_version=res.api_version)
        except managed_fields.ApplyConflict as conflict:
            raise ApiError(409, conflict.message, details={"causes": conflict.causes}) from conflict
        if old is None:
            entries = result["metadata"].pop("managedFields")
            created = self.create(res, namespace, result, manager)
            stored = self._store(res.plural)[(namespace if res.namespaced else "", name)]
            stored["metadata"]["managedFields"] = entries
            return 201, {**created, "metadata": {**created["metadata"], "managedFields": entries}}
        result["metadata"]["resourceVersion"] = old["metadata"]["resourceVersion"]
        self._validate(res, result, old)
        new = self._merge_update(res, old, result)
        self._store(res.plural)[(namespace if res.namespaced else "", name)] = new
        self.changed.notify_all()
        return 200, copy.deepcopy(new)

    def scale(self, namespace: str, name: str, patch: Obj) -> Obj:
        """The Deployment `/scale` subresource: changes spec.replicas, records no field owner."""
        res = RESOURCES["deployments"]
        old = self._store("deployments").get((namespace, name))
        if old is None:
            raise self._not_found(res, name)
        replicas = ((patch.get("spec") or {}).get("replicas"))
        if replicas is not None:
            new = copy.deepcopy(old)
            new["spec"]["replicas"] = replicas
            self._store("deployments")[(namespace, name)] = self._merge_update(res, old, new)
        return self._scale_of(self._store("deployments")[(namespace, name)])

    def _scale_of(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        return {"kind": "Scale", "apiVersion": "autoscaling/v1",
                "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"],
                             "resourceVersion": meta["resourceVersion"]},
                "spec": {"replicas": obj["spec"].get("replicas", 1)},
                "status": {"replicas": (obj.get("status") or {}).get("replicas", 0)}}

    def delete(self, res: Resource, namespace: str, name: str, policy: str,
               preconditions: Obj | None = None) -> Obj:
        current = self._store(res.plural).get((namespace, name))
        if current is None:
            raise self._not_found(res, name)
        for key, label in (("uid", "UID"), ("resourceVersion", "ResourceVersion")):
            wanted = (preconditions or {}).get(key)
            if wanted and wanted != current["metadata"].get(key):
                details: Obj = {"name": name, "kind": res.kind}
                if res.group:
                    details["group"] = res.group
                hint = "deleted and then recreated" if key == "uid" else "modified"
                raise ApiError(409, f'Operation cannot be fulfilled on {res.kind_qualified} "{name}": the '
                                    f"{label} in the precondition ({wanted}) does not match the {label} in "
                                    f"record ({current['metadata'].get(key)}). The object might have been "
                                    f"{hint}", details=details)
        obj = self._store(res.plural).pop((namespace, name))
        self.deletions.append((res.plural, namespace, name, policy))
        if res.plural == "namespaces":
            self._delete_namespace_contents(name)
        else:
            self._collect_garbage(obj["metadata"]["uid"], orphan=policy == "Orphan")
        self.changed.notify_all()
        details: Obj = {"name": name, "kind": res.plural, "uid": obj["metadata"]["uid"]}
        if res.group:
            details["group"] = res.group
        return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": details}

    def _collect_garbage(self, owner_uid: str, *, orphan: bool) -> None:
        """The garbage collector, at once, after the owner ``owner_uid`` went: a dependent with
        no other owner that still exists is deleted (and its own dependents after it); one with
        another owner, or when ``orphan`` (propagationPolicy Orphan), only loses the reference.
        Foreground and Background end the same here; only the timing differs on a real server."""
        for plural, store in self.objects.items():
            for key, obj in list(store.items()):
                refs = obj.get("metadata", {}).get("ownerReferences") or []
                if not any(ref.get("uid") == owner_uid for ref in refs):
                    continue
                others = [ref for ref in refs if ref.get("uid") != owner_uid and self._exists(ref.get("uid"))]
                if orphan or others:
                    obj["metadata"]["ownerReferences"] = [ref for ref in refs if ref.get("uid") != owner_uid]
                    obj["metadata"]["resourceVersion"] = self.next_rv()
                    continue
                del store[key]
                self._collect_garbage(obj["metadata"]["uid"], orphan=False)
                self._drop_logs(plural, *key)

    def _exists(self, uid: Any) -> bool:
        return any(obj.get("metadata", {}).get("uid") == uid for store in self.objects.values()
                   for obj in store.values())

    def _delete_namespace_contents(self, namespace: str) -> None:
        for plural, store in self.objects.items():
            if plural != "namespaces":
                for key in [k for k in store if k[0] == namespace]:
                    del store[key]
        for key in [k for k in self.logs if k[0] == namespace]:
            del self.logs[key]

    def _drop_logs(self, plural: str, namespace: str, name: str) -> None:
        if plural == "pods":
            for key in [k for k in self.logs if k[:2] == (namespace, name)]:
                del self.logs[key]

    # ----------------------------------------------------------------- logs
    def log_container(self, namespace: str, pod_name: str, container: str | None) -> str:
        pod = self.get(RESOURCES["pods"], namespace, pod_name)
        names = [c.get("name", "") for c in pod.get("spec", {}).get("containers", [])]
        if container is None:
            if len(names) != 1:
                raise ApiError(400, f"a container name must be specified for pod {pod_name}, "
                                    f"choose one of: [{' '.join(names)}]")
            return names[0]
        if container not in names:
            raise ApiError(400, f"container {container} is not valid for pod {pod_name}")
        return container

    def log_lines(self, key: tuple[str, str, str], *, since_seconds: int | None,
                  tail_lines: int | None) -> list[_LogLine]:
        lines = list(self.logs.get(key, []))
        if since_seconds is not None:
            cutoff = datetime.now(timezone.utc) - timedelta(seconds=since_seconds)
            lines = [line for line in lines if line.at >= cutoff]
        if tail_lines is not None:
            lines = lines[-tail_lines:] if tail_lines > 0 else []
        return lines

    # ----------------------------------------------------------------- faults
    def take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self.faults:
            if fault.remaining > 0 and fault.method in (method, "*") and fault.path.search(path):
                fault.remaining -= 1
                return fault
        return None


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (strategic merge is approximated by it)."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def format_log_line(line: _LogLine, timestamps: bool) -> str:
    if not timestamps:
        return line.text + "\n"
    stamp = line.at.strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
    return f"{stamp} {line.text}\n"



# ===================================================================== validation rules
# Messages follow k8s.io/apimachinery/pkg/util/validation so tests can match real wording.

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_SUBDOMAIN = rf"{_LABEL}(\.{_LABEL})*"
_QUALIFIED = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?"
_PERCENT = r"[0-9]+%"
_QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?\d+)?$")

MSG_LABEL = ("a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
             "and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', "
             f"regex used for validation is '{_LABEL}')")
MSG_SUBDOMAIN = ("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
                 "'-' or '.', and must start and end with an alphanumeric character (e.g. "
                 f"'example.com', regex used for validation is '{_SUBDOMAIN}')")
MSG_QUALIFIED = ("name part must consist of alphanumeric characters, '-', '_' or '.', and must start "
                 "and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or "
                 f"'123-abc', regex used for validation is '{_QUALIFIED}')")
MSG_LABEL_VALUE = ("a valid label must be an empty string or consist of alphanumeric characters, '-', "
                   "'_' or '.', and must start and end with an alphanumeric character (e.g. "
                   f"'MyValue',  or 'my_value',  or '12345', regex used for validation is '{_LABEL_VALUE}')")

MSG_QUANTITY = "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'"
Problem = tuple[str, str]  # (field path, full "path: Invalid value: ...: why" text)


def _invalid_value(path: str, value: Any, why: str) -> Problem:
    shown = json.dumps(value) if isinstance(value, str) else str(value)
    return path, f"{path}: Invalid value: {shown}: {why}"


def dns_problems(path: str, name: str, *, label: bool) -> list[Problem]:
    limit, pattern, message = (63, _LABEL, MSG_LABEL) if label else (253, _SUBDOMAIN, MSG_SUBDOMAIN)
    problems = []
    if len(name) > limit:
        problems.append(_invalid_value(path, name, f"must be no more than {limit} characters"))
    if not re.fullmatch(pattern, name):
        problems.append(_invalid_value(path, name, message))
    return problems


def label_key_problems(path: str, key: str) -> list[Problem]:
    prefix, _, name = key.rpartition("/")
    problems = []
    if "/" in prefix or (not prefix and key.startswith("/")):
        return [_invalid_value(path, key, "a qualified name must consist of alphanumeric characters, "
                                          "'-', '_' or '.', with an optional DNS subdomain prefix and '/'")]
    if prefix:
        problems += [(p, t.replace(": a lowercase", ": prefix part a lowercase"))
                     for p, t in dns_problems(path, prefix, label=False)]
        problems = [(p, t.replace(json.dumps(prefix), json.dumps(key))) for p, t in problems]
    if not name:
        problems.append((path, f"{path}: Invalid value: {json.dumps(key)}: name part must be non-empty"))
    elif len(name) > 63:
        problems.append(_invalid_value(path, key, "name part must be no more than 63 characters"))
    if name and not re.fullmatch(_QUALIFIED, name):
        problems.append(_invalid_value(path, key, MSG_QUALIFIED))
    return problems


def label_value_problems(path: str, value: Any) -> list[Problem]:
    if not isinstance(value, str):
        return [_invalid_value(path, value, "label values must be strings")]
    problems = []
    if len(value) > 63:
        problems.append(_invalid_value(path, value, "must be no more than 63 characters"))
    if not re.fullmatch(_LABEL_VALUE, value):
        problems.append(_invalid_value(path, value, MSG_LABEL_VALUE))
    return problems


def labels_problems(path: str, labels: Any) -> list[Problem]:
    if labels is None:
        return []
    if not isinstance(labels, dict):
        return [_invalid_value(path, labels, "must be a map of strings")]
    problems: list[Problem] = []
    for key, value in labels.items():
        problems += label_key_problems(path, key) + label_value_problems(path, value)
    return problems


def metadata_problems(obj: Obj, *, namespace_like: bool) -> list[Problem]:
    meta = obj.get("metadata") or {}
    name = meta.get("name")
    if not name:
        return [("metadata.name", "metadata.name: Required value: name or generateName is required")]
    problems = dns_problems("metadata.name", str(name), label=namespace_like)
    return problems + labels_problems("metadata.labels", meta.get("labels"))


def go_map(labels: dict[str, Any]) -> str:
    return "map[string]string{" + ", ".join(f'"{k}":"{v}"' for k, v in sorted(labels.items())) + "}"


def go_selector(selector: Obj) -> str:
    expressions = selector.get("matchExpressions")
    shown = "[]v1.LabelSelectorRequirement(nil)" if not expressions else json.dumps(expressions)
    return (f"v1.LabelSelector{{MatchLabels:{go_map(selector.get('matchLabels') or {})}, "
            f"MatchExpressions:{shown}}}")


def _selector_requirements(selector: Obj) -> list[tuple[str, str, tuple[str, ...]]]:
    reqs = [(k, "=", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()]
    ops = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expr in selector.get("matchExpressions") or []:
        reqs.append((expr.get("key", ""), ops.get(expr.get("operator", ""), "?"),
                     tuple(expr.get("values") or ())))
    return reqs


def deployment_problems(obj: Obj) -> list[Problem]:
    """Spec checks the real API server makes for apps/v1 Deployments (the ones that matter here)."""
    spec = obj.get("spec") or {}
    problems: list[Problem] = []
    replicas = spec.get("replicas", 1)
    if not isinstance(replicas, int) or replicas < 0:
        problems.append(_invalid_value("spec.replicas", replicas, "must be greater than or equal to 0"))
    template = spec.get("template") or {}
    template_labels = (template.get("metadata") or {}).get("labels") or {}
    problems += labels_problems("spec.template.metadata.labels", template_labels)
    selector = spec.get("selector")
    if not selector:
        problems.append(("spec.selector", "spec.selector: Required value"))
    else:
        problems += labels_problems("spec.selector.matchLabels", selector.get("matchLabels"))
        requirements = _selector_requirements(selector)
        if not requirements:
            problems.append(_invalid_value("spec.selector", go_selector(selector),
                                           "empty selector is invalid for deployment"))
        elif not matches_labels(template_labels, requirements):
            problems.append(("spec.template.metadata.labels",
                             f"spec.template.metadata.labels: Invalid value: {go_map(template_labels)}: "
                             "`selector` does not match template `labels`"))
    problems += _containers_problems(template.get("spec") or {})
    problems += _strategy_problems(spec.get("strategy") or {})
    return problems


def _containers_problems(pod_spec: Obj) -> list[Problem]:
    containers = pod_spec.get("containers") or []
    if not containers:
        return [("spec.template.spec.containers", "spec.template.spec.containers: Required value")]
    problems: list[Problem] = []
    for index, container in enumerate(containers):
        path = f"spec.template.spec.containers[{index}]"
        name = container.get("name") or ""
        if not name:
            problems.append((f"{path}.name", f"{path}.name: Required value"))
        else:
            problems += dns_problems(f"{path}.name", name, label=True)
        if not container.get("image"):
            problems.append((f"{path}.image", f"{path}.image: Required value"))
        for probe_name in ("livenessProbe", "readinessProbe", "startupProbe"):
            probe = container.get(probe_name)
            if probe is not None:
                handlers = [h for h in ("httpGet", "tcpSocket", "exec", "grpc") if h in probe]
                if len(handlers) != 1:
                    why = "Required value: must specify a handler type" if not handlers else \
                        "Forbidden: may not specify more than 1 handler type"
                    problems.append((f"{path}.{probe_name}", f"{path}.{probe_name}: {why}"))
        problems += _resources_problems(f"{path}.resources", container.get("resources") or {})
    return problems


def quantity_value(value: Any) -> float | None:
    """A Kubernetes quantity as a number, None when the API server would refuse it."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str) or not _QUANTITY.match(value):
        return None
    suffixes = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "n": 1e-9,
                "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18}
    match = re.match(r"^([+-]?(?:\d+(?:\.\d*)?|\.\d+))(.*)$", value)
    assert match is not None
    number, suffix = float(match.group(1)), match.group(2)
    if suffix[:1] in ("e", "E"):
        return number * 10 ** int(suffix[1:])
    return number * suffixes.get(suffix, 1)


def _resources_problems(path: str, resources: Obj) -> list[Problem]:
    problems: list[Problem] = []
    values: dict[str, dict[str, float]] = {}
    for kind in ("requests", "limits"):
        for name, raw in (resources.get(kind) or {}).items():
            number = quantity_value(raw)
            if number is None:
                problems.append(_invalid_value(f"{path}.{kind}[{name}]", raw, MSG_QUANTITY))
            else:
                values.setdefault(kind, {})[name] = number
    for name, request in values.get("requests", {}).items():
        limit = values.get("limits", {}).get(name)
        if limit is not None and request > limit:
            raw = resources["requests"][name]
            problems.append(_invalid_value(f"{path}.requests", str(raw),
                                           f"must be less than or equal to {name} limit of "
                                           f"{resources['limits'][name]}"))
    return problems


def _intstr_percent(path: str, value: Any) -> tuple[list[Problem], float | None]:
    if isinstance(value, int) and not isinstance(value, bool):
        too_small = [_invalid_value(path, value, "must be greater than or equal to 0")]
        return (too_small if value < 0 else []), value
    if isinstance(value, str) and re.fullmatch(_PERCENT, value):
        percent = int(value[:-1])
        if percent > 100:
            return [_invalid_value(path, value, "must not be greater than 100%")], percent
        return [], percent
    return [_invalid_value(path, value, "a valid percent string must be a numeric string followed by an "
                                        f"ending '%' (e.g. '1%',  or '93%', regex used for validation is "
                                        f"'{_PERCENT}')")], None


def _strategy_problems(strategy: Obj) -> list[Problem]:
    kind = strategy.get("type", "RollingUpdate")
    path = "spec.strategy"
    if kind not in ("RollingUpdate", "Recreate"):
        return [(f"{path}.type", f'{path}.type: Unsupported value: "{kind}": supported values: '
                                 '"Recreate", "RollingUpdate"')]
    rolling = strategy.get("rollingUpdate")
    if kind == "Recreate":
        return [] if rolling is None else [(f"{path}.rollingUpdate", f"{path}.rollingUpdate: Forbidden: "
                                            "may not be specified when strategy `type` is 'Recreate'")]
    rolling = rolling or {}
    surge_problems, surge = _intstr_percent(f"{path}.rollingUpdate.maxSurge", rolling.get("maxSurge", "25%"))
    unavailable_problems, unavailable = _intstr_percent(
        f"{path}.rollingUpdate.maxUnavailable", rolling.get("maxUnavailable", "25%"))
    problems = surge_problems + unavailable_problems
    if surge == 0 and unavailable == 0:
        problems.append(_invalid_value(f"{path}.rollingUpdate.maxUnavailable", 0,
                                       "may not be 0 when `maxSurge` is 0"))
    return problems


def selector_immutable_problem(old: Obj, new: Obj) -> list[Problem]:
    old_selector = (old.get("spec") or {}).get("selector")
    new_selector = (new.get("spec") or {}).get("selector")
    if old_selector == new_selector or not new_selector:
        return []
    return [("spec.selector", f"spec.selector: Invalid value: {go_selector(new_selector)}: "
                              "field is immutable")]


# ===================================================================== selectors

class LabelSelectorError(ValueError):
    pass


class FieldSelectorError(ValueError):
    pass


Requirement = tuple[str, str, tuple[str, ...]]  # (key, op, values); op in = != exists ! in notin


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [part.strip() for part in parts if part.strip()]


def _parse_requirement(term: str) -> Requirement:
    set_match = re.fullmatch(r"(\S+)\s+(in|notin)\s*\(([^()]*)\)", term)
    if set_match:
        values = tuple(v.strip() for v in set_match.group(3).split(",") if v.strip())
        key, op = set_match.group(1), set_match.group(2)
    elif term.startswith("!"):
        key, op, values = term[1:].strip(), "!", ()
    else:
        eq_match = re.fullmatch(r"([^=!\s]+)\s*(==|=|!=)\s*(\S*)", term)
        if eq_match:
            key, op, values = eq_match.group(1), eq_match.group(2), (eq_match.group(3),)
            op = "=" if op == "==" else op
        elif re.fullmatch(r"[^=!\s(),]+", term):
            key, op, values = term, "exists", ()
        else:
            raise LabelSelectorError(f"unable to parse requirement: found '{term}', expected: "
                                     "'=', '!=', '==', 'in', notin'")
    problems = label_key_problems("key", key) + [p for v in values for p in label_value_problems("values", v)]
    if problems:
        raise LabelSelectorError(f"unable to parse requirement: {problems[0][1]}")
    return key, op, values


def parse_label_selector(text: str) -> list[Requirement]:
    """Parse a label selector string (`a=b,c!=d,e,!f,g in (x,y),h notin (z)`)."""
    return [_parse_requirement(term) for term in _split_top_level(text)]


def matches_labels(labels: dict[str, Any], requirements: list[Requirement]) -> bool:
    for key, op, values in requirements:
        present, value = key in labels, str(labels.get(key, ""))
        ok = {"=": present and value == (values[0] if values else ""),
              "!=": not present or value != (values[0] if values else ""),
              "exists": present, "!": not present,
              "in": present and value in values, "notin": not present or value not in values}.get(op, False)
        if not ok:
            return False
    return True


FieldRequirement = tuple[str, bool, str]  # (path, equal?, value)


def parse_field_selector(text: str, allowed: frozenset[str]) -> list[FieldRequirement]:
    requirements = []
    for term in _split_top_level(text):
        match = re.fullmatch(r"([^=!]+?)\s*(==|=|!=)\s*(.*)", term)
        if not match:
            raise FieldSelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        path = match.group(1).strip()
        if path not in allowed:
            raise FieldSelectorError(f"field label not supported: {path}")
        requirements.append((path, match.group(2) != "!=", match.group(3).strip()))
    return requirements


def field_value(obj: Obj, path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if path == "source" and isinstance(value, dict):
        value = value.get("component")
    return "" if value is None else str(value)


def matches_fields(obj: Obj, requirements: list[FieldRequirement]) -> bool:
    return all((field_value(obj, path) == value) == equal for path, equal, value in requirements)


# ===================================================================== HTTP

VERSION = {"major": "1", "minor": "30", "gitVersion": "v1.30.0-fake", "platform": "linux/amd64"}


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeApiServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # no 40 ms delayed-ACK stalls on keep-alive connections
    wbufsize = -1  # headers and body leave in one write; flushed after each request
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def handle(self) -> None:
        # The client went away (a watch it closed, a process killed): nothing left to answer.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().handle()

    def finish(self) -> None:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            super().finish()

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def _handle(self, method: str) -> None:
        cluster = self.server.fake.cluster
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with cluster.lock:
            cluster.requests.append((method, parts.path, parts.query))
            fault = cluster.take_fault(method, parts.path)
        if cluster.latency:
            time.sleep(cluster.latency)
        if fault is not None and fault.action is not None:
            fault.action(self.server.fake)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.status and fault.after:
            send, self._send_json = self._send_json, lambda *args, **kwargs: None  # type: ignore[method-assign]
            try:
                self._route(method, parts.path, query, raw)
            except ApiError:
                pass
            finally:
                self._send_json = send  # type: ignore[method-assign]
        if fault is not None and fault.status:
            error = ApiError(fault.status, fault.message or f"injected failure ({fault.status})")
            self._send_json(fault.status, status_body(error.code, error.message, error.reason),
                            retry_after=fault.retry_after)
            return
        try:
            self._route(method, parts.path, query, raw)
        except ApiError as error:
            self._send_json(error.code, status_body(error.code, error.message, error.reason, error.details))
        except (ValueError, TypeError, AttributeError) as error:  # undecodable or mis-shaped body
            self._send_json(400, status_body(400, f"the request body could not be decoded: {error}",
                                             "BadRequest"))
        except Exception as error:  # a bug in the fake: say so loudly instead of dropping the socket
            traceback.print_exc()
            self._send_json(500, status_body(500, f"fake apiserver bug: {error!r}", "InternalError"))

    def _route(self, method: str, path: str, query: dict[str, str], raw: bytes) -> None:
        if path == "/version" and method == "GET":
            self._send_json(200, VERSION)
            return
        match = next((m for m in (r.match(path) for r in _ROUTES) if m), None)
        if match is None:
            raise ApiError(404, "the server could not find the requested resource")
        groups = match.groupdict()
        res, ns, name = RESOURCES[groups["res"]], groups.get("ns"), groups.get("name")
        if method == "GET" and name is None and query.get("watch") in ("true", "1"):
            send_watch(self, res, ns, query)
            return
        if groups.get("sub") == "log":
            if method != "GET":
                raise ApiError(405, f"{method} is not supported on pods/log")
            self._send_log(ns or "", name, query)
            return
        content_type = self.headers.get("Content-Type", "")
        body = self._decode(raw, content_type)
        cluster = self.server.fake.cluster
        scope = ns if res.namespaced else ""
        with cluster.lock:
            if groups.get("sub") == "scale":
                if method not in ("GET", "PATCH"):
                    raise ApiError(405, f"{method} is not supported on deployments/scale by the fake")
                self._send_json(200, cluster.scale(ns or "", name or "", body if method == "PATCH" else {}))
                return
            code, result = self._dispatch(cluster, method, res, scope, ns, name, query, body)
        self._send_json(code, result)

    @staticmethod
    def _decode(raw: bytes, content_type: str) -> Obj:
        if not raw:
            return {}
        if "apply-patch+yaml" in content_type:
            data = yaml.safe_load(raw)
            if not isinstance(data, dict):
                raise ApiError(400, "the apply configuration must be an object")
            return data
        data = json.loads(raw)
        if not isinstance(data, dict):
            raise ApiError(400, "the request body must be a JSON object")
        return data

    def _manager(self, query: dict[str, str]) -> str:
        """The field manager: ?fieldManager=, else the User-Agent's product (as the real server)."""
        agent = self.headers.get("User-Agent") or "unknown"
        return query.get("fieldManager") or agent.split("/")[0] or "unknown"

    def _dispatch(self, cluster: FakeCluster, method: str, res: Resource, scope: str | None,
                  ns: str | None, name: str | None, query: dict[str, str], body: Obj) -> tuple[int, Obj]:
        if name is None:
            if method == "GET":
                return 200, cluster.list(res, ns if res.namespaced else None, query)
            if method == "POST" and (ns is not None or not res.namespaced):
                return 201, cluster.create(res, scope or "", body, self._manager(query))
        elif scope is not None:
            if method == "GET":
                return 200, cluster.get(res, scope, name)
            if method == "PUT":
                return 200, cluster.replace(res, scope, name, body, self._manager(query))
            content_type = self.headers.get("Content-Type", "")
            if method == "PATCH" and "apply-patch" in content_type:
                if not query.get("fieldManager"):
                    raise ApiError(422, "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required "
                                        "value: is required for apply patch")
                return cluster.apply(res, scope, name, body, manager=query["fieldManager"],
                                     force=query.get("force") == "true")
            if method == "PATCH":
                return 200, cluster.patch(res, scope, name, body, content_type, self._manager(query))
            if method == "DELETE":
                policy = body.get("propagationPolicy") or query.get("propagationPolicy") or "Background"
                if body.get("orphanDependents") is True or query.get("orphanDependents") == "true":
                    policy = "Orphan"
                return 200, cluster.delete(res, scope, name, policy, body.get("preconditions"))
        raise ApiError(405, f"{method} is not supported here")

    def _send_json(self, code: int, obj: Obj, *, retry_after: float | None = None) -> None:
        data = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if retry_after is not None:
            self.send_header("Retry-After", str(retry_after))
        self.end_headers()
        self.wfile.write(data)

    def _send_log(self, namespace: str, pod: str, query: dict[str, str]) -> None:
        cluster = self.server.fake.cluster
        with cluster.lock:
            container = cluster.log_container(namespace, pod, query.get("container"))
            key = (namespace, pod, container)
            lines = cluster.log_lines(
                key, since_seconds=int(query["sinceSeconds"]) if "sinceSeconds" in query else None,
                tail_lines=int(query["tailLines"]) if "tailLines" in query else None)
            position = len(cluster.logs.get(key, []))
        timestamps = query.get("timestamps") == "true"
        text = "".join(format_log_line(line, timestamps) for line in lines).encode()
        if query.get("follow") != "true":
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(text)))
            self.end_headers()
            self.wfile.write(text)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            self._write_chunk(text)
            self._follow(cluster, key, position, timestamps)
            self.wfile.write(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _follow(self, cluster: FakeCluster, key: tuple[str, str, str], position: int,
                timestamps: bool) -> None:
        """Stream lines appended after the request, until none came for `follow_linger` seconds."""
        deadline = time.monotonic() + cluster.follow_linger
        while True:
            with cluster.changed:
                stored = cluster.logs.get(key, [])
                new, position = stored[position:], len(stored)
                pod_exists = (key[0], key[1]) in cluster.objects["pods"]
                if not new and pod_exists and time.monotonic() < deadline:
                    cluster.changed.wait(timeout=max(0.0, deadline - time.monotonic()))
                    continue
            if not new:
                return
            self._write_chunk("".join(format_log_line(line, timestamps) for line in new).encode())
            deadline = time.monotonic() + cluster.follow_linger

    def _write_chunk(self, data: bytes) -> None:
        if data:
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()


# ===================================================================== watch streams
# `GET <collection>?watch=true` as the real API server streams it: chunked JSON lines
# {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": ...} from `resourceVersion` on (without
# one, or with "0": synthetic ADDED events for what exists, then changes); label selectors, with
# objects entering/leaving the selection as ADDED/DELETED; `allowWatchBookmarks`;
# `timeoutSeconds` ends the stream cleanly. A resourceVersion older than the kept history gets an
# ERROR event with code 410 ("too old resource version", reason Expired), as the real server sends
# it inside a 200 stream. Test controls: `drop_watches()` (abrupt disconnect), `expire_watches()`
# (compaction: 410), `open_watches()`, and `WatchLog.bookmark_interval`.
#
# Changes are found by diffing the store each time the cluster's `changed` condition is notified
# (every mutation path already does that), so no REST verb needed a hook.

#: Resources that can be watched (add a plural here to watch it).
WATCHABLE = ("deployments", "horizontalpodautoscalers", "poddisruptionbudgets")


@dataclass(frozen=True)
class _Change:
    rv: int
    plural: str
    type: str  # ADDED / MODIFIED / DELETED
    old: Obj | None
    new: Obj


class WatchLog:
    """The ordered history of changes to watchable resources, and the open streams' controls."""

    def __init__(self, cluster: FakeCluster, *, limit: int = 20000) -> None:
        self.cluster = cluster
        self.limit = limit
        self.changes: list[_Change] = []
        self.seen: dict[str, dict[tuple[str, str], Obj]] = {plural: {} for plural in WATCHABLE}
        self.oldest = 0  # a watch may resume from any resourceVersion >= this
        self.generation = 0  # bumped by drop(): open streams are cut
        self.expired = 0  # bumped by expire(): open streams get 410
        self.closed = False
        self.open_streams = 0
        self.bookmark_interval = 0.5
        self.default_timeout = 1800.0

    def record(self) -> None:
        """Append what changed since the last call (caller holds the cluster lock)."""
        found: list[_Change] = []
        for plural in WATCHABLE:
            store, seen = self.cluster.objects[plural], self.seen[plural]
            for key, obj in store.items():
                before = seen.get(key)
                rv = obj["metadata"]["resourceVersion"]
                if before is None or before["metadata"]["resourceVersion"] != rv:
                    now = copy.deepcopy(obj)
                    seen[key] = now
                    found.append(_Change(int(now["metadata"]["resourceVersion"]), plural,
                                         "ADDED" if before is None else "MODIFIED", before, now))
            for key in [key for key in seen if key not in store]:
                gone = seen.pop(key)
                gone["metadata"]["resourceVersion"] = self.cluster.next_rv()
                found.append(_Change(int(gone["metadata"]["resourceVersion"]), plural, "DELETED", gone, gone))
        self.changes.extend(sorted(found, key=lambda change: change.rv))
        if len(self.changes) > self.limit:
            dropped, self.changes = self.changes[: self.limit // 2], self.changes[self.limit // 2:]
            self.oldest = dropped[-1].rv

    def since(self, rv: int) -> list[_Change]:
        low, high = 0, len(self.changes)
        while low < high:
            middle = (low + high) // 2
            if self.changes[middle].rv <= rv:
                low = middle + 1
            else:
                high = middle
        return self.changes[low:]

    def drop(self) -> None:
        with self.cluster.lock:
            self.generation += 1
            self.cluster.changed.notify_all()

    def expire(self) -> None:
        with self.cluster.lock:
            self.changes.clear()
            self.oldest = self.cluster._rv
            self.expired += 1
            self.cluster.changed.notify_all()

    def close(self) -> None:
        with self.cluster.lock:
            self.closed = True
            self.generation += 1
            self.cluster.changed.notify_all()


class _RecordingCondition(threading.Condition):
    """The cluster's `changed` condition: records watch history before waking anyone."""

    def __init__(self, lock: threading.RLock, on_notify: Any) -> None:
        super().__init__(lock)
        self._on_notify = on_notify

    def notify_all(self) -> None:
        self._on_notify()
        super().notify_all()


def _watch_event(change: _Change, namespace: str | None, selector: list[Requirement]) -> Obj | None:
    """The event a watch with this namespace and selector sees for ``change`` (None: not its business)."""
    def selected(obj: Obj | None) -> bool:
        if obj is None:
            return False
        meta = obj.get("metadata") or {}
        return (namespace is None or meta.get("namespace") == namespace) and \
            matches_labels(meta.get("labels") or {}, selector)

    was, now = selected(change.old), selected(change.new)
    if change.type == "DELETED":
        kind = "DELETED" if was else None
    elif was and now:
        kind = "MODIFIED"
    else:
        kind = "ADDED" if now else ("DELETED" if was else None)
    return None if kind is None else {"type": kind, "object": copy.deepcopy(change.new)}


def send_watch(handler: _Handler, res: Resource, namespace: str | None, query: dict[str, str]) -> None:
    """Serve one watch request on ``handler`` until timeout, drop, expiry or server stop."""
    cluster = handler.server.fake.cluster
    log = cluster.watch_log
    if res.plural not in WATCHABLE:
        raise ApiError(405, f"watch is not supported by the fake API server for {res.plural}")
    try:
        selector = parse_label_selector(query.get("labelSelector", ""))
    except LabelSelectorError as error:
        raise ApiError(400, str(error)) from error
    deadline = time.monotonic() + float(query.get("timeoutSeconds") or log.default_timeout)
    bookmarks = query.get("allowWatchBookmarks") == "true"
    initial: list[Obj] = []
    with cluster.lock:
        log.record()
        start = query.get("resourceVersion") or "0"
        if start == "0":
            position = cluster._rv
            listed = cluster.list(res, namespace, {"labelSelector": query.get("labelSelector", "")})
            for obj in listed["items"]:
                obj.update(kind=res.kind, apiVersion=res.api_version)
                initial.append({"type": "ADDED", "object": obj})
        else:
            position = int(start)
        generation, expired = log.generation, log.expired
        log.open_streams += 1
    handler.send_response(200)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Transfer-Encoding", "chunked")
    handler.end_headers()
    handler.wfile.flush()  # the client returns from the request once it has the headers
    try:
        if position < log.oldest:
            _send_gone(handler, position, log.oldest)
            return
        _stream_events(handler, res, namespace, selector, initial, position, deadline=deadline,
                       bookmarks=bookmarks, generation=generation, expired=expired)
    except (BrokenPipeError, ConnectionResetError):
        handler.close_connection = True
    finally:
        with cluster.lock:
            log.open_streams -= 1


def _stream_events(handler: _Handler, res: Resource, namespace: str | None, selector: list[Requirement],
                   pending: list[Obj], position: int, *, deadline: float, bookmarks: bool,
                   generation: int, expired: int) -> None:
    cluster = handler.server.fake.cluster
    log = cluster.watch_log
    last_bookmark = time.monotonic()
    while True:
        _write_events(handler, pending)
        pending = []
        with cluster.changed:
            while True:
                if log.generation != generation:
                    _cut(handler)
                    return
                if log.expired != expired or position < log.oldest:
                    break
                changes = log.since(position)
                pending = [event for change in changes if change.plural == res.plural
                           for event in [_watch_event(change, namespace, selector)] if event]
                position = changes[-1].rv if changes else position
                now = time.monotonic()
                if pending or now >= deadline:
                    break
                if bookmarks and now - last_bookmark >= log.bookmark_interval:
                    position = max(position, cluster._rv)
                    pending = [{"type": "BOOKMARK", "object": {
                        "kind": res.kind, "apiVersion": res.api_version,
                        "metadata": {"resourceVersion": str(position)}}}]
                    last_bookmark = now
                    break
                cluster.changed.wait(min(deadline - now, log.bookmark_interval))
            gone = log.expired != expired or position < log.oldest
        if gone:
            _send_gone(handler, position, log.oldest)
            return
        if not pending:  # the server-side timeout
            handler.wfile.write(b"0\r\n\r\n")
            handler.wfile.flush()
            return


def _write_events(handler: _Handler, events: list[Obj]) -> None:
    if events:
        handler._write_chunk("".join(json.dumps(event) + "\n" for event in events).encode())


def _send_gone(handler: _Handler, position: int, oldest: int) -> None:
    status = status_body(410, f"too old resource version: {position} ({oldest})", "Expired")
    _write_events(handler, [{"type": "ERROR", "object": status}])
    handler.wfile.write(b"0\r\n\r\n")
    handler.wfile.flush()


def _cut(handler: _Handler) -> None:
    """Close the connection without ending the chunked body: the client sees a broken stream."""
    handler.close_connection = True
    with contextlib.suppress(OSError):
        handler.connection.shutdown(socket.SHUT_RDWR)
    handler.wfile = io.BytesIO()  # nothing more reaches the client (and closing does not complain)


# ===================================================================== the server and its helpers

class FakeApiServer:
    """A running fake API server on 127.0.0.1 (random port) plus helpers for tests.

    Use as a context manager, or `start()` / `stop()`. `url` is the server address to put in a
    kubeconfig (`write_kubeconfig(path)` does it). Direct helpers (`put_object`, `settle`, ...)
    change state without HTTP and are not counted in `requests`.
    """

    def __init__(self, *, follow_linger: float = 0.5, latency: float = 0.0) -> None:
        self.cluster = FakeCluster(follow_linger=follow_linger, latency=latency)
        self._httpd = _HTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.fake = self
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.02},
                                        name="fake-apiserver", daemon=True)

    # ----------------------------------------------------------------- lifecycle
    def start(self) -> FakeApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.cluster.watch_log.close()
        if self._thread.is_alive():
            self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    def kubeconfig(self, *, context: str = "fake") -> Obj:
        return {"apiVersion": "v1", "kind": "Config", "current-context": context,
                "clusters": [{"name": "fake", "cluster": {"server": self.url}}],
                "users": [{"name": "fake", "user": {"token": "fake-token"}}],
                "contexts": [{"name": context, "context": {"cluster": "fake", "user": "fake"}}]}

    def write_kubeconfig(self, path: Any, *, context: str = "fake") -> str:
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(self.kubeconfig(context=context), handle)  # JSON is valid YAML
        return str(path)

    # ----------------------------------------------------------------- request counting
    @property
    def requests(self) -> list[tuple[str, str]]:
        """Every request so far as (method, path), in order (query strings in `request_log`)."""
        with self.cluster.lock:
            return [(method, path) for method, path, _ in self.cluster.requests]

    @property
    def request_log(self) -> list[tuple[str, str, str]]:
        with self.cluster.lock:
            return list(self.cluster.requests)

    def count(self, method: str | None = None, path: str | None = None, query: str | None = None) -> int:
        """Requests matching ``method`` (exact), ``path`` and ``query`` (regexes, searched; e.g.
        ``query="fieldManager=paasta_lite(&|$)"`` for one field manager's writes)."""
        return sum(1 for m, p, q in self.request_log
                   if (method is None or m == method) and (path is None or re.search(path, p))
                   and (query is None or re.search(query, q)))

    def writes(self) -> list[tuple[str, str]]:
        """Every request that could change state (anything but GET)."""
        return [(m, p) for m, p in self.requests if m != "GET"]

    def app_requests(self) -> list[tuple[str, str]]:
        """`requests` without the run lock's Lease requests (`paasta_lite.kube.run_lock`)."""
        return [(m, p) for m, p in self.requests if "/leases" not in p]

    def app_writes(self) -> list[tuple[str, str]]:
        """`writes()` without the run lock's Lease requests."""
        return [(m, p) for m, p in self.app_requests() if m != "GET"]

    def reset_counts(self) -> None:
        with self.cluster.lock:
            self.cluster.requests.clear()

    @property
    def deletions(self) -> list[tuple[str, str, str, str]]:
        """(resource, namespace, name, propagationPolicy) for every API delete so far."""
        with self.cluster.lock:
            return list(self.cluster.deletions)

    # ----------------------------------------------------------------- fault injection
    def fail_next(self, method: str, path_regex: str, status: int, times: int = 1, *,
                  message: str | None = None, retry_after: float | None = None,
                  after_applying: bool = False) -> None:
        """Answer the next ``times`` matching requests (method or "*") with ``status``.

        The answer is a `Status` body with the usual reason for the code (409 Conflict, 429
        TooManyRequests, 500 InternalError...); the request is counted but not performed, unless
        ``after_applying``: then it is performed and only its answer is lost.
        """
        with self.cluster.lock:
            self.cluster.faults.append(_Fault(method, re.compile(path_regex), times, status=status,
                                              message=message or "", retry_after=retry_after,
                                              after=after_applying))

    def before_next(self, method: str, path_regex: str, action: Any, times: int = 1) -> None:
        """Call ``action(server)`` before handling the next ``times`` matching requests: another
        actor (an autoscaler, kubectl, a second run) changing things between read and write."""
        with self.cluster.lock:
            self.cluster.faults.append(_Fault(method, re.compile(path_regex), times, action=action))

    @property
    def latency(self) -> float:
        return self.cluster.latency

    @latency.setter
    def latency(self, seconds: float) -> None:
        """Seconds every request waits before it is handled (in parallel: like network + apiserver)."""
        self.cluster.latency = seconds

    def scale(self, namespace: str, name: str, replicas: int) -> Obj:
        """What the HPA controller does: set spec.replicas through /scale (no field owner), uncounted."""
        with self.cluster.lock:
            return self.cluster.scale(namespace, name, {"spec": {"replicas": replicas}})

    def delay_next(self, method: str, path_regex: str, seconds: float, times: int = 1) -> None:
        """Sleep ``seconds`` before answering the next ``times`` matching requests (timeouts)."""
        with self.cluster.lock:
            self.cluster.faults.append(_Fault(method, re.compile(path_regex), times, delay=seconds))

    # ----------------------------------------------------------------- watch streams
    def drop_watches(self) -> None:
        """Cut every open watch stream abruptly (a lost connection: no final chunk)."""
        self.cluster.watch_log.drop()

    def expire_watches(self) -> None:
        """Forget the change history (etcd compaction): open watches get an ERROR event with
        code 410 and end; a watch resuming from an older resourceVersion gets the same."""
        self.cluster.watch_log.expire()

    def open_watches(self) -> int:
        """How many watch streams are open right now."""
        with self.cluster.lock:
            return self.cluster.watch_log.open_streams

    # ----------------------------------------------------------------- direct state access
    def put_object(self, plural: str, obj: Obj, *, create_namespace: bool = True) -> Obj:
        """Store ``obj`` as is (no validation, not counted), filling uid/resourceVersion/etc.

        Replaces an existing object of the same name. For namespaced objects the namespace comes
        from ``metadata.namespace`` (default "default") and is created when missing.
        """
        res = RESOURCES[plural]
        obj = copy.deepcopy(obj)
        namespace = obj.setdefault("metadata", {}).get("namespace") or "default" if res.namespaced else ""
        with self.cluster.lock:
            missing = ("", namespace) not in self.cluster.objects["namespaces"]
            if res.namespaced and create_namespace and missing:
                self.put_object("namespaces", {"metadata": {"name": namespace}})
            stored = self.cluster._finish(res, obj, namespace=namespace)
            self.cluster.objects[plural][(namespace, stored["metadata"]["name"])] = stored
            self.cluster.changed.notify_all()
            return copy.deepcopy(stored)

    def get_object(self, plural: str, namespace: str | None, name: str) -> Obj | None:
        with self.cluster.lock:
            obj = self.cluster.objects[plural].get((namespace or "", name))
            return copy.deepcopy(obj) if obj is not None else None

    def list_objects(self, plural: str, namespace: str | None = None, label_selector: str = "") -> list[Obj]:
        requirements = parse_label_selector(label_selector)
        with self.cluster.lock:
            return [copy.deepcopy(obj) for (ns, _), obj in sorted(self.cluster.objects[plural].items())
                    if (namespace is None or ns == namespace)
                    and matches_labels(obj["metadata"].get("labels") or {}, requirements)]

    def delete_object(self, plural: str, namespace: str | None, name: str) -> None:
        """Delete like the API would (cascading), without counting a request."""
        with self.cluster.lock:
            self.cluster.delete(RESOURCES[plural], namespace or "", name, "Background")
            self.cluster.deletions.pop()

    def append_log(self, namespace: str, pod: str, lines: Iterable[str] | str, *,
                   container: str | None = None, at: datetime | None = None,
                   step: timedelta = timedelta(milliseconds=1)) -> None:
        """Add log lines to a pod's container (default: its only/first container).

        ``at`` is the first line's timestamp (default now); later lines are ``step`` apart.
        The pod need not exist yet (it must exist for the log endpoint to answer). Wakes any
        follower.
        """
        if isinstance(lines, str):
            lines = [lines]
        with self.cluster.lock:
            if container is None:
                pod_obj = self.cluster.objects["pods"].get((namespace, pod)) or {}
                containers = pod_obj.get("spec", {}).get("containers") or [{"name": pod}]
                container = containers[0].get("name", pod)
            start = at or datetime.now(timezone.utc)
            stored = self.cluster.logs.setdefault((namespace, pod, container), [])
            for index, text in enumerate(lines):
                stored.append(_LogLine(start + step * index, text))
            self.cluster.changed.notify_all()

    def add_event(self, namespace: str, *, involved_kind: str, involved_name: str, reason: str,
                  message: str, type: str = "Normal", count: int = 1,
                  at: datetime | None = None) -> Obj:
        """Store an Event about an object (as the controllers/kubelet would emit it)."""
        stamp = (at or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ")
        plural = {"Deployment": "deployments", "ReplicaSet": "replicasets", "Pod": "pods"}.get(involved_kind)
        target = self.get_object(plural, namespace, involved_name) if plural else None
        with self.cluster.lock:
            self.cluster._pod_counter += 1
            serial = self.cluster._pod_counter
        return self.put_object("events", {
            "metadata": {"name": f"{involved_name}.{serial:016x}", "namespace": namespace},
            "involvedObject": {"kind": involved_kind, "name": involved_name, "namespace": namespace,
                               "uid": (target or {}).get("metadata", {}).get("uid", "")},
            "reason": reason, "message": message, "type": type, "count": count,
            "firstTimestamp": stamp, "lastTimestamp": stamp, "source": {"component": "fake-controller"}})

    # ----------------------------------------------------------------- the Deployment controller
    def settle(self, namespace: str, name: str, *, ready: bool = True, ready_count: int | None = None,
               phase: str = "Running", waiting_reason: str | None = None, keep_old: bool = False,
               restart_count: int = 0, progress_deadline_exceeded: bool = False,
               ready_for: float | None = None) -> Obj:
        """Play the Deployment controller and kubelet once for one Deployment; return it.

        - Ensures a ReplicaSet ``<name>-<pod-template-hash>`` for the current pod template
          (labels = template labels + ``pod-template-hash``, ownerReference to the Deployment,
          ``spec.replicas`` = the Deployment's) and exactly that many pods
          ``<replicaset>-<suffix>`` owned by it, with the template's containers, on node
          ``fake-node``.
        - Pod state: ``phase``; the first ``ready_count`` new pods (default: all when ``ready``,
          none otherwise) are Ready with running containers; the others are not ready, with
          containers waiting for ``waiting_reason`` (default "ContainerCreating") — e.g.
          ``waiting_reason="CrashLoopBackOff", restart_count=5``. Calling settle again updates
          existing pods in place. A ready pod has been ready since its creation, or for
          ``ready_for`` seconds when given (its Ready condition's ``lastTransitionTime``).
        - Old ReplicaSets (other templates) are scaled to 0 and their pods removed (and, with
          ``revisionHistoryLimit: 0``, the ReplicaSets deleted) — unless ``keep_old=True``, which
          leaves them and their pods running: a bounce in progress.
        - Deployment ``status``: observedGeneration, replicas, updatedReplicas, readyReplicas,
          availableReplicas, unavailableReplicas (zero counts omitted, as the real API does) and
          conditions Available and Progressing (``ProgressDeadlineExceeded`` when
          ``progress_deadline_exceeded``). As in the real controller, a pod counts as available
          only once it has been ready for ``spec.minReadySeconds`` (ReplicaSet status too), and
          ``Available``/``Progressing`` follow the available count, not the ready one.
        - Changing a Deployment's spec through the API bumps ``metadata.generation`` and leaves
          ``status`` alone until the next settle: "not observed yet", as right after a real write.
        """
        with self.cluster.lock:
            deployment = self.cluster.objects["deployments"].get((namespace, name))
            if deployment is None:
                raise KeyError(f"no deployment {namespace}/{name} to settle")
            state = _PodState(ready, ready_count, phase, waiting_reason, restart_count, ready_for)
            _Controller(self.cluster, deployment).sync(state, keep_old=keep_old,
                                                       deadline_exceeded=progress_deadline_exceeded)
            self.cluster.changed.notify_all()
            return copy.deepcopy(deployment)

    def settle_all(self, **kwargs: Any) -> None:
        """`settle()` every Deployment with the same arguments."""
        for namespace, name in list(self.cluster.objects["deployments"]):
            self.settle(namespace, name, **kwargs)


@dataclass(frozen=True)
class _PodState:
    ready: bool
    ready_count: int | None
    phase: str
    waiting_reason: str | None
    restart_count: int
    ready_for: float | None = None


class _Controller:
    """One pass of the Deployment controller for one Deployment (see `FakeApiServer.settle`)."""

    def __init__(self, cluster: FakeCluster, deployment: Obj) -> None:
        self.cluster = cluster
        self.deployment = deployment
        self.namespace = deployment["metadata"]["namespace"]
        self.uid = deployment["metadata"]["uid"]

    def owned(self, plural: str, owner_uid: str) -> list[Obj]:
        return [obj for (ns, _), obj in sorted(self.cluster.objects[plural].items())
                if ns == self.namespace and any(ref.get("uid") == owner_uid
                                                for ref in obj["metadata"].get("ownerReferences") or [])]

    def sync(self, state: _PodState, *, keep_old: bool, deadline_exceeded: bool) -> None:
        spec = self.deployment.get("spec") or {}
        replicas = int(spec.get("replicas", 1))
        new_rs = self._ensure_replicaset(spec, replicas)
        self._sync_pods(new_rs, replicas, state)
        for old_rs in self.owned("replicasets", self.uid):
            if old_rs is not new_rs and not keep_old:
                old_rs["spec"]["replicas"] = 0
                for pod in self.owned("pods", old_rs["metadata"]["uid"]):
                    self.cluster.objects["pods"].pop((self.namespace, pod["metadata"]["name"]), None)
                    self.cluster._drop_logs("pods", self.namespace, pod["metadata"]["name"])
                if spec.get("revisionHistoryLimit") == 0:
                    self.cluster.objects["replicasets"].pop((self.namespace, old_rs["metadata"]["name"]))
        for rs in self.owned("replicasets", self.uid):
            self._replicaset_status(rs)
        self._deployment_status(new_rs, replicas, deadline_exceeded)

    def _ensure_replicaset(self, spec: Obj, replicas: int) -> Obj:
        template = copy.deepcopy(spec.get("template") or {})
        pod_hash = template_hash(template)
        rs_name = f"{self.deployment['metadata']['name']}-{pod_hash}"
        existing = self.cluster.objects["replicasets"].get((self.namespace, rs_name))
        if existing is not None:
            existing["spec"]["replicas"] = replicas
            existing["metadata"]["resourceVersion"] = self.cluster.next_rv()
            return existing
        revisions = [int(rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", 0))
                     for rs in self.owned("replicasets", self.uid)]
        labels = {**(template.get("metadata") or {}).get("labels", {}), "pod-template-hash": pod_hash}
        template.setdefault("metadata", {})["labels"] = labels
        selector = copy.deepcopy(spec.get("selector") or {})
        selector.setdefault("matchLabels", {})["pod-template-hash"] = pod_hash
        rs = {"metadata": {
            "name": rs_name, "namespace": self.namespace, "labels": labels,
            "annotations": {"deployment.kubernetes.io/revision": str(max(revisions, default=0) + 1)},
            "ownerReferences": [self._owner_ref(self.deployment, "Deployment")]},
            "spec": {"replicas": replicas, "selector": selector, "template": template}}
        self.cluster._finish(RESOURCES["replicasets"], rs, namespace=self.namespace)
        self.cluster.objects["replicasets"][(self.namespace, rs_name)] = rs
        return rs

    @staticmethod
    def _owner_ref(owner: Obj, kind: str) -> Obj:
        return {"apiVersion": "apps/v1", "kind": kind, "name": owner["metadata"]["name"],
                "uid": owner["metadata"]["uid"], "controller": True, "blockOwnerDeletion": True}

    def _sync_pods(self, rs: Obj, replicas: int, state: _PodState) -> None:
        pods = self.owned("pods", rs["metadata"]["uid"])
        for pod in pods[replicas:]:
            self.cluster.objects["pods"].pop((self.namespace, pod["metadata"]["name"]), None)
        pods = pods[:replicas]
        while len(pods) < replicas:
            pods.append(self._new_pod(rs))
        ready_count = state.ready_count if state.ready_count is not None else (replicas if state.ready else 0)
        for index, pod in enumerate(pods):
            pod["status"] = _pod_status(pod, state, ready=index < ready_count)
            pod["metadata"]["resourceVersion"] = self.cluster.next_rv()

    def _new_pod(self, rs: Obj) -> Obj:
        self.cluster._pod_counter += 1
        suffix = template_hash({"n": self.cluster._pod_counter, "rs": rs["metadata"]["name"]})[:5]
        template = copy.deepcopy(rs["spec"]["template"])
        pod = {"metadata": {**template.get("metadata", {}), "name": f"{rs['metadata']['name']}-{suffix}",
                            "namespace": self.namespace,
                            "ownerReferences": [self._owner_ref(rs, "ReplicaSet")]},
               "spec": {**template.get("spec", {}), "nodeName": "fake-node"}}
        self.cluster._finish(RESOURCES["pods"], pod, namespace=self.namespace)
        self.cluster.objects["pods"][(self.namespace, pod["metadata"]["name"])] = pod
        return pod

    @property
    def min_ready_seconds(self) -> int:
        return int((self.deployment.get("spec") or {}).get("minReadySeconds") or 0)

    def _available(self, pods: list[Obj]) -> int:
        return sum(1 for pod in pods if _pod_available(pod, self.min_ready_seconds))

    def _replicaset_status(self, rs: Obj) -> None:
        pods = self.owned("pods", rs["metadata"]["uid"])
        ready = sum(1 for pod in pods if _pod_ready(pod))
        rs["status"] = _without_zeros({"replicas": len(pods), "fullyLabeledReplicas": len(pods),
                                       "readyReplicas": ready, "availableReplicas": self._available(pods),
                                       "observedGeneration": rs["metadata"].get("generation", 1)})
        rs["status"].setdefault("replicas", 0)

    def _deployment_status(self, new_rs: Obj, replicas: int, deadline_exceeded: bool) -> None:
        all_pods = [pod for rs in self.owned("replicasets", self.uid)
                    for pod in self.owned("pods", rs["metadata"]["uid"])]
        updated = len(self.owned("pods", new_rs["metadata"]["uid"]))
        ready = sum(1 for pod in all_pods if _pod_ready(pod))
        available = self._available(all_pods)
        updated_available = self._available(self.owned("pods", new_rs["metadata"]["uid"]))
        max_unavailable = _max_unavailable(self.deployment.get("spec") or {}, replicas)
        rs_name = new_rs["metadata"]["name"]
        complete = updated == replicas and updated_available == replicas and len(all_pods) == replicas
        if deadline_exceeded:
            progressing = ("False", "ProgressDeadlineExceeded",
                           f'ReplicaSet "{rs_name}" has timed out progressing.')
        elif complete:
            progressing = ("True", "NewReplicaSetAvailable",
                           f'ReplicaSet "{rs_name}" has successfully progressed.')
        else:
            progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{rs_name}" is progressing.')
        enough = available >= replicas - max_unavailable
        stamp = now_rfc3339()
        conditions = [
            {"type": "Available", "status": "True" if enough else "False",
             "reason": "MinimumReplicasAvailable" if enough else "MinimumReplicasUnavailable",
             "message": "Deployment has minimum availability." if enough
             else "Deployment does not have minimum availability.",
             "lastUpdateTime": stamp, "lastTransitionTime": stamp},
            {"type": "Progressing", "status": progressing[0], "reason": progressing[1],
             "message": progressing[2], "lastUpdateTime": stamp, "lastTransitionTime": stamp}]
        status = _without_zeros({"observedGeneration": self.deployment["metadata"].get("generation", 1),
                                 "replicas": len(all_pods), "updatedReplicas": updated,
                                 "readyReplicas": ready, "availableReplicas": available,
                                 "unavailableReplicas": max(0, len(all_pods) - available)})
        status["conditions"] = conditions
        self.deployment["status"] = status
        self.deployment["metadata"]["resourceVersion"] = self.cluster.next_rv()


def _without_zeros(values: dict[str, int]) -> Obj:
    return {key: value for key, value in values.items() if value}


def _max_unavailable(spec: Obj, replicas: int) -> int:
    strategy = spec.get("strategy") or {}
    if strategy.get("type") == "Recreate":
        return replicas
    value = (strategy.get("rollingUpdate") or {}).get("maxUnavailable", "25%")
    if isinstance(value, str) and value.endswith("%"):
        return int(replicas * int(value[:-1]) / 100)  # the controller rounds maxUnavailable down
    return int(value)


def _pod_ready(pod: Obj) -> bool:
    return any(c.get("type") == "Ready" and c.get("status") == "True"
               for c in pod.get("status", {}).get("conditions", []))


def _pod_available(pod: Obj, min_ready_seconds: int) -> bool:
    """Ready for at least `min_ready_seconds` (by its Ready condition's lastTransitionTime)."""
    if not _pod_ready(pod):
        return False
    if min_ready_seconds <= 0:
        return True
    since = next(c["lastTransitionTime"] for c in pod["status"]["conditions"] if c.get("type") == "Ready")
    ready_at = datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    return datetime.now(timezone.utc) - ready_at >= timedelta(seconds=min_ready_seconds)


def _pod_status(pod: Obj, state: _PodState, *, ready: bool) -> Obj:
    stamp = pod["metadata"].get("creationTimestamp") or now_rfc3339()
    flag = "True" if ready else "False"
    if ready and state.ready_for is not None:
        ready_at = datetime.now(timezone.utc) - timedelta(seconds=state.ready_for)
        ready_since = ready_at.strftime("%Y-%m-%dT%H:%M:%SZ")
    else:
        ready_since = stamp
    statuses = []
    for container in pod.get("spec", {}).get("containers", []):
        if ready or (state.phase == "Running" and state.waiting_reason is None):
            container_state: Obj = {"running": {"startedAt": stamp}}
        else:
            reason = state.waiting_reason or "ContainerCreating"
            container_state = {"waiting": {"reason": reason, "message": f"fake: {reason}"}}
        statuses.append({"name": container.get("name", ""), "image": container.get("image", ""),
                         "imageID": "", "ready": ready, "started": "running" in container_state,
                         "restartCount": state.restart_count, "state": container_state})
    return {"phase": state.phase, "hostIP": "10.0.0.1", "podIP": "10.1.0.1", "startTime": stamp,
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": stamp},
                           {"type": "Ready", "status": flag, "lastTransitionTime": ready_since},
                           {"type": "ContainersReady", "status": flag, "lastTransitionTime": stamp}],
            "containerStatuses": statuses}
