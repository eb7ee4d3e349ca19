"""Cheap change detection over the soa dir, and which service.instances a change affects.

Why: deployd must see a soa-config edit or a new deployments.json entry within a second or two,
but reloading 500 services every second would burn a core. A scan only `stat`s the files the
loader reads for this cluster (``service.yaml``, ``deploy.yaml``, ``kubernetes-<cluster>.yaml``,
``deployments.json``) of each service directory: about 2,000 stats for 2,000 instances. Two
snapshots of ``(mtime_ns, size)`` are diffed (pure) into the set of services whose files changed;
only those are reloaded, and `affected_instances` (pure) compares the old and new loaded configs
into the instances changed, added and removed, which are what gets queued.

Doubt never deletes: `take_snapshot` returns None for a soa dir that is missing, unreadable or
empty (the caller changes nothing), and a service whose files fail to load keeps its last
state (see `config_cache`). inotify would save the stats; the scan stays as the simple, portable
backstop (the periodic full resync is the backstop of the backstop).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from paasta_lite.config.naming import job_id
from paasta_lite.config.soa_config import INSTANCE_FILE_PREFIX, INSTANCE_FILE_SUFFIX, ServiceConfig, SoaDir
from paasta_lite.errors import ConfigError

#: (mtime_ns, size) of a file; None when the file does not exist.
Stamp = tuple[int, int]
ServiceStamps = tuple["Stamp | None", ...]
Snapshot = Mapping[str, ServiceStamps]
#: A file that exists but cannot be stat-ed (permissions): stable, so it is not "changed" every scan.
UNREADABLE: Stamp = (-1, -1)


def watched_files(cluster: str) -> tuple[str, ...]:
    """The files of a service directory that loading it for ``cluster`` reads."""
    return ("service.yaml", "deploy.yaml", f"{INSTANCE_FILE_PREFIX}{cluster}{INSTANCE_FILE_SUFFIX}",
            "deployments.json")


def stamp(path: Path) -> Stamp | None:
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None
    except OSError:
        return UNREADABLE
    return (info.st_mtime_ns, info.st_size)


def take_snapshot(soa_dir: str | os.PathLike[str], cluster: str) -> Snapshot | None:
    """Stamps of every service's watched files; None when the soa dir is missing, unreadable or
    empty: in doubt, a caller must act on nothing (and above all delete nothing)."""
    try:
        services = SoaDir(soa_dir).list_services()
    except ConfigError:
        return None
    if not services:
        return None
    root, files = Path(soa_dir), watched_files(cluster)
    return {name: tuple(stamp(root / name / file) for file in files) for name in services}


def changed_services(old: Snapshot | None, new: Snapshot) -> set[str]:
    """Services that appeared, vanished, or whose watched files changed (all of them if no ``old``)."""
    if old is None:
        return set(new)
    return {name for name in old.keys() | new.keys() if old.get(name) != new.get(name)}


# --------------------------------------------------------------------------- affected instances


@dataclass(frozen=True)
class Affected:
    """Job ids (``service.instance``) a change of one service touches."""

    changed: frozenset[str] = frozenset()
    added: frozenset[str] = frozenset()
    removed: frozenset[str] = frozenset()

    @property
    def all(self) -> frozenset[str]:
        return self.changed | self.added | self.removed


def _fingerprint(service: ServiceConfig, instance: str, cluster: str) -> tuple[Any, ...]:
    """Everything of one instance that rendering reads: its config (or its problems, when
    invalid), the version of its deploy group and its control (start/stop, force_bounce)."""
    config = service.instances.get(cluster, {}).get(instance)
    if config is None:
        error = service.invalid_instances.get(cluster, {}).get(instance)
        return ("invalid", tuple(str(problem) for problem in error.problems) if error else ())
    deployments = service.deployments
    if deployments is None:
        return ("valid", config, None, None)
    return ("valid", config, deployments.version_for(config.deploy_group),
            deployments.control_for(service.name, cluster, instance))


def affected_instances(old: ServiceConfig | None, new: ServiceConfig | None, cluster: str) -> Affected:
    """Compare two loads of one service: instances whose rendering inputs changed, that
    appeared, that are gone. ``new=None`` means the service is gone (the caller decides that
    only when it is sure: a service that fails to load is not gone)."""
    reference = new if new is not None else old
    if reference is None:
        return Affected()
    name = reference.name
    before = old.instance_names(cluster) if old is not None else frozenset()
    after = new.instance_names(cluster) if new is not None else frozenset()
    changed = {instance for instance in before & after
               if old is not None and new is not None
               and _fingerprint(old, instance, cluster) != _fingerprint(new, instance, cluster)}
    return Affected(
        changed=frozenset(job_id(name, instance) for instance in changed),
        added=frozenset(job_id(name, instance) for instance in after - before),
        removed=frozenset(job_id(name, instance) for instance in before - after),
    )


def job_ids(services: Mapping[str, ServiceConfig], cluster: str) -> set[str]:
    """Every configured job id (valid or invalid instances) of ``services`` on ``cluster``."""
    return {job_id(name, instance) for name, service in services.items()
            for instance in service.instance_names(cluster)}
