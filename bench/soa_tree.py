"""Generate a realistic soa-configs tree for benchmarks: N services x M instances on one cluster."""

from __future__ import annotations

import json
from pathlib import Path

CLUSTER = "bench-cluster"

SERVICE_YAML = """\
description: Benchmark service {index}
external_link: https://example.invalid/{name}
git_url: git@example.invalid:services/{name}.git
cpus: 0.5
mem: 512
env:
  TEAM: bench
  SERVICE_INDEX: "{index}"
"""

INSTANCE_YAML = """\
{name}:
  instances: {replicas}
  cpus: 0.25
  mem: 256
  deploy_group: prod.{name}
  bounce_method: crossover
  healthcheck_mode: http
  healthcheck_uri: /status
  env:
    INSTANCE_NAME: {name}
  extra_volumes:
    - containerPath: /data/{name}
      hostPath: /srv/data/{name}
      mode: RO
"""


def write_tree(root: Path, *, services: int = 500, instances: int = 4, cluster: str = CLUSTER,
               namespace_prefix: str | None = None) -> Path:
    """Write the tree under `root/soa` (plus `root/etc_paasta`) and return the soa dir.

    ``namespace_prefix``: put each service in namespace `<prefix><index>` instead of PaaSTA's
    default (e.g. `hlp-writes-` on a shared cluster, so the benchmark's namespaces are easy to find).
    """
    soa = root / "soa"
    for index in range(services):
        name = f"service_{index:04d}"
        directory = soa / name
        directory.mkdir(parents=True)
        (directory / "service.yaml").write_text(SERVICE_YAML.format(index=index, name=name))
        instance_names = [f"inst{i}" for i in range(instances)]
        (directory / "deploy.yaml").write_text(
            "pipeline:\n" + "".join(f"  - step: prod.{n}\n" for n in instance_names)
        )
        namespace = f"  namespace: {namespace_prefix}{index:04d}\n" if namespace_prefix else ""
        (directory / f"kubernetes-{cluster}.yaml").write_text("".join(
            INSTANCE_YAML.format(name=n, replicas=1 + i % 3) + namespace
            for i, n in enumerate(instance_names)))
        sha = f"{index:040x}"
        deployments = {
            f"prod.{n}": {"docker_image": f"services-{name}:paasta-{sha}", "git_sha": sha}
            for n in instance_names
        }
        document = {"v2": {"deployments": deployments, "controls": {}}}
        (directory / "deployments.json").write_text(json.dumps(document))
    etc = root / "etc_paasta"
    etc.mkdir()
    (etc / "cluster.json").write_text(
        json.dumps({"cluster": cluster, "docker_registry": "registry.bench.invalid", "volumes": []})
    )
    return soa
