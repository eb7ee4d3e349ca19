"""The run lock: one `coordination.k8s.io/v1` Lease per cluster, so two reconciler runs never fight.

`setup_kubernetes_job` and `cleanup_kubernetes_jobs` (not their --dry-run) take the Lease
`LEASE_NAMESPACE/LEASE_NAME` before they read soa-configs, hold it while they write, and give it
back at the end. Reading the config only once the lock is held is what stops an older run from
rolling back a newer one: a run that waited reads what is current when its turn comes.

The Lease is the one client-go's leader election uses: ``holderIdentity`` (host:pid:entry
point), ``leaseDurationSeconds``, ``acquireTime``/``renewTime`` and ``leaseTransitions``.
`paasta_deployd` takes the same one (`try_acquire` + `start_renewing`; with ``--leader-elect``
its leader holds it for as long as it leads), so cron runs and deployd never write at once.
Every change is a PUT carrying the resourceVersion read just before, so of two runs racing for a
free or expired lease exactly one wins (the other gets 409 and looks again). While held, a
background thread renews it every third of the lease duration. A lease is expired when its
renewTime is older than its duration (by our clock), or when we have watched it stay unchanged
for that long (by our monotonic clock, which covers a holder whose clock runs ahead).

If renewing fails for two thirds of the duration, or someone else took the lease, the holder
counts as having lost it: ``on_lost(reason)`` is called (the reconcilers halt their
`run_budget.RunBudget`, so nothing more is written) — before another run could consider the
lease expired.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

from paasta_lite.errors import PaastaLiteError
from paasta_lite.kube import labels
from paasta_lite.kube.errors import AlreadyExists, Conflict, KubeError, NotFound
from paasta_lite.timestamps import parse_iso

if TYPE_CHECKING:
    from paasta_lite.kube.client import KubeClient

Obj = dict[str, Any]

LEASE_NAME = "paasta-lite-reconcile"
#: Our own namespace (created when missing), so RBAC for it grants nothing in kube-system.
LEASE_NAMESPACE = "paasta-lite-system"
DEFAULT_LEASE_SECONDS = 30
POLL_SECONDS = 1.0


class LockBusy(PaastaLiteError):
    """Another run held the lock for longer than we were willing to wait (exit 1)."""

    exit_code = 1


def identity(entry_point: str) -> str:
    """``host:pid:entry point``: who holds the lock, as other runs will print it."""
    return f"{socket.gethostname()}:{os.getpid()}:{entry_point}"


def micro_time(at: float) -> str:
    """A Kubernetes MicroTime (RFC 3339, microseconds, UTC) for a Unix time."""
    return datetime.fromtimestamp(at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class RunLock:
    """The Lease-based lock. Use ``with lock.held(timeout): ...``."""

    def __init__(self, client: KubeClient, *, holder: str, name: str = LEASE_NAME,
                 namespace: str = LEASE_NAMESPACE, lease_seconds: int = DEFAULT_LEASE_SECONDS,
                 on_lost: Callable[[str], None] | None = None, poll: float = POLL_SECONDS,
                 wall_clock: Callable[[], float] = time.time,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.client, self.holder, self.name, self.namespace = client, holder, name, namespace
        self.lease_seconds = lease_seconds
        self.on_lost = on_lost
        self.poll = poll
        self._now, self._monotonic = wall_clock, monotonic
        self._lease: Obj | None = None
        self._renewed_at = 0.0
        self._lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: tuple[str, float] | None = None  # (resourceVersion, first seen) of another's lease
        #: the lease as last read by `try_acquire` (None: there was none)
        self.last_seen: Obj | None = None

    # ------------------------------------------------------------------ public
    @contextmanager
    def held(self, timeout: float) -> Iterator[RunLock]:
        """Acquire (waiting up to ``timeout`` s), renew in the background, release at the end."""
        self.acquire(timeout)
        self.start_renewing()
        try:
            yield self
        finally:
            self.release()

    @property
    def holding(self) -> bool:
        """True while we hold the lease and renewed it recently enough to be sure."""
        return (self._lease is not None and self._lost is None
                and self._monotonic() - self._renewed_at < self.renew_deadline)

    @property
    def renew_deadline(self) -> float:
        return self.lease_seconds * 2 / 3

    def acquire(self, timeout: float) -> None:
        """Take the lease; raise `LockBusy` naming the holder after ``timeout`` seconds."""
        give_up = self._monotonic() + timeout
        while True:
            if self.try_acquire():
                return
            lease = self.last_seen
            if lease is not None:
                if self._monotonic() >= give_up:
                    raise LockBusy(self._busy_message(lease, timeout))
                time.sleep(max(0.0, min(self.poll, give_up - self._monotonic())))

    def try_acquire(self) -> bool:
        """One attempt, no waiting: take the lease if it is free, expired or already ours.

        For a long-running holder (paasta_deployd's leader election): call it every few seconds
        while a candidate, then `start_renewing`; after a loss, `release` and campaign again.
        False when someone else holds it (`last_seen` is their lease) or was faster."""
        lease = self.last_seen = self._read()
        if lease is None:
            return self._create()
        holder = str((lease.get("spec") or {}).get("holderIdentity") or "")
        return (not holder or holder == self.holder or self._expired(lease)) and self._take(lease)

    def holder_of(self, lease: Obj | None) -> str:
        """Who holds ``lease`` (e.g. `last_seen`), as other runs print it."""
        return str(((lease or {}).get("spec") or {}).get("holderIdentity") or "nobody")

    def release(self) -> None:
        """Stop renewing and free the lease (best effort: it expires anyway)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        lease, self._lease = self._lease, None
        if lease is None or self._lost is not None:
            return
        spec = {**lease["spec"], "holderIdentity": None, "leaseDurationSeconds": 1}
        with suppress(KubeError):
            self.client.replace("Lease", self.namespace, self.name, {**lease, "spec": spec})

    # ------------------------------------------------------------------ acquiring
    def _read(self) -> Obj | None:
        try:
            return self.client.get("Lease", self.namespace, self.name)
        except NotFound:
            return None

    def _body(self, transitions: int, acquired: str | None = None) -> Obj:
        now = micro_time(self._now())
        return {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": self.name, "namespace": self.namespace,
                             "labels": {labels.APP_MANAGED_BY: labels.MANAGED_BY_VALUE}},
                "spec": {"holderIdentity": self.holder, "leaseDurationSeconds": self.lease_seconds,
                         "acquireTime": acquired or now, "renewTime": now, "leaseTransitions": transitions}}

    def _create(self) -> bool:
        """Create the lease (and its namespace); False when another run created it first."""
        for attempt in range(2):
            try:
                self._got(self.client.create("Lease", self.namespace, self._body(0)))
                return True
            except AlreadyExists:
                return False
            except NotFound:  # the namespace does not exist yet (or the API has no Leases)
                if attempt:
                    raise
                self.client.create_namespace(self.namespace, {labels.APP_MANAGED_BY: labels.MANAGED_BY_VALUE})
        return False

    def _take(self, lease: Obj) -> bool:
        """PUT ourselves as holder over ``lease`` (its resourceVersion); False if someone was faster."""
        spec = lease.get("spec") or {}
        ours = spec.get("holderIdentity") == self.holder
        transitions = int(spec.get("leaseTransitions") or 0) + (0 if ours else 1)
        body = self._body(transitions, spec.get("acquireTime") if ours else None)
        body["metadata"]["resourceVersion"] = lease["metadata"]["resourceVersion"]
        try:
            self._got(self.client.replace("Lease", self.namespace, self.name, body))
        except Conflict:
            return False
        return True

    def _got(self, lease: Obj) -> None:
        self._lease, self._renewed_at, self._lost = lease, self._monotonic(), None

    def _expired(self, lease: Obj) -> bool:
        spec = lease.get("spec") or {}
        duration = float(spec.get("leaseDurationSeconds") or 0)
        try:
            renewed = parse_iso(str(spec.get("renewTime"))).timestamp()
        except ValueError:  # no renewTime (or garbage): nobody can be counting on it
            return True
        if renewed + duration < self._now():
            return True
        version = str(lease["metadata"].get("resourceVersion"))
        if self._seen is None or self._seen[0] != version:
            self._seen = (version, self._monotonic())
        return self._monotonic() - self._seen[1] > duration

    def _busy_message(self, lease: Obj, waited: float) -> str:
        spec = lease.get("spec") or {}
        return (f"another run holds the lock: {spec.get('holderIdentity')} (Lease {self.namespace}/"
                f"{self.name}, renewed {spec.get('renewTime')}, lease {spec.get('leaseDurationSeconds')} s); "
                f"waited {waited:g} s (--lock-timeout). Run again later, or delete the Lease if that "
                "run is known to be gone")

    # ------------------------------------------------------------------ renewing
    def start_renewing(self) -> None:
        """Renew the lease just acquired in a background thread until `release` (or a loss)."""
        self._stop.clear()
        self._thread = threading.Thread(target=self._renew_loop, name="run-lock-renew", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        interval = self.lease_seconds / 3
        while not self._stop.wait(interval):
            lost = self._renew_once()
            if lost is None and self._monotonic() - self._renewed_at >= self.renew_deadline:
                lost = f"could not renew the run lock for {self.renew_deadline:.0f} s"
            if lost is not None:
                self._lost = lost
                if self.on_lost is not None:
                    self.on_lost(lost)
                return

    def _renew_once(self) -> str | None:
        """Renew; returns why the lock is lost, or None (renewed, or a transient failure)."""
        lease = self._lease
        assert lease is not None
        body = {**lease, "spec": {**lease["spec"], "renewTime": micro_time(self._now())}}
        try:
            self._got(self.client.replace("Lease", self.namespace, self.name, body))
        except Conflict:
            try:
                current = self._read()
            except KubeError:
                return None  # transient: the next renew (or the expiry check) decides
            holder = (current or {}).get("spec", {}).get("holderIdentity")
            if current is None or holder != self.holder:
                return f"lost the run lock to {holder or 'nobody (the Lease was deleted)'}"
            self._lease = current  # our own lease, changed by something else: renew next time
        except KubeError:
            pass
        return None
