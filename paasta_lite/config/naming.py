"""The one place for names: job ids, Kubernetes names, and what a valid service/instance name is.

Every name produced here is one the real API server accepts: DNS-1123 labels of at most 63
characters. A name that would be longer is shortened with a stable hash suffix, so the same input
always gives the same name on every machine (PaaSTA lets 73-character namespaces through and the
API server refuses them).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Iterable

DNS_LABEL_MAX = 63
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
#: Service and instance names: lower case letters, digits, `_` and `-`; no dots (the job id
#: separator), no slashes (they are directory names).
_NAME = re.compile(r"^[a-z0-9]([a-z0-9_-]*[a-z0-9])?$")
NAMESPACE_PREFIX = "paastasvc-"
HASH_LENGTH = 8
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_VALUE_MAX = 63


def job_id(service: str, instance: str) -> str:
    """`service.instance`, the universal id of an instance."""
    return f"{service}.{instance}"


def split_job_id(value: str) -> tuple[str, str]:
    """Split `service.instance`; raise ValueError with a readable message otherwise."""
    parts = value.split(".")
    if len(parts) != 2 or not all(parts):
        raise ValueError(f"'{value}' is not of the form service.instance")
    return parts[0], parts[1]


def sanitise_name(name: str) -> str:
    """PaaSTA's sanitising: `_` becomes `--`, a leading `--` becomes `underscore-`, lower case."""
    sanitised = name.replace("_", "--")
    if sanitised.startswith("--"):
        sanitised = "underscore-" + sanitised[2:]
    return sanitised.lower()


def limit_with_hash(name: str, limit: int = DNS_LABEL_MAX) -> str:
    """Return `name` if it fits in `limit`, else a prefix plus a stable hash of the whole name."""
    if len(name) <= limit:
        return name
    digest = hashlib.sha256(name.encode("utf-8")).hexdigest()[:HASH_LENGTH]
    prefix = name[: limit - HASH_LENGTH - 1].rstrip("-")
    return f"{prefix}-{digest}"


def namespace_for(service: str) -> str:
    """The Kubernetes namespace of a service: `paastasvc-<sanitised service>`."""
    return limit_with_hash(NAMESPACE_PREFIX + sanitise_name(service))


def app_name(service: str, instance: str) -> str:
    """The Deployment name of a service.instance: `<sanitised service>-<sanitised instance>`."""
    return limit_with_hash(f"{sanitise_name(service)}-{sanitise_name(instance)}")


def app_name_collisions(service: str, instances: Iterable[str]) -> dict[str, list[str]]:
    """Deployment name -> the instances (two or more, sorted) that would all get it.

    Sanitising is not one-to-one (`main_1` and `main--1` both become `main--1`): such instances
    would overwrite each other's Deployment on every run, so the loader refuses them together.
    """
    by_name: dict[str, list[str]] = {}
    for instance in instances:
        by_name.setdefault(app_name(service, instance), []).append(instance)
    return {name: sorted(group) for name, group in sorted(by_name.items()) if len(group) > 1}


def container_name(instance: str) -> str:
    """The main container's name: the sanitised instance name."""
    return limit_with_hash(sanitise_name(instance))


def is_dns_label(value: str) -> bool:
    return len(value) <= DNS_LABEL_MAX and bool(_DNS_LABEL.match(value))


def _name_problem(kind: str, name: object) -> str | None:
    if not isinstance(name, str):
        return f"{kind} names must be text, got {type(name).__name__} {name!r}"
    if not name:
        return f"{kind} name is empty"
    if name in (".", "..") or "/" in name or "\\" in name:
        return f"{kind} name {name!r} looks like a path; use letters, digits, '-' and '_'"
    if len(name) > DNS_LABEL_MAX:
        return f"{kind} name {name!r} is {len(name)} characters long; the limit is {DNS_LABEL_MAX}"
    if name != name.lower() and _NAME.match(name.lower()):
        return f"{kind} name {name!r} must be lower case (try {name.lower()!r})"
    if "." in name:
        return f"{kind} name {name!r} must not contain '.' (it separates service and instance)"
    if not _NAME.match(name):
        return (
            f"{kind} name {name!r} may only contain lower case letters, digits, '-' and '_', "
            "and must start and end with a letter or digit"
        )
    return None


def service_name_problem(name: object) -> str | None:
    """Why `name` cannot be a service name (None if it can)."""
    return _name_problem("service", name)


def instance_name_problem(name: object) -> str | None:
    """Why `name` cannot be an instance name (None if it can)."""
    return _name_problem("instance", name)


def _short_digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]


def label_value(value: str) -> str:
    """`value` if the API server accepts it as a label value, else a cleaned form with a stable hash.

    Service and instance names are already valid (the loader checks them); this guards the
    free-form ones (deploy groups, image versions, git shas from a hand-edited deployments.json).
    """
    if len(value) <= _LABEL_VALUE_MAX and _LABEL_VALUE.match(value):
        return value
    cleaned = re.sub(r"[^A-Za-z0-9_.-]", "-", value).strip("-_.")
    suffix = _short_digest(value)
    head = cleaned[: _LABEL_VALUE_MAX - len(suffix) - 1].rstrip("-_.")
    return f"{head}-{suffix}" if head else suffix


def _readable_volume_name(host_path: str) -> str:
    """PaaSTA's `host--<path>` with `/` -> `slash-`, `.` -> `dot-`, sanitised to a DNS label."""
    text = host_path.rstrip("/").replace("/", "slash-").replace(".", "dot-")
    text = re.sub(r"[^a-z0-9-]", "-", sanitise_name(text)).strip("-")
    return limit_with_hash(f"host--{text}".rstrip("-"))


def volume_names(host_paths: Collection[str]) -> dict[str, str]:
    """host path -> pod volume name, unique within the pod and stable for the same set.

    The readable encoding can map two paths to one name (`/A` and `/a`, `/a_b` and `/a--b`);
    those paths get a hash of the exact host path instead, so no two volumes share a name.
    """
    readable = {path: _readable_volume_name(path) for path in host_paths}
    counts: dict[str, int] = {}
    for name in readable.values():
        counts[name] = counts.get(name, 0) + 1
    return {
        path: name if counts[name] == 1 else f"{limit_with_hash(name, 54).rstrip('-')}-{_short_digest(path)}"
        for path, name in readable.items()
    }
