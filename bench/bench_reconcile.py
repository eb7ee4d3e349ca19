"""Benchmark: setup_kubernetes_job over 2,000 instances (500 services x 4) against the fake API server.

Run with `.venv/bin/python bench/bench_reconcile.py`. Not a test: it prints numbers.

Measures, in one process:
- load + render of all instances (what every run pays before talking to the cluster);
- the first deploy into an empty fake API server (HTTP requests, wall time);
- a no-op run with everything in place: HTTP requests (target: independent of the number of
  instances — one list, zero writes) and wall time (target: under 3 s);
- a run after one instance changed (one PUT).
The fake server runs in this process, so its CPU time is included in the wall times (a real
API server would take that work off our hands, but add network latency per request).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from click.testing import CliRunner  # noqa: E402
from fake_apiserver import FakeApiServer  # noqa: E402

from bench.soa_tree import CLUSTER, write_tree  # noqa: E402
from paasta_lite.config.soa_config import SoaDir  # noqa: E402
from paasta_lite.config.system_config import load_system_config  # noqa: E402
from paasta_lite.kube.render import render_service_instances  # noqa: E402
from paasta_lite.setup_kubernetes_job import setup_kubernetes_job  # noqa: E402


def time_render(soa: Path, system_dir: str) -> tuple[int, float, float]:
    start = time.perf_counter()
    cluster = SoaDir(soa).instances_for_cluster(CLUSTER)
    loaded = time.perf_counter()
    system = load_system_config(system_dir)
    count = 0
    for service in cluster.services.values():
        rendered, errors = render_service_instances(service, CLUSTER, system)
        assert not errors, errors
        count += len(rendered)
    return count, loaded - start, time.perf_counter() - loaded


def run_setup(server: FakeApiServer, soa: Path, env: dict[str, str], label: str) -> str:
    server.reset_counts()
    start = time.perf_counter()
    result = CliRunner().invoke(setup_kubernetes_job, ["-d", str(soa)], env=env)
    elapsed = time.perf_counter() - start
    assert result.exit_code == 0, result.output[-2000:]
    requests, writes = len(server.requests), len(server.writes())
    print(f"{label}: {elapsed:.2f} s, {requests} HTTP requests ({writes} writes) "
          f"-- {result.stdout.splitlines()[-1]}")
    return result.stdout


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        soa = write_tree(Path(tmp))
        system_dir = str(Path(tmp) / "etc_paasta")
        count, load_s, render_s = time_render(soa, system_dir)
        print(f"load {count} instances: {load_s:.2f} s; render them: {render_s:.2f} s")
        with FakeApiServer() as server:
            kubeconfig = server.write_kubeconfig(Path(tmp) / "kubeconfig")
            env = {"KUBECONFIG": kubeconfig, "PAASTA_SYSTEM_CONFIG_DIR": system_dir, "KUBECONTEXT": ""}
            run_setup(server, soa, env, "first deploy into an empty cluster")
            server.settle_all()
            for attempt in (1, 2):
                run_setup(server, soa, env, f"no-op run #{attempt}")
            instance_file = soa / "service_0007" / f"kubernetes-{CLUSTER}.yaml"
            instance_file.write_text(instance_file.read_text().replace("instances: 1", "instances: 5", 1))
            run_setup(server, soa, env, "one instance changed")
    print(f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
