"""The config hash of a rendered object.

Behaviours covered:
- format `config` + 8 lower-case hex characters;
- independent of dict key order at every depth, equal in a fresh interpreter with another hash
  seed, and pinned to a known value (so a change of algorithm is a deliberate, visible change:
  it would bounce every app on the next run);
- `spec.replicas` and the config-hash labels (object and pod template) do not count; anything
  else, including list order and `force_bounce`, does;
- `with_config_hash` writes the label on the object and its template without touching the input,
  and hashing the labelled object again gives the same hash (a fixed point);
- non-JSON data is refused (a bug in the caller, not something to hash by `repr`);
- the soa hash (issue 11): `soa` + 8 hex, pinned; the same whatever the system config (so a laptop
  can recompute it), and the config hash leaves its annotation out (adding it changed no config
  hash and touches no pod template); it ignores the soa file's path, replica counts and stop, and
  counts every other instance field, the version and force_bounce; a field at its default counts
  as absent.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from paasta_lite.config.deployments_json import Control, DeployedVersion
from paasta_lite.config.instance_config import InstanceConfig
from paasta_lite.config.system_config import SystemConfig
from paasta_lite.config.volumes import Volume
from paasta_lite.kube.config_hash import (
    config_hash,
    config_hash_label,
    hashable_view,
    soa_config_hash,
    soa_config_hash_annotation,
    with_config_hash,
    with_soa_config_hash,
)
from paasta_lite.kube.labels import CONFIG_SHA, SOA_CONFIG_SHA
from paasta_lite.kube.render import render_app

ROOT = Path(__file__).resolve().parent.parent


def sample() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "svc-main", "namespace": "paastasvc-svc", "labels": {"a": "1", "b": "2"}},
        "spec": {
            "replicas": 3,
            "selector": {"matchLabels": {"a": "1"}},
            "template": {
                "metadata": {"labels": {"a": "1", "b": "2"}},
                "spec": {
                    "containers": [{"name": "main", "image": "r/i:1", "env": [{"name": "X", "value": "ü"}]}]
                },
            },
        },
    }


def reversed_keys(data: Any) -> Any:
    """The same data with every dict's keys in reverse insertion order."""
    if isinstance(data, dict):
        return {key: reversed_keys(data[key]) for key in reversed(list(data))}
    if isinstance(data, list):
        return [reversed_keys(item) for item in data]
    return data


def test_format() -> None:
    assert re.fullmatch(r"config[0-9a-f]{8}", config_hash(sample()))


def test_pinned_value() -> None:
    # Changing the algorithm changes every app's hash and bounces everything: do it on purpose.
    assert config_hash(sample()) == "configaabbeb50"
    assert config_hash(sample(), force_bounce="20240101T000000") == "config2d01bc76"


def test_independent_of_dict_order() -> None:
    assert config_hash(reversed_keys(sample())) == config_hash(sample())


def test_same_in_a_fresh_interpreter_with_another_hash_seed() -> None:
    code = (
        "import json, sys; from paasta_lite.kube.config_hash import config_hash; "
        "print(config_hash(json.loads(sys.stdin.read())))"
    )
    hashes = set()
    for seed in ("1", "2"):
        result = subprocess.run(
            [sys.executable, "-c", code], input=json.dumps(reversed_keys(sample())), capture_output=True,
            text=True, check=True, cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": seed},
        )
        hashes.add(result.stdout.strip())
    assert hashes == {config_hash(sample())}


def test_replicas_do_not_count() -> None:
    scaled = sample()
    scaled["spec"]["replicas"] = 0
    assert config_hash(scaled) == config_hash(sample())
    del scaled["spec"]["replicas"]
    assert config_hash(scaled) == config_hash(sample())


def test_hash_labels_do_not_count_and_labelling_is_a_fixed_point() -> None:
    value = config_hash(sample())
    labelled = with_config_hash(sample(), value)
    assert labelled["metadata"]["labels"][CONFIG_SHA] == value
    assert labelled["spec"]["template"]["metadata"]["labels"][CONFIG_SHA] == value
    assert config_hash(labelled) == value
    assert config_hash(with_config_hash(sample(), "configdeadbeef")) == value
    assert config_hash_label(labelled) == value
    assert config_hash_label(sample()) is None


@pytest.mark.parametrize(
    "path",
    [
        ("spec", "template", "spec", "containers", 0, "image"),
        ("spec", "template", "metadata", "labels", "b"),
        ("metadata", "labels", "b"),
        ("metadata", "name"),
    ],
)
def test_other_changes_count(path: tuple[Any, ...]) -> None:
    changed = sample()
    target = changed
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = "different"
    assert config_hash(changed) != config_hash(sample())


def test_list_order_counts() -> None:
    changed = sample()
    changed["spec"]["template"]["spec"]["containers"][0]["env"].insert(0, {"name": "Y", "value": "1"})
    other = sample()
    other["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "Y", "value": "1"})
    assert config_hash(changed) != config_hash(other)


def test_force_bounce_counts() -> None:
    plain = config_hash(sample())
    first = config_hash(sample(), force_bounce="20240101T000000")
    second = config_hash(sample(), force_bounce="20240102T000000")
    assert len({plain, first, second}) == 3
    assert config_hash(sample(), force_bounce=None) == config_hash(sample(), force_bounce="") == plain


def test_inputs_are_not_modified() -> None:
    original = sample()
    hashable_view(original)
    with_config_hash(original, "config00000000")
    config_hash(original)
    assert original == sample()


def test_int_and_float_are_different_values() -> None:
    as_int, as_float = sample(), sample()
    as_int["spec"]["minReadySeconds"] = 1
    as_float["spec"]["minReadySeconds"] = 1.0
    assert config_hash(as_int) != config_hash(as_float)


@pytest.mark.parametrize("bad", [{1, 2}, object(), float("nan")])
def test_non_json_data_is_refused(bad: Any) -> None:
    data = sample()
    data["spec"]["odd"] = bad
    with pytest.raises((TypeError, ValueError)):
        config_hash(data)


# --------------------------------------------------------------------------- the soa hash
SHA = "c" * 40
VERSION = DeployedVersion(f"services-svc:paasta-{SHA}", SHA)


def instance(**overrides: Any) -> InstanceConfig:
    values: dict[str, Any] = {
        "service": "svc", "instance": "main", "cluster": "c1", "source": "/nail/soa/svc/kubernetes-c1.yaml",
        "deploy_group": "c1.main", "namespace": "paastasvc-svc",
    }  # fmt: skip
    return InstanceConfig(**{**values, **overrides})


def test_soa_hash_format_and_pinned_value() -> None:
    value = soa_config_hash(instance(), VERSION)
    assert re.fullmatch(r"soa[0-9a-f]{8}", value)
    assert value == "soa887bd7e4"


def test_soa_hash_does_not_depend_on_the_system_config() -> None:
    cluster = SystemConfig(directory="/etc/paasta", docker_registry="registry.prod",
                           volumes=(Volume("/etc/certs", "/etc/certs"),))
    laptop = SystemConfig(directory="/home/me/etc", docker_registry="registry.dev")
    on_cluster = render_app(instance(), VERSION, Control(), cluster)
    on_laptop = render_app(instance(), VERSION, Control(), laptop)
    assert on_cluster.config_hash != on_laptop.config_hash
    assert soa_config_hash_annotation(on_cluster.deployment) == soa_config_hash(instance(), VERSION)
    assert soa_config_hash_annotation(on_laptop.deployment) == soa_config_hash(instance(), VERSION)


def test_soa_annotation_is_left_out_of_the_config_hash_and_off_the_pod_template() -> None:
    labelled = with_config_hash(sample(), config_hash(sample()))
    annotated = with_soa_config_hash(labelled, "soa12345678")
    assert annotated["metadata"]["annotations"] == {SOA_CONFIG_SHA: "soa12345678"}
    assert annotated["spec"] == labelled["spec"]
    assert config_hash(annotated) == config_hash(sample())
    other = sample()
    other["metadata"]["annotations"] = {"mine": "x"}
    assert config_hash(with_soa_config_hash(other, "soa1")) == config_hash(other) != config_hash(sample())
    assert soa_config_hash_annotation(sample()) is None
    rendered = render_app(instance(), VERSION, Control(), SystemConfig("/e", docker_registry="r"))
    assert config_hash(rendered.deployment) == rendered.config_hash == config_hash_label(rendered.deployment)


@pytest.mark.parametrize(
    "overrides",
    [{"source": "/home/me/soa/svc/kubernetes-c1.yaml"}, {"instances": 7}, {"min_instances": 2}],
)
def test_soa_hash_ignores_paths_and_replica_counts(overrides: dict[str, Any]) -> None:
    assert soa_config_hash(instance(**overrides), VERSION) == soa_config_hash(instance(), VERSION)


@pytest.mark.parametrize(
    "overrides",
    [{"cpus": 0.5}, {"env": {"A": "1"}}, {"deploy_group": "prod"}, {"max_instances": 5},
     {"extra_volumes": (Volume("/a", "/h/a"),)}, {"healthcheck_uri": "/health"}],
)
def test_soa_hash_counts_the_rest(overrides: dict[str, Any]) -> None:
    assert soa_config_hash(instance(**overrides), VERSION) != soa_config_hash(instance(), VERSION)


def test_soa_hash_counts_version_and_force_bounce_and_ignores_order_of_volumes() -> None:
    base = soa_config_hash(instance(), VERSION)
    assert soa_config_hash(instance(), DeployedVersion(VERSION.docker_image, "d" * 40)) != base
    assert soa_config_hash(instance(), DeployedVersion(VERSION.docker_image, SHA, "rc1")) != base
    assert soa_config_hash(instance(), VERSION, force_bounce="20240101T000000") != base
    a, b = Volume("/a", "/h/a"), Volume("/b", "/h/b", "RW")
    assert soa_config_hash(instance(extra_volumes=(a, b)), VERSION) == soa_config_hash(
        instance(extra_volumes=(b, a)), VERSION
    )
    explicit_defaults = instance(cpus=1.0, env={}, bounce_method="crossover")
    assert soa_config_hash(explicit_defaults, VERSION) == base
