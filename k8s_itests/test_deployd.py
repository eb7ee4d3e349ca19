"""paasta_deployd against a real cluster: changes and drift reconciled in seconds, leader hand-over.

paasta_deployd runs as a subprocess (`python -m paasta_lite.paasta_deployd`), as an operator would
run it, over a temporary soa dir with one service (`itdeployd_<id>`, its own namespace) and its
own PaaSTA cluster name. The story, each step timed (printed with ``-s``):

1. the first sync creates the instances' Deployments;
2. a soa-config edit, and a new deployments.json entry, reach their Deployment;
3. `kubectl scale` and a `kubectl patch` of a managed field are reverted;
4. `kubectl delete` of a managed Deployment, and of an autoscaled instance's HPA: recreated;
5. an instance removed from soa-configs is deleted once the soa dir has settled;
6. two processes with ``--leader-elect``: only one holds the Lease; kill -9 it, and the other
   takes over once the Lease expires, then applies the next edit.

"A few seconds" is asserted as `FEW_SECONDS` (the scan runs every 0.5 s here, the watch is
immediate; a loaded shared machine needs the slack). The run uses its own Lease name
(``--lease-name``, hidden) so it never blocks the cron-style runs of other suites on a shared
cluster; the fake-server tests cover sharing the cron jobs' Lease. Containers need not run: all
assertions are on the Deployment objects.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from itest_world import wait_for

from paasta_lite.kube import labels
from paasta_lite.kube.errors import NotFound
from paasta_lite.kube.run_lock import LEASE_NAMESPACE

pytestmark = pytest.mark.incremental

#: The bound on "within a few seconds" for one change (the report prints the measured times).
FEW_SECONDS = 10.0
LEASE_SECONDS = 5
GROUP = "itest"
SHA, NEW_SHA = "1" * 40, "2" * 40
AUTO = {"min_instances": 1, "max_instances": 3}
TIMINGS: list[tuple[str, float]] = []


def timed(world: DeploydWorld, what: str, probe: Callable[[], Any], *, bound: float = FEW_SECONDS,
          since: float | None = None) -> float:
    """Seconds until ``probe()`` is truthy (polled every 0.1 s, from ``since`` or now); fails after
    ``bound``, showing deployd's log."""
    started = time.monotonic() if since is None else since
    try:
        wait_for(what, probe, timeout=bound - (time.monotonic() - started), interval=0.1)
    except AssertionError as error:
        raise AssertionError(f"{error}\n{world.logs()}") from None
    took = time.monotonic() - started
    TIMINGS.append((what, took))
    print(f"\n[deployd itest] {what}: {took:.2f} s")
    return took


@dataclass
class DeploydWorld:
    """A soa dir and system config of one service, and the deployd processes run over them."""

    root: Path
    kubeconfig: str
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    processes: list[subprocess.Popen[str]] = field(default_factory=list)

    @property
    def service(self) -> str:
        return f"itdeployd_{self.run_id}"

    @property
    def cluster(self) -> str:
        return f"itdeployd-{self.run_id}"

    @property
    def lease_name(self) -> str:
        return f"paasta-lite-reconcile-itdeployd-{self.run_id}"

    @property
    def namespace(self) -> str:
        from paasta_lite.config.naming import namespace_for

        return namespace_for(self.service)

    def app(self, instance: str) -> str:
        from paasta_lite.config.naming import app_name

        return app_name(self.service, instance)

    @property
    def service_dir(self) -> Path:
        return self.root / "soa" / self.service

    def create(self) -> None:
        etc = self.root / "etc_paasta"
        etc.mkdir(parents=True)
        for name, data in {"clusters.json": {"cluster": self.cluster, "clusters": [self.cluster]},
                           "docker_registry.json": {"docker_registry": "paasta-playground.local"},
                           "logs.json": {"log_writer": {"driver": "file",
                                                        "options": {"directory": str(self.root / "logs")}}},
                           }.items():
            (etc / name).write_text(json.dumps(data))
        self.service_dir.mkdir(parents=True)
        (self.service_dir / "service.yaml").write_text(yaml.safe_dump({"description": "deployd k8s_itests"}))
        (self.service_dir / "deploy.yaml").write_text(yaml.safe_dump({"pipeline": [{"step": GROUP}]}))
        self.write_instances({"main": 1, "canary": 1})
        self.write_deployments(SHA)

    # ------------------------------------------------------------------ soa-config edits
    def write_instances(self, instances: dict[str, int | dict[str, int]]) -> None:
        """Instance name -> its instance count, or its autoscaling keys (min/max_instances)."""
        body = {name: {**({"instances": size} if isinstance(size, int) else size), "deploy_group": GROUP,
                       "cpus": 0.01, "mem": 32, "cmd": "python3 /app/server.py", "env": {"ITEST": "deployd"}}
                for name, size in instances.items()}
        self._write(f"kubernetes-{self.cluster}.yaml", yaml.safe_dump(body))

    def write_deployments(self, sha: str) -> None:
        data = {"v2": {"deployments": {GROUP: {"docker_image": f"services-{self.service}:paasta-{sha}",
                                               "git_sha": sha, "image_version": None}},
                       "controls": {}}}
        self._write("deployments.json", json.dumps(data))

    def _write(self, name: str, text: str) -> None:
        """Write atomically, as a config sync would (never a half-written file)."""
        path = self.service_dir / name
        temporary = path.with_suffix(".tmp")
        temporary.write_text(text)
        os.replace(temporary, path)

    # ------------------------------------------------------------------ processes
    def env(self) -> dict[str, str]:
        return {**os.environ, "PAASTA_SYSTEM_CONFIG_DIR": str(self.root / "etc_paasta"),
                "KUBECONFIG": self.kubeconfig, "PYTHONUNBUFFERED": "1"}

    def start(self, *extra: str) -> subprocess.Popen[str]:
        log = (self.root / f"deployd-{len(self.processes)}.log").open("w")
        process = subprocess.Popen(
            [sys.executable, "-m", "paasta_lite.paasta_deployd", "-d", str(self.root / "soa"),
             "-c", self.cluster, "--scan-interval", "0.5", "--settle", "2", "--lease-name", self.lease_name,
             "--lease-seconds", str(LEASE_SECONDS), *extra],
            env=self.env(), stderr=log, stdout=log, text=True)
        log.close()
        self.processes.append(process)
        return process

    def logs(self) -> str:
        return "\n".join(f"---- {path.name}\n{path.read_text()[-4000:]}"
                         for path in sorted(self.root.glob("deployd-*.log")))

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def kubectl(world: DeploydWorld, *args: str) -> None:
    """A hand edit, as an operator makes it."""
    if shutil.which("kubectl") is None:
        pytest.skip("kubectl is not installed")
    subprocess.run(["kubectl", "-n", world.namespace, *args], env=world.env(), check=True,
                   capture_output=True, text=True, timeout=60)


def deployment(kube: Any, world: DeploydWorld, instance: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = kube.get_deployment(world.namespace, world.app(instance))
        return found
    except NotFound:
        return None


def replicas(kube: Any, world: DeploydWorld, instance: str) -> Any:
    found = deployment(kube, world, instance)
    return None if found is None else found["spec"].get("replicas")


def get(kube: Any, kind: str, world: DeploydWorld, instance: str) -> dict[str, Any] | None:
    try:
        found: dict[str, Any] = kube.get(kind, world.namespace, world.app(instance))
        return found
    except NotFound:
        return None


def hpa(kube: Any, world: DeploydWorld, instance: str) -> dict[str, Any] | None:
    return get(kube, "HorizontalPodAutoscaler", world, instance)


def gone_or_going(kube: Any, world: DeploydWorld, instance: str) -> bool:
    found = deployment(kube, world, instance)
    return found is None or bool(found["metadata"].get("deletionTimestamp"))


def lease_holder(kube: Any, world: DeploydWorld) -> str:
    try:
        return str(kube.get("Lease", LEASE_NAMESPACE, world.lease_name)["spec"].get("holderIdentity") or "")
    except NotFound:
        return ""


@pytest.fixture(scope="class")
def world(tmp_path_factory: pytest.TempPathFactory, kube: Any) -> Iterator[DeploydWorld]:
    from conftest import delete_namespace

    created = DeploydWorld(root=tmp_path_factory.mktemp("deployd"), kubeconfig=os.environ["KUBECONFIG"])
    created.create()
    try:
        yield created
    finally:
        created.stop_all()
        if os.environ.get("ITEST_KEEP") != "1":
            delete_namespace(created.namespace)
            kube.delete("Lease", LEASE_NAMESPACE, created.lease_name)  # (False when already gone)
        if os.environ.get("ITEST_SHOW_LOG") == "1":
            print(created.logs())
        if TIMINGS:
            print("\n[deployd itest] timings: " + "; ".join(f"{what} {took:.2f} s" for what, took in TIMINGS))


class TestDeployd:
    def test_the_first_sync_creates_every_instance(self, world: DeploydWorld, kube: Any) -> None:
        started = time.monotonic()
        world.start()
        timed(world, "first sync: both Deployments created (incl. start-up)",
              lambda: deployment(kube, world, "main") and deployment(kube, world, "canary"),
              bound=60, since=started)
        main = deployment(kube, world, "main")
        assert main is not None and main["metadata"]["labels"][labels.GIT_SHA] == SHA

    def test_a_soa_config_edit_reaches_the_deployment(self, world: DeploydWorld, kube: Any) -> None:
        world.write_instances({"main": 2, "canary": 1})
        timed(world, "soa-config edit (instances 1 -> 2) applied", lambda: replicas(kube, world, "main") == 2)

    def test_a_new_deployments_json_entry_rolls_out(self, world: DeploydWorld, kube: Any) -> None:
        world.write_deployments(NEW_SHA)
        timed(world, "new deployments.json sha applied",
              lambda: all((deployment(kube, world, i) or {}).get("metadata", {}).get("labels", {})
                          .get(labels.GIT_SHA) == NEW_SHA for i in ("main", "canary")))

    def test_kubectl_scale_is_reverted(self, world: DeploydWorld, kube: Any) -> None:
        kubectl(world, "scale", "deployment", world.app("main"), "--replicas=5")
        timed(world, "kubectl scale --replicas=5 reverted to 2", lambda: replicas(kube, world, "main") == 2)
        assert "replicas 5 -> 2" in world.logs()  # it really was 5 (deployd says what it changed)

    def test_kubectl_patch_of_a_managed_field_is_reverted(self, world: DeploydWorld, kube: Any) -> None:
        patch = {"spec": {"template": {"spec": {"containers": [
            {"name": "main", "env": [{"name": "ITEST", "value": "hand-edited"}]}]}}}}
        before = deployment(kube, world, "main")
        assert before is not None
        container = before["spec"]["template"]["spec"]["containers"][0]["name"]
        patch["spec"]["template"]["spec"]["containers"][0]["name"] = container
        kubectl(world, "patch", "deployment", world.app("main"), "--type=strategic", "-p", json.dumps(patch))

        def env_value() -> str | None:
            found = deployment(kube, world, "main") or {}
            containers = found.get("spec", {}).get("template", {}).get("spec", {}).get("containers", [{}])
            return next((e.get("value") for e in containers[0].get("env", []) if e["name"] == "ITEST"), None)

        timed(world, "kubectl patch of a container env reverted", lambda: env_value() == "deployd")
        assert "edited by hand (spec.template.spec.containers" in world.logs()

    def test_a_deleted_deployment_is_recreated(self, world: DeploydWorld, kube: Any) -> None:
        before = deployment(kube, world, "canary")
        assert before is not None
        kubectl(world, "delete", "deployment", world.app("canary"), "--wait=false")
        timed(world, "kubectl delete: Deployment recreated",
              lambda: (deployment(kube, world, "canary") or {}).get("metadata", {}).get("uid")
              not in (None, before["metadata"]["uid"]))

    def test_a_deleted_hpa_is_recreated(self, world: DeploydWorld, kube: Any) -> None:
        world.write_instances({"main": 2, "canary": 1, "auto": AUTO})
        timed(world, "new autoscaled instance: Deployment, HPA, PDB created",
              lambda: deployment(kube, world, "auto") and hpa(kube, world, "auto")
              and get(kube, "PodDisruptionBudget", world, "auto"))
        before = hpa(kube, world, "auto")
        assert before is not None and before["metadata"]["ownerReferences"][0]["name"] == world.app("auto")
        kubectl(world, "delete", "hpa", world.app("auto"), "--wait=false")
        timed(world, "kubectl delete hpa: HPA recreated",
              lambda: (hpa(kube, world, "auto") or {}).get("metadata", {}).get("uid")
              not in (None, before["metadata"]["uid"]))

    def test_a_removed_instance_is_deleted(self, world: DeploydWorld, kube: Any) -> None:
        world.write_instances({"main": 2, "auto": AUTO})
        timed(world, "instance removed from soa-configs deleted (after --settle 2)",
              lambda: gone_or_going(kube, world, "canary"), bound=FEW_SECONDS + 2)
        assert deployment(kube, world, "main") is not None

    def test_sigterm_stops_cleanly(self, world: DeploydWorld) -> None:
        single = world.processes[0]
        single.send_signal(signal.SIGTERM)
        assert single.wait(30) == 0, world.logs()

    def test_killing_the_leader_hands_over(self, world: DeploydWorld, kube: Any) -> None:
        pair = [world.start("--leader-elect"), world.start("--leader-elect")]
        timed(world, "a leader elected", lambda: lease_holder(kube, world), bound=30)
        holder = lease_holder(kube, world)
        leader = next(p for p in pair if holder.endswith(f":{p.pid}:paasta_deployd"))
        follower = next(p for p in pair if p is not leader)
        time.sleep(2)  # both running: the follower follows
        assert lease_holder(kube, world) == holder
        leader.kill()  # no SIGTERM: the Lease is not given back, it must expire
        leader.wait(10)
        took = timed(world, f"kill -9 of the leader: the follower holds the Lease (lease {LEASE_SECONDS} s)",
                     lambda: lease_holder(kube, world).endswith(f":{follower.pid}:paasta_deployd"),
                     bound=LEASE_SECONDS + 10)
        assert took > 1.0  # it waited for the Lease to expire
        world.write_instances({"main": 3, "auto": AUTO})
        timed(world, "the new leader applies the next edit", lambda: replicas(kube, world, "main") == 3)
        follower.send_signal(signal.SIGTERM)
        assert follower.wait(30) == 0, world.logs()
        assert lease_holder(kube, world) == ""  # given back on SIGTERM
