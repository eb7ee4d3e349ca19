"""Playground helpers: templates, local git repos and deploy tags, the `make playground` plan,
which cluster is used, api_endpoints clean-up (only of an API that no longer answers), `make
playground-wait` stopping at once on a permanent error (issue 11), and kind-cluster.sh with stub
docker/kind binaries.

Run: `.venv/bin/python -m pytest playground/tests -q` (real git, a real fake API server over HTTP).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

PLAYGROUND = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PLAYGROUND), str(PLAYGROUND.parent / "tests")]

import pg_cluster  # noqa: E402
import pg_common  # noqa: E402
import pg_up  # noqa: E402
from pg_configs import create_configs  # noqa: E402
from pg_repos import ensure_repo, local_repo_path, untagged_groups  # noqa: E402
from pg_services import generate_all, summary_lines  # noqa: E402
from pg_status import ApiStillAnswers, forget_api  # noqa: E402
from pg_up import STAGES, plan_stages, run_plan, summary  # noqa: E402

from paasta_lite.config.soa_config import SoaDir  # noqa: E402

SCRIPT = PLAYGROUND / "scripts" / "kind-cluster.sh"


def test_configs_fill_placeholders_and_never_overwrite(tmp_path: Path) -> None:
    targets = {"etc_paasta": tmp_path / "etc", "soa_configs": tmp_path / "soa"}
    written = create_configs("kind-me-k8s-test", targets=targets, repo_dir=tmp_path)
    instances = tmp_path / "soa" / "hello_world" / "kubernetes-kind-me-k8s-test.yaml"
    assert instances in written
    assert json.loads((tmp_path / "etc" / "clusters.json").read_text())["cluster"] == "kind-me-k8s-test"
    service_yaml = (tmp_path / "soa" / "hello_world" / "service.yaml").read_text()
    assert str(tmp_path / "playground_repos" / "hello_world") in service_yaml
    instances.write_text("# mine\n")
    assert create_configs("kind-me-k8s-test", targets=targets, repo_dir=tmp_path) == []
    assert instances.read_text() == "# mine\n"


def _soa_with_repo(tmp_path: Path, git_url: str) -> SoaDir:
    service = tmp_path / "soa" / "svc"
    service.mkdir(parents=True)
    (service / "service.yaml").write_text(f"git_url: {git_url}\n")
    (service / "deploy.yaml").write_text("pipeline:\n  - step: canary\n  - step: prod\n")
    (service / "kubernetes-c1.yaml").write_text("main: {deploy_group: prod}\nextra: {deploy_group: other}\n")
    return SoaDir(str(tmp_path / "soa"))


def test_repo_is_created_with_sources_and_a_tag_per_deploy_group(tmp_path: Path) -> None:
    repos, sources = tmp_path / "repos", tmp_path / "sources"
    (sources / "svc").mkdir(parents=True)
    (sources / "svc" / "Dockerfile").write_text("FROM scratch\n")
    soa = _soa_with_repo(tmp_path, str(repos / "svc"))
    first = ensure_repo(soa.load_service("svc"), repos_dir=repos, sources=sources,
                        timestamp="20240101T000000")
    assert first.created
    assert first.tagged == ("paasta-canary-20240101T000000-deploy", "paasta-prod-20240101T000000-deploy",
                            "paasta-other-20240101T000000-deploy")
    files = subprocess.run(["git", "-C", str(repos / "svc"), "ls-files"], capture_output=True, text=True)
    assert files.stdout.split() == ["Dockerfile"]
    again = ensure_repo(soa.load_service("svc"), repos_dir=repos, sources=sources)
    assert not again.created and again.tagged == ()


def test_repo_outside_playground_repos_is_left_alone(tmp_path: Path) -> None:
    soa = _soa_with_repo(tmp_path, "git@github.com:example/svc.git")
    result = ensure_repo(soa.load_service("svc"), repos_dir=tmp_path / "repos")
    assert result.path is None and "left alone" in result.note
    assert local_repo_path(f"file://{tmp_path}/repos/x", tmp_path / "repos") == tmp_path / "repos" / "x"
    assert local_repo_path("relative/path", tmp_path) is None


def test_untagged_groups_ignores_other_tags() -> None:
    tags = ["paasta-prod-20240101T000000-deploy", "v1.0", "paasta-c1.main-20240101T000000-stop"]
    assert untagged_groups(["prod", "canary"], tags) == ["canary"]


def test_plan_without_cluster_runs_the_offline_stages_only() -> None:
    plan = plan_stages(cluster_reason="no docker", missing=lambda name: None)
    assert [s.target for s in plan.run] == [s.target for s in STAGES if not s.cluster]
    assert {why for _, why in plan.skipped} == {"no cluster"}


def test_plan_skips_stages_whose_entry_point_is_missing_and_later_cluster_stages() -> None:
    plan = plan_stages(cluster_reason=None,
                       missing=lambda name: "not here" if name == "setup_kubernetes_job" else None)
    skipped = {stage.target: why for stage, why in plan.skipped}
    assert skipped == {"setup-kubernetes-job": "not here",
                       "playground-wait": "an earlier cluster stage was skipped"}
    assert "playground-image" in [s.target for s in plan.run]


def test_kubeconfig_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from fake_apiserver import FakeApiServer

    names = pg_common.Names.from_env({"KIND_CLUSTER_NAME": "me-k8s-test"})
    assert pg_cluster.resolve(names, {}).source == "kind"
    dead = pg_cluster.resolve(names, {"KUBECONFIG": str(tmp_path / "missing")})
    assert dead.source == "kind" and "does not answer" in dead.message
    with FakeApiServer() as server:
        path = server.write_kubeconfig(tmp_path / "kc", context="kind-other")
        monkeypatch.setenv("KUBECONFIG", path)
        live = pg_cluster.resolve(names, {"KUBECONFIG": path})
    assert live.source == "user" and live.kubeconfig == path and live.kind_cluster == "other"
    assert "not creating a Kind cluster" in live.message


DEAD = "http://127.0.0.1:9"


def test_forget_api_keeps_other_clusters(tmp_path: Path) -> None:
    path = tmp_path / "api_endpoints.json"
    path.write_text(json.dumps({"api_endpoints": {"a": DEAD, "b": DEAD + "/b"}}))
    assert forget_api("a", tmp_path) == DEAD
    assert json.loads(path.read_text()) == {"api_endpoints": {"b": DEAD + "/b"}}
    assert forget_api("a", tmp_path) is None
    assert forget_api("b", tmp_path) and not path.exists()


def test_forget_api_never_removes_an_api_that_answers(tmp_path: Path) -> None:
    class Version(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'{"version": "x", "cluster": "a"}')

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Version)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    path = tmp_path / "api_endpoints.json"
    path.write_text(json.dumps({"api_endpoints": {"a": url}}))
    try:
        with pytest.raises(ApiStillAnswers):
            forget_api("a", tmp_path)
    finally:
        server.shutdown()
    assert json.loads(path.read_text()) == {"api_endpoints": {"a": url}}


def test_playground_wait_stops_at_once_on_a_permanent_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """No kubeconfig: `paasta status` exits 2, and the wait ends instead of polling 180 s."""
    soa, etc = tmp_path / "soa", tmp_path / "etc"
    (soa / "svc").mkdir(parents=True)
    etc.mkdir()
    (soa / "svc" / "kubernetes-c1.yaml").write_text("main: {}\n")
    (etc / "clusters.json").write_text(json.dumps({"cluster": "c1"}))
    missing = str(tmp_path / "no-kubeconfig")
    monkeypatch.setattr(pg_up, "SOA_DIR", soa)
    monkeypatch.setattr(pg_common, "SOA_DIR", soa)
    monkeypatch.setattr(pg_common, "ETC_DIR", etc)
    monkeypatch.setattr(pg_up, "resolve", lambda names: pg_cluster.Resolution(missing, "kind", "", None))
    started = time.monotonic()
    code = pg_up.wait_healthy(pg_common.Names("k", "c1", "v"), timeout_s=180, interval_s=5)
    elapsed = time.monotonic() - started
    assert code == 2
    assert elapsed < 5, elapsed  # one `paasta status` run, not one poll interval more
    out = capsys.readouterr().out
    assert "Stopped waiting: waiting will not fix this." in out
    assert f"svc.main in c1: no kubeconfig: {missing} does not exist" in out
    assert "make k8s_fake_cluster" in out


def _stub(bin_dir: Path, name: str, body: str) -> None:
    path = bin_dir / name
    path.write_text(f"#!/usr/bin/env bash\necho \"{name} $*\" >> {bin_dir}/calls\n{body}\n")
    path.chmod(0o755)


def _script(bin_dir: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": f"{bin_dir}:/usr/bin:/bin", "HOME": str(tmp_path), "USER": "Me.Name",
           "KIND_KUBECONFIG": str(tmp_path / "kubeconfig")}
    return subprocess.run(["bash", str(SCRIPT), *args], env=env, capture_output=True, text=True)


def test_kind_script_creates_once_and_fails_with_the_install_command(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "docker", "exit 0")
    missing = _script(bin_dir, tmp_path, "create")
    assert missing.returncode == 1
    assert "https://kind.sigs.k8s.io/dl/v0.31.0/kind-" in missing.stderr
    _stub(bin_dir, "kind", 'case "$1" in version) echo "kind v0.31.0 go linux/amd64";;\n'
          f'get) cat {bin_dir}/clusters 2>/dev/null;;\n'
          f'create) echo me-name-k8s-test > {bin_dir}/clusters;; esac')
    assert _script(bin_dir, tmp_path, "create").returncode == 0
    assert _script(bin_dir, tmp_path, "create").returncode == 0
    calls = (bin_dir / "calls").read_text().splitlines()
    creates = [c for c in calls if c.startswith("kind create cluster")]
    assert len(creates) == 1 and "--name me-name-k8s-test" in creates[0]
    assert "--image kindest/node:v1.31.14@sha256:" in creates[0]
    assert any(c.startswith("kind export kubeconfig --name me-name-k8s-test") for c in calls)


def test_kind_script_explains_a_docker_daemon_that_does_not_answer(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    _stub(bin_dir, "docker", 'echo "Cannot connect to the Docker daemon" >&2; exit 1')
    done = _script(bin_dir, tmp_path, "engine")
    assert done.returncode == 1
    assert "Cannot connect to the Docker daemon" in done.stderr and "systemctl start docker" in done.stderr


def test_names_default_from_user(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("USER", "Jane.Doe")
    names = pg_common.Names.from_env({})
    assert (names.kind_cluster, names.paasta_cluster) == ("jane-doe-k8s-test", "kind-jane-doe-k8s-test")
    assert os.environ["USER"] == "Jane.Doe"


def test_generate_skips_a_service_without_git_url_and_goes_on_after_a_failure(tmp_path: Path) -> None:
    """A service dropped in as docs/playground.md shows (no git_url, hand-written deployments.json)
    is skipped with one line and keeps its file; a failing service does not stop the others."""
    soa, repos = tmp_path / "soa", tmp_path / "repos"
    manual = {"v2": {"deployments": {"prod": {"docker_image": "services-manual:paasta-" + "a" * 40,
                                               "git_sha": "a" * 40}}, "controls": {}}}
    files = {
        "aaa/service.yaml": f"git_url: {tmp_path / 'missing-repo'}\n",  # sorts first, fails
        "aaa/kubernetes-c1.yaml": "main: {deploy_group: prod}\n",
        "good/service.yaml": f"git_url: {repos / 'good'}\n",
        "good/kubernetes-c1.yaml": "main: {deploy_group: prod}\n",
        "manual/kubernetes-c1.yaml": "main: {deploy_group: prod}\n",
        "manual/deployments.json": json.dumps(manual),
    }
    for name, text in files.items():
        (soa / name).parent.mkdir(parents=True, exist_ok=True)
        (soa / name).write_text(text)
    tagged = ensure_repo(SoaDir(str(soa)).load_service("good"), repos_dir=repos, sources=tmp_path)
    assert tagged.tagged
    tally = generate_all(soa)
    assert (tally.done, tally.skipped, tally.failed) == (["good"], ["manual"], ["aaa"])
    assert tally.exit_code == 1
    assert tally.line() == ("generate_deployments_for_service: 1 done, 1 skipped (manual), 1 failed (aaa)")
    assert json.loads((soa / "manual" / "deployments.json").read_text()) == manual
    good = json.loads((soa / "good" / "deployments.json").read_text())["v2"]["deployments"]
    assert set(good) == {"prod"}


def test_makefile_loops_never_stop_at_the_first_service() -> None:
    makefile = (PLAYGROUND.parent / "Makefile").read_text()
    assert "set -e" not in makefile
    recipes = {"generate_deployments_for_service": "$(PLAYGROUND) generate",
               "playground-render": "$(PLAYGROUND) render --cluster",
               "playground-render-summary": "$(PLAYGROUND) render --summary"}
    for target, command in recipes.items():
        recipe = makefile.split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
        assert command in recipe, target
    # setup and image deploy the services that generate fine even when one fails there
    for target in ("setup-kubernetes-job", "playground-image", "playground-deployd"):
        assert makefile.split(f"\n{target}:", 1)[1].split("##", 1)[0].split() == [
            "k8s_fake_cluster", "playground-generated"]
    assert "\t-$(PLAYGROUND_ENV) $(PLAYGROUND) generate" in makefile


def test_render_summary_is_one_line_per_object() -> None:
    document = {"kind": "List", "items": [
        {"kind": "Namespace", "metadata": {"name": "paastasvc-web"}},
        {"kind": "Deployment", "metadata": {"name": "web-main", "namespace": "paastasvc-web"},
         "spec": {"replicas": 2, "template": {"spec": {"containers": [{"image": "reg/web:paasta-abc"}]}}}},
        {"kind": "HorizontalPodAutoscaler", "metadata": {"name": "web-main", "namespace": "paastasvc-web"},
         "spec": {"minReplicas": 2, "maxReplicas": 5}},
    ]}
    assert summary_lines("web", document) == [
        "web: Namespace paastasvc-web",
        "web: Deployment paastasvc-web/web-main  replicas=2  image=reg/web:paasta-abc",
        "web: HorizontalPodAutoscaler paastasvc-web/web-main  replicas=2..5",
    ]


def test_image_stage_is_skipped_with_the_reason_when_nothing_can_build() -> None:
    plan = plan_stages(cluster_reason=None, missing=lambda name: None, image_reason="no container engine")
    assert {stage.target: why for stage, why in plan.skipped} == {"playground-image": "no container engine"}
    assert [s.target for s in plan.run][-2:] == ["setup-kubernetes-job", "playground-wait"]
    text = summary(run_plan(plan, "make", lambda argv: 0), None, "")
    assert "skipped  sample images built and loaded into Kind  (make playground-image): no container engine" \
        in text
    assert "done     sample images" not in text


def test_a_failed_stage_stops_only_the_stages_that_need_it() -> None:
    plan = plan_stages(cluster_reason=None, missing=lambda name: None)
    calls: list[list[str]] = []

    def run_make(argv: list[str]) -> int:
        calls.append(argv)
        return 1 if argv[-1] in ("generate_deployments_for_service", "setup-kubernetes-job") else 0

    outcomes = {o.stage.target: (o.state, o.why) for o in run_plan(plan, "make", run_make)}
    assert outcomes["generate_deployments_for_service"][0] == "failed"
    assert outcomes["playground-validate"] == ("done", "")
    assert outcomes["setup-kubernetes-job"][0] == "failed"
    assert outcomes["playground-wait"] == ("skipped", "make setup-kubernetes-job failed")
    setup = next(argv for argv in calls if argv[-1] == "setup-kubernetes-job")
    marked_done = {setup[i + 1] for i, arg in enumerate(setup) if arg == "-o"}
    assert {"generate_deployments_for_service", "playground-generated"} <= marked_done  # not run twice
