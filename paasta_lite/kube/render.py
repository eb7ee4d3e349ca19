"""Rendering: one service.instance on one cluster -> the Namespace and `apps/v1` Deployment to apply.

Pure (STYLE practice 10): config in, plain dicts in the API's camelCase JSON shape out; no file,
network or environment access. The system config and deployments.json are passed in by the edge
(`setup_kubernetes_job`, `paasta render`), which is why `paasta render` needs no cluster. The
config hash is taken once, from the finished Deployment, and then written into its labels
(`config_hash.with_config_hash`), next to the soa hash annotation (`with_soa_config_hash`, which the
config hash leaves out); nothing is added after that.

Decisions (each one documented where it is made):
- user `env` overrides the PAASTA_* variables, as in PaaSTA (soa-configs written for PaaSTA keep
  working); env and volumes are sorted so reordering YAML keys never bounces anything;
- `maxUnavailable` is computed with decimals from the text of `bounce_margin_factor`, never with
  float truncation (PaaSTA turns 0.9 into "9%"); see `max_unavailable`;
- autoscaled instances (`max_instances` set) start at `max_instances`, PaaSTA's first-deploy rule
  (`render_scaling.initial_replicas`); the reconciler keeps the live replica count for them
  (`RenderedApp.autoscaled`), which their HorizontalPodAutoscaler owns;
- the HPA and PodDisruptionBudget come from `render_scaling` and travel in `RenderedApp.hpa` /
  `.pdb`, each with its own config hash label;
- `revisionHistoryLimit` is `REVISION_HISTORY_LIMIT` (2, see there).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP
from typing import TYPE_CHECKING, Any

from paasta_lite.config.deployments_json import Control, DeployedVersion, DeploymentsJson
from paasta_lite.config.instance_config import InstanceConfig
from paasta_lite.config.naming import app_name, container_name, job_id, label_value
from paasta_lite.config.system_config import SystemConfig
from paasta_lite.errors import ConfigError, NotDeployedError, PaastaLiteError
from paasta_lite.kube import labels
from paasta_lite.kube.companions import HPA, PDB
from paasta_lite.kube.config_hash import config_hash, soa_config_hash, with_config_hash, with_soa_config_hash
from paasta_lite.kube.render_pod import (
    as_decimal,
    command_and_args,
    config_error,
    env_vars,
    probe,
    resources,
    volumes_and_mounts,
)
from paasta_lite.kube.render_scaling import initial_replicas, max_unavailable, render_hpa, render_pdb

if TYPE_CHECKING:  # a type only: rendering never loads a soa dir
    from paasta_lite.config.soa_config import ServiceConfig

JsonDict = dict[str, Any]

BOUNCE_METHODS = ("crossover", "downthenup", "brutal")
#: Old ReplicaSets kept (scaled to 0) after a bounce. PaaSTA keeps 0; we keep 2 so
#: `kubectl rollout history|undo` work in an emergency, while old ReplicaSets do not pile up.
#: `health` ignores ReplicaSets with no replicas, so they never show as running versions.
REVISION_HISTORY_LIMIT = 2
#: Pod template annotation holding `force_bounce` (set by `paasta restart`), so a restart is
#: visible on the pods it replaced. (Belongs in `labels.py` with the other keys.)
IMAGE_PULL_POLICY = "IfNotPresent"  # images `kind load docker-image`-ed into the playground work



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
    #: the autoscaling/v2 HorizontalPodAutoscaler to apply; None: the instance must have none
    #: (not autoscaled, stopped, bespoke...), so an existing one is deleted
    hpa: JsonDict | None = None
    #: the policy/v1 PodDisruptionBudget to apply (every rendered instance has one)
    pdb: JsonDict | None = None

    @property
    def job_id(self) -> str:
        return job_id(self.service, self.instance)

    @property
    def name(self) -> str:
        """The Deployment's name."""
        return str(self.deployment["metadata"]["name"])

    @property
    def companions(self) -> dict[str, JsonDict | None]:
        """The objects that go with the Deployment, by kind (`kube.companions`); None: the app
        must have none (an existing one is deleted)."""
        return {HPA: self.hpa, PDB: self.pdb}

    @property
    def objects(self) -> tuple[JsonDict, ...]:
        """Every object `setup_kubernetes_job` applies for the app: the Deployment, then its
        HPA (when it has one) and PDB, each with its own config-hash label. (Applied, the
        companions also carry an ownerReference to the live Deployment.)"""
        return (self.deployment, *(obj for obj in self.companions.values() if obj is not None))


# --- names and labels -------------------------------------------------------------------------


def app_labels(instance: InstanceConfig, version: DeployedVersion) -> JsonDict:
    """Labels of the Deployment and its pod template (the config hash is added after hashing)."""
    common = labels.instance_labels(instance)
    result = {
        labels.SERVICE: common[labels.SERVICE],
        labels.INSTANCE: common[labels.INSTANCE],
        labels.GIT_SHA: label_value(version.git_sha),
        **common,
    }
    if version.image_version:
        result[labels.IMAGE_VERSION] = label_value(version.image_version)
    return result


def selector_labels(instance: InstanceConfig) -> JsonDict:
    """Only service and instance: a Deployment's selector is immutable."""
    return labels.match_labels(instance.service, instance.instance)


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


# --- strategy and replicas ---------------------------------------------------------------------


def max_surge(overprovision_factor: float) -> str:
    """`overprovision * 100` percent, rounded half up (PaaSTA rounds too): 1.0 -> "100%"."""
    percent = as_decimal(overprovision_factor) * 100
    return f"{int(percent.to_integral_value(rounding=ROUND_HALF_UP))}%"


def strategy(instance: InstanceConfig, system: SystemConfig) -> JsonDict:
    """crossover -> RollingUpdate within the margin; brutal -> all at once; downthenup -> Recreate."""
    method = instance.bounce_method
    if method == "downthenup":
        return {"type": "Recreate"}
    if method not in BOUNCE_METHODS:
        raise config_error(
            instance, "bounce_method",
            f"unknown bounce_method {method!r}; valid ones are {', '.join(BOUNCE_METHODS)}",
        )
    factor = instance.bounce_overprovision_factor
    surge = max_surge(system.default_bounce_overprovision_factor if factor is None else factor)
    unavailable = "100%" if method == "brutal" else max_unavailable(instance.bounce_margin_factor)
    if surge == "0%" and unavailable == "0%":
        raise config_error(
            instance, "bounce_margin_factor",
            "with bounce_margin_factor 1 the bounce needs bounce_overprovision_factor of at least 0.005 "
            "(Kubernetes refuses maxSurge and maxUnavailable both 0)",
        )
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": surge, "maxUnavailable": unavailable}}


def desired_replicas(instance: InstanceConfig, control: Control) -> int:
    """0 when stopped; else what a new Deployment starts with (`max_instances` when autoscaled)."""
    if control.desired_state == "stop":
        return 0
    return initial_replicas(instance)


# --- the Deployment ----------------------------------------------------------------------------




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
        template_metadata["annotations"] = {labels.FORCE_BOUNCE: control.force_bounce}
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
    soa_digest = soa_config_hash(instance, version, force_bounce=control.force_bounce)
    return RenderedApp(
        service=instance.service,
        instance=instance.instance,
        namespace=instance.namespace,
        namespace_manifest=namespace_manifest(instance.namespace),
        deployment=with_soa_config_hash(with_config_hash(unhashed, digest), soa_digest),
        config_hash=digest,
        git_sha=version.git_sha,
        replicas=int(unhashed["spec"]["replicas"]),
        autoscaled=instance.is_autoscaled,
        hpa=render_hpa(instance, control),
        pdb=render_pdb(instance, system),
    )


def render_instance(
    instance: InstanceConfig, deployments: DeploymentsJson | None, system: SystemConfig
) -> RenderedApp:
    """Look up the instance's version and control in deployments.json, then render it.

    Raises `NotDeployedError` when its deploy group has no entry yet (reported, not a failure),
    and `ConfigError` when the entry it needs (deploy group or control) is malformed: that
    instance fails, the other deploy groups of the file still render.
    """
    problems = (
        deployments.problems_for(instance.service, instance.cluster, instance.instance, instance.deploy_group)
        if deployments else ()
    )
    if problems:
        raise ConfigError(problems)
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
