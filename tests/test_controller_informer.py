"""The informer (list + watch of managed Deployments) and the fake API server's watch streams.

Covers: the first list fills the cache and reports every job id; ADDED / MODIFIED / DELETED
events keep the cache and report the job id; status-only updates are cached but not reported;
objects without the managed label are never seen; a dropped stream resumes from the last
resourceVersion without listing again and loses no change; 410 Gone (as an ERROR event, and as
an HTTP status) lists again and reports what changed meanwhile, deletions included; bookmarks
advance the resourceVersion; `stop()` ends a blocked watch promptly. Also the raw watch protocol
of the fake server through `KubeClient.watch` (what the informer relies on).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from conftest import FakeApi

from paasta_lite.controller.informer import MANAGED_DEPLOYMENTS, Informer, changed_beyond_status
from paasta_lite.kube import labels

Obj = dict[str, Any]
NS = "paastasvc-web"


def deployment(service: str, instance: str, *, managed: bool = True, replicas: int = 1) -> Obj:
    selector = {labels.SERVICE: service, labels.INSTANCE: instance}
    meta_labels = {**selector, **({labels.MANAGED: "true"} if managed else {})}
    return {"metadata": {"name": f"{service}-{instance}", "namespace": f"paastasvc-{service}",
                         "labels": meta_labels},
            "spec": {"replicas": replicas, "selector": {"matchLabels": selector},
                     "template": {"metadata": {"labels": selector},
                                  "spec": {"containers": [{"name": "main", "image": "r/x:1"}]}}}}


def wait_for(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


class Recorder:
    def __init__(self) -> None:
        self.calls: list[set[str]] = []
        self.lock = threading.Lock()

    def __call__(self, job_ids: set[str]) -> None:
        with self.lock:
            self.calls.append(set(job_ids))

    def seen(self) -> set[str]:
        with self.lock:
            return set().union(*self.calls) if self.calls else set()

    def clear(self) -> None:
        with self.lock:
            self.calls.clear()


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def informer(fake_api: FakeApi, recorder: Recorder) -> Iterator[Informer]:
    fake_api.server.put_object("deployments", deployment("web", "main"))
    fake_api.server.put_object("deployments", deployment("other", "unmanaged", managed=False))
    running = Informer(fake_api.client, MANAGED_DEPLOYMENTS, recorder, watch_timeout=30, base_delay=0.01)
    running.start()
    assert running.synced.wait(5)
    wait_for(lambda: fake_api.server.open_watches() == 1)
    try:
        yield running
    finally:
        running.stop()


def cached_replicas(informer: Informer, key: str) -> Any:
    obj = informer.get(key)
    return None if obj is None else obj["spec"]["replicas"]


def test_first_list_fills_the_cache_with_managed_objects_only(informer: Informer, recorder: Recorder) -> None:
    assert [o["metadata"]["name"] for o in informer.snapshot()] == ["web-main"]
    assert recorder.seen() == {"web.main"}
    assert informer.job_ids() == {"web.main"}


def test_events_keep_the_cache_and_report_job_ids(fake_api: FakeApi, informer: Informer,
                                                  recorder: Recorder) -> None:
    recorder.clear()
    fake_api.client.create_deployment("paastasvc-web", deployment("web", "canary"))
    wait_for(lambda: "web.canary" in recorder.seen())
    fake_api.client.patch_deployment(NS, "web-main", {"spec": {"replicas": 4}})
    wait_for(lambda: cached_replicas(informer, f"{NS}/web-main") == 4)
    fake_api.client.delete_deployment(NS, "web-canary")
    wait_for(lambda: informer.get(f"{NS}/web-canary") is None)
    assert recorder.seen() == {"web.canary", "web.main"}
    assert informer.stats["lists"] == 1


def test_status_only_updates_are_cached_but_not_reported(fake_api: FakeApi, informer: Informer,
                                                          recorder: Recorder) -> None:
    recorder.clear()
    fake_api.server.settle(NS, "web-main")
    wait_for(lambda: "status" in (informer.get(f"{NS}/web-main") or {}))
    assert recorder.calls == []
    assert not changed_beyond_status(deployment("a", "b"), {**deployment("a", "b"), "status": {"x": 1}})


def test_a_dropped_stream_resumes_without_listing_again(fake_api: FakeApi, informer: Informer,
                                                        recorder: Recorder) -> None:
    fake_api.server.fail_next("GET", r"^/apis/apps/v1/deployments$", 503)  # the first resume fails too
    fake_api.server.drop_watches()
    fake_api.server.put_object("deployments", deployment("web", "main", replicas=7))  # while away
    wait_for(lambda: cached_replicas(informer, f"{NS}/web-main") == 7)
    wait_for(lambda: fake_api.server.open_watches() == 1)
    assert informer.stats["lists"] == 1 and informer.stats["reconnects"] >= 1, informer.stats


def test_410_as_an_error_event_lists_again_and_reports_deletions(fake_api: FakeApi, informer: Informer,
                                                                 recorder: Recorder) -> None:
    fake_api.server.put_object("deployments", deployment("api", "main"))
    wait_for(lambda: informer.get("paastasvc-api/api-main") is not None)
    recorder.clear()
    fake_api.server.drop_watches()
    wait_for(lambda: informer.stats["watches"] >= 2)
    # The history is compacted while a change is pending: the resumed watch gets 410.
    with fake_api.server.cluster.lock:
        fake_api.server.delete_object("deployments", "paastasvc-api", "api-main")
        fake_api.server.expire_watches()
    wait_for(lambda: informer.stats["lists"] == 2)
    wait_for(lambda: informer.get("paastasvc-api/api-main") is None)
    assert "api.main" in recorder.seen()
    assert informer.stats["gone"] == 1


def test_410_as_an_http_status_lists_again(fake_api: FakeApi, informer: Informer) -> None:
    fake_api.server.fail_next("GET", r"^/apis/apps/v1/deployments$", 410, message="too old resource version")
    fake_api.server.drop_watches()
    wait_for(lambda: informer.stats["lists"] == 2)
    assert informer.stats["gone"] == 1
    wait_for(lambda: fake_api.server.open_watches() == 1)


def test_bookmarks_advance_the_resource_version(fake_api: FakeApi, informer: Informer) -> None:
    fake_api.server.cluster.watch_log.bookmark_interval = 0.05
    fake_api.server.put_object("deployments", deployment("other", "unmanaged", managed=False, replicas=3))
    target = int(fake_api.server.cluster._rv)
    wait_for(lambda: int(informer.resource_version or 0) >= target)


def test_stop_ends_a_blocked_watch_promptly(fake_api: FakeApi, recorder: Recorder) -> None:
    informer = Informer(fake_api.client, MANAGED_DEPLOYMENTS, recorder, watch_timeout=60).start()
    wait_for(lambda: fake_api.server.open_watches() == 1)
    started = time.monotonic()
    informer.stop(timeout=5)
    assert not informer.alive()
    assert time.monotonic() - started < 2


def test_client_watch_streams_events_in_order(fake_api: FakeApi) -> None:
    items, version = fake_api.client.list_collection("/apis/apps/v1/deployments")
    assert items == []
    fake_api.client.create_namespace(NS)
    stream = fake_api.client.watch("/apis/apps/v1/deployments", resource_version=version, timeout_seconds=1)
    fake_api.client.create_deployment(NS, deployment("web", "main"))
    fake_api.client.patch_deployment(NS, "web-main", {"spec": {"replicas": 2}})
    fake_api.client.delete_deployment(NS, "web-main")
    events = [(e["type"], e["object"]["spec"]["replicas"]) for e in stream if e["type"] != "BOOKMARK"]
    assert events == [("ADDED", 1), ("MODIFIED", 2), ("DELETED", 2)]


def test_client_watch_without_version_starts_with_what_exists(fake_api: FakeApi) -> None:
    fake_api.server.put_object("deployments", deployment("web", "main"))
    stream = fake_api.client.watch("/apis/apps/v1/deployments", selector=labels.MANAGED_SELECTOR,
                                   timeout_seconds=1, bookmarks=False)
    assert [(e["type"], e["object"]["kind"]) for e in stream] == [("ADDED", "Deployment")]


def test_client_watch_of_an_expired_version_gets_410(fake_api: FakeApi) -> None:
    fake_api.server.put_object("deployments", deployment("web", "main"))
    fake_api.server.expire_watches()
    events = list(fake_api.client.watch("/apis/apps/v1/deployments", resource_version="1", timeout_seconds=1,
                                        bookmarks=False))
    assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in events] == [
        ("ERROR", 410, "Expired")]


def test_an_object_leaving_the_selector_is_a_deletion(fake_api: FakeApi, informer: Informer,
                                                       recorder: Recorder) -> None:
    recorder.clear()
    fake_api.client.patch_deployment(NS, "web-main", {"metadata": {"labels": {labels.MANAGED: None}}})
    wait_for(lambda: informer.get(f"{NS}/web-main") is None)
    assert recorder.seen() == {"web.main"}
    fake_api.client.patch_deployment(NS, "web-main", {"metadata": {"labels": {labels.MANAGED: "true"}}})
    wait_for(lambda: informer.get(f"{NS}/web-main") is not None)
