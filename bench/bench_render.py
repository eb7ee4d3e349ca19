"""Benchmark: render 2,000 instances (500 services x 4) into Namespaces + Deployments.

Run with `.venv/bin/python bench/bench_render.py`. Loading the soa dir (read, validate, build
InstanceConfigs) is timed separately from rendering (objects + config hashes), because the
reconciler pays for loading once per run whatever the renderer does. Prints best-of-3 times.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.soa_tree import CLUSTER, write_tree
from paasta_lite.config.soa_config import ClusterConfig, SoaDir
from paasta_lite.config.system_config import load_system_config
from paasta_lite.kube.render import RenderedApp, render_service_instances

RUNS = 3


def render_all(cluster: ClusterConfig, system_dir: str) -> list[RenderedApp]:
    system = load_system_config(system_dir)
    apps: list[RenderedApp] = []
    for service in cluster.services.values():
        rendered, errors = render_service_instances(service, CLUSTER, system)
        assert not errors, errors
        apps.extend(rendered)
    return apps


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        soa = write_tree(Path(tmp))
        system_dir = str(Path(tmp) / "etc_paasta")
        load_times, render_times = [], []
        for _ in range(RUNS):
            start = time.perf_counter()
            cluster = SoaDir(soa).instances_for_cluster(CLUSTER)
            load_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            apps = render_all(cluster, system_dir)
            render_times.append(time.perf_counter() - start)
        hashes = {app.config_hash for app in apps}
        assert len(apps) == 2000, len(apps)
        print(f"load {len(cluster.instances)} instances of {len(cluster.services)} services: "
              f"best {min(load_times):.3f}s (runs: {', '.join(f'{t:.3f}' for t in load_times)})")
        print(f"render {len(apps)} Deployments (+namespaces, config hashes): best {min(render_times):.3f}s "
              f"= {min(render_times) / len(apps) * 1e6:.0f} us/instance "
              f"(runs: {', '.join(f'{t:.3f}' for t in render_times)}); {len(hashes)} distinct hashes")


if __name__ == "__main__":
    main()
