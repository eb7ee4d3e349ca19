"""Paths, names and small process helpers shared by the playground scripts.

The Makefile is the one place that pins versions and names (kind version, node image, cluster
names); it exports them, and these scripts read them from the environment with the same
fallbacks so `python playground/make_playground.py ...` also works outside make.
"""

from __future__ import annotations

import getpass
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_DIR = Path(__file__).resolve().parent.parent
PLAYGROUND_DIR = REPO_DIR / "playground"
TEMPLATES = PLAYGROUND_DIR / "templates"
SERVICE_SOURCES = PLAYGROUND_DIR / "services"
KIND_SCRIPT = PLAYGROUND_DIR / "scripts" / "kind-cluster.sh"
ETC_DIR = REPO_DIR / "etc_paasta_playground"
SOA_DIR = REPO_DIR / "soa_config_playground"
REPOS_DIR = REPO_DIR / "playground_repos"
KIND_KUBECONFIG = REPO_DIR / "k8s_itests" / "kubeconfig"

#: Exit code of `make_playground.py require` when an entry point is not in this checkout yet.
NOT_LANDED = 3

#: Which issue builds each entry point, for "not in this checkout yet" messages.
ENTRY_POINTS: Mapping[str, tuple[str, str]] = {
    "generate_deployments_for_service": ("paasta_lite.generate_deployments_for_service", "issue 2"),
    "setup_kubernetes_job": ("paasta_lite.setup_kubernetes_job", "issue 5"),
    "cleanup_kubernetes_jobs": ("paasta_lite.cleanup_kubernetes_jobs", "issue 5"),
    "paasta_api": ("paasta_lite.paasta_api", "issue 3"),
    "paasta_deployd": ("paasta_lite.paasta_deployd", "issue 13"),
    "paasta status": ("status", "issue 3"),
    "paasta render": ("render", "issue 5"),
    "paasta logs": ("logs", "issue 3"),
    "paasta mark-for-deployment": ("mark-for-deployment", "issue 2"),
    "paasta wait-for-deployment": ("wait-for-deployment", "issue 2"),
}


def user_name() -> str:
    """`$USER` as kind and Kubernetes accept it (lower case, `[a-z0-9-]`)."""
    raw = os.environ.get("USER") or getpass.getuser()
    return re.sub(r"[^a-z0-9-]+", "-", raw.lower()).strip("-") or "user"


@dataclass(frozen=True)
class Names:
    """The playground's names; the Makefile exports each, these are the same defaults."""

    kind_cluster: str
    paasta_cluster: str
    kind_version: str

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Names:
        env = os.environ if env is None else env
        user = user_name()
        return cls(
            kind_cluster=env.get("KIND_CLUSTER_NAME") or f"{user}-k8s-test",
            paasta_cluster=env.get("PLAYGROUND_CLUSTER") or f"kind-{user}-k8s-test",
            kind_version=env.get("KIND_VERSION") or "v0.31.0",
        )


def missing_entry_point(name: str) -> str | None:
    """Why entry point `name` cannot run from this checkout, or None when it can."""
    target, issue = ENTRY_POINTS[name]
    if name.startswith("paasta "):
        from paasta_lite.cli.main import COMMANDS

        if target not in COMMANDS:
            return f"`{name}` is not in this checkout yet ({issue} builds it)"
        module = COMMANDS[target].split(":")[0]
    else:
        module = target
    if importlib.util.find_spec(module) is None:
        return f"`{name}` is not in this checkout yet ({issue} builds it: module {module} is missing)"
    return None


def playground_env(kubeconfig: str | None = None) -> dict[str, str]:
    """The environment every playground command runs with."""
    env = dict(os.environ)
    env["PAASTA_SYSTEM_CONFIG_DIR"] = str(ETC_DIR)
    env["PAASTA_SOA_DIR"] = str(SOA_DIR)
    if kubeconfig:
        env["KUBECONFIG"] = kubeconfig
    return env


def show(argv: Sequence[str], env_note: str = "") -> None:
    """Print a command the way a user would type it, before running it."""
    print(f"+ {env_note}{shlex.join(argv)}", flush=True)


def run(argv: Sequence[str], *, env: Mapping[str, str] | None = None, check: bool = True,
        capture: bool = False, timeout: float | None = None, stdin: int | None = None,
        ) -> subprocess.CompletedProcess[str]:
    """Run a command (text mode); `capture` keeps stdout/stderr instead of passing them through."""
    return subprocess.run(
        list(argv), env=None if env is None else dict(env), check=check, text=True, timeout=timeout,
        stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None,
        stdin=stdin,
    )


def entry_point(name: str) -> str:
    """The console script `name` next to this interpreter (the venv's under make), else `name`."""
    candidate = Path(sys.executable).parent / name
    return str(candidate) if candidate.exists() else name


def relative(path: Path) -> str:
    try:
        return str(path.relative_to(REPO_DIR))
    except ValueError:
        return str(path)
