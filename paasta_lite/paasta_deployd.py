"""paasta_deployd: keep the cluster matching soa-configs continuously, reacting in seconds.

    paasta_deployd -d SOA_DIR -c CLUSTER [--resync 300] [--concurrency N] [--leader-elect]
                   [--lease-seconds 30] [--metrics-port P]
                   [--print-manifests [--namespace NS] [--image IMAGE]]
    python -m paasta_lite.paasta_deployd ...

The long-running form of `setup_kubernetes_job` + `cleanup_kubernetes_jobs`, on the same
library (`controller/` wires it; `kube.reconcile_plan` decides, `kube.plan_writer` writes): it
watches the managed Deployments (and HPAs, PDBs) and scans the soa dir every second, and
reconciles only the service.instances a change affects — a soa edit or a new deployments.json
entry is applied, a hand edit reverted, a deleted Deployment recreated, an instance removed from
soa-configs deleted (same kill threshold; never on a doubt). A full resync every ``--resync``
seconds repairs anything missed. ``--metrics-port`` serves /healthz, /readyz and Prometheus /metrics.

Writes happen only under the cluster's run lock, the Lease the cron entry points take
(`controller/leader`): with ``--leader-elect`` the leader holds it while it leads (several
replicas; the others wait to take over); without, deployd takes it around each write batch.

One log line per action on stderr, and the same deploy event log as the cron entry points.
SIGTERM (or Ctrl-C): stop taking work, finish in-flight writes, release the Lease, exit 0. The system config
(``PAASTA_SYSTEM_CONFIG_DIR``) is read once at start: restart deployd after changing it.
"""

from __future__ import annotations

import logging
import signal
import sys
from typing import Any

import click

from paasta_lite.cli.base import CONTEXT_SETTINGS, PaastaCommand
from paasta_lite.cli.options import cluster_option, soa_dir_option, verbose_option
from paasta_lite.config.soa_config import SoaDir
from paasta_lite.config.system_config import load_system_config
from paasta_lite.controller import manifests
from paasta_lite.controller.leader import make_elector
from paasta_lite.controller.loop import Deployd, Settings
from paasta_lite.kube.client import KubeClient
from paasta_lite.kube.run_lock import DEFAULT_LEASE_SECONDS, LEASE_NAME, identity


def configure_logging(verbose: int) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("paasta_lite")
    logger.handlers[:] = [handler]
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    logger.propagate = False


@click.command("paasta_deployd", cls=PaastaCommand, context_settings=CONTEXT_SETTINGS)
@soa_dir_option
@cluster_option()
@click.option("--resync", type=click.FloatRange(min=1.0), default=300.0, show_default=True,
              help="Seconds between full resyncs (every instance reconciled, every service reloaded).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=4, show_default=True,
              help="Worker threads reconciling at the same time.")
@click.option("--leader-elect", is_flag=True,
              help="Run several replicas; only the holder of the cluster's Lease writes (and keeps it).")
@click.option("--lease-seconds", type=click.IntRange(3, 300), default=DEFAULT_LEASE_SECONDS,
              show_default=True,
              help="Duration of the Lease while deployd holds it: how long a killed leader blocks the next.")
@click.option("--lease-name", default=LEASE_NAME, hidden=True,
              help="Another Lease than the cron jobs' (paasta-lite-system/NAME): only for tests that must "
                   "not block other runs on a shared cluster.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None,
              help="Serve /healthz, /readyz and /metrics on this port (0: any free port).")
@click.option("--metrics-host", default="0.0.0.0", show_default=True, help="Address for --metrics-port.")
@click.option("--scan-interval", type=click.FloatRange(min=0.05), default=1.0, show_default=True,
              help="Seconds between scans of the soa dir for changes.")
@click.option("-t", "--kill-threshold", type=click.FloatRange(0.0, 1.0), default=0.5, show_default=True,
              help="Refuse deletions when more than this fraction of the managed apps would go.")
@click.option("--settle", type=click.FloatRange(min=0.0), default=10.0, show_default=True,
              help="Delete only once the soa dir has been unchanged this many seconds.")
@click.option("--print-manifests", is_flag=True,
              help="Print the Kubernetes objects that run deployd in the cluster, and exit.")
@click.option("--namespace", default=manifests.DEFAULT_NAMESPACE, show_default=True,
              help="With --print-manifests: deployd's namespace.")
@click.option("--image", default=manifests.DEFAULT_IMAGE, show_default=True,
              help="With --print-manifests: the paasta_lite image to run.")
@verbose_option
def paasta_deployd(soa_dir: str, cluster: str | None, resync: float, concurrency: int, leader_elect: bool,
                   lease_seconds: int, lease_name: str, metrics_port: int | None, metrics_host: str,
                   scan_interval: float, kill_threshold: float, settle: float, print_manifests: bool,
                   namespace: str, image: str, verbose: int) -> None:
    """Reconcile the cluster with soa-configs continuously (watch + work queue)."""
    if print_manifests:
        click.echo(manifests.to_yaml(manifests.manifests(namespace=namespace, image=image, cluster=cluster)),
                   nl=False)
        return
    system = load_system_config()
    cluster_name = system.require_cluster(cluster)
    SoaDir(soa_dir).check()  # a mistyped -d is a usage error; a soa dir that vanishes later is a doubt
    settings = Settings(soa_dir=soa_dir, cluster=cluster_name, resync=resync, concurrency=concurrency,
                        scan_interval=scan_interval, kill_threshold=kill_threshold, settle=settle,
                        metrics_host=metrics_host, metrics_port=metrics_port)
    configure_logging(verbose)
    with KubeClient(pool_size=concurrency + 2) as client, KubeClient() as watch_client:
        elector = make_elector(leader_elect, client, identity=identity("paasta_deployd"),
                               lease_seconds=lease_seconds, lease_name=lease_name)
        deployd = Deployd(settings, system=system, client=client, watch_client=watch_client, elector=elector)

        def stop(signum: int, _frame: Any) -> None:
            logging.getLogger("paasta_lite.deployd").info("%s received", signal.Signals(signum).name)
            deployd.request_stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        deployd.run()


def main() -> None:
    paasta_deployd.main(prog_name="paasta_deployd")


if __name__ == "__main__":
    main()
