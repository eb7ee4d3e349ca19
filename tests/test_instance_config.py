"""instance_config: build_instance_config fills PaaSTA's code defaults, coerces env values to text,
infers healthcheck_mode, formats deploy_group; semantic_problems catches key combinations."""

from __future__ import annotations

from typing import Any

from paasta_lite.config.instance_config import (
    DEFAULTS,
    build_instance_config,
    format_deploy_group,
    semantic_problems,
)
from paasta_lite.config.volumes import Volume


def build(merged: dict[str, Any], **kwargs: Any) -> Any:
    return build_instance_config(
        service="my_svc", cluster="c1", instance="main", merged=merged, source="f.yaml", **kwargs
    )


def test_defaults() -> None:
    config = build({})
    assert dict(DEFAULTS)["bounce_margin_factor"] == 0.95
    assert (config.instances, config.cpus, config.cpu_burst_add, config.mem, config.disk) == (
        1, 1.0, 1.0, 4096.0, 1024.0,
    )
    assert (config.container_port, config.bounce_method) == (8888, "crossover")
    assert config.healthcheck_uri == "/status"
    assert (config.healthcheck_grace_period_seconds, config.healthcheck_interval_seconds) == (60, 10)
    assert (config.healthcheck_timeout_seconds, config.healthcheck_max_consecutive_failures) == (10, 30)
    assert config.cmd is None and config.args is None and dict(config.env) == {}
    assert config.min_instances is None and config.max_instances is None and not config.is_autoscaled
    assert config.extra_volumes == () and config.min_task_uptime == 0
    assert config.deploy_group == "c1.main"
    assert config.namespace == "paastasvc-my--svc"


def test_env_values_are_coerced_to_text() -> None:
    config = build({"env": {"I": 1, "F": 1.5, "T": True, "N": False, "S": "x"}})
    assert dict(config.env) == {"I": "1", "F": "1.5", "T": "true", "N": "false", "S": "x"}


def test_healthcheck_mode_inference() -> None:
    assert build({}).healthcheck_mode is None
    assert build({"healthcheck_uri": "/health"}).healthcheck_mode == "http"
    assert build({"healthcheck_cmd": "true"}).healthcheck_mode == "cmd"
    assert build({"healthcheck_mode": "tcp", "healthcheck_cmd": "x"}).healthcheck_mode == "tcp"


def test_values_and_types() -> None:
    config = build(
        {
            "cmd": ["a", "b"], "max_instances": 5, "min_instances": 2, "mem": 512,
            "bounce_health_params": {"min_task_uptime": 30}, "namespace": "custom",
            "extra_volumes": [{"containerPath": "/c", "hostPath": "/h", "mode": "rw"}],
        },
        docker_registry="reg",
    )
    assert config.cmd == ("a", "b") and config.mem == 512.0 and isinstance(config.mem, float)
    assert config.is_autoscaled and config.min_task_uptime == 30
    assert config.namespace == "custom" and config.docker_registry == "reg"
    assert config.extra_volumes == (Volume("/c", "/h", "RW"),) and not config.extra_volumes[0].read_only
    assert build({"cmd": "run it"}).cmd == "run it"


def test_format_deploy_group() -> None:
    assert format_deploy_group("{cluster}.all", service="s", cluster="c", instance="i") == "c.all"
    assert format_deploy_group("{service}-{instance}", service="s", cluster="c", instance="i") == "s-i"
    assert format_deploy_group("{unknown}.x", service="s", cluster="c", instance="i") == "{unknown}.x"


def test_semantic_problems() -> None:
    assert semantic_problems({}, path="f", instance="i") == []
    assert [p.field for p in semantic_problems({"cmd": "x", "args": []}, path="f", instance="i")] == ["args"]
    assert [p.field for p in semantic_problems({"healthcheck_mode": "cmd"}, path="f", instance="i")] == [
        "healthcheck_cmd"
    ]
    assert semantic_problems({"min_instances": 1, "max_instances": 1}, path="f", instance="i") == []
