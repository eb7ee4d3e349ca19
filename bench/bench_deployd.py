"""Benchmark: paasta_deployd over 2,000 instances (500 services x 4) against the fake API server.

Run with `.venv/bin/python bench/bench_deployd.py [--changes 20] [--idle 60]`. Not a test: it
prints numbers.

deployd runs as a real subprocess (`python -m paasta_lite.paasta_deployd`), so its CPU time is
its own (read from /proc); the fake API server runs in this process. Measures:
- the first full sync: every Deployment created from an empty cluster (server-side apply, each
  write batch under the cluster's Lease, as without ``--leader-elect``);
- idle: process CPU time / wall time over ``--idle`` seconds with nothing changing (a full
  resync falls inside the window: ``--resync`` is set so that one does), and the writes it made
  (target: none);
- time to the write: one instance's `instances` edited in its kubernetes-<cluster>.yaml, timed
  until the fake server holds the new replica count, ``--changes`` times at random moments
  (p50 / p95 / max; target p95 < 2 s), with a full resync of all 2,000 keys among them.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fake_apiserver import FakeApiServer  # noqa: E402

from bench.soa_tree import CLUSTER, write_tree  # noqa: E402
from paasta_lite.config.naming import app_name, namespace_for  # noqa: E402

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Deployd:
    """The deployd subprocess and its log lines (with arrival times)."""

    def __init__(self, soa: Path, etc: Path, kubeconfig: str, resync: float) -> None:
        env = {**os.environ, "KUBECONFIG": kubeconfig, "PAASTA_SYSTEM_CONFIG_DIR": str(etc),
               "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1", "HOME": str(etc)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "paasta_lite.paasta_deployd", "-d", str(soa), "--resync", str(resync),
             "--metrics-port", "0", "--metrics-host", "127.0.0.1"],
            cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
        self.lines: list[tuple[float, str]] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            with self._lock:
                self.lines.append((time.monotonic(), line.rstrip("\n")))

    def wait_for_line(self, pattern: str, timeout: float) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for at, line in self.lines:
                    if re.search(pattern, line):
                        return at, line
            if self.process.poll() is not None:
                break
            time.sleep(0.05)
        tail = "\n".join(line for _, line in self.lines[-30:])
        raise SystemExit(f"deployd never logged {pattern!r}:\n{tail}")

    def metrics(self) -> str:
        _, line = self.wait_for_line(r"serving /healthz", 5)
        port = line.rsplit(":", 1)[1]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return str(response.read().decode())

    def stop(self) -> int:
        self.process.terminate()
        return self.process.wait(timeout=60)


def wait_for_replicas(server: FakeApiServer, namespace: str, name: str, replicas: int, *,
                      timeout: float) -> float:
    """Seconds until the Deployment has ``replicas`` (woken by the fake server's change signal)."""
    started = time.monotonic()
    cluster = server.cluster
    with cluster.changed:
        while time.monotonic() - started < timeout:
            obj = cluster.objects["deployments"].get((namespace, name))
            if obj is not None and obj["spec"].get("replicas") == replicas:
                return time.monotonic() - started
            cluster.changed.wait(0.05)
    raise SystemExit(f"{namespace}/{name} never reached {replicas} replicas")


def change_one(soa: Path, server: FakeApiServer) -> float:
    """Edit `inst0` of a random service to a new instance count; seconds until the write landed."""
    name = f"service_{random.randrange(500):04d}"
    path = soa / name / f"kubernetes-{CLUSTER}.yaml"
    text = path.read_text()
    match = re.search(r"instances: (\d+)", text)
    assert match is not None
    current = int(match.group(1))
    wanted = current % 30 + 1  # always a different count
    started = time.monotonic()
    path.write_text(text.replace(f"instances: {current}", f"instances: {wanted}", 1))
    wait_for_replicas(server, namespace_for(name), app_name(name, "inst0"), wanted, timeout=30)
    return time.monotonic() - started


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--changes", type=int, default=20)
    parser.add_argument("--idle", type=float, default=60.0)
    args = parser.parse_args()
    random.seed(13)
    with tempfile.TemporaryDirectory() as tmp, FakeApiServer() as server:
        server.cluster.watch_log.bookmark_interval = 60.0  # about what a real API server does
        soa = write_tree(Path(tmp))
        etc = Path(tmp) / "etc_paasta"
        kubeconfig = server.write_kubeconfig(Path(tmp) / "kubeconfig")
        resync = args.idle * 2 / 3  # one full resync falls inside the idle window, one among the edits
        deployd = Deployd(soa, etc, kubeconfig, resync)
        started, _ = deployd.wait_for_line(r"started for cluster", 120)
        synced, _ = deployd.wait_for_line(r"first full sync done", 600)
        created = len(server.list_objects("deployments"))
        print(f"first full sync: {created} Deployments created in {synced - started:.1f} s "
              f"({server.count('PATCH', '/deployments/')} Deployment PATCHes: applies and companions "
              f"records, {server.count('PATCH', '/poddisruptionbudgets/')} PDB applies, "
              f"{server.count('POST', '/namespaces$')} namespace POSTs, "
              f"{server.count(path='/leases')} Lease requests)")
        quiet_since = time.monotonic()  # our own creates come back as watch events: let them settle
        while time.monotonic() - quiet_since < 3 and time.monotonic() - synced < 120:
            before = cpu_seconds(deployd.process.pid)
            time.sleep(0.5)
            if cpu_seconds(deployd.process.pid) - before > 0.05:
                quiet_since = time.monotonic()
        print(f"quiet {time.monotonic() - synced:.1f} s after the first full sync")

        server.reset_counts()
        samples = []
        cpu0, wall0 = cpu_seconds(deployd.process.pid), time.monotonic()
        for _ in range(int(args.idle)):
            before = cpu_seconds(deployd.process.pid)
            time.sleep(1)
            samples.append(cpu_seconds(deployd.process.pid) - before)
        cpu, wall = cpu_seconds(deployd.process.pid) - cpu0, time.monotonic() - wall0
        resyncs = sum(1 for at, line in deployd.lines if "full resync" in line and at > wall0)
        median, busiest = 100 * statistics.median(samples), 100 * max(samples)
        print(f"idle {wall:.0f} s: CPU {cpu:.2f} s = {100 * cpu / wall:.1f}% of one core "
              f"(median second {median:.1f}%, busiest second {busiest:.0f}%; {resyncs} full resync in "
              f"the window); {len(server.requests)} requests, {len(server.writes())} writes "
              f"({server.count(path='/leases')} Lease requests)")

        latencies = []
        edits_started = time.monotonic()
        for _ in range(args.changes):
            time.sleep(random.uniform(0.3, 1.3))  # land anywhere in the scan interval
            latencies.append(change_one(soa, server))
        p50, p95 = percentile(latencies, 0.5), percentile(latencies, 0.95)
        overlapping = sum(1 for at, line in deployd.lines if "full resync" in line and at > edits_started)
        print(f"time to the write over {len(latencies)} one-instance edits ({overlapping} full resync "
              f"meanwhile): p50 {p50:.2f} s, p95 {p95:.2f} s, max {max(latencies):.2f} s")
        print("  all: " + " ".join(f"{x:.2f}" for x in sorted(latencies)))
        surprises = [line for at, line in deployd.lines
                     if at > synced and re.search(r" (deleted|created) ", line)]
        print(f"unexpected actions after the first sync: {len(surprises)}")
        for line in surprises[:10]:
            print("  " + line)
        metrics = deployd.metrics()
        writes = [line for line in metrics.splitlines() if line.startswith("paasta_deployd_writes_total")]
        print("deployd metrics: " + "; ".join(writes))
        code = deployd.stop()
        print(f"SIGTERM: exit code {code}")
    print(f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs)")


if __name__ == "__main__":
    main()
