"""Rendering an instance into the Namespace and Deployment setup_kubernetes_job applies.

Behaviours covered:
- fixture soa-configs (tests/fixtures/render/soa) render to exactly the expected objects in
  tests/fixtures/render/expected/<job_id>.yaml: every bounce method, stop, force_bounce,
  autoscaled, long names, each probe mode, resources, volumes, env (the files pin the config
  hashes too, so an accidental hash change shows up here);
- an instance with no deployments.json entry is "not deployed yet" and an invalid one is a
  ConfigError, while their siblings render;
- strategy: maxUnavailable computed exactly from bounce_margin_factor (never PaaSTA's 0.9 -> 9%),
  maxSurge from the overprovision factor or the system default, Recreate, brutal, unknown
  methods and impossible combinations are config errors;
- replicas: instances, 0 when stopped, max_instances for a new autoscaled Deployment (PaaSTA's
  first-deploy rule); stop keeps the hash; the app carries its HPA (autoscaled only) and PDB;
- force_bounce changes the pod template (annotation + hash) and nothing else;
- env: PAASTA_* variables, user override, order independent of the YAML's;
- volumes: system + instance, deduplicated, instance wins on a container path, unique valid names;
- every name and label value is one the real API server accepts (checked with regexes written
  here from the Kubernetes validation rules, independent of the renderer's own).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from paasta_lite.config.deployments_json import Control, DeployedVersion, DeploymentsJson
from paasta_lite.config.instance_config import InstanceConfig
from paasta_lite.config.naming import label_value, volume_names
from paasta_lite.config.soa_config import SoaDir
from paasta_lite.config.system_config import SystemConfig, load_system_config
from paasta_lite.config.volumes import Volume
from paasta_lite.errors import ConfigError, NotConfiguredError, NotDeployedError
from paasta_lite.kube import labels
from paasta_lite.kube.config_hash import config_hash
from paasta_lite.kube.render import (
    RenderedApp,
    max_surge,
    max_unavailable,
    render_app,
    render_instance,
    render_service_instances,
)

FIXTURES = Path(__file__).parent / "fixtures" / "render"
CLUSTER = "testcluster"
SHA = "b" * 40
VERSION = DeployedVersion(f"services-svc:paasta-{SHA}", SHA)
SYSTEM = SystemConfig(directory="/nonexistent", cluster="c1", docker_registry="registry.test")

# Kubernetes validation rules (apimachinery validation.go), written independently of render.py.
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
LABEL_KEY_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
PERCENT = re.compile(r"^[0-9]+%$")


def make_instance(**overrides: Any) -> InstanceConfig:
    base = InstanceConfig(
        service="svc", instance="main", cluster="c1", source="/soa/svc/kubernetes-c1.yaml",
        deploy_group="c1.main", namespace="paastasvc-svc",
    )
    return replace(base, **overrides)


def render(instance: InstanceConfig | None = None, control: Control | None = None,
           system: SystemConfig = SYSTEM) -> RenderedApp:
    return render_app(instance or make_instance(), VERSION, control or Control(), system)


def container(app: RenderedApp) -> dict[str, Any]:
    containers = app.deployment["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return dict(containers[0])


@pytest.fixture(scope="module")
def fixture_render() -> tuple[dict[str, RenderedApp], dict[str, Exception]]:
    system = load_system_config(str(FIXTURES / "system"))
    soa = SoaDir(FIXTURES / "soa")
    apps: dict[str, RenderedApp] = {}
    errors: dict[str, Exception] = {}
    for name in soa.list_services():
        rendered, failed = render_service_instances(soa.load_service(name), CLUSTER, system)
        apps.update((app.job_id, app) for app in rendered)
        errors.update(failed)
    return apps, errors


EXPECTED = sorted(path.stem for path in (FIXTURES / "expected").glob("*.yaml"))


def test_every_expected_file_has_a_rendered_app_and_back(fixture_render: Any) -> None:
    apps, _ = fixture_render
    assert sorted(apps) == EXPECTED


@pytest.mark.parametrize("job", EXPECTED)
def test_fixture_renders_to_expected_objects(job: str, fixture_render: Any) -> None:
    apps, _ = fixture_render
    expected = list(yaml.safe_load_all((FIXTURES / "expected" / f"{job}.yaml").read_text()))
    app = apps[job]
    assert [app.namespace_manifest, app.deployment] == expected
    assert app.config_hash == expected[1]["metadata"]["labels"][labels.CONFIG_SHA]


def test_not_deployed_and_invalid_instances_are_reported_not_fatal(fixture_render: Any) -> None:
    apps, errors = fixture_render
    assert set(errors) == {"web_app.later", "web_app.broken"}
    assert isinstance(errors["web_app.later"], NotDeployedError)
    assert "not deployed yet" in str(errors["web_app.later"])
    assert "testcluster.later" in str(errors["web_app.later"])
    assert isinstance(errors["web_app.broken"], ConfigError)
    assert "web_app.main" in apps


def test_only_renders_the_named_instances() -> None:
    system = load_system_config(str(FIXTURES / "system"))
    service = SoaDir(FIXTURES / "soa").load_service("web_app")
    apps, errors = render_service_instances(service, CLUSTER, system, only={"main", "later"})
    assert [a.instance for a in apps] == ["main"]
    assert list(errors) == ["web_app.later"]


def test_unknown_cluster_renders_nothing() -> None:
    service = SoaDir(FIXTURES / "soa").load_service("web_app")
    assert render_service_instances(service, "elsewhere", SYSTEM) == ([], {})


# --- names and labels -------------------------------------------------------------------------


def assert_api_valid(app: RenderedApp) -> None:
    """Every name and label the API server validates, checked against its rules."""
    deployment = app.deployment
    for name in (app.namespace, deployment["metadata"]["name"], container(app)["name"]):
        assert DNS_LABEL.match(name) and len(name) <= 63, name
    assert deployment["metadata"]["namespace"] == app.namespace
    template = deployment["spec"]["template"]
    label_sets = [
        deployment["metadata"]["labels"], template["metadata"]["labels"],
        deployment["spec"]["selector"]["matchLabels"], app.namespace_manifest["metadata"]["labels"],
    ]
    for label_set in label_sets:
        for key, value in label_set.items():
            prefix, _, name = key.rpartition("/")
            assert LABEL_KEY_NAME.match(name) and len(name) <= 63, key
            assert not prefix or DNS_LABEL.match(prefix.replace(".", "-")), key
            assert isinstance(value, str) and LABEL_VALUE.match(value) and len(value) <= 63, (key, value)
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= template["metadata"]["labels"].items()
    for volume in template["spec"].get("volumes", []):
        assert DNS_LABEL.match(volume["name"]) and len(volume["name"]) <= 63, volume
    for env in container(app)["env"]:
        assert ENV_NAME.match(env["name"]) and isinstance(env["value"], str), env
    for key in ("maxSurge", "maxUnavailable"):
        value = deployment["spec"]["strategy"].get("rollingUpdate", {}).get(key)
        assert value is None or PERCENT.match(value), value


def test_every_fixture_object_is_valid_for_the_api_server(fixture_render: Any) -> None:
    apps, _ = fixture_render
    for app in apps.values():
        assert_api_valid(app)


def test_labels_and_selector() -> None:
    app = render(make_instance(deploy_group="c1.main"))
    metadata_labels = app.deployment["metadata"]["labels"]
    assert metadata_labels[labels.SERVICE] == "svc"
    assert metadata_labels[labels.INSTANCE] == "main"
    assert metadata_labels[labels.GIT_SHA] == SHA
    assert metadata_labels[labels.DEPLOY_GROUP] == "c1.main"
    assert metadata_labels[labels.MANAGED] == "true"
    assert metadata_labels[labels.CONFIG_SHA] == app.config_hash
    assert metadata_labels[labels.APP_NAME] == "svc"
    assert metadata_labels[labels.APP_INSTANCE] == "svc-main"
    assert metadata_labels[labels.APP_MANAGED_BY] == "paasta_lite"
    assert app.deployment["spec"]["selector"] == {
        "matchLabels": {labels.SERVICE: "svc", labels.INSTANCE: "main"}
    }
    assert app.deployment["spec"]["template"]["metadata"]["labels"] == metadata_labels
    assert app.git_sha == SHA


def test_long_names_are_shortened_with_a_stable_hash() -> None:
    service, instance = "s" * 30 + "_" + "t" * 32, "i" * 20 + "_" + "j" * 40
    config = make_instance(service=service, instance=instance, namespace="paastasvc-x")
    first, second = render(config), render(config)
    assert len(first.name) == 63 and first.name == second.name
    assert first.config_hash == second.config_hash
    assert_api_valid(first)
    other = render(make_instance(service=service, instance=instance[:-1] + "k", namespace="paastasvc-x"))
    assert other.name != first.name  # same 54-character prefix, different hash suffix


@pytest.mark.parametrize(
    "value",
    ["prod.main", "x" * 64, "everything/{cluster}", "a+b", "-leading", "trailing.", "___", "", "ÄÖ"],
)
def test_label_values_are_always_valid_and_stable(value: str) -> None:
    result = label_value(value)
    assert LABEL_VALUE.match(result) and len(result) <= 63
    assert label_value(value) == result
    if LABEL_VALUE.match(value) and len(value) <= 63:
        assert result == value


def test_distinct_invalid_label_values_stay_distinct() -> None:
    assert label_value("a+b") != label_value("a/b")
    assert label_value("x" * 64) != label_value("x" * 65)


def test_missing_docker_registry_is_not_configured() -> None:
    with pytest.raises(NotConfiguredError):
        render(system=SystemConfig(directory="/nowhere"))
    app = render(make_instance(docker_registry="svc-registry.test"), system=SystemConfig(directory="/x"))
    assert container(app)["image"] == f"svc-registry.test/services-svc:paasta-{SHA}"


# --- strategy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("margin", "expected"),
    [(0.9, "10%"), (0.95, "5%"), (0.99, "1%"), (0.29, "71%"), (0.7, "30%"), (0.333, "66%"),
     (0.5, "50%"), (1.0, "0%"), (1, "0%"), (0.0, "100%"), (0.125, "87%")],
)
def test_max_unavailable_is_exact(margin: float, expected: str) -> None:
    assert max_unavailable(margin) == expected


@given(st.integers(min_value=0, max_value=100))
def test_max_unavailable_for_every_whole_percent(percent: int) -> None:
    assert max_unavailable(percent / 100) == f"{100 - percent}%"


@given(st.floats(min_value=0, max_value=1))
def test_max_unavailable_never_lets_availability_drop_below_the_margin(margin: float) -> None:
    unavailable = int(max_unavailable(margin).rstrip("%"))
    assert 0 <= unavailable <= 100
    assert (100 - unavailable) / 100 >= margin - 1e-12


@pytest.mark.parametrize(("factor", "expected"), [(1.0, "100%"), (0.5, "50%"), (1.25, "125%"), (0.005, "1%")])
def test_max_surge(factor: float, expected: str) -> None:
    assert max_surge(factor) == expected


def strategy_of(**overrides: Any) -> dict[str, Any]:
    system = overrides.pop("system", SYSTEM)
    return dict(render(make_instance(**overrides), system=system).deployment["spec"]["strategy"])


def test_crossover_uses_the_system_default_overprovision() -> None:
    system = replace(SYSTEM, default_bounce_overprovision_factor=0.25)
    assert strategy_of(system=system) == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "5%"}
    }
    assert strategy_of(system=system, bounce_overprovision_factor=2.0)["rollingUpdate"]["maxSurge"] == "200%"


def test_downthenup_is_recreate_and_brutal_drops_everything() -> None:
    assert strategy_of(bounce_method="downthenup") == {"type": "Recreate"}
    assert strategy_of(bounce_method="brutal") == {
        "type": "RollingUpdate", "rollingUpdate": {"maxSurge": "100%", "maxUnavailable": "100%"}
    }


def test_unknown_bounce_method_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError) as raised:
        render(make_instance(bounce_method="upthendown"))
    problem = raised.value.problems[0]
    assert problem.field == "bounce_method" and problem.instance == "main"
    assert "crossover, downthenup, brutal" in problem.message


def test_a_bounce_that_can_neither_surge_nor_drop_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="maxSurge and maxUnavailable both 0"):
        render(make_instance(bounce_margin_factor=1.0, bounce_overprovision_factor=0.001))


def test_min_ready_seconds_and_revision_history() -> None:
    spec = render(make_instance(min_task_uptime=30)).deployment["spec"]
    assert spec["minReadySeconds"] == 30
    assert 0 <= spec["revisionHistoryLimit"] <= 3


# --- replicas, stop, force_bounce --------------------------------------------------------------


def test_replicas_from_instances_and_stop() -> None:
    config = make_instance(instances=5)
    running, stopped = render(config), render(config, Control(desired_state="stop"))
    assert (running.replicas, running.deployment["spec"]["replicas"]) == (5, 5)
    assert (stopped.replicas, stopped.deployment["spec"]["replicas"]) == (0, 0)
    assert stopped.config_hash == running.config_hash  # stop/start scales, never bounces


def test_autoscaled_instances_start_at_max_instances() -> None:
    app = render(make_instance(instances=9, min_instances=3, max_instances=10))
    assert (app.replicas, app.autoscaled) == (10, True)
    assert app.deployment["spec"]["replicas"] == 10
    assert app.deployment["metadata"]["labels"][labels.AUTOSCALED] == "true"
    assert render(make_instance(max_instances=4)).replicas == 4
    assert render(make_instance(max_instances=4), Control(desired_state="stop")).replicas == 0
    assert render().autoscaled is False


def test_rendered_app_carries_its_hpa_and_pdb() -> None:
    autoscaled = render(make_instance(min_instances=2, max_instances=5))
    assert autoscaled.hpa is not None and autoscaled.pdb is not None
    assert autoscaled.hpa["kind"] == "HorizontalPodAutoscaler"
    assert autoscaled.hpa["spec"]["scaleTargetRef"]["name"] == autoscaled.name
    assert autoscaled.pdb["metadata"]["name"] == autoscaled.name
    plain = render()
    assert plain.hpa is None and plain.pdb is not None
    assert plain.pdb["spec"]["selector"] == plain.deployment["spec"]["selector"]
    stopped = render(make_instance(max_instances=5), Control(desired_state="stop"))
    assert stopped.hpa is None and stopped.pdb is not None


def test_force_bounce_changes_only_the_pod_template() -> None:
    before = render(make_instance())
    after = render(make_instance(), Control(force_bounce="20240101T000000"))
    assert after.config_hash != before.config_hash
    template = after.deployment["spec"]["template"]
    assert template["metadata"]["annotations"] == {labels.FORCE_BOUNCE: "20240101T000000"}
    assert template["metadata"]["labels"][labels.CONFIG_SHA] == after.config_hash
    assert template["spec"] == before.deployment["spec"]["template"]["spec"]
    again = render(make_instance(), Control(force_bounce="20240202T000000"))
    assert again.config_hash not in (before.config_hash, after.config_hash)


def test_hash_ignores_replicas_but_not_the_rest() -> None:
    base = render(make_instance(instances=1)).config_hash
    assert render(make_instance(instances=7)).config_hash == base
    for change in ({"cpus": 2.0}, {"env": {"A": "1"}}, {"container_port": 9000}, {"bounce_method": "brutal"}):
        assert render(make_instance(**change)).config_hash != base, change
    newer = render_app(make_instance(), DeployedVersion("services-svc:paasta-" + "c" * 40, "c" * 40),
                       Control(), SYSTEM)
    assert newer.config_hash != base


def test_config_hash_is_of_the_finished_object() -> None:
    app = render(make_instance(env={"X": "1"}), Control(force_bounce="t"))
    assert config_hash(app.deployment, force_bounce="t") == app.config_hash


def test_rendering_is_deterministic_and_leaves_inputs_alone() -> None:
    config = make_instance(env={"B": "2", "A": "1"}, extra_volumes=(Volume("/a", "/h/a"),))
    first, second = render(config), render(config)
    assert first == second
    assert config == make_instance(env={"B": "2", "A": "1"}, extra_volumes=(Volume("/a", "/h/a"),))


# --- container ---------------------------------------------------------------------------------


def test_container_basics() -> None:
    main = container(render())
    assert main["name"] == "main"
    assert main["image"] == f"registry.test/services-svc:paasta-{SHA}"
    assert main["imagePullPolicy"] == "IfNotPresent"
    assert main["ports"] == [{"containerPort": 8888}]
    assert "command" not in main and "args" not in main


def test_cmd_and_args() -> None:
    assert container(render(make_instance(cmd="run --fast")))["command"] == ["sh", "-c", "run --fast"]
    assert container(render(make_instance(cmd=("/bin/app", "-v"))))["command"] == ["/bin/app", "-v"]
    with_args = container(render(make_instance(args=("--x", "y"))))
    assert with_args["args"] == ["--x", "y"] and "command" not in with_args


def env_of(app: RenderedApp) -> dict[str, str]:
    pairs = [(e["name"], e["value"]) for e in container(app)["env"]]
    assert len(pairs) == len(dict(pairs)), "duplicate env names"
    return dict(pairs)


def test_env_has_the_paasta_variables_and_the_users() -> None:
    env = env_of(render(make_instance(env={"TEAM": "x", "container_port": "1"}, container_port=9000)))
    assert env == {
        "PAASTA_SERVICE": "svc", "PAASTA_INSTANCE": "main", "PAASTA_CLUSTER": "c1",
        "PAASTA_DEPLOY_GROUP": "c1.main", "PAASTA_DOCKER_IMAGE": f"services-svc:paasta-{SHA}",
        "PAASTA_GIT_SHA": SHA[:8], "PAASTA_PORT": "9000", "TEAM": "x", "container_port": "1",
    }


def test_user_env_overrides_paasta_variables() -> None:
    env = env_of(render(make_instance(env={"PAASTA_PORT": "1234"})))
    assert env["PAASTA_PORT"] == "1234"


def test_image_version_is_in_env_and_labels() -> None:
    version = DeployedVersion(f"services-svc:paasta-{SHA}-v2", SHA, "v2")
    app = render_app(make_instance(), version, Control(), SYSTEM)
    assert env_of(app)["PAASTA_IMAGE_VERSION"] == "v2"
    assert app.deployment["metadata"]["labels"][labels.IMAGE_VERSION] == "v2"


def test_env_order_does_not_change_the_hash() -> None:
    one = render(make_instance(env={"A": "1", "B": "2", "C": "3"}))
    two = render(make_instance(env={"C": "3", "A": "1", "B": "2"}))
    assert one.deployment == two.deployment and one.config_hash == two.config_hash


@pytest.mark.parametrize(
    ("cpus", "burst", "requested", "limit"),
    [(1.0, 1.0, "1", "2"), (0.25, 1.0, "250m", "1250m"), (2.0, 0.5, "2", "2500m"), (0.1, 0.2, "100m", "300m"),
     (0.0005, 0.0, "0.0005", "0.0005")],
)
def test_cpu_request_and_burst_limit(cpus: float, burst: float, requested: str, limit: str) -> None:
    resources = container(render(make_instance(cpus=cpus, cpu_burst_add=burst)))["resources"]
    assert resources["requests"]["cpu"] == requested
    assert resources["limits"]["cpu"] == limit


def test_memory_and_disk() -> None:
    resources = container(render(make_instance(mem=512.5, disk=1_000_000.0)))["resources"]
    for kind in ("requests", "limits"):
        assert resources[kind]["memory"] == "512.5Mi"
        assert resources[kind]["ephemeral-storage"] == "1000000Mi"


# --- probes ------------------------------------------------------------------------------------


TIMING = {"initialDelaySeconds": 7, "periodSeconds": 3, "timeoutSeconds": 2, "failureThreshold": 5}


@pytest.mark.parametrize(
    ("mode", "extra", "action"),
    [
        ("http", {"healthcheck_uri": "/ping"},
         {"httpGet": {"path": "/ping", "port": 8888, "scheme": "HTTP"}}),
        ("https", {}, {"httpGet": {"path": "/status", "port": 8888, "scheme": "HTTPS"}}),
        ("tcp", {}, {"tcpSocket": {"port": 8888}}),
        ("cmd", {"healthcheck_cmd": "curl -f localhost"},
         {"exec": {"command": ["/bin/sh", "-c", "curl -f localhost"]}}),
    ],
)
def test_probe_for_each_mode(mode: str, extra: dict[str, Any], action: dict[str, Any]) -> None:
    config = make_instance(
        healthcheck_mode=mode, healthcheck_grace_period_seconds=7, healthcheck_interval_seconds=3,
        healthcheck_timeout_seconds=2, healthcheck_max_consecutive_failures=5, **extra,
    )
    main = container(render(config))
    assert main["livenessProbe"] == {**action, **TIMING}
    assert main["readinessProbe"] == main["livenessProbe"]
    assert main["readinessProbe"] is not main["livenessProbe"]


def test_no_probe_without_a_mode() -> None:
    main = container(render(make_instance(healthcheck_mode=None)))
    assert "livenessProbe" not in main and "readinessProbe" not in main


def test_cmd_probe_without_a_command_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as raised:
        render(make_instance(healthcheck_mode="cmd"))
    assert raised.value.problems[0].field == "healthcheck_mode"


# --- volumes -----------------------------------------------------------------------------------


def pod_volumes(app: RenderedApp) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    pod = app.deployment["spec"]["template"]["spec"]
    return pod.get("volumes", []), container(app).get("volumeMounts", [])


def test_no_volumes_means_no_volume_keys() -> None:
    app = render()
    assert "volumes" not in app.deployment["spec"]["template"]["spec"]
    assert "volumeMounts" not in container(app)


def test_system_and_instance_volumes_are_merged_and_deduplicated() -> None:
    system = replace(SYSTEM, volumes=(Volume("/etc/cfg", "/etc/cfg"), Volume("/shared", "/srv/shared", "RW")))
    config = make_instance(extra_volumes=(
        Volume("/etc/cfg", "/etc/cfg"),            # exact duplicate of a system volume
        Volume("/shared", "/srv/mine", "RO"),      # same container path: the instance wins
        Volume("/data", "/etc/cfg", "RW"),         # same host path, second mount point
    ))
    volumes, mounts = pod_volumes(render(config, system=system))
    by_mount = {m["mountPath"]: m for m in mounts}
    assert sorted(by_mount) == ["/data", "/etc/cfg", "/shared"]
    host_of = {v["name"]: v["hostPath"]["path"] for v in volumes}
    assert {path: host_of[m["name"]] for path, m in by_mount.items()} == {
        "/data": "/etc/cfg", "/etc/cfg": "/etc/cfg", "/shared": "/srv/mine",
    }
    assert {path: m["readOnly"] for path, m in by_mount.items()} == {
        "/data": False, "/etc/cfg": True, "/shared": True,
    }
    assert len(volumes) == len(set(host_of)) == 2


def test_volume_order_does_not_change_the_hash() -> None:
    a, b = Volume("/a", "/h/a"), Volume("/b", "/h/b", "RW")
    assert render(make_instance(extra_volumes=(a, b))) == render(make_instance(extra_volumes=(b, a)))


def test_volume_names_are_unique_valid_and_stable() -> None:
    paths = ["/A", "/a", "/a_b", "/a--b", "/srv/", "/srv", "/", "/x" * 60, "/x" * 61, "/weird path+:@"]
    names = volume_names(paths)
    assert len(set(names.values())) == len(paths)
    for name in names.values():
        assert DNS_LABEL.match(name) and len(name) <= 63, name
    assert volume_names(list(reversed(paths))) == names
    assert volume_names(["/srv/data"]) == {"/srv/data": "host--slash-srvslash-data"}


def test_render_instance_needs_a_deployment_entry() -> None:
    with pytest.raises(NotDeployedError, match="not deployed yet"):
        render_instance(make_instance(), None, SYSTEM)
    deployments = DeploymentsJson(
        deployments={"c1.main": VERSION},
        controls={"svc:c1.main": Control(desired_state="stop")},
    )
    assert render_instance(make_instance(), deployments, SYSTEM).replicas == 0


def test_every_fixture_object_is_accepted_by_the_fake_api_server(fixture_render: Any, fake_api: Any) -> None:
    """Through the real client over HTTP: names, labels and selector pass the server's checks."""
    apps, _ = fixture_render
    for app in apps.values():
        metadata = app.namespace_manifest["metadata"]
        fake_api.client.create_namespace(metadata["name"], dict(metadata["labels"]))
        fake_api.client.create_deployment(app.namespace, app.deployment)
        live = fake_api.client.get_deployment(app.namespace, app.name)
        assert live["metadata"]["labels"][labels.CONFIG_SHA] == app.config_hash
        assert live["spec"]["replicas"] == app.replicas
