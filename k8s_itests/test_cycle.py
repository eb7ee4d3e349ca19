"""The whole deploy cycle against a real cluster, through the real entry points.

generate -> setup (and a no-op second run) -> status -> mark-for-deployment --wait-for-deployment
of a new commit (the test plays the crons meanwhile) -> the bounce completes -> a config change
bounces -> stop -> start -> restart -> paasta logs from every pod -> the API agrees with
`paasta status` -> remove an instance and cleanup deletes it -> the kill threshold refuses a mass
delete, and --force goes through.

Assertions are on the Kubernetes objects (Deployments, ReplicaSets, pods as the API reports
them) and on what `paasta status` reports. Only where containers must really run (healthy,
bounce finished, logs) do we need the image on the nodes; without it (`ImageLoader.reason`) those
assertions are skipped with the reason, and the rest still runs.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from typing import Any

import pytest
from itest_world import DEPLOY_GROUP, TIMEOUT_S, ImageLoader, World, instances_yaml, wait_for

from paasta_lite import labels

pytestmark = pytest.mark.incremental


def template_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"].get("labels", {}))


def pods_of(kube: Any, world: World, instance: str) -> list[dict[str, Any]]:
    pods = kube.list_pods(world.namespace, labels.instance_selector(world.service, instance))
    return [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]


def need_images(images: ImageLoader) -> None:
    if not images.available:
        pytest.skip(f"containers cannot run here: {images.reason}")


def healthy(world: World) -> bool:
    code, report = world.status()
    return code == 0 and bool(report.get("healthy"))


class TestDeployCycle:
    def test_generate_writes_the_deployed_sha(self, world: World, images: ImageLoader) -> None:
        sha = world.git("rev-parse", "HEAD")
        images.ensure(world.service, sha)
        world.paasta("mark-for-deployment", "-s", world.service, "-l", DEPLOY_GROUP, "-c", sha,
                     "-d", str(world.soa))
        world.generate()
        assert world.deployed_sha() == sha

    def test_setup_creates_one_deployment_per_instance(self, world: World, kube: Any) -> None:
        world.setup()
        sha = world.deployed_sha()
        for instance, replicas in (("main", 2), ("worker", 1), ("canary", 1)):
            deployment = kube.get_deployment(world.namespace, world.app(instance))
            meta = deployment["metadata"]["labels"]
            assert meta[labels.SERVICE] == world.service and meta[labels.INSTANCE] == instance
            assert meta[labels.MANAGED] == "true" and meta[labels.CLUSTER] == world.cluster
            assert template_labels(deployment)[labels.GIT_SHA] == sha
            assert deployment["spec"]["replicas"] == replicas

    def test_second_setup_changes_nothing(self, world: World, kube: Any) -> None:
        before = {i: kube.get_deployment(world.namespace, world.app(i))["metadata"]["resourceVersion"]
                  for i in ("main", "worker", "canary")}
        world.setup()
        after = {i: kube.get_deployment(world.namespace, world.app(i))["metadata"]["resourceVersion"]
                 for i in ("main", "worker", "canary")}
        assert after == before, "a no-op setup run wrote to the cluster"

    def test_status_reports_every_instance(self, world: World, images: ImageLoader) -> None:
        _, report = world.status()
        assert {row["instance"] for row in report["instances"]} == {"main", "worker", "canary"}
        for row in report["instances"]:
            assert row["health"]["desired_version"]["git_sha"] == world.deployed_sha()
            assert row["health"]["expected"] == {"main": 2}.get(row["instance"], 1)
        need_images(images)
        wait_for("paasta status to report every instance healthy", lambda: healthy(world))

    def test_mark_for_deployment_waits_for_the_bounce(self, world: World, kube: Any,
                                                      images: ImageLoader) -> None:
        old_sha, new_sha = world.deployed_sha(), world.commit("second version")
        images.ensure(world.service, new_sha)
        timeout = TIMEOUT_S if images.available else 30
        argv = [*world.module("paasta_lite.cli"), "mark-for-deployment", "-s", world.service, "-l",
                DEPLOY_GROUP, "-c", new_sha, "-d", str(world.soa), "--wait-for-deployment",
                "-t", str(timeout), "--polling-interval", "2"]
        waiter = subprocess.Popen(argv, env=world.env(), text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        while waiter.poll() is None:  # play the production crons while it waits
            world.deploy_cycle()
            time.sleep(3)
        output = waiter.communicate()[0]
        world.log.append(f"$ {' '.join(argv)}\n[exit {waiter.returncode}]\n{output}")
        assert world.deployed_sha() == new_sha
        deployment = kube.get_deployment(world.namespace, world.app("main"))
        assert template_labels(deployment)[labels.GIT_SHA] == new_sha
        need_images(images)  # without runnable pods the wait times out: nothing more to check
        assert waiter.returncode == 0, output
        wait_for("the old pods to be gone", lambda: all(
            pod["metadata"]["labels"].get(labels.GIT_SHA) != old_sha for pod in pods_of(kube, world, "main")))

    def test_config_change_bounces(self, world: World, kube: Any, images: ImageLoader) -> None:
        before = kube.get_deployment(world.namespace, world.app("main"))
        world.write_instances(instances_yaml("two"))
        world.deploy_cycle()
        after = kube.get_deployment(world.namespace, world.app("main"))
        assert after["spec"]["template"] != before["spec"]["template"]
        assert template_labels(after)[labels.CONFIG_SHA] != template_labels(before)[labels.CONFIG_SHA]
        need_images(images)
        wait_for("the config change to roll out", lambda: healthy(world))

    def test_stop(self, world: World, kube: Any) -> None:
        world.paasta("stop", "-s", world.service, "-c", world.cluster, "-i", "main", "-d", str(world.soa))
        world.deploy_cycle()
        assert kube.get_deployment(world.namespace, world.app("main"))["spec"]["replicas"] == 0
        wait_for("main's pods to go", lambda: not pods_of(kube, world, "main"))
        health = wait_for("status to say Stopped",
                          lambda: (h := world.health("main"))["state"] == "Stopped" and h)
        assert health["healthy"], "an intentionally stopped instance counts as healthy"

    def test_start(self, world: World, kube: Any, images: ImageLoader) -> None:
        world.paasta("start", "-s", world.service, "-c", world.cluster, "-i", "main", "-d", str(world.soa))
        world.deploy_cycle()
        assert kube.get_deployment(world.namespace, world.app("main"))["spec"]["replicas"] == 2
        wait_for("main's pods to come back", lambda: len(pods_of(kube, world, "main")) == 2)
        need_images(images)
        wait_for("main to be healthy again", lambda: healthy(world))

    def test_restart_replaces_every_pod(self, world: World, kube: Any, images: ImageLoader) -> None:
        before = kube.get_deployment(world.namespace, world.app("main"))
        old_pods = {pod["metadata"]["name"] for pod in pods_of(kube, world, "main")}
        world.paasta("restart", "-s", world.service, "-c", world.cluster, "-i", "main", "-d", str(world.soa))
        world.deploy_cycle()
        after = kube.get_deployment(world.namespace, world.app("main"))
        assert after["spec"]["template"] != before["spec"]["template"]
        assert template_labels(after)[labels.GIT_SHA] == template_labels(before)[labels.GIT_SHA]
        need_images(images)
        wait_for("every old pod to be replaced", lambda: healthy(world) and not (
            old_pods & {pod["metadata"]["name"] for pod in pods_of(kube, world, "main")}))

    def test_logs_come_from_every_pod(self, world: World, kube: Any, images: ImageLoader) -> None:
        need_images(images)

        def every_pod_logged() -> bool:
            names = {pod["metadata"]["name"] for pod in pods_of(kube, world, "main")}
            done = world.paasta("logs", "-s", world.service, "-c", world.cluster, "-i", "main", "-l", "50",
                                ok=None)
            return done.returncode == 0 and bool(names) and all(name in done.stdout for name in names)

        wait_for("paasta logs to show lines from every pod of main", every_pod_logged, timeout=60)

    def test_api_agrees_with_status(self, world: World) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        api = subprocess.Popen([*world.module("paasta_lite.paasta_api"), "--port", str(port),
                                "-d", str(world.soa), "-c", world.cluster], env=world.env(),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}/v1"
        try:
            wait_for("the API to answer /v1/version", lambda: _get(f"{base}/version"),
                     timeout=30, interval=0.5)
            for _attempt in range(5):  # the cluster may move between the two reads: retry
                health = world.health("main")
                status = _get(f"{base}/services/{world.service}/main/status")
                bounce = _get(f"{base}/services/{world.service}/main/bounce_status")
                assert status is not None and bounce is not None
                api_health = status["health"]
                same = all(api_health[key] == health[key] for key in ("state", "ready", "expected",
                                                                      "desired_version", "healthy"))
                if same and bounce["state"] == health["state"] and bounce["running_instance_count"] == \
                        health["ready"] and bounce["expected_instance_count"] == health["expected"]:
                    return
                time.sleep(2)
            raise AssertionError(f"API and paasta status disagree:\nstatus: {health}\nAPI: {api_health}\n"
                                 f"bounce_status: {bounce}")
        finally:
            api.terminate()
            api.wait(10)

    def test_cleanup_deletes_a_removed_instance(self, world: World, kube: Any) -> None:
        from paasta_lite.kube_errors import NotFound

        _refuse_if_other_apps_share_the_cluster(world, kube)
        world.write_instances(instances_yaml("two", canary=False))
        world.cleanup()

        def canary_gone() -> bool:
            try:
                kube.get_deployment(world.namespace, world.app("canary"))
            except NotFound:
                return True
            return False

        wait_for("the canary Deployment to be deleted", canary_gone, timeout=120)
        kube.get_deployment(world.namespace, world.app("main"))  # still there

    def test_kill_threshold_refuses_a_mass_delete(self, world: World, kube: Any) -> None:
        world.write_instances({})
        refused = world.cleanup(ok=False)
        assert "threshold" in (refused.stdout + refused.stderr).lower()
        for instance in ("main", "worker"):
            kube.get_deployment(world.namespace, world.app(instance))  # nothing was deleted
        world.cleanup("--force")
        wait_for("every Deployment of the service to be gone",
                 lambda: not kube.list_deployments(world.namespace), timeout=120)


def _get(url: str) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            data: dict[str, Any] = json.loads(response.read())
            return data
    except OSError:
        return None


def _refuse_if_other_apps_share_the_cluster(world: World, kube: Any) -> None:
    """cleanup acts on the managed apps of `-c <cluster>`; ours is unique to this run, so nothing
    else may carry it. If something does, stop rather than risk someone else's workloads."""
    others = [f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in kube.list_managed_deployments()
              if d["metadata"]["namespace"] != world.namespace
              and d["metadata"].get("labels", {}).get(labels.CLUSTER) in (world.cluster, None)]
    if others:
        pytest.fail(f"refusing to run cleanup: managed apps outside {world.namespace} are labelled for "
                    f"cluster {world.cluster} or for no cluster: {others[:5]}")
