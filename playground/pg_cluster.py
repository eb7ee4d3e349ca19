"""Which cluster the playground talks to, and getting the sample images into it.

The rule (stated once, used by every target): when `$KUBECONFIG` is set and its cluster answers,
the playground uses it and says so; otherwise it uses the Kind cluster's kubeconfig
`k8s_itests/kubeconfig` (created by `make k8s_fake_cluster`). Container engine and kind checks
live in `scripts/kind-cluster.sh`; this module calls it rather than repeating them.

Images: for every deployed version in a playground service's deployments.json whose commit has a
Dockerfile, build `<docker_registry>/<docker_image>` from that commit (`git archive <sha> |
docker build -`, so the image is exactly what was deployed) and load it into Kind. No registry,
no credentials.
"""

from __future__ import annotations

import os
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pg_common import KIND_KUBECONFIG, KIND_SCRIPT, SOA_DIR, Names, relative, run, show
from pg_repos import local_repo_path

from paasta_lite.config.soa_config import SoaDir
from paasta_lite.config.system_config import SystemConfig
from paasta_lite.errors import ConfigError

PROBE_TIMEOUT_S = 5.0


@dataclass(frozen=True)
class Probe:
    ok: bool
    detail: str  # the server URL when ok, else why not


def probe(kubeconfig: str | None, timeout: float = PROBE_TIMEOUT_S) -> Probe:
    """Does the cluster of `kubeconfig` (None: `$KUBECONFIG`) answer GET /version within `timeout`?

    Runs in a daemon thread so an unroutable server cannot hold us past the deadline (the
    client's connect timeout is longer than we want to wait here).
    """
    result: list[Probe] = []

    def attempt() -> None:
        from paasta_lite.kube.client import KubeClient
        from paasta_lite.kube.errors import KubeError

        try:
            with KubeClient(kubeconfig=kubeconfig, attempts=1, timeout=timeout) as client:
                version = client.version().get("gitVersion", "?")
                result.append(Probe(True, f"{client.host} (Kubernetes {version})"))
        except KubeError as error:
            result.append(Probe(False, str(error).splitlines()[0][:300]))

    thread = threading.Thread(target=attempt, daemon=True)
    thread.start()
    thread.join(timeout + 1)
    return result[0] if result else Probe(False, f"no answer within {timeout:.0f}s")


def current_context(kubeconfig: str) -> str | None:
    """The current-context of a single kubeconfig file, or None."""
    if os.pathsep in kubeconfig or not Path(kubeconfig).is_file():
        return None
    try:
        from kubernetes import config as kube_config

        config: Any = kube_config
        _, active = config.list_kube_config_contexts(config_file=kubeconfig)
    except (kube_config.ConfigException, OSError, ValueError):
        return None
    return str(active["name"]) if active else None


@dataclass(frozen=True)
class Resolution:
    kubeconfig: str
    source: str  # "user" (your $KUBECONFIG) or "kind" (k8s_itests/kubeconfig)
    message: str
    kind_cluster: str | None  # the Kind cluster to load images into, when there is one


def resolve(names: Names, env: dict[str, str] | None = None) -> Resolution:
    """Apply the rule in the module docstring (probes the user's cluster, not the Kind one)."""
    env = dict(os.environ) if env is None else env
    kind_path = str(KIND_KUBECONFIG)
    user = env.get("KUBECONFIG", "")
    kind = Resolution(kind_path, "kind", f"Using the Kind cluster {names.kind_cluster} "
                      f"(kubeconfig {relative(KIND_KUBECONFIG)}).", names.kind_cluster)
    if not user or os.path.abspath(user) == kind_path:
        return kind
    result = probe(user)
    if not result.ok:
        note = (f"KUBECONFIG={user} does not answer ({result.detail}); ignoring it and using the Kind "
                f"cluster {names.kind_cluster} (kubeconfig {relative(KIND_KUBECONFIG)}) instead.")
        return Resolution(kind_path, "kind", note, names.kind_cluster)
    context = current_context(user) or ""
    kind_name = context[len("kind-"):] if context.startswith("kind-") else None
    return Resolution(user, "user", f"Using the cluster in your KUBECONFIG={user} (context "
                      f"{context or '?'}, {result.detail}): not creating a Kind cluster.", kind_name)


def kind_script(*args: str, capture: bool = False) -> subprocess.CompletedProcess[str]:
    return run(["bash", str(KIND_SCRIPT), *args], check=False, capture=capture)


def container_engine() -> tuple[str | None, str]:
    """("docker"|"podman", "") when one answers, else (None, the exact fix message)."""
    done = kind_script("engine", capture=True)
    if done.returncode == 0:
        return done.stdout.strip(), ""
    return None, (done.stderr or done.stdout).strip()


@dataclass(frozen=True)
class ImageJob:
    service: str
    image: str  # full reference, registry included
    repo: Path | None
    git_sha: str


def image_jobs(system: SystemConfig, soa_dir: Path = SOA_DIR) -> tuple[list[ImageJob], list[str]]:
    """Every deployed image of the playground services, and notes about ones we cannot build."""
    jobs: dict[str, ImageJob] = {}
    notes: list[str] = []
    soa = SoaDir(str(soa_dir))
    for name in soa.list_services():
        try:
            service = soa.load_service(name)
        except ConfigError as error:
            notes.append(f"{name}: cannot be loaded ({error.problems[0]}); no image built for it")
            continue
        if service.deployments is None:
            notes.append(f"{name}: no deployments.json yet (make generate_deployments_for_service)")
            continue
        registry = service.docker_registry or system.docker_registry or ""
        repo = local_repo_path(service.git_url)
        for version in service.deployments.deployments.values():
            image = f"{registry}/{version.docker_image}" if registry else version.docker_image
            jobs.setdefault(image, ImageJob(name, image, repo, version.git_sha))
    return sorted(jobs.values(), key=lambda job: job.image), notes


def image_present(engine: str, image: str) -> bool:
    return run([engine, "image", "inspect", image], check=False, capture=True).returncode == 0


def has_dockerfile(repo: Path, sha: str) -> bool:
    command = ["git", "-C", str(repo), "cat-file", "-e", f"{sha}:Dockerfile"]
    return run(command, check=False, capture=True).returncode == 0


def build_image(engine: str, job: ImageJob) -> None:
    """`git archive <sha> | <engine> build -t <image> -`: the image is exactly the deployed commit."""
    assert job.repo is not None
    archive = ["git", "-C", str(job.repo), "archive", "--format=tar", job.git_sha]
    build = [engine, "build", "--quiet", "-t", job.image, "-"]
    print(f"+ {' '.join(archive)} | {' '.join(build)}", flush=True)
    with subprocess.Popen(archive, stdout=subprocess.PIPE) as producer:
        built = run(build, check=False, stdin=producer.stdout.fileno() if producer.stdout else None)
        if producer.stdout:
            producer.stdout.close()
    if producer.returncode or built.returncode:
        raise RuntimeError(f"building {job.image} failed (see the output above)")


def buildable(job: ImageJob) -> str | None:
    """Why `job` cannot be built locally, or None."""
    if job.repo is None or not (job.repo / ".git").exists():
        return f"{job.service}: {job.image} has no local repository to build from; it must be pullable"
    if not has_dockerfile(job.repo, job.git_sha):
        return f"{job.service}: commit {job.git_sha[:12]} has no Dockerfile; {job.image} must be pullable"
    return None


def load_images(images: list[str], resolution: Resolution) -> None:
    """Load images into the Kind cluster (none to load into: say what to do instead)."""
    if not images:
        return
    if resolution.kind_cluster is None:
        print("The cluster in your KUBECONFIG is not a Kind cluster: push these images to a registry it "
              "can pull from and set docker_registry in etc_paasta_playground/docker_registry.json:")
        for image in images:
            print(f"  {image}")
        return
    argv = ["bash", str(KIND_SCRIPT), "load", resolution.kind_cluster, *images]
    show(argv)
    run(argv)
