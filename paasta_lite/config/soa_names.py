"""Names in a soa-configs directory, read cheaply: what shell completion offers.

Every TAB runs `paasta`, so this module reads as little as a name needs and imports nothing
heavy (no YAML parser, no schemas): services are directory names, clusters are the
`kubernetes-<cluster>.yaml` file names, instances are the top-level keys of one instance file (a
line scan), deploy groups are deploy.yaml's `step:` entries and the `deploy_group:` values
written in the instance files. It never raises: a directory or file it cannot read has no names.

The loader (`soa_config.SoaDir`) stays the authority: it validates. On well-formed soa-configs
the names here are the loader's (tests/test_cli_completion.py compares them); a flow-style
instance file (`{main: {...}}`), a deploy group built from a template (`{cluster}.x`) and the
default deploy group of an instance that names none (`<cluster>.<instance>`) are not offered.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable

INSTANCE_FILE_PREFIX = "kubernetes-"
INSTANCE_FILE_SUFFIX = ".yaml"
#: deploy.yaml steps that build or test, never a deploy group (as PaaSTA's pipeline).
BUILD_STEPS = frozenset(
    {"itest", "itest-and-push-to-registry", "security-check", "push-to-registry", "performance-check"}
)
#: Completion reads at most this much of one file.
MAX_READ_BYTES = 1 << 20

_TOP_LEVEL_KEY = re.compile(r"""(?:"([^"]+)"|'([^']+)'|([^\s"'#:{}\[\],&*!|>%@`][^#:]*?))\s*:(?:\s|$)""")
_STEP = re.compile(r"""^\s*(?:-\s+)?step:\s*["']?([^\s"'#]+)""")
_DEPLOY_GROUP = re.compile(r"""\bdeploy_group:\s*["']?([^\s"',#{}]+)["']?\s*(?=[,}#]|$)""", re.MULTILINE)


def is_service_entry(name: str) -> bool:
    """`_shared` and hidden entries of a soa dir are not services."""
    return not name.startswith((".", "_"))


def cluster_of(file_name: str) -> str | None:
    """`kubernetes-<cluster>.yaml` -> cluster; any other file -> None."""
    if file_name.startswith(INSTANCE_FILE_PREFIX) and file_name.endswith(INSTANCE_FILE_SUFFIX):
        return file_name[len(INSTANCE_FILE_PREFIX) : -len(INSTANCE_FILE_SUFFIX)] or None
    return None


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _read(path: str) -> str:
    try:
        with open(path, "rb") as handle:
            return handle.read(MAX_READ_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return ""


def service_names(soa_dir: str) -> list[str]:
    try:
        entries = list(os.scandir(soa_dir))
    except OSError:
        return []
    return sorted(
        entry.name for entry in entries
        if is_service_entry(entry.name) and (entry.is_dir() or entry.is_symlink())
    )


def cluster_names(soa_dir: str, service: str | None = None) -> list[str]:
    """Clusters of `service`, or of every service when None."""
    services = [service] if service else service_names(soa_dir)
    found = {
        cluster
        for name in services
        for cluster in map(cluster_of, _listdir(os.path.join(soa_dir, name)))
        if cluster
    }
    return sorted(found)


def top_level_keys(text: str) -> list[str]:
    """The keys of a block-style YAML mapping, in file order: the lines that start a key."""
    keys = []
    for line in text.splitlines():
        if not line or line[0] in " \t#-{[%" or line.startswith(("---", "...")):
            continue
        match = _TOP_LEVEL_KEY.match(line)
        if match:
            keys.append(next(group for group in match.groups() if group is not None).strip())
    return keys


def instance_names(soa_dir: str, service: str, clusters: Iterable[str] = ()) -> list[str]:
    """Instances of `service` on `clusters` (every cluster it has when empty); `_` keys are
    YAML anchors' templates, `<<` a merge key: neither is an instance."""
    wanted = list(clusters) or cluster_names(soa_dir, service)
    names: set[str] = set()
    for cluster in wanted:
        if "/" in cluster or cluster.startswith("."):
            continue
        path = os.path.join(soa_dir, service, f"{INSTANCE_FILE_PREFIX}{cluster}{INSTANCE_FILE_SUFFIX}")
        names.update(key for key in top_level_keys(_read(path)) if not key.startswith(("_", "<<")))
    return sorted(names)


def deploy_group_names(soa_dir: str, service: str) -> list[str]:
    """deploy.yaml's deploy groups in pipeline order, then groups only instance files name."""
    directory = os.path.join(soa_dir, service)
    groups: list[str] = []
    for line in _read(os.path.join(directory, "deploy.yaml")).splitlines():
        match = _STEP.match(line)
        if match and match[1] not in BUILD_STEPS and not match[1].startswith("command-"):
            groups.append(match[1])
    extra: set[str] = set()
    for cluster in cluster_names(soa_dir, service):
        text = _read(os.path.join(directory, f"{INSTANCE_FILE_PREFIX}{cluster}{INSTANCE_FILE_SUFFIX}"))
        extra.update(match[1] for match in _DEPLOY_GROUP.finditer(text))
    return list(dict.fromkeys(groups)) + sorted(extra - set(groups))
