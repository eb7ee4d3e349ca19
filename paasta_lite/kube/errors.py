"""Kubernetes API failures as our own error types, and the one retry policy.

`kube_client` is the only caller of the Kubernetes client; every `ApiException` and urllib3
error it sees goes through `translate()` here, so the rest of paasta_lite never imports the
client library to catch its errors. The type says what the failure means:

- `retryable` (409 Conflict, 429 TooManyRequests, 5xx, timeouts, connection failures) is safe
  to try again after a pause; everything else (400, 401, 403, 404, 422, AlreadyExists) will
  fail the same way again and is reported as is.
- `Invalid` (422) carries the API server's own message ("Deployment.apps "x" is invalid:
  spec.selector: ...") because that is what the service owner needs to read.

Bodies are trimmed: a 5xx from a proxy can be a whole HTML page.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from typing import Any, TypeVar

from paasta_lite.errors import PaastaLiteError

T = TypeVar("T")

MAX_BODY_CHARS = 500
#: The longest Retry-After we honour (seconds): a server asking for more is treated as asking for this.
MAX_RETRY_AFTER = 30.0


class KubeError(PaastaLiteError):
    """Any failure talking to the Kubernetes API. ``status`` is the HTTP code (0 = no answer)."""

    retryable = False
    #: the API server (or the way to it) is in trouble: counts towards a run's circuit breaker
    #: (`run_budget`). 429, 5xx and no answer at all; never a 4xx about the request itself.
    server_side = False

    def __init__(self, message: str, *, status: int = 0, reason: str = "", body: str = "",
                 details: dict[str, Any] | None = None, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason
        self.body = body  # trimmed
        self.details = details or {}  # the Status `details` (name, kind, causes[field, message])
        #: the server's Retry-After hint in seconds (429, 503), when it gave one
        self.retry_after = retry_after


class BadRequest(KubeError):
    """400: the request itself is malformed (a bug on our side, or an unsupported selector)."""


class Unauthorized(KubeError):
    """401: the credentials in the kubeconfig were refused."""


class Forbidden(KubeError):
    """403: authenticated, but RBAC does not allow this."""


class NotFound(KubeError):
    """404: the object (or its namespace) does not exist."""


class Conflict(KubeError):
    """409 Conflict: the object changed since we read it; re-read and try again."""

    retryable = True


class AlreadyExists(Conflict):
    """409 AlreadyExists on create: re-sending the same create cannot succeed."""

    retryable = False


class Invalid(KubeError):
    """422: the API server refused the object; ``message`` is its explanation."""


class TooManyRequests(KubeError):
    """429: throttled; ``retry_after`` is the server's hint in seconds, when it gave one."""

    retryable = True
    server_side = True


class ServerError(KubeError):
    """5xx: the API server (or something in front of it) failed; usually transient (503 may
    carry a Retry-After hint)."""

    retryable = True
    server_side = True


class Unreachable(KubeError):
    """No HTTP answer at all: connection refused, DNS, TLS, timeout.

    ``timed_out`` tells a slow server (worth waiting for) from one that is not there at all
    (connection refused: worth waiting for only a while, see `status.instance_status`).
    """

    retryable = True
    server_side = True

    def __init__(self, message: str, *, timed_out: bool = False, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.timed_out = timed_out


class KubeConfigError(KubeError):
    """No usable kubeconfig or in-cluster configuration."""

    exit_code = 2


_BY_STATUS: dict[int, type[KubeError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
    429: TooManyRequests,
}


def trim(text: str, limit: int = MAX_BODY_CHARS) -> str:
    """Shorten a response body for messages; keeps the start, which says what went wrong."""
    text = text.strip()
    return text if len(text) <= limit else text[:limit] + f"... ({len(text) - limit} more characters)"


def _parse_status(body: str) -> tuple[str, str, dict[str, Any]]:
    """(message, reason, details) from a Kubernetes `Status` body; empty when it is not one."""
    try:
        data = json.loads(body)
    except ValueError:
        return "", "", {}
    if not isinstance(data, dict):
        return "", "", {}
    details = data.get("details")
    return (str(data.get("message") or ""), str(data.get("reason") or ""),
            details if isinstance(details, dict) else {})


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def from_http(status: int, body: str, *, http_reason: str = "", headers: Any = None) -> KubeError:
    """Build the error for an HTTP answer with a non-2xx ``status`` (pure; used by `translate`)."""
    message, reason, details = _parse_status(body)
    message = message or trim(body) or http_reason or f"HTTP {status}"
    kwargs: dict[str, Any] = {"status": status, "reason": reason or http_reason, "body": trim(body),
                              "details": details, "retry_after": _retry_after(headers)}
    if status == 409 and reason == "AlreadyExists":
        return AlreadyExists(message, **kwargs)
    if status == 429:
        return TooManyRequests(message, **kwargs)
    if status >= 500:
        return ServerError(message, **kwargs)
    return _BY_STATUS.get(status, KubeError)(message, **kwargs)


def no_answer(error: BaseException) -> tuple[str, bool]:
    """A transport error in a few words ("connection refused", "timed out"...), and whether it
    was a timeout. Duck-typed on class names: urllib3 wraps the cause in ``reason``."""
    cause = getattr(error, "reason", None)
    chain = [error, cause] if isinstance(cause, BaseException) else [error]
    names = {cls.__name__ for item in chain for cls in type(item).__mro__}
    text = " ".join(str(item) for item in chain)
    # Refused before timeouts: urllib3's NewConnectionError subclasses ConnectTimeoutError.
    if "ConnectionRefusedError" in names or "Connection refused" in text:
        return "connection refused", False
    if "NameResolutionError" in names or "resolve" in text or "Name or service not known" in text:
        return "the host name does not resolve", False
    if any("Timeout" in type(item).__name__ for item in chain) or "timed out" in text:
        return "timed out", True
    if any("SSL" in name for name in names):
        return "TLS handshake failed", False
    last = chain[-1]
    return trim(f"{type(last).__name__}: {last}", 200), False


def translate(error: BaseException, *, where: str = "") -> KubeError:
    """Turn a client-library exception into a `KubeError` (the caller chains it with ``from``).

    Accepts `kubernetes.client.ApiException` (duck-typed on ``status``/``body`` so this module
    does not import the client) and urllib3 / socket errors, which mean "no answer": those read
    "Kubernetes API <where> unreachable (connection refused)", never the library's own text.
    """
    if isinstance(error, KubeError):
        return error
    status = getattr(error, "status", None)
    if isinstance(status, int) and status > 0 and hasattr(error, "body"):
        body = getattr(error, "body", None) or ""
        if isinstance(body, bytes):
            body = body.decode("utf-8", "replace")
        return from_http(
            status, str(body), http_reason=str(getattr(error, "reason", "") or ""),
            headers=getattr(error, "headers", None),
        )
    what, timed_out = no_answer(error)
    target = f"Kubernetes API {where}" if where else "Kubernetes API"
    hint = "; is the cluster up? (playground: make k8s_fake_cluster)" if what == "connection refused" else ""
    return Unreachable(f"{target} unreachable ({what}){hint}", timed_out=timed_out)


def _delay(error: KubeError, attempt: int, base_delay: float) -> float:
    if error.server_side and error.retry_after is not None:
        return float(min(error.retry_after, MAX_RETRY_AFTER))
    backoff: float = base_delay * 2.0**attempt
    return backoff + random.uniform(0, backoff / 2)  # jitter: concurrent runs do not retry in step


def with_retries(
    operation: Callable[[], T],
    *,
    attempts: int = 4,
    base_delay: float = 0.2,
    on_retry: Callable[[KubeError, int], None] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run ``operation``; retry it on retryable `KubeError`s with exponential backoff and jitter.

    ``attempts`` counts every try (1 = no retry). Non-retryable errors and the last retryable
    one propagate unchanged. ``on_retry(error, attempt)`` is called before each pause (for -v
    logging). 429 and 503 honour the server's Retry-After (capped at `MAX_RETRY_AFTER`).
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(attempts):
        try:
            return operation()
        except KubeError as error:
            if not error.retryable or attempt == attempts - 1:
                raise
            if on_retry is not None:
                on_retry(error, attempt + 1)
            sleep(_delay(error, attempt, base_delay))
    raise AssertionError("unreachable")  # pragma: no cover
