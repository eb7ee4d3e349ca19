"""An instance config: `service.yaml` defaults overlaid by one instance of `kubernetes-<cluster>.yaml`.

`build_instance_config` is pure: it takes the already-merged, already-schema-validated dict and
fills in the defaults PaaSTA uses (reference section 2.3), so every later stage (rendering,
health, waiting) reads one typed, frozen object instead of re-deriving defaults.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from paasta_lite.config.autoscaling import Autoscaling, autoscaling_problems, parse_autoscaling
from paasta_lite.config.naming import job_id, namespace_for
from paasta_lite.config.volumes import Volume, parse_volume
from paasta_lite.errors import Problem

#: Defaults from PaaSTA's code (not its docs): see reference section 2.3.
DEFAULTS: Mapping[str, Any] = MappingProxyType(
    {
        "instances": 1,
        "cpus": 1.0,
        "cpu_burst_add": 1.0,
        "mem": 4096.0,
        "disk": 1024.0,
        "container_port": 8888,
        "healthcheck_uri": "/status",
        "healthcheck_grace_period_seconds": 60,
        "healthcheck_interval_seconds": 10,
        "healthcheck_timeout_seconds": 10,
        "healthcheck_max_consecutive_failures": 30,
        "bounce_method": "crossover",
        "bounce_margin_factor": 0.95,
    }
)


@dataclass(frozen=True)
class InstanceConfig:
    """Everything paasta_lite needs to run one service.instance on one cluster."""

    service: str
    instance: str
    cluster: str
    source: str  # the kubernetes-<cluster>.yaml file the instance comes from
    deploy_group: str
    namespace: str
    instances: int = 1
    min_instances: int | None = None
    max_instances: int | None = None
    cpus: float = 1.0
    cpu_burst_add: float = 1.0
    mem: float = 4096.0
    disk: float = 1024.0
    env: Mapping[str, str] = field(default_factory=dict)
    cmd: str | tuple[str, ...] | None = None
    args: tuple[str, ...] | None = None
    container_port: int = 8888
    healthcheck_mode: str | None = None
    healthcheck_uri: str = "/status"
    healthcheck_cmd: str | None = None
    healthcheck_grace_period_seconds: int = 60
    healthcheck_interval_seconds: int = 10
    healthcheck_timeout_seconds: int = 10
    healthcheck_max_consecutive_failures: int = 30
    bounce_method: str = "crossover"
    bounce_margin_factor: float = 0.95
    #: whether the config sets `bounce_margin_factor` (PaaSTA derives the PDB from it only then)
    bounce_margin_factor_is_set: bool = False
    bounce_overprovision_factor: float | None = None
    min_task_uptime: int = 0
    extra_volumes: tuple[Volume, ...] = ()
    docker_registry: str | None = None
    autoscaling: Autoscaling = field(default_factory=Autoscaling)
    #: the PDB's `unhealthyPodEvictionPolicy`; None: the system config's
    unhealthy_pod_eviction_policy: str | None = None

    @property
    def job_id(self) -> str:
        return job_id(self.service, self.instance)

    @property
    def is_autoscaled(self) -> bool:
        """PaaSTA's rule: an instance is autoscaled iff `max_instances` is set."""
        return self.max_instances is not None


def _env_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _healthcheck_mode(merged: Mapping[str, Any]) -> str | None:
    """Explicit mode, else inferred: `healthcheck_cmd` means cmd, an explicit uri means http."""
    mode = merged.get("healthcheck_mode")
    if mode is not None:
        return str(mode)
    if "healthcheck_cmd" in merged:
        return "cmd"
    if "healthcheck_uri" in merged:
        return "http"
    return None


def semantic_problems(merged: Mapping[str, Any], *, path: str, instance: str) -> list[Problem]:
    """Rules a JSON schema expresses badly: combinations of keys."""
    problems = []
    if "cmd" in merged and "args" in merged:
        problems.append(Problem(path, "set either cmd or args, not both", instance, "args"))
    if _healthcheck_mode(merged) == "cmd" and not merged.get("healthcheck_cmd"):
        problems.append(
            Problem(path, "healthcheck_mode cmd needs healthcheck_cmd", instance, "healthcheck_cmd")
        )
    low, high = merged.get("min_instances"), merged.get("max_instances")
    if isinstance(low, int) and isinstance(high, int) and low > high:
        problems.append(
            Problem(path, f"min_instances ({low}) is above max_instances ({high})", instance, "min_instances")
        )
    return problems + autoscaling_problems(merged, path=path, instance=instance)


def format_deploy_group(template: str, *, service: str, cluster: str, instance: str) -> str:
    """`deploy_group` may use `{cluster}`, `{instance}` and `{service}` (e.g. `{cluster}.all`)."""
    return (
        template.replace("{cluster}", cluster).replace("{instance}", instance).replace("{service}", service)
    )


def build_instance_config(
    *, service: str, cluster: str, instance: str, merged: Mapping[str, Any], source: str,
    docker_registry: str | None = None,
) -> InstanceConfig:
    """Turn a merged, validated instance dict into an `InstanceConfig` with every default filled in."""
    values = {**DEFAULTS, **merged}
    cmd = values.get("cmd")
    args = values.get("args")
    return InstanceConfig(
        service=service,
        instance=instance,
        cluster=cluster,
        source=source,
        deploy_group=format_deploy_group(
            str(values.get("deploy_group", f"{cluster}.{instance}")),
            service=service, cluster=cluster, instance=instance,
        ),
        namespace=str(values.get("namespace") or namespace_for(service)),
        instances=int(values["instances"]),
        min_instances=values.get("min_instances"),
        max_instances=values.get("max_instances"),
        cpus=float(values["cpus"]),
        cpu_burst_add=float(values["cpu_burst_add"]),
        mem=float(values["mem"]),
        disk=float(values["disk"]),
        env=MappingProxyType({str(k): _env_value(v) for k, v in (values.get("env") or {}).items()}),
        cmd=tuple(cmd) if isinstance(cmd, list) else cmd,
        args=tuple(args) if args is not None else None,
        container_port=int(values["container_port"]),
        healthcheck_mode=_healthcheck_mode(merged),
        healthcheck_uri=str(values["healthcheck_uri"]),
        healthcheck_cmd=values.get("healthcheck_cmd"),
        healthcheck_grace_period_seconds=int(values["healthcheck_grace_period_seconds"]),
        healthcheck_interval_seconds=int(values["healthcheck_interval_seconds"]),
        healthcheck_timeout_seconds=int(values["healthcheck_timeout_seconds"]),
        healthcheck_max_consecutive_failures=int(values["healthcheck_max_consecutive_failures"]),
        bounce_method=str(values["bounce_method"]),
        bounce_margin_factor=float(values["bounce_margin_factor"]),
        bounce_margin_factor_is_set="bounce_margin_factor" in merged,
        bounce_overprovision_factor=values.get("bounce_overprovision_factor"),
        min_task_uptime=int((values.get("bounce_health_params") or {}).get("min_task_uptime", 0)),
        extra_volumes=tuple(parse_volume(v) for v in values.get("extra_volumes") or ()),
        docker_registry=docker_registry,
        autoscaling=parse_autoscaling(values.get("autoscaling")),
        unhealthy_pod_eviction_policy=values.get("unhealthy_pod_eviction_policy"),
    )
