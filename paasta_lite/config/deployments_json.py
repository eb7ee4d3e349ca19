"""The one module that owns the `deployments.json` format (v2), for reading and writing.

`deployments[<deploy_group>] = {docker_image, git_sha, image_version}` says what each deploy
group runs; `controls["<service>:<cluster>.<instance>"] = {desired_state, force_bounce}` says
whether an instance should run and when it was last asked to restart. The v1 section PaaSTA
still writes is neither read nor written.

Parsing is per entry: a malformed entry (a git_sha that is not a full commit sha, no
docker_image, a bad desired_state) is recorded in `broken_deployments` / `broken_controls` and
stops only the instances that use it (`problems_for`); the other deploy groups still deploy. A
file that is not a v2 document at all is a `ConfigError` for the whole service.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from paasta_lite.config.files import atomic_write_text, load_json_file
from paasta_lite.errors import ConfigError, Problem

DESIRED_STATES = ("start", "stop")
_GIT_SHA = re.compile(r"^[0-9a-f]{40}$")


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
    #: deploy group -> why its entry is unusable (its instances must not deploy; never written back)
    broken_deployments: Mapping[str, Problem] = field(default_factory=dict)
    #: control key -> why its entry is unusable (that instance must not deploy; never written back)
    broken_controls: Mapping[str, Problem] = field(default_factory=dict)

    def version_for(self, deploy_group: str) -> DeployedVersion | None:
        return self.deployments.get(deploy_group)

    def control_for(self, service: str, cluster: str, instance: str) -> Control:
        return self.controls.get(control_key(service, cluster, instance), Control())

    def problems_for(
        self, service: str, cluster: str, instance: str, deploy_group: str
    ) -> tuple[Problem, ...]:
        """Why the entries an instance needs cannot be used (empty: nothing wrong with them).

        Callers must check this before `version_for`: a broken entry is not "not deployed yet".
        """
        found = [self.broken_deployments.get(deploy_group),
                 self.broken_controls.get(control_key(service, cluster, instance))]
        return tuple(problem for problem in found if problem is not None)

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


def _version_issues(data: Any) -> list[str]:
    if not isinstance(data, dict):
        return ["must be a mapping with docker_image and git_sha"]
    issues = []
    image, sha, image_version = data.get("docker_image"), data.get("git_sha"), data.get("image_version")
    if image is None:
        issues.append("docker_image is missing")
    elif not isinstance(image, str) or not image:
        issues.append(f"docker_image must be text (got {image!r})")
    if sha is None:
        issues.append("git_sha is missing")
    elif not isinstance(sha, str) or not _GIT_SHA.match(sha):
        issues.append(
            f"git_sha must be a full commit sha, 40 lower-case hexadecimal characters (got {sha!r})"
        )
    if image_version is not None and not isinstance(image_version, str):
        issues.append("image_version must be text or null")
    return issues


def _control_issues(data: Any) -> list[str]:
    if not isinstance(data, dict):
        return ["must be a mapping"]
    issues = []
    state = data.get("desired_state", "start")
    if state not in DESIRED_STATES:
        issues.append(f"desired_state must be start or stop (got {state!r})")
    force_bounce = data.get("force_bounce")
    if force_bounce is not None and not isinstance(force_bounce, str):
        issues.append("force_bounce must be text or null")
    return issues


_UNTIL_FIXED = "not deployed until this entry is fixed (generate_deployments_for_service rewrites it)"


def parse_deployments_json(data: Any, path: str) -> DeploymentsJson:
    """Parse the v2 section of a deployments.json document (pure).

    Raises `ConfigError` when the document is not a v2 deployments.json; malformed entries are
    recorded per deploy group / control key instead (see the module docstring).
    """
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
    versions, broken_versions = {}, {}
    for group, entry in deployments.items():
        issues = _version_issues(entry)
        if issues:
            message = f"{'; '.join(issues)}; deploy group '{group}' is {_UNTIL_FIXED}"
            broken_versions[group] = Problem(path, message, field=f"v2.deployments.{group}")
        else:
            versions[group] = DeployedVersion(
                entry["docker_image"], entry["git_sha"], entry.get("image_version")
            )
    parsed_controls, broken_controls = {}, {}
    for key, entry in controls.items():
        issues = _control_issues(entry)
        if issues:
            message = f"{'; '.join(issues)}; instance {key} is {_UNTIL_FIXED}"
            broken_controls[key] = Problem(path, message, field=f"v2.controls.{key}")
        else:
            parsed_controls[key] = Control(entry.get("desired_state", "start"), entry.get("force_bounce"))
    return DeploymentsJson(versions, parsed_controls, broken_versions, broken_controls)


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
