"""`paasta status` through CliRunner against the fake Kubernetes API server (directly through
KUBECONFIG, or through the paasta API served on a local port).

Covers: running + intentionally stopped instances exit 0 and read "Stopped" (never Critical);
a crash loop exits 1 with its reason and the unhealthy pod; -v adds the source and pods, -vv
events and log tails; -o json; the API path and its errors (printed; an API that does not
answer exits 1 and names `make playground-forget-api`, one that does not know the instance
exits 2); one hung cluster costs at most --timeout while the others print; filters (-i, -c, -l)
and unknown names; colour only when asked or on a terminal, NO_COLOR honoured.

Issue 11: minReadySeconds not elapsed reads Starting, not done, and says why; direct mode with a
local system config unlike the cluster's reads a finished deploy as Running and done (soa hash),
a soa-config change as Pending, and a Deployment without the annotation with a plain "cannot
judge config drift" line; permanent errors (no or malformed kubeconfig, a cluster this host
cannot read, 401/403, invalid config) exit 2, one line with the fix, no traceback.
"""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from status_builders import (
    CLUSTER,
    NAMESPACE,
    OLD_SHA,
    SERVICE,
    crash_loop,
    dead_kubeconfig,
    deploy,
    serve,
    write_soa,
)

from paasta_lite.api.app import ApiSettings
from paasta_lite.cli import status_cmd
from paasta_lite.cli.main import cli
from paasta_lite.config.naming import app_name
from paasta_lite.kube import labels


@pytest.fixture
def env(fake_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """System config (cluster only, no API endpoint) and KUBECONFIG pointing at the fake."""
    etc = tmp_path / "etc_paasta"
    etc.mkdir()
    (etc / "cluster.json").write_text(json.dumps({"cluster": CLUSTER}))
    monkeypatch.setenv("PAASTA_SYSTEM_CONFIG_DIR", str(etc))
    monkeypatch.setenv("KUBECONFIG", fake_api.kubeconfig)
    monkeypatch.delenv("NO_COLOR", raising=False)
    return etc


def run(*args: str) -> Any:
    return CliRunner().invoke(cli, ["status", *args], catch_exceptions=False)


def test_running_and_stopped_exit_zero(env: Path, fake_api: Any, tmp_path: Path) -> None:
    soa = write_soa(tmp_path, stopped=("canary",))
    deploy(fake_api.server, "main")
    deploy(fake_api.server, "canary", replicas=0)
    result = run("-s", SERVICE, "-d", str(soa))
    assert result.exit_code == 0, result.output
    assert f"{SERVICE}.main in {CLUSTER}" in result.output
    assert "State:      Running" in result.output and "3/3 ready (healthy)" in result.output
    assert "State:      Stopped" in result.output and "stopped on purpose" in result.output
    assert "Critical" not in result.output and "\x1b[" not in result.output
    assert "Source:" not in result.output


def test_crash_loop_exits_one_with_reason(env: Path, fake_api: Any, tmp_path: Path) -> None:
    soa = write_soa(tmp_path)
    deploy(fake_api.server, "main", ready=False, waiting_reason="CrashLoopBackOff", restart_count=6)
    result = run("-s", SERVICE, "-d", str(soa), "-i", "main")
    assert result.exit_code == 1
    assert "State:      Degraded" in result.output and "Reason:     CrashLoopBackOff" in result.output
    assert "0/3 ready (unhealthy)" in result.output
    assert "Unhealthy pods:" in result.output and "restarts 6" in result.output
    assert "canary" not in result.output


def test_verbose_levels(env: Path, fake_api: Any, tmp_path: Path) -> None:
    soa = write_soa(tmp_path)
    pod = crash_loop(
        fake_api.server, restart_count=2, event_count=7, log_lines=["starting", "KeyError: 'DATABASE_URL'"]
    )
    one = run("-s", SERVICE, "-d", str(soa), "-i", "main", "-v")
    assert "Source:     KUBECONFIG fake (http://127.0.0.1:" in one.output
    assert "Pods:" in one.output and "node fake-node" in one.output
    assert "Events:" not in one.output and "KeyError" not in one.output
    two = run("-s", SERVICE, "-d", str(soa), "-i", "main", "-vv")
    assert "Events:" in two.output and "Warning BackOff Pod/" in two.output and "(x7)" in two.output
    assert f"Last 2 log lines of {pod}/" in two.output and "KeyError: 'DATABASE_URL'" in two.output


def test_bounce_shows_both_versions(env: Path, fake_api: Any, tmp_path: Path) -> None:
    soa = write_soa(tmp_path, instances={"main": {"instances": 3}})
    deploy(fake_api.server, "main", sha=OLD_SHA)
    deploy(fake_api.server, "main", keep_old=True, ready_count=2)
    result = run("-s", SERVICE, "-d", str(soa))
    assert "State:      Bouncing" in result.output
    assert "11111111 configabcd1234  2/3 ready" in result.output and "(desired)" in result.output
    assert "00000000 configabcd1234  3/3 ready" in result.output
    assert "Deploy:     not done - still bouncing" in result.output
    assert result.exit_code == 0  # serving 5/3: healthy, just not done


def test_json_output(env: Path, fake_api: Any, tmp_path: Path) -> None:
    soa = write_soa(tmp_path, stopped=("canary",))
    deploy(fake_api.server, "main")
    result = run("-s", SERVICE, "-d", str(soa), "-o", "json")
    assert result.exit_code == 0
    report = json.loads(result.output)
    assert report["healthy"] is True
    states = {row["instance"]: row["health"]["state"] for row in report["instances"]}
    assert states == {"main": "Running", "canary": "Stopped"}


@pytest.fixture
def api_endpoint(fake_api: Any, env: Path, tmp_path: Path) -> Iterator[str]:
    soa = write_soa(tmp_path)
    for served in serve(ApiSettings(str(soa), CLUSTER, lambda: fake_api.client)):
        (env / "api_endpoints.json").write_text(json.dumps({"api_endpoints": {CLUSTER: served.url}}))
        yield served.url


def test_through_the_api(
    api_endpoint: str, fake_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "not-used"))
    deploy(fake_api.server, "main")
    result = run("-s", SERVICE, "-d", str(tmp_path / "soa"), "-i", "main", "-v")
    assert result.exit_code == 0, result.output
    assert f"Source:     API {api_endpoint}" in result.output and "State:      Running" in result.output


def test_api_errors_are_printed(env: Path, tmp_path: Path) -> None:
    soa = write_soa(tmp_path)
    (env / "api_endpoints.json").write_text(json.dumps({"api_endpoints": {CLUSTER: "http://127.0.0.1:9"}}))
    result = run("-s", SERVICE, "-d", str(soa), "-i", "main")
    assert result.exit_code == 1  # may be back in a moment: not a permanent failure
    assert result.output.splitlines()[1] == (
        f"    Error: the paasta API of cluster {CLUSTER} at http://127.0.0.1:9 does not answer (connection"
        " refused); if that API was stopped, remove its api_endpoints entry (playground: make"
        " playground-forget-api)"
    )


def test_api_error_message_is_shown(api_endpoint: str, tmp_path: Path) -> None:
    # the CLI's soa dir knows an instance the API's does not: the API's 404 text is printed
    cli_soa = write_soa(tmp_path / "cli", instances={"main": {}, "ghost": {}})
    result = run("-s", SERVICE, "-d", str(cli_soa), "-i", "ghost")
    assert result.exit_code == 2  # asking again will not help
    api = f"the paasta API of cluster {CLUSTER} at {api_endpoint}"
    assert f"Error: {api} answered 404: no instance named '{SERVICE}.ghost'" in result.output
    assert "compare its -d/--soa-dir with yours" in result.output


def test_an_api_without_a_kubeconfig_is_a_permanent_error(env: Path, tmp_path: Path) -> None:
    from paasta_lite.kube.client import KubeClient

    soa = write_soa(tmp_path)

    def no_kubeconfig() -> Any:
        return KubeClient(kubeconfig=str(tmp_path / "none"))

    for served in serve(ApiSettings(str(soa), CLUSTER, no_kubeconfig)):
        (env / "api_endpoints.json").write_text(json.dumps({"api_endpoints": {CLUSTER: served.url}}))
        result = run("-s", SERVICE, "-d", str(soa), "-i", "main")
    assert result.exit_code == 2
    assert "answered 503: cluster kind-test could not be read: no kubeconfig" in result.output


def test_one_hung_cluster_does_not_hold_up_the_others(env: Path, fake_api: Any, tmp_path: Path) -> None:
    soa = write_soa(tmp_path, extra_clusters=("slow",))
    deploy(fake_api.server, "main")
    hung = socket.socket()
    hung.bind(("127.0.0.1", 0))
    hung.listen(5)  # accepts connections, never answers
    try:
        port = hung.getsockname()[1]
        (env / "api_endpoints.json").write_text(
            json.dumps({"api_endpoints": {"slow": f"http://127.0.0.1:{port}"}})
        )
        started = time.monotonic()
        result = run("-s", SERVICE, "-d", str(soa), "-i", "main", "--timeout", "1")
        elapsed = time.monotonic() - started
    finally:
        hung.close()
    assert elapsed < 4, elapsed
    assert result.exit_code == 1
    assert f"{SERVICE}.main in {CLUSTER}" in result.output and "State:      Running" in result.output
    slow = result.output.split(f"{SERVICE}.main in slow")[1]
    assert "Error:" in slow and ("timed out" in slow or "Timeout" in slow)


def test_filters(env: Path, fake_api: Any, tmp_path: Path) -> None:
    soa = write_soa(tmp_path, instances={"main": {"instances": 1, "deploy_group": "prod"}, "canary": {}})
    deploy(fake_api.server, "main", replicas=1)
    by_group = run("-s", SERVICE, "-d", str(soa), "-l", "prod")
    assert ".main in" in by_group.output and ".canary" not in by_group.output
    unknown = run("-s", SERVICE, "-d", str(soa), "-i", "main,nope")
    assert (
        unknown.exit_code == 2 and "no instance nope" in unknown.output and "canary, main" in unknown.output
    )
    bad_cluster = run("-s", SERVICE, "-d", str(soa), "-c", "mars")
    assert bad_cluster.exit_code == 2 and f"runs on: {CLUSTER}" in bad_cluster.output
    no_group = run("-s", SERVICE, "-d", str(soa), "-l", "nothing")
    assert no_group.exit_code == 2 and "deploy group 'nothing'" in no_group.output
    no_service = run("-s", "nope", "-d", str(soa))
    assert no_service.exit_code == 2 and "'nope' does not exist" in no_service.output


def test_invalid_instance_is_reported(env: Path, fake_api: Any, tmp_path: Path) -> None:
    soa = write_soa(tmp_path, instances={"main": {"instances": "three"}, "ok": {"instances": 1}})
    deploy(fake_api.server, "ok", replicas=1)
    result = run("-s", SERVICE, "-d", str(soa))
    assert result.exit_code == 2
    assert "invalid configuration" in result.output and "State:      Running" in result.output


def test_colour(env: Path, fake_api: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    soa = write_soa(tmp_path)
    deploy(fake_api.server, "main")
    coloured = run("-s", SERVICE, "-d", str(soa), "-i", "main", "--color", "always")
    assert "\x1b[32m" in coloured.output
    plain = run("-s", SERVICE, "-d", str(soa), "-i", "main", "--color", "never")
    assert "\x1b[" not in plain.output


def test_ages() -> None:
    assert [status_cmd.age(s) for s in (5, 65, 3600, 3660, 90000, None)] == [
        "5s",
        "1m5s",
        "1h",
        "1h1m",
        "1d1h",
        "?",
    ]


def test_settled_objects_are_named_as_expected(fake_api: Any) -> None:
    deploy(fake_api.server, "main")
    assert fake_api.server.get_object("deployments", NAMESPACE, app_name(SERVICE, "main"))


def test_an_image_version_that_needs_label_cleaning_still_reads_running(
    env: Path, fake_api: Any, tmp_path: Path
) -> None:
    """setup_kubernetes_job writes label-safe values; status must compare with the same form."""
    from paasta_lite.setup_kubernetes_job import setup_kubernetes_job

    (env / "registry.json").write_text(json.dumps({"docker_registry": "registry.test"}))
    soa = write_soa(tmp_path, instances={"main": {"instances": 2}})
    deployments_path = soa / SERVICE / "deployments.json"
    document = json.loads(deployments_path.read_text())
    for version in document["v2"]["deployments"].values():
        version["image_version"] = "-rc1"  # a valid tag suffix, not a valid label value
    deployments_path.write_text(json.dumps(document))
    setup = CliRunner().invoke(setup_kubernetes_job, ["-d", str(soa)])
    assert setup.exit_code == 0, setup.output
    fake_api.server.settle(NAMESPACE, app_name(SERVICE, "main"))
    result = run("-s", SERVICE, "-d", str(soa), "-i", "main")
    assert result.exit_code == 0, result.output
    assert "State:      Running" in result.output


# --------------------------------------------------------------------------- issue 11
def test_min_ready_seconds_not_elapsed_is_not_done(env: Path, fake_api: Any, tmp_path: Path) -> None:
    soa = write_soa(tmp_path, instances={"main": {"instances": 2}})
    deploy(fake_api.server, "main", replicas=2, min_ready_seconds=60)
    result = run("-s", SERVICE, "-d", str(soa))
    assert result.exit_code == 1, result.output
    assert "State:      Starting - starting: 2/2 ready, 0 available" in result.output
    assert "Health:     2/2 ready, 0 available (unhealthy)" in result.output
    assert "Reason:     MinReadySeconds" in result.output
    assert (
        "Deploy:     not done - 0/2 replicas available, waiting for 2 (2 ready; a pod counts as available"
        " once ready for minReadySeconds 60s); Available=False (MinimumReplicasUnavailable)"
    ) in result.output
    fake_api.server.settle(NAMESPACE, app_name(SERVICE, "main"), ready_for=60)
    later = run("-s", SERVICE, "-d", str(soa))
    assert later.exit_code == 0 and "Deploy:     done - complete: 11111111 deployed at 2" in later.output


def test_a_spec_the_controller_has_not_observed_is_pending(env: Path, fake_api: Any, tmp_path: Path) -> None:
    soa = write_soa(tmp_path, instances={"main": {"instances": 3}})
    deploy(fake_api.server, "main")
    fake_api.client.patch_deployment(NAMESPACE, app_name(SERVICE, "main"), {"spec": {"minReadySeconds": 5}})
    result = run("-s", SERVICE, "-d", str(soa))
    pending = "State:      Pending - waiting for the controller to observe generation 2 (observed: 1)"
    assert pending in result.output
    assert "Reason:     NotObservedYet" in result.output and "Deploy:     not done" in result.output


def setup_with(env: Path, soa: Path, system: dict[str, Any]) -> None:
    """Run setup_kubernetes_job as the cluster would: with the cluster's own system config."""
    from paasta_lite.setup_kubernetes_job import setup_kubernetes_job

    cluster_etc = env.parent / "cluster_etc"
    cluster_etc.mkdir(exist_ok=True)
    (cluster_etc / "paasta.json").write_text(json.dumps({"cluster": CLUSTER, **system}))
    result = CliRunner().invoke(
        setup_kubernetes_job, ["-d", str(soa)], env={"PAASTA_SYSTEM_CONFIG_DIR": str(cluster_etc)}
    )
    assert result.exit_code == 0, result.output


def test_laptop_with_another_system_config_reads_a_finished_deploy_as_done(
    env: Path, fake_api: Any, tmp_path: Path
) -> None:
    soa = write_soa(tmp_path, instances={"main": {"instances": 2}})
    volumes = [{"containerPath": "/etc/certs", "hostPath": "/etc/certs", "mode": "RO"}]
    setup_with(env, soa, {"docker_registry": "registry.prod", "volumes": volumes})
    fake_api.server.settle(NAMESPACE, app_name(SERVICE, "main"))
    (env / "registry.json").write_text(json.dumps({"docker_registry": "registry.laptop"}))  # no volumes
    result = run("-s", SERVICE, "-d", str(soa))
    assert result.exit_code == 0, result.output
    assert "State:      Running" in result.output and "Deploy:     done" in result.output
    assert "Config:" not in result.output
    (soa / SERVICE / f"kubernetes-{CLUSTER}.yaml").write_text("main: {instances: 2, cpus: 0.5}\n")
    changed = run("-s", SERVICE, "-d", str(soa))
    assert "State:      Pending - the configuration in the cluster differs from soa-configs" in changed.output
    assert "Deploy:     not done" in changed.output


def test_a_config_bounce_from_a_laptop_marks_the_new_replicaset_as_desired(
    env: Path, fake_api: Any, tmp_path: Path
) -> None:
    soa = write_soa(tmp_path, instances={"main": {"instances": 2}})
    cluster_config = {"docker_registry": "registry.prod"}
    setup_with(env, soa, cluster_config)
    name = app_name(SERVICE, "main")
    fake_api.server.settle(NAMESPACE, name)
    old = fake_api.server.get_object("deployments", NAMESPACE, name)["metadata"]["labels"][labels.CONFIG_SHA]
    (soa / SERVICE / f"kubernetes-{CLUSTER}.yaml").write_text("main: {instances: 2, cpus: 0.5}\n")
    setup_with(env, soa, cluster_config)
    fake_api.server.settle(NAMESPACE, name, keep_old=True, ready_count=0)
    new = fake_api.server.get_object("deployments", NAMESPACE, name)["metadata"]["labels"][labels.CONFIG_SHA]
    result = run("-s", SERVICE, "-d", str(soa))  # the laptop's system config has no registry at all
    assert "State:      Bouncing" in result.output, result.output
    assert f"Version:    11111111 (desired), config {new}" in result.output
    assert f"11111111 {new}  0/2 ready" in result.output and "(desired)" in result.output
    # not desired: the line ends at its age (which a slow run may show as 1s)
    assert re.search(rf"11111111 {old}  2/2 ready, started \d+s ago\n", result.output)


def test_a_deployment_without_the_soa_hash_says_config_drift_cannot_be_judged(
    env: Path, fake_api: Any, tmp_path: Path
) -> None:
    soa = write_soa(tmp_path, instances={"main": {"instances": 3}})
    deploy(fake_api.server, "main")  # written like an older setup_kubernetes_job: no annotation
    result = run("-s", SERVICE, "-d", str(soa))
    assert result.exit_code == 0, result.output
    assert (
        "    Config:     cannot judge config drift from here: the Deployment has no"
        " paasta.yelp.com/soa_config_sha annotation"
    ) in result.output


def one_line_error(result: Any) -> str:
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert "Traceback" not in result.output
    errors = [line.strip() for line in result.output.splitlines() if line.strip().startswith("Error:")]
    assert errors, result.output
    return errors[0]


def test_missing_kubeconfig_exits_2_with_the_fix(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    soa = write_soa(tmp_path)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nowhere"))
    result = run("-s", SERVICE, "-d", str(soa), "-i", "main")
    assert result.exit_code == 2
    assert one_line_error(result) == (
        f"Error: no kubeconfig: {tmp_path / 'nowhere'} does not exist (and not running in a cluster); set"
        " KUBECONFIG to your cluster's kubeconfig (playground: make k8s_fake_cluster)"
    )
    (tmp_path / "broken").write_text("clusters: [\n")
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "broken"))
    broken = run("-s", SERVICE, "-d", str(soa), "-i", "main")
    assert broken.exit_code == 2 and "is not usable: not valid YAML" in one_line_error(broken)


def test_a_cluster_without_an_api_that_is_not_ours_exits_2(env: Path, fake_api: Any, tmp_path: Path) -> None:
    soa = write_soa(tmp_path, extra_clusters=("elsewhere",))
    deploy(fake_api.server, "main")
    result = run("-s", SERVICE, "-d", str(soa), "-i", "main")
    assert result.exit_code == 2
    assert f"{SERVICE}.main in {CLUSTER}" in result.output and "State:      Running" in result.output
    error = one_line_error(result)
    assert error.startswith("Error: cannot read cluster elsewhere from here: it has no api_endpoints entry")
    assert f"KUBECONFIG is for this host's cluster {CLUSTER}" in error


@pytest.mark.parametrize(("code", "words"), [(401, "refresh them"), (403, "ask for RBAC read access")])
def test_refused_credentials_exit_2(env: Path, fake_api: Any, tmp_path: Path, code: int, words: str) -> None:
    soa = write_soa(tmp_path)
    fake_api.server.fail_next("GET", "deployments", code, times=10, message="no")
    result = run("-s", SERVICE, "-d", str(soa), "-i", "main")
    assert result.exit_code == 2
    assert words in one_line_error(result)


def test_an_unreachable_cluster_is_one_line_and_may_come_back(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    soa = write_soa(tmp_path)
    monkeypatch.setenv("KUBECONFIG", dead_kubeconfig(tmp_path / "dead"))
    result = run("-s", SERVICE, "-d", str(soa), "-i", "main")
    assert result.exit_code == 1
    assert one_line_error(result) == (
        "Error: Kubernetes API http://127.0.0.1:9 unreachable (connection refused); is the cluster up?"
        " (playground: make k8s_fake_cluster)"
    )
