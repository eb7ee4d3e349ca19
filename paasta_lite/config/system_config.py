"""The system config: every `*.json` under `PAASTA_SYSTEM_CONFIG_DIR` (default `/etc/paasta`).

Merge rule (documented in the README): files are read in sorted order of their path relative to
the directory (subdirectories included) and deep-merged; when two files set the same leaf key, the
file that sorts later wins, and `overrides` records which key was overridden by which file. PaaSTA
raises on such duplicates while its docs say "last wins"; we chose "last wins" because it lets an
operator drop a `zz-local.json` to override one key, and we keep the record so nothing is silent.

Read once at the edge (`load_system_config`) and passed down as a frozen `SystemConfig`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from paasta_lite.config.files import load_json_file
from paasta_lite.config.merge import deep_merge, overridden_leaves
from paasta_lite.config.validation import schema_problems
from paasta_lite.config.volumes import Volume, parse_volume
from paasta_lite.errors import ConfigError, NotConfiguredError, Problem

SYSTEM_CONFIG_DIR_ENV = "PAASTA_SYSTEM_CONFIG_DIR"
DEFAULT_SYSTEM_CONFIG_DIR = "/etc/paasta"
DEFAULT_LOG_WRITER: Mapping[str, Any] = MappingProxyType({"driver": "file", "options": {}})
#: PaaSTA's defaults for every instance's PodDisruptionBudget (`pdb_max_unavailable` 0 blocks
#: voluntary evictions, e.g. node drains, until an operator raises it).
DEFAULT_PDB_MAX_UNAVAILABLE = 0
DEFAULT_UNHEALTHY_POD_EVICTION_POLICY = "IfHealthyBudget"


@dataclass(frozen=True)
class SystemConfig:
    """Typed view of the merged system config; `raw` keeps every key for later extensions."""

    directory: str
    cluster: str | None = None
    clusters: tuple[str, ...] = ()
    api_endpoints: Mapping[str, str] = field(default_factory=dict)
    docker_registry: str | None = None
    volumes: tuple[Volume, ...] = ()
    log_writer: Mapping[str, Any] = field(default_factory=lambda: DEFAULT_LOG_WRITER)
    default_bounce_overprovision_factor: float = 1.0
    api_client_timeout: float = 30.0
    #: the PDB's `maxUnavailable` (pods or "N%") for instances without `bounce_margin_factor`
    pdb_max_unavailable: int | str = DEFAULT_PDB_MAX_UNAVAILABLE
    unhealthy_pod_eviction_policy: str = DEFAULT_UNHEALTHY_POD_EVICTION_POLICY
    raw: Mapping[str, Any] = field(default_factory=dict)
    #: top-level key -> the file it came from (the last one that set it)
    sources: Mapping[str, str] = field(default_factory=dict)
    #: "key.path (file_a overridden by file_b)" notes for leaves set by more than one file
    overrides: tuple[str, ...] = ()

    def require_cluster(self, override: str | None = None) -> str:
        """The cluster to act on: the `-c` flag if given, else the `cluster` key."""
        if override:
            return override
        if not self.cluster:
            raise NotConfiguredError(
                "no cluster given: pass -c/--cluster or set \"cluster\" in a *.json file under "
                f"{self.directory}"
            )
        return self.cluster

    def require_docker_registry(self, service_registry: str | None = None) -> str:
        """service.yaml's `docker_registry` if set, else the system one."""
        registry = service_registry or self.docker_registry
        if not registry:
            raise NotConfiguredError(
                f"no docker_registry: set \"docker_registry\" in a *.json file under {self.directory} "
                "(or in the service's service.yaml)"
            )
        return registry


def parse_system_config(files: Sequence[tuple[str, Any]], directory: str) -> SystemConfig:
    """Merge and validate already-parsed files, given as (path, content) in merge order."""
    merged: dict[str, Any] = {}
    sources: dict[str, str] = {}
    overrides: list[str] = []
    problems: list[Problem] = []
    for path, content in files:
        if not isinstance(content, dict):
            problems.append(Problem(path, "must contain a JSON object at the top level"))
            continue
        for leaf in overridden_leaves(merged, content):
            overrides.append(f"{leaf} ({sources.get(leaf.split('.')[0], '?')} overridden by {path})")
        merged = deep_merge(merged, content)
        for key in content:
            sources[key] = path
    for problem in schema_problems("system_config", merged, path=directory):
        top = (problem.field or "").split(".")[0].split("[")[0]
        problems.append(Problem(sources.get(top, directory), problem.message, field=problem.field))
    if problems:
        raise ConfigError(problems)
    return SystemConfig(
        directory=directory,
        cluster=merged.get("cluster"),
        clusters=tuple(merged.get("clusters", ())),
        api_endpoints=MappingProxyType(dict(merged.get("api_endpoints", {}))),
        docker_registry=merged.get("docker_registry"),
        volumes=tuple(parse_volume(v) for v in merged.get("volumes", ())),
        log_writer=MappingProxyType(dict(merged.get("log_writer", DEFAULT_LOG_WRITER))),
        default_bounce_overprovision_factor=float(merged.get("default_bounce_overprovision_factor", 1.0)),
        api_client_timeout=float(merged.get("api_client_timeout", 30.0)),
        pdb_max_unavailable=merged.get("pdb_max_unavailable", DEFAULT_PDB_MAX_UNAVAILABLE),
        unhealthy_pod_eviction_policy=str(
            merged.get("unhealthy_pod_eviction_policy", DEFAULT_UNHEALTHY_POD_EVICTION_POLICY)
        ),
        raw=MappingProxyType(merged),
        sources=MappingProxyType(sources),
        overrides=tuple(overrides),
    )


def system_config_dir(directory: str | None = None) -> str:
    return directory or os.environ.get(SYSTEM_CONFIG_DIR_ENV) or DEFAULT_SYSTEM_CONFIG_DIR


def find_config_files(directory: str) -> list[str]:
    """Every `*.json` file under `directory`, sorted by relative path (the merge order)."""
    root = Path(directory)
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for filename in filenames:
            if filename.endswith(".json") and not filename.startswith("."):
                found.append(Path(dirpath, filename))
    return [str(path) for path in sorted(found, key=lambda p: p.relative_to(root).as_posix())]


def load_system_config(directory: str | None = None, *, missing_ok: bool = False) -> SystemConfig:
    """Read the system config directory; a missing one is an error unless `missing_ok`.

    `missing_ok` is for commands that only need the system config for optional extras (e.g.
    `paasta validate`); bad files are an error either way.
    """
    directory = system_config_dir(directory)
    if not os.path.isdir(directory):
        if missing_ok and not os.path.exists(directory):
            return SystemConfig(directory=directory)
        raise NotConfiguredError(
            f"system config directory {directory} does not exist or is not a directory "
            f"(set {SYSTEM_CONFIG_DIR_ENV} to point at yours)"
        )
    if not os.access(directory, os.R_OK | os.X_OK):
        raise NotConfiguredError(f"system config directory {directory} is not readable")
    files = find_config_files(directory)
    return parse_system_config([(path, load_json_file(path)) for path in files], directory)
