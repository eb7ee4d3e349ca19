"""The paasta API over real HTTP: the WSGI app served by waitress on a local port, read with
`requests`, reading the fake Kubernetes API server through the real `KubeClient`.

Covers: /v1/version; status and bounce_status for running, mid-bounce, crash-looping (events and
log tails at verbose 2), stopped and not-yet-created instances; errors as JSON with a message
(404 unknown service / instance / route, 400 bad parameter, 405 method, 422 invalid instance,
503 cluster unreachable); the OpenAPI document is valid, served, and every response matches
it; the `paasta_api` entry point (stable port, api_endpoints.json kept, one ready line).

Issue 11: `paasta status -o json` and the API's status answer validate against one schema in the
OpenAPI document (StatusReport / InstanceStatus, no field outside it), and the CLI's rows are the
API's answers; a second `paasta_api` for the same cluster refuses to take over a live one's
api_endpoints entry, replaces a dead one, and stopping never removes an entry that is not its own.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml
from click.testing import CliRunner
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from status_builders import (
    CLUSTER,
    NAMESPACE,
    OLD_SHA,
    SERVICE,
    SHA,
    Served,
    crash_loop,
    dead_kubeconfig,
    deploy,
    serve,
    write_soa,
)

from paasta_lite.api.app import ApiSettings, openapi_document
from paasta_lite.cli.main import cli
from paasta_lite.config.naming import app_name
from paasta_lite.kube.client import KubeClient
from paasta_lite.paasta_api import preferred_port, record_endpoint

DOC_PATH = Path(__file__).parent.parent / "paasta_lite" / "api" / "openapi.yaml"


@pytest.fixture
def api(fake_api: Any, tmp_path: Path) -> Iterator[Served]:
    soa = write_soa(tmp_path, stopped=("canary",))
    yield from serve(ApiSettings(soa_dir=str(soa), cluster=CLUSTER, kube_factory=lambda: fake_api.client))


@pytest.fixture(scope="module")
def spec() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load(DOC_PATH.read_text())
    return document


def check(spec: dict[str, Any], schema_name: str, body: Any) -> None:
    """Validate `body` against components/schemas/<schema_name> of the OpenAPI document."""
    resource = Resource.from_contents(spec, default_specification=DRAFT202012)
    registry: Registry[Any] = Registry().with_resource("urn:paasta-api", resource)
    validator = Draft202012Validator(
        {"$ref": f"urn:paasta-api#/components/schemas/{schema_name}"}, registry=registry
    )
    validator.validate(body)


def response_schema(spec: dict[str, Any], path: str, code: int) -> str:
    """The schema name the document promises for `path` answering `code`."""
    response = spec["paths"][path]["get"]["responses"][str(code)]
    if "$ref" in response:
        response = spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    ref: str = response["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[1]


STATUS_PATH = "/v1/services/{service}/{instance}/status"
BOUNCE_PATH = "/v1/services/{service}/{instance}/bounce_status"


# ---------------------------------------------------------------- the document
def test_openapi_schemas_are_valid_json_schema(spec: dict[str, Any]) -> None:
    assert spec["openapi"].startswith("3.1")  # 3.1: component schemas are JSON Schema 2020-12
    for schema in spec["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for path, item in spec["paths"].items():
        for code in item["get"]["responses"]:
            if code != "200" or path == "/v1/openapi.yaml":
                continue
            assert response_schema(spec, path, int(code)) in spec["components"]["schemas"]


def test_openapi_document_passes_the_spec_validator(spec: dict[str, Any]) -> None:
    validator = pytest.importorskip("openapi_spec_validator", reason="openapi-spec-validator not installed")
    validator.validate(spec)


def test_openapi_document_is_served(api: Served) -> None:
    response = api.get("/v1/openapi.yaml")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/yaml"
    assert response.text == DOC_PATH.read_text() == openapi_document()


# ---------------------------------------------------------------- endpoints
def test_version(api: Served, spec: dict[str, Any]) -> None:
    response = api.get("/v1/version")
    assert response.status_code == 200
    assert response.json()["cluster"] == CLUSTER
    check(spec, response_schema(spec, "/v1/version", 200), response.json())


def test_status_running(api: Served, fake_api: Any, spec: dict[str, Any]) -> None:
    deploy(fake_api.server, "main")
    response = api.get(f"/v1/services/{SERVICE}/main/status")
    assert response.status_code == 200, response.text
    body = response.json()
    check(spec, response_schema(spec, STATUS_PATH, 200), body)
    health = body["health"]
    assert (health["state"], health["ready"], health["expected"], health["healthy"]) == (
        "Running",
        3,
        3,
        True,
    )
    assert health["desired_version"]["git_sha"] == SHA
    assert [v["version"]["git_sha"] for v in health["versions"]] == [SHA]
    assert len(health["pods"]) == 3 and body["logs"] == [] and health["events"] == []


def test_bounce_status_through_a_bounce(
    api: Served, fake_api: Any, tmp_path: Path, spec: dict[str, Any]
) -> None:
    deploy(fake_api.server, "main", sha=OLD_SHA)
    deploy(fake_api.server, "main", sha=SHA, keep_old=True, ready_count=1)
    body = api.get(f"/v1/services/{SERVICE}/main/bounce_status").json()
    check(spec, response_schema(spec, BOUNCE_PATH, 200), body)
    assert body["state"] == "Bouncing" and body["done"] is False and body["app_count"] == 2
    assert {v[0] for v in body["active_versions"]} == {SHA, OLD_SHA}
    assert body["done_message"].startswith("still bouncing to 11111111")
    fake_api.server.settle(NAMESPACE, app_name(SERVICE, "main"))
    body = api.get(f"/v1/services/{SERVICE}/main/bounce_status").json()
    assert (body["state"], body["done"], body["running_instance_count"]) == ("Running", True, 3)
    assert body["active_shas"] == [[SHA, "configabcd1234"]]


def test_status_verbose_crash_loop_has_events_and_logs(
    api: Served, fake_api: Any, spec: dict[str, Any]
) -> None:
    server = fake_api.server
    lines = [f"line {n}" for n in range(30)] + ["Traceback: boom"]
    pod = crash_loop(server, restart_count=4, event_count=9, log_lines=lines)
    server.add_event(
        NAMESPACE, involved_kind="Pod", involved_name="someone-else", reason="X", message="not ours"
    )
    quiet = api.get(f"/v1/services/{SERVICE}/main/status").json()
    assert quiet["health"]["state"] == "Degraded" and quiet["health"]["reason"] == "CrashLoopBackOff"
    assert quiet["logs"] == [] and quiet["health"]["events"] == []
    body = api.get(f"/v1/services/{SERVICE}/main/status", params={"verbose": 2}).json()
    check(spec, "InstanceStatus", body)
    assert [e["reason"] for e in body["health"]["events"]] == ["BackOff"]
    logs = {log["pod"]: log["lines"] for log in body["logs"]}
    assert logs[pod][-1] == "Traceback: boom" and len(logs[pod]) == 10
    assert len(logs) == 3


def test_stopped_and_not_created(api: Served, fake_api: Any) -> None:
    stopped = api.get(f"/v1/services/{SERVICE}/canary/bounce_status").json()
    assert (stopped["state"], stopped["done"], stopped["expected_instance_count"]) == ("Stopped", True, 0)
    missing = api.get(f"/v1/services/{SERVICE}/main/status").json()["health"]
    assert (missing["state"], missing["reason"], missing["healthy"]) == ("NotDeployed", "NoDeployment", False)


@pytest.mark.parametrize(
    ("path", "code", "words"),
    [
        ("/v1/services/nope/main/status", 404, "no service named 'nope'"),
        (
            f"/v1/services/{SERVICE}/nope/status",
            404,
            f"'{SERVICE}.nope' has been configured to run in the {CLUSTER}",
        ),
        (f"/v1/services/{SERVICE}/nope/bounce_status", 404, "nope"),
        ("/v1/nothing", 404, "no such endpoint"),
        (f"/v1/services/{SERVICE}/main/status?verbose=x", 400, "verbose must be an integer"),
        (f"/v1/services/{SERVICE}/main/status?verbose=9", 400, "between 0 and 3"),
    ],
)
def test_errors_are_json_with_a_message(
    api: Served, spec: dict[str, Any], path: str, code: int, words: str
) -> None:
    response = api.get(path)
    assert response.status_code == code
    assert response.headers["Content-Type"] == "application/json"
    assert words in response.json()["message"]
    check(spec, "Error", response.json())


def test_method_not_allowed(api: Served) -> None:
    response = requests.post(api.url + "/v1/version", timeout=5)
    assert response.status_code == 405 and "read-only" in response.json()["message"]


def test_invalid_instance_is_422(fake_api: Any, tmp_path: Path, spec: dict[str, Any]) -> None:
    soa = write_soa(tmp_path, instances={"main": {"instances": "three"}, "ok": {}})
    settings = ApiSettings(soa_dir=str(soa), cluster=CLUSTER, kube_factory=lambda: fake_api.client)
    for served in serve(settings):
        response = served.get(f"/v1/services/{SERVICE}/main/status")
        assert response.status_code == 422, response.text
        assert "instances" in response.json()["message"]
        assert served.get(f"/v1/services/{SERVICE}/ok/status").status_code == 200


def test_cluster_unreachable_is_503(tmp_path: Path, spec: dict[str, Any]) -> None:
    soa = write_soa(tmp_path)
    kubeconfig = dead_kubeconfig(tmp_path / "dead")
    settings = ApiSettings(
        soa_dir=str(soa),
        cluster=CLUSTER,
        kube_factory=lambda: KubeClient(kubeconfig=kubeconfig, base_delay=0.01),
    )
    for served in serve(settings):
        response = served.get(f"/v1/services/{SERVICE}/main/status")
        assert response.status_code == 503
        message = response.json()["message"]
        assert message.startswith(f"cluster {CLUSTER} could not be read") and "unreachable" in message
        assert response.json()["retryable"] is True  # the cluster may come back
        check(spec, "Error", response.json())


def test_missing_kubeconfig_is_503(tmp_path: Path, spec: dict[str, Any]) -> None:
    soa = write_soa(tmp_path)

    def factory() -> KubeClient:
        return KubeClient(kubeconfig=str(tmp_path / "no-such-kubeconfig"))

    for served in serve(ApiSettings(soa_dir=str(soa), cluster=CLUSTER, kube_factory=factory)):
        response = served.get(f"/v1/services/{SERVICE}/main/bounce_status")
        assert response.status_code == 503 and "no-such-kubeconfig" in response.json()["message"]
        assert response.json()["retryable"] is False  # asking again cannot help: clients stop waiting
        check(spec, "Error", response.json())


# ---------------------------------------------------------------- the entry point
def test_preferred_port_is_stable_per_user() -> None:
    assert preferred_port(user="alice") == preferred_port(user="alice")
    assert preferred_port(user="alice") != preferred_port(user="bob")
    assert all(33000 <= preferred_port(user=f"u{n}") < 58000 for n in range(200))


def test_record_endpoint_keeps_other_keys(tmp_path: Path) -> None:
    path = tmp_path / "api_endpoints.json"
    path.write_text(json.dumps({"api_endpoints": {"other": "http://x:1"}, "extra": True}))
    record_endpoint(tmp_path, CLUSTER, "http://localhost:2")
    assert json.loads(path.read_text()) == {
        "api_endpoints": {"other": "http://x:1", CLUSTER: "http://localhost:2"},
        "extra": True,
    }


def test_paasta_api_entry_point(fake_api: Any, tmp_path: Path) -> None:
    soa = write_soa(tmp_path)
    etc = tmp_path / "etc_paasta"
    etc.mkdir()
    (etc / "cluster.json").write_text(json.dumps({"cluster": CLUSTER}))
    (etc / "api_endpoints.json").write_text(json.dumps({"api_endpoints": {"elsewhere": "http://e:1"}}))
    deploy(fake_api.server, "main")
    env = {**os.environ, "PAASTA_SYSTEM_CONFIG_DIR": str(etc), "KUBECONFIG": fake_api.kubeconfig}
    process = subprocess.Popen(
        [sys.executable, "-m", "paasta_lite.paasta_api", "-d", str(soa)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        assert "paasta_api ready" in line and CLUSTER in line, line
        endpoints = json.loads((etc / "api_endpoints.json").read_text())["api_endpoints"]
        assert endpoints["elsewhere"] == "http://e:1"
        url = endpoints[CLUSTER]
        assert url.startswith("http://localhost:") and url in line
        body = requests.get(url + f"/v1/services/{SERVICE}/main/bounce_status", timeout=10).json()
        assert body["done"] is True
    finally:
        process.terminate()
        process.wait(timeout=10)
    # a stopped API forgets its own endpoint (so status reads the cluster directly) and no other
    assert json.loads((etc / "api_endpoints.json").read_text())["api_endpoints"] == {"elsewhere": "http://e:1"}


def test_config_only_change_reads_pending_until_applied(fake_api: Any, tmp_path: Path) -> None:
    from paasta_lite.config.soa_config import SoaDir
    from paasta_lite.config.system_config import SystemConfig
    from paasta_lite.kube.render import render_instance

    system = SystemConfig(directory=str(tmp_path), cluster=CLUSTER, docker_registry="registry.test")
    soa = write_soa(tmp_path, instances={"main": {"instances": 2, "cpus": 0.5}})

    def apply() -> None:
        service = SoaDir(soa).load_service(SERVICE, clusters=[CLUSTER])
        rendered = render_instance(service.instances[CLUSTER]["main"], service.deployments, system)
        existing = fake_api.server.get_object("deployments", NAMESPACE, rendered.name)
        body = rendered.deployment
        if existing is not None:
            body = {
                **existing,
                "spec": body["spec"],
                "metadata": {**existing["metadata"], **body["metadata"]},
            }
        fake_api.server.put_object("deployments", body)
        fake_api.server.settle(NAMESPACE, rendered.name)

    apply()
    settings = ApiSettings(str(soa), CLUSTER, lambda: fake_api.client, system=system)
    for served in serve(settings):
        body = served.get(f"/v1/services/{SERVICE}/main/bounce_status").json()
        assert (body["state"], body["done"]) == ("Running", True)
        (soa / SERVICE / f"kubernetes-{CLUSTER}.yaml").write_text("main: {instances: 2, cpus: 1}\n")
        body = served.get(f"/v1/services/{SERVICE}/main/bounce_status").json()
        assert (body["state"], body["reason"], body["done"]) == ("Pending", "NotApplied", False)
        assert "configuration in the cluster differs" in body["message"]
        apply()
        body = served.get(f"/v1/services/{SERVICE}/main/bounce_status").json()
        assert (body["state"], body["done"]) == ("Running", True)


# ---------------------------------------------------------------- one JSON shape (issue 11)
def test_cli_json_and_api_answers_share_one_schema(
    fake_api: Any, tmp_path: Path, spec: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    soa = write_soa(tmp_path, stopped=("canary",))
    cli_soa = write_soa(tmp_path / "cli", instances={"main": {"instances": 3}, "canary": {}, "ghost": {}})
    deploy(fake_api.server, "main", min_ready_seconds=30)  # ready, not yet available
    etc = tmp_path / "etc_paasta"
    etc.mkdir()
    monkeypatch.setenv("PAASTA_SYSTEM_CONFIG_DIR", str(etc))
    monkeypatch.setenv("KUBECONFIG", fake_api.kubeconfig)
    (etc / "cluster.json").write_text(json.dumps({"cluster": CLUSTER}))
    direct = CliRunner().invoke(cli, ["status", "-s", SERVICE, "-d", str(soa), "-o", "json", "-vv"])
    direct_report = json.loads(direct.stdout)
    check(spec, "StatusReport", direct_report)
    for served in serve(ApiSettings(str(soa), CLUSTER, lambda: fake_api.client)):
        (etc / "api_endpoints.json").write_text(json.dumps({"api_endpoints": {CLUSTER: served.url}}))
        answer = served.get(f"/v1/services/{SERVICE}/main/status").json()
        check(spec, response_schema(spec, STATUS_PATH, 200), answer)
        result = CliRunner().invoke(cli, ["status", "-s", SERVICE, "-d", str(cli_soa), "-o", "json"])
        report = json.loads(result.stdout)
    check(spec, "StatusReport", report)
    rows = {row["instance"]: row for row in report["instances"]}
    assert {**rows["main"], "source": None} == {**answer, "source": None}
    assert rows["main"]["health"]["available"] == 0 and rows["main"]["health"]["ready"] == 3
    assert rows["ghost"]["failure"] == "permanent" and "404" in rows["ghost"]["error"]
    assert result.exit_code == 2 and report["healthy"] is False
    assert [r["health"]["state"] for r in direct_report["instances"]] == ["Stopped", "Starting"]


def start_api(etc: Path, soa: Path, kubeconfig: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PAASTA_SYSTEM_CONFIG_DIR": str(etc), "KUBECONFIG": kubeconfig}
    return subprocess.Popen(
        [sys.executable, "-m", "paasta_lite.paasta_api", "-d", str(soa)],
        env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def endpoints(etc: Path) -> dict[str, str]:
    data: dict[str, str] = json.loads((etc / "api_endpoints.json").read_text())["api_endpoints"]
    return data


def test_a_second_api_never_takes_over_a_live_ones_entry(fake_api: Any, tmp_path: Path) -> None:
    soa = write_soa(tmp_path)
    etc = tmp_path / "etc_paasta"
    etc.mkdir()
    (etc / "cluster.json").write_text(json.dumps({"cluster": CLUSTER}))
    (etc / "api_endpoints.json").write_text(json.dumps({"api_endpoints": {CLUSTER: "http://127.0.0.1:9"}}))
    first = start_api(etc, soa, fake_api.kubeconfig)
    try:
        assert first.stderr is not None
        lines = [first.stderr.readline(), first.stderr.readline()]
        stale = f"replacing the api_endpoints entry of {CLUSTER}: nothing answers at http://127.0.0.1:9"
        assert stale in lines[0]
        assert "paasta_api ready" in lines[1]
        url = endpoints(etc)[CLUSTER]
        assert url != "http://127.0.0.1:9"
        second = start_api(etc, soa, fake_api.kubeconfig)
        _, error = second.communicate(timeout=30)
        assert second.returncode == 2
        assert error.strip().splitlines()[-1] == (
            f"error: a paasta API for cluster {CLUSTER} already answers at {url} (recorded in "
            f"{etc / 'api_endpoints.json'}); stop that one first, or start this one with --port N "
            "(it is then not recorded)"
        )
        assert endpoints(etc) == {CLUSTER: url}  # untouched, also by the refused one's exit
        assert requests.get(url + "/v1/version", timeout=10).json()["cluster"] == CLUSTER
        (etc / "api_endpoints.json").write_text(json.dumps({"api_endpoints": {CLUSTER: "http://other:1"}}))
    finally:
        first.terminate()
        first.wait(timeout=10)
    assert endpoints(etc) == {CLUSTER: "http://other:1"}  # not its own any more: left alone
