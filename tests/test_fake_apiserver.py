"""The fake API server enforces what the real one does, through the real client over HTTP.

Covers: DNS-1123 names and 63-character limits for namespaces, label keys and values (422 with
a `Status` body); Deployment selector/template agreement and selector immutability; strategy and
resource checks; resourceVersion conflicts; 404s (object, namespace); AlreadyExists; generation
bumps and no-op updates; label selectors (=, ==, !=, exists, !exists, in, notin) and field
selectors; cascading deletes (and Orphan); namespace deletion; request counting; fault
injection; `settle()` (ReplicaSets, pods, status, bounces in progress, minReadySeconds as the
real controller counts it: ready but not yet available, Available=False); pod logs (tail, since,
timestamps, containers, follow).
"""

from __future__ import annotations

import copy
import json
import threading
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from conftest import FakeApi
from kubernetes import client as k8s

from paasta_lite.kube import errors as kube_errors
from paasta_lite.kube.client import KubeClient

NS = "paastasvc-web"


def deployment(name: str = "web-main", *, labels: dict[str, str] | None = None, replicas: int = 2,
               selector: dict[str, str] | None = None, **spec_extra: Any) -> dict[str, Any]:
    pod_labels = labels or {"paasta.yelp.com/service": "web", "paasta.yelp.com/instance": "main"}
    return {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {**pod_labels, "paasta.yelp.com/managed": "true"}},
        "spec": {"replicas": replicas, "selector": {"matchLabels": selector or dict(pod_labels)},
                 "template": {"metadata": {"labels": dict(pod_labels)},
                              "spec": {"containers": [{"name": "main", "image": "registry/web:1"}]}},
                 **spec_extra},
    }


def strict_client(fake_api: FakeApi) -> KubeClient:
    """A client that never retries, to see the server's first answer."""
    return KubeClient(kubeconfig=fake_api.kubeconfig, attempts=1)


def status_of(error: kube_errors.KubeError) -> dict[str, Any]:
    body = json.loads(error.body)
    assert isinstance(body, dict)
    return body


@pytest.fixture
def ns(fake_api: FakeApi) -> str:
    fake_api.client.create_namespace(NS)
    return NS


# ----------------------------------------------------------------------------------- names

def test_namespace_name_must_be_a_dns_label(fake_api: FakeApi) -> None:
    with pytest.raises(kube_errors.Invalid) as caught:
        fake_api.client.create_namespace("paastasvc-my_service")
    assert str(caught.value).startswith('Namespace "paastasvc-my_service" is invalid: metadata.name: '
                                        'Invalid value: "paastasvc-my_service": a lowercase RFC 1123 label')
    error = caught.value
    assert (error.status, error.reason) == (422, "Invalid")
    assert error.body.startswith('{"kind": "Status", "apiVersion": "v1"')
    assert error.details["causes"][0]["field"] == "metadata.name"


def test_namespace_names_are_limited_to_63_characters(fake_api: FakeApi) -> None:
    fake_api.client.create_namespace("a" * 63)
    with pytest.raises(kube_errors.Invalid, match="must be no more than 63 characters"):
        fake_api.client.create_namespace("a" * 64)
    assert [n["metadata"]["name"] for n in fake_api.client.list_namespaces()] == ["a" * 63]


def test_label_keys_and_values_are_limited(fake_api: FakeApi, ns: str) -> None:
    too_long_value = deployment(labels={"paasta.yelp.com/service": "x" * 64})
    with pytest.raises(kube_errors.Invalid, match=r'metadata.labels: Invalid value: "x{64}": must be no '
                                                  r"more than 63 characters"):
        fake_api.client.create_deployment(ns, too_long_value)
    too_long_key = deployment(labels={"example.com/" + "k" * 64: "v"})
    with pytest.raises(kube_errors.Invalid, match="name part must be no more than 63 characters"):
        fake_api.client.create_deployment(ns, too_long_key)
    bad_value = deployment(labels={"app": "has space"})
    with pytest.raises(kube_errors.Invalid, match="a valid label must be an empty string"):
        fake_api.client.create_deployment(ns, bad_value)
    assert fake_api.server.list_objects("deployments") == []


def test_deployment_names_are_dns_subdomains(fake_api: FakeApi, ns: str) -> None:
    with pytest.raises(kube_errors.Invalid, match=r'Deployment.apps "Web_Main" is invalid'):
        fake_api.client.create_deployment(ns, deployment("Web_Main"))
    fake_api.client.create_deployment(ns, deployment("web.main-" + "a" * 70))  # 253 allowed


# ----------------------------------------------------------------------------------- deployments

def test_selector_must_match_template_labels(fake_api: FakeApi, ns: str) -> None:
    body = deployment(selector={"paasta.yelp.com/service": "other"})
    with pytest.raises(kube_errors.Invalid, match="`selector` does not match template `labels`"):
        fake_api.client.create_deployment(ns, body)
    missing = deployment()
    del missing["spec"]["selector"]
    with pytest.raises(kube_errors.Invalid, match=r"spec.selector: Required value"):
        fake_api.client.create_deployment(ns, missing)


def test_selector_is_immutable(fake_api: FakeApi, ns: str) -> None:
    fake_api.client.create_deployment(ns, deployment())
    changed = deployment(labels={"paasta.yelp.com/service": "web", "paasta.yelp.com/instance": "main",
                                 "extra": "x"})
    changed["spec"]["selector"]["matchLabels"]["extra"] = "x"
    with pytest.raises(kube_errors.Invalid, match=r"spec.selector: Invalid value: .*field is immutable"):
        fake_api.client.replace_deployment(ns, "web-main", changed)


def test_strategy_and_resources_are_checked(fake_api: FakeApi, ns: str) -> None:
    zero = deployment(strategy={"type": "RollingUpdate",
                                "rollingUpdate": {"maxSurge": 0, "maxUnavailable": "0%"}})
    with pytest.raises(kube_errors.Invalid, match="may not be 0 when `maxSurge` is 0"):
        fake_api.client.create_deployment(ns, zero)
    recreate = deployment(strategy={"type": "Recreate", "rollingUpdate": {"maxSurge": "10%"}})
    with pytest.raises(kube_errors.Invalid, match="may not be specified when strategy `type` is 'Recreate'"):
        fake_api.client.create_deployment(ns, recreate)
    percent = deployment(strategy={"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "9.5%"}})
    with pytest.raises(kube_errors.Invalid, match="a valid percent string"):
        fake_api.client.create_deployment(ns, percent)
    greedy = deployment()
    greedy["spec"]["template"]["spec"]["containers"][0]["resources"] = {
        "requests": {"cpu": 2, "memory": "512Mi"}, "limits": {"cpu": "1500m", "memory": "1Gi"}}
    with pytest.raises(kube_errors.Invalid, match="must be less than or equal to cpu limit"):
        fake_api.client.create_deployment(ns, greedy)
    garbage = deployment()
    garbage["spec"]["template"]["spec"]["containers"][0]["resources"] = {"requests": {"memory": "lots"}}
    with pytest.raises(kube_errors.BadRequest, match="quantities must match"):
        fake_api.client.create_deployment(ns, garbage)


def test_create_in_missing_namespace_and_get_missing_are_404(fake_api: FakeApi) -> None:
    with pytest.raises(kube_errors.NotFound, match='namespaces "nowhere" not found'):
        fake_api.client.create_deployment("nowhere", deployment())
    with pytest.raises(kube_errors.NotFound, match=r'deployments.apps "nothing" not found'):
        fake_api.client.get_deployment("default", "nothing")


def test_create_twice_is_already_exists(fake_api: FakeApi, ns: str) -> None:
    fake_api.client.create_deployment(ns, deployment())
    expected = r'deployments\.apps "web-main" already exists'
    with pytest.raises(kube_errors.AlreadyExists, match=expected) as caught:
        fake_api.client.create_deployment(ns, deployment())
    assert not caught.value.retryable
    assert fake_api.server.count("POST", "/deployments$") == 2  # AlreadyExists is not retried


def test_stale_resource_version_is_a_conflict(fake_api: FakeApi, ns: str) -> None:
    created = fake_api.client.create_deployment(ns, deployment())
    fake_api.client.replace_deployment(ns, "web-main", deployment(replicas=3))
    stale = deployment(replicas=4)
    stale["metadata"]["resourceVersion"] = created["metadata"]["resourceVersion"]
    with pytest.raises(kube_errors.Conflict, match="the object has been modified") as caught:
        strict_client(fake_api).replace_deployment(ns, "web-main", stale)
    assert status_of(caught.value)["code"] == 409 and caught.value.reason == "Conflict"
    assert fake_api.server.get_object("deployments", ns, "web-main")["spec"]["replicas"] == 3


def test_generation_counts_spec_and_annotation_changes(fake_api: FakeApi, ns: str) -> None:
    created = fake_api.client.create_deployment(ns, deployment())
    assert created["metadata"]["generation"] == 1
    relabelled = deployment()
    relabelled["metadata"]["labels"]["note"] = "x"
    after_labels = fake_api.client.replace_deployment(ns, "web-main", relabelled)
    assert after_labels["metadata"]["generation"] == 1
    assert after_labels["metadata"]["resourceVersion"] != created["metadata"]["resourceVersion"]
    scaled = copy.deepcopy(relabelled)
    scaled["spec"]["replicas"] = 5
    after_scale = fake_api.client.replace_deployment(ns, "web-main", scaled)
    assert after_scale["metadata"]["generation"] == 2
    same = fake_api.client.replace_deployment(ns, "web-main", scaled)
    assert same["metadata"]["resourceVersion"] == after_scale["metadata"]["resourceVersion"]
    # v1.28 counts annotation changes too (they are copied to the Deployment's ReplicaSets)
    annotation = {"metadata": {"annotations": {"a": "b"}}}
    annotated = fake_api.client.merge_patch("Deployment", ns, "web-main", annotation)
    assert annotated["metadata"]["generation"] == 3


def test_status_is_kept_across_updates(fake_api: FakeApi, ns: str) -> None:
    fake_api.client.create_deployment(ns, deployment())
    fake_api.server.settle(ns, "web-main")
    body = deployment(replicas=3)
    body["status"] = {"replicas": 99}
    updated = fake_api.client.replace_deployment(ns, "web-main", body)
    assert updated["status"]["replicas"] == 2
    assert updated["status"]["observedGeneration"] == 1 and updated["metadata"]["generation"] == 2


def test_merge_patch(fake_api: FakeApi, ns: str) -> None:
    fake_api.client.create_deployment(ns, deployment())
    patched = fake_api.client.patch_deployment(ns, "web-main", {"spec": {"replicas": 0}})
    assert patched["spec"]["replicas"] == 0 and patched["metadata"]["generation"] == 2


# ----------------------------------------------------------------------------------- selectors

def _pod(name: str, labels: dict[str, str], phase: str = "Running") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": NS, "labels": labels},
            "spec": {"containers": [{"name": "main", "image": "x"}]}, "status": {"phase": phase}}


@pytest.mark.parametrize(("selector", "expected"), [
    ("app=web", ["a", "b"]),
    ("app==web", ["a", "b"]),
    ("app!=web", ["c", "d"]),
    ("tier", ["a", "c"]),
    ("!tier", ["b", "d"]),
    ("tier in (front,back)", ["a", "c"]),
    ("tier notin (front)", ["b", "c", "d"]),
    ("app=web,tier=front", ["a"]),
    ("app in (web,db),!tier", ["b"]),
    ("", ["a", "b", "c", "d"]),
])
def test_label_selectors(fake_api: FakeApi, selector: str, expected: list[str]) -> None:
    fake_api.server.put_object("pods", _pod("a", {"app": "web", "tier": "front"}))
    fake_api.server.put_object("pods", _pod("b", {"app": "web"}))
    fake_api.server.put_object("pods", _pod("c", {"app": "db", "tier": "back"}))
    fake_api.server.put_object("pods", _pod("d", {}))
    names = [p["metadata"]["name"] for p in fake_api.client.list_pods(NS, selector or None)]
    assert names == expected


def test_bad_label_selector_is_400(fake_api: FakeApi) -> None:
    fake_api.server.put_object("namespaces", {"metadata": {"name": NS}})
    with pytest.raises(kube_errors.BadRequest, match="unable to parse requirement"):
        fake_api.client.list_pods(NS, "a=(b")


def test_field_selectors_on_events(fake_api: FakeApi) -> None:
    server = fake_api.server
    server.put_object("namespaces", {"metadata": {"name": NS}})
    server.add_event(NS, involved_kind="Pod", involved_name="web-1", reason="BackOff", message="m1",
                     type="Warning")
    server.add_event(NS, involved_kind="Pod", involved_name="web-2", reason="Pulled", message="m2")
    only = fake_api.client.list_events(NS, "involvedObject.name=web-1")
    assert [e["message"] for e in only] == ["m1"]
    assert [e["message"] for e in fake_api.client.list_events(NS, "type!=Warning")] == ["m2"]
    assert len(fake_api.client.list_events(NS)) == 2
    with pytest.raises(kube_errors.BadRequest, match=r"field label not supported: spec.whatever"):
        fake_api.client.list_events(NS, "spec.whatever=1")


def test_cluster_wide_list_with_selector(fake_api: FakeApi) -> None:
    for namespace in ("paastasvc-a", "paastasvc-b"):
        fake_api.client.create_namespace(namespace)
        fake_api.client.create_deployment(namespace, deployment())
    unmanaged = deployment("not-ours")
    del unmanaged["metadata"]["labels"]["paasta.yelp.com/managed"]
    fake_api.client.create_deployment("paastasvc-a", unmanaged)
    managed = fake_api.client.list_managed_deployments()
    assert [(d["metadata"]["namespace"], d["metadata"]["name"]) for d in managed] == [
        ("paastasvc-a", "web-main"), ("paastasvc-b", "web-main")]
    assert "kind" not in managed[0]  # like the real API: list items carry no kind/apiVersion


# ----------------------------------------------------------------------------------- deletion

def test_delete_cascades_through_owner_references(fake_api: FakeApi, ns: str) -> None:
    fake_api.client.create_deployment(ns, deployment(replicas=3))
    fake_api.server.settle(ns, "web-main")
    assert len(fake_api.server.list_objects("pods", ns)) == 3
    assert fake_api.client.delete_deployment(ns, "web-main") is True
    assert fake_api.server.list_objects("replicasets", ns) == []
    assert fake_api.server.list_objects("pods", ns) == []
    assert fake_api.server.deletions == [("deployments", ns, "web-main", "Foreground")]
    assert fake_api.client.delete_deployment(ns, "web-main") is False  # 404 on a delete is fine


def test_orphan_delete_keeps_dependents(fake_api: FakeApi, ns: str) -> None:
    fake_api.client.create_deployment(ns, deployment())
    fake_api.server.settle(ns, "web-main")
    apps = k8s.AppsV1Api(fake_api.client._api)  # the typed client, as another tool would use it
    apps.delete_namespaced_deployment("web-main", ns, propagation_policy="Orphan")
    assert len(fake_api.server.list_objects("pods", ns)) == 2
    assert fake_api.server.deletions[-1][3] == "Orphan"


def owned_pdb(owner: dict[str, Any], *more_owners: dict[str, Any], name: str = "web-main") -> dict[str, Any]:
    refs = [{"apiVersion": "apps/v1", "kind": "Deployment", "name": o["metadata"]["name"],
             "uid": o["metadata"]["uid"], "controller": False, "blockOwnerDeletion": True}
            for o in (owner, *more_owners)]
    return {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
            "metadata": {"name": name, "namespace": NS, "ownerReferences": refs},
            "spec": {"maxUnavailable": 0, "selector": {"matchLabels": {"a": "b"}}}}


def applied(fake_api: FakeApi, name: str = "web-main") -> dict[str, Any]:
    body = deployment(name)
    return fake_api.client.apply({**body, "metadata": {**body["metadata"], "namespace": NS}})


def test_the_garbage_collector_deletes_dependents_of_any_kind(fake_api: FakeApi, ns: str) -> None:
    owner, other = applied(fake_api), applied(fake_api, "web-other")
    fake_api.client.apply(owned_pdb(owner))
    fake_api.client.apply(owned_pdb(owner, other, name="shared"))
    assert fake_api.client.delete("Deployment", ns, "web-main") is True
    assert fake_api.server.get_object("poddisruptionbudgets", ns, "web-main") is None
    shared = fake_api.server.get_object("poddisruptionbudgets", ns, "shared")  # another owner exists
    assert shared is not None
    assert [ref["name"] for ref in shared["metadata"]["ownerReferences"]] == ["web-other"]


def test_an_orphan_delete_only_removes_the_reference(fake_api: FakeApi, ns: str) -> None:
    owner = applied(fake_api)
    fake_api.client.apply(owned_pdb(owner))
    apps = k8s.AppsV1Api(fake_api.client._api)
    apps.delete_namespaced_deployment("web-main", ns, propagation_policy="Orphan")
    pdb = fake_api.server.get_object("poddisruptionbudgets", ns, "web-main")
    assert pdb is not None and not pdb["metadata"].get("ownerReferences")


def test_apply_keeps_owner_references_and_refuses_another_uid(fake_api: FakeApi, ns: str) -> None:
    first = applied(fake_api)
    pdb = fake_api.client.apply(owned_pdb(first))
    assert pdb["metadata"]["ownerReferences"][0]["uid"] == first["metadata"]["uid"]
    fields = pdb["metadata"]["managedFields"][0]["fieldsV1"]["f:metadata"]["f:ownerReferences"]
    assert list(fields) == [f'k:{{"uid":"{first["metadata"]["uid"]}"}}']  # as v1.28 records it
    fake_api.server.delete_object("deployments", ns, "web-main")  # (the PDB goes with it)
    second = applied(fake_api)
    fake_api.client.apply(owned_pdb(first))  # a dangling reference, as after an orphan delete
    again = fake_api.client.apply(owned_pdb(second))  # the item we no longer send is removed
    assert [ref["uid"] for ref in again["metadata"]["ownerReferences"]] == [second["metadata"]["uid"]]
    stale = {"apiVersion": "apps/v1", "kind": "Deployment",
             "metadata": {"name": "web-main", "namespace": ns, "uid": first["metadata"]["uid"],
                          "annotations": {"x/y": "1"}}}
    with pytest.raises(kube_errors.Invalid, match=r"metadata\.uid: Invalid value: .*field is immutable"):
        fake_api.client.apply(stale, field_manager="someone")


def test_namespace_deletion_removes_contents(fake_api: FakeApi, ns: str) -> None:
    fake_api.client.create_deployment(ns, deployment())
    fake_api.server.settle(ns, "web-main")
    k8s.CoreV1Api(fake_api.client._api).delete_namespace(ns)
    assert fake_api.server.list_objects("deployments") == []
    assert fake_api.server.list_objects("pods") == []


# ----------------------------------------------------------------------------------- counting, faults

def test_requests_are_counted(fake_api: FakeApi, ns: str) -> None:
    fake_api.server.reset_counts()
    fake_api.client.list_managed_deployments()
    fake_api.client.create_deployment(ns, deployment())
    assert fake_api.server.requests == [("GET", "/apis/apps/v1/deployments"),
                                        ("POST", f"/apis/apps/v1/namespaces/{ns}/deployments")]
    assert fake_api.server.writes() == [("POST", f"/apis/apps/v1/namespaces/{ns}/deployments")]
    assert fake_api.server.count("GET") == 1 and fake_api.server.count(path="deployments$") == 2
    assert "labelSelector=paasta.yelp.com/managed%3Dtrue" in fake_api.server.request_log[0][2]


def test_fail_next_injects_status_codes(fake_api: FakeApi) -> None:
    fake_api.server.fail_next("GET", r"^/api/v1/namespaces$", 503, times=2)
    strict = strict_client(fake_api)
    with pytest.raises(kube_errors.ServerError) as caught:
        strict.list_namespaces()
    assert caught.value.status == 503 and caught.value.retryable
    assert fake_api.client.list_namespaces() == []  # second failure, then a real answer
    assert fake_api.server.count("GET", "namespaces") == 3


def test_delay_next_makes_a_timeout(fake_api: FakeApi) -> None:
    fake_api.server.delay_next("GET", "namespaces", 1.0)
    impatient = KubeClient(kubeconfig=fake_api.kubeconfig, attempts=1, timeout=0.2)
    with pytest.raises(kube_errors.Unreachable, match=r"timed out|Timeout"):
        impatient.list_namespaces()


# ----------------------------------------------------------------------------------- settle

def test_settle_creates_replicaset_and_pods_like_the_controller(fake_api: FakeApi, ns: str) -> None:
    created = fake_api.client.create_deployment(ns, deployment(replicas=3))
    settled = fake_api.server.settle(ns, "web-main")
    (rs,) = fake_api.client.list_replicasets(ns, "paasta.yelp.com/instance=main")
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-main-{pod_hash}"
    assert rs["metadata"]["ownerReferences"][0]["uid"] == created["metadata"]["uid"]
    assert rs["spec"]["selector"]["matchLabels"]["pod-template-hash"] == pod_hash
    pods = fake_api.client.list_pods(ns, "paasta.yelp.com/service=web,paasta.yelp.com/instance=main")
    assert len(pods) == 3
    assert all(p["metadata"]["ownerReferences"][0]["name"] == rs["metadata"]["name"] for p in pods)
    assert all(p["status"]["containerStatuses"][0]["ready"] for p in pods)
    status = settled["status"]
    assert (status["observedGeneration"], status["replicas"], status["updatedReplicas"],
            status["readyReplicas"], status["availableReplicas"]) == (1, 3, 3, 3, 3)
    assert {c["type"]: c["reason"] for c in status["conditions"]} == {
        "Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}


def test_settle_can_leave_a_bounce_in_progress(fake_api: FakeApi, ns: str) -> None:
    server = fake_api.server
    fake_api.client.create_deployment(ns, deployment(replicas=2, revisionHistoryLimit=0))
    server.settle(ns, "web-main")
    bounced = deployment(replicas=2, revisionHistoryLimit=0)
    bounced["spec"]["template"]["spec"]["containers"][0]["image"] = "registry/web:2"
    fake_api.client.replace_deployment(ns, "web-main", bounced)
    stuck = server.settle(ns, "web-main", ready=False, waiting_reason="CrashLoopBackOff",
                          restart_count=4, keep_old=True)
    assert len(server.list_objects("replicasets", ns)) == 2
    assert stuck["status"]["replicas"] == 4 and stuck["status"]["updatedReplicas"] == 2
    assert stuck["status"]["readyReplicas"] == 2  # the old pods still serve
    assert stuck["status"]["observedGeneration"] == 2
    waiting = [p for p in server.list_objects("pods", ns)
               if p["status"]["containerStatuses"][0]["state"].get("waiting")]
    assert [p["status"]["containerStatuses"][0]["state"]["waiting"]["reason"] for p in waiting] == [
        "CrashLoopBackOff"] * 2
    done = server.settle(ns, "web-main")
    assert len(server.list_objects("replicasets", ns)) == 1  # revisionHistoryLimit 0: old RS removed
    assert len(server.list_objects("pods", ns)) == 2
    assert "unavailableReplicas" not in done["status"]


def test_settle_zero_replicas_and_deadline(fake_api: FakeApi, ns: str) -> None:
    fake_api.client.create_deployment(ns, deployment(replicas=0))
    stopped = fake_api.server.settle(ns, "web-main")
    assert "readyReplicas" not in stopped["status"]  # zero counts are omitted, as the API does
    assert fake_api.server.list_objects("pods", ns) == []
    fake_api.client.patch_deployment(ns, "web-main", {"spec": {"replicas": 2}})
    late = fake_api.server.settle(ns, "web-main", ready=False, progress_deadline_exceeded=True)
    progressing = next(c for c in late["status"]["conditions"] if c["type"] == "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("False", "ProgressDeadlineExceeded")


def test_settle_counts_pods_available_only_after_min_ready_seconds(fake_api: FakeApi, ns: str) -> None:
    """What a v1.28.4 API server reported for minReadySeconds 60 (see status/rollout.py)."""
    fake_api.client.create_deployment(ns, deployment(replicas=2, minReadySeconds=60))
    fresh = fake_api.server.settle(ns, "web-main")["status"]
    counts = (fresh["readyReplicas"], fresh.get("availableReplicas"), fresh["unavailableReplicas"])
    assert counts == (2, None, 2)
    assert {c["type"]: (c["status"], c["reason"]) for c in fresh["conditions"]} == {
        "Available": ("False", "MinimumReplicasUnavailable"), "Progressing": ("True", "ReplicaSetUpdated")}
    (rs,) = fake_api.server.list_objects("replicasets", ns)
    assert rs["status"]["readyReplicas"] == 2 and "availableReplicas" not in rs["status"]
    later = fake_api.server.settle(ns, "web-main", ready_for=61)["status"]
    assert later["availableReplicas"] == 2 and "unavailableReplicas" not in later
    assert {c["type"]: c["reason"] for c in later["conditions"]} == {
        "Available": "MinimumReplicasAvailable", "Progressing": "NewReplicaSetAvailable"}


def test_a_spec_change_is_not_observed_until_settled(fake_api: FakeApi, ns: str) -> None:
    fake_api.client.create_deployment(ns, deployment(replicas=2))
    fake_api.server.settle(ns, "web-main")
    fake_api.client.patch_deployment(ns, "web-main", {"spec": {"replicas": 3}})
    live = fake_api.client.get_deployment(ns, "web-main")
    assert (live["metadata"]["generation"], live["status"]["observedGeneration"]) == (2, 1)


# ----------------------------------------------------------------------------------- logs

@pytest.fixture
def pod(fake_api: FakeApi, ns: str) -> str:
    fake_api.client.create_deployment(ns, deployment(replicas=1))
    fake_api.server.settle(ns, "web-main")
    name = str(fake_api.server.list_objects("pods", ns)[0]["metadata"]["name"])
    start = datetime.now(timezone.utc) - timedelta(minutes=10)
    fake_api.server.append_log(ns, name, ["old 1", "old 2"], at=start)
    fake_api.server.append_log(ns, name, ["new 1", "new 2", "new 3"])
    return name


def test_log_tail_since_and_timestamps(fake_api: FakeApi, ns: str, pod: str) -> None:
    client = fake_api.client
    assert client.read_pod_log(ns, pod, timestamps=False) == "old 1\nold 2\nnew 1\nnew 2\nnew 3\n"
    assert client.read_pod_log(ns, pod, tail_lines=2, timestamps=False) == "new 2\nnew 3\n"
    assert client.read_pod_log(ns, pod, since_seconds=60, timestamps=False) == "new 1\nnew 2\nnew 3\n"
    stamped = client.read_pod_log(ns, pod, tail_lines=1).splitlines()[0]
    stamp, text = stamped.split(" ", 1)
    assert text == "new 3" and stamp.endswith("Z")
    assert abs(datetime.fromisoformat(stamp[:26]).replace(tzinfo=timezone.utc)
               - datetime.now(timezone.utc)) < timedelta(minutes=1)


def test_log_container_must_be_named_when_several(fake_api: FakeApi, ns: str) -> None:
    two = deployment(replicas=1)
    two["spec"]["template"]["spec"]["containers"].append({"name": "sidecar", "image": "s"})
    fake_api.client.create_deployment(ns, two)
    fake_api.server.settle(ns, "web-main")
    name = fake_api.server.list_objects("pods", ns)[0]["metadata"]["name"]
    fake_api.server.append_log(ns, name, ["from sidecar"], container="sidecar")
    must_name = r"a container name must be specified .* \[main sidecar\]"
    with pytest.raises(kube_errors.BadRequest, match=must_name):
        fake_api.client.read_pod_log(ns, name)
    with pytest.raises(kube_errors.BadRequest, match="container nope is not valid"):
        fake_api.client.read_pod_log(ns, name, container="nope")
    sidecar_log = fake_api.client.read_pod_log(ns, name, container="sidecar", timestamps=False)
    assert sidecar_log == "from sidecar\n"
    with pytest.raises(kube_errors.NotFound, match='pods "ghost" not found'):
        fake_api.client.read_pod_log(ns, "ghost")


def test_follow_streams_appended_lines_then_closes(fake_api: FakeApi, ns: str, pod: str) -> None:
    def writer() -> None:
        for index in range(3):
            threading.Event().wait(0.05)
            fake_api.server.append_log(ns, pod, f"live {index}")

    thread = threading.Thread(target=writer)
    lines = []
    stream = fake_api.client.stream_pod_log(ns, pod, tail_lines=1, timestamps=False)
    thread.start()
    for line in stream:
        lines.append(line)
    thread.join()
    assert lines == ["new 3", "live 0", "live 1", "live 2"]
