"""Local git repositories for the playground services: PaaSTA's control plane without a git server.

In production a deploy is a tag on the service's own repository. The playground keeps one real
repository per sample service under `playground_repos/` (git-ignored): `git_url` in the
service's `service.yaml` points at it, `paasta mark-for-deployment` pushes tags to it, and
`generate_deployments_for_service` reads them with `git ls-remote`, exactly as against a server.

`ensure_repo` is idempotent: it creates the repository (the service's sources from
`playground/services/<service>/` as the first commit) when it is missing, and tags HEAD for every
deploy group that has no deploy tag yet. It never moves an existing tag, so a deploy you made with
`paasta mark-for-deployment` stays deployed.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from pg_common import REPOS_DIR, SERVICE_SOURCES, relative, run

from paasta_lite.config.soa_config import ServiceConfig
from paasta_lite.gitflow import tags as git_tags

#: Fixed identity and no hooks/signing: the playground must not depend on the user's git setup.
GIT = (
    "git", "-c", "user.name=paasta playground", "-c", "user.email=playground@paasta-lite.invalid",
    "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "core.hooksPath=/dev/null",
    "-c", "init.defaultBranch=main",
)


@dataclass(frozen=True)
class RepoResult:
    service: str
    path: Path | None
    created: bool = False
    tagged: tuple[str, ...] = ()
    note: str = ""

    def describe(self) -> str:
        if self.path is None:
            return f"{self.service}: {self.note}"
        parts = ["created" if self.created else "exists"]
        if self.tagged:
            parts.append("tagged " + ", ".join(self.tagged))
        else:
            parts.append("every deploy group already has a deploy tag")
        return f"{self.service}: {relative(self.path)} {'; '.join(parts)}"


def local_repo_path(git_url: str | None, repos_dir: Path = REPOS_DIR) -> Path | None:
    """The local path `git_url` names when it is inside `repos_dir` (plain path or file:// URL)."""
    if not git_url:
        return None
    path = urlparse(git_url).path if git_url.startswith("file://") else git_url
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        return None
    try:
        candidate.resolve().relative_to(repos_dir.resolve())
    except ValueError:
        return None
    return candidate


def deploy_groups_of(service: ServiceConfig) -> list[str]:
    """deploy.yaml's groups in pipeline order, then groups only instances name (sorted)."""
    groups = list(service.deploy_groups)
    extra = {instance.deploy_group for instance in service.all_instances()} - set(groups)
    return groups + sorted(extra)


def untagged_groups(groups: Sequence[str], tag_names: Iterable[str]) -> list[str]:
    """The groups with no deploy tag among `tag_names` (tag names without refs/tags/)."""
    refs = {f"{git_tags.TAG_PREFIX}{name}": "0" * 40 for name in tag_names}
    tagged = {tag.deploy_group for tag in git_tags.parse_refs(refs).deploy_tags}
    return [group for group in groups if group not in tagged]


def _git(path: Path, *args: str) -> str:
    return run([*GIT, "-C", str(path), *args], capture=True).stdout


def create_repo(path: Path, service: str, sources: Path = SERVICE_SOURCES) -> None:
    """A new repository with the service's sources (or a README) as its first commit."""
    path.mkdir(parents=True, exist_ok=True)
    _git(path, "init", "-q")
    source_dir = sources / service
    if source_dir.is_dir():
        shutil.copytree(source_dir, path, dirs_exist_ok=True)
    else:
        (path / "README.md").write_text(
            f"# {service}\n\nPlayground repository for {service}; deploy tags live here.\n"
        )
    _git(path, "add", "-A")
    _git(path, "commit", "-q", "-m", f"{service}: initial playground commit")


def ensure_repo(service: ServiceConfig, *, repos_dir: Path = REPOS_DIR,
                sources: Path = SERVICE_SOURCES, timestamp: str | None = None) -> RepoResult:
    """Create the service's local repository if needed and tag every untagged deploy group."""
    path = local_repo_path(service.git_url, repos_dir)
    if not service.git_url:
        return RepoResult(service.name, None, note="no git_url in service.yaml: no repository, no deploy "
                          "tags (generate skips it; its deployments.json is used as written)")
    if path is None:
        return RepoResult(service.name, None, note=f"git_url {service.git_url} is not under "
                          f"{relative(repos_dir)}/; left alone (generate_deployments_for_service reads it)")
    created = not (path / ".git").exists()
    if created:
        create_repo(path, service.name, sources)
    missing = untagged_groups(deploy_groups_of(service), _git(path, "tag", "-l", "paasta-*").split())
    stamp = timestamp or git_tags.now_timestamp()
    tagged = []
    for group in missing:
        name = git_tags.deploy_tag_name(group, stamp)
        _git(path, "tag", name, "HEAD")
        tagged.append(name)
    return RepoResult(service.name, path, created=created, tagged=tuple(tagged))


def head_sha(path: Path) -> str:
    return _git(path, "rev-parse", "HEAD").strip()
