"""The worker's reconcile step: a batch of job ids -> the cron reconcilers' own code paths.

No second implementation of anything (issue 13): for the instances that are configured, the
batch goes through exactly what `setup_kubernetes_job` runs — `Desired.add_service` (render),
`reconcile_plan.plan_setup` (pure pairing with the live objects), `plan_writer.write_setup_plan`
(namespaces, then server-side apply per app, re-planning on conflict) — with the informers'
caches as the live lists instead of a fresh LIST. For job ids no longer configured it is
`reconcile_plan.plan_cleanup` over every live app with the kill threshold, and
`plan_writer.delete_victims` (uid/resourceVersion preconditions) for the victims in the batch,
as in `cleanup_kubernetes_jobs`; a service with a file-level error in any of its files (other
clusters' included, as cleanup reads them) keeps all its apps.

What deployd adds is only what a long-running process needs:
- each batch with writes runs under its own `RunBudget` (deadline, Retry-After, circuit breaker)
  and inside `elector.writing(budget)`: only with the cluster's Lease, and losing it halts the
  budget, so not one more request is sent (see `controller/leader`);
- a failed or not-attempted write, and a deletion deferred because the soa dir is in doubt or
  has not been unchanged for `settle` seconds yet, is retried with backoff (the returned set); a
  config error is not (it is retried when the files change);
- one log line per action, and the same deploy event log as the cron entry points; a failure
  that repeats unchanged is logged once, not at every retry.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from paasta_lite.config.naming import split_job_id
from paasta_lite.config.system_config import SystemConfig
from paasta_lite.controller.config_cache import ConfigView
from paasta_lite.controller.informer import job_ids_of, object_key
from paasta_lite.controller.leader import LeaderElector, NotNow
from paasta_lite.controller.metrics import DeploydMetrics
from paasta_lite.errors import ConfigError
from paasta_lite.kube.client import KubeClient
from paasta_lite.kube.plan_writer import Deletion, delete_victims, write_setup_plan
from paasta_lite.kube.reconcile_plan import (
    Action,
    CleanupDecision,
    Step,
    Victim,
    foreign_cluster,
    plan_cleanup,
    plan_setup,
)
from paasta_lite.kube.reconcile_run import Desired, deletion_line, step_line
from paasta_lite.kube.run_budget import RunBudget
from paasta_lite.status.event_log import log_event

Obj = dict[str, Any]
log = logging.getLogger("paasta_lite.deployd")
WRITES = (Action.CREATE, Action.UPDATE)
#: Parallel writes within one batch: the workers are the parallelism (`--concurrency`).
BATCH_CONCURRENCY = 1


@dataclass(frozen=True)
class Batch:
    """A batch of job ids sorted by what the soa dir says about them (pure, see `split_batch`)."""

    setup: Mapping[str, set[str]] = field(default_factory=dict)  # service -> configured instances
    broken: Mapping[str, str] = field(default_factory=dict)  # job id -> why its service cannot load
    gone: frozenset[str] = frozenset()  # not configured: candidates for deletion
    malformed: frozenset[str] = frozenset()


def split_batch(keys: Iterable[str], view: ConfigView) -> Batch:
    setup: dict[str, set[str]] = {}
    broken: dict[str, str] = {}
    gone: set[str] = set()
    malformed: set[str] = set()
    for key in keys:
        try:
            service, instance = split_job_id(key)
        except ValueError:
            malformed.add(key)
            continue
        if service in view.errors:
            error = view.errors[service]
            why = error.problems[0] if error.problems else error
            broken[key] = f"service {service} cannot be loaded: {why}"
        elif view.is_configured(key):
            setup.setdefault(service, set()).add(instance)
        else:
            gone.add(key)
    return Batch(setup, broken, frozenset(gone), frozenset(malformed))


class Reconciler:
    """Callable for `Workers`: reconcile a batch, return the job ids to retry with backoff."""

    def __init__(self, *, client: KubeClient, system: SystemConfig, cluster: str,
                 configs: Callable[[], ConfigView], live: Callable[[], list[Obj]],
                 elector: LeaderElector, metrics: DeploydMetrics,
                 live_others: Callable[[], Mapping[str, list[Obj]]] = dict,
                 file_errors: Callable[[Collection[str]], Mapping[str, ConfigError]] = lambda names: {},
                 kill_threshold: float = 0.5, settle: float = 10.0, batch_deadline: float = 120.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.system = system
        self.cluster = cluster
        self.configs = configs
        self.live = live
        self.live_others = live_others
        self.file_errors = file_errors
        self.elector = elector
        self.metrics = metrics
        self.kill_threshold = kill_threshold
        self.settle = settle
        self.batch_deadline = batch_deadline
        self.clock = clock
        self._said: dict[str, str] = {}  # job id -> the last failure or notice logged for it
        self._said_lock = threading.Lock()

    def __call__(self, keys: list[str]) -> set[str]:
        view, live = self.configs(), self.live()
        batch = split_batch(keys, view)
        for key in sorted(batch.malformed):
            log.warning("ignoring %r: not a service.instance", key)
        for key, why in sorted(batch.broken.items()):
            self._failed(key, why)
        moved = self.moved(keys, batch.gone, view, live)
        return self.setup(batch.setup, view, live) | self.cleanup(batch.gone | moved, view, live,
                                                                  moved=moved)

    def moved(self, keys: Collection[str], gone: Collection[str], view: ConfigView,
              live: list[Obj]) -> set[str]:
        """Configured job ids of the batch with a Deployment outside their configured namespace:
        cleanup's "moved" rule deletes the old one once the new one is ready."""
        wanted = set(keys) - set(gone)
        namespaces = view.configured().namespaces
        moved = set()
        for obj in live:
            if foreign_cluster(obj, self.cluster):
                continue
            for jid in job_ids_of(obj):
                if jid in wanted:
                    configured_ns = namespaces.get(split_job_id(jid))
                    if configured_ns and (obj.get("metadata") or {}).get("namespace") != configured_ns:
                        moved.add(jid)
        return moved

    # ------------------------------------------------------------------ create and update
    def setup(self, wanted: Mapping[str, set[str]], view: ConfigView, live: list[Obj]) -> set[str]:
        """`setup_kubernetes_job` for these instances; returns the ones to try again later."""
        if not wanted:
            return set()
        desired = Desired()
        for service, instances in sorted(wanted.items()):
            desired.add_service(view.services[service], self.cluster, self.system, instances)
        plan = plan_setup(desired.apps, live, live_others=self.live_others(), failures=desired.failures,
                          not_deployed=desired.not_deployed)
        planned = {step.job_id: step for step in plan.writes}
        for step in plan.steps:
            if step.job_id not in planned:
                self._report(step)
        if not planned:
            return set()
        budget = RunBudget(deadline=self.batch_deadline)
        retry: set[str] = set()
        try:
            with self.elector.writing(budget):
                outcomes = write_setup_plan(plan, desired.apps, self.client.governed(budget),
                                            namespace_labels=desired.namespace_labels(),
                                            concurrency=BATCH_CONCURRENCY)
                for outcome in outcomes:
                    if outcome.job_id not in planned:
                        continue  # told above
                    self._count(planned[outcome.job_id], outcome)
                    if outcome.action.is_failure:
                        retry.add(outcome.job_id)
                    self._report(outcome)
        except NotNow as why:
            return self._not_now(sorted(planned), why)
        return retry

    def _count(self, planned: Step, outcome: Step) -> None:
        verb = "create" if planned.action is Action.CREATE else "update"
        if outcome.action in WRITES:
            self.metrics.writes.inc(verb=verb, outcome="ok")
        elif outcome.action is Action.FAILED:
            self.metrics.writes.inc(verb=verb, outcome="failed")
        elif outcome.action is Action.NOT_ATTEMPTED:
            self.metrics.writes.inc(verb=verb, outcome="not_attempted")

    def _report(self, step: Step) -> None:
        line = step_line(step, dry_run=False)
        if step.action in WRITES:
            self._forget(step.job_id)
            self._act(step.job_id, line, failed=False)
        elif step.action is Action.FAILED:
            self._failed(step.job_id, line)
        elif step.action in (Action.NOT_DEPLOYED, Action.NOT_ATTEMPTED):
            self._notice(step.job_id, line)
        else:
            self._forget(step.job_id)

    def _not_now(self, jobs: list[str], why: NotNow) -> set[str]:
        """Writes this replica may not make now: the leader's job, or later (the Lease is busy)."""
        if why.retry:
            log.info("not writing %s now: %s; trying again later", ", ".join(jobs), why)
            return set(jobs)
        log.debug("%s: leaving %s to the leader", why, ", ".join(jobs))
        return set()

    # ------------------------------------------------------------------ delete
    def cleanup(self, gone: Collection[str], view: ConfigView, live: list[Obj], *,
                moved: Collection[str] = ()) -> set[str]:
        """`cleanup_kubernetes_jobs` for these job ids; returns the ones to try again later
        (``moved`` ones whose new Deployment is not ready yet are tried again, with backoff)."""
        present = {jid for obj in live if not foreign_cluster(obj, self.cluster)
                   for jid in job_ids_of(obj) if jid in gone}
        if not present:
            return set()
        if view.doubt is not None or view.unsettled or self.clock() - view.changed_at < self.settle:
            # In doubt, or the soa dir changed lately (it may be mid-update, and the kill
            # threshold must judge a whole change, not its first half): try again later.
            why = view.doubt or f"soa-configs changed less than {self.settle:g} s ago"
            for jid in sorted(present):
                self._notice(jid, f"not deleting {jid} yet: {why}")
            return present
        # cleanup_kubernetes_jobs reads every file of every service: an error in any of them
        # (another cluster's instances too) keeps all the service's apps. Read them for the
        # services that would lose an app, which is where it matters.
        loaded = {split_job_id(jid)[0] for jid in present} & set(view.services)
        unreadable = self.file_errors(loaded)
        plan = plan_cleanup(live, view.configured(unreadable), kill_threshold=self.kill_threshold,
                            force=False)
        for jid in sorted(present):
            service = split_job_id(jid)[0]
            if service in unreadable:
                error = unreadable[service]
                problem = error.problems[0] if error.problems else error
                self._notice(jid, f"not deleting {jid}: service {service} has a configuration error: "
                                  f"{problem}")
            elif plan.decision is CleanupDecision.REFUSED:
                self._notice(jid, f"not deleting {jid}: {plan.message}")
        if plan.decision is CleanupDecision.REFUSED:
            return set()
        by_key = {object_key(obj): obj for obj in live}
        victims = [victim for victim in plan.delete if victim.job_id in gone
                   and not _being_deleted(by_key.get(f"{victim.namespace}/{victim.name}"))]
        waiting = set(moved) - {victim.job_id for victim in victims}
        if not victims:
            return waiting
        budget = RunBudget(deadline=self.batch_deadline)
        retry: set[str] = set(waiting)
        try:
            with self.elector.writing(budget):
                for victim, outcome, detail in delete_victims(victims, self.client.governed(budget),
                                                              concurrency=BATCH_CONCURRENCY):
                    if not self._deleted(victim, outcome, detail):
                        retry.add(victim.job_id)
        except NotNow as why:
            return self._not_now(sorted({victim.job_id for victim in victims}), why)
        return retry

    def _deleted(self, victim: Victim, outcome: Deletion, detail: str) -> bool:
        """Count and tell one delete's outcome; False when it should be tried again."""
        line = deletion_line(victim, outcome, detail)
        counted = {Deletion.DELETED: "ok", Deletion.GONE: "ok", Deletion.CHANGED: "changed",
                   Deletion.FAILED: "failed", Deletion.NOT_ATTEMPTED: "not_attempted"}[outcome]
        self.metrics.writes.inc(verb="delete", outcome=counted)
        if outcome in (Deletion.DELETED, Deletion.GONE):
            self._forget(victim.job_id)
            self._act(victim.job_id, line, failed=False)
            return True
        if outcome is Deletion.FAILED:
            self._failed(victim.job_id, line)
        else:  # changed since the cache saw it (its watch event re-queues it), or not attempted
            self._notice(victim.job_id, line)
        return False

    # ------------------------------------------------------------------ saying what happened
    def _act(self, jid: str, line: str, *, failed: bool) -> None:
        """One log line and one deploy-event-log record for an action (or a failed one)."""
        (log.warning if failed else log.info)("%s", line)
        service, _, instance = jid.partition(".")
        log_event(self.system, service=service, instance=instance or None, cluster=self.cluster,
                  level="error" if failed else "event", message=f"paasta_deployd: {line}")

    def _failed(self, jid: str, line: str) -> None:
        if self._first_time(jid, line):
            self._act(jid, line, failed=True)

    def _notice(self, jid: str, line: str) -> None:
        if self._first_time(jid, line):
            log.info("%s", line)

    def _first_time(self, jid: str, line: str) -> bool:
        with self._said_lock:
            if self._said.get(jid) == line:
                return False
            self._said[jid] = line
            return True

    def _forget(self, jid: str) -> None:
        with self._said_lock:
            self._said.pop(jid, None)


def _being_deleted(obj: Obj | None) -> bool:
    return bool(((obj or {}).get("metadata") or {}).get("deletionTimestamp"))
