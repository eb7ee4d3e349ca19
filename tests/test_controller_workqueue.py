"""The deployd work queue, deterministically (an injected clock; `get(timeout=0)` never blocks).

Covers: a key queued twice is handed out once; a key added while a worker holds it is not
handed to another worker and comes back exactly once after `done`; batches; per-key exponential
backoff with a cap, reset by `forget`; an immediate add supersedes a pending retry; changes
overtake background (resync) keys, and a background key added as a change moves up; shutdown
stops handing out keys while in-flight ones finish; the `Workers` pool retries what `process`
reports as failed (and what raised), forgets the rest, and stops cleanly.
"""

from __future__ import annotations

import threading
import time

import pytest

from paasta_lite.controller.workqueue import Workers, WorkQueue, backoff_delay


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(clock: Clock) -> WorkQueue:
    return WorkQueue(base_delay=1.0, max_delay=8.0, clock=clock)


def test_a_key_added_twice_is_handed_out_once(queue: WorkQueue) -> None:
    queue.add("web.main")
    queue.add("api.main")
    queue.add("web.main")
    assert queue.depth() == 2
    assert queue.get(10, timeout=0) == ["web.main", "api.main"]
    assert queue.get(10, timeout=0) == []


def test_a_key_added_while_processing_is_requeued_once_after_done(queue: WorkQueue) -> None:
    queue.add("web.main")
    assert queue.get(timeout=0) == ["web.main"]
    queue.add("web.main")
    queue.add("web.main")
    assert queue.get(timeout=0) == []  # never to a second worker while the first holds it
    queue.done("web.main")
    assert queue.get(timeout=0) == ["web.main"]
    queue.done("web.main")
    assert queue.get(timeout=0) == []
    assert queue.idle()


def test_batches_take_at_most_max_items(queue: WorkQueue) -> None:
    queue.add_all(f"s.i{n}" for n in range(5))
    assert queue.get(2, timeout=0) == ["s.i0", "s.i1"]
    assert queue.get(2, timeout=0) == ["s.i2", "s.i3"]
    assert queue.processing() == {"s.i0", "s.i1", "s.i2", "s.i3"}


def test_backoff_doubles_per_failure_up_to_the_cap(queue: WorkQueue, clock: Clock) -> None:
    delays = [queue.add_rate_limited("web.main") for _ in range(6)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    assert queue.failures("web.main") == 6
    queue.forget("web.main")
    assert queue.add_rate_limited("web.main") == 1.0
    assert backoff_delay(100, base_delay=0.5, max_delay=60.0) == 60.0


def test_a_retried_key_waits_for_its_delay(queue: WorkQueue, clock: Clock) -> None:
    queue.add_rate_limited("web.main")  # 1 s
    queue.add_rate_limited("api.main")  # 1 s (its own count)
    queue.add_rate_limited("api.main")  # 2 s, but the earlier due time wins
    assert queue.get(timeout=0) == [] and queue.delayed() == 2
    clock.now += 0.99
    assert queue.get(timeout=0) == []
    clock.now += 0.01
    assert sorted(queue.get(5, timeout=0) or []) == ["api.main", "web.main"]
    assert queue.delayed() == 0


def test_an_immediate_add_supersedes_a_pending_retry(queue: WorkQueue, clock: Clock) -> None:
    queue.add_rate_limited("web.main")
    queue.add("web.main")
    assert queue.get(timeout=0) == ["web.main"]
    queue.done("web.main")
    clock.now += 10
    assert queue.get(timeout=0) == []  # the retry was not queued a second time


def test_changes_overtake_background_keys(queue: WorkQueue) -> None:
    queue.add_all(["r.1", "r.2", "r.3"], background=True)
    queue.add("edit.x")
    queue.add("r.3")  # a change to a key the resync also queued: it moves up, once
    assert queue.depth() == 4
    assert queue.get(2, timeout=0) == ["edit.x", "r.3"]
    assert queue.get(5, timeout=0) == ["r.1", "r.2"]
    assert queue.get(5, timeout=0) == []
    queue.add("r.1", background=True)  # while processing: re-queued, in the background, after done
    queue.add("edit.y")
    queue.done("r.1")
    assert queue.get(5, timeout=0) == ["edit.y", "r.1"]


def test_get_blocks_until_a_key_arrives() -> None:
    queue = WorkQueue()
    threading.Timer(0.05, queue.add, args=("web.main",)).start()
    assert queue.get(timeout=2) == ["web.main"]


def test_shutdown_stops_handing_out_and_taking_keys(queue: WorkQueue) -> None:
    queue.add_all(["a.x", "b.x"])
    assert queue.get(timeout=0) == ["a.x"]
    queue.shut_down()
    queue.add("c.x")
    assert queue.get(timeout=0) is None
    assert not queue.wait_idle(timeout=0.01)  # a.x is still in a worker's hands
    queue.done("a.x")
    assert queue.wait_idle(timeout=0.01)


def test_workers_retry_failures_and_forget_successes() -> None:
    queue = WorkQueue(base_delay=0.01, max_delay=0.05)
    seen: list[list[str]] = []
    fail_once = {"bad.x"}

    def process(keys: list[str]) -> set[str]:
        seen.append(keys)
        failed = set(keys) & fail_once
        fail_once.difference_update(failed)
        return failed

    workers = Workers(queue, process, count=2, batch=4)
    workers.start()
    queue.add_all(["good.x", "bad.x"])
    deadline = time.monotonic() + 5
    while sum(keys.count("bad.x") for keys in seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sum(keys.count("bad.x") for keys in seen) == 2
    assert sum(keys.count("good.x") for keys in seen) == 1
    assert workers.stop(timeout=2)
    assert queue.failures("bad.x") == 0  # forgotten after its successful retry


def test_a_crashing_reconcile_is_retried_and_the_worker_survives(caplog: pytest.LogCaptureFixture) -> None:
    queue = WorkQueue(base_delay=0.01)
    calls: list[str] = []

    def process(keys: list[str]) -> set[str]:
        calls.extend(keys)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return set()

    workers = Workers(queue, process, count=1)
    workers.start()
    queue.add("web.main")
    deadline = time.monotonic() + 5
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls == ["web.main", "web.main"]
    assert "boom" in caplog.text
    assert workers.stop(timeout=2)


def test_stop_lets_the_batch_in_hand_finish() -> None:
    queue = WorkQueue()
    started, release = threading.Event(), threading.Event()
    finished: list[str] = []

    def process(keys: list[str]) -> set[str]:
        started.set()
        release.wait(5)
        finished.extend(keys)
        return set()

    workers = Workers(queue, process, count=1)
    workers.start()
    queue.add_all(["a.x", "b.x"])
    assert started.wait(5)
    stopper = threading.Thread(target=workers.stop, kwargs={"timeout": 5})
    stopper.start()
    time.sleep(0.05)
    release.set()
    stopper.join(5)
    assert finished == ["a.x"]  # in flight: finished; queued: not started
