"""The one module that owns the `deployments.json` format (v2), for reading and writing.

`deployments[<deploy_group>] = {docker_image, git_sha, image_version}` says what each deploy
group runs; `controls["<service>:<cluster>.<instance>"] = {desired_state, force_bounce}` says
whether an instance should run and when it was last asked to restart. The v1 section PaaSTA
still writes is neither read nor written.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paasta_lite.config.files import atomic_write_text, load_json_file
from paasta_lite.errors import ConfigError, Problem

DESIRED_STATES = ("start", "stop")


@dataclass(frozen=True)
class DeployedVersion:
    """What a deploy group runs: image (relative to the registry), full git sha, image version."""

    docker_image: str
    git_sha: str
    image_version: str | None = None

    @property
    def short_sha(self) -> str:
        return self.git_sha[:8]

    def to_dict(self) -> dict[str, Any]:
        return {
            "docker_image": self.docker_image,
            "git_sha": self.git_sha,
            "image_version": self.image_version,
        }


@dataclass(frozen=True)
class Control:
    """Desired state of one instance; `force_bounce` is a timestamp set by `paasta restart`."""

    desired_state: str = "start"
    force_bounce: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"desired_state": self.desired_state, "force_bounce": self.force_bounce}


@dataclass(frozen=True)
class DeploymentsJson:
    deployments: Mapping[str, DeployedVersion] = field(default_factory=dict)
    controls: Mapping[str, Control] = field(default_factory=dict)

    def version_for(self, deploy_group: str) -> DeployedVersion | None:
        return self.deployments.get(deploy_group)

    def control_for(self, service: str, cluster: str, instance: str) -> Control:
        return self.controls.get(control_key(service, cluster, instance), Control())

    def to_dict(self) -> dict[str, Any]:
        return {
            "v2": {
                "deployments": {group: v.to_dict() for group, v in sorted(self.deployments.items())},
                "controls": {key: c.to_dict() for key, c in sorted(self.controls.items())},
            }
        }


def control_key(service: str, cluster: str, instance: str) -> str:
    return f"{service}:{cluster}.{instance}"


def docker_image_for(service: str, git_sha: str, image_version: str | None = None) -> str:
    """`services-<service>:paasta-<sha>[-<image_version>]`, relative to the docker registry."""
    suffix = f"-{image_version}" if image_version else ""
    return f"services-{service}:paasta-{git_sha}{suffix}"


def _parse_version(group: str, data: Any, path: str) -> DeployedVersion:
    field_name = f"v2.deployments.{group}"
    if not isinstance(data, dict) or not isinstance(data.get("docker_image"), str) or not isinstance(
        data.get("git_sha"), str
    ):
        raise ConfigError.single(path, "must have text docker_image and git_sha", field=field_name)
    image_version = data.get("image_version")
    if image_version is not None and not isinstance(image_version, str):
        raise ConfigError.single(path, "image_version must be text or null", field=field_name)
    return DeployedVersion(data["docker_image"], data["git_sha"], image_version)


def _parse_control(key: str, data: Any, path: str) -> Control:
    field_name = f"v2.controls.{key}"
    if not isinstance(data, dict):
        raise ConfigError.single(path, "must be a mapping", field=field_name)
    state = data.get("desired_state", "start")
    if state not in DESIRED_STATES:
        raise ConfigError.single(
            path, f"desired_state must be start or stop (got {state!r})", field=field_name
        )
    force_bounce = data.get("force_bounce")
    if force_bounce is not None and not isinstance(force_bounce, str):
        raise ConfigError.single(path, "force_bounce must be text or null", field=field_name)
    return Control(state, force_bounce)


def parse_deployments_json(data: Any, path: str) -> DeploymentsJson:
    """Parse the v2 section of a deployments.json document (pure)."""
    if not isinstance(data, dict):
        raise ConfigError([Problem(path, "must contain a JSON object")])
    v2 = data.get("v2")
    if not isinstance(v2, dict):
        raise ConfigError.single(
            path, "has no v2 section; run generate_deployments_for_service to regenerate it", field="v2"
        )
    deployments = v2.get("deployments", {})
    controls = v2.get("controls", {})
    if not isinstance(deployments, dict) or not isinstance(controls, dict):
        raise ConfigError.single(path, "v2.deployments and v2.controls must be mappings", field="v2")
    return DeploymentsJson(
        deployments={g: _parse_version(g, d, path) for g, d in deployments.items()},
        controls={k: _parse_control(k, c, path) for k, c in controls.items()},
    )


def format_deployments_json(deployments: DeploymentsJson) -> str:
    """Deterministic text (sorted keys, indented) so unchanged content is byte-identical."""
    return json.dumps(deployments.to_dict(), indent=2, sort_keys=True) + "\n"


def load_deployments_json(path: str | os.PathLike[str]) -> DeploymentsJson | None:
    """The parsed file, or None when it does not exist (nothing generated yet)."""
    if not os.path.lexists(path):
        return None
    return parse_deployments_json(load_json_file(path), str(path))


def write_deployments_json(path: str | os.PathLike[str], deployments: DeploymentsJson) -> bool:
    """Write atomically, only when the content changed; return whether a write happened."""
    try:
        current = load_deployments_json(path)
    except ConfigError:
        current = None
    if current == deployments:
        return False
    atomic_write_text(path, format_deployments_json(deployments))
    return True
