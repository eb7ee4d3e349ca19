"""The soa-configs deployd works from: every service loaded for one cluster, kept fresh by scans.

The main loop calls `scan()` every second: it stats the soa dir (`soa_watch.take_snapshot`),
reloads only the services whose files changed, and returns the job ids the change affects, to
be queued. Workers read an immutable `ConfigView` (`view()`), so a reload never changes the
ground under a reconcile in progress.

What may be deleted is guarded here, because this is where doubt is known (STYLE practice 5):
- a soa dir that is missing, unreadable or empty changes nothing and puts the view in doubt
  (`ConfigView.doubt`): no deletion at all until two good scans in a row have been seen;
- a service that fails to load keeps its apps (`errors`; cleanup treats it as unreadable) and
  its last good instance names, so its keys are reported as failing rather than as removed;
- the soa dir might be mid-update: a file being rewritten is empty for a moment, and an empty
  `kubernetes-<cluster>.yaml` parses as "no instances"; `rm -r` or a checkout removes services
  one after the other. So the view says when the soa dir last changed (`changed_at`), and the
  worker deletes only once it has been unchanged for a settle time; then the kill threshold
  judges the whole change, not its first half. Services whose files changed in the latest scan
  are also *unsettled*: cleanup keeps all their apps.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field

from paasta_lite.config.naming import split_job_id
from paasta_lite.config.soa_config import ServiceConfig, SoaDir
from paasta_lite.controller.soa_watch import (
    Snapshot,
    affected_instances,
    changed_services,
    job_ids,
    take_snapshot,
)
from paasta_lite.errors import ConfigError
from paasta_lite.kube.reconcile_plan import Configured
from paasta_lite.kube.reconcile_run import configured_from_services

log = logging.getLogger("paasta_lite.deployd")

#: Good scans in a row needed (after a start or a doubtful scan) before anything may be deleted.
SETTLED_SCANS = 2


@dataclass(frozen=True)
class ConfigView:
    """An immutable picture of the soa dir for one cluster, for one reconcile."""

    cluster: str
    services: Mapping[str, ServiceConfig] = field(default_factory=dict)
    #: services that failed to load -> why; `broken_instances` holds their last known instance names
    errors: Mapping[str, ConfigError] = field(default_factory=dict)
    broken_instances: Mapping[str, frozenset[str]] = field(default_factory=dict)
    #: services whose files changed in the latest scan (cleanup keeps all their apps)
    unsettled: frozenset[str] = frozenset()
    #: when the soa dir was last seen changing (`clock` time): deletions wait for it to settle
    changed_at: float = 0.0
    #: why nothing may be deleted now (None: deletions may proceed, within the kill threshold)
    doubt: str | None = "soa-configs not loaded yet"

    def is_configured(self, job: str) -> bool:
        service, instance = split_job_id(job)
        loaded = self.services.get(service)
        return loaded is not None and instance in loaded.instance_names(self.cluster)

    def job_ids(self) -> set[str]:
        """Every job id the soa dir configures (instances of broken services included)."""
        broken = {f"{name}.{instance}" for name, names in self.broken_instances.items() for instance in names}
        return job_ids(self.services, self.cluster) | broken

    def configured(self, unreadable: Collection[str] = ()) -> Configured:
        """What cleanup keeps: every configured instance; broken and unsettled services, and the
        ``unreadable`` ones (see `ConfigCache.file_errors`), keep all their apps."""
        return configured_from_services(self.cluster, self.services,
                                        set(self.errors) | self.unsettled | set(unreadable))


class ConfigCache:
    """Loaded services of one soa dir and cluster, refreshed by `scan()` (one thread calls it)."""

    def __init__(self, soa_dir: str | os.PathLike[str], cluster: str, *,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.soa = SoaDir(soa_dir)
        self.cluster = cluster
        self.clock = clock
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._services: dict[str, ServiceConfig] = {}
        self._errors: dict[str, ConfigError] = {}
        self._last_good: dict[str, ServiceConfig] = {}
        self._unsettled: frozenset[str] = frozenset()
        self._good_scans = 0
        self._doubt: str | None = "soa-configs not loaded yet"
        self._changed_at = clock()
        self._reported: dict[str, str] = {}
        self._scanning = threading.Lock()  # one scan or reload at a time
        self._to_reload: deque[str] = deque()  # the full reload in progress

    def view(self) -> ConfigView:
        with self._lock:
            broken = {name: (self._last_good[name].instance_names(self.cluster)
                             if name in self._last_good else frozenset()) for name in self._errors}
            return ConfigView(self.cluster, dict(self._services), dict(self._errors), broken,
                              unsettled=self._unsettled, changed_at=self._changed_at, doubt=self._doubt)

    @property
    def loaded(self) -> bool:
        """At least one good scan (everything was loaded once)."""
        with self._lock:
            return self._good_scans > 0 or bool(self._services)

    def file_errors(self, names: Collection[str]) -> dict[str, ConfigError]:
        """The services among ``names`` with a file-level error in any of their files, read as
        `cleanup_kubernetes_jobs` reads them (every cluster's instance files too; scans and the
        view only read this cluster's). Called before deleting, for the services losing an app."""
        errors: dict[str, ConfigError] = {}
        for name in sorted(names):
            try:
                self.soa.load_service(name)
            except ConfigError as error:
                errors[name] = error
        return errors

    # ------------------------------------------------------------------ scanning
    def scan(self) -> set[str]:
        """Stat the soa dir, reload what changed; return the job ids to reconcile."""
        with self._scanning:
            return self._scan()

    def _scan(self) -> set[str]:
        snapshot = take_snapshot(self.soa.path, self.cluster)
        if snapshot is None:
            reason = f"soa-configs directory {self.soa.path} is missing, unreadable or empty"
            with self._lock:
                if self._doubt != reason:
                    log.warning("%s: keeping the last loaded configs and deleting nothing", reason)
                self._snapshot, self._good_scans, self._doubt = None, 0, reason
                self._changed_at = self.clock()
            return set()
        with self._lock:
            previous = self._snapshot
            known = set(self._services) | set(self._errors)
        changed = changed_services(previous, snapshot)
        if previous is None:  # first scan, or back from doubt: also look at services that vanished
            changed |= known - set(snapshot)
        keys: set[str] = set()
        for name in sorted(changed):
            keys |= self._reload(name, present=name in snapshot)
        with self._lock:
            self._snapshot = snapshot
            self._unsettled = frozenset(changed)
            if changed:
                self._changed_at = self.clock()
            self._good_scans += 1
            self._doubt = None if self._good_scans >= SETTLED_SCANS else (
                "soa-configs seen in one scan only; deletions wait for the next one")
        return keys

    def start_full_reload(self) -> None:
        """Plan a reload of every service of the latest snapshot, changed or not (the full
        resync's backstop for a change the stats missed), done a slice at a time by
        `continue_reload` so that scans keep their pace meanwhile."""
        with self._lock:
            self._to_reload = deque(sorted(self._snapshot or ()))

    def continue_reload(self, limit: int) -> set[str]:
        """Reload up to ``limit`` services of the planned full reload; returns the affected job
        ids. A service this finds changed (or broken) is unsettled until the next scan, as if a
        scan had seen it change."""
        with self._scanning:
            keys: set[str] = set()
            moved: set[str] = set()
            for _ in range(limit):
                with self._lock:
                    name = self._to_reload.popleft() if self._to_reload else None
                    present = name is not None and name in (self._snapshot or ())
                if name is None:
                    break
                if not present:
                    continue  # gone since: the scan that saw it go dealt with it
                found = self._reload(name, present=True)
                with self._lock:
                    broken = name in self._errors
                if found or broken:
                    moved.add(name)
                keys |= found
            with self._lock:
                self._unsettled = self._unsettled | moved
                if moved:
                    self._changed_at = self.clock()
            return keys

    def reload_all(self) -> set[str]:
        """`start_full_reload` and all of it at once."""
        self.start_full_reload()
        keys: set[str] = set()
        while self.reloading:
            keys |= self.continue_reload(100)
        return keys

    @property
    def reloading(self) -> bool:
        with self._lock:
            return bool(self._to_reload)

    def _reload(self, name: str, *, present: bool) -> set[str]:
        with self._lock:
            old = self._services.get(name) or self._last_good.get(name)
            was_broken = name in self._errors
        if not present:
            with self._lock:
                for store in (self._services, self._errors, self._last_good):
                    store.pop(name, None)
            if old is not None:
                log.info("service %s is gone from the soa-configs directory", name)
            return set(affected_instances(old, None, self.cluster).removed)
        try:
            new = self.soa.load_service(name, clusters=[self.cluster])
        except ConfigError as error:
            self._broken(name, old, error)
            return set()
        with self._lock:
            self._services[name] = new
            self._errors.pop(name, None)
            self._last_good.pop(name, None)
            self._reported.pop(name, None)
        keys = set(affected_instances(old, new, self.cluster).all)
        if was_broken:  # its keys failed while it was broken: all of them get another pass
            keys |= job_ids({name: new}, self.cluster)
        return keys

    def _broken(self, name: str, old: ServiceConfig | None, error: ConfigError) -> None:
        text = str(error.problems[0]) if error.problems else str(error)
        with self._lock:
            self._errors[name] = error
            self._services.pop(name, None)
            if old is not None:
                self._last_good[name] = old
            first_report = self._reported.get(name) != text
            self._reported[name] = text
        if first_report:
            log.warning("service %s cannot be loaded; its apps are left as they are: %s", name, text)
