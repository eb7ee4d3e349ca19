"""One isolated paasta_lite "world" per test module, driven only through the real entry points.

A world is a unique service (`itest_<id>`, so its namespace `paastasvc-itest--<id>` is unique),
a unique PaaSTA cluster name (`itest-<id>`, the value of the cluster label), and its own soa dir,
system config dir and git repository under a temporary directory. Commands run as subprocesses
(`python -m ...` with this interpreter), exactly as an operator or a cron job would run them,
with `KUBECONFIG` pointing at the cluster under test.

Images: the pods only really run when the image `<registry>/services-<service>:paasta-<sha>`
exists on the nodes. `ImageLoader` makes that true on a Kind cluster with a working container
engine (it builds the playground's hello_world once and tags it per sha); elsewhere tests assert
on the Deployment/ReplicaSet objects and on what `paasta status` reports, and skip only the
assertions that need running containers, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import yaml

REPO_DIR = Path(__file__).resolve().parent.parent
HELLO_WORLD = REPO_DIR / "playground" / "services" / "hello_world"
REGISTRY = "paasta-playground.local"
DEPLOY_GROUP = "itest"
TIMEOUT_S = float(os.environ.get("ITEST_TIMEOUT_S", "240"))
GIT = ["git", "-c", "user.name=paasta itest", "-c", "user.email=itest@paasta-lite.invalid",
       "-c", "commit.gpgsign=false", "-c", "tag.gpgsign=false", "-c", "core.hooksPath=/dev/null",
       "-c", "init.defaultBranch=main"]

T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = TIMEOUT_S,
             interval: float = 2.0) -> T:
    """Call `probe` until it returns something truthy; fail naming `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def get_json(url: str) -> dict[str, Any] | None:
    """GET a JSON document; None when the server does not answer or answers an error."""
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data
    except (OSError, ValueError):  # URLError/HTTPError are OSErrors
        return None


def instances_yaml(env_value: str = "one", *, canary: bool = True, main_grace_s: int = 2) -> dict[str, Any]:
    """The world's instances: an HTTP main, a worker with a cmd health check, and a canary.

    `main_grace_s` is main's health check grace period (the probes' initialDelaySeconds): a long
    one keeps main's new pods not Ready for that long, so a bounce stays in progress (old pods
    serving) long enough to look at it — on any cluster, without timing luck."""
    env = {"ITEST_VALUE": env_value}
    common: dict[str, Any] = {"deploy_group": DEPLOY_GROUP, "cpus": 0.05, "mem": 64, "env": env}
    http = {"cmd": "python3 /app/server.py", "healthcheck_mode": "http", "healthcheck_uri": "/health",
            "healthcheck_grace_period_seconds": 2, "healthcheck_interval_seconds": 2}
    instances = {
        "main": {**common, **http, "instances": 2, "bounce_method": "crossover",
                 "healthcheck_grace_period_seconds": main_grace_s},
        "worker": {**common, "instances": 1, "cmd": "python3 /app/worker.py", "bounce_method": "downthenup",
                   "env": {**env, "HEARTBEAT_INTERVAL_S": "2"},
                   "healthcheck_mode": "cmd", "healthcheck_cmd": "test -f /tmp/worker-heartbeat",
                   "healthcheck_grace_period_seconds": 2, "healthcheck_interval_seconds": 2},
    }
    if canary:
        instances["canary"] = {**common, **http, "instances": 1}
    return instances


@dataclass
class World:
    root: Path
    kubeconfig: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    log: list[str] = field(default_factory=list)

    @property
    def service(self) -> str:
        return f"itest_{self.run_id}"

    @property
    def cluster(self) -> str:
        return f"itest-{self.run_id}"

    @property
    def namespace(self) -> str:
        from paasta_lite.config.naming import namespace_for

        return namespace_for(self.service)

    @property
    def soa(self) -> Path:
        return self.root / "soa"

    @property
    def etc(self) -> Path:
        return self.root / "etc_paasta"

    @property
    def repo(self) -> Path:
        return self.root / "repo"

    @property
    def service_dir(self) -> Path:
        return self.soa / self.service

    def app(self, instance: str) -> str:
        from paasta_lite.config.naming import app_name

        return app_name(self.service, instance)

    # ------------------------------------------------------------------ set-up
    def create(self) -> None:
        self.etc.mkdir(parents=True)
        files = {"clusters.json": {"cluster": self.cluster, "clusters": [self.cluster]},
                 "docker_registry.json": {"docker_registry": REGISTRY},
                 "logs.json": {"log_writer": {"driver": "file",
                                              "options": {"directory": str(self.root / "logs")}}}}
        for name, data in files.items():
            (self.etc / name).write_text(json.dumps(data))
        self.service_dir.mkdir(parents=True)
        (self.service_dir / "service.yaml").write_text(yaml.safe_dump(
            {"description": "paasta_lite k8s_itests", "git_url": str(self.repo)}))
        (self.service_dir / "deploy.yaml").write_text(yaml.safe_dump({"pipeline": [{"step": DEPLOY_GROUP}]}))
        self.write_instances(instances_yaml())
        self.repo.mkdir()
        self.git("init", "-q")
        shutil.copytree(HELLO_WORLD, self.repo, dirs_exist_ok=True)
        self.commit("initial")

    def write_instances(self, instances: dict[str, Any]) -> None:
        (self.service_dir / f"kubernetes-{self.cluster}.yaml").write_text(yaml.safe_dump(instances))

    def remove_instance_file(self) -> None:
        """How a service owner removes every instance of a cluster (an empty file is an error)."""
        (self.service_dir / f"kubernetes-{self.cluster}.yaml").unlink()

    def git(self, *args: str) -> str:
        return subprocess.run([*GIT, "-C", str(self.repo), *args], check=True, text=True,
                              capture_output=True).stdout.strip()

    def commit(self, message: str) -> str:
        (self.repo / "CHANGES").write_text(f"{message} {time.time()}\n")
        self.git("add", "-A")
        self.git("commit", "-q", "-m", message)
        return self.git("rev-parse", "HEAD")

    # ------------------------------------------------------------------ running entry points
    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.update(PAASTA_SYSTEM_CONFIG_DIR=str(self.etc), PAASTA_SOA_DIR=str(self.soa),
                   KUBECONFIG=self.kubeconfig, NO_COLOR="1")
        return env

    def run(self, argv: Sequence[str], *, ok: bool | None = True, timeout: float = TIMEOUT_S,
            ) -> subprocess.CompletedProcess[str]:
        """Run a command; `ok=True` requires exit 0, `ok=False` non-zero, None accepts either."""
        done = subprocess.run(list(argv), env=self.env(), text=True, capture_output=True, timeout=timeout)
        self.log.append(f"$ {' '.join(argv)}\n[exit {done.returncode}]\n{done.stdout}{done.stderr}")
        if ok is not None and (done.returncode == 0) != ok:
            raise AssertionError(f"{' '.join(argv)} exited {done.returncode} (expected "
                                 f"{'0' if ok else 'non-zero'}):\n{done.stdout}\n{done.stderr}")
        return done

    @staticmethod
    def module(name: str) -> list[str]:
        return [sys.executable, "-m", name]

    def paasta(self, *args: str, ok: bool | None = True, timeout: float = TIMEOUT_S,
               ) -> subprocess.CompletedProcess[str]:
        return self.run([*self.module("paasta_lite.cli"), *args], ok=ok, timeout=timeout)

    def generate(self) -> None:
        self.run([*self.module("paasta_lite.generate_deployments_for_service"), "-s", self.service,
                  "-d", str(self.soa)])

    def setup(self, ok: bool | None = True) -> subprocess.CompletedProcess[str]:
        return self.run([*self.module("paasta_lite.setup_kubernetes_job"), "-d", str(self.soa),
                         "-c", self.cluster, "-v"], ok=ok)

    def cleanup(self, *extra: str, ok: bool | None = True) -> subprocess.CompletedProcess[str]:
        return self.run([*self.module("paasta_lite.cleanup_kubernetes_jobs"), "-d", str(self.soa),
                         "-c", self.cluster, *extra], ok=ok)

    def deploy_cycle(self) -> None:
        """What the production crons do: generate deployments.json, then reconcile."""
        self.generate()
        self.setup()

    def status(self, *instances: str) -> tuple[int, dict[str, Any]]:
        args = ["status", "-s", self.service, "-c", self.cluster, "-d", str(self.soa), "-o", "json"]
        if instances:
            args += ["-i", ",".join(instances)]
        done = self.paasta(*args, ok=None)
        return done.returncode, json.loads(done.stdout)

    def health(self, instance: str) -> dict[str, Any]:
        _, report = self.status(instance)
        rows = [row for row in report["instances"] if row["instance"] == instance]
        assert rows and "health" in rows[0], f"paasta status has no health for {instance}: {report}"
        return dict(rows[0]["health"])

    def deployed_sha(self) -> str:
        data = json.loads((self.service_dir / "deployments.json").read_text())
        return str(data["v2"]["deployments"][DEPLOY_GROUP]["git_sha"])


class ImageLoader:
    """Puts `<registry>/services-<service>:paasta-<sha>` on the nodes of a Kind cluster."""

    BASE = "paasta-lite-itest-base:latest"

    def __init__(self, kind_cluster: str | None) -> None:
        self.kind_cluster = kind_cluster
        self.reason = self._unavailable()
        self._base_built = False

    def _unavailable(self) -> str | None:
        if os.environ.get("ITEST_NO_IMAGES") == "1":
            return "ITEST_NO_IMAGES=1"
        if os.environ.get("ITEST_ASSUME_IMAGES") == "1":
            self.kind_cluster = None  # available already (a registry, or a stand-in cluster)
            return None
        if self.kind_cluster is None:
            return "the current context is not a Kind cluster (kind-*), so images cannot be loaded into it"
        for tool in ("docker", "kind"):
            if shutil.which(tool) is None:
                return f"{tool} is not installed"
        if subprocess.run(["docker", "info"], capture_output=True, timeout=30).returncode != 0:
            return "docker does not answer"
        return None

    @property
    def available(self) -> bool:
        return self.reason is None

    def ensure(self, service: str, sha: str) -> None:
        if not self.available or self.kind_cluster is None:
            return
        if not self._base_built:
            subprocess.run(["docker", "build", "-q", "-t", self.BASE, str(HELLO_WORLD)], check=True)
            self._base_built = True
        image = f"{REGISTRY}/services-{service}:paasta-{sha}"
        subprocess.run(["docker", "tag", self.BASE, image], check=True)
        subprocess.run(["kind", "load", "docker-image", image, "--name", str(self.kind_cluster)], check=True,
                       capture_output=True)
