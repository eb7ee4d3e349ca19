"""The work queue between deployd's event sources and its workers (client-go's workqueue, cut down).

Keys are job ids (``service.instance``). Watch events, soa-config changes and the periodic resync
all `add` keys; N worker threads `get` them, reconcile, and report back with `done`. The rules
that make this safe and cheap:

- **De-duplication.** A key waiting in the queue is queued once however often it is added
  (a burst of watch events for one Deployment costs one reconcile).
- **Never two workers on one key.** A key added while a worker holds it is not handed out
  again; it is re-queued once when that worker calls `done`, so the change that arrived
  mid-reconcile is seen by a second pass.
- **Per-key backoff.** A failed key comes back through `add_rate_limited` after
  ``base_delay * 2**failures`` seconds, capped at ``max_delay``; `forget` (on success) resets it.
  One broken instance therefore costs little, and a recovering API server is not hammered.
- **Changes before chores.** Keys from the periodic full resync are *background*: a worker takes
  them only when no key from a watch event or a soa change waits, so one edit is not stuck
  behind 2,000 resync keys. A background key added again as a change moves up.
- **Clean shutdown.** `shut_down` stops accepting keys and stops handing them out; workers finish
  the batch they hold (`Workers.stop` waits for them). Keys still queued are dropped: the next
  start's full resync covers them.

Time comes from an injectable ``clock`` so the backoff is tested without sleeping.
"""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterable

log = logging.getLogger("paasta_lite.deployd")

#: Seconds before the first retry of a failed key, and the cap of its exponential backoff.
BASE_DELAY = 0.5
MAX_DELAY = 120.0


def backoff_delay(failures: int, *, base_delay: float = BASE_DELAY, max_delay: float = MAX_DELAY) -> float:
    """Delay before retry number ``failures + 1``: ``base * 2**failures``, at most ``max_delay``."""
    return min(max_delay, base_delay * 2.0 ** min(failures, 62))


class WorkQueue:
    """A de-duplicating, rate-limited queue of string keys; thread-safe."""

    def __init__(self, *, base_delay: float = BASE_DELAY, max_delay: float = MAX_DELAY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._clock = clock
        self._cond = threading.Condition()
        self._urgent: deque[str] = deque()
        self._background: deque[str] = deque()  # may hold stale entries: skipped when popped
        self._dirty: set[str] = set()  # queued, or added while processing (re-queued on done)
        self._background_only: set[str] = set()  # dirty keys that only the resync asked for
        self._processing: set[str] = set()
        self._delayed: list[tuple[float, int, str]] = []  # heap of (due, sequence, key)
        self._due: dict[str, float] = {}  # earliest due time per delayed key
        self._sequence = itertools.count()
        self._failures: dict[str, int] = {}
        self._shutting_down = False

    # ------------------------------------------------------------------ adding
    def add(self, key: str, *, background: bool = False) -> None:
        """Queue ``key`` now (no-op if it is already queued, or after shutdown)."""
        with self._cond:
            self._add(key, background)

    def add_all(self, keys: Iterable[str], *, background: bool = False) -> None:
        with self._cond:
            for key in keys:
                self._add(key, background)

    def _add(self, key: str, background: bool = False) -> None:
        if self._shutting_down:
            return
        self._due.pop(key, None)  # queued now: a pending delayed add of it is moot
        if key in self._dirty:
            if not background and key in self._background_only:  # a change: move it up
                self._background_only.discard(key)
                if key not in self._processing:
                    self._urgent.append(key)
                    self._cond.notify()
            return
        self._dirty.add(key)
        if background:
            self._background_only.add(key)
        if key not in self._processing:
            (self._background if background else self._urgent).append(key)
            self._cond.notify()

    def add_after(self, key: str, delay: float) -> None:
        """Queue ``key`` once ``delay`` seconds have passed (the earliest due time wins)."""
        if delay <= 0:
            self.add(key)
            return
        with self._cond:
            if self._shutting_down:
                return
            due = self._clock() + delay
            if key in self._due and self._due[key] <= due:
                return
            self._due[key] = due
            heapq.heappush(self._delayed, (due, next(self._sequence), key))
            self._cond.notify()

    def add_rate_limited(self, key: str) -> float:
        """Queue ``key`` after its backoff delay (which then doubles); returns the delay."""
        with self._cond:
            failures = self._failures.get(key, 0)
            self._failures[key] = failures + 1
        delay = backoff_delay(failures, base_delay=self.base_delay, max_delay=self.max_delay)
        self.add_after(key, delay)
        return delay

    def forget(self, key: str) -> None:
        """Reset ``key``'s backoff (it succeeded)."""
        with self._cond:
            self._failures.pop(key, None)

    def failures(self, key: str) -> int:
        with self._cond:
            return self._failures.get(key, 0)

    # ------------------------------------------------------------------ taking
    def get(self, max_items: int = 1, timeout: float | None = None) -> list[str] | None:
        """Up to ``max_items`` keys to process, oldest first; each is now "processing".

        Blocks until a key is ready or ``timeout`` seconds pass (then ``[]``); ``timeout=0``
        never blocks. Returns None once the queue is shut down: the worker should exit.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while True:
                if self._shutting_down:
                    return None
                self._promote_due()
                keys = self._pop(max_items)
                if keys:
                    return keys
                wait = self._next_due_in()
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return []
                    wait = left if wait is None else min(wait, left)
                self._cond.wait(wait)

    def _pop(self, max_items: int) -> list[str]:
        keys: list[str] = []
        for line in (self._urgent, self._background):
            while line and len(keys) < max_items:
                key = line.popleft()
                if key in self._dirty and key not in self._processing and key not in keys:
                    keys.append(key)
        self._processing.update(keys)
        self._dirty.difference_update(keys)
        self._background_only.difference_update(keys)
        return keys

    def done(self, key: str) -> None:
        """The worker finished ``key``; if it was added meanwhile, it is queued again."""
        with self._cond:
            self._processing.discard(key)
            if key in self._dirty and not self._shutting_down:
                (self._background if key in self._background_only else self._urgent).append(key)
                self._cond.notify()
            self._cond.notify_all()  # wake `wait_idle`

    def _promote_due(self) -> None:
        now = self._clock()
        while self._delayed and self._delayed[0][0] <= now:
            due, _, key = heapq.heappop(self._delayed)
            if self._due.get(key) == due:
                del self._due[key]
                self._add(key)

    def _next_due_in(self) -> float | None:
        if not self._delayed:
            return None
        return max(0.0, self._delayed[0][0] - self._clock())

    # ------------------------------------------------------------------ state and shutdown
    def depth(self) -> int:
        """Keys ready to be handed out (the queue-depth metric)."""
        with self._cond:
            return len(self._dirty - self._processing)

    def delayed(self) -> int:
        """Keys waiting for their backoff to pass."""
        with self._cond:
            return len(self._due)

    def processing(self) -> frozenset[str]:
        with self._cond:
            return frozenset(self._processing)

    def idle(self) -> bool:
        """Nothing queued and nothing in a worker's hands (delayed retries do not count)."""
        with self._cond:
            return not self._dirty and not self._processing

    def shut_down(self) -> None:
        """Stop accepting keys and stop handing them out; in-flight keys may still call `done`."""
        with self._cond:
            self._shutting_down = True
            self._cond.notify_all()

    @property
    def shutting_down(self) -> bool:
        with self._cond:
            return self._shutting_down

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until no worker holds a key; False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._processing:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True


#: What a worker's reconcile step returns: the keys to retry with backoff (the rest succeeded).
Process = Callable[[list[str]], Collection[str]]


class Workers:
    """``count`` threads taking batches of up to ``batch`` keys from ``queue`` and running ``process``.

    ``process(keys)`` returns the keys that failed in a way worth retrying; those come back with
    backoff, the others are forgotten. An exception (a bug) retries the whole batch with backoff
    and is logged with its traceback: one bad key must not kill a worker.
    """

    def __init__(self, queue: WorkQueue, process: Process, *, count: int = 2, batch: int = 1) -> None:
        if count < 1 or batch < 1:
            raise ValueError("count and batch must be at least 1")
        self.queue = queue
        self.process = process
        self.batch = batch
        self._threads = [threading.Thread(target=self._run, name=f"deployd-worker-{index}", daemon=True)
                         for index in range(count)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def _run(self) -> None:
        while True:
            keys = self.queue.get(self.batch)
            if keys is None:
                return
            try:
                retry = set(self.process(keys))
            except Exception:  # the edge of a worker: log the bug, retry later, keep serving
                log.exception("reconcile of %s failed unexpectedly; retrying with backoff", ", ".join(keys))
                retry = set(keys)
            for key in keys:
                self.queue.done(key)
                if key in retry:
                    self.queue.add_rate_limited(key)
                else:
                    self.queue.forget(key)

    def stop(self, timeout: float | None = None) -> bool:
        """Shut the queue down and wait for the workers to finish what they hold; False on timeout."""
        self.queue.shut_down()
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in self._threads:
            if thread.is_alive():
                thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        return not any(thread.is_alive() for thread in self._threads)
