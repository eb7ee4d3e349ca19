"""Carrying out the reconcilers' plans: parallel writes, per-namespace order, re-planning on conflict.

`setup_kubernetes_job` hands `write_setup_plan` the pure plan (`reconcile_plan.plan_setup`), the
rendered apps and a client governed by the run's `run_budget.RunBudget`. In order:

1. the namespaces the plan creates, in parallel (a namespace exists before any app is written
   into it; 409 AlreadyExists is fine);
2. every app with writes, in parallel on ``concurrency`` threads (the urllib3 pool is sized for
   them). Per app, the writes of its step go out in order (Deployment, its companions, their
   record: see `companions`). A preparatory write (upgrade, replicas hand-over, a Deployment
   created before its companions) is followed by a pure re-plan from its answer; a step that
   needs companions read first (`Step.reads`) by GETs and a re-plan; a 409 by a re-plan from a
   fresh GET of the app's objects. A body is never re-sent as it was: the next round plans again
   and sends what that plan says.
3. A create into a namespace that already existed first checks that nothing is in the way
   (apply would otherwise merge into an object someone else made), unless the object was just
   read: an unmanaged object there is reported and left alone; a managed one (a retried create
   whose answer was lost, or another run's) is re-planned from. In a namespace this run
   created, nothing can be in the way, and no companion needs reading.

Every step comes back with its outcome as it completes: `Action.NOT_ATTEMPTED` when the budget
stopped the app before anything was sent (deadline, circuit breaker, lost lock), `FAILED` with
the API's message otherwise. `delete_victims` does the same for cleanup's deletes, each with the
uid and resourceVersion seen in the list as preconditions.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, replace
from enum import Enum
from typing import TYPE_CHECKING, Any, TypeVar

from paasta_lite.kube import labels
from paasta_lite.kube.errors import Conflict, KubeError, NotFound
from paasta_lite.kube.reconcile_plan import (
    Action,
    DesiredApp,
    ObjKey,
    Purpose,
    SetupPlan,
    Step,
    Victim,
    Write,
    app_keys,
    plan_app,
)
from paasta_lite.kube.run_budget import BudgetExhausted

if TYPE_CHECKING:
    from paasta_lite.kube.client import KubeClient

Obj = dict[str, Any]
T = TypeVar("T")
R = TypeVar("R")

DEFAULT_CONCURRENCY = 8
#: Plans per app in one run: preparatory writes (upgrade, hand-over, a create before its
#: companions), reading companions and conflicts each cost one.
MAX_ROUNDS = 6


class _Replan(Exception):
    """Internal: plan the app again from what is now known about it."""


def _parallel(items: Iterable[T], work: Callable[[T], R], concurrency: int) -> Iterator[R]:
    """``work(item)`` on up to ``concurrency`` threads; results in completion order."""
    with ThreadPoolExecutor(max_workers=max(1, concurrency), thread_name_prefix="writer") as pool:
        futures: list[Future[R]] = [pool.submit(work, item) for item in items]
        for future in as_completed(futures):
            yield future.result()


# --------------------------------------------------------------------------- setup


@dataclass
class _Namespaces:
    created: set[str]
    broken: dict[str, tuple[Action, str]]


def _create_namespaces(plan: SetupPlan, client: KubeClient, namespace_labels: Mapping[str, Obj],
                       concurrency: int) -> _Namespaces:
    def create(namespace: str) -> tuple[str, bool | tuple[Action, str]]:
        try:
            return namespace, client.create_namespace(namespace, namespace_labels.get(namespace))
        except BudgetExhausted as error:
            return namespace, (Action.NOT_ATTEMPTED, f"not attempted: {error}")
        except KubeError as error:
            return namespace, (Action.FAILED, f"cannot create namespace {namespace}: {error}")

    result = _Namespaces(set(), {})
    for namespace, outcome in _parallel(plan.namespaces, create, concurrency):
        if outcome is True:
            result.created.add(namespace)
        elif isinstance(outcome, tuple):
            result.broken[namespace] = outcome
    return result


class _AppWriter:
    """Writes one app, re-planning as needed (see module docstring)."""

    def __init__(self, app: DesiredApp, plan: SetupPlan, client: KubeClient,
                 fresh_namespaces: set[str]) -> None:
        self.app, self.client, self.listed = app, client, plan.listed_kinds
        self.keys = app_keys(app)
        self.live = {key: plan.live[key] for key in self.keys if key in plan.live}
        #: keys whose state `live` reflects: read here, or nothing can be there (a new namespace)
        self.known: set[ObjKey] = set(self.keys) if app.namespace in fresh_namespaces else set()
        self.sent = False
        self.created = False

    def run(self, step: Step) -> Step:
        first = step
        for round_ in range(MAX_ROUNDS):
            if round_:
                step = plan_app(self.app, self.live, known=self.known, listed_kinds=self.listed)
            if step.action not in (Action.CREATE, Action.UPDATE):
                return self._outcome(first, step) if step.action is Action.UNCHANGED else step
            try:
                if step.reads:
                    self._read(step.reads)
                    continue
                self._send_all(step)
                return self._outcome(first, step)
            except _Replan:
                continue
            except Conflict:
                try:
                    self._read(self.keys)
                except BudgetExhausted as error:
                    return replace(self._outcome(first, step), action=Action.FAILED,
                                   reasons=(f"conflict, then stopped before re-reading: {error}",))
                except KubeError as error:
                    return replace(step, action=Action.FAILED,
                                   reasons=(f"conflict, then cannot re-read its objects: {error}",))
                continue
            except BudgetExhausted as error:
                if not self.sent:
                    return replace(step, action=Action.NOT_ATTEMPTED, reasons=(f"not attempted: {error}",))
                return replace(self._outcome(first, step), action=Action.FAILED,
                               reasons=(f"stopped part-way: {error}",))
            except _InTheWay as error:
                return replace(step, action=Action.FAILED, reasons=(str(error),))
            except _Refused as refused:
                verb = "create" if self.created or step.action is Action.CREATE else "update"
                write = refused.write
                what = "" if write.kind == "Deployment" else f" of {write.kind} {write.name}"
                return replace(step, action=Action.FAILED,
                               reasons=(f"{verb}{what} refused by the API: {refused.error}",))
            except KubeError as error:  # a read (GET) the step needed
                return replace(step, action=Action.FAILED, reasons=(f"cannot read its objects: {error}",))
        return replace(step, action=Action.FAILED,
                       reasons=(f"changed {MAX_ROUNDS} times while being written; the next run tries again",))

    def _outcome(self, first: Step, last: Step) -> Step:
        """What the app's line says: a create stays a create (its companions followed in a later
        round); writes sent in earlier rounds make it an update even if the last plan was empty."""
        if self.created:
            return replace(last, action=Action.CREATE, reasons=first.reasons)
        if last.action is Action.UNCHANGED and self.sent:
            return replace(last, action=Action.UPDATE, reasons=first.reasons)
        return last

    def _send_all(self, step: Step) -> None:
        for write in step.writes:
            if write.create and write.key not in self.known:
                self._check_nothing_in_the_way(write)
            try:
                answer = self._send(write)
            except (Conflict, BudgetExhausted):
                raise
            except KubeError as error:
                raise _Refused(write, error) from error
            self.sent = True
            self.created = self.created or (write.create and write.kind == "Deployment")
            if answer is None:
                self.live.pop(write.key, None)
            else:
                self.live[write.key] = answer
            self.known.add(write.key)
            if write.replan:
                raise _Replan

    def _send(self, write: Write) -> Obj | None:
        if write.purpose is Purpose.UPGRADE:
            return self.client.merge_patch(write.kind, write.namespace, write.name, write.body)
        if write.purpose is Purpose.DELETE:
            self.client.delete(write.kind, write.namespace, write.name, uid=write.body.get("uid") or None,
                               resource_version=write.body.get("resourceVersion") or None)
            return None
        return self.client.apply(write.body, field_manager=write.field_manager, force=write.force)

    def _check_nothing_in_the_way(self, write: Write) -> None:
        found = self._get(write.key)
        self.known.add(write.key)
        if found is None:
            return
        if ((found.get("metadata") or {}).get("labels") or {}).get(labels.MANAGED) != "true":
            raise _InTheWay(f'{write.kind} "{write.name}" already exists in {write.namespace} and is not '
                            f"managed by paasta_lite (no {labels.MANAGED}=true label): not touched")
        self.live[write.key] = found
        raise _Replan

    def _get(self, key: ObjKey) -> Obj | None:
        try:
            return self.client.get(*key)
        except NotFound:
            return None

    def _read(self, keys: Iterable[ObjKey]) -> None:
        """GET ``keys`` into `live` (a 404 means none); they are known from then on."""
        for key in keys:
            found = self._get(key)
            if found is None:
                self.live.pop(key, None)
            else:
                self.live[key] = found
            self.known.add(key)


class _Refused(Exception):
    """The API refused one write (not a conflict): the app fails with its message."""

    def __init__(self, write: Write, error: KubeError) -> None:
        super().__init__(str(error))
        self.write, self.error = write, error


class _InTheWay(Exception):
    """An object we did not make has the name we need."""


def write_setup_plan(plan: SetupPlan, apps: Iterable[DesiredApp], client: KubeClient, *,
                     namespace_labels: Mapping[str, Obj],
                     concurrency: int = DEFAULT_CONCURRENCY) -> Iterator[Step]:
    """Carry out ``plan``; yield every step with its outcome, as it completes."""
    by_job = {step.job_id: step for step in plan.steps}
    namespaces = _create_namespaces(plan, client, namespace_labels, concurrency)
    to_write: list[tuple[DesiredApp, Step]] = []
    for app in apps:
        step = by_job.pop(f"{app.service}.{app.instance}", None)
        if step is None:
            continue
        if step.action not in (Action.CREATE, Action.UPDATE):
            yield step
        elif step.namespace in namespaces.broken:
            action, why = namespaces.broken[step.namespace]
            yield replace(step, action=action, reasons=(why,))
        else:
            to_write.append((app, step))
    yield from by_job.values()  # failures and not-deployed instances (no rendered app)

    def write(item: tuple[DesiredApp, Step]) -> Step:
        app, step = item
        return _AppWriter(app, plan, client, namespaces.created).run(step)

    yield from _parallel(to_write, write, concurrency)


# --------------------------------------------------------------------------- cleanup


class Deletion(Enum):
    DELETED = "deleted"
    GONE = "already gone"
    CHANGED = "changed since list: kept"  # 409 on the uid/resourceVersion preconditions
    FAILED = "failed"
    NOT_ATTEMPTED = "not attempted"


def delete_victims(victims: Iterable[Victim], client: KubeClient, *,
                   concurrency: int = DEFAULT_CONCURRENCY) -> Iterator[tuple[Victim, Deletion, str]]:
    """Delete each victim's Deployment with its list-time preconditions; yield (victim, outcome, detail)."""

    def delete(victim: Victim) -> tuple[Victim, Deletion, str]:
        try:
            deleted = client.delete("Deployment", victim.namespace, victim.name, uid=victim.uid or None,
                                    resource_version=victim.resource_version or None)
        except BudgetExhausted as error:
            return victim, Deletion.NOT_ATTEMPTED, str(error)
        except Conflict as error:
            return victim, Deletion.CHANGED, str(error)
        except KubeError as error:
            return victim, Deletion.FAILED, str(error)
        return victim, Deletion.DELETED if deleted else Deletion.GONE, ""

    yield from _parallel(victims, delete, concurrency)
