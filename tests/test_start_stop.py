"""paasta start / stop / restart with real git repositories, checked through generate's output.

Behaviours covered:
- stop pushes a stop tag on the *deployed* sha (not the newest commit); deployments.json then
  says stop; the message says when it takes effect and that a new deploy undoes it;
- start right after stop (same second) wins; restart changes force_bounce every time;
- a new deploy of a new sha undoes a stop;
- several instances at once (comma separated); the deploy event log gets one line each;
- nothing deployed yet exits 1; unknown instances and clusters exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from git_builders import SERVICE, GitRepos, Soa

from paasta_lite.cli.main import cli
from paasta_lite.generate_deployments_for_service import generate


@pytest.fixture
def soa(tmp_path: Path, repos: GitRepos, monkeypatch: pytest.MonkeyPatch) -> Soa:
    etc = tmp_path / "etc_paasta"
    etc.mkdir()
    writer = {"driver": "file", "options": {"directory": str(tmp_path / "logs")}}
    (etc / "paasta.json").write_text(json.dumps({"cluster": "c1", "log_writer": writer}))
    monkeypatch.setenv("PAASTA_SYSTEM_CONFIG_DIR", str(etc))
    return Soa(tmp_path, repos.url)


def paasta(soa: Soa, command: str, instances: str = "main", cluster: str = "c1") -> Result:
    return CliRunner().invoke(
        cli, [command, "-s", SERVICE, "-c", cluster, "-i", instances, "-d", str(soa.dir)]
    )


def control(soa: Soa, instance: str = "main") -> dict[str, str | None]:
    generate(str(soa.dir), SERVICE)
    controls: dict[str, dict[str, str | None]] = soa.deployments()["controls"]
    return controls[f"{SERVICE}:c1.{instance}"]


def state_tags(repos: GitRepos) -> dict[str, str]:
    return {ref: sha for ref, sha in repos.remote_tags().items() if ref.endswith(("-start", "-stop"))}


def test_stop_tags_the_deployed_sha_and_says_what_happens(repos: GitRepos, soa: Soa, tmp_path: Path) -> None:
    deployed = repos.commit("1")
    repos.tag("paasta-prod.main-20240101T000000-deploy", deployed)
    repos.commit("2")  # newer, not deployed
    result = paasta(soa, "stop")
    assert result.exit_code == 0, result.output
    assert list(state_tags(repos).values()) == [deployed]
    assert "svc.main on c1 will be stopped" in result.output
    assert "next generate_deployments_for_service + setup_kubernetes_job run" in result.output
    assert "A new deploy to prod.main (a new sha) undoes this stop" in result.output
    assert control(soa)["desired_state"] == "stop"
    logged = (tmp_path / "logs" / SERVICE / "deploy.jsonl").read_text()
    assert "paasta stop: pushed paasta-c1.main-" in logged


def test_start_right_after_stop_wins(repos: GitRepos, soa: Soa) -> None:
    repos.tag("paasta-prod.main-20240101T000000-deploy", repos.commit())
    assert paasta(soa, "stop").exit_code == 0
    assert paasta(soa, "start").exit_code == 0
    assert control(soa)["desired_state"] == "start"
    assert len(state_tags(repos)) == 2


def test_restart_changes_force_bounce_each_time(repos: GitRepos, soa: Soa) -> None:
    repos.tag("paasta-prod.main-20240101T000000-deploy", repos.commit())
    assert control(soa) == {"desired_state": "start", "force_bounce": None}
    seen = set()
    for _ in range(2):
        result = paasta(soa, "restart")
        assert result.exit_code == 0, result.output
        assert "will be restarted (every pod replaced)" in result.output
        now = control(soa)
        assert now["desired_state"] == "start"
        seen.add(now["force_bounce"])
    assert None not in seen and len(seen) == 2


def test_a_new_deploy_undoes_a_stop(repos: GitRepos, soa: Soa) -> None:
    repos.tag("paasta-prod.main-20240101T000000-deploy", repos.commit("1"))
    assert paasta(soa, "stop").exit_code == 0
    assert control(soa)["desired_state"] == "stop"
    repos.tag("paasta-prod.main-20990101T000000-deploy", repos.commit("2"))
    assert control(soa) == {"desired_state": "start", "force_bounce": None}


def test_several_instances_at_once(repos: GitRepos, soa: Soa) -> None:
    sha = repos.commit()
    repos.tag("paasta-prod.main-20240101T000000-deploy", sha)
    repos.tag("paasta-prod.canary-20240101T000000-deploy", sha)
    result = paasta(soa, "stop", "main,canary")
    assert result.exit_code == 0, result.output
    assert control(soa, "main")["desired_state"] == "stop"
    assert control(soa, "canary")["desired_state"] == "stop"
    assert "svc:c1.solo" not in soa.deployments()["controls"]  # its group was never deployed


def test_nothing_deployed_yet_exits_1(repos: GitRepos, soa: Soa) -> None:
    repos.commit()
    result = paasta(soa, "stop")
    assert result.exit_code == 1
    assert "No deploy tags found for prod.main" in result.output
    assert state_tags(repos) == {}


@pytest.mark.parametrize(
    ("instances", "cluster", "message"),
    [
        ("nope", "c1", "unknown instance(s) nope"),
        ("main", "c9", "no valid instance on cluster c9 (clusters: c1)"),
    ],
)
def test_unknown_instance_or_cluster_exits_2(
    repos: GitRepos, soa: Soa, instances: str, cluster: str, message: str
) -> None:
    repos.tag("paasta-prod.main-20240101T000000-deploy", repos.commit())
    result = paasta(soa, "stop", instances, cluster)
    assert result.exit_code == 2
    assert message in result.output
