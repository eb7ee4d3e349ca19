"""Rendering of what scales and protects an instance's pods: its HorizontalPodAutoscaler (autoscaled
instances only), its PodDisruptionBudget (every instance), and the replica count a Deployment starts
with.

Pure, like `render.py` (which calls it and carries the results in `RenderedApp.hpa` / `.pdb`).
Each object carries the instance's labels (`labels.instance_labels`) and a config hash taken from
the finished object, exactly as the Deployment does (`config_hash`), so a reconciler can tell an
unchanged HPA or PDB with a string comparison. Both are named like the Deployment and live in its
namespace. Which autoscaling keys map onto the HPA is decided in `config/autoscaling.py`.

PaaSTA's rules followed here (reference 5.4 and 5.7):
- an HPA exists iff `max_instances` is set, the instance is not stopped, the first provider's
  `decision_policy` is not `bespoke`, and `min_instances`/`max_instances` are not 0; `minReplicas`
  is `min_instances` (default 1); `cpu`/`memory` providers become `Resource` metrics with
  `averageUtilization = setpoint x 100`; `behavior.scaleDown` is PaaSTA's default (300 s window, at
  most 30 % per 60 s) updated with `autoscaling.scaledown_policies`;
- the PDB's `maxUnavailable` is `(1 - bounce_margin_factor)` as a percentage when the instance sets
  `bounce_margin_factor`, else the system config's `pdb_max_unavailable` (default 0);
  `unhealthyPodEvictionPolicy` is the instance's, else the system config's (`IfHealthyBudget`);
- a new autoscaled Deployment starts at `max_instances` (PaaSTA reads the live replicas and falls
  back to the maximum when there is no Deployment yet): capacity first, the HPA scales down.

Where we differ: percentages are computed in decimal (PaaSTA's float truncation turns setpoint 0.57
into 56 % and margin 0.9 into "9%"); providers the HPA cannot measure are left out with a warning at
load time instead of an HPA metric that never has a value.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_FLOOR, Decimal
from typing import Any

from paasta_lite.config.autoscaling import MetricsProvider
from paasta_lite.config.deployments_json import Control
from paasta_lite.config.instance_config import InstanceConfig
from paasta_lite.config.naming import app_name
from paasta_lite.config.system_config import SystemConfig
from paasta_lite.kube import labels
from paasta_lite.kube.config_hash import config_hash, with_config_hash
from paasta_lite.kube.render_pod import as_decimal

JsonDict = dict[str, Any]

HPA_API_VERSION = "autoscaling/v2"
PDB_API_VERSION = "policy/v1"
#: PaaSTA's default `behavior.scaleDown` (`get_autoscaling_scaling_policy`): after 300 s of lower
#: recommendations, remove at most 30 % of the replicas per 60 s. Scale-up keeps the HPA's default.
DEFAULT_SCALE_DOWN: JsonDict = {
    "stabilizationWindowSeconds": 300,
    "selectPolicy": "Max",
    "policies": [{"type": "Percent", "value": 30, "periodSeconds": 60}],
}


# --- replicas ----------------------------------------------------------------------------------


def min_replicas(instance: InstanceConfig) -> int:
    """`min_instances`, default 1 (PaaSTA's `get_min_instances`)."""
    return 1 if instance.min_instances is None else instance.min_instances


def initial_replicas(instance: InstanceConfig) -> int:
    """Replicas of a Deployment that does not exist yet (desired state `start`).

    Autoscaled: `max_instances`, PaaSTA's rule (with no live Deployment to read, it returns the
    maximum), so a new instance never starts below the capacity it may need; the HPA scales it
    down within its stabilization window. Otherwise `instances`.
    """
    if instance.max_instances is not None:
        return instance.max_instances
    return instance.instances


def kept_replicas(instance: InstanceConfig, live_replicas: int) -> int:
    """What an existing autoscaled Deployment should run: its live count (the HPA's) clamped to
    [min_replicas, max_instances], as PaaSTA's `limit_instance_count` does."""
    high = instance.max_instances if instance.max_instances is not None else live_replicas
    return max(min_replicas(instance), min(high, live_replicas))


def max_unavailable(bounce_margin_factor: float) -> str:
    """`(1 - margin) * 100` percent, computed in decimal: 0.9 -> "10%", 0.95 -> "5%".

    Kubernetes accepts only whole percentages. When the exact value is not whole (0.333 ->
    66.7), we round down (66%): rounding towards fewer unavailable pods keeps availability at or
    above the margin the owner asked for, never below it. Used by the Deployment's rolling update
    and by the PDB, so both honour the same margin.
    """
    percent = (Decimal(1) - as_decimal(bounce_margin_factor)) * 100
    return f"{int(percent.to_integral_value(rounding=ROUND_FLOOR))}%"


# --- HorizontalPodAutoscaler -------------------------------------------------------------------


def _utilization(setpoint: float) -> int:
    """`setpoint x 100` as a whole percentage, exact (0.57 -> 57), never below 1 (the API's minimum;
    the loader rejects setpoints under 0.01)."""
    percent = as_decimal(setpoint) * 100
    return max(1, int(percent.to_integral_value(rounding=ROUND_FLOOR)))


def hpa_metric(provider: MetricsProvider) -> JsonDict:
    """A `cpu`/`memory` provider as an HPA `Resource` metric (utilization of the pods' requests)."""
    return {
        "type": "Resource",
        "resource": {
            "name": provider.type,
            "target": {"type": "Utilization", "averageUtilization": _utilization(provider.setpoint)},
        },
    }


def hpa_behavior(instance: InstanceConfig) -> JsonDict:
    """PaaSTA's default `scaleDown`, updated key by key with `autoscaling.scaledown_policies`."""
    scale_down = {**DEFAULT_SCALE_DOWN, **instance.autoscaling.scaledown_policies}
    return {"scaleDown": _plain(scale_down)}


def _plain(value: Any) -> Any:
    """Copies of nested mappings/lists as plain dicts/lists (never shared with the config)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def has_hpa(instance: InstanceConfig, control: Control) -> bool:
    """PaaSTA's conditions for an HPA (see the module docstring); the loader warned otherwise."""
    return (
        instance.max_instances is not None
        and control.desired_state != "stop"
        and not instance.autoscaling.bespoke
        and bool(instance.autoscaling.hpa_providers)
        and min_replicas(instance) > 0
    )


def render_hpa(instance: InstanceConfig, control: Control) -> JsonDict | None:
    """The autoscaling/v2 HorizontalPodAutoscaler of `instance`, or None when it should have none
    (not autoscaled, stopped, bespoke, scale-to-zero, or no metric the HPA can measure): a
    reconciler deletes an existing HPA then, so a stopped instance is never scaled back up."""
    high = instance.max_instances
    if high is None or not has_hpa(instance, control):
        return None
    name = app_name(instance.service, instance.instance)
    unhashed: JsonDict = {
        "apiVersion": HPA_API_VERSION,
        "kind": "HorizontalPodAutoscaler",
        "metadata": {
            "name": name, "namespace": instance.namespace, "labels": labels.instance_labels(instance),
        },
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": name},
            "minReplicas": min_replicas(instance),
            "maxReplicas": high,
            "metrics": [hpa_metric(p) for p in instance.autoscaling.hpa_providers],
            "behavior": hpa_behavior(instance),
        },
    }
    return with_config_hash(unhashed, config_hash(unhashed))


# --- PodDisruptionBudget -----------------------------------------------------------------------


def pdb_max_unavailable(instance: InstanceConfig, system: SystemConfig) -> int | str:
    """The instance's bounce margin if it sets one, else the system's `pdb_max_unavailable`."""
    if instance.bounce_margin_factor_is_set:
        return max_unavailable(instance.bounce_margin_factor)
    return system.pdb_max_unavailable


def render_pdb(instance: InstanceConfig, system: SystemConfig) -> JsonDict:
    """The policy/v1 PodDisruptionBudget of `instance`, selecting exactly its pods.

    Every instance gets one, stopped ones included (PaaSTA does the same; with no pods it is inert).
    """
    policy = instance.unhealthy_pod_eviction_policy or system.unhealthy_pod_eviction_policy
    unhashed: JsonDict = {
        "apiVersion": PDB_API_VERSION,
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": app_name(instance.service, instance.instance),
            "namespace": instance.namespace,
            "labels": labels.instance_labels(instance),
        },
        "spec": {
            "maxUnavailable": pdb_max_unavailable(instance, system),
            "selector": {"matchLabels": labels.match_labels(instance.service, instance.instance)},
            "unhealthyPodEvictionPolicy": policy,
        },
    }
    return with_config_hash(unhashed, config_hash(unhashed))
