"""Builders for tests that need real git repositories and a soa dir pointing at them.

`GitRepos`: a bare "remote" plus a working clone to commit in; `Soa`: a soa-configs dir with one
service whose `git_url` is that remote. (The `repos` fixture lives in conftest.py.)
"""

from __future__ import annotations

import json
import os
import subprocess
import textwrap
from pathlib import Path
from typing import Any

SERVICE = "svc"

GIT_ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(*args: str, cwd: Path | None = None) -> str:
    result = subprocess.run(["git", *args], cwd=cwd, env=GIT_ENV, capture_output=True, text=True, check=True)
    return result.stdout.strip()


class GitRepos:
    """A bare repository (the service's "remote") and a clone to make commits in."""

    def __init__(self, root: Path) -> None:
        self.remote = root / "remote.git"
        self.work = root / "work"
        git("init", "--quiet", "--bare", "--initial-branch=main", str(self.remote))
        git("clone", "--quiet", str(self.remote), str(self.work))
        git("checkout", "--quiet", "-b", "main", cwd=self.work)
        self.commits: list[str] = []

    @property
    def url(self) -> str:
        return str(self.remote)

    def commit(self, message: str = "change", *, push: bool = True) -> str:
        (self.work / "file.txt").write_text(f"{message} {len(self.commits)}\n")
        git("add", "file.txt", cwd=self.work)
        git("commit", "--quiet", "-m", message, cwd=self.work)
        sha = git("rev-parse", "HEAD", cwd=self.work)
        if push:
            git("push", "--quiet", "origin", "main", cwd=self.work)
        self.commits.append(sha)
        return sha

    def tag(self, name: str, sha: str, *, annotated: bool = False) -> None:
        """Create a tag directly in the remote (as another user's push would)."""
        args = ["tag", "-a", "-m", "msg", name, sha] if annotated else ["tag", name, sha]
        git(*args, cwd=self.remote)

    def remote_tags(self) -> dict[str, str]:
        out = git("for-each-ref", "--format=%(refname) %(objectname)", "refs/tags", cwd=self.remote)
        return dict(line.split(" ") for line in out.splitlines() if line)

    def reject_pushes(self, times: int) -> Path:
        """Install a pre-receive hook that refuses the next ``times`` pushes; returns its counter."""
        counter = self.remote.parent / "rejections"
        counter.write_text("0")
        hook = self.remote / "hooks" / "pre-receive"
        hook.write_text(
            "#!/bin/sh\n"
            f'n=$(cat "{counter}"); echo $((n + 1)) > "{counter}"\n'
            f'if [ "$n" -lt {times} ]; then echo "busy, try again" >&2; exit 1; fi\n'
        )
        hook.chmod(0o755)
        return counter


class Soa:
    """A soa-configs dir with one service whose git_url is the test repository."""

    def __init__(self, root: Path, git_url: str | None) -> None:
        self.dir = root / "soa"
        self.service_dir = self.dir / SERVICE
        self.service_dir.mkdir(parents=True)
        service_yaml = f"git_url: {git_url}\n" if git_url else "description: no git url\n"
        (self.service_dir / "service.yaml").write_text(service_yaml)
        (self.service_dir / "deploy.yaml").write_text(
            textwrap.dedent(
                """\
                pipeline:
                - step: itest
                - step: prod.canary
                - step: prod.main
                - step: never.deployed
                """
            )
        )
        (self.service_dir / "kubernetes-c1.yaml").write_text(
            textwrap.dedent(
                """\
                canary: {deploy_group: prod.canary}
                main: {deploy_group: prod.main, instances: 3}
                solo: {}
                """
            )
        )

    @property
    def deployments_path(self) -> Path:
        return self.service_dir / "deployments.json"

    def deployments(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.deployments_path.read_text())["v2"]
        return data
