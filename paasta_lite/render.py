"""Rendering: one service.instance on one cluster -> the Namespace and `apps/v1` Deployment to apply.

Pure (STYLE practice 10): config in, plain dicts in the API's camelCase JSON shape out; no file,
network or environment access. The system config and deployments.json are passed in by the edge
(`setup_kubernetes_job`, `paasta render`), which is why `paasta render` needs no cluster. The
config hash is taken once, from the finished Deployment, and then written into its labels
(`config_hash.with_config_hash`); nothing is added after that.

Decisions (each one documented where it is made):
- user `env` overrides the PAASTA_* variables, as in PaaSTA (soa-configs written for PaaSTA keep
  working); env and volumes are sorted so reordering YAML keys never bounces anything;
- `maxUnavailable` is computed with decimals from the text of `bounce_margin_factor`, never with
  float truncation (PaaSTA turns 0.9 into "9%"); see `max_unavailable`;
- autoscaled instances (`max_instances` set) start at `min_instances` (default 1); the
  reconciler keeps the live replica count for them (`RenderedApp.autoscaled`);
- `revisionHistoryLimit` is `REVISION_HISTORY_LIMIT` (2, see there).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from paasta_lite import labels
from paasta_lite.config_hash import config_hash, with_config_hash
from paasta_lite.deployments_json import Control, DeployedVersion, DeploymentsJson
from paasta_lite.errors import ConfigError, NotDeployedError, PaastaLiteError
from paasta_lite.instance_config import InstanceConfig
from paasta_lite.naming import app_name, container_name, job_id, limit_with_hash, sanitise_name
from paasta_lite.system_config import SystemConfig
from paasta_lite.volumes import Volume

if TYPE_CHECKING:  # a type only: rendering never loads a soa dir
    from paasta_lite.soa_config import ServiceConfig

JsonDict = dict[str, Any]

BOUNCE_METHODS = ("crossover", "downthenup", "brutal")
HEALTHCHECK_MODES = ("http", "https", "tcp", "cmd")
#: Old ReplicaSets kept (scaled to 0) after a bounce. PaaSTA keeps 0; we keep 2 so
#: `kubectl rollout history|undo` work in an emergency, while old ReplicaSets do not pile up.
#: `health` ignores ReplicaSets with no replicas, so they never show as running versions.
REVISION_HISTORY_LIMIT = 2
#: Pod template annotation holding `force_bounce` (set by `paasta restart`), so a restart is
#: visible on the pods it replaced. (Belongs in `labels.py` with the other keys.)
FORCE_BOUNCE_ANNOTATION = f"{labels.PREFIX}/force_bounce"
IMAGE_PULL_POLICY = "IfNotPresent"  # images `kind load docker-image`-ed into the playground work

_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_LABEL_VALUE_MAX = 63


@dataclass(frozen=True)
class RenderedApp:
    """What `setup_kubernetes_job` applies for one service.instance, plus the facts it compares."""

    service: str
    instance: str
    namespace: str
    namespace_manifest: JsonDict
    deployment: JsonDict
    config_hash: str
    git_sha: str
    replicas: int
    #: autoscaled apps: `replicas` is only the starting count; keep the live one on updates
    autoscaled: bool = False

    @property
    def job_id(self) -> str:
        return job_id(self.service, self.instance)

    @property
    def name(self) -> str:
        """The Deployment's name."""
        return str(self.deployment["metadata"]["name"])


# --- names and labels -------------------------------------------------------------------------


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


def app_labels(instance: InstanceConfig, version: DeployedVersion) -> JsonDict:
    """Labels of the Deployment and its pod template (the config hash is added after hashing)."""
    result = {
        labels.SERVICE: instance.service,
        labels.INSTANCE: instance.instance,
        labels.GIT_SHA: label_value(version.git_sha),
        labels.DEPLOY_GROUP: label_value(instance.deploy_group),
        labels.CLUSTER: label_value(instance.cluster),
        labels.AUTOSCALED: "true" if instance.is_autoscaled else "false",
        labels.MANAGED: "true",
        labels.APP_NAME: instance.service,
        labels.APP_INSTANCE: app_name(instance.service, instance.instance),
        labels.APP_MANAGED_BY: labels.MANAGED_BY_VALUE,
    }
    if version.image_version:
        result[labels.IMAGE_VERSION] = label_value(version.image_version)
    return result


def selector_labels(instance: InstanceConfig) -> JsonDict:
    """Only service and instance: a Deployment's selector is immutable."""
    return {labels.SERVICE: instance.service, labels.INSTANCE: instance.instance}


def namespace_manifest(namespace: str) -> JsonDict:
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": namespace,
            "labels": {
                "name": namespace,
                labels.MANAGED: "true",
                labels.APP_MANAGED_BY: labels.MANAGED_BY_VALUE,
            },
        },
    }


# --- container ---------------------------------------------------------------------------------


def command_and_args(instance: InstanceConfig) -> JsonDict:
    """A string `cmd` runs through `sh -c`; a list is used verbatim; `args` only without `cmd`."""
    result: JsonDict = {}
    if isinstance(instance.cmd, str):
        result["command"] = ["sh", "-c", instance.cmd]
    elif instance.cmd is not None:
        result["command"] = list(instance.cmd)
    if instance.args is not None:
        result["args"] = list(instance.args)
    return result


def env_vars(instance: InstanceConfig, version: DeployedVersion) -> list[JsonDict]:
    """PAASTA_* variables first (fixed order), then the user's (sorted by name).

    The user's `env` wins over a PAASTA_* variable of the same name, as in PaaSTA, so
    soa-configs written for PaaSTA behave the same here; the variable keeps its position.
    """
    values = {
        "PAASTA_SERVICE": instance.service,
        "PAASTA_INSTANCE": instance.instance,
        "PAASTA_CLUSTER": instance.cluster,
        "PAASTA_DEPLOY_GROUP": instance.deploy_group,
        "PAASTA_DOCKER_IMAGE": version.docker_image,
        "PAASTA_GIT_SHA": version.short_sha,
        "PAASTA_PORT": str(instance.container_port),
    }
    if version.image_version:
        values["PAASTA_IMAGE_VERSION"] = version.image_version
    for name in sorted(instance.env):
        values[name] = instance.env[name]
    return [{"name": name, "value": value} for name, value in values.items()]


def _decimal(value: float) -> Decimal:
    """The decimal the user wrote: `str(float)` is the shortest text that round-trips."""
    return Decimal(str(value))


def _number_text(value: Decimal) -> str:
    """Plain decimal text, never exponent notation (`1E+3` is not a nice quantity)."""
    return format(value.normalize(), "f")


def cpu_quantity(cpus: float) -> str:
    """Whole cores as `"2"`, fractions as millicores (`"250m"`), finer than 1m as a decimal."""
    cores = _decimal(cpus)
    millis = cores * 1000
    if cores == cores.to_integral_value():
        return _number_text(cores)
    if millis == millis.to_integral_value():
        return f"{_number_text(millis)}m"
    return _number_text(cores)


def mebibytes(value: float) -> str:
    return f"{_number_text(_decimal(value))}Mi"


def resources(instance: InstanceConfig) -> JsonDict:
    """Requests from cpus/mem/disk; limits the same except cpu, which gets `cpu_burst_add` on top."""
    memory, disk = mebibytes(instance.mem), mebibytes(instance.disk)
    cpu_limit = float(_decimal(instance.cpus) + _decimal(instance.cpu_burst_add))
    return {
        "requests": {"cpu": cpu_quantity(instance.cpus), "memory": memory, "ephemeral-storage": disk},
        "limits": {"cpu": cpu_quantity(cpu_limit), "memory": memory, "ephemeral-storage": disk},
    }


def probe(instance: InstanceConfig) -> JsonDict | None:
    """Liveness/readiness probe from `healthcheck_mode`; None (no probe) when no mode is set."""
    mode = instance.healthcheck_mode
    if mode is None:
        return None
    if mode in ("http", "https"):
        action: JsonDict = {
            "httpGet": {"path": instance.healthcheck_uri, "port": instance.container_port,
                        "scheme": mode.upper()}
        }
    elif mode == "tcp":
        action = {"tcpSocket": {"port": instance.container_port}}
    elif mode == "cmd" and instance.healthcheck_cmd:
        action = {"exec": {"command": ["/bin/sh", "-c", instance.healthcheck_cmd]}}
    else:
        raise _config_error(
            instance, "healthcheck_mode",
            f"healthcheck_mode {mode!r} is not one of {', '.join(HEALTHCHECK_MODES)} "
            "(cmd needs healthcheck_cmd)",
        )
    return {
        **action,
        "initialDelaySeconds": instance.healthcheck_grace_period_seconds,
        "periodSeconds": instance.healthcheck_interval_seconds,
        "timeoutSeconds": instance.healthcheck_timeout_seconds,
        "failureThreshold": instance.healthcheck_max_consecutive_failures,
    }


# --- volumes -----------------------------------------------------------------------------------


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


def effective_volumes(instance: InstanceConfig, system: SystemConfig) -> list[Volume]:
    """System `volumes` then the instance's `extra_volumes`, one per container path.

    A container path can be mounted only once (the API server refuses duplicates), so when two
    entries share one, the later wins: an instance can override a system volume. Sorted by path.
    """
    by_path: dict[str, Volume] = {}
    for volume in (*system.volumes, *instance.extra_volumes):
        by_path[volume.container_path] = volume
    return [by_path[path] for path in sorted(by_path)]


def volumes_and_mounts(
    instance: InstanceConfig, system: SystemConfig
) -> tuple[list[JsonDict], list[JsonDict]]:
    """Pod `volumes` (one hostPath volume per host path) and the container's `volumeMounts`."""
    chosen = effective_volumes(instance, system)
    names = volume_names({v.host_path for v in chosen})
    pod_volumes = [
        {"name": names[path], "hostPath": {"path": path}} for path in sorted(names, key=names.__getitem__)
    ]
    mounts = [
        {"name": names[v.host_path], "mountPath": v.container_path, "readOnly": v.read_only} for v in chosen
    ]
    return pod_volumes, mounts


# --- strategy and replicas ---------------------------------------------------------------------


def max_unavailable(bounce_margin_factor: float) -> str:
    """`(1 - margin) * 100` percent, computed in decimal: 0.9 -> "10%", 0.95 -> "5%".

    Kubernetes accepts only whole percentages. When the exact value is not whole (0.333 ->
    66.7), we round down (66%): rounding towards fewer unavailable pods keeps availability at or
    above the margin the owner asked for, never below it.
    """
    percent = (Decimal(1) - _decimal(bounce_margin_factor)) * 100
    return f"{int(percent.to_integral_value(rounding=ROUND_FLOOR))}%"


def max_surge(overprovision_factor: float) -> str:
    """`overprovision * 100` percent, rounded half up (PaaSTA rounds too): 1.0 -> "100%"."""
    percent = _decimal(overprovision_factor) * 100
    return f"{int(percent.to_integral_value(rounding=ROUND_HALF_UP))}%"


def strategy(instance: InstanceConfig, system: SystemConfig) -> JsonDict:
    """crossover -> RollingUpdate within the margin; brutal -> all at once; downthenup -> Recreate."""
    method = instance.bounce_method
    if method == "downthenup":
        return {"type": "Recreate"}
    if method not in BOUNCE_METHODS:
        raise _config_error(
            instance, "bounce_method",
            f"unknown bounce_method {method!r}; valid ones are {', '.join(BOUNCE_METHODS)}",
        )
    factor = instance.bounce_overprovision_factor
    surge = max_surge(system.default_bounce_overprovision_factor if factor is None else factor)
    unavailable = "100%" if method == "brutal" else max_unavailable(instance.bounce_margin_factor)
    if surge == "0%" and unavailable == "0%":
        raise _config_error(
            instance, "bounce_margin_factor",
            "with bounce_margin_factor 1 the bounce needs bounce_overprovision_factor of at least 0.005 "
            "(Kubernetes refuses maxSurge and maxUnavailable both 0)",
        )
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}


def desired_replicas(instance: InstanceConfig, control: Control) -> int:
    """0 when stopped; `min_instances` (default 1) to start an autoscaled app; else `instances`."""
    if control.desired_state == "stop":
        return 0
    if instance.is_autoscaled:
        return instance.min_instances if instance.min_instances is not None else 1
    return instance.instances


# --- the Deployment ----------------------------------------------------------------------------


def _config_error(instance: InstanceConfig, field: str, message: str) -> ConfigError:
    return ConfigError.single(instance.source, message, instance=instance.instance, field=field)


def pod_spec(
    instance: InstanceConfig, version: DeployedVersion, *, registry: str, system: SystemConfig
) -> JsonDict:
    """The pod template's spec: one container, its hostPath volumes."""
    pod_volumes, mounts = volumes_and_mounts(instance, system)
    main: JsonDict = {
        "name": container_name(instance.instance),
        "image": f"{registry}/{version.docker_image}",
        "imagePullPolicy": IMAGE_PULL_POLICY,
        **command_and_args(instance),
        "env": env_vars(instance, version),
        "ports": [{"containerPort": instance.container_port}],
        "resources": resources(instance),
    }
    liveness, readiness = probe(instance), probe(instance)  # equal, but not one shared object
    if liveness is not None:
        main["livenessProbe"] = liveness
        main["readinessProbe"] = readiness
    if mounts:
        main["volumeMounts"] = mounts
    spec: JsonDict = {"containers": [main]}
    if pod_volumes:
        spec["volumes"] = pod_volumes
    return spec


def deployment_manifest(
    instance: InstanceConfig, version: DeployedVersion, control: Control, *, registry: str,
    system: SystemConfig,
) -> JsonDict:
    """The complete Deployment except the config-hash labels."""
    template_metadata: JsonDict = {"labels": app_labels(instance, version)}
    if control.force_bounce:
        template_metadata["annotations"] = {FORCE_BOUNCE_ANNOTATION: control.force_bounce}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": app_name(instance.service, instance.instance),
            "namespace": instance.namespace,
            "labels": app_labels(instance, version),
        },
        "spec": {
            "replicas": desired_replicas(instance, control),
            "selector": {"matchLabels": selector_labels(instance)},
            "strategy": strategy(instance, system),
            "minReadySeconds": instance.min_task_uptime,
            "revisionHistoryLimit": REVISION_HISTORY_LIMIT,
            "template": {
                "metadata": template_metadata,
                "spec": pod_spec(instance, version, registry=registry, system=system),
            },
        },
    }


def render_app(
    instance: InstanceConfig, version: DeployedVersion, control: Control, system: SystemConfig
) -> RenderedApp:
    """Render one instance. Raises `ConfigError` / `NotConfiguredError` (no docker registry)."""
    registry = system.require_docker_registry(instance.docker_registry)
    unhashed = deployment_manifest(instance, version, control, registry=registry, system=system)
    digest = config_hash(unhashed, force_bounce=control.force_bounce)
    return RenderedApp(
        service=instance.service,
        instance=instance.instance,
        namespace=instance.namespace,
        namespace_manifest=namespace_manifest(instance.namespace),
        deployment=with_config_hash(unhashed, digest),
        config_hash=digest,
        git_sha=version.git_sha,
        replicas=int(unhashed["spec"]["replicas"]),
        autoscaled=instance.is_autoscaled,
    )


def render_instance(
    instance: InstanceConfig, deployments: DeploymentsJson | None, system: SystemConfig
) -> RenderedApp:
    """Look up the instance's version and control in deployments.json, then render it.

    Raises `NotDeployedError` when its deploy group has no entry yet (reported, not a failure).
    """
    version = deployments.version_for(instance.deploy_group) if deployments else None
    if deployments is None or version is None:
        raise NotDeployedError(
            f"{instance.job_id}: not deployed yet (deploy group '{instance.deploy_group}' has no entry "
            "in deployments.json; mark a version for deployment first)"
        )
    control = deployments.control_for(instance.service, instance.cluster, instance.instance)
    return render_app(instance, version, control, system)


def render_service_instances(
    service: ServiceConfig, cluster: str, system: SystemConfig, *, only: Collection[str] | None = None
) -> tuple[list[RenderedApp], dict[str, PaastaLiteError]]:
    """Render every instance of `service` on `cluster` (or those named in `only`).

    Returns the rendered apps and, per job id, why an instance could not be rendered: its
    `ConfigError` from loading or rendering, `NotConfiguredError`, or `NotDeployedError` ("not
    deployed yet", which callers report without counting it as a failure). One instance's
    error never stops the others.
    """
    rendered: list[RenderedApp] = []
    errors: dict[str, PaastaLiteError] = {}
    invalid: Mapping[str, ConfigError] = service.invalid_instances.get(cluster, {})
    for name in sorted(invalid):
        if only is None or name in only:
            errors[job_id(service.name, name)] = invalid[name]
    for name, instance in sorted(service.instances.get(cluster, {}).items()):
        if only is not None and name not in only:
            continue
        try:
            rendered.append(render_instance(instance, service.deployments, system))
        except PaastaLiteError as error:
            errors[instance.job_id] = error
    return rendered, errors
