"""The deployd run loop: event sources into the work queue, workers out of it.

    informers (watch of managed Deployments, HPAs, PDBs) --job ids--+
    soa scan every `scan_interval` s -----------------------job ids--+--> WorkQueue --> Workers
    full resync every `resync` s (and on leadership) ----------------+        --> Reconciler

The main thread runs `run()`: start everything, then tick every `scan_interval` seconds (scan
the soa dir, notice a change of leadership, start the periodic full resync) until `request_stop`
(SIGTERM). Shutting down stops handing out work, lets the workers finish the batches they hold
(in-flight writes complete), stops the watch, and releases leadership last.

Readiness (`ready`): the first full resync has been reconciled once. Health (`health`): the main
loop keeps ticking and the watch threads are alive.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from paasta_lite.config.system_config import SystemConfig
from paasta_lite.controller.config_cache import ConfigCache
from paasta_lite.controller.informer import MANAGED_COMPANIONS, MANAGED_DEPLOYMENTS, Informer
from paasta_lite.controller.leader import LeaderElector
from paasta_lite.controller.metrics import DeploydMetrics, StatusServer
from paasta_lite.controller.reconcile import Reconciler
from paasta_lite.controller.workqueue import Workers, WorkQueue
from paasta_lite.kube.client import KubeClient

Obj = dict[str, Any]
log = logging.getLogger("paasta_lite.deployd")

#: Services the full resync reloads per tick (~3 ms each): scans keep their pace during a resync.
RELOAD_SLICE = 50


@dataclass(frozen=True)
class Settings:
    """How one deployd runs (the flags of `paasta_deployd`, plus knobs tests turn down)."""

    soa_dir: str
    cluster: str
    resync: float = 300.0
    concurrency: int = 4
    batch: int = 50
    scan_interval: float = 1.0
    kill_threshold: float = 0.5
    #: deletions wait until the soa dir has been unchanged this long (a rewrite is not a removal)
    settle: float = 10.0
    watch_timeout: int = 300
    metrics_host: str = "0.0.0.0"
    metrics_port: int | None = None
    #: /healthz fails when the main loop has not ticked for this long
    stall_after: float = 60.0
    #: seconds shutdown waits for in-flight batches
    drain_timeout: float = 30.0
    #: the run budget's deadline for one batch's writes
    batch_deadline: float = 120.0


class Deployd:
    """One deployd process: owns the queue, the caches, the workers and the status server."""

    def __init__(self, settings: Settings, *, system: SystemConfig, client: KubeClient,
                 watch_client: KubeClient, elector: LeaderElector) -> None:
        self.settings = settings
        self.elector = elector
        self.queue = WorkQueue()
        self.configs = ConfigCache(settings.soa_dir, settings.cluster)
        self.informer = Informer(watch_client, MANAGED_DEPLOYMENTS, self.queue.add_all,
                                 cluster=settings.cluster, watch_timeout=settings.watch_timeout)
        self.companions = [Informer(watch_client, watched, self.queue.add_all, cluster=settings.cluster,
                                    watch_timeout=settings.watch_timeout) for watched in MANAGED_COMPANIONS]
        self.informers = [self.informer, *self.companions]
        self.metrics = DeploydMetrics(queue_depth=self.queue.depth, retries_waiting=self.queue.delayed,
                                      is_leader=elector.is_leader, watch_stats=self.watch_stats)
        self.reconciler = Reconciler(client=client, system=system, cluster=settings.cluster,
                                     configs=self.configs.view, live=self.informer.snapshot,
                                     live_others=self.live_others, file_errors=self.configs.file_errors,
                                     elector=elector, metrics=self.metrics,
                                     kill_threshold=settings.kill_threshold, settle=settings.settle,
                                     batch_deadline=settings.batch_deadline)
        self.workers = Workers(self.queue, self._process, count=settings.concurrency, batch=settings.batch)
        self.server = None if settings.metrics_port is None else StatusServer(
            self.metrics.registry, host=settings.metrics_host, port=settings.metrics_port,
            health=self.health, ready=self.ready)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._lock = threading.Lock()
        self._first_sync: set[str] | None = None
        self._last_tick = time.monotonic()
        self._leading = False
        self._next_resync = 0.0

    # ------------------------------------------------------------------ lifecycle
    def run(self) -> None:
        """Run until `request_stop()`; always shuts down cleanly."""
        try:
            if self.start():
                while not self._stop.wait(self.settings.scan_interval):
                    self.tick()
        finally:
            self.shutdown()

    def request_stop(self) -> None:
        """Ask `run()` to return (safe from a signal handler)."""
        self._stop.set()

    def start(self) -> bool:
        """Start serving status, campaigning and watching; load the soa dir; queue a full resync.
        False when stopped before the first list of Deployments succeeded."""
        if self.server is not None:
            self.server.start()
            where = f"{self.settings.metrics_host}:{self.server.port}"
            log.info("serving /healthz, /readyz, /metrics on %s", where)
        self.elector.start()
        for informer in self.informers:
            informer.start()
        while not all(informer.synced.wait(0.1) for informer in self.informers):
            self._last_tick = time.monotonic()  # waiting for the API server is not being stuck
            if self._stop.is_set():
                return False
        self.configs.scan()  # loads everything; the full resync below queues every key once
        self.workers.start()
        self._leading = self.elector.is_leader()
        log.info("started for cluster %s (%s); %d managed Deployments, %d configured instances",
                 self.settings.cluster, "leader" if self._leading else "follower",
                 len(self.informer.snapshot()), len(self.configs.view().job_ids()))
        self.full_resync(reload=False)
        return True

    def tick(self) -> None:
        """One pass of the main loop."""
        self._last_tick = time.monotonic()
        self.queue.add_all(sorted(self.configs.scan()))
        if self.configs.reloading:  # a slice of the full resync's reload, between two scans
            self.queue.add_all(sorted(self.configs.continue_reload(RELOAD_SLICE)))
        leading = self.elector.is_leader()
        if leading != self._leading:
            self._leading = leading
            log.info("became the leader: full resync" if leading else "lost leadership: writes stop")
            if leading:
                self.full_resync()
        if time.monotonic() >= self._next_resync:
            self.full_resync()

    def full_resync(self, *, reload: bool = True) -> None:
        """Queue every configured and every live job id; reload every service, a slice per tick
        (`RELOAD_SLICE`), queueing what that finds changed."""
        if reload:
            self.configs.start_full_reload()
        keys = self.configs.view().job_ids().union(*(informer.job_ids() for informer in self.informers))
        with self._lock:
            if self._first_sync is None:
                self._first_sync = set(keys)
                if not keys:
                    self._ready.set()
        # sorted: a service's instances share a batch; background: changes go first
        self.queue.add_all(sorted(keys), background=True)
        self.metrics.last_full_resync.set(time.time())
        self._next_resync = time.monotonic() + self.settings.resync
        log.info("full resync: %d instances queued", len(keys))

    def shutdown(self) -> None:
        """Stop taking work, finish in-flight batches, stop watching, then step down."""
        self._stop.set()
        log.info("stopping: finishing in-flight work")
        if not self.workers.stop(timeout=self.settings.drain_timeout):
            log.warning("in-flight work did not finish within %.0f s", self.settings.drain_timeout)
        for informer in self.informers:
            informer.stop()
        self.elector.stop()
        if self.server is not None:
            self.server.stop()
        log.info("stopped")

    # ------------------------------------------------------------------ the worker's step
    def _process(self, keys: list[str]) -> set[str]:
        started = time.monotonic()
        try:
            return self.reconciler(keys)
        finally:
            self.metrics.reconcile_seconds.observe(time.monotonic() - started)
            with self._lock:
                if self._first_sync is not None and not self._ready.is_set():
                    self._first_sync.difference_update(keys)
                    if not self._first_sync:
                        self._ready.set()
                        log.info("first full sync done")

    # ------------------------------------------------------------------ probes
    def ready(self) -> bool:
        return self._ready.is_set()

    def health(self) -> str | None:
        """Why this process should be restarted, or None."""
        stalled = time.monotonic() - self._last_tick
        if stalled > self.settings.stall_after and not self._stop.is_set():
            return f"the main loop has not run for {stalled:.0f} s"
        for informer in self.informers:
            if self._first_sync is not None and not informer.alive() and not self._stop.is_set():
                return f"the watch of managed {informer.watched.kind}s has stopped"
        return None

    # ------------------------------------------------------------------ what the informers hold
    def live_others(self) -> dict[str, list[Obj]]:
        """The managed objects of the kinds an app renders besides its Deployment, by kind."""
        return {informer.watched.kind: informer.snapshot() for informer in self.companions}

    def watch_stats(self) -> dict[tuple[str, str], int]:
        """(kind, what) -> count, for the metrics."""
        return {(informer.watched.kind, what): count for informer in self.informers
                for what, count in informer.stats.items()}
