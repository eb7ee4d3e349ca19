"""Builders for soa-config and system-config trees used by the config-library tests.

Tests describe a tree as ``{"relative/path": content}``; content is written verbatim when it is
``str`` or ``bytes`` and dumped as YAML (or JSON for ``*.json``) otherwise, so each test shows the
files it depends on and nothing else.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

GOOD_SHA = "a" * 40


def write_tree(root: Path, files: Mapping[str, Any]) -> Path:
    """Write `files` under `root` (created if needed) and return `root`."""
    root.mkdir(parents=True, exist_ok=True)
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        elif relative.endswith(".json"):
            path.write_text(json.dumps(content), encoding="utf-8")
        else:
            path.write_text(yaml.safe_dump(content, sort_keys=False), encoding="utf-8")
    return root


def deployments_doc(groups: Mapping[str, str] | None = None, service: str = "svc") -> dict[str, Any]:
    """A v2 deployments.json document: deploy group -> git sha."""
    return {
        "v2": {
            "deployments": {
                group: {
                    "docker_image": f"services-{service}:paasta-{sha}",
                    "git_sha": sha,
                    "image_version": None,
                }
                for group, sha in (groups or {}).items()
            },
            "controls": {},
        }
    }


def simple_service(name: str = "svc", cluster: str = "c1", **instances: Any) -> dict[str, Any]:
    """Files of one service with `instances` (name -> body) on `cluster`."""
    return {
        f"{name}/service.yaml": {"description": f"{name} service", "git_url": f"git@example:{name}"},
        f"{name}/kubernetes-{cluster}.yaml": dict(instances) or {"main": {"instances": 2}},
    }
