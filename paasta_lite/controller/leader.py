"""Who may write: the cluster's run lock (`kube.run_lock`), taken by deployd as by the cron jobs.

There is one Lease per cluster (`paasta-lite-system/paasta-lite-reconcile`), the one
`setup_kubernetes_job` and `cleanup_kubernetes_jobs` hold while they run, so deployd and a cron
run never write at the same time. deployd takes it in one of two ways (`make_elector`):

- ``--leader-elect`` (`LeaseElector`): several replicas campaign; the one holding the Lease is
  the leader and keeps it (renewed every third of its duration) for as long as it runs. The
  others retry every `RETRY_PERIOD` seconds and take over once it is released (SIGTERM) or
  expired (a killed leader: after its ``leaseDurationSeconds``). A cron run meanwhile waits for
  its ``--lock-timeout`` and exits 1 naming the leader: with deployd leading, the cron jobs
  have nothing to do.
- without it (`BatchLease`): the only replica takes the Lease for each batch that has writes and
  gives it back at once (one GET and two PUTs per batch; an idle deployd makes none), so a cron
  run waits at most for one batch; while a cron run holds it, deployd's writes wait (their keys
  are retried with backoff).

Every write batch runs inside `writing(budget)`: it raises `NotNow` when this replica may not
write, and the moment the Lease is lost (someone else took it, or renewing failed for two
thirds of its duration) every budget in use is halted (`RunBudget.halt`): the writes not yet
sent are never sent, and their instances are retried. Watching, scanning and serving metrics
run on every replica, so a follower takes over with warm caches; the loop runs a full resync
when it becomes leader (what happened while it followed was nobody's job).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Protocol

from paasta_lite.kube.errors import KubeError
from paasta_lite.kube.run_budget import RunBudget
from paasta_lite.kube.run_lock import DEFAULT_LEASE_SECONDS, LEASE_NAME, RunLock

if TYPE_CHECKING:
    from paasta_lite.kube.client import KubeClient

log = logging.getLogger("paasta_lite.deployd")

#: Seconds between a candidate's attempts to take the Lease (client-go's retryPeriod is 2 s).
RETRY_PERIOD = 2.0


class NotNow(Exception):
    """This replica may not write now. ``retry``: queue the keys again (else they are the leader's)."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


class LeaderElector(Protocol):
    """What the loop and the reconciler need from leader election."""

    def start(self) -> None:
        """Begin campaigning (in the background); returns at once."""

    def is_leader(self) -> bool:
        """Whether this replica leads right now (cheap: the loop asks every tick)."""

    def writing(self, budget: RunBudget) -> AbstractContextManager[None]:
        """Hold the right to write for one batch, whose requests all go through ``budget``;
        raises `NotNow`. Losing the right halts ``budget``."""

    def stop(self) -> None:
        """Stop campaigning and release the Lease if held (on shutdown, after in-flight writes)."""


class _Budgets:
    """The budgets of the batches writing right now, to halt them all at once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: set[RunBudget] = set()

    @contextmanager
    def active(self, budget: RunBudget) -> Iterator[None]:
        with self._lock:
            self._active.add(budget)
        try:
            yield
        finally:
            with self._lock:
                self._active.discard(budget)

    def halt(self, reason: str) -> None:
        with self._lock:
            budgets = list(self._active)
        for budget in budgets:
            budget.halt(reason)


class LeaseElector:
    """``--leader-elect``: campaign for the cluster's Lease; the holder is the leader."""

    def __init__(self, client: KubeClient, *, identity: str, lease_seconds: int = DEFAULT_LEASE_SECONDS,
                 lease_name: str = LEASE_NAME, retry_period: float = RETRY_PERIOD) -> None:
        self.lock = RunLock(client, holder=identity, name=lease_name, lease_seconds=lease_seconds,
                            on_lost=self._lost)
        self.identity = identity
        self.retry_period = retry_period
        self._budgets = _Budgets()
        self._leading = threading.Event()
        self._stop = threading.Event()
        self._state_lock = threading.Lock()
        self._said = ""
        self._thread = threading.Thread(target=self._campaign, name="leader-election", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def is_leader(self) -> bool:
        if not self._leading.is_set():
            return False
        if not self.lock.holding:  # renewing has failed for too long: do not wait for the thread
            self._lost("could not renew the Lease in time")
            return False
        return True

    @contextmanager
    def writing(self, budget: RunBudget) -> Iterator[None]:
        with self._budgets.active(budget):  # registered first: a loss from now on halts it
            if not self.is_leader():
                raise NotNow(f"not the leader ({self._holder_text()})", retry=False)
            budget.guard_with(_lease_guard(self.lock))
            yield

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        was_leading = self._leading.is_set()
        self._leading.clear()
        # a batch still writing past the drain timeout must stop before the Lease is given back
        self._budgets.halt("stopping: the Lease is being released")
        self.lock.release()  # gives the Lease back at once: a follower takes over within its retry period
        if was_leading:
            log.info("released the Lease %s/%s", self.lock.namespace, self.lock.name)

    # ------------------------------------------------------------------ internals
    def _campaign(self) -> None:
        while not self._stop.is_set():
            if self._leading.is_set():
                self.is_leader()  # notices a renewal deadline missed
                self._stop.wait(min(1.0, self.retry_period))
                continue
            self.lock.release()  # after a loss: stop the renew thread (nothing is sent for a lost lease)
            try:
                if self.lock.try_acquire():
                    self.lock.start_renewing()
                    self._leading.set()
                    self._say(f"became the leader: holding the Lease {self.lock.namespace}/{self.lock.name} "
                              f"as {self.identity}")
                else:
                    self._say(f"following: {self._holder_text()}")
            except KubeError as error:
                self._say(f"cannot read or take the Lease {self.lock.namespace}/{self.lock.name}: {error}",
                          warning=True)
            self._stop.wait(self.retry_period)

    def _lost(self, reason: str) -> None:
        """The Lease is gone (renew thread, or `is_leader`): halt every write now, campaign again."""
        with self._state_lock:
            was = self._leading.is_set()
            self._leading.clear()
        self._budgets.halt(f"lost the Lease: {reason}")
        if was:
            log.warning("lost leadership, writes stop: %s", reason)

    def _holder_text(self) -> str:
        return f"the Lease is held by {self.lock.holder_of(self.lock.last_seen)}"

    def _say(self, line: str, *, warning: bool = False) -> None:
        if line != self._said:
            self._said = line
            (log.warning if warning else log.info)("%s", line)


def _lease_guard(lock: RunLock) -> Callable[[], str | None]:
    """Checked before every request of a batch: a renewal stuck in a slow request must not let
    writes go on past the Lease's expiry (the renew thread would report the loss too late)."""
    return lambda: None if lock.holding else "the Lease is no longer held for sure"


class BatchLease:
    """Without ``--leader-elect``: the only replica takes the Lease around each write batch.

    Batches that overlap share one holding (counted); the last one out gives it back."""

    def __init__(self, client: KubeClient, *, identity: str, lease_seconds: int = DEFAULT_LEASE_SECONDS,
                 lease_name: str = LEASE_NAME) -> None:
        self.lock = RunLock(client, holder=identity, name=lease_name, lease_seconds=lease_seconds,
                            on_lost=self._lost)
        self._budgets = _Budgets()
        self._mutex = threading.Lock()
        self._users = 0

    def start(self) -> None:
        pass

    def is_leader(self) -> bool:
        return True  # the only replica: nobody else's job

    @contextmanager
    def writing(self, budget: RunBudget) -> Iterator[None]:
        with self._budgets.active(budget):
            self._enter()
            budget.guard_with(_lease_guard(self.lock))
            try:
                yield
            finally:
                self._leave()

    def _enter(self) -> None:
        with self._mutex:
            if self._users == 0:
                try:
                    taken = self.lock.try_acquire()
                except KubeError as error:
                    raise NotNow(f"cannot take the Lease: {error}", retry=True) from error
                if not taken:
                    holder = self.lock.holder_of(self.lock.last_seen)
                    raise NotNow(f"another run holds the Lease: {holder}", retry=True)
                self.lock.start_renewing()
            elif not self.lock.holding:
                raise NotNow("the Lease was lost; waiting for the batches still running", retry=True)
            self._users += 1

    def _leave(self) -> None:
        with self._mutex:
            self._users -= 1
            if self._users == 0:
                self.lock.release()

    def _lost(self, reason: str) -> None:
        self._budgets.halt(f"lost the Lease: {reason}")
        log.warning("lost the Lease mid-batch, writes stop: %s", reason)

    def stop(self) -> None:
        pass  # every batch gave it back already (workers are drained before this)


def make_elector(leader_elect: bool, client: KubeClient, *, identity: str,
                 lease_seconds: int = DEFAULT_LEASE_SECONDS, lease_name: str = LEASE_NAME) -> LeaderElector:
    """`LeaseElector` for ``--leader-elect``, else `BatchLease`; both on the cron jobs' Lease
    (``lease_name`` other than `LEASE_NAME` only to keep a test apart from them)."""
    if leader_elect:
        return LeaseElector(client, identity=identity, lease_seconds=lease_seconds, lease_name=lease_name)
    return BatchLease(client, identity=identity, lease_seconds=lease_seconds, lease_name=lease_name)
