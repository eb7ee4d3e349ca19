"""The container of a rendered Deployment: command, environment, resources, probes, volumes.

Pure functions of an `InstanceConfig` (and the system volumes); `render.py` assembles them into
the pod template. Quantities are computed in decimal so `cpus: 0.1` is exactly `100m`.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from paasta_lite.config.deployments_json import DeployedVersion
from paasta_lite.config.instance_config import InstanceConfig
from paasta_lite.config.naming import volume_names
from paasta_lite.config.system_config import SystemConfig
from paasta_lite.config.volumes import Volume
from paasta_lite.errors import ConfigError

JsonDict = dict[str, Any]
HEALTHCHECK_MODES = ("http", "https", "tcp", "cmd")


def config_error(instance: InstanceConfig, field: str, message: str) -> ConfigError:
    return ConfigError.single(instance.source, message, instance=instance.instance, field=field)


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


def as_decimal(value: float) -> Decimal:
    """The decimal the user wrote: `str(float)` is the shortest text that round-trips."""
    return Decimal(str(value))


def _number_text(value: Decimal) -> str:
    """Plain decimal text, never exponent notation (`1E+3` is not a nice quantity)."""
    return format(value.normalize(), "f")


def cpu_quantity(cpus: float) -> str:
    """Whole cores as `"2"`, fractions as millicores (`"250m"`), finer than 1m as a decimal."""
    cores = as_decimal(cpus)
    millis = cores * 1000
    if cores == cores.to_integral_value():
        return _number_text(cores)
    if millis == millis.to_integral_value():
        return f"{_number_text(millis)}m"
    return _number_text(cores)


def mebibytes(value: float) -> str:
    return f"{_number_text(as_decimal(value))}Mi"


def resources(instance: InstanceConfig) -> JsonDict:
    """Requests from cpus/mem/disk; limits the same except cpu, which gets `cpu_burst_add` on top."""
    memory, disk = mebibytes(instance.mem), mebibytes(instance.disk)
    cpu_limit = float(as_decimal(instance.cpus) + as_decimal(instance.cpu_burst_add))
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
        raise config_error(
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
