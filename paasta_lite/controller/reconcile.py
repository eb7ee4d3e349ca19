"""The worker's reconcile step: a batch of job ids -> the cron reconcilers' own code paths.

No second implementation of anything (issue 13): for the instances that are configured, the
batch goes through exactly what `setup_kubernetes_job` runs — `Desired.add_service` (render),
`reconcile_plan.plan_setup` (pure pairing with the live Deployments), `apply.apply_plan`
(namespaces, create, replace) — with the informer's cache as the live list instead of a fresh
LIST. For job ids no longer configured, it is `reconcile_plan.plan_cleanup` over every live app
with the kill threshold, as in `cleanup_kubernetes_jobs`, and only the victims in the batch are
deleted.

What deployd adds is only what a long-running process needs:
- writes happen only while `is_leader()` (checked before every write);
- a failed write, and a deletion deferred because the soa dir is in doubt or has not been
  unchanged for `settle` seconds yet, is retried with backoff (the returned set); a config
  error is not (it is retried when the files change);
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
from paasta_lite.controller.metrics import DeploydMetrics
from paasta_lite.kube.apply import apply_plan
from paasta_lite.kube.client import KubeClient
from paasta_lite.kube.errors import KubeError
from paasta_lite.kube.reconcile_plan import Action, CleanupDecision, Step, Victim, plan_cleanup, plan_setup
from paasta_lite.kube.reconcile_run import Desired, step_line
from paasta_lite.status.event_log import log_event

Obj = dict[str, Any]
log = logging.getLogger("paasta_lite.deployd")
WRITES = (Action.CREATE, Action.UPDATE)


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
                 is_leader: Callable[[], bool], metrics: DeploydMetrics, kill_threshold: float = 0.5,
                 settle: float = 10.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.system = system
        self.cluster = cluster
        self.configs = configs
        self.live = live
        self.is_leader = is_leader
        self.metrics = metrics
        self.kill_threshold = kill_threshold
        self.settle = settle
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
        return self.setup(batch.setup, view, live) | self.cleanup(batch.gone, view, live)

    # ------------------------------------------------------------------ create and update
    def setup(self, wanted: Mapping[str, set[str]], view: ConfigView, live: list[Obj]) -> set[str]:
        """`setup_kubernetes_job` for these instances; returns the ones whose write failed."""
        if not wanted:
            return set()
        desired = Desired()
        for service, instances in sorted(wanted.items()):
            desired.add_service(view.services[service], self.cluster, self.system, instances)
        plan = plan_setup(desired.apps, live, failures=desired.failures, not_deployed=desired.not_deployed)
        namespace_labels = {app.namespace: app.namespace_manifest["metadata"].get("labels") or {}
                            for app in desired.apps}
        if plan.writes and not self.is_leader():
            log.debug("not the leader: leaving %s to the leader", ", ".join(s.job_id for s in plan.writes))
            return set()
        outcomes = apply_plan(plan, self.client, namespace_labels)  # lazy: one write per step taken
        retry: set[str] = set()
        for planned in plan.steps:
            if planned.action in WRITES and not self.is_leader():
                log.warning("lost leadership: stopping before %s", planned.job_id)
                break
            outcome = next(outcomes)
            if planned.action in WRITES:
                verb = "create" if planned.action is Action.CREATE else "update"
                failed = outcome.action is Action.FAILED
                self.metrics.writes.inc(verb=verb, outcome="failed" if failed else "ok")
                if failed:
                    retry.add(outcome.job_id)
            self._report(outcome)
        return retry

    def _report(self, step: Step) -> None:
        line = step_line(step, dry_run=False)
        if step.action in WRITES:
            self._forget(step.job_id)
            self._act(step.job_id, line, failed=False)
        elif step.action is Action.FAILED:
            self._failed(step.job_id, line)
        elif step.action is Action.NOT_DEPLOYED:
            self._notice(step.job_id, line)
        else:
            self._forget(step.job_id)

    # ------------------------------------------------------------------ delete
    def cleanup(self, gone: Collection[str], view: ConfigView, live: list[Obj]) -> set[str]:
        """`cleanup_kubernetes_jobs` for these job ids; returns the ones to try again later."""
        present = {jid for obj in live for jid in job_ids_of(obj) if jid in gone}
        if not present:
            return set()
        if view.doubt is not None or view.unsettled or self.clock() - view.changed_at < self.settle:
            # In doubt, or the soa dir changed lately (it may be mid-update, and the kill
            # threshold must judge a whole change, not its first half): try again later.
            why = view.doubt or f"soa-configs changed less than {self.settle:g} s ago"
            for jid in sorted(present):
                self._notice(jid, f"not deleting {jid} yet: {why}")
            return present
        plan = plan_cleanup(live, view.configured(), kill_threshold=self.kill_threshold, force=False)
        if plan.decision is CleanupDecision.REFUSED:
            for jid in sorted(present):
                self._notice(jid, f"not deleting {jid}: {plan.message}")
            return set()
        by_key = {object_key(obj): obj for obj in live}
        retry: set[str] = set()
        for victim in plan.delete:
            if victim.job_id not in gone or _being_deleted(by_key.get(f"{victim.namespace}/{victim.name}")):
                continue
            if not self.is_leader():
                log.debug("not the leader: leaving the deletion of %s to the leader", victim.job_id)
                continue
            if not self._delete(victim):
                retry.add(victim.job_id)
        return retry

    def _delete(self, victim: Victim) -> bool:
        where = f"{victim.namespace}/{victim.name} ({victim.job_id})"
        try:
            self.client.delete_deployment(victim.namespace, victim.name)
        except KubeError as error:
            self.metrics.writes.inc(verb="delete", outcome="failed")
            self._failed(victim.job_id, f"failed to delete {where}: {error}")
            return False
        self.metrics.writes.inc(verb="delete", outcome="ok")
        self._forget(victim.job_id)
        self._act(victim.job_id, f"deleted {where}: {victim.reason}", failed=False)
        return True

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
