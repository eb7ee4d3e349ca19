"""HorizontalPodAutoscaler, PodDisruptionBudget and first-deploy replicas (`kube/render_scaling.py`),
with the config keys behind them (`config/autoscaling.py`, instance and system schemas).

Behaviours covered:
- an HPA only for autoscaled instances (`max_instances` set), never when stopped, bespoke, with
  `min_instances: 0`, or with no provider the HPA can measure; min/max from the config (min
  default 1); the default metric is cpu at PaaSTA's setpoint 0.8; setpoints map exactly to
  utilization percentages; cpu and memory providers in their order;
- `behavior.scaleDown` is PaaSTA's default, updated key by key with `scaledown_policies`;
- every autoscaling key that cannot map onto the HPA is a warning naming file, instance and
  field; PaaSTA's validation rules are errors; `scaledown_policies` is checked against the HPA's
  rules; the keys are implemented (no "does not implement" warning any more);
- PDB: maxUnavailable from the system's `pdb_max_unavailable` (default 0) unless the instance sets
  `bounce_margin_factor` (then exactly the Deployment's maxUnavailable), unhealthyPodEvictionPolicy
  from the instance, the system, or `IfHealthyBudget`; its selector is the Deployment's;
- labels: the Deployment's identity labels (service, instance, managed-by...) without the version,
  plus a config hash that is stable, a fixed point, and changes only on relevant changes;
- replicas: a new autoscaled Deployment starts at `max_instances`; an existing one keeps its live
  count clamped to [min, max] (also what `paasta status` expects);
- names and label values are ones the real API server accepts (also checked once against a real
  v1.28 API server with a server-side dry run; see the report of the branch hpa-pdb).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from soa_builders import GOOD_SHA, deployments_doc, write_tree

from paasta_lite.config.autoscaling import Autoscaling, MetricsProvider, parse_autoscaling
from paasta_lite.config.deployments_json import Control, DeployedVersion
from paasta_lite.config.instance_config import InstanceConfig
from paasta_lite.config.soa_config import SoaDir
from paasta_lite.config.system_config import SystemConfig, parse_system_config
from paasta_lite.errors import ConfigError, Problem
from paasta_lite.kube import labels
from paasta_lite.kube.config_hash import config_hash, config_hash_label
from paasta_lite.kube.render import render_app
from paasta_lite.kube.render_scaling import (
    DEFAULT_SCALE_DOWN,
    initial_replicas,
    kept_replicas,
    render_hpa,
    render_pdb,
)
from paasta_lite.status.instance_status import desired_for

SYSTEM = SystemConfig(directory="/nonexistent", cluster="c1", docker_registry="registry.test")
START, STOP = Control(), Control(desired_state="stop")
VERSION = DeployedVersion("services-svc:paasta-" + "a" * 40, "a" * 40)
P0 = "autoscaling.metrics_providers[0]"
SCALE_DOWN = "autoscaling.scaledown_policies"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


def make_instance(**overrides: Any) -> InstanceConfig:
    base = InstanceConfig(
        service="svc", instance="main", cluster="c1", source="/soa/svc/kubernetes-c1.yaml",
        deploy_group="c1.main", namespace="paastasvc-svc",
    )
    return replace(base, **overrides)


def autoscaled(**overrides: Any) -> InstanceConfig:
    return make_instance(**{"min_instances": 2, "max_instances": 8, **overrides})


def hpa_of(instance: InstanceConfig, control: Control = START) -> dict[str, Any]:
    hpa = render_hpa(instance, control)
    assert hpa is not None
    return hpa


def load(tmp_path: Path, body: dict[str, Any], service_yaml: dict[str, Any] | None = None) -> Any:
    """Load instance `main` of service `svc` through the real loader: (config or error, warnings)."""
    root = write_tree(tmp_path / "soa", {
        "svc/service.yaml": service_yaml or {"description": "d"},
        "svc/kubernetes-c1.yaml": {"main": body},
        "svc/deployments.json": deployments_doc({"c1.main": GOOD_SHA}),
    })
    service = SoaDir(root).load_service("svc")
    result = service.instances["c1"].get("main") or service.invalid_instances["c1"]["main"]
    return result, service.warnings


def warning_fields(warnings: tuple[Problem, ...]) -> dict[str | None, str]:
    return {w.field: w.message for w in warnings}


def error_fields(error: ConfigError) -> dict[str | None, str]:
    return {p.field: p.message for p in error.problems}


# --- the HPA ----------------------------------------------------------------------------------


def test_only_autoscaled_instances_get_an_hpa() -> None:
    assert render_hpa(make_instance(instances=5), START) is None
    hpa = hpa_of(autoscaled())
    assert (hpa["apiVersion"], hpa["kind"]) == ("autoscaling/v2", "HorizontalPodAutoscaler")
    assert hpa["metadata"]["name"] == "svc-main" and hpa["metadata"]["namespace"] == "paastasvc-svc"
    target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": "svc-main"}
    assert hpa["spec"]["scaleTargetRef"] == target


def test_min_and_max_come_from_the_config_with_min_defaulting_to_1() -> None:
    spec = hpa_of(autoscaled())["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (2, 8)
    spec = hpa_of(make_instance(max_instances=3))["spec"]
    assert (spec["minReplicas"], spec["maxReplicas"]) == (1, 3)


def test_default_metric_is_cpu_at_paastas_setpoint() -> None:
    target = {"type": "Utilization", "averageUtilization": 80}
    assert hpa_of(autoscaled())["spec"]["metrics"] == [
        {"type": "Resource", "resource": {"name": "cpu", "target": target}}
    ]


@pytest.mark.parametrize(("setpoint", "percent"), [(0.5, 50), (0.57, 57), (0.29, 29), (1.5, 150), (0.01, 1)])
def test_setpoints_map_exactly_to_utilization(setpoint: float, percent: int) -> None:
    instance = autoscaled(autoscaling=Autoscaling((MetricsProvider("memory", setpoint),)))
    (metric,) = hpa_of(instance)["spec"]["metrics"]
    target = {"type": "Utilization", "averageUtilization": percent}
    assert metric["resource"] == {"name": "memory", "target": target}


def test_cpu_and_memory_providers_keep_their_order_and_others_are_left_out(tmp_path: Path) -> None:
    config, _ = load(tmp_path, {"max_instances": 4, "autoscaling": {"metrics_providers": [
        {"type": "memory", "setpoint": 0.7}, {"type": "worker-load"}, {"type": "cpu"},
    ]}})
    metrics = hpa_of(config)["spec"]["metrics"]
    assert [(m["resource"]["name"], m["resource"]["target"]["averageUtilization"]) for m in metrics] == [
        ("memory", 70), ("cpu", 80),
    ]


def test_default_behaviour_is_paastas_scale_down_policy() -> None:
    assert hpa_of(autoscaled())["spec"]["behavior"] == {"scaleDown": {
        "stabilizationWindowSeconds": 300,
        "selectPolicy": "Max",
        "policies": [{"type": "Percent", "value": 30, "periodSeconds": 60}],
    }}


def test_scaledown_policies_update_the_default_key_by_key(tmp_path: Path) -> None:
    config, warnings = load(tmp_path, {"max_instances": 4, "autoscaling": {
        "scaledown_policies": {"stabilizationWindowSeconds": 600},
    }})
    assert warnings == ()
    behaviour = hpa_of(config)["spec"]["behavior"]["scaleDown"]
    assert behaviour == {**DEFAULT_SCALE_DOWN, "stabilizationWindowSeconds": 600}
    policies = [{"type": "Pods", "value": 2, "periodSeconds": 120}]
    config, _ = load(tmp_path, {"max_instances": 4, "autoscaling": {
        "scaledown_policies": {"selectPolicy": "Min", "policies": policies},
    }})
    scale_down = hpa_of(config)["spec"]["behavior"]["scaleDown"]
    assert scale_down == {"stabilizationWindowSeconds": 300, "selectPolicy": "Min", "policies": policies}
    scale_down["policies"][0]["value"] = 99  # the rendered object shares nothing with the config
    assert hpa_of(config)["spec"]["behavior"]["scaleDown"]["policies"] == policies


@pytest.mark.parametrize(
    ("instance", "control"),
    [
        (autoscaled(), STOP),  # a stopped instance must not be scaled back up
        (autoscaled(autoscaling=Autoscaling((MetricsProvider("cpu", 0.8, "bespoke"),))), START),
        (autoscaled(min_instances=0), START),  # an HPA cannot scale to zero
        (autoscaled(autoscaling=Autoscaling((MetricsProvider("uwsgi"),))), START),
    ],
    ids=["stopped", "bespoke", "min-0", "no-usable-provider"],
)
def test_no_hpa_when_paasta_would_have_none(instance: InstanceConfig, control: Control) -> None:
    assert render_hpa(instance, control) is None


# --- config keys: implemented, warnings, errors --------------------------------------------------


def test_autoscaling_keys_are_implemented_and_parsed(tmp_path: Path) -> None:
    config, warnings = load(tmp_path, {
        "min_instances": 3, "max_instances": 9, "unhealthy_pod_eviction_policy": "AlwaysAllow",
        "autoscaling": {"metrics_providers": [
            {"type": "cpu", "setpoint": 0.6, "forecast_policy": "current"},
        ]},
    })
    assert warnings == ()
    assert isinstance(config, InstanceConfig)
    assert config.autoscaling.metrics_providers == (MetricsProvider("cpu", 0.6, "proportional"),)
    assert config.unhealthy_pod_eviction_policy == "AlwaysAllow"
    assert parse_autoscaling(None) == Autoscaling() == parse_autoscaling({"metrics_providers": []})
    assert Autoscaling().metrics_providers == (MetricsProvider("cpu", 0.8, "proportional"),)


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        ({"type": "uwsgi"}, f"{P0}.type", "Prometheus adapter"),
        ({"type": "arbitrary-promql", "metrics_query": "up"}, f"{P0}.type", "does not use it"),
        ({"moving_average_window_seconds": 600}, f"{P0}.moving_average_window_seconds", "no moving average"),
        ({"forecast_policy": "moving_average"}, f"{P0}.forecast_policy", "stabilizationWindowSeconds"),
        ({"max_instances_alert_threshold": 0.9}, f"{P0}.max_instances_alert_threshold", "does not alert"),
        ({"decision_policy": "pid"}, f"{P0}.decision_policy", "treated as proportional"),
        ({"decision_policy": "bespoke"}, f"{P0}.decision_policy", "no HorizontalPodAutoscaler"),
    ],
)
def test_keys_the_hpa_cannot_express_are_named_warnings(
    tmp_path: Path, body: dict[str, Any], field: str, words: str
) -> None:
    config, warnings = load(tmp_path, {"max_instances": 4, "autoscaling": {"metrics_providers": [body]}})
    assert isinstance(config, InstanceConfig)  # a warning, not an error: PaaSTA soa-configs load
    messages = warning_fields(warnings)
    assert words in messages[field]
    assert all(w.instance == "main" and w.path.endswith("kubernetes-c1.yaml") for w in warnings)


def test_instances_that_get_no_hpa_are_told_why(tmp_path: Path) -> None:
    gunicorn = {"metrics_providers": [{"type": "gunicorn"}]}
    _, warnings = load(tmp_path, {"max_instances": 4, "autoscaling": gunicorn})
    message = warning_fields(warnings)["autoscaling.metrics_providers"]
    assert "no metrics provider paasta_lite can use" in message
    _, warnings = load(tmp_path, {"max_instances": 4, "min_instances": 0})
    assert "cannot scale to 0" in warning_fields(warnings)["min_instances"]


def test_autoscaling_keys_without_max_instances_have_no_effect_and_say_so(tmp_path: Path) -> None:
    config, warnings = load(tmp_path, {"instances": 2, "min_instances": 1, "autoscaling": {}})
    assert render_hpa(config, START) is None
    messages = warning_fields(warnings)
    assert set(messages) == {"autoscaling", "min_instances"}
    assert all("no effect without max_instances" in m for m in messages.values())


def test_a_plain_instance_has_no_autoscaling_warnings(tmp_path: Path) -> None:
    assert load(tmp_path, {"instances": 3})[1] == ()
    assert load(tmp_path, {"max_instances": 3})[1] == ()


@pytest.mark.parametrize(
    ("autoscaling", "field", "words"),
    [
        ({"metrics_providers": [{"type": "cpu"}, {"type": "cpu", "setpoint": 0.5}]},
         "autoscaling.metrics_providers[1].type", "listed twice"),
        ({"metrics_providers": [{"decision_policy": "bespoke"}, {"type": "memory"}]},
         f"{P0}.decision_policy", "cannot be combined"),
        ({"metrics_providers": [{"type": "cpu", "metrics_query": "up"}]},
         f"{P0}.metrics_query", "does not support"),
        ({"metrics_providers": [{"type": "memory", "desired_active_requests_per_replica": 3}]},
         f"{P0}.desired_active_requests_per_replica", "does not support"),
        ({"metrics_providers": [{"type": "cpu", "setpoint": 0.005}]}, f"{P0}.setpoint", "at least 0.01"),
        ({"metrics_providers": [{"type": "cpu", "setpoint": 0}]}, f"{P0}.setpoint", "greater than 0"),
        ({"metrics_providers": [{"type": "cpus"}]}, f"{P0}.type", "must be one of"),
        ({"metrics_providers": [{"typo": 1}]}, P0, "unknown field(s): typo"),
        ({"scaledown_policy": {}}, "autoscaling", "unknown field(s): scaledown_policy"),
        ({"scaledown_policies": {"policies": []}}, f"{SCALE_DOWN}.policies", "must not be empty"),
        ({"scaledown_policies": {"selectPolicy": "max"}}, f"{SCALE_DOWN}.selectPolicy", "must be one of"),
        ({"scaledown_policies": {"stabilizationWindowSeconds": 7200}},
         f"{SCALE_DOWN}.stabilizationWindowSeconds", "at most 3600"),
        ({"scaledown_policies": {"policies": [{"type": "Percent", "value": 10}]}},
         f"{SCALE_DOWN}.policies[0]", "periodSeconds"),
    ],
)
def test_autoscaling_config_errors_name_the_field(
    tmp_path: Path, autoscaling: dict[str, Any], field: str, words: str
) -> None:
    error, _ = load(tmp_path, {"max_instances": 4, "autoscaling": autoscaling})
    assert isinstance(error, ConfigError)
    assert words in error_fields(error)[field]


def test_unhealthy_pod_eviction_policy_is_checked(tmp_path: Path) -> None:
    error, _ = load(tmp_path, {"unhealthy_pod_eviction_policy": "Always"})
    message = error_fields(error)["unhealthy_pod_eviction_policy"]
    assert "must be one of IfHealthyBudget, AlwaysAllow" in message


# --- the PDB ----------------------------------------------------------------------------------


def test_pdb_follows_paastas_defaults() -> None:
    pdb = render_pdb(make_instance(), SYSTEM)
    assert (pdb["apiVersion"], pdb["kind"]) == ("policy/v1", "PodDisruptionBudget")
    assert pdb["metadata"]["name"] == "svc-main" and pdb["metadata"]["namespace"] == "paastasvc-svc"
    assert pdb["spec"] == {
        "maxUnavailable": 0,  # PaaSTA's pdb_max_unavailable default: no voluntary evictions
        "selector": {"matchLabels": {labels.SERVICE: "svc", labels.INSTANCE: "main"}},
        "unhealthyPodEvictionPolicy": "IfHealthyBudget",
    }


def test_pdb_selects_exactly_the_deployments_pods() -> None:
    app = render_app(make_instance(), VERSION, START, SYSTEM)
    assert app.pdb is not None
    assert app.pdb["spec"]["selector"] == app.deployment["spec"]["selector"]
    pod_labels = app.deployment["spec"]["template"]["metadata"]["labels"]
    assert app.pdb["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()


def test_system_config_overrides_the_pdb_defaults() -> None:
    keys = {"pdb_max_unavailable": "25%", "unhealthy_pod_eviction_policy": "AlwaysAllow"}
    system = parse_system_config([("/etc/paasta/pdb.json", keys)], "/etc/paasta")
    spec = render_pdb(make_instance(), system)["spec"]
    assert (spec["maxUnavailable"], spec["unhealthyPodEvictionPolicy"]) == ("25%", "AlwaysAllow")
    pods = parse_system_config([("/etc/paasta/pdb.json", {"pdb_max_unavailable": 1})], "/etc/paasta")
    assert render_pdb(make_instance(), pods)["spec"]["maxUnavailable"] == 1


@pytest.mark.parametrize("value", ["abc", -1, "150%", "10", 1.5, True])
def test_bad_pdb_max_unavailable_is_a_system_config_error(value: Any) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_system_config([("/etc/paasta/pdb.json", {"pdb_max_unavailable": value})], "/etc/paasta")
    (problem,) = excinfo.value.problems
    assert (problem.path, problem.field) == ("/etc/paasta/pdb.json", "pdb_max_unavailable")
    assert "percentage" in problem.message


def test_a_set_bounce_margin_factor_wins_over_the_system_default(tmp_path: Path) -> None:
    config, _ = load(tmp_path, {"bounce_margin_factor": 0.9})
    spec = render_pdb(config, SYSTEM)["spec"]
    app = render_app(config, VERSION, START, SYSTEM)
    assert spec["maxUnavailable"] == "10%"  # exact, not PaaSTA's float "9%"
    assert spec["maxUnavailable"] == app.deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"]
    from_service, _ = load(tmp_path, {}, service_yaml={"bounce_margin_factor": 0.5})
    assert render_pdb(from_service, SYSTEM)["spec"]["maxUnavailable"] == "50%"
    default, _ = load(tmp_path, {})  # 0.95 by default, but not set: the system's value
    assert render_pdb(default, SYSTEM)["spec"]["maxUnavailable"] == 0


def test_instance_eviction_policy_wins_over_the_system_one() -> None:
    system = replace(SYSTEM, unhealthy_pod_eviction_policy="AlwaysAllow")
    instance = make_instance(unhealthy_pod_eviction_policy="IfHealthyBudget")
    assert render_pdb(instance, system)["spec"]["unhealthyPodEvictionPolicy"] == "IfHealthyBudget"
    assert render_pdb(make_instance(), system)["spec"]["unhealthyPodEvictionPolicy"] == "AlwaysAllow"


def test_stopped_instances_keep_their_pdb() -> None:
    version = VERSION
    assert render_app(make_instance(), version, STOP, SYSTEM).pdb == render_pdb(make_instance(), SYSTEM)


# --- labels and hashes --------------------------------------------------------------------------


def test_hpa_and_pdb_carry_the_deployments_identity_labels() -> None:
    version = DeployedVersion("services-svc:paasta-" + "a" * 40 + "-v2", "a" * 40, "v2")
    app = render_app(autoscaled(), version, START, SYSTEM)
    assert app.hpa is not None and app.pdb is not None
    deployment_labels = dict(app.deployment["metadata"]["labels"])
    expected = {
        k: v for k, v in deployment_labels.items()
        if k not in (labels.GIT_SHA, labels.IMAGE_VERSION, labels.CONFIG_SHA)
    }
    for obj in (app.hpa, app.pdb):
        own = dict(obj["metadata"]["labels"])
        assert own.pop(labels.CONFIG_SHA) == config_hash(obj)
        assert own == expected
        assert own[labels.APP_MANAGED_BY] == "paasta_lite" and own[labels.MANAGED] == "true"
        assert (own[labels.SERVICE], own[labels.INSTANCE]) == ("svc", "main")


def test_hash_is_stable_and_a_fixed_point() -> None:
    hpa, pdb = hpa_of(autoscaled()), render_pdb(autoscaled(), SYSTEM)
    assert hpa == hpa_of(autoscaled()) and pdb == render_pdb(autoscaled(), SYSTEM)
    for obj in (hpa, pdb):
        assert config_hash_label(obj) == config_hash(obj)
        assert re.fullmatch(r"config[0-9a-f]{8}", config_hash_label(obj) or "")
    policies = [{"type": "Pods", "value": 1, "periodSeconds": 60}]
    one_order = Autoscaling(scaledown_policies={"selectPolicy": "Min", "policies": policies})
    other_order = Autoscaling(scaledown_policies={"policies": policies, "selectPolicy": "Min"})
    reordered, same = autoscaled(autoscaling=one_order), autoscaled(autoscaling=other_order)
    assert config_hash_label(hpa_of(reordered)) == config_hash_label(hpa_of(same))


@pytest.mark.parametrize(
    "change",
    [
        {"max_instances": 9},
        {"min_instances": 3},
        {"autoscaling": Autoscaling((MetricsProvider("cpu", 0.6),))},
        {"autoscaling": Autoscaling(scaledown_policies={"stabilizationWindowSeconds": 60})},
        {"namespace": "elsewhere"},
    ],
)
def test_hpa_hash_changes_with_what_the_hpa_says(change: dict[str, Any]) -> None:
    assert config_hash_label(hpa_of(autoscaled(**change))) != config_hash_label(hpa_of(autoscaled()))


@pytest.mark.parametrize(
    ("change", "system"),
    [
        ({"bounce_margin_factor": 0.9, "bounce_margin_factor_is_set": True}, SYSTEM),
        ({"unhealthy_pod_eviction_policy": "AlwaysAllow"}, SYSTEM),
        ({}, replace(SYSTEM, pdb_max_unavailable="10%")),
    ],
)
def test_pdb_hash_changes_with_what_the_pdb_says(change: dict[str, Any], system: SystemConfig) -> None:
    assert config_hash_label(render_pdb(make_instance(**change), system)) != config_hash_label(
        render_pdb(make_instance(), SYSTEM)
    )


def test_hashes_ignore_what_neither_object_depends_on() -> None:
    first = VERSION
    second = DeployedVersion("services-svc:paasta-" + "b" * 40, "b" * 40)
    one = render_app(autoscaled(), first, START, SYSTEM)
    changed = autoscaled(cpus=4, env={"A": "1"}, instances=7)
    other = render_app(changed, second, Control(force_bounce="x"), SYSTEM)
    assert one.config_hash != other.config_hash  # the Deployment bounces...
    assert (one.hpa, one.pdb) == (other.hpa, other.pdb)  # ...its HPA and PDB are not rewritten
    # a margin the config does not set (the 0.95 default) does not touch the PDB
    unset = make_instance(bounce_margin_factor=0.5)
    assert render_pdb(unset, SYSTEM) == render_pdb(make_instance(), SYSTEM)


def test_names_and_label_values_are_valid_for_long_names() -> None:
    service = "a-service-with-a-really-long-name-that-pushes-every-limit-hard"
    instance = "an_instance_" + "x" * 50
    config = autoscaled(service=service, instance=instance, deploy_group="c1." + instance)
    for obj in (hpa_of(config), render_pdb(config, SYSTEM)):
        assert DNS_LABEL.match(obj["metadata"]["name"]) and len(obj["metadata"]["name"]) <= 63
        assert all(LABEL_VALUE.match(v) and len(v) <= 63 for v in obj["metadata"]["labels"].values())
    assert hpa_of(config)["spec"]["scaleTargetRef"]["name"] == render_pdb(config, SYSTEM)["metadata"]["name"]


# --- replicas -----------------------------------------------------------------------------------


def test_a_new_autoscaled_deployment_starts_at_max_instances() -> None:
    assert initial_replicas(autoscaled()) == 8
    assert initial_replicas(make_instance(max_instances=3)) == 3
    assert initial_replicas(make_instance(instances=5)) == 5
    assert initial_replicas(make_instance(instances=5, max_instances=2)) == 2  # instances is ignored


@pytest.mark.parametrize(("live", "kept"), [(5, 5), (1, 2), (0, 2), (20, 8), (8, 8), (2, 2)])
def test_an_existing_autoscaled_deployment_keeps_its_live_count_within_bounds(live: int, kept: int) -> None:
    assert kept_replicas(autoscaled(), live) == kept


def test_status_expects_what_the_reconciler_does(tmp_path: Path) -> None:
    config, _ = load(tmp_path, {"min_instances": 2, "max_instances": 6})
    root = tmp_path / "soa"
    service = SoaDir(root).load_service("svc")
    assert desired_for(service, config).replicas == 6  # no Deployment yet: it will be created at max
    assert desired_for(service, config, live_replicas=3).replicas == 3  # the HPA's count
    assert desired_for(service, config, live_replicas=10).replicas == 6
    assert desired_for(service, config, live_replicas=1).replicas == 2
