"""Loading soa-configs: `<soa_dir>/<service>/{service,deploy,kubernetes-<cluster>}.yaml` and
`deployments.json`.

Loading is per service and isolated: a broken service raises `ConfigError` for that service only
(`instances_for_cluster` collects it and goes on with the others), and a broken instance is
recorded in `ServiceConfig.invalid_instances` while its siblings load. An unreadable service is
an error, never "this service has no instances": the cleanup reconciler would read that as
"delete it".
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from paasta_lite.config.autoscaling import autoscaling_warnings
from paasta_lite.config.config_keys import (
    IGNORED_FILES,
    IGNORED_INSTANCE_KEYS,
    IGNORED_INSTANCE_TYPES,
    IGNORED_SERVICE_KEYS,
    INSTANCE_KEYS,
    SERVICE_KEYS,
)
from paasta_lite.config.deployments_json import DeploymentsJson, load_deployments_json
from paasta_lite.config.files import load_yaml_file
from paasta_lite.config.instance_config import InstanceConfig, build_instance_config, semantic_problems
from paasta_lite.config.merge import deep_merge
from paasta_lite.config.naming import instance_name_problem, service_name_problem
from paasta_lite.config.validation import classify_keys, schema_problems
from paasta_lite.errors import ConfigError, Problem

INSTANCE_FILE_PREFIX = "kubernetes-"
INSTANCE_FILE_SUFFIX = ".yaml"


@dataclass(frozen=True)
class ServiceConfig:
    """One service as configured: metadata, pipeline, instances per cluster, deployments."""

    name: str
    path: str
    git_url: str | None = None
    description: str | None = None
    external_link: str | None = None
    docker_registry: str | None = None
    deploy_groups: tuple[str, ...] = ()
    wait_for_deployment_groups: frozenset[str] = frozenset()
    clusters: tuple[str, ...] = ()
    instances: Mapping[str, Mapping[str, InstanceConfig]] = field(default_factory=dict)
    invalid_instances: Mapping[str, Mapping[str, ConfigError]] = field(default_factory=dict)
    deployments: DeploymentsJson | None = None
    warnings: tuple[Problem, ...] = ()

    def instance_names(self, cluster: str) -> frozenset[str]:
        """Every instance configured on `cluster`, valid or not (what cleanup must keep)."""
        return frozenset(self.instances.get(cluster, {})) | frozenset(self.invalid_instances.get(cluster, {}))

    def all_instances(self) -> Iterator[InstanceConfig]:
        for cluster in sorted(self.instances):
            yield from self.instances[cluster].values()

    @property
    def problems(self) -> tuple[Problem, ...]:
        """Every instance-level problem, across clusters."""
        return tuple(
            problem
            for cluster in sorted(self.invalid_instances)
            for error in self.invalid_instances[cluster].values()
            for problem in error.problems
        )


@dataclass(frozen=True)
class ClusterConfig:
    """Every service's instances on one cluster, plus the services that failed to load."""

    cluster: str
    services: Mapping[str, ServiceConfig]
    errors: Mapping[str, ConfigError]

    @property
    def instances(self) -> list[InstanceConfig]:
        return [
            config
            for name in sorted(self.services)
            for config in self.services[name].instances.get(self.cluster, {}).values()
        ]

    @property
    def instance_errors(self) -> dict[str, ConfigError]:
        """`service.instance` -> why that instance cannot be used."""
        return {
            f"{name}.{instance}": error
            for name, service in sorted(self.services.items())
            for instance, error in service.invalid_instances.get(self.cluster, {}).items()
        }


def check_cluster_name(cluster: str) -> None:
    """A cluster name becomes part of a file name: refuse anything path-like."""
    if not cluster or "/" in cluster or "\\" in cluster or cluster in (".", "..") or cluster.startswith("."):
        raise ConfigError.single(cluster or "''", "is not a valid cluster name")


def parse_pipeline(data: Mapping[str, Any]) -> tuple[tuple[str, ...], frozenset[str]]:
    """Deploy groups of deploy.yaml in pipeline order (parallel blocks flattened), and the groups
    that ask for `wait_for_deployment`."""
    groups: list[str] = []
    waiting: set[str] = set()
    for entry in data.get("pipeline") or ():
        for step in entry.get("parallel") or [entry]:
            name = step.get("step")
            if not name or name.startswith("command-") or name in _BUILD_STEPS:
                continue
            groups.append(name)
            if step.get("wait_for_deployment"):
                waiting.add(name)
    return tuple(groups), frozenset(waiting)


_BUILD_STEPS = frozenset(
    {"itest", "itest-and-push-to-registry", "security-check", "push-to-registry", "performance-check"}
)


def _as_mapping(document: Any, path: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ConfigError.single(path, f"must be a mapping at the top level (got {type(document).__name__})")
    return document


def _dedupe_warnings(warnings: list[Problem]) -> tuple[Problem, ...]:
    seen: dict[tuple[str, str | None, str | None], Problem] = {}
    for warning in warnings:
        seen.setdefault((warning.path, warning.instance, warning.field), warning)
    return tuple(seen.values())


class SoaDir:
    """A soa-configs directory. Only this class reads it; everything it returns is plain data."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def check(self) -> None:
        """Raise unless the directory exists and is readable."""
        if not self.path.exists():
            raise ConfigError.single(str(self.path), "soa-configs directory does not exist")
        if not self.path.is_dir():
            raise ConfigError.single(str(self.path), "is not a directory")
        if not os.access(self.path, os.R_OK | os.X_OK):
            raise ConfigError.single(str(self.path), "soa-configs directory is not readable")

    def list_services(self) -> list[str]:
        """Service directories, sorted; `_shared` and hidden entries are not services."""
        self.check()
        try:
            entries = list(os.scandir(self.path))
        except OSError as error:
            raise ConfigError.single(str(self.path), f"cannot be listed: {error.strerror}") from error
        # A symlink counts even when it dangles or loops (an unmounted share): loading it then
        # fails loudly, instead of the service silently vanishing and cleanup deleting its apps.
        return sorted(
            entry.name
            for entry in entries
            if not entry.name.startswith((".", "_")) and (entry.is_dir() or entry.is_symlink())
        )

    def service_dir(self, service: str) -> Path:
        problem = service_name_problem(service)
        if problem:
            raise ConfigError.single(str(self.path / str(service)), problem)
        directory = self.path / service
        if directory.is_symlink() and not directory.is_dir():
            try:
                os.stat(directory)
            except OSError as error:
                reason = "is a symlink loop" if error.errno == errno.ELOOP else "is a dangling symlink"
                raise ConfigError.single(str(directory), reason) from error
        if not directory.is_dir():
            raise ConfigError.single(str(directory), f"no such service: '{service}' is not in {self.path}")
        return directory

    def clusters_of(self, service: str) -> list[str]:
        """Clusters a service has a `kubernetes-<cluster>.yaml` for (file names decide)."""
        directory = self.service_dir(service)
        try:
            names = os.listdir(directory)
        except OSError as error:
            raise ConfigError.single(str(directory), f"cannot be listed: {error.strerror}") from error
        return sorted(
            name[len(INSTANCE_FILE_PREFIX) : -len(INSTANCE_FILE_SUFFIX)]
            for name in names
            if name.startswith(INSTANCE_FILE_PREFIX) and name.endswith(INSTANCE_FILE_SUFFIX)
        )

    def load_service(
        self, service: str, *, clusters: list[str] | None = None, with_deployments: bool = True
    ) -> ServiceConfig:
        """Load and validate one service (only `clusters` if given). Raises `ConfigError`.

        `with_deployments=False` skips deployments.json: generate_deployments_for_service must be
        able to replace a corrupt one.
        """
        directory = self.service_dir(service)
        for cluster in clusters or ():
            check_cluster_name(cluster)
        loader = _ServiceLoader(service, directory, with_deployments=with_deployments)
        return loader.load(self.clusters_of(service) if clusters is None else clusters)

    def instances_for_cluster(self, cluster: str, *, with_deployments: bool = True) -> ClusterConfig:
        """Every service's instances on `cluster`; broken services are collected, not fatal."""
        services: dict[str, ServiceConfig] = {}
        errors: dict[str, ConfigError] = {}
        for name in self.list_services():
            try:
                service = self.load_service(name, clusters=[cluster], with_deployments=with_deployments)
            except ConfigError as error:
                errors[name] = error
                continue
            services[name] = service
        return ClusterConfig(cluster=cluster, services=services, errors=errors)


class _ServiceLoader:
    """Reads one service directory; collects warnings and instance problems as it goes."""

    def __init__(self, service: str, directory: Path, *, with_deployments: bool = True) -> None:
        self.service = service
        self.directory = directory
        self.with_deployments = with_deployments
        self.warnings: list[Problem] = []

    def _optional_yaml(self, name: str) -> dict[str, Any] | None:
        path = self.directory / name
        if not os.path.lexists(path):
            return None
        return _as_mapping(load_yaml_file(path), str(path))

    def load(self, clusters: list[str]) -> ServiceConfig:
        service_yaml = self._optional_yaml("service.yaml") or {}
        defaults = self._service_defaults(service_yaml)
        deploy_groups, waiting = self._pipeline()
        self._warn_ignored_files()
        instances: dict[str, dict[str, InstanceConfig]] = {}
        invalid: dict[str, dict[str, ConfigError]] = {}
        registry = service_yaml.get("docker_registry")
        for cluster in clusters:
            instances[cluster], invalid[cluster] = self._load_cluster(cluster, defaults, registry)
        deployments = (
            load_deployments_json(self.directory / "deployments.json") if self.with_deployments else None
        )
        all_groups = {c.deploy_group for by_name in instances.values() for c in by_name.values()}
        for group in sorted(all_groups - set(deploy_groups)) if deploy_groups else ():
            self.warnings.append(
                Problem(
                    str(self.directory / "deploy.yaml"),
                    f"deploy group '{group}' is used by instances but is not a step of the pipeline",
                )
            )
        return ServiceConfig(
            name=self.service,
            path=str(self.directory),
            git_url=service_yaml.get("git_url"),
            description=service_yaml.get("description"),
            external_link=service_yaml.get("external_link"),
            docker_registry=registry,
            deploy_groups=deploy_groups,
            wait_for_deployment_groups=waiting,
            clusters=tuple(clusters),
            instances={c: dict(sorted(i.items())) for c, i in instances.items()},
            invalid_instances={c: i for c, i in invalid.items() if i},
            deployments=deployments,
            warnings=_dedupe_warnings(self.warnings),
        )

    def _service_defaults(self, service_yaml: dict[str, Any]) -> dict[str, Any]:
        """service.yaml minus service-level keys: defaults for every instance (validated once)."""
        path = str(self.directory / "service.yaml")
        errors, warnings = classify_keys(
            service_yaml,
            known=INSTANCE_KEYS | SERVICE_KEYS,
            ignored=IGNORED_INSTANCE_KEYS | IGNORED_SERVICE_KEYS,
            path=path,
            instance=None,
        )
        self.warnings.extend(warnings)
        defaults = {k: v for k, v in service_yaml.items() if k in INSTANCE_KEYS}
        errors += schema_problems("instance", defaults, path=path)
        for key in ("git_url", "description", "external_link", "docker_registry"):
            value = service_yaml.get(key)
            if value is not None and not isinstance(value, str):
                errors.append(Problem(path, "must be text", field=key))
        if errors:
            raise ConfigError(errors)
        return defaults

    def _pipeline(self) -> tuple[tuple[str, ...], frozenset[str]]:
        deploy_yaml = self._optional_yaml("deploy.yaml")
        if deploy_yaml is None:
            return (), frozenset()
        problems = schema_problems("deploy", deploy_yaml, path=str(self.directory / "deploy.yaml"))
        if problems:
            raise ConfigError(problems)
        return parse_pipeline(deploy_yaml)

    def _warn_ignored_files(self) -> None:
        for name in sorted(os.listdir(self.directory)):
            if name in IGNORED_FILES or name.startswith(IGNORED_INSTANCE_TYPES):
                self.warnings.append(
                    Problem(str(self.directory / name), "paasta_lite does not use this file; ignored")
                )

    def _load_cluster(
        self, cluster: str, defaults: dict[str, Any], registry: str | None
    ) -> tuple[dict[str, InstanceConfig], dict[str, ConfigError]]:
        path = str(self.directory / f"{INSTANCE_FILE_PREFIX}{cluster}{INSTANCE_FILE_SUFFIX}")
        document = self._optional_yaml(Path(path).name)
        if document is None:
            return {}, {}
        valid: dict[str, InstanceConfig] = {}
        invalid: dict[str, ConfigError] = {}
        for name, body in document.items():
            if isinstance(name, str) and name.startswith("_"):
                continue  # templates, for YAML anchors only
            try:
                valid[name] = self._instance(cluster, name, body, defaults, path, registry)
            except ConfigError as error:
                invalid[str(name)] = error
        return valid, invalid

    def _instance(
        self, cluster: str, name: Any, body: Any, defaults: dict[str, Any], path: str, registry: str | None
    ) -> InstanceConfig:
        problem = instance_name_problem(name)
        if problem:
            raise ConfigError.single(path, problem, instance=str(name))
        if body is None:
            body = {}
        if not isinstance(body, dict):
            raise ConfigError.single(
                path, f"must be a mapping of settings (got {type(body).__name__})", instance=name
            )
        errors, warnings = classify_keys(
            body, known=INSTANCE_KEYS, ignored=IGNORED_INSTANCE_KEYS, path=path, instance=name
        )
        self.warnings.extend(Problem(w.path, w.message, None, w.field) for w in warnings)
        own = {k: v for k, v in body.items() if k in INSTANCE_KEYS}
        errors += schema_problems("instance", own, path=path, instance=name)
        merged = deep_merge(defaults, own)
        if not errors:
            errors += semantic_problems(merged, path=path, instance=name)
        if errors:
            raise ConfigError(errors)
        self.warnings.extend(autoscaling_warnings(merged, path=path, instance=name))
        return build_instance_config(
            service=self.service, cluster=cluster, instance=name, merged=merged, source=path,
            docker_registry=registry,
        )
