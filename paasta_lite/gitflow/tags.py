"""Deploy and state tags: the git half of PaaSTA's control plane, as pure functions.

A deploy is a tag on the service's own repository; `generate_deployments_for_service` reads every
ref (see `git_remote.list_refs`) and turns the tags into deployments.json. This module knows the
two tag formats and nothing else:

- deploy tag ``paasta-<deploy_group>[+<image_version>]-<UTC %Y%m%dT%H%M%S>-deploy``
- state tag ``paasta-<cluster>.<instance>-<UTC %Y%m%dT%H%M%S>-start|stop`` (start, stop, restart)

PaaSTA interpolates the deploy group unescaped into a regex per group, so ``prod.main`` also
matched ``prodXmain``. We parse every ref once with fixed patterns and then compare names with
``==``: no group ever becomes part of a regex, so dots and dashes in names cannot mis-match.
The timestamp is anchored at the end, which makes dashes in groups and image versions
unambiguous; ``+`` separates the image version, so it is refused in deploy group names.
Refs that look like ours (``refs/tags/paasta-*``) but do not parse are skipped with a debug line.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

log = logging.getLogger(__name__)

TAG_PREFIX = "refs/tags/"
TIMESTAMP_FORMAT = "%Y%m%dT%H%M%S"
STATES = ("start", "stop")

_TS = r"(?P<timestamp>\d{8}T\d{6})"
_DEPLOY_RE = re.compile(
    rf"^refs/tags/paasta-(?P<group>[^+]+?)(?:\+(?P<image_version>.+))?-{_TS}-deploy$", re.DOTALL
)
_STATE_RE = re.compile(rf"^refs/tags/paasta-(?P<branch>.+)-{_TS}-(?P<state>start|stop)$", re.DOTALL)
# Characters git refuses in a ref name (`git check-ref-format`), plus "/" so a tag stays one
# path component.
_REF_UNSAFE = re.compile(r"[\x00-\x20\x7f~^:?*\[\\/]|\.\.|@\{")
# Docker tags are `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`; the image tag is `paasta-<sha40>-<iv>`.
_IMAGE_VERSION_RE = re.compile(r"^[A-Za-z0-9_.-]{1,80}$")


@dataclass(frozen=True)
class DeployTag:
    """One parsed deploy tag: deploy ``sha`` (with ``image_version``) to ``deploy_group``."""

    deploy_group: str
    image_version: str | None
    timestamp: str
    sha: str
    ref: str


@dataclass(frozen=True)
class StateTag:
    """One parsed start/stop tag for ``branch`` (``<cluster>.<instance>``) on ``sha``."""

    branch: str
    state: str
    timestamp: str
    sha: str
    ref: str


@dataclass(frozen=True)
class ParsedRefs:
    """Every deploy and state tag of a repository, in the order the refs were given."""

    deploy_tags: tuple[DeployTag, ...]
    state_tags: tuple[StateTag, ...]


def format_timestamp(when: datetime) -> str:
    """``%Y%m%dT%H%M%S`` in UTC (naive datetimes are taken to be UTC already)."""
    if when.tzinfo is not None:
        when = when.astimezone(timezone.utc)
    return when.strftime(TIMESTAMP_FORMAT)


def now_timestamp() -> str:
    """The current UTC time as a tag timestamp."""
    return format_timestamp(datetime.now(timezone.utc))


def next_timestamp(newest: str | None, now: str) -> str:
    """A timestamp for a new tag that sorts after ``newest`` (the newest tag it competes with).

    Tags have one-second resolution: a second mark (or a start right after a stop) in the same
    second would tie, and ties are decided by ref name, not by intent. Use ``newest`` + 1s then.
    """
    if newest is None or now > newest:
        return now
    later = datetime.strptime(newest, TIMESTAMP_FORMAT) + timedelta(seconds=1)
    return later.strftime(TIMESTAMP_FORMAT)


def name_problem(kind: str, value: str) -> str | None:
    """Why ``value`` cannot be part of a tag name, or None when it can."""
    if not value:
        return f"{kind} must not be empty"
    match = _REF_UNSAFE.search(value)
    if match:
        return f"{kind} {value!r} contains {match.group(0)!r}, which cannot be part of a git tag"
    if value.startswith(".") or value.endswith(".") or value.endswith(".lock"):
        return f"{kind} {value!r} cannot start or end with '.' or end with '.lock' in a git tag"
    return None


def deploy_group_problem(deploy_group: str) -> str | None:
    """Why ``deploy_group`` cannot be used in a deploy tag, or None."""
    if "+" in deploy_group:
        return f"deploy group {deploy_group!r} contains '+', which separates the image version in tags"
    return name_problem("deploy group", deploy_group)


def image_version_problem(image_version: str) -> str | None:
    """Why ``image_version`` cannot be used (it ends up in a git tag and a docker tag), or None."""
    if not _IMAGE_VERSION_RE.match(image_version):
        return (
            f"image version {image_version!r} must be 1-80 characters of letters, digits, '_', '.', '-' "
            "(it becomes part of the docker image tag)"
        )
    return name_problem("image version", image_version)


def _check_timestamp(timestamp: str) -> None:
    datetime.strptime(timestamp, TIMESTAMP_FORMAT)  # ValueError names the bad value


def deploy_tag_name(deploy_group: str, timestamp: str, image_version: str | None = None) -> str:
    """The tag (without ``refs/tags/``) that deploys a sha to ``deploy_group``.

    Raises ValueError with a readable message when a part cannot be used in a tag.
    """
    problem = deploy_group_problem(deploy_group)
    if problem is None and image_version is not None:
        problem = image_version_problem(image_version)
    if problem:
        raise ValueError(problem)
    _check_timestamp(timestamp)
    version = f"+{image_version}" if image_version is not None else ""
    return f"paasta-{deploy_group}{version}-{timestamp}-deploy"


def state_tag_name(cluster: str, instance: str, timestamp: str, state: str) -> str:
    """The tag (without ``refs/tags/``) that starts or stops ``cluster.instance``."""
    if state not in STATES:
        raise ValueError(f"state must be one of {STATES}, not {state!r}")
    problem = name_problem("cluster", cluster) or name_problem("instance", instance)
    if problem:
        raise ValueError(problem)
    _check_timestamp(timestamp)
    return f"paasta-{cluster}.{instance}-{timestamp}-{state}"


def parse_deploy_tag(ref: str, sha: str) -> DeployTag | None:
    """A `DeployTag` if ``ref`` (a full ``refs/tags/...`` name) is a deploy tag, else None."""
    match = _DEPLOY_RE.match(ref)
    if match is None:
        return None
    return DeployTag(
        deploy_group=match.group("group"),
        image_version=match.group("image_version"),
        timestamp=match.group("timestamp"),
        sha=sha,
        ref=ref,
    )


def parse_state_tag(ref: str, sha: str) -> StateTag | None:
    """A `StateTag` if ``ref`` is a start/stop tag, else None."""
    match = _STATE_RE.match(ref)
    if match is None:
        return None
    return StateTag(
        branch=match.group("branch"),
        state=match.group("state"),
        timestamp=match.group("timestamp"),
        sha=sha,
        ref=ref,
    )


def parse_refs(refs: Mapping[str, str]) -> ParsedRefs:
    """Sort a repository's refs (ref name -> commit sha) into deploy and state tags.

    Branches and foreign tags are ignored silently; ``refs/tags/paasta-*`` refs that match
    neither format are ignored with a debug line (old formats, rollback markers, typos).
    """
    deploy_tags: list[DeployTag] = []
    state_tags: list[StateTag] = []
    for ref, sha in refs.items():
        if not ref.startswith("refs/tags/paasta-"):
            continue
        deploy = parse_deploy_tag(ref, sha)
        if deploy is not None:
            deploy_tags.append(deploy)
            continue
        state = parse_state_tag(ref, sha)
        if state is not None:
            state_tags.append(state)
            continue
        log.debug("ignoring ref %s: neither a deploy tag nor a start/stop tag", ref)
    return ParsedRefs(deploy_tags=tuple(deploy_tags), state_tags=tuple(state_tags))


def latest_deploy_tags(
    deploy_tags: Iterable[DeployTag], deploy_groups: Iterable[str] | None = None
) -> dict[str, DeployTag]:
    """The newest deploy tag of each deploy group (of ``deploy_groups`` when given).

    Newest is the greatest timestamp; equal timestamps are decided by the ref name, so the
    answer never depends on the order git listed the refs in.
    """
    wanted = set(deploy_groups) if deploy_groups is not None else None
    latest: dict[str, DeployTag] = {}
    for tag in deploy_tags:
        if wanted is not None and tag.deploy_group not in wanted:
            continue
        current = latest.get(tag.deploy_group)
        if current is None or (tag.timestamp, tag.ref) > (current.timestamp, current.ref):
            latest[tag.deploy_group] = tag
    return latest


def latest_deploy_tag(refs: Mapping[str, str], deploy_group: str) -> DeployTag | None:
    """The newest deploy tag of one group among a repository's refs (what it currently runs)."""
    return latest_deploy_tags(parse_refs(refs).deploy_tags, [deploy_group]).get(deploy_group)


def branch_name(cluster: str, instance: str) -> str:
    """``<cluster>.<instance>``: the name state tags and deployments.json controls use."""
    return f"{cluster}.{instance}"


def latest_state_tag(branch: str, deployed_sha: str, state_tags: Iterable[StateTag]) -> StateTag | None:
    """The newest start/stop tag of ``branch`` that points at the deployed sha, or None.

    Tags on other shas do not count: that is how a new deploy undoes `paasta stop` (the stop
    tag stays on the old sha). ``paasta-paasta-<branch>`` tags, written by an old PaaSTA bug,
    count too. On equal timestamps the ref name decides ("-stop" sorts after "-start").
    """
    names = {branch, f"paasta-{branch}"}
    best: StateTag | None = None
    for tag in state_tags:
        if tag.sha != deployed_sha or tag.branch not in names:
            continue
        if best is None or (tag.timestamp, tag.ref) > (best.timestamp, best.ref):
            best = tag
    return best


def desired_state(branch: str, deployed_sha: str, state_tags: Iterable[StateTag]) -> tuple[str, str | None]:
    """(desired_state, force_bounce) of ``branch``: from its newest state tag, else ("start", None).

    ``force_bounce`` is the winning tag's timestamp: a restart pushes a fresh start tag, which
    changes force_bounce and so the config hash, which makes the reconciler bounce.
    """
    tag = latest_state_tag(branch, deployed_sha, state_tags)
    if tag is None:
        return ("start", None)
    return (tag.state, tag.timestamp)
