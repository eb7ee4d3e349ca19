"""An informer: list + watch one collection, keep a local cache, report which job ids changed.

Why: deployd must notice a `kubectl edit` / `kubectl scale` / `kubectl delete` of a managed
Deployment within seconds, without listing 2,000 Deployments every few seconds. Kubernetes'
answer is list-then-watch (client-go's reflector): list once, remember the list's
resourceVersion, then watch from it; every event carries a newer resourceVersion, which is where
the next watch resumes after a dropped stream or a server-side timeout. Bookmarks
(`allowWatchBookmarks`) advance it even when nothing we watch changes, so a resume rarely lands
on a compacted version. When it does, the server answers 410 Gone (as an HTTP status or as an
ERROR event with code 410): the only way back is a fresh list, diffed against the cache so the
handler still hears about everything that changed meanwhile.

Generic over the collection (`Watched`: path + label selector), so HPAs and PDBs are watched
the same way. The handler gets the job ids (``service.instance`` from the paasta labels) that an
event concerns; ``relevant(old, new)`` filters out status-only updates (a rollout sends dozens)
that cannot change what the reconciler would do. Objects labelled for another PaaSTA cluster
(`reconcile_plan.foreign_cluster`; several can share one Kubernetes cluster) are cached but
name no job id: they are not this deployd's business.

Only `kube.client` talks HTTP; this module keeps the loop, the cache and the bookkeeping.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from paasta_lite.config.naming import job_id
from paasta_lite.controller.workqueue import backoff_delay
from paasta_lite.kube import labels
from paasta_lite.kube.client import APPS, KINDS, KubeClient, WatchStream
from paasta_lite.kube.errors import KubeError
from paasta_lite.kube.reconcile_plan import foreign_cluster

Obj = dict[str, Any]
log = logging.getLogger("paasta_lite.deployd")

GONE = 410
#: Seconds the server keeps one watch open before we resume from the last resourceVersion.
WATCH_TIMEOUT = 300


@dataclass(frozen=True)
class Watched:
    """A cluster-wide collection to watch and the label selector that picks our objects."""

    path: str
    selector: str
    kind: str


MANAGED_DEPLOYMENTS = Watched(f"{APPS}/deployments", labels.MANAGED_SELECTOR, "Deployment")
#: The other kinds the reconcilers write with an app (planned from `plan_setup`'s ``live_others``).
MANAGED_COMPANIONS = tuple(
    Watched(f"{KINDS[kind][0]}/{KINDS[kind][1]}", labels.MANAGED_SELECTOR, kind)
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget"))


def object_key(obj: Obj) -> str:
    """``namespace/name`` (the cache key)."""
    metadata = obj.get("metadata") or {}
    return f"{metadata.get('namespace') or ''}/{metadata.get('name') or ''}"


def job_ids_of(obj: Obj | None) -> set[str]:
    """The ``service.instance`` an object belongs to, from its labels (empty when unlabelled)."""
    found = ((obj or {}).get("metadata") or {}).get("labels") or {}
    service, instance = found.get(labels.SERVICE), found.get(labels.INSTANCE)
    return {job_id(str(service), str(instance))} if service and instance else set()


def _resource_version(obj: Obj | None) -> str:
    return str(((obj or {}).get("metadata") or {}).get("resourceVersion") or "")


def changed_beyond_status(old: Obj | None, new: Obj | None) -> bool:
    """Whether an event may matter to the reconciler: an add or delete, or a change of the spec,
    labels, annotations or deletion state. Status-only updates do not. The spec is compared itself:
    an autoscaling/v2 HPA has no ``generation`` (checked on v1.28), so a hand edit of one would
    otherwise wait for the next full resync."""
    if old is None or new is None:
        return True
    before, after = old.get("metadata") or {}, new.get("metadata") or {}
    return old.get("spec") != new.get("spec") or any(
        before.get(field) != after.get(field)
        for field in ("generation", "labels", "annotations", "deletionTimestamp"))


OnChange = Callable[[set[str]], None]
Relevant = Callable[[Obj | None, Obj | None], bool]


class Informer:
    """List + watch of one `Watched` collection in a thread; ``on_change(job_ids)`` per change.

    `synced` is set after the first successful list. `snapshot()` and `get()` read the cache
    (objects are replaced, never mutated, so callers may keep them). ``stats`` counts lists,
    watches, events, reconnects and 410s (for metrics and tests).
    """

    def __init__(self, client: KubeClient, watched: Watched, on_change: OnChange, *,
                 cluster: str | None = None, relevant: Relevant = changed_beyond_status,
                 watch_timeout: int = WATCH_TIMEOUT, base_delay: float = 0.1,
                 max_delay: float = 10.0) -> None:
        self.client = client
        self.watched = watched
        self.on_change = on_change
        self.cluster = cluster
        self.relevant = relevant
        self.watch_timeout = watch_timeout
        self.base_delay = base_delay
        self.max_delay = max_delay
        self.resource_version: str | None = None
        self.synced = threading.Event()
        self.stats = {"lists": 0, "watches": 0, "events": 0, "reconnects": 0, "gone": 0}
        self._cache: dict[str, Obj] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._stream: WatchStream | None = None
        self._thread = threading.Thread(target=self.run, name=f"informer-{watched.kind}", daemon=True)

    # ------------------------------------------------------------------ reading the cache
    def snapshot(self) -> list[Obj]:
        with self._lock:
            return list(self._cache.values())

    def get(self, key: str) -> Obj | None:
        with self._lock:
            return self._cache.get(key)

    def job_ids(self) -> set[str]:
        with self._lock:
            return {jid for obj in self._cache.values() for jid in self._job_ids(obj)}

    def _job_ids(self, obj: Obj | None) -> set[str]:
        """The job id ``obj`` concerns, unless it belongs to another cluster than ``cluster``."""
        if obj is None or (self.cluster is not None and foreign_cluster(obj, self.cluster)):
            return set()
        return job_ids_of(obj)

    def alive(self) -> bool:
        return self._thread.is_alive()

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> Informer:
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        stream = self._stream
        if stream is not None:
            stream.close()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def run(self) -> None:
        """List, then watch and resume until stopped; re-list after 410; back off on errors."""
        failures = 0
        while not self._stop.is_set():
            try:
                if self.resource_version is None:
                    self.relist()
                delivered = self.watch_once()
                failures = 0 if delivered else failures
            except KubeError as error:
                if error.status == GONE:
                    self._gone(str(error))
                    continue
                if self._stop.is_set():
                    return
                self.stats["reconnects"] += 1
                delay = backoff_delay(failures, base_delay=self.base_delay, max_delay=self.max_delay)
                failures += 1
                log.warning("watch of %s: %s; reconnecting in %.1f s", self.watched.path, error, delay)
                self._stop.wait(delay)

    # ------------------------------------------------------------------ one list, one watch
    def relist(self) -> None:
        """List the collection, replace the cache, and report every difference to the old cache."""
        items, version = self.client.list_collection(self.watched.path, selector=self.watched.selector)
        fresh = {object_key(obj): obj for obj in items}
        with self._lock:
            old, self._cache = self._cache, fresh
        affected: set[str] = set()
        for key in old.keys() | fresh.keys():
            before, after = old.get(key), fresh.get(key)
            if _resource_version(before) != _resource_version(after) and self.relevant(before, after):
                affected |= self._job_ids(before) | self._job_ids(after)
        self.resource_version = version
        self.stats["lists"] += 1
        if affected:
            self.on_change(affected)
        self.synced.set()  # after on_change: whoever waits for the sync finds those keys queued

    def watch_once(self) -> bool:
        """Watch from `resource_version` until the stream ends; True when it delivered anything."""
        stream = self.client.watch(self.watched.path, selector=self.watched.selector,
                                   resource_version=self.resource_version,
                                   timeout_seconds=self.watch_timeout, bookmarks=True)
        self._stream = stream
        self.stats["watches"] += 1
        delivered = False
        try:
            if self._stop.is_set():
                return False
            for event in stream:
                delivered = True
                if not self._handle(event):
                    break
        finally:
            self._stream = None
            stream.close()
        return delivered

    def _handle(self, event: Obj) -> bool:
        """Apply one event; False when the watch must end (410: the caller re-lists)."""
        kind, obj = str(event.get("type") or ""), event.get("object") or {}
        if kind == "ERROR":
            code = obj.get("code")
            reason, text = obj.get("reason", ""), obj.get("message", "")
            message = f"watch of {self.watched.path}: {reason} {text}".strip()
            if code == GONE:
                self._gone(message)
                return False
            raise KubeError(message, status=int(code or 0), reason=str(obj.get("reason") or ""))
        version = _resource_version(obj)
        if kind == "BOOKMARK":
            self.resource_version = version or self.resource_version
            return True
        if kind not in ("ADDED", "MODIFIED", "DELETED"):
            log.warning("watch of %s: ignoring an event of type %r", self.watched.path, kind)
            return True
        key = object_key(obj)
        with self._lock:
            before = self._cache.get(key)
            if kind == "DELETED":
                self._cache.pop(key, None)
            else:
                self._cache[key] = obj
        after = None if kind == "DELETED" else obj
        self.resource_version = version or self.resource_version
        self.stats["events"] += 1
        if self.relevant(before, after):
            affected = self._job_ids(before) | self._job_ids(after)
            if affected:
                self.on_change(affected)
        return True

    def _gone(self, message: str) -> None:
        log.info("%s: resourceVersion %s expired (410); listing again", message, self.resource_version)
        self.stats["gone"] += 1
        self.resource_version = None


def wait_synced(informers: Collection[Informer], timeout: float | None) -> bool:
    """Wait until every informer has listed once."""
    return all(informer.synced.wait(timeout) for informer in informers)
