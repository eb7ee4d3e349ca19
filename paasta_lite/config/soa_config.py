"""Loading soa-configs: `<soa_dir>/<service>/{service,deploy,kubernetes-<cluster>}.yaml` and
`deployments.json`.

Loading is per service and isolated: a broken service raises `ConfigError` for that service only
(`instances_for_cluster` collects it and goes on with the others), and a broken instance is
recorded in `ServiceConfig.invalid_instances` while its siblings load.

Nothing reads as "no instances" by accident, because the cleanup reconciler deletes what is not
configured: an unreadable service directory (permission denied, symlink loop, a file where the
directory should be) is an error for that service, and so is an instance file that names no
instance (empty, only comments, `null`, only templates, a list or a scalar). To remove every
instance of a cluster, the file is deleted.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable, Iterator, Mapping
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
from paasta_lite.config.deploy_yaml import (
    DeployStep,
    deploy_group_steps,
    deploy_yaml_problems,
    group_warnings,
)
from paasta_lite.config.deployments_json import DeploymentsJson, load_deployments_json
from paasta_lite.config.files import load_yaml_file
from paasta_lite.config.instance_config import InstanceConfig, build_instance_config, semantic_problems
from paasta_lite.config.merge import deep_merge
from paasta_lite.config.naming import app_name_collisions, instance_name_problem, service_name_problem
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

    @property
    def deployment_problems(self) -> tuple[Problem, ...]:
        """Malformed deployments.json entries that valid instances need, each naming those instances
        (rendering refuses exactly these instances; see `DeploymentsJson.problems_for`)."""
        if self.deployments is None:
            return ()
        users: dict[Problem, list[str]] = {}
        for config in self.all_instances():
            for problem in self.deployments.problems_for(
                config.service, config.cluster, config.instance, config.deploy_group
            ):
                users.setdefault(problem, []).append(f"{config.instance} on {config.cluster}")
        return tuple(
            Problem(problem.path, f"{problem.message} (needed by {', '.join(names)})", field=problem.field)
            for problem, names in users.items()
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


def _as_mapping(document: Any, path: str) -> dict[str, Any]:
    if not isinstance(document, dict):
        raise ConfigError.single(path, f"must be a mapping at the top level (got {type(document).__name__})")
    return document


def instance_entries(document: Any, path: str, cluster: str) -> dict[Any, Any]:
    """The instances of a `kubernetes-<cluster>.yaml` document (templates, `_*` keys, left out).

    A file that names no instance is refused rather than read as "no instances here": an
    empty, comment-only or cut-short file would otherwise make cleanup delete every app of the
    service on that cluster. Deleting the file is how every instance is removed.
    """
    remove_hint = f"to remove every instance of cluster '{cluster}', delete the file instead"
    if document is not None and not isinstance(document, dict):
        raise ConfigError.single(
            path, f"must be a mapping of instance names to settings (got {type(document).__name__}); "
            f"{remove_hint}"
        )
    entries = {
        name: body for name, body in (document or {}).items()
        if not (isinstance(name, str) and name.startswith("_"))
    }
    if not entries:
        raise ConfigError.single(
            path, f"defines no instances (it is empty, only comments, null or only templates); {remove_hint}"
        )
    return entries


def _directory_problem(error: OSError, path: Path) -> str:
    """Why a directory cannot be used, in a user's words."""
    if error.errno == errno.ELOOP:
        return "is a symlink loop"
    if error.errno == errno.ENOENT and os.path.islink(path):
        return "is a dangling symlink"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "is not readable (permission denied)"
    if error.errno == errno.ENOTDIR:
        return "is not a directory"
    return f"cannot be read: {error.strerror or error}"


def _list_directory(directory: Path) -> list[str]:
    """The entry names of a service directory; `ConfigError` if it cannot be listed."""
    try:
        return os.listdir(directory)
    except OSError as error:
        raise ConfigError.single(str(directory), _directory_problem(error, directory)) from error


def _clusters_in(names: Iterable[str]) -> list[str]:
    """Clusters with a `kubernetes-<cluster>.yaml` among a service directory's entries."""
    return sorted(
        name[len(INSTANCE_FILE_PREFIX) : -len(INSTANCE_FILE_SUFFIX)]
        for name in names
        if name.startswith(INSTANCE_FILE_PREFIX) and name.endswith(INSTANCE_FILE_SUFFIX)
    )


def _may_be_service(entry: os.DirEntry[str]) -> bool:
    """Whether a soa dir entry is (or should have been) a service directory.

    Directories and symlinks count even when they dangle or loop (an unmounted share), and so
    does a plain file with a service's name: loading them fails loudly, instead of the service
    silently vanishing and cleanup deleting its apps. Hidden and `_` entries are not services;
    other files (README.md, Makefile) are not either.
    """
    if entry.name.startswith((".", "_")):
        return False
    try:
        if entry.is_symlink() or entry.is_dir():
            return True
    except OSError:
        return True
    return service_name_problem(entry.name) is None


def _dedupe_warnings(warnings: list[Problem]) -> tuple[Problem, ...]:
    seen: dict[tuple[str, str | None, str | None, str], Problem] = {}
    for warning in warnings:
        seen.setdefault((warning.path, warning.instance, warning.field, warning.message), warning)
    return tuple(seen.values())


class SoaDir:
    """A soa-configs directory. Only this class reads it; everything it returns is plain data."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def check(self) -> None:
        """Raise unless the directory exists and is readable."""
        try:
            mode = os.stat(self.path).st_mode
        except OSError as error:
            if error.errno == errno.ENOENT and not os.path.islink(self.path):
                raise ConfigError.single(str(self.path), "soa-configs directory does not exist") from error
            problem = _directory_problem(error, self.path)
            raise ConfigError.single(str(self.path), f"soa-configs directory {problem}") from error
        if not stat.S_ISDIR(mode):
            raise ConfigError.single(str(self.path), "is not a directory")
        if not os.access(self.path, os.R_OK | os.X_OK):
            raise ConfigError.single(str(self.path), "soa-configs directory is not readable")

    def list_services(self) -> list[str]:
        """Service directories, sorted (see `_may_be_service`); `_shared` and hidden entries are not."""
        self.check()
        try:
            with os.scandir(self.path) as entries:
                return sorted(entry.name for entry in entries if _may_be_service(entry))
        except OSError as error:
            raise ConfigError.single(str(self.path), f"cannot be listed: {error.strerror}") from error

    def service_dir(self, service: str) -> Path:
        problem = service_name_problem(service)
        if problem:
            raise ConfigError.single(str(self.path / str(service)), problem)
        directory = self.path / service
        try:
            mode = os.stat(directory).st_mode
        except OSError as error:
            if error.errno == errno.ENOENT and not os.path.islink(directory):
                raise ConfigError.single(
                    str(directory), f"no such service: '{service}' is not in {self.path}"
                ) from error
            raise ConfigError.single(str(directory), _directory_problem(error, directory)) from error
        if not stat.S_ISDIR(mode):
            raise ConfigError.single(str(directory), "is not a directory (a service is a directory of files)")
        return directory

    def clusters_of(self, service: str) -> list[str]:
        """Clusters a service has a `kubernetes-<cluster>.yaml` for (file names decide)."""
        return _clusters_in(_list_directory(self.service_dir(service)))

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
        names = _list_directory(directory)
        if not any(not name.startswith(".") for name in names):
            # git never leaves a removed service's directory behind empty: an empty one is a
            # checkout in progress or a mistake, and must not read as "no instances anywhere".
            raise ConfigError.single(
                str(directory), "is an empty service directory; none of its apps is deleted "
                "(to remove the service, remove the directory)")
        loader = _ServiceLoader(service, directory, frozenset(names), with_deployments=with_deployments)
        every_cluster = clusters is None
        return loader.load(_clusters_in(names) if clusters is None else clusters, every_cluster=every_cluster)

    def instances_for_cluster(
        self, cluster: str, *, with_deployments: bool = True, every_file: bool = False
    ) -> ClusterConfig:
        """Every service's instances on `cluster`; broken services are collected, not fatal.

        `every_file=True` also reads each service's instance files of other clusters, so that a
        file-level error anywhere in a service counts (cleanup deletes nothing of such a service).
        """
        check_cluster_name(cluster)
        services: dict[str, ServiceConfig] = {}
        errors: dict[str, ConfigError] = {}
        for name in self.list_services():
            try:
                service = self.load_service(
                    name, clusters=None if every_file else [cluster], with_deployments=with_deployments
                )
            except ConfigError as error:
                errors[name] = error
                continue
            services[name] = service
        return ClusterConfig(cluster=cluster, services=services, errors=errors)


class _ServiceLoader:
    """Reads one service directory; collects warnings and instance problems as it goes.

    `names` is the directory's listing, taken once: a file counts as absent only when the
    listing says so (an unreadable entry then fails to load instead of reading as missing).
    """

    def __init__(
        self, service: str, directory: Path, names: frozenset[str], *, with_deployments: bool = True
    ) -> None:
        self.service = service
        self.directory = directory
        self.names = names
        self.with_deployments = with_deployments
        self.warnings: list[Problem] = []

    def _path(self, name: str) -> str:
        return str(self.directory / name)

    def _optional_yaml(self, name: str) -> dict[str, Any] | None:
        if name not in self.names:
            return None
        document = load_yaml_file(self.directory / name)
        return _as_mapping({} if document is None else document, self._path(name))

    def load(self, clusters: list[str], *, every_cluster: bool = False) -> ServiceConfig:
        """`every_cluster`: `clusters` are all the service's clusters, so "no instance uses this
        deploy group" can be said."""
        service_yaml = self._optional_yaml("service.yaml") or {}
        defaults = self._service_defaults(service_yaml)
        steps = self._pipeline()
        self._warn_ignored_files()
        instances: dict[str, dict[str, InstanceConfig]] = {}
        invalid: dict[str, dict[str, ConfigError]] = {}
        registry = service_yaml.get("docker_registry")
        for cluster in clusters:
            instances[cluster], invalid[cluster] = self._load_cluster(cluster, defaults, registry)
        deployments = self._deployments()
        used = {c.deploy_group for by_name in instances.values() for c in by_name.values()}
        deploy_path = self._path("deploy.yaml")
        self.warnings += group_warnings(steps, used, path=deploy_path, every_cluster=every_cluster)
        if deployments is not None and every_cluster:
            self.warnings += [
                Problem(p.path, f"{p.message} (no instance uses this deploy group)", field=p.field)
                for group, p in sorted(deployments.broken_deployments.items()) if group not in used
            ]
        return ServiceConfig(
            name=self.service,
            path=str(self.directory),
            git_url=service_yaml.get("git_url"),
            description=service_yaml.get("description"),
            external_link=service_yaml.get("external_link"),
            docker_registry=registry,
            deploy_groups=tuple(group for _, group, _ in steps),
            wait_for_deployment_groups=frozenset(group for _, group, wait in steps if wait),
            clusters=tuple(clusters),
            instances={c: dict(sorted(i.items())) for c, i in instances.items()},
            invalid_instances={c: i for c, i in invalid.items() if i},
            deployments=deployments,
            warnings=_dedupe_warnings(self.warnings),
        )

    def _deployments(self) -> DeploymentsJson | None:
        if not self.with_deployments or "deployments.json" not in self.names:
            return None
        return load_deployments_json(self.directory / "deployments.json")

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

    def _pipeline(self) -> list[DeployStep]:
        """deploy.yaml's deploy steps (see `deploy_yaml.deploy_group_steps`)."""
        deploy_yaml = self._optional_yaml("deploy.yaml")
        if deploy_yaml is None:
            return []
        errors, warnings = deploy_yaml_problems(deploy_yaml, path=self._path("deploy.yaml"))
        self.warnings.extend(warnings)
        if errors:
            raise ConfigError(errors)
        return deploy_group_steps(deploy_yaml)

    def _warn_ignored_files(self) -> None:
        for name in sorted(self.names):
            if name in IGNORED_FILES or name.startswith(IGNORED_INSTANCE_TYPES):
                self.warnings.append(Problem(self._path(name), "paasta_lite does not use this file; ignored"))

    def _load_cluster(
        self, cluster: str, defaults: dict[str, Any], registry: str | None
    ) -> tuple[dict[str, InstanceConfig], dict[str, ConfigError]]:
        name = f"{INSTANCE_FILE_PREFIX}{cluster}{INSTANCE_FILE_SUFFIX}"
        if name not in self.names:
            return {}, {}
        path = self._path(name)
        valid: dict[str, InstanceConfig] = {}
        invalid: dict[str, ConfigError] = {}
        for instance, body in instance_entries(load_yaml_file(path), path, cluster).items():
            try:
                valid[instance] = self._instance(cluster, instance, body, defaults, path, registry)
            except ConfigError as error:
                invalid[str(instance)] = error
        self._refuse_name_collisions(path, valid, invalid)
        return valid, invalid

    def _refuse_name_collisions(
        self, path: str, valid: dict[str, InstanceConfig], invalid: dict[str, ConfigError]
    ) -> None:
        """Instances that would share one Deployment name all become invalid, each naming the others."""
        named = [name for name in [*valid, *invalid] if instance_name_problem(name) is None]
        for k8s_name, group in app_name_collisions(self.service, named).items():
            names = ", ".join(f"'{name}'" for name in group[:-1]) + f" and '{group[-1]}'"
            message = (
                f"instances {names} {'both' if len(group) == 2 else 'all'} get the Kubernetes name "
                f"'{k8s_name}' (sanitising turns '_' into '--'); rename all but one"
            )
            for name in group:
                earlier = invalid[name].problems if name in invalid else ()
                invalid[name] = ConfigError([*earlier, Problem(path, message, instance=name)])
                valid.pop(name, None)

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
