"""run_budget and run_lock on their own, and the fake server's apply semantics they rely on.

Covers: the breaker opens after N consecutive server-side failures across calls and a success
resets the count; 4xx and 409 are not retried; Retry-After pauses every caller; the deadline is
never slept past; the lock renews its Lease in the background and reports a takeover as lost;
`try_acquire` answers at once and a lost lock can be campaigned for again (deployd);
apply without force is a 409 naming the other manager (the real server's wording), force takes
the field over; Retry-After reaches the client from an injected 503.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from conftest import FakeApi

from paasta_lite.controller.leader import LeaseElector
from paasta_lite.kube import errors as kube_errors
from paasta_lite.kube.run_budget import CircuitOpen, DeadlineExceeded, Halted, RunBudget
from paasta_lite.kube.run_lock import LEASE_NAME, LEASE_NAMESPACE, RunLock


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def failing(error: kube_errors.KubeError) -> Any:
    def operation() -> None:
        raise error
    return operation


def test_the_breaker_opens_after_consecutive_server_side_failures() -> None:
    clock = Clock()
    budget = RunBudget(breaker_threshold=3, attempts=2, base_delay=0.01, clock=clock, sleep=clock.sleep)
    with pytest.raises(kube_errors.ServerError):
        budget.call(failing(kube_errors.ServerError("boom", status=503)))  # 2 failures
    assert budget.call(lambda: "ok") == "ok"  # a success resets the count
    with pytest.raises(kube_errors.ServerError):
        budget.call(failing(kube_errors.ServerError("boom", status=503)))
    with pytest.raises(CircuitOpen, match="3 consecutive server-side failures"):
        budget.call(failing(kube_errors.Unreachable("down")))  # the third opens it mid-call
    with pytest.raises(CircuitOpen):
        budget.call(lambda: "never sent")


def test_client_errors_and_conflicts_are_not_retried() -> None:
    calls: list[int] = []

    def conflict() -> None:
        calls.append(1)
        raise kube_errors.Conflict("modified", status=409)

    with pytest.raises(kube_errors.Conflict):
        RunBudget().call(conflict)
    assert calls == [1]


def test_retry_after_pauses_everyone_and_the_deadline_is_not_slept_past() -> None:
    clock = Clock()
    budget = RunBudget(deadline=10, clock=clock, sleep=clock.sleep)
    results = iter([kube_errors.TooManyRequests("slow down", status=429, retry_after=4.0), None])

    def flaky() -> str:
        error = next(results)
        if error:
            raise error
        return "done"

    assert budget.call(flaky) == "done" and clock.slept == [4.0]
    with pytest.raises(DeadlineExceeded):
        budget.call(failing(kube_errors.ServerError("busy", status=503, retry_after=30.0)))
    assert clock.now < 10  # it gave up instead of sleeping past the deadline


def test_halt_stops_later_calls() -> None:
    budget = RunBudget()
    budget.halt("lost the run lock to someone")
    with pytest.raises(Halted, match="lost the run lock"):
        budget.call(lambda: "never")


def test_the_lock_renews_and_notices_a_takeover(fake_api: FakeApi) -> None:
    lost: list[str] = []
    lock = RunLock(fake_api.client, holder="me:1:test", lease_seconds=3, on_lost=lost.append)
    with lock.held(timeout=1):
        first = fake_api.server.get_object("leases", LEASE_NAMESPACE, LEASE_NAME)
        assert first is not None and first["spec"]["holderIdentity"] == "me:1:test"
        time.sleep(1.3)
        renewed = fake_api.server.get_object("leases", LEASE_NAMESPACE, LEASE_NAME)
        assert renewed is not None and renewed["spec"]["renewTime"] != first["spec"]["renewTime"]
        assert lock.holding
        stolen = {**renewed, "spec": {**renewed["spec"], "holderIdentity": "thief"}}
        fake_api.server.put_object("leases", stolen)
        deadline = time.monotonic() + 3
        while not lost and time.monotonic() < deadline:
            time.sleep(0.05)
        assert lost == ["lost the run lock to thief"] and not lock.holding
    taken = fake_api.server.get_object("leases", LEASE_NAMESPACE, LEASE_NAME)
    assert taken is not None and taken["spec"]["holderIdentity"] == "thief"  # not released by the loser


def test_try_acquire_answers_at_once_and_a_lock_can_be_taken_again_after_a_loss(fake_api: FakeApi) -> None:
    """For a long-running holder (paasta_deployd): no waiting; after a loss, release and campaign again."""
    lost: list[str] = []
    first = RunLock(fake_api.client, holder="a:1:paasta_deployd", lease_seconds=3, on_lost=lost.append)
    second = RunLock(fake_api.client, holder="b:2:paasta_deployd", lease_seconds=3)
    assert first.try_acquire() and first.last_seen is None  # created it
    first.start_renewing()
    started = time.monotonic()
    assert not second.try_acquire()
    assert time.monotonic() - started < 0.5
    assert second.holder_of(second.last_seen) == "a:1:paasta_deployd"
    current = fake_api.server.get_object("leases", LEASE_NAMESPACE, LEASE_NAME)
    assert current is not None
    fake_api.server.put_object("leases", {**current, "spec": {**current["spec"], "holderIdentity": None}})
    assert second.try_acquire()  # free: taken at once
    deadline = time.monotonic() + 3
    while not lost and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lost == ["lost the run lock to b:2:paasta_deployd"] and not first.holding
    first.release()  # stops the renew thread; sends nothing for a lost lease
    second.release()
    assert first.try_acquire()  # given back: the first one leads again
    first.start_renewing()
    assert first.holding
    first.release()
    lease = fake_api.server.get_object("leases", LEASE_NAMESPACE, LEASE_NAME)
    assert lease is not None and not lease["spec"].get("holderIdentity")


def deployment() -> dict[str, Any]:
    return {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "ns",
                                                                       "labels": {"a": "1"}},
            "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}}, "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"containers": [{"name": "c", "image": "i"}]}}}}


def test_apply_conflicts_like_the_real_server(fake_api: FakeApi) -> None:
    fake_api.server.put_object("namespaces", {"metadata": {"name": "ns"}})
    fake_api.client.apply(deployment())
    fake_api.client.merge_patch("Deployment", "ns", "web", {"metadata": {"labels": {"a": "2"}}},
                                field_manager="kubectl-label")
    strict = fake_api.client
    with pytest.raises(kube_errors.Conflict) as caught:
        strict.apply(deployment(), force=False)
    assert caught.value.message == ('Apply failed with 1 conflict: conflict with "kubectl-label" using '
                                    "apps/v1: .metadata.labels.a")
    assert caught.value.details["causes"][0]["field"] == ".metadata.labels.a"
    assert fake_api.client.apply(deployment())["metadata"]["labels"]["a"] == "1"  # force takes it over


def test_retry_after_of_an_injected_503_reaches_the_client(fake_api: FakeApi) -> None:
    fake_api.server.fail_next("GET", "deployments", 503, retry_after=2.5)
    with pytest.raises(kube_errors.ServerError) as caught:
        RunBudget(attempts=1).call(lambda: fake_api.client.governed(RunBudget(attempts=1))
                                   .list_managed_deployments())
    assert caught.value.retry_after == 2.5


def wait_until(condition: Any, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def test_a_failed_reread_after_a_renew_conflict_does_not_kill_the_renewer(fake_api: FakeApi) -> None:
    """A renew answered 409, then a GET refused during the same brownout: the renew thread lives on
    (it used to die silently, so a lost lock would never halt the run)."""
    fake_api.server.put_object("namespaces", {"metadata": {"name": LEASE_NAMESPACE}})
    lost: list[str] = []
    lock = RunLock(fake_api.client, holder="me", lease_seconds=3, on_lost=lost.append)
    lock.acquire(5)
    lock.start_renewing()
    fake_api.server.fail_next("PUT", f"leases/{LEASE_NAME}$", 409)
    fake_api.server.fail_next("GET", f"leases/{LEASE_NAME}$", 403)
    try:
        assert wait_until(lambda: fake_api.server.count("PUT") >= 2)  # renewing again after the failure
        assert lock._thread is not None and lock._thread.is_alive()
        other = RunLock(fake_api.client, holder="other", lease_seconds=3)
        lease = fake_api.server.get_object("leases", LEASE_NAMESPACE, LEASE_NAME)
        lease["spec"]["holderIdentity"] = "other"  # taken over behind our back
        fake_api.server.put_object("leases", lease)
        assert wait_until(lambda: bool(lost)), "the loss is noticed by the surviving renewer"
        assert not other.holding
    finally:
        lock.release()


def test_a_budget_guarded_by_the_lock_stops_as_soon_as_the_lock_is_in_doubt() -> None:
    """A renewal stuck in a slow request must not let writes go on past the Lease's expiry: the
    guard is asked before every request, not only when the renew thread returns."""
    held = [True]
    budget = RunBudget(deadline=60)
    budget.guard_with(lambda: None if held[0] else "the run lock is no longer held for sure")
    assert budget.call(lambda: "sent") == "sent"
    held[0] = False
    with pytest.raises(Halted, match="no longer held"):
        budget.call(lambda: "sent")


def test_stopping_the_elector_halts_a_batch_still_writing_before_the_lease_goes(fake_api: FakeApi) -> None:
    """deployd's shutdown gives the Lease back after its drain timeout; a batch still inside
    `writing` must not send anything after that."""
    fake_api.server.put_object("namespaces", {"metadata": {"name": LEASE_NAMESPACE}})
    elector = LeaseElector(fake_api.client, identity="me", lease_seconds=9, retry_period=0.1)
    elector.start()
    assert wait_until(elector.is_leader)
    budget = RunBudget(deadline=60)
    inside, leave = threading.Event(), threading.Event()

    def batch() -> None:
        with elector.writing(budget):
            inside.set()
            leave.wait(10)

    writer = threading.Thread(target=batch)
    writer.start()
    assert inside.wait(5)
    elector.stop()
    leave.set()
    writer.join()
    assert isinstance(budget.stopped, Halted)
    lease = fake_api.server.get_object("leases", LEASE_NAMESPACE, LEASE_NAME)
    assert not lease["spec"].get("holderIdentity")
