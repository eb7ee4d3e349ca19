"""A stand-in cluster for checking this suite's own logic where no real cluster can run.

    python k8s_itests/fake_cluster.py --kubeconfig /tmp/fake.kubeconfig &
    KUBECONFIG=/tmp/fake.kubeconfig ITEST_ASSUME_IMAGES=1 python -m pytest k8s_itests

It serves the fake API server from `tests/fake_apiserver.py` (real HTTP, API-server validation)
and plays the Deployment controller and kubelet every `--interval` seconds, as a real cluster
would behave for the playground's hello_world image:

- pods are not Ready until their readiness probe's `initialDelaySeconds` has passed since the
  Deployment's current spec (template + replicas) was first seen; pods that were already Ready
  stay Ready. So pods take time, and a suite that assumes instant readiness fails here too;
- while the new pods are not Ready, a RollingUpdate keeps the old ReplicaSet's pods (a bounce in
  progress); Recreate (downthenup) drops them first;
- each container prints one line when it starts (not naming the pod: `paasta logs` must).

It proves the suite drives the entry points correctly; it proves nothing about real Kubernetes
behaviour (deletes here are synchronous, for one) — run the suite against Kind
(`make k8s_itests`) for that.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_apiserver import FakeApiServer, template_hash

SpecKey = tuple[str, str, str, int]


def readiness_delay(deployment: dict[str, Any]) -> float:
    """The longest readiness `initialDelaySeconds` among the template's containers (0 if none)."""
    containers = deployment["spec"]["template"].get("spec", {}).get("containers", [])
    return max((float((c.get("readinessProbe") or {}).get("initialDelaySeconds", 0)) for c in containers),
               default=0.0)


def ready_pods(server: FakeApiServer, namespace: str, pod_hash: str) -> int:
    pods = server.list_objects("pods", namespace, f"pod-template-hash={pod_hash}")
    return sum(1 for pod in pods if any(c.get("type") == "Ready" and c.get("status") == "True"
                                        for c in pod.get("status", {}).get("conditions", [])))


def settle_one(server: FakeApiServer, deployment: dict[str, Any], first_seen: dict[SpecKey, float]) -> None:
    meta, spec = deployment["metadata"], deployment["spec"]
    pod_hash = template_hash(spec["template"])
    replicas = int(spec.get("replicas", 1))
    key = (meta["namespace"], meta["name"], pod_hash, replicas)
    started = first_seen.setdefault(key, time.monotonic())
    if time.monotonic() - started >= readiness_delay(deployment):
        server.settle(meta["namespace"], meta["name"], ready=True)
        return
    rolling = (spec.get("strategy") or {}).get("type", "RollingUpdate") == "RollingUpdate"
    already = min(replicas, ready_pods(server, meta["namespace"], pod_hash))
    server.settle(meta["namespace"], meta["name"], ready=False, ready_count=already, keep_old=rolling)


def tick(server: FakeApiServer, first_seen: dict[SpecKey, float], logged: set[tuple[str, str]]) -> None:
    for deployment in server.list_objects("deployments"):
        try:
            settle_one(server, deployment, first_seen)
        except KeyError:  # deleted meanwhile
            continue
    for pod in server.list_objects("pods"):
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        if key not in logged:
            server.append_log(key[0], key[1], "fake kubelet: container started")
            logged.add(key)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--interval", type=float, default=0.5)
    parser.add_argument("--context", default="fake",
                        help="kube context name; kind-<name> makes it look like a Kind cluster")
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with FakeApiServer() as server:
        server.write_kubeconfig(args.kubeconfig, context=args.context)
        print(f"fake cluster at {server.url}; kubeconfig {args.kubeconfig}", flush=True)
        first_seen: dict[SpecKey, float] = {}
        logged: set[tuple[str, str]] = set()
        while True:
            tick(server, first_seen, logged)
            time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
