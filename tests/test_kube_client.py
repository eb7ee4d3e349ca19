"""KubeClient and kube_errors, through the real `kubernetes` client against the fake server.

Covers: kubeconfig rules (explicit path, $KUBECONFIG, context choice; a missing or malformed
kubeconfig is one line naming the file, what is wrong and the fix, never the library's text); one
request for the managed list; replace with the list's resourceVersion (one PUT), without it
(GET + PUT), and after someone else's write (409 -> re-read -> PUT); retries on 409/429/5xx
and timeouts, none on 4xx; Retry-After; unreachable servers; namespace creation idempotence;
cascading delete; logs and log streaming; error translation of real `ApiException`s and
urllib3 errors (chained, trimmed); `with_retries` on its own.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import urllib3
from conftest import FakeApi
from fake_apiserver import FakeApiServer
from kubernetes.client import ApiException

from paasta_lite.kube import errors as kube_errors
from paasta_lite.kube.client import KubeClient
from paasta_lite.kube.errors import with_retries

Obj = dict[str, Any]
NS = "paastasvc-web"
DEPLOYMENTS = f"/apis/apps/v1/namespaces/{NS}/deployments"


def deployment(replicas: int = 1) -> dict[str, Any]:
    labels = {"paasta.yelp.com/service": "web", "paasta.yelp.com/instance": "main"}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": "web-main", "labels": {**labels, "paasta.yelp.com/managed": "true"}},
            "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
                     "template": {"metadata": {"labels": labels},
                                  "spec": {"containers": [{"name": "main", "image": "r/web:1"}]}}}}


@pytest.fixture
def live(fake_api: FakeApi) -> dict[str, Any]:
    fake_api.client.create_namespace(NS)
    created = fake_api.client.create_deployment(NS, deployment())
    fake_api.server.reset_counts()
    return created


# ----------------------------------------------------------------------------------- configuration

def test_kubeconfig_from_environment(fake_api: FakeApi, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", fake_api.kubeconfig)
    with KubeClient() as client:
        assert client.version()["gitVersion"] == "v1.30.0-fake"
        assert client.host == fake_api.server.url


def test_context_selects_the_cluster(fake_api: FakeApi, tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    config = fake_api.server.kubeconfig()
    config["clusters"].append({"name": "dead", "cluster": {"server": "http://127.0.0.1:9"}})
    config["contexts"].append({"name": "other", "context": {"cluster": "dead", "user": "fake"}})
    config["current-context"] = "other"
    path = tmp_path / "two-contexts"
    path.write_text(json.dumps(config))
    assert KubeClient(kubeconfig=str(path), context="fake").host == fake_api.server.url
    monkeypatch.setenv("KUBECONTEXT", "fake")
    assert KubeClient(kubeconfig=str(path)).host == fake_api.server.url


def test_missing_kubeconfig_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nope"))
    with pytest.raises(kube_errors.KubeConfigError) as caught:
        KubeClient()
    assert caught.value.exit_code == 2
    assert str(caught.value) == (
        f"no kubeconfig: {tmp_path / 'nope'} does not exist (and not running in a cluster); "
        "set KUBECONFIG to your cluster's kubeconfig (playground: make k8s_fake_cluster)"
    )


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("{{{: :", "not valid YAML (line 1)"),
        ("", "file is empty"),
        ("- a\n- b\n", "not a kubeconfig (unexpected structure)"),
        ("apiVersion: v1\nkind: Config\n", "expected key current-context"),
        (None, "a directory, not a file"),
    ],
)
def test_malformed_kubeconfig_is_one_line_with_the_fix(
    tmp_path: Path, content: str | None, detail: str
) -> None:
    path = tmp_path / "kubeconfig"
    if content is None:
        path.mkdir()
    else:
        path.write_text(content)
    with pytest.raises(kube_errors.KubeConfigError) as caught:
        KubeClient(kubeconfig=str(path))
    message = str(caught.value)
    fix = "set KUBECONFIG to your cluster's kubeconfig (playground: make k8s_fake_cluster)"
    assert message == f"kubeconfig {path} is not usable: {detail}; {fix}"
    assert "\n" not in message and "Invalid kube-config" not in message


# ----------------------------------------------------------------------------------- deployments

def test_list_managed_is_one_request_across_namespaces(fake_api: FakeApi, live: Obj) -> None:
    fake_api.client.create_namespace("paastasvc-api")
    fake_api.client.create_deployment("paastasvc-api", deployment())
    fake_api.server.put_object("deployments", {"metadata": {"name": "hand-made", "namespace": NS}})
    fake_api.server.reset_counts()
    names = [(d["metadata"]["namespace"], d["metadata"]["name"])
             for d in fake_api.client.list_managed_deployments()]
    assert names == [("paastasvc-api", "web-main"), (NS, "web-main")]
    assert fake_api.server.requests == [("GET", "/apis/apps/v1/deployments")]


def test_replace_with_known_resource_version_is_one_put(fake_api: FakeApi, live: Obj) -> None:
    body = deployment(replicas=3)
    body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
    result = fake_api.client.replace_deployment(NS, "web-main", body)
    assert result["spec"]["replicas"] == 3
    assert fake_api.server.requests == [("PUT", f"{DEPLOYMENTS}/web-main")]


def test_replace_without_resource_version_reads_first(fake_api: FakeApi, live: dict[str, Any]) -> None:
    fake_api.client.replace_deployment(NS, "web-main", deployment(replicas=2))
    one = f"{DEPLOYMENTS}/web-main"
    assert fake_api.server.requests == [("GET", one), ("PUT", one)]


def test_replace_after_a_concurrent_write_rereads_and_retries(fake_api: FakeApi, live: Obj) -> None:
    fake_api.client.patch_deployment(NS, "web-main", {"metadata": {"labels": {"touched": "yes"}}})
    fake_api.server.reset_counts()
    body = deployment(replicas=4)
    body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]  # now stale
    result = fake_api.client.replace_deployment(NS, "web-main", body)
    assert result["spec"]["replicas"] == 4
    one = f"{DEPLOYMENTS}/web-main"
    assert fake_api.server.requests == [("PUT", one), ("GET", one), ("PUT", one)]


def test_replace_of_a_missing_deployment_is_not_found(fake_api: FakeApi, live: dict[str, Any]) -> None:
    with pytest.raises(kube_errors.NotFound):
        fake_api.client.replace_deployment(NS, "ghost", {**deployment(), "metadata": {"name": "ghost"}})


@pytest.mark.parametrize("status", [409, 429, 500, 503, 504])
def test_transient_failures_are_retried(fake_api: FakeApi, live: dict[str, Any], status: int) -> None:
    fake_api.server.fail_next("POST", "/deployments$", status, times=2)
    fake_api.client.delete_deployment(NS, "web-main")
    fake_api.server.reset_counts()
    created = fake_api.client.create_deployment(NS, deployment())
    assert created["metadata"]["name"] == "web-main"
    assert fake_api.server.count("POST") == 3


@pytest.mark.parametrize(("status", "error_type"), [
    (400, kube_errors.BadRequest), (401, kube_errors.Unauthorized), (403, kube_errors.Forbidden),
    (404, kube_errors.NotFound), (422, kube_errors.Invalid)])
def test_client_errors_are_not_retried(fake_api: FakeApi, live: dict[str, Any], status: int,
                                       error_type: type[kube_errors.KubeError]) -> None:
    fake_api.server.fail_next("GET", "/deployments/web-main$", status, message="nope")
    with pytest.raises(error_type, match="nope") as caught:
        fake_api.client.get_deployment(NS, "web-main")
    assert not caught.value.retryable and caught.value.status == status
    assert isinstance(caught.value.__cause__, ApiException)
    assert fake_api.server.count() == 1


def test_retries_give_up_after_the_attempts(fake_api: FakeApi, live: dict[str, Any]) -> None:
    fake_api.server.fail_next("GET", "deployments", 500, times=10, message="etcd is sad")
    with pytest.raises(kube_errors.ServerError, match="etcd is sad"):
        fake_api.client.list_managed_deployments()
    assert fake_api.server.count() == fake_api.client.attempts == 4


def test_timeouts_are_retried(fake_api: FakeApi, live: dict[str, Any]) -> None:
    client = KubeClient(kubeconfig=fake_api.kubeconfig, timeout=0.2, base_delay=0.01)
    fake_api.server.delay_next("GET", "deployments", 0.6)
    assert len(client.list_managed_deployments()) == 1
    assert fake_api.server.count() == 2


def test_unreachable_server(tmp_path: Path) -> None:
    server = FakeApiServer()
    kubeconfig = server.write_kubeconfig(tmp_path / "kc")
    server.stop()  # never started: the port is closed
    client = KubeClient(kubeconfig=kubeconfig, attempts=2, base_delay=0.01)
    with pytest.raises(kube_errors.Unreachable) as caught:
        client.list_namespaces()
    assert caught.value.retryable and caught.value.status == 0 and not caught.value.timed_out
    assert str(caught.value) == (
        f"Kubernetes API {server.url} unreachable (connection refused); is the cluster up? "
        "(playground: make k8s_fake_cluster)"
    )


def test_a_timeout_is_unreachable_and_says_so(fake_api: FakeApi, live: dict[str, Any]) -> None:
    client = KubeClient(kubeconfig=fake_api.kubeconfig, timeout=0.2, attempts=1)
    fake_api.server.delay_next("GET", "deployments", 0.6)
    with pytest.raises(kube_errors.Unreachable) as caught:
        client.list_managed_deployments()
    assert caught.value.timed_out and str(caught.value).endswith("unreachable (timed out)")


def test_delete_cascades_in_the_foreground(fake_api: FakeApi, live: dict[str, Any]) -> None:
    fake_api.server.settle(NS, "web-main")
    assert fake_api.client.delete_deployment(NS, "web-main") is True
    assert fake_api.server.deletions == [("deployments", NS, "web-main", "Foreground")]
    assert fake_api.client.list_pods(NS) == [] and fake_api.client.list_replicasets(NS) == []
    assert fake_api.client.delete_deployment(NS, "web-main") is False


# ----------------------------------------------------------------------------------- namespaces etc.

def test_create_namespace_is_idempotent(fake_api: FakeApi) -> None:
    assert fake_api.client.create_namespace("paastasvc-x", {"paasta.yelp.com/managed": "true"}) is True
    assert fake_api.client.create_namespace("paastasvc-x") is False
    (namespace,) = fake_api.client.list_namespaces("paasta.yelp.com/managed=true")
    assert namespace["metadata"]["labels"] == {"paasta.yelp.com/managed": "true"}


def test_replicasets_pods_events(fake_api: FakeApi, live: dict[str, Any]) -> None:
    fake_api.server.settle(NS, "web-main", ready=False, waiting_reason="ImagePullBackOff")
    (pod,) = fake_api.client.list_pods(NS, "paasta.yelp.com/instance=main")
    fake_api.server.add_event(NS, involved_kind="Pod", involved_name=pod["metadata"]["name"],
                              reason="Failed", message="ErrImagePull", type="Warning")
    events = fake_api.client.list_events(NS, f"involvedObject.name={pod['metadata']['name']}")
    assert [e["reason"] for e in events] == ["Failed"]
    assert len(fake_api.client.list_replicasets(NS, "paasta.yelp.com/service=web")) == 1


def test_logs(fake_api: FakeApi, live: dict[str, Any]) -> None:
    fake_api.server.settle(NS, "web-main")
    name = fake_api.client.list_pods(NS)[0]["metadata"]["name"]
    fake_api.server.append_log(NS, name, ["one", "two", "three"])
    assert fake_api.client.read_pod_log(NS, name, tail_lines=2, timestamps=False) == "two\nthree\n"
    assert fake_api.client.read_pod_log(NS, name, container="main").count("Z ") == 3
    streamed = list(fake_api.client.stream_pod_log(NS, name, timestamps=False))
    assert streamed == ["one", "two", "three"]
    query = fake_api.server.request_log[-1][2]
    assert "follow=true" in query and "timestamps=false" in query


# ----------------------------------------------------------------------------------- kube_errors

def test_translate_api_exception_trims_and_keeps_the_message() -> None:
    body = json.dumps({"kind": "Status", "message": 'Deployment.apps "x" is invalid: spec.replicas: bad',
                       "reason": "Invalid", "code": 422, "padding": "x" * 5000})
    error = kube_errors.translate(ApiException(status=422, reason="Unprocessable Entity", body=body))
    assert isinstance(error, kube_errors.Invalid)
    assert str(error) == 'Deployment.apps "x" is invalid: spec.replicas: bad'
    assert len(error.body) < 600 and error.body.endswith("more characters)")


def test_translate_non_status_bodies_and_transport_errors() -> None:
    proxy = kube_errors.translate(ApiException(status=502, reason="Bad Gateway", body="<html>oops</html>"))
    assert isinstance(proxy, kube_errors.ServerError) and str(proxy) == "<html>oops</html>"
    conflict_body = '{"reason": "AlreadyExists", "message": "m"}'
    already = kube_errors.translate(ApiException(status=409, body=conflict_body))
    assert isinstance(already, kube_errors.AlreadyExists) and not already.retryable
    refused = kube_errors.translate(urllib3.exceptions.NewConnectionError(None, "Connection refused"))
    assert isinstance(refused, kube_errors.Unreachable) and refused.retryable and not refused.timed_out
    assert "(connection refused)" in str(refused) and "NewConnectionError" not in str(refused)
    slow = kube_errors.translate(urllib3.exceptions.ReadTimeoutError(None, "/x", "read timed out"))
    assert isinstance(slow, kube_errors.Unreachable) and slow.timed_out


def test_with_retries_backs_off_and_honours_retry_after() -> None:
    pauses: list[float] = []
    calls = iter([kube_errors.TooManyRequests("slow down", retry_after=2.0),
                  kube_errors.ServerError("boom"), "done"])

    def operation() -> str:
        outcome = next(calls)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    assert with_retries(operation, attempts=3, base_delay=0.5, sleep=pauses.append) == "done"
    assert pauses[0] == 2.0 and 1.0 <= pauses[1] <= 1.5  # Retry-After, then 0.5 * 2**1 + jitter


def test_with_retries_does_not_retry_permanent_errors() -> None:
    calls: list[int] = []

    def operation() -> None:
        calls.append(1)
        raise kube_errors.Invalid("no")

    with pytest.raises(kube_errors.Invalid):
        with_retries(operation, attempts=5, base_delay=0, sleep=lambda _: None)
    assert calls == [1]


def test_retry_after_header_reaches_the_error(fake_api: FakeApi, live: dict[str, Any]) -> None:
    fake_api.server.fail_next("GET", "deployments", 429, retry_after=0.05)
    strict = KubeClient(kubeconfig=fake_api.kubeconfig, attempts=1)
    with pytest.raises(kube_errors.TooManyRequests) as caught:
        strict.list_managed_deployments()
    assert caught.value.retry_after == 0.05
