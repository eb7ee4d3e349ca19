"""One budget for a whole reconciler run: a deadline, Retry-After, and a circuit breaker.

Why a run-level object instead of per-request retries: when the API server answers every write
with 503 or 429, a run of 2,000 writes that each retry 4 times on their own goes on for an hour
and multiplies the load on a server that is already in trouble. Here every request of the run
(from any thread) goes through `RunBudget.call`, which

- refuses to send anything once the run's ``deadline`` has passed, or would pass while waiting;
- honours Retry-After for everyone: a 429/503 with a hint pauses every writer, not just the one
  that got it (capped at `MAX_RETRY_AFTER`);
- counts consecutive server-side failures (`KubeError.server_side`: 429, 5xx, no answer) across
  all threads; at ``breaker_threshold`` the circuit opens and every later call fails at once
  with `CircuitOpen`, so the run ends within seconds and reports what was not attempted;
- retries a server-side failure at most ``attempts`` times per call, with jittered backoff.

Everything else (4xx, 409 Conflict) is raised at once: a 409 is resolved by re-planning from a
fresh read (`apply_writes`), never by re-sending the same body.

`BudgetExhausted` errors mean "this request was never sent": callers report the instance as
not attempted. ``halt(reason)`` stops the run the same way from outside (the run lock calls it
when the lease is lost). Thread-safe; the clock and sleep are injectable for tests.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from paasta_lite.kube.errors import MAX_RETRY_AFTER, KubeError

T = TypeVar("T")

#: Consecutive server-side failures (across the run) that open the circuit.
DEFAULT_BREAKER_THRESHOLD = 5


class BudgetExhausted(KubeError):
    """The run's budget stopped a request before it was sent (the instance was not attempted)."""


class DeadlineExceeded(BudgetExhausted):
    """The run's deadline passed (or would pass while waiting for the server)."""


class CircuitOpen(BudgetExhausted):
    """Too many consecutive server-side failures: the run stopped writing."""


class Halted(BudgetExhausted):
    """Stopped from outside, e.g. the run lock was lost to another run."""


class RunBudget:
    """Shared by every request of one run. ``deadline`` is in seconds from now (None: no limit)."""

    def __init__(self, *, deadline: float | None = None,
                 breaker_threshold: int = DEFAULT_BREAKER_THRESHOLD, attempts: int = 4,
                 base_delay: float = 0.2, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if attempts < 1 or breaker_threshold < 1:
            raise ValueError("attempts and breaker_threshold must be at least 1")
        self._clock, self._sleep = clock, sleep
        self.deadline_at = None if deadline is None else clock() + deadline
        self.breaker_threshold = breaker_threshold
        self.attempts = attempts
        self.base_delay = base_delay
        self._lock = threading.Lock()
        self._consecutive_failures = 0
        self._pause_until = 0.0
        self._stop: BudgetExhausted | None = None
        self._guard: Callable[[], str | None] | None = None

    # ------------------------------------------------------------------ state
    def remaining(self) -> float | None:
        """Seconds left before the deadline (None: no deadline)."""
        return None if self.deadline_at is None else max(0.0, self.deadline_at - self._clock())

    @property
    def stopped(self) -> BudgetExhausted | None:
        """Why the run stopped writing (circuit open, halted), or None."""
        with self._lock:
            return self._stop

    def halt(self, reason: str) -> None:
        """Stop every later call with `Halted` (the first reason wins)."""
        with self._lock:
            if self._stop is None:
                self._stop = Halted(reason)

    def guard_with(self, why_not: Callable[[], str | None]) -> None:
        """Before every request, ask ``why_not()``; a reason halts the run. The run lock uses it:
        a renewal stuck in a slow request must not let writes go on past the Lease's expiry."""
        self._guard = why_not

    def check(self) -> None:
        """Raise the `BudgetExhausted` that stops the run, if any; else return."""
        reason = self._guard() if self._guard is not None else None
        if reason is not None:
            self.halt(reason)
        with self._lock:
            if self._stop is not None:
                raise self._stop
        left = self.remaining()
        if left is not None and left <= 0:
            raise DeadlineExceeded("the run's deadline has passed")

    # ------------------------------------------------------------------ calls
    def call(self, operation: Callable[[], T]) -> T:
        """Run one request under the budget (see module docstring)."""
        for attempt in range(self.attempts):
            self.check()
            self._wait(self._pause_until - self._clock())
            try:
                result = operation()
            except KubeError as error:
                if not error.server_side:
                    self._record(success=True)  # the server answered: it is alive
                    raise
                pause = self._record(success=False, error=error)
                if attempt == self.attempts - 1:
                    raise
                self.check()  # the circuit may have opened on this failure
                self._wait(pause if pause is not None else self._backoff(attempt))
                continue
            self._record(success=True)
            return result
        raise AssertionError("unreachable")  # pragma: no cover

    def _record(self, *, success: bool, error: KubeError | None = None) -> float | None:
        """Count a result; returns the Retry-After pause to honour, when the server gave one."""
        with self._lock:
            if success:
                self._consecutive_failures = 0
                return None
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.breaker_threshold and self._stop is None:
                self._stop = CircuitOpen(
                    f"stopped writing after {self._consecutive_failures} consecutive server-side "
                    f"failures (last: {error})")
            if error is None or error.retry_after is None:
                return None
            pause = min(max(error.retry_after, 0.0), MAX_RETRY_AFTER)
            self._pause_until = max(self._pause_until, self._clock() + pause)
            return pause

    def _backoff(self, attempt: int) -> float:
        backoff: float = self.base_delay * 2.0**attempt
        return backoff + random.uniform(0, backoff / 2)

    def _wait(self, seconds: float) -> None:
        if seconds <= 0:
            return
        left = self.remaining()
        if left is not None and seconds >= left:
            raise DeadlineExceeded(f"the run's deadline would pass while waiting {seconds:.1f} s "
                                   "for the API server")
        self._sleep(seconds)

    def request_timeout(self, default: float) -> float:
        """The read timeout for one request: ``default``, never past the deadline."""
        left = self.remaining()
        return default if left is None else max(0.1, min(default, left))
