"""generate_deployments_for_service against real git repositories and a soa-configs directory.

Behaviours covered:
- newest deploy tag per deploy.yaml group (and per group only instances use), image versions,
  look-alike groups, foreign and unparsable tags ignored;
- controls: stop on the deployed sha, a newer deploy undoes the stop, restart sets force_bounce;
- the file is only rewritten when its content changes;
- an unreachable repository is an error naming the URL and the old file stays byte-identical;
- a writer killed between writing the temporary file and renaming it leaves the old file intact;
- a write the file system refuses (a directory in the way, a full disk, a read-only soa dir) is
  one line naming the file and exit 1, never a traceback, and the old file stays;
- the click command (CliRunner) and `python -m` entry point, exit codes 0/1/2;
- 10,000 tags: processing time (beyond git's own) well under a second.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from git_builders import SERVICE, GitRepos, Soa, git

from paasta_lite.generate_deployments_for_service import deployments_from_refs, generate, main
from paasta_lite.gitflow import remote as git_remote
from paasta_lite.gitflow.tags import deploy_tag_name, format_timestamp

IMAGE = "services-svc:paasta-"
START = {"desired_state": "start", "force_bounce": None}
REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def soa(tmp_path: Path, repos: GitRepos) -> Soa:
    return Soa(tmp_path, repos.url)


def test_newest_deploy_tag_per_group_and_controls(repos: GitRepos, soa: Soa) -> None:
    one, two, three = repos.commit("1"), repos.commit("2"), repos.commit("3")
    repos.tag("paasta-prod.canary-20240101T000000-deploy", one)
    repos.tag("paasta-prod.canary+rc1-20240102T000000-deploy", two, annotated=True)
    repos.tag("paasta-prod.main-20240101T000000-deploy", one)
    repos.tag("paasta-prodXmain-20250101T000000-deploy", three)  # look-alike group
    repos.tag("paasta-c1.solo-20240101T000000-deploy", three)  # default group, only used by instance
    repos.tag("paasta-prod.main-garbage-deploy", three)
    repos.tag("v9.9", three)
    assert generate(str(soa.dir), SERVICE) is True
    data = soa.deployments()
    assert data["deployments"] == {
        "prod.canary": {
            "docker_image": f"services-svc:paasta-{two}-rc1",
            "git_sha": two,
            "image_version": "rc1",
        },
        "prod.main": {"docker_image": f"services-svc:paasta-{one}", "git_sha": one, "image_version": None},
        "c1.solo": {"docker_image": f"services-svc:paasta-{three}", "git_sha": three, "image_version": None},
    }
    assert data["controls"] == {
        f"svc:c1.{name}": {"desired_state": "start", "force_bounce": None}
        for name in ("canary", "main", "solo")
    }


def test_stop_restart_and_a_newer_deploy(repos: GitRepos, soa: Soa) -> None:
    one, two = repos.commit("1"), repos.commit("2")
    repos.tag("paasta-prod.main-20240101T000000-deploy", one)
    repos.tag("paasta-c1.main-20240101T000100-stop", one)
    generate(str(soa.dir), SERVICE)
    assert soa.deployments()["controls"]["svc:c1.main"] == {
        "desired_state": "stop",
        "force_bounce": "20240101T000100",
    }
    repos.tag("paasta-c1.main-20240101T000200-start", one)  # paasta restart / start
    generate(str(soa.dir), SERVICE)
    assert soa.deployments()["controls"]["svc:c1.main"] == {
        "desired_state": "start",
        "force_bounce": "20240101T000200",
    }
    repos.tag("paasta-c1.main-20240101T000300-stop", one)
    repos.tag("paasta-prod.main-20240101T000400-deploy", two)  # a new deploy undoes the stop
    generate(str(soa.dir), SERVICE)
    assert soa.deployments()["controls"]["svc:c1.main"] == {"desired_state": "start", "force_bounce": None}
    assert soa.deployments()["deployments"]["prod.main"]["git_sha"] == two


def test_write_only_when_changed(repos: GitRepos, soa: Soa) -> None:
    repos.tag("paasta-prod.main-20240101T000000-deploy", repos.commit())
    assert generate(str(soa.dir), SERVICE) is True
    before = soa.deployments_path.stat()
    assert generate(str(soa.dir), SERVICE) is False
    after = soa.deployments_path.stat()
    assert (before.st_ino, before.st_mtime_ns) == (after.st_ino, after.st_mtime_ns)


def test_unreachable_repository_keeps_the_old_file(tmp_path: Path, repos: GitRepos, soa: Soa) -> None:
    repos.tag("paasta-prod.main-20240101T000000-deploy", repos.commit())
    generate(str(soa.dir), SERVICE)
    old = soa.deployments_path.read_bytes()
    missing = str(tmp_path / "gone.git")
    (soa.service_dir / "service.yaml").write_text(f"git_url: {missing}\n")
    result = CliRunner().invoke(main, ["-s", SERVICE, "-d", str(soa.dir)])
    assert result.exit_code == 1
    assert f"git repository {missing}: cannot list refs" in result.output
    assert soa.deployments_path.read_bytes() == old


def test_missing_git_url_is_a_config_error(tmp_path: Path) -> None:
    soa = Soa(tmp_path, None)
    result = CliRunner().invoke(main, ["-s", SERVICE, "-d", str(soa.dir)])
    assert result.exit_code == 2
    assert "has no git_url" in result.output
    assert not soa.deployments_path.exists()


def test_unknown_service_is_a_config_error(soa: Soa) -> None:
    result = CliRunner().invoke(main, ["-s", "nope", "-d", str(soa.dir)])
    assert result.exit_code == 2
    assert "no such service" in result.output


def test_cli_reports_updated_then_unchanged(repos: GitRepos, soa: Soa) -> None:
    repos.tag("paasta-prod.main-20240101T000000-deploy", repos.commit())
    runner = CliRunner()
    first = runner.invoke(main, ["-s", SERVICE, "-d", str(soa.dir)])
    second = runner.invoke(main, ["-s", SERVICE, "-d", str(soa.dir)])
    assert (first.exit_code, second.exit_code) == (0, 0)
    assert "deployments.json updated" in first.output
    assert "deployments.json unchanged" in second.output


def _run_python(code: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, *args] if not code else [sys.executable, "-c", code, *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_python_dash_m_entry_point(repos: GitRepos, soa: Soa) -> None:
    sha = repos.commit()
    repos.tag("paasta-prod.main-20240101T000000-deploy", sha)
    result = _run_python(
        "", "-m", "paasta_lite.generate_deployments_for_service", "-s", SERVICE, "-d", str(soa.dir)
    )
    assert result.returncode == 0, result.stderr
    assert soa.deployments()["deployments"]["prod.main"]["git_sha"] == sha


def test_writer_killed_before_rename_leaves_old_file_intact(repos: GitRepos, soa: Soa) -> None:
    repos.tag("paasta-prod.main-20240101T000000-deploy", repos.commit("1"))
    generate(str(soa.dir), SERVICE)
    old = soa.deployments_path.read_bytes()
    repos.tag("paasta-prod.main-20240102T000000-deploy", repos.commit("2"))
    # Crash exactly between "temporary file written" and "renamed over the target".
    crash = textwrap.dedent(
        """\
        import os, signal, sys
        def crash(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)
        os.replace = crash
        os.rename = crash
        from paasta_lite.generate_deployments_for_service import generate
        generate(sys.argv[1], sys.argv[2])
        """
    )
    result = _run_python(crash, str(soa.dir), SERVICE)
    assert result.returncode == -9
    assert soa.deployments_path.read_bytes() == old
    json.loads(old)
    # the next run recovers and writes the new version
    assert generate(str(soa.dir), SERVICE) is True
    assert soa.deployments()["deployments"]["prod.main"]["git_sha"] == repos.commits[1]


def test_pure_builder_ignores_groups_nobody_uses() -> None:
    refs = {"refs/tags/paasta-elsewhere-20240101T000000-deploy": "a" * 40}
    result = deployments_from_refs("svc", deploy_groups=["prod"], instances={("c1", "i"): "prod"}, refs=refs)
    assert dict(result.deployments) == {} and dict(result.controls) == {}


def test_ten_thousand_tags(repos: GitRepos, soa: Soa) -> None:
    shas = [repos.commit(str(i)) for i in range(5)]
    start = datetime(2024, 1, 1, tzinfo=timezone.utc)
    lines = [
        f"create refs/tags/{deploy_tag_name('prod.main', format_timestamp(start + timedelta(minutes=i)))} "
        f"{shas[i % 5]}"
        for i in range(10_000)
    ]
    subprocess.run(
        ["git", "update-ref", "--stdin"],
        input="\n".join(lines) + "\n",
        text=True,
        cwd=repos.remote,
        check=True,
    )
    git("pack-refs", "--all", cwd=repos.remote)
    started = time.monotonic()
    refs = git_remote.list_refs(repos.url)
    listed = time.monotonic()
    content = deployments_from_refs(SERVICE, deploy_groups=["prod.main"], instances={}, refs=refs)
    processed = time.monotonic()
    assert len(refs) >= 10_000
    newest = max(line.split()[1] for line in lines)
    assert content.deployments["prod.main"].git_sha == refs[newest]
    print(f"\n10k tags: ls-remote {listed - started:.3f}s, processing {processed - listed:.3f}s")
    assert processed - listed < 1.0


def test_a_corrupt_deployments_json_is_replaced(repos: GitRepos, soa: Soa) -> None:
    one = repos.commit("1")
    repos.tag("paasta-prod.main-20240101T000000-deploy", one)
    soa.deployments_path.write_text("{ torn")
    assert generate(str(soa.dir), SERVICE) is True
    assert soa.deployments()["deployments"]["prod.main"]["git_sha"] == one


def _assert_one_line_write_error(result: subprocess.CompletedProcess[str], soa: Soa, reason: str) -> None:
    assert result.returncode == 1, result.stderr
    assert result.stderr == f"error: {soa.deployments_path}: cannot be written: {reason}\n"
    assert sorted(p.name for p in soa.service_dir.iterdir() if p.name.startswith(".")) == []


def test_a_directory_in_the_way_is_one_line_and_exit_1(repos: GitRepos, soa: Soa) -> None:
    repos.tag("paasta-prod.main-20240101T000000-deploy", repos.commit())
    soa.deployments_path.mkdir()
    result = _run_python(
        "", "-m", "paasta_lite.generate_deployments_for_service", "-s", SERVICE, "-d", str(soa.dir)
    )
    _assert_one_line_write_error(result, soa, "Is a directory")


def _no_room_to_write() -> None:
    """In the child: every write to a file fails (EFBIG), as it does on a full disk (ENOSPC)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def test_a_full_disk_is_one_line_and_exit_1_and_the_old_file_stays(repos: GitRepos, soa: Soa) -> None:
    repos.tag("paasta-prod.main-20240101T000000-deploy", repos.commit("1"))
    generate(str(soa.dir), SERVICE)
    old = soa.deployments_path.read_bytes()
    repos.tag("paasta-prod.main-20240102T000000-deploy", repos.commit("2"))
    command = ["-m", "paasta_lite.generate_deployments_for_service", "-s", SERVICE, "-d", str(soa.dir)]
    result = subprocess.run(
        [sys.executable, *command],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True, text=True, timeout=60, check=False, preexec_fn=_no_room_to_write,
    )
    _assert_one_line_write_error(result, soa, "File too large")
    assert soa.deployments_path.read_bytes() == old


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_a_read_only_soa_dir_is_one_line_and_exit_1(repos: GitRepos, soa: Soa) -> None:
    repos.tag("paasta-prod.main-20240101T000000-deploy", repos.commit())
    soa.service_dir.chmod(0o555)
    try:
        result = _run_python(
            "", "-m", "paasta_lite.generate_deployments_for_service", "-s", SERVICE, "-d", str(soa.dir)
        )
    finally:
        soa.service_dir.chmod(0o755)
    _assert_one_line_write_error(result, soa, "Permission denied")
    assert not soa.deployments_path.exists()
