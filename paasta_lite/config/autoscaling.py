"""An instance's autoscaling settings, and which of PaaSTA's autoscaling keys paasta_lite honours.

PaaSTA autoscales an instance iff `max_instances` is set, with a Kubernetes HorizontalPodAutoscaler
between `min_instances` (default 1) and `max_instances`, driven by `autoscaling.metrics_providers`
(default: one `cpu` provider, setpoint 0.8) and shaped by `autoscaling.scaledown_policies`.
`kube/render_scaling.py` turns the parsed `Autoscaling` into the HPA; this module decides what that
HPA can express, so the loader can say so once, with the file, instance and field:

- maps: providers `cpu` and `memory` (HPA `Resource` metrics, measured by metrics-server),
  `setpoint`, `decision_policy: proportional` (the HPA's own algorithm), `forecast_policy: current`,
  `scaledown_policies` (HPA `behavior.scaleDown`, checked against the HPA's rules by the schema);
- does not map (warning, the key has no effect): providers that need PaaSTA's Prometheus adapter
  rules (`uwsgi`, `worker-load`, `arbitrary-promql`, ...), `forecast_policy: moving_average`,
  `moving_average_window_seconds` (the HPA has no moving average), `max_instances_alert_threshold`
  (alerting), `decision_policy: bespoke` (PaaSTA's hook for an external autoscaler: no HPA);
- errors, as `paasta validate` reports them: a provider type listed twice, `bespoke` with more
  than one provider, a provider key that belongs to another provider type.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from paasta_lite.errors import Problem

#: PaaSTA's default setpoint (`DEFAULT_AUTOSCALING_SETPOINT`); `arbitrary-promql` defaults to 1.0.
DEFAULT_SETPOINT = 0.8
PROMQL_DEFAULT_SETPOINT = 1.0
DEFAULT_PROVIDER_TYPE = "cpu"
DEFAULT_DECISION_POLICY = "proportional"
BESPOKE = "bespoke"

#: Providers the HPA measures itself (`Resource` metrics): these map onto the HPA.
RESOURCE_PROVIDERS = ("cpu", "memory")
#: PaaSTA providers served by Yelp's Prometheus + prometheus-adapter rules: paasta_lite installs no
#: adapter rules, so an HPA metric for them would never have a value.
PROMETHEUS_PROVIDERS = (
    "uwsgi", "uwsgi-v2", "gunicorn", "piscina", "active-requests", "arbitrary-promql", "worker-load",
)
#: Keys only `arbitrary-promql` accepts, and the one only `active-requests` accepts (PaaSTA's
#: `INVALID_AUTOSCALING_FIELDS`).
_PROMQL_ONLY = ("metrics_query", "series_query", "target_type", "resources")
_ACTIVE_REQUESTS_ONLY = ("desired_active_requests_per_replica",)


@dataclass(frozen=True)
class MetricsProvider:
    """One entry of `autoscaling.metrics_providers`, with PaaSTA's defaults filled in."""

    type: str = DEFAULT_PROVIDER_TYPE
    setpoint: float = DEFAULT_SETPOINT
    decision_policy: str = DEFAULT_DECISION_POLICY

    @property
    def maps_onto_hpa(self) -> bool:
        return self.type in RESOURCE_PROVIDERS


@dataclass(frozen=True)
class Autoscaling:
    """`autoscaling:` of an instance. Only meaningful when the instance sets `max_instances`."""

    metrics_providers: tuple[MetricsProvider, ...] = (MetricsProvider(),)
    #: Overrides of the HPA's `behavior.scaleDown` (Kubernetes field names), merged over the default.
    scaledown_policies: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def bespoke(self) -> bool:
        """PaaSTA's rule: the *first* provider's `decision_policy: bespoke` means no HPA."""
        return self.metrics_providers[0].decision_policy == BESPOKE

    @property
    def hpa_providers(self) -> tuple[MetricsProvider, ...]:
        return tuple(p for p in self.metrics_providers if p.maps_onto_hpa)


def _provider(raw: Mapping[str, Any]) -> MetricsProvider:
    kind = str(raw.get("type", DEFAULT_PROVIDER_TYPE))
    default_setpoint = PROMQL_DEFAULT_SETPOINT if kind == "arbitrary-promql" else DEFAULT_SETPOINT
    return MetricsProvider(
        type=kind,
        setpoint=float(raw.get("setpoint", default_setpoint)),
        decision_policy=str(raw.get("decision_policy", DEFAULT_DECISION_POLICY)),
    )


def parse_autoscaling(raw: Mapping[str, Any] | None) -> Autoscaling:
    """`autoscaling:` (already schema-validated) -> `Autoscaling`; no providers means PaaSTA's default."""
    raw = raw or {}
    providers = tuple(_provider(p) for p in raw.get("metrics_providers") or ())
    return Autoscaling(
        metrics_providers=providers or (MetricsProvider(),),
        scaledown_policies=MappingProxyType(dict(raw.get("scaledown_policies") or {})),
    )


def _raw_providers(merged: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    autoscaling = merged.get("autoscaling") or {}
    return [p for p in autoscaling.get("metrics_providers") or () if isinstance(p, Mapping)]


def _provider_errors(raw: Mapping[str, Any], *, count: int) -> list[tuple[str, str]]:
    """(key, message) for the rules one provider of `count` breaks (PaaSTA's `paasta validate`)."""
    kind = str(raw.get("type", DEFAULT_PROVIDER_TYPE))
    errors = []
    if raw.get("decision_policy") == BESPOKE and count > 1:
        errors.append(("decision_policy", "bespoke autoscaling cannot be combined with other providers"))
    setpoint = raw.get("setpoint")
    if kind in RESOURCE_PROVIDERS and isinstance(setpoint, (int, float)) and setpoint < 0.01:
        errors.append(("setpoint", f"a {kind} setpoint must be at least 0.01 (0.8 means 80%)"))
    wrong = [k for k in _PROMQL_ONLY if k in raw and kind != "arbitrary-promql"]
    wrong += [k for k in _ACTIVE_REQUESTS_ONLY if k in raw and kind != "active-requests"]
    errors += [(key, f"metrics provider '{kind}' does not support {key}") for key in wrong]
    return errors


def autoscaling_problems(merged: Mapping[str, Any], *, path: str, instance: str) -> list[Problem]:
    """Errors a schema expresses badly: combinations inside `autoscaling.metrics_providers`."""
    problems: list[Problem] = []
    providers = _raw_providers(merged)
    seen: set[str] = set()
    for index, raw in enumerate(providers):
        where = f"autoscaling.metrics_providers[{index}]"
        kind = str(raw.get("type", DEFAULT_PROVIDER_TYPE))
        if kind in seen:
            problems.append(Problem(path, f"provider '{kind}' is listed twice", instance, f"{where}.type"))
        seen.add(kind)
        problems += [
            Problem(path, message, instance, f"{where}.{key}")
            for key, message in _provider_errors(raw, count=len(providers))
        ]
    return problems


#: (key, message) for provider keys the HPA cannot express, when present.
_NO_MOVING_AVERAGE = (
    "the HorizontalPodAutoscaler has no moving average for cpu/memory; ignored (to smooth "
    "scale-downs, set autoscaling.scaledown_policies.stabilizationWindowSeconds)"
)
_UNMAPPED_KEYS = (
    ("moving_average_window_seconds", _NO_MOVING_AVERAGE),
    ("max_instances_alert_threshold", "paasta_lite does not alert; ignored"),
)


def _provider_warnings(raw: Mapping[str, Any], where: str) -> list[tuple[str, str]]:
    """(field, message) for the keys of one provider that the HPA cannot express."""
    kind = str(raw.get("type", DEFAULT_PROVIDER_TYPE))
    if kind in PROMETHEUS_PROVIDERS:
        return [(f"{where}.type", (
            f"metrics provider '{kind}' needs PaaSTA's Prometheus adapter rules, which paasta_lite does "
            "not set up; the HorizontalPodAutoscaler does not use it (cpu and memory work)"
        ))]
    notes = [(f"{where}.{key}", message) for key, message in _UNMAPPED_KEYS if key in raw]
    if raw.get("forecast_policy") == "moving_average":
        notes.append((f"{where}.forecast_policy", _NO_MOVING_AVERAGE))
    policy = raw.get("decision_policy", DEFAULT_DECISION_POLICY)
    if policy not in (DEFAULT_DECISION_POLICY, BESPOKE):
        notes.append((f"{where}.decision_policy", (
            f"unknown decision_policy {policy!r}: treated as proportional (the HPA's own algorithm), "
            "as PaaSTA does"
        )))
    return notes


def _scaling_warnings(merged: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(field, message) for autoscaled instances that get no HPA, or lose part of their config."""
    providers = _raw_providers(merged)
    parsed = parse_autoscaling(merged.get("autoscaling"))
    notes = []
    for index, raw in enumerate(providers):
        notes += _provider_warnings(raw, f"autoscaling.metrics_providers[{index}]")
    no_hpa = (
        "so no HorizontalPodAutoscaler is created and replicas stay as they are "
        "(max_instances on a first deploy)"
    )
    if parsed.bespoke:
        notes.append(("autoscaling.metrics_providers[0].decision_policy", (
            f"bespoke: an external autoscaler owns the replica count, {no_hpa}; paasta_lite has no "
            "API to set it"
        )))
    elif not parsed.hpa_providers:
        notes.append(("autoscaling.metrics_providers", f"no metrics provider paasta_lite can use, {no_hpa}"))
    if merged.get("min_instances") == 0:
        notes.append(("min_instances", f"a HorizontalPodAutoscaler cannot scale to 0, {no_hpa}"))
    return notes


def autoscaling_warnings(merged: Mapping[str, Any], *, path: str, instance: str) -> list[Problem]:
    """Autoscaling keys that have no effect, each named: never silently ignored."""
    if merged.get("max_instances") is None:
        notes = [
            (key, "has no effect without max_instances (the instance runs `instances` replicas)")
            for key in ("autoscaling", "min_instances") if key in merged
        ]
    else:
        notes = _scaling_warnings(merged)
    return [Problem(path, message, instance, key) for key, message in notes]
