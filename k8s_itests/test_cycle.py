"""The whole deploy cycle against a real cluster, through the real entry points.

generate -> setup creates (and a no-op second run) -> status -> mark-for-deployment
--wait-for-deployment of a new commit (the test plays the crons meanwhile) -> the bounce
completes -> a config change bounces -> status and bounce_status during and after a slow bounce
-> stop -> start -> restart (force bounce) -> paasta logs from every pod -> the API agrees with
`paasta status` -> an autoscaled instance gets its HPA and PDB (owned by its Deployment), and
cleanup's delete of the Deployment takes them along -> remove an instance and cleanup (under the
kill threshold) deletes it -> the kill threshold refuses a mass delete -> --force (no threshold)
goes through.

Assertions are on the Kubernetes objects (Deployments, ReplicaSets, pods as the API reports
them) and on what `paasta status` and the API report. Everything that changes in the cluster is
polled with a deadline (`wait_for`): pods take time to start and to become Ready, deletes are
asynchronous (foreground propagation), controllers write status later. Only where containers
must really run (healthy, bounce finished, logs) do we need the image on the nodes; without it
(`ImageLoader.reason`) those assertions are skipped with the reason, and the rest still runs.
"""

from __future__ import annotations

import subprocess
import time
from functools import partial
from typing import Any

import pytest
from itest_world import DEPLOY_GROUP, TIMEOUT_S, ImageLoader, World, get_json, instances_yaml, wait_for

from paasta_lite.kube import labels

pytestmark = pytest.mark.incremental

#: main's probe delay in the slow bounce: long enough to look at a bounce in progress.
SLOW_START_S = 30


def template_labels(deployment: dict[str, Any]) -> dict[str, str]:
    return dict(deployment["spec"]["template"]["metadata"].get("labels", {}))


def pods_of(kube: Any, world: World, instance: str) -> list[dict[str, Any]]:
    pods = kube.list_pods(world.namespace, labels.instance_selector(world.service, instance))
    return [pod for pod in pods if not pod["metadata"].get("deletionTimestamp")]


def need_images(images: ImageLoader) -> None:
    if not images.available:
        pytest.skip(f"containers cannot run here: {images.reason}")


def config_sha(kube: Any, world: World, instance: str) -> str:
    return template_labels(kube.get_deployment(world.namespace, world.app(instance)))[labels.CONFIG_SHA]


def has_state(world: World, instance: str, state: str) -> bool:
    return bool(world.health(instance)["state"] == state)


def no_pod_labelled(kube: Any, world: World, instance: str, label: str, value: str) -> bool:
    return all(pod["metadata"]["labels"].get(label) != value for pod in pods_of(kube, world, instance))


def healthy(world: World) -> bool:
    code, report = world.status()
    return code == 0 and bool(report.get("healthy"))


def bounced_to(world: World, kube: Any, instance: str, label: str, value: str) -> bool:
    """Every live pod of the instance carries `label=value` and status says Running and done."""
    pods = pods_of(kube, world, instance)
    if not pods or any(pod["metadata"]["labels"].get(label) != value for pod in pods):
        return False
    health = world.health(instance)
    return health["state"] == "Running" and bool(health["done"])


def agreeing_reports(world: World, api: str, instance: str,
                     ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """(paasta status health, API status, API bounce_status) read when all three agree.

    The cluster may move between the reads, so a disagreement is retried a few times before it
    fails the test."""
    last: tuple[Any, ...] = ()
    for _attempt in range(6):
        health = world.health(instance)
        status = get_json(f"{api}/services/{world.service}/{instance}/status")
        bounce = get_json(f"{api}/services/{world.service}/{instance}/bounce_status")
        assert status is not None and bounce is not None, f"the API did not answer for {instance}"
        api_health = status["health"]
        last = (health, api_health, bounce)
        same = all(api_health[key] == health[key]
                   for key in ("state", "ready", "expected", "desired_version", "healthy", "done"))
        if same and (bounce["state"], bounce["running_instance_count"], bounce["expected_instance_count"],
                     bounce["done"], bounce["app_count"]) == (health["state"], health["ready"],
                                                               health["expected"], health["done"],
                                                               len(health["versions"])):
            return health, status, bounce
        time.sleep(2)
    raise AssertionError("API and paasta status disagree:\nstatus: {}\nAPI: {}\nbounce_status: {}"
                         .format(*last))


class TestDeployCycle:
    def test_generate_writes_the_deployed_sha(self, world: World, images: ImageLoader) -> None:
        sha = world.git("rev-parse", "HEAD")
        images.ensure(world.service, sha)
        world.paasta("mark-for-deployment", "-s", world.service, "-l", DEPLOY_GROUP, "-c", sha,
                     "-d", str(world.soa))
        world.generate()
        assert world.deployed_sha() == sha

    def test_create_one_deployment_per_instance(self, world: World, kube: Any) -> None:
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
        # generation counts spec changes; resourceVersion would also move with the controller's
        # status writes while the pods start, which are not ours.
        def specs() -> dict[str, tuple[int, dict[str, Any]]]:
            found = {}
            for instance in ("main", "worker", "canary"):
                deployment = kube.get_deployment(world.namespace, world.app(instance))
                found[instance] = (deployment["metadata"]["generation"], deployment["spec"])
            return found

        before = specs()
        result = world.setup()
        assert specs() == before, "a no-op setup run changed a Deployment"
        # An identical PUT changes neither generation nor spec, so also check that none was sent.
        assert "0 created, 0 updated, 3 unchanged, 0 failed" in result.stdout, result.stdout

    def test_status_reports_every_instance(self, world: World, images: ImageLoader) -> None:
        _, report = world.status()
        assert {row["instance"] for row in report["instances"]} == {"main", "worker", "canary"}
        for row in report["instances"]:
            assert row["health"]["desired_version"]["git_sha"] == world.deployed_sha()
            assert row["health"]["expected"] == {"main": 2}.get(row["instance"], 1)
        need_images(images)
        wait_for("paasta status to report every instance healthy", lambda: healthy(world))
        for instance in ("main", "worker", "canary"):
            wait_for(f"{instance} to be Running", partial(has_state, world, instance, "Running"))

    def test_update_bounce_mark_for_deployment_waits(self, world: World, kube: Any,
                                                     images: ImageLoader) -> None:
        old_sha, new_sha = world.deployed_sha(), world.commit("second version")
        images.ensure(world.service, new_sha)
        timeout = TIMEOUT_S if images.available else 30
        argv = [*world.module("paasta_lite.cli"), "mark-for-deployment", "-s", world.service, "-l",
                DEPLOY_GROUP, "-c", new_sha, "-d", str(world.soa), "--wait-for-deployment",
                "-t", str(timeout), "--polling-interval", "2"]
        waiter = subprocess.Popen(argv, env=world.env(), text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        try:
            while waiter.poll() is None:  # play the production crons while it waits
                world.deploy_cycle()
                time.sleep(3)
        finally:
            if waiter.poll() is None:
                waiter.kill()
            output = waiter.communicate()[0]
            world.log.append(f"$ {' '.join(argv)}\n[exit {waiter.returncode}]\n{output}")
        assert world.deployed_sha() == new_sha
        for instance in ("main", "worker", "canary"):
            deployment = kube.get_deployment(world.namespace, world.app(instance))
            assert template_labels(deployment)[labels.GIT_SHA] == new_sha
        need_images(images)  # without runnable pods the wait times out: nothing more to check
        assert waiter.returncode == 0, output
        for instance in ("main", "worker", "canary"):  # the wait means done: no old pod serves
            health = world.health(instance)
            assert health["done"] and health["desired_version"]["git_sha"] == new_sha, health
            wait_for(f"the old pods of {instance} to be gone",
                     partial(no_pod_labelled, kube, world, instance, labels.GIT_SHA, old_sha))

    def test_update_bounce_on_config_change(self, world: World, kube: Any, images: ImageLoader) -> None:
        before = kube.get_deployment(world.namespace, world.app("main"))
        world.write_instances(instances_yaml("two"))
        world.deploy_cycle()
        after = kube.get_deployment(world.namespace, world.app("main"))
        assert after["spec"]["template"] != before["spec"]["template"]
        new_config = template_labels(after)[labels.CONFIG_SHA]
        assert new_config != template_labels(before)[labels.CONFIG_SHA]
        assert template_labels(after)[labels.GIT_SHA] == template_labels(before)[labels.GIT_SHA]
        need_images(images)
        wait_for("main's bounce to the new config to finish",
                 lambda: bounced_to(world, kube, "main", labels.CONFIG_SHA, new_config))

    def test_status_and_bounce_status_during_and_after_a_bounce(self, world: World, kube: Any,
                                                                 images: ImageLoader, api: str) -> None:
        need_images(images)  # "in progress, old pods still serving" needs pods that really run
        old_config = config_sha(kube, world, "main")
        world.write_instances(instances_yaml("two", main_grace_s=SLOW_START_S))
        world.deploy_cycle()
        new_config = config_sha(kube, world, "main")
        assert new_config != old_config
        wait_for("paasta status to report main Bouncing", lambda: world.health("main")["state"] == "Bouncing",
                 timeout=SLOW_START_S / 2, interval=1)
        health, _, bounce = agreeing_reports(world, api, "main")
        assert health["state"] == "Bouncing" and not health["done"], health
        assert health["healthy"] and health["ready"] >= 2, "the old version keeps serving during a crossover"
        by_config = {v["version"]["config_sha"]: v for v in health["versions"]}
        assert set(by_config) == {old_config, new_config}, health["versions"]
        assert by_config[new_config]["target"] and by_config[new_config]["ready"] == 0
        assert not by_config[old_config]["target"] and by_config[old_config]["ready"] == 2
        assert bounce["state"] == "Bouncing" and bounce["app_count"] == 2 and not bounce["done"]
        assert {config for _, config in bounce["active_shas"]} == {old_config, new_config}

        wait_for("the slow bounce to finish",
                 lambda: bounced_to(world, kube, "main", labels.CONFIG_SHA, new_config))
        health, _, bounce = agreeing_reports(world, api, "main")
        assert health["state"] == "Running" and health["done"] and health["ready"] == 2, health
        assert bounce["state"] == "Running" and bounce["done"] and bounce["app_count"] == 1, bounce
        assert bounce["active_shas"] == [[world.deployed_sha(), new_config]], bounce
        # back to quick starts for the rest of the cycle
        world.write_instances(instances_yaml("two"))
        world.deploy_cycle()
        wait_for("main to run the quick-start config", lambda: world.health("main")["state"] == "Running"
                 and world.health("main")["desired_version"]["config_sha"] != new_config)

    def test_stop(self, world: World, kube: Any) -> None:
        world.paasta("stop", "-s", world.service, "-c", world.cluster, "-i", "main", "-d", str(world.soa))
        world.deploy_cycle()
        assert kube.get_deployment(world.namespace, world.app("main"))["spec"]["replicas"] == 0
        wait_for("main's pods to go", lambda: not pods_of(kube, world, "main"))
        health = wait_for("status to say Stopped",
                          lambda: (h := world.health("main"))["state"] == "Stopped" and h)
        assert health["healthy"], "an intentionally stopped instance counts as healthy"
        assert kube.get_deployment(world.namespace, world.app("worker"))["spec"]["replicas"] == 1

    def test_start(self, world: World, kube: Any, images: ImageLoader) -> None:
        world.paasta("start", "-s", world.service, "-c", world.cluster, "-i", "main", "-d", str(world.soa))
        world.deploy_cycle()
        assert kube.get_deployment(world.namespace, world.app("main"))["spec"]["replicas"] == 2
        wait_for("main's pods to come back", lambda: len(pods_of(kube, world, "main")) == 2)
        need_images(images)
        wait_for("main to be Running again", lambda: world.health("main")["state"] == "Running")

    def test_force_bounce_restart_replaces_every_pod(self, world: World, kube: Any,
                                                     images: ImageLoader) -> None:
        before = kube.get_deployment(world.namespace, world.app("main"))
        old_pods = {pod["metadata"]["name"] for pod in pods_of(kube, world, "main")}
        world.paasta("restart", "-s", world.service, "-c", world.cluster, "-i", "main", "-d", str(world.soa))
        world.deploy_cycle()
        after = kube.get_deployment(world.namespace, world.app("main"))
        assert after["spec"]["template"] != before["spec"]["template"]
        assert template_labels(after)[labels.GIT_SHA] == template_labels(before)[labels.GIT_SHA]
        assert after["spec"]["replicas"] == 2
        need_images(images)
        wait_for("every old pod of main to be replaced", lambda: bounced_to(
            world, kube, "main", labels.CONFIG_SHA, template_labels(after)[labels.CONFIG_SHA]) and not (
            old_pods & {pod["metadata"]["name"] for pod in pods_of(kube, world, "main")}))

    def test_logs_come_from_every_pod(self, world: World, kube: Any, images: ImageLoader) -> None:
        need_images(images)

        def every_pod_logged() -> bool:
            names = {pod["metadata"]["name"] for pod in pods_of(kube, world, "main")}
            done = world.paasta("logs", "-s", world.service, "-c", world.cluster, "-i", "main", "-l", "50",
                                ok=None)
            lines = done.stdout.splitlines()
            return done.returncode == 0 and len(names) == 2 and all(
                any(f"[{name}" in line for line in lines) for name in names)

        wait_for("paasta logs to show lines from every pod of main", every_pod_logged, timeout=60)

    def test_api_agrees_with_status(self, world: World, api: str) -> None:
        for instance in ("main", "worker", "canary"):
            _, _, bounce = agreeing_reports(world, api, instance)
            assert bounce["service"] == world.service and bounce["instance"] == instance

    def test_an_autoscaled_instance_gets_an_hpa_and_a_pdb_that_go_with_cleanup(self, world: World,
                                                                               kube: Any) -> None:
        instances = instances_yaml("two")
        auto = {key: value for key, value in instances["canary"].items() if key != "instances"}
        world.write_instances({**instances, "auto": {**auto, "min_instances": 1, "max_instances": 2}})
        world.setup()
        deployment = kube.get_deployment(world.namespace, world.app("auto"))
        owner = {"apiVersion": "apps/v1", "kind": "Deployment", "name": world.app("auto"),
                 "uid": deployment["metadata"]["uid"], "controller": False, "blockOwnerDeletion": True}
        hpa = kube.get("HorizontalPodAutoscaler", world.namespace, world.app("auto"))
        assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 2)
        assert hpa["metadata"]["ownerReferences"] == [owner]
        pdb = kube.get("PodDisruptionBudget", world.namespace, world.app("auto"))
        assert pdb["metadata"]["ownerReferences"] == [owner]
        assert kube.get("PodDisruptionBudget", world.namespace, world.app("main"))  # every instance has one
        assert "0 created, 0 updated, 4 unchanged, 0 failed" in world.setup().stdout  # the record holds

        _refuse_if_other_apps_share_the_cluster(world, kube)
        world.write_instances(instances)
        world.cleanup()  # deletes the Deployment only: the garbage collector takes its companions
        for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget", "Deployment"):
            wait_for(f"auto's {kind} to be deleted", partial(_gone, kube, kind, world, "auto"))
        assert kube.get("PodDisruptionBudget", world.namespace, world.app("main"))

    def test_cleanup_under_the_threshold_deletes_a_removed_instance(self, world: World, kube: Any) -> None:
        _refuse_if_other_apps_share_the_cluster(world, kube)
        world.write_instances(instances_yaml("two", canary=False))
        world.cleanup()  # 1 of 3 apps: under the kill threshold
        wait_for("the canary Deployment to be deleted", lambda: _deployment_gone(kube, world, "canary"))
        wait_for("the canary's pods to be deleted", lambda: not pods_of(kube, world, "canary"))
        for instance in ("main", "worker"):
            kube.get_deployment(world.namespace, world.app(instance))  # still there

    def test_cleanup_kill_threshold_refuses_a_mass_delete(self, world: World, kube: Any) -> None:
        world.remove_instance_file()
        refused = world.cleanup(ok=False)
        assert "threshold" in (refused.stdout + refused.stderr).lower()
        for instance in ("main", "worker"):
            deployment = kube.get_deployment(world.namespace, world.app(instance))  # nothing was deleted
            assert not deployment["metadata"].get("deletionTimestamp")

    def test_cleanup_force_ignores_the_threshold(self, world: World, kube: Any) -> None:
        world.cleanup("--force")
        for instance in ("main", "worker"):
            wait_for(f"the {instance} Deployment to be deleted",
                     partial(_deployment_gone, kube, world, instance))
        wait_for("every pod of the service to be gone", lambda: not [
            pod for pod in kube.list_pods(world.namespace, labels.service_selector(world.service))])


def _deployment_gone(kube: Any, world: World, instance: str) -> bool:
    return _gone(kube, "Deployment", world, instance)


def _gone(kube: Any, kind: str, world: World, instance: str) -> bool:
    from paasta_lite.kube.errors import NotFound

    try:
        kube.get(kind, world.namespace, world.app(instance))
    except NotFound:
        return True
    return False


def _refuse_if_other_apps_share_the_cluster(world: World, kube: Any) -> None:
    """cleanup acts on the managed apps of `-c <cluster>`; ours is unique to this run, so nothing
    else may carry it. If something does, stop rather than risk someone else's workloads."""
    others = [f"{d['metadata']['namespace']}/{d['metadata']['name']}" for d in kube.list_managed_deployments()
              if d["metadata"]["namespace"] != world.namespace
              and d["metadata"].get("labels", {}).get(labels.CLUSTER) in (world.cluster, None)]
    if others:
        pytest.fail(f"refusing to run cleanup: managed apps outside {world.namespace} are labelled for "
                    f"cluster {world.cluster} or for no cluster: {others[:5]}")
