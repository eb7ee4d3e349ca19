"""A stand-in cluster for checking this suite's own logic where no real cluster can run.

    python k8s_itests/fake_cluster.py --kubeconfig /tmp/fake.kubeconfig &
    KUBECONFIG=/tmp/fake.kubeconfig ITEST_ASSUME_IMAGES=1 python -m pytest k8s_itests

It serves the fake API server from `tests/fake_apiserver.py` (real HTTP, API-server validation)
and plays the Deployment controller and kubelet every `--interval` seconds: every Deployment
settles with all pods Ready, and each pod prints one log line. It proves the suite drives the
entry points correctly; it proves nothing about real Kubernetes behaviour — run the suite against
Kind (`make k8s_itests`) for that.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from fake_apiserver import FakeApiServer


def tick(server: FakeApiServer, logged: set[tuple[str, str]]) -> None:
    server.settle_all(ready=True)
    for pod in server.list_objects("pods"):
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        if key not in logged:
            server.append_log(key[0], key[1], f"fake kubelet: {key[1]} started")
            logged.add(key)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--interval", type=float, default=0.5)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with FakeApiServer() as server:
        server.write_kubeconfig(args.kubeconfig, context="fake")
        print(f"fake cluster at {server.url}; kubeconfig {args.kubeconfig}", flush=True)
        logged: set[tuple[str, str]] = set()
        while True:
            tick(server, logged)
            time.sleep(args.interval)


if __name__ == "__main__":
    sys.exit(main())
