"""mark-for-deployment / wait-for-deployment / get-latest-deployment through CliRunner, with real git
repositories and, for waiting, the fake Kubernetes API server (KUBECONFIG path).

Behaviours covered:
- marking pushes a deploy tag (image version too), resolves and prints short shas and branch names,
  writes the deploy event log; unknown deploy groups and bad image versions exit 2; commits the
  remote lacks and unreachable repositories exit 1 naming the URL;
- marking the version already marked pushes nothing; with waiting, one health check: 0/1;
- waiting: done when the cluster runs only the new version with enough ready replicas (exit 0);
  a crash-looping rollout times out with exit 1, naming the instance, the reason and the commands
  to inspect it; a tag not yet in deployments.json is "not generated yet", never done;
- wait-for-deployment refuses a version that is not the latest marked (exit 2);
- get-latest-deployment prints the sha from deployments.json, exit 1 when nothing is deployed;
- the pure timeout report and the verdict's target-version check;
- issue 11: a deploy with minReadySeconds is not done before the controller counts its pods
  available, and a failed rollout (progress deadline) says so; a permanent error (no kubeconfig,
  403, a cluster this host cannot read) ends the wait at once with exit 2 and the fix, whatever
  the timeout and polling interval; "connection refused" is retried for a bounded time only,
  timeouts until the wait's timeout.
"""

from __future__ import annotations

import json
import re
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from git_builders import SERVICE, GitRepos, Soa

from paasta_lite.cli.main import cli
from paasta_lite.cli.mark_for_deployment_cmd import (
    DeploymentTimeout,
    Verdict,
    timeout_message,
    verdict_for,
    wait_for_instances,
)
from paasta_lite.config.instance_config import InstanceConfig
from paasta_lite.config.naming import app_name
from paasta_lite.config.soa_config import SoaDir
from paasta_lite.config.system_config import load_system_config
from paasta_lite.generate_deployments_for_service import generate
from paasta_lite.kube.render import render_instance
from paasta_lite.status.health import InstanceHealth, State, Version
from paasta_lite.status.instance_status import CannotGetStatus, Failure, StatusUnavailable

CLUSTER = "c1"


@pytest.fixture
def soa(tmp_path: Path, repos: GitRepos) -> Soa:
    return Soa(tmp_path, repos.url)


@pytest.fixture
def etc(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "etc_paasta"
    directory.mkdir()
    config = {
        "cluster": CLUSTER,
        "docker_registry": "registry.test",
        "log_writer": {"driver": "file", "options": {"directory": str(tmp_path / "logs")}},
    }
    (directory / "paasta.json").write_text(json.dumps(config))
    monkeypatch.setenv("PAASTA_SYSTEM_CONFIG_DIR", str(directory))
    return directory


def paasta(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


def mark(soa: Soa, commit: str, group: str = "prod.main", *extra: str) -> Result:
    return paasta("mark-for-deployment", "-s", SERVICE, "-l", group, "-c", commit, "-d", str(soa.dir), *extra)


def deploy_tags(repos: GitRepos) -> dict[str, str]:
    return {ref: sha for ref, sha in repos.remote_tags().items() if ref.endswith("-deploy")}


def test_mark_pushes_a_deploy_tag_and_logs_it(repos: GitRepos, soa: Soa, etc: Path, tmp_path: Path) -> None:
    sha = repos.commit()
    result = mark(soa, sha)
    assert result.exit_code == 0, result.output
    [(ref, tagged)] = deploy_tags(repos).items()
    assert tagged == sha
    assert re.fullmatch(r"refs/tags/paasta-prod\.main-\d{8}T\d{6}-deploy", ref)
    assert f"Marked {sha[:8]} for deployment in deploy group prod.main" in result.output
    log_lines = (tmp_path / "logs" / SERVICE / "deploy.jsonl").read_text().splitlines()
    assert any(sha in json.loads(line)["message"] for line in log_lines)


def test_mark_resolves_short_shas_and_branches(repos: GitRepos, soa: Soa, etc: Path) -> None:
    old = repos.commit("1")
    head = repos.commit("2")
    result = mark(soa, old[:7], "prod.canary")
    assert result.exit_code == 0, result.output
    assert f"Resolved {old[:7]} to {old}." in result.output
    result = mark(soa, "main", "prod.main", "-i", "build.7")
    assert result.exit_code == 0, result.output
    tags = deploy_tags(repos)
    assert sorted(tags.values()) == sorted([old, head])
    assert any(ref.startswith("refs/tags/paasta-prod.main+build.7-") for ref in tags)


def test_mark_usage_errors_exit_2(repos: GitRepos, soa: Soa, etc: Path) -> None:
    sha = repos.commit()
    result = mark(soa, sha, "prod.typo")
    assert result.exit_code == 2
    assert "deploy group 'prod.typo' is not in" in result.output and "prod.main" in result.output
    result = mark(soa, sha, "prod.main", "-i", "bad version")
    assert result.exit_code == 2
    assert deploy_tags(repos) == {}


def test_mark_a_commit_the_remote_lacks_exits_1(repos: GitRepos, soa: Soa, etc: Path) -> None:
    repos.commit()
    local_only = repos.commit("unpushed", push=False)
    result = mark(soa, local_only)
    assert result.exit_code == 1
    assert f"git repository {repos.url}" in result.output and "does not exist there" in result.output


def test_mark_unreachable_repository_exits_1(repos: GitRepos, soa: Soa, etc: Path, tmp_path: Path) -> None:
    gone = str(tmp_path / "gone.git")
    result = mark(soa, "a" * 40, "prod.main", "-u", gone)
    assert result.exit_code == 1
    assert f"git repository {gone}" in result.output


def test_marking_the_marked_version_pushes_nothing(repos: GitRepos, soa: Soa, etc: Path) -> None:
    sha = repos.commit()
    assert mark(soa, sha).exit_code == 0
    before = deploy_tags(repos)
    result = mark(soa, sha)
    assert result.exit_code == 0
    assert "already the version marked for prod.main; no new tag pushed" in result.output
    assert deploy_tags(repos) == before


# --- waiting, against the fake API server ---------------------------------------------------------


def apply(soa: Soa, fake_api: Any, **settle: Any) -> None:
    """Play generate + setup_kubernetes_job + the Deployment controller for c1.main."""
    generate(str(soa.dir), SERVICE)
    service = SoaDir(soa.dir).load_service(SERVICE, clusters=[CLUSTER])
    system = load_system_config()
    rendered = render_instance(service.instances[CLUSTER]["main"], service.deployments, system)
    fake_api.client.create_namespace(rendered.namespace)
    existing = fake_api.server.get_object("deployments", rendered.namespace, rendered.name)
    body = rendered.deployment
    if existing is not None:
        body = {**existing, "spec": body["spec"], "metadata": {**existing["metadata"], **body["metadata"]}}
    fake_api.server.put_object("deployments", body)
    fake_api.server.settle(rendered.namespace, rendered.name, **settle)


@pytest.fixture
def kube(fake_api: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    """The CLI finds the fake cluster through $KUBECONFIG, as a user's shell would."""
    monkeypatch.setenv("KUBECONFIG", fake_api.kubeconfig)
    return fake_api


def wait(soa: Soa, commit: str, *extra: str) -> Result:
    return paasta(
        "wait-for-deployment", "-s", SERVICE, "-l", "prod.main", "-c", commit, "-d", str(soa.dir),
        "--polling-interval", "0.1", *extra,
    )  # fmt: skip


def test_wait_succeeds_when_the_new_version_runs(repos: GitRepos, soa: Soa, etc: Path, kube: Any) -> None:
    sha = repos.commit()
    assert mark(soa, sha).exit_code == 0
    apply(soa, kube)
    result = wait(soa, sha, "-t", "5")
    assert result.exit_code == 0, result.output
    assert f"[{CLUSTER}] main: done: complete: {sha[:8]} deployed at 3 replica(s)" in result.output


def test_wait_times_out_on_crash_loop_with_reasons_and_commands(
    repos: GitRepos, soa: Soa, etc: Path, kube: Any
) -> None:
    sha = repos.commit()
    assert mark(soa, sha).exit_code == 0
    apply(soa, kube, ready=False, waiting_reason="CrashLoopBackOff", restart_count=5)
    result = wait(soa, sha, "-t", "0.3")
    assert result.exit_code == 1
    assert "1 instance(s) not done after 0.3s" in result.output
    assert f"{CLUSTER} main: [CrashLoopBackOff]" in result.output
    assert f"paasta status -s {SERVICE} -c {CLUSTER} -i main -vv" in result.output
    assert f"paasta wait-for-deployment -s {SERVICE} -l prod.main -c {sha}" in result.output


def test_a_tag_not_yet_generated_is_never_done(repos: GitRepos, soa: Soa, etc: Path, kube: Any) -> None:
    old = repos.commit("1")
    assert mark(soa, old).exit_code == 0
    apply(soa, kube)
    new = repos.commit("2")
    result = mark(soa, new, "prod.main", "--wait-for-deployment", "-t", "0.2", "--polling-interval", "0.1")
    assert result.exit_code == 1
    assert f"deployments.json still targets {old[:8]}, not {new[:8]}" in result.output


def test_remarking_checks_health_once(repos: GitRepos, soa: Soa, etc: Path, kube: Any) -> None:
    sha = repos.commit()
    assert mark(soa, sha).exit_code == 0
    apply(soa, kube)
    healthy = mark(soa, sha, "prod.main", "--wait-for-deployment")
    assert healthy.exit_code == 0, healthy.output
    assert "already the version marked" in healthy.output
    apply(soa, kube, ready=False, waiting_reason="ImagePullBackOff")
    unhealthy = mark(soa, sha, "prod.main", "--wait-for-deployment")
    assert unhealthy.exit_code == 1
    assert "not done after 0s" in unhealthy.output


def test_wait_for_a_version_that_is_not_the_latest_marked(repos: GitRepos, soa: Soa, etc: Path) -> None:
    old = repos.commit("1")
    new = repos.commit("2")
    assert mark(soa, new).exit_code == 0
    result = wait(soa, old)
    assert result.exit_code == 2
    assert f"{old[:8]} is not the latest version marked for prod.main (that is {new[:8]})" in result.output


def test_get_latest_deployment(repos: GitRepos, soa: Soa, etc: Path) -> None:
    args = ("get-latest-deployment", "-s", SERVICE, "-l", "prod.main", "-d", str(soa.dir))
    missing = paasta(*args)
    assert missing.exit_code == 1 and "nothing is deployed to prod.main" in missing.output
    sha = repos.commit()
    assert mark(soa, sha, "prod.main", "-i", "rc1").exit_code == 0
    generate(str(soa.dir), SERVICE)
    assert paasta(*args).output.strip() == sha
    assert json.loads(paasta(*args, "--json").output) == {
        "docker_image": f"services-{SERVICE}:paasta-{sha}-rc1",
        "git_sha": sha,
        "image_version": "rc1",
    }


# --- pure parts -----------------------------------------------------------------------------------


def _health(**overrides: Any) -> InstanceHealth:
    values: dict[str, Any] = {
        "state": State.RUNNING, "healthy": True, "ready": 3, "expected": 3, "reason": None,
        "message": "running", "done": True, "done_message": "complete", "desired_version": Version("a" * 40),
        "desired_state": "start", "bounce_margin_factor": 1.0,
    }  # fmt: skip
    values.update(overrides)
    return InstanceHealth(**values)


def test_verdict_requires_the_marked_version() -> None:
    assert verdict_for(_health(), Version("a" * 40)) == Verdict(True, "complete", None)
    stale = verdict_for(_health(), Version("b" * 40))
    assert not stale.done and stale.reason == "NotGenerated"
    assert not verdict_for(_health(), Version("a" * 40, None, "iv")).done
    stopped = _health(expected=0, desired_version=None, done=True, done_message="stopped")
    assert verdict_for(stopped, Version("b" * 40)).done


def test_wait_loop_prints_changes_only_and_stops_when_done() -> None:
    answers = iter([False, False, True])
    lines: list[str] = []
    clock = iter(range(100))

    def check(config: Any) -> InstanceHealth:
        done = next(answers)
        return _health(done=done, done_message="complete" if done else "2/3 ready")

    from paasta_lite.config.instance_config import InstanceConfig

    config = InstanceConfig(
        service="s", instance="i", cluster="c", source="f", deploy_group="g", namespace="n"
    )
    wait_for_instances(
        [config], Version("a" * 40), check, timeout=50, interval=1, echo=lines.append,
        clock=lambda: float(next(clock)), sleep=lambda _: None,
    )  # fmt: skip
    assert lines == ["  [c] i: waiting: 2/3 ready", "  [c] i: done: complete", "1 instance(s) run aaaaaaaa."]


def test_timeout_message_groups_commands_by_cluster() -> None:
    from paasta_lite.config.instance_config import InstanceConfig

    def config(cluster: str, instance: str) -> InstanceConfig:
        return InstanceConfig(
            service="web", instance=instance, cluster=cluster, source="f", deploy_group="g",
            namespace=app_name("web", instance),
        )  # fmt: skip

    pending = [
        (config("c2", "a"), Verdict(False, "no answer", "StatusUnavailable")),
        (config("c1", "b"), Verdict(False, "pending", None)),
        (config("c1", "a"), Verdict(False, "0/2 ready", "CrashLoopBackOff")),
    ]
    text = timeout_message("web", "g", Version("f" * 40), pending, 60)
    assert "web ffffffff in deploy group g: 3 instance(s) not done after 60s" in text
    assert "  c1 a: [CrashLoopBackOff] 0/2 ready" in text
    assert "paasta status -s web -c c1 -i a,b -vv" in text
    assert "paasta status -s web -c c2 -i a -vv" in text


# --- issue 11: the controller's verdict, and errors that end the wait -------------------------------


def test_min_ready_seconds_holds_the_wait_until_pods_are_available(
    repos: GitRepos, soa: Soa, etc: Path, kube: Any
) -> None:
    instances = "main: {deploy_group: prod.main, instances: 2, bounce_health_params: {min_task_uptime: 60}}\n"
    (soa.service_dir / "kubernetes-c1.yaml").write_text(instances)
    sha = repos.commit()
    assert mark(soa, sha).exit_code == 0
    apply(soa, kube)  # both pods ready just now: not available for another 60 s
    early = wait(soa, sha, "-t", "0.3")
    assert early.exit_code == 1
    assert f"{CLUSTER} main: [MinReadySeconds] 0/2 replicas available, waiting for 2" in early.output
    assert "minReadySeconds 60s" in early.output
    apply(soa, kube, ready_for=60)
    later = wait(soa, sha, "-t", "5")
    assert later.exit_code == 0, later.output


def test_a_rollout_past_its_deadline_says_it_failed(repos: GitRepos, soa: Soa, etc: Path, kube: Any) -> None:
    sha = repos.commit()
    assert mark(soa, sha).exit_code == 0
    apply(soa, kube, ready=False, progress_deadline_exceeded=True)
    result = wait(soa, sha, "-t", "0.3")
    assert result.exit_code == 1
    assert f"{CLUSTER} main: [ProgressDeadlineExceeded] rollout failed: no progress for 600s" in result.output


@pytest.mark.parametrize("problem", ["no kubeconfig", "403", "unknown cluster"])
def test_a_permanent_error_ends_the_wait_at_once(
    repos: GitRepos, soa: Soa, etc: Path, kube: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    problem: str,
) -> None:
    sha = repos.commit()
    assert mark(soa, sha).exit_code == 0
    apply(soa, kube)
    if problem == "no kubeconfig":
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
        words = "no kubeconfig: "
    elif problem == "403":
        kube.server.fail_next("GET", "deployments", 403, times=1000, message="forbidden")
        words = "ask for RBAC read access"
    else:
        config = json.loads((etc / "paasta.json").read_text())
        (etc / "paasta.json").write_text(json.dumps({**config, "cluster": "c0"}))
        words = "cannot read cluster c1 from here"
    started = time.monotonic()
    result = paasta(  # the defaults: polls every 10 s for an hour
        "wait-for-deployment", "-s", SERVICE, "-l", "prod.main", "-c", sha, "-d", str(soa.dir)
    )
    elapsed = time.monotonic() - started
    assert result.exit_code == 2, result.output
    assert elapsed < 3, elapsed  # git look-ups included; one poll interval alone would be 10 s
    assert f"cannot get the status of {SERVICE}.main in {CLUSTER}" in result.output and words in result.output
    assert "Traceback" not in result.output


CONFIG = InstanceConfig(service="s", instance="i", cluster="c", source="f", deploy_group="g", namespace="n")


def run_wait(error: Exception, *, timeout: float) -> tuple[BaseException, float, int]:
    """wait_for_instances on a fake clock, every check failing with `error`: what it raised,
    at which (fake) second, after how many checks."""
    now = [0.0]
    calls = [0]

    def check(config: Any) -> InstanceHealth:
        calls[0] += 1
        raise error

    def sleep(seconds: float) -> None:
        now[0] += seconds

    with pytest.raises((CannotGetStatus, DeploymentTimeout)) as caught:
        wait_for_instances(
            [CONFIG], Version("a" * 40), check, timeout=timeout, interval=10, echo=lambda _: None,
            clock=lambda: now[0], sleep=sleep,
        )  # fmt: skip
    return caught.value, now[0], calls[0]


def test_permanent_errors_stop_at_the_first_check() -> None:
    raised, when, calls = run_wait(StatusUnavailable("answered 404", failure=Failure.PERMANENT), timeout=3600)
    assert isinstance(raised, CannotGetStatus) and raised.exit_code == 2
    assert (when, calls) == (0.0, 1)


def test_connection_refused_is_retried_for_a_bounded_time_only() -> None:
    refused = StatusUnavailable("does not answer (connection refused)", failure=Failure.UNREACHABLE)
    raised, when, calls = run_wait(refused, timeout=3600)
    assert isinstance(raised, CannotGetStatus) and "no answer about s.i in c for 60 s" in str(raised)
    assert when == 60.0 and calls == 7


def test_timeouts_are_retried_until_the_wait_times_out() -> None:
    slow = StatusUnavailable("did not answer within 10 s (timed out)", failure=Failure.TRANSIENT)
    raised, when, _ = run_wait(slow, timeout=300)
    assert isinstance(raised, DeploymentTimeout) and when == 300.0
    assert "could not get status this time" in str(raised)
