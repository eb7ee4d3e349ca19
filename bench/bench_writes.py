"""Benchmark: how setup_kubernetes_job writes 2,000 instances (500 services x 4), serial vs parallel.

    .venv/bin/python bench/bench_writes.py                 # fake API server, 20 ms per request
    .venv/bin/python bench/bench_writes.py --latency 0.05  # another latency
    KUBECONFIG=... .venv/bin/python bench/bench_writes.py --real [--cleanup]

Not a test: it prints numbers. With the fake API server (in this process, over real HTTP) every
request first waits ``--latency`` seconds, as network and API server would, and the fake counts
requests itself. It runs a first deploy and a no-op run with ``--concurrency 1`` (serial, what
paasta_lite did before) and with the default, each into a fresh server.

``--real`` runs against the cluster in KUBECONFIG: namespaces `hlp-writes-NNNN` (one per
service), cluster name `hlp-writes-bench`; requests are counted on our side of the wire (every
request goes through `KubeClient._send`). A first deploy, then a no-op run; ``--cleanup``
deletes the namespaces afterwards (by the managed label and the name prefix).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from click.testing import CliRunner  # noqa: E402
from fake_apiserver import FakeApiServer  # noqa: E402

from bench.soa_tree import write_tree  # noqa: E402
from paasta_lite.kube import labels  # noqa: E402
from paasta_lite.kube.client import KubeClient  # noqa: E402
from paasta_lite.setup_kubernetes_job import setup_kubernetes_job  # noqa: E402

REAL_CLUSTER = "hlp-writes-bench"
REAL_PREFIX = "hlp-writes-"


class Counting:
    """Counts every request `KubeClient` sends (for the real cluster, where we cannot ask the server)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._original: Any = KubeClient._send

    def __enter__(self) -> Counting:
        original = self._original

        def send(client: KubeClient, method: str, path: str, **kwargs: Any) -> Any:
            kind = "lease" if "/leases" in path else method
            with self._lock:
                self.counts[kind] += 1
            return original(client, method, path, **kwargs)

        KubeClient._send = send  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        KubeClient._send = self._original  # type: ignore[method-assign]


def run_setup(soa: Path, env: dict[str, str], concurrency: int) -> tuple[float, str, int]:
    start = time.perf_counter()
    args = ["-d", str(soa), "--concurrency", str(concurrency)]
    result = CliRunner().invoke(setup_kubernetes_job, args, env=env)
    elapsed = time.perf_counter() - start
    last = result.stdout.splitlines()[-1] if result.stdout else result.output[-500:]
    return elapsed, last, result.exit_code


def fake(latency: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        soa = write_tree(Path(tmp))
        system_dir = str(Path(tmp) / "etc_paasta")
        for concurrency in (1, 8):
            with FakeApiServer(latency=latency) as server:
                kubeconfig = server.write_kubeconfig(Path(tmp) / f"kubeconfig-{concurrency}")
                env = {"KUBECONFIG": kubeconfig, "PAASTA_SYSTEM_CONFIG_DIR": system_dir, "KUBECONTEXT": ""}
                for label in ("first deploy", "no-op run"):
                    server.reset_counts()
                    elapsed, last, code = run_setup(soa, env, concurrency)
                    lease = server.count(path="/leases")
                    print(f"concurrency {concurrency}, {label}: {elapsed:.1f} s, "
                          f"{len(server.requests)} requests ({len(server.app_writes())} app writes, "
                          f"{lease} lease) exit {code} -- {last}")
                    server.settle_all()


def real(cleanup: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        soa = write_tree(Path(tmp), cluster=REAL_CLUSTER, namespace_prefix=REAL_PREFIX)
        env = {"KUBECONFIG": os.environ["KUBECONFIG"], "KUBECONTEXT": os.environ.get("KUBECONTEXT", ""),
               "PAASTA_SYSTEM_CONFIG_DIR": str(Path(tmp) / "etc_paasta")}
        (Path(tmp) / "etc_paasta" / "cluster.json").write_text(
            f'{{"cluster": "{REAL_CLUSTER}", "docker_registry": "registry.bench.invalid", "volumes": []}}')
        try:
            for label in ("first deploy", "no-op run"):
                with Counting() as counting:
                    elapsed, last, code = run_setup(soa, env, 8)
                print(f"real cluster, {label}: {elapsed:.1f} s, {sum(counting.counts.values())} requests "
                      f"{dict(counting.counts)} exit {code} -- {last}")
        finally:
            if cleanup:
                delete_namespaces()


def delete_namespaces() -> None:
    start = time.perf_counter()
    with KubeClient() as client:
        doomed = [ns["metadata"]["name"] for ns in client.list_namespaces(labels.MANAGED_SELECTOR)
                  if ns["metadata"]["name"].startswith(REAL_PREFIX)]
        for name in doomed:
            client.delete("Namespace", "", name)
    print(f"deleted {len(doomed)} namespaces {REAL_PREFIX}* in {time.perf_counter() - start:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.02, help="seconds per request (fake server)")
    parser.add_argument("--real", action="store_true", help="use the cluster in KUBECONFIG")
    parser.add_argument("--cleanup", action="store_true", help="with --real: delete the namespaces after")
    parser.add_argument("--cleanup-only", action="store_true", help="only delete the namespaces")
    args = parser.parse_args()
    if args.cleanup_only:
        delete_namespaces()
    elif args.real:
        real(args.cleanup)
    else:
        fake(args.latency)
    print(f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
