"""`make playground-status` (what is ready, what is missing, and the command that fixes each) and
`make playground-env` (exports to `eval`). Modelled on PaaSTA's playground-status.sh and
playground-env.sh, without the ZooKeeper and registry-credential checks we do not need.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from pg_cluster import Resolution, kind_script, probe, resolve
from pg_common import (
    ETC_DIR,
    KIND_KUBECONFIG,
    REPO_DIR,
    SOA_DIR,
    Names,
    entry_point,
    missing_entry_point,
    playground_env,
)
from pg_repos import deploy_groups_of, local_repo_path

from paasta_lite.config.soa_config import SoaDir
from paasta_lite.errors import PaastaLiteError

MARKS = {"ok": "✓", "missing": "✗", "warn": "!", "skip": "-"}


@dataclass(frozen=True)
class Check:
    state: str  # ok | missing | warn | skip
    what: str
    detail: str = ""
    fix: str = ""

    def render(self) -> str:
        line = f" {MARKS[self.state]} {self.what}" + (f": {self.detail}" if self.detail else "")
        if self.fix and self.state != "ok":
            line += "\n" + "\n".join(f"     {fix}" for fix in self.fix.splitlines())
        return line


def api_url(cluster: str, etc_dir: Path = ETC_DIR) -> str | None:
    path = etc_dir / "api_endpoints.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    endpoints = data.get("api_endpoints", {}) if isinstance(data, dict) else {}
    url = endpoints.get(cluster) if isinstance(endpoints, dict) else None
    return url if isinstance(url, str) else None


def api_answers(url: str, timeout: float = 2.0) -> str | None:
    """The API's version when `GET <url>/v1/version` answers in time, else None."""
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/v1/version", timeout=timeout) as response:
            body: bytes = response.read(200)
            return body.decode("utf-8", "replace").strip()
    except (urllib.error.URLError, OSError, ValueError):
        return None


def tool_checks(resolution: Resolution) -> list[Check]:
    done = kind_script("check", capture=True)
    needed = resolution.source == "kind" or resolution.kind_cluster is not None
    if done.returncode == 0:
        return [Check("ok", "container engine and kind", done.stdout.strip())]
    state = "missing" if needed else "warn"
    detail = "needed for the Kind cluster and the sample image" if needed else "needed only to build images"
    return [Check(state, "container engine and kind", detail, done.stderr.strip())]


def cluster_check(resolution: Resolution) -> Check:
    result = probe(resolution.kubeconfig)
    if result.ok:
        return Check("ok", "cluster", resolution.message)
    if resolution.source == "kind" and not KIND_KUBECONFIG.exists():
        return Check("missing", "cluster", "no Kind cluster yet", "make k8s_fake_cluster")
    return Check("missing", "cluster", f"{resolution.kubeconfig}: {result.detail}",
                 "make k8s_fake_cluster   (or make k8s_recreate_cluster if the Kind cluster is broken)")


def service_checks(cluster: str, kubeconfig: str | None) -> list[Check]:
    if not (ETC_DIR / "clusters.json").exists() or not SOA_DIR.is_dir():
        return [Check("missing", "playground configs", "", "make playground-configs")]
    checks = [Check("ok", "playground configs", "etc_paasta_playground/, soa_config_playground/")]
    soa = SoaDir(str(SOA_DIR))
    for name in soa.list_services():
        try:
            service = soa.load_service(name)
        except PaastaLiteError as error:
            checks.append(Check("missing", f"{name}: config", str(error).splitlines()[0],
                                f"make playground-validate   (then fix soa_config_playground/{name}/)"))
            continue
        checks.extend(_deploy_checks(service, cluster, kubeconfig))
    return checks


def _deploy_checks(service: object, cluster: str, kubeconfig: str | None) -> list[Check]:
    from paasta_lite.config.soa_config import ServiceConfig

    assert isinstance(service, ServiceConfig)
    checks = []
    repo = local_repo_path(service.git_url)
    if repo is not None and not (repo / ".git").exists():
        checks.append(Check("missing", f"{service.name}: git repository", str(repo),
                            "make generate_deployments_for_service"))
    groups = deploy_groups_of(service)
    deployed = dict(service.deployments.deployments) if service.deployments else {}
    missing = [group for group in groups if group not in deployed]
    if missing:
        checks.append(Check("missing", f"{service.name}: deployments.json",
                            "not deployed: " + ", ".join(missing), "make generate_deployments_for_service"))
    else:
        shas = ", ".join(f"{group}={deployed[group].short_sha}" for group in groups)
        checks.append(Check("ok", f"{service.name}: deployments.json", shas))
    checks.append(workload_check(service.name, cluster, kubeconfig))
    return checks


def workload_check(service: str, cluster: str, kubeconfig: str | None) -> Check:
    """Ask `paasta status` itself (the one health model) rather than judging pods here."""
    why = missing_entry_point("paasta status")
    if why:
        return Check("skip", f"{service}: workloads", why)
    if kubeconfig is None:
        return Check("skip", f"{service}: workloads", "no cluster")
    argv = [entry_point("paasta"), "status", "-s", service, "-c", cluster]
    try:
        done = subprocess.run(argv, env=playground_env(kubeconfig), capture_output=True, text=True,
                              timeout=60)
    except subprocess.TimeoutExpired:
        return Check("warn", f"{service}: workloads", "paasta status took over 60 s")
    if done.returncode == 0:
        return Check("ok", f"{service}: workloads", "healthy (paasta status)")
    tail = (done.stdout + done.stderr).strip().splitlines()[-3:]
    return Check("missing", f"{service}: workloads", " | ".join(tail),
                 "make setup-kubernetes-job   (first time: make playground)")


def api_check(cluster: str) -> Check:
    url = api_url(cluster)
    if url is None:
        return Check("skip", "API", "not started (optional)", "make playground-api   (in another terminal)")
    version = api_answers(url)
    if version is not None:
        return Check("ok", "API", f"{url} answers ({version})")
    return Check("missing", "API", f"{url} is in api_endpoints.json but does not answer; `paasta status` "
                 "will fail until it does", "make playground-api   (or make playground-forget-api)")


def status_report(names: Names) -> list[Check]:
    venv = REPO_DIR / ".venv" / ".installed"
    checks = [Check("ok" if venv.exists() else "missing", "virtualenv", ".venv", "make dev")]
    resolution = resolve(names)
    checks.extend(tool_checks(resolution))
    cluster = cluster_check(resolution)
    checks.append(cluster)
    reachable = resolution.kubeconfig if cluster.state == "ok" else None
    checks.extend(service_checks(names.paasta_cluster, reachable))
    checks.append(api_check(names.paasta_cluster))
    return checks


def env_lines(names: Names, resolution: Resolution) -> list[str]:
    """`export` lines for `eval "$(make -s playground-env)"`, with the API URL as a comment."""
    venv_bin = REPO_DIR / ".venv" / "bin"
    lines = [
        f"export PAASTA_SYSTEM_CONFIG_DIR={shlex.quote(str(ETC_DIR))}",
        f"export PAASTA_SOA_DIR={shlex.quote(str(SOA_DIR))}",
        f"export KUBECONFIG={shlex.quote(resolution.kubeconfig)}",
        f"export PAASTA_TEST_CLUSTER={shlex.quote(names.paasta_cluster)}",
        f"export PATH={shlex.quote(str(venv_bin))}:\"$PATH\"",
        f"# {resolution.message}",
    ]
    url = api_url(names.paasta_cluster)
    lines.append(f"# API: {url}" if url else "# API: not started (make playground-api)")
    return lines


def forget_api(cluster: str, etc_dir: Path = ETC_DIR) -> str | None:
    """Drop the cluster's entry from api_endpoints.json when its API is gone.

    Returns the URL removed, or None. An entry whose API still answers is kept (it may be another
    terminal's `make playground-api`): raises `ApiStillAnswers` naming it.
    """
    from paasta_lite.config.files import atomic_write_text

    path = etc_dir / "api_endpoints.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    endpoints = data.get("api_endpoints") if isinstance(data, dict) else None
    if not isinstance(endpoints, dict) or cluster not in endpoints:
        return None
    url = endpoints[cluster]
    if isinstance(url, str) and api_answers(url) is not None:
        raise ApiStillAnswers(url)
    del endpoints[cluster]
    if endpoints:
        atomic_write_text(str(path), json.dumps(data, indent=2, sort_keys=True) + "\n")
    else:
        os.unlink(path)
    return str(url)


class ApiStillAnswers(Exception):
    """The recorded API answers: it is not stale, so it stays."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.url = url
