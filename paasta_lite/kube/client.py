"""The only module that talks to the Kubernetes API.

Everything goes in and out as plain JSON dicts: we build request paths ourselves and send them
through the official client's `ApiClient` (so kubeconfig handling, auth, TLS and proxies are the
client's), reading responses raw (`json.loads`) instead of through its model classes — for a
2,000-Deployment list that is ~1 s instead of ~3 s, and the dicts are exactly what the API
server sent (no snake_case round trip that would upset config hashes or diffs).

The `kubernetes` package is imported lazily, inside `KubeClient.__init__`, so commands that
never reach a cluster (`paasta --help`, `paasta render`) do not pay for importing it.

Errors come out as `kube_errors.KubeError` subclasses; transient ones (409 on update, 429,
5xx, timeouts, connection failures) are retried here with backoff, so callers only see what
retrying could not fix. The reconcilers instead send through `governed(budget)`: one
`run_budget.RunBudget` for the whole run decides retries, pauses and when to stop.

Writes by the reconcilers are server-side applies (`apply`, field manager
`managed_fields.FIELD_MANAGER`), generic by kind (`KINDS`): Deployments today, and any other
kind we render (HorizontalPodAutoscaler, PodDisruptionBudget) through the same call.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import quote

from paasta_lite.kube import labels
from paasta_lite.kube.errors import (
    Conflict,
    KubeConfigError,
    KubeError,
    NotFound,
    translate,
    with_retries,
)
from paasta_lite.kube.managed_fields import FIELD_MANAGER

if TYPE_CHECKING:
    from paasta_lite.kube.run_budget import RunBudget

Obj = dict[str, Any]
T = TypeVar("T")

APPS = "/apis/apps/v1"
CORE = "/api/v1"
#: kind -> (API prefix, plural): every kind paasta_lite writes, for the generic calls below.
KINDS: dict[str, tuple[str, str]] = {
    "Namespace": (CORE, "namespaces"),
    "Deployment": (APPS, "deployments"),
    "HorizontalPodAutoscaler": ("/apis/autoscaling/v2", "horizontalpodautoscalers"),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets"),
    "Lease": ("/apis/coordination.k8s.io/v1", "leases"),
}
APPLY_PATCH = "application/apply-patch+yaml"  # our JSON bodies are valid YAML

#: Cascading delete policy. Foreground keeps the Deployment visible (with a deletionTimestamp)
#: until its ReplicaSets and pods are gone, so "deleted" means the pods are gone, `paasta status`
#: shows the app as terminating meanwhile, and a concurrent setup run sees the name still taken
#: instead of creating a twin next to pods that are still shutting down. PaaSTA does the same.
DELETE_PROPAGATION = "Foreground"
#: Seconds to wait for a TCP connection (never more than the request timeout).
CONNECT_TIMEOUT = 10.0
#: A watch stream's read timeout is its server-side timeout plus this (dead connections end too).
WATCH_READ_SLACK = 30.0


def _path(*parts: str) -> str:
    return "/".join(quote(part, safe="") if index else part for index, part in enumerate(parts))


class KubeClient:
    """A connection to one cluster; plain-dict methods for the objects paasta_lite uses.

    ``kubeconfig``/``context`` default to the usual rules: ``$KUBECONFIG`` (a path or a
    ``:``-separated list) or ``~/.kube/config``, context from ``$KUBECONTEXT`` or the file's
    current-context; if no kubeconfig exists, the in-cluster service account is used.
    ``attempts``/``base_delay`` tune retries; ``timeout`` is the per-request read timeout (s).
    """

    def __init__(self, *, kubeconfig: str | None = None, context: str | None = None,
                 attempts: int = 4, base_delay: float = 0.2, timeout: float = 30.0,
                 pool_size: int | None = None) -> None:
        from kubernetes import client  # lazy: see module docstring

        configuration, self.context = _load_configuration(
            kubeconfig, context or os.environ.get("KUBECONTEXT") or None
        )
        configuration.retries = False  # one retry policy: ours (kube_errors.with_retries)
        if pool_size is not None:  # connections kept for parallel writers (urllib3 pool size)
            configuration.connection_pool_maxsize = max(pool_size, configuration.connection_pool_maxsize)
        self._api: Any = client.ApiClient(configuration)
        self._exception_type: Any = client.ApiException
        self.host = str(configuration.host)
        #: "<context> (<server>)": which cluster this is, for -v output
        self.description = f"{self.context} ({self.host})"
        self.attempts = attempts
        self.base_delay = base_delay
        self.timeout = timeout
        self._budget: RunBudget | None = None

    def governed(self, budget: RunBudget) -> KubeClient:
        """A view of this client (same connections) whose requests all go through ``budget``:
        its deadline caps every read timeout, and it alone decides retries (see `run_budget`).
        Close only the original."""
        view = copy.copy(self)
        view._budget = budget
        return view

    def _retry(self, operation: Callable[[], T]) -> T:
        if self._budget is not None:
            return self._budget.call(operation)
        return with_retries(operation, attempts=self.attempts, base_delay=self.base_delay)

    def close(self) -> None:
        self._api.close()

    def __enter__(self) -> KubeClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ transport
    def _send(self, method: str, path: str, *, query: dict[str, Any] | None = None,
              body: Obj | None = None, stream: bool = False, content_type: str | None = None) -> Any:
        """One HTTP request; returns the urllib3 response (2xx only) or raises a `KubeError`."""
        params = [(key, _query_value(value)) for key, value in (query or {}).items() if value is not None]
        headers = {"Accept": "application/json, */*"}
        if body is not None:
            headers["Content-Type"] = content_type or "application/json"
        try:
            request = self._api.param_serialize(
                method=method, resource_path=path, query_params=params, header_params=headers,
                body=body, auth_settings=["BearerToken"])
            read = self._budget.request_timeout(self.timeout) if self._budget else self.timeout
            connect = min(CONNECT_TIMEOUT, read)
            timeout = (connect, None) if stream else (connect, read)
            response = self._api.call_api(*request, _request_timeout=timeout).response
        except KubeError:
            raise
        except Exception as error:  # urllib3/socket/TLS errors: all mean "no usable answer"
            raise translate(error, where=self.host) from error
        if not 200 <= response.status <= 299:
            failure = self._exception_type(status=response.status, reason=response.reason,
                                           body=response.data.decode("utf-8", "replace"))
            failure.headers = response.headers
            raise translate(failure) from failure
        return response

    def _json(self, method: str, path: str, *, stale_on_conflict: bool = False, **kwargs: Any) -> Obj:
        """One JSON request under the retry policy. ``stale_on_conflict``: a 409 means our body
        (or its precondition) is out of date, so it is raised at once, never re-sent."""

        def once() -> Obj:
            try:
                response = self._send(method, path, **kwargs)
            except Conflict as error:
                if stale_on_conflict:
                    error.retryable = False
                raise
            try:
                data = json.loads(response.data)
            except ValueError as error:
                raise KubeError(f"{method} {path}: the API answered with non-JSON data") from error
            if not isinstance(data, dict):
                raise KubeError(f"{method} {path}: expected a JSON object, got {type(data).__name__}")
            return data

        return self._retry(once)

    def _items(self, path: str, query: dict[str, Any]) -> list[Obj]:
        items = self._json("GET", path, query=query).get("items") or []
        return [item for item in items if isinstance(item, dict)]

    # ------------------------------------------------------------------ cluster
    def version(self) -> Obj:
        """`/version` (a cheap reachability check)."""
        return self._json("GET", "/version")

    # ------------------------------------------------------------------ deployments
    def list_managed_deployments(self) -> list[Obj]:
        """Every Deployment with the managed label, all namespaces, in one request."""
        return self._items(f"{APPS}/deployments", {"labelSelector": labels.MANAGED_SELECTOR})

    def get_deployment(self, namespace: str, name: str) -> Obj:
        """The live Deployment; raises `NotFound` when there is none."""
        return self._json("GET", _path(APPS, "namespaces", namespace, "deployments", name))

    def create_deployment(self, namespace: str, body: Obj) -> Obj:
        return self._json("POST", _path(APPS, "namespaces", namespace, "deployments"), body=body)

    def replace_deployment(self, namespace: str, name: str, body: Obj) -> Obj:
        """PUT ``body`` over the live object, with the live ``resourceVersion``.

        The first PUT uses ``body``'s resourceVersion when it has one (the one seen in the
        list, saving a GET), otherwise reads the live object first. A 409 Conflict means
        someone wrote in between: re-read the resourceVersion and PUT again (we own every field
        we send, so last-writer-wins is the intended outcome). Other retryable errors back off.
        """
        path = _path(APPS, "namespaces", namespace, "deployments", name)
        version: dict[str, str | None] = {"rv": (body.get("metadata") or {}).get("resourceVersion")}

        def once() -> Obj:
            if not version["rv"]:
                version["rv"] = self.get_deployment(namespace, name)["metadata"]["resourceVersion"]
            sent = {**body, "metadata": {**(body.get("metadata") or {}), "resourceVersion": version["rv"]}}
            try:
                response = self._send("PUT", path, body=sent)
            except Conflict:
                version["rv"] = None  # re-read on the next attempt
                raise
            return dict(json.loads(response.data))

        return self._retry(once)

    def patch_deployment(self, namespace: str, name: str, patch: Obj) -> Obj:
        """JSON merge patch (RFC 7386): for small targeted edits (e.g. replicas)."""
        return self._json("PATCH", _path(APPS, "namespaces", namespace, "deployments", name),
                          body=patch, content_type="application/merge-patch+json")

    def delete_deployment(self, namespace: str, name: str) -> bool:
        """Delete with cascading to ReplicaSets and pods (see `DELETE_PROPAGATION`).

        Returns False when it was already gone (404 is success for a delete).
        """
        path = _path(APPS, "namespaces", namespace, "deployments", name)
        options = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": DELETE_PROPAGATION}
        try:
            self._json("DELETE", path, body=options)
        except NotFound:
            return False
        return True

    # ------------------------------------------------------------------ any kind (KINDS)
    def object_path(self, kind: str, namespace: str | None, name: str | None = None) -> str:
        """The REST path of ``kind`` objects (in ``namespace``; one of them with ``name``)."""
        try:
            prefix, plural = KINDS[kind]
        except KeyError:
            raise KubeError(f"paasta_lite does not know how to write a {kind}") from None
        parts = [prefix] + (["namespaces", namespace] if namespace else []) + [plural]
        return _path(*parts, *([name] if name else []))

    def list_managed(self, kind: str) -> list[Obj]:
        """Every ``kind`` object with the managed label, all namespaces, in one request."""
        return self._items(self.object_path(kind, None), {"labelSelector": labels.MANAGED_SELECTOR})

    def get(self, kind: str, namespace: str, name: str) -> Obj:
        """The live object; raises `NotFound` when there is none."""
        return self._json("GET", self.object_path(kind, namespace, name))

    def apply(self, body: Obj, *, field_manager: str = FIELD_MANAGER, force: bool = True) -> Obj:
        """Server-side apply ``body`` (a manifest with apiVersion, kind, metadata.name/namespace).

        Creates the object when missing. ``force`` takes over the fields we send from any other
        manager (we own them); without it, a field another manager set to another value is a
        409 `Conflict`. A `metadata.resourceVersion` in ``body`` is a precondition (409 when
        the object changed since). Fields other managers own are left alone.
        """
        metadata = body.get("metadata") or {}
        path = self.object_path(str(body.get("kind")), metadata.get("namespace"), str(metadata.get("name")))
        query = {"fieldManager": field_manager, "force": True if force else None}
        return self._json("PATCH", path, query=query, body=body, content_type=APPLY_PATCH,
                          stale_on_conflict=True)

    def merge_patch(self, kind: str, namespace: str, name: str, patch: Obj, *,
                    field_manager: str = FIELD_MANAGER) -> Obj:
        """JSON merge patch (RFC 7386) as ``field_manager``; a resourceVersion in it is a precondition."""
        return self._json("PATCH", self.object_path(kind, namespace, name), body=patch,
                          query={"fieldManager": field_manager},
                          content_type="application/merge-patch+json", stale_on_conflict=True)

    def create(self, kind: str, namespace: str | None, body: Obj) -> Obj:
        return self._json("POST", self.object_path(kind, namespace), body=body,
                          query={"fieldManager": FIELD_MANAGER})

    def replace(self, kind: str, namespace: str | None, name: str, body: Obj) -> Obj:
        """PUT ``body`` as is: its resourceVersion is a precondition (409 `Conflict` when stale)."""
        return self._json("PUT", self.object_path(kind, namespace, name), body=body,
                          query={"fieldManager": FIELD_MANAGER}, stale_on_conflict=True)

    def delete(self, kind: str, namespace: str, name: str, *, uid: str | None = None,
               resource_version: str | None = None) -> bool:
        """Delete, cascading (`DELETE_PROPAGATION`), only if the object still has ``uid`` and
        ``resource_version`` (when given): otherwise 409 `Conflict` and nothing is deleted.
        Returns False when it was already gone."""
        options: Obj = {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": DELETE_PROPAGATION}
        preconditions = {key: value for key, value in (("uid", uid), ("resourceVersion", resource_version))
                         if value}
        if preconditions:
            options["preconditions"] = preconditions
        try:
            self._json("DELETE", self.object_path(kind, namespace, name), body=options,
                       stale_on_conflict=True)
        except NotFound:
            return False
        return True

    # ------------------------------------------------------------------ namespaces
    def list_namespaces(self, selector: str | None = None) -> list[Obj]:
        return self._items(f"{CORE}/namespaces", {"labelSelector": selector})

    def create_namespace(self, name: str, namespace_labels: dict[str, str] | None = None) -> bool:
        """Create a namespace; returns False when it already existed (409 is fine here)."""
        body = {"apiVersion": "v1", "kind": "Namespace",
                "metadata": {"name": name, "labels": dict(namespace_labels or {})}}
        try:
            self._json("POST", f"{CORE}/namespaces", body=body, query={"fieldManager": FIELD_MANAGER})
        except Conflict as error:
            if error.reason != "AlreadyExists":
                raise
            return False
        return True

    # ------------------------------------------------------------------ replicasets, pods, events
    def list_replicasets(self, namespace: str, selector: str | None = None) -> list[Obj]:
        return self._items(_path(APPS, "namespaces", namespace, "replicasets"), {"labelSelector": selector})

    def list_pods(self, namespace: str, selector: str | None = None) -> list[Obj]:
        return self._items(_path(CORE, "namespaces", namespace, "pods"), {"labelSelector": selector})

    def list_events(self, namespace: str, field_selector: str | None = None) -> list[Obj]:
        """Events in a namespace, e.g. ``field_selector="involvedObject.name=web-abc12"``."""
        return self._items(_path(CORE, "namespaces", namespace, "events"), {"fieldSelector": field_selector})

    # ------------------------------------------------------------------ logs
    def read_pod_log(self, namespace: str, pod: str, *, container: str | None = None,
                     tail_lines: int | None = None, since_seconds: int | None = None,
                     timestamps: bool = True) -> str:
        """A container's log as text (``timestamps`` prefixes each line with RFC3339 time)."""
        query = _log_query(container, tail_lines, since_seconds, timestamps, follow=False)
        path = _path(CORE, "namespaces", namespace, "pods", pod, "log")

        def once() -> str:
            return str(self._send("GET", path, query=query).data.decode("utf-8", "replace"))

        return self._retry(once)

    def stream_pod_log(self, namespace: str, pod: str, *, container: str | None = None,
                       tail_lines: int | None = None, since_seconds: int | None = None,
                       timestamps: bool = True) -> Iterator[str]:
        """Follow a container's log: yield lines (without newline) until the server closes.

        Opening the stream is retried; once lines flow, a dropped connection ends the
        iteration with `Unreachable` (re-opening could repeat lines). Closing the generator
        closes the connection.
        """
        query = _log_query(container, tail_lines, since_seconds, timestamps, follow=True)
        path = _path(CORE, "namespaces", namespace, "pods", pod, "log")
        response = self._retry(lambda: self._send("GET", path, query=query, stream=True))
        try:
            yield from _lines(response)
        except KubeError:
            raise
        except Exception as error:  # urllib3 ProtocolError / ReadTimeoutError mid-stream
            raise translate(error, where=self.host) from error
        finally:
            response.release_conn()


    # ------------------------------------------------------------------ list + watch (paasta_deployd)
    def list_collection(self, path: str, *, selector: str | None = None) -> tuple[list[Obj], str]:
        """The items of a collection ``path`` and the list's resourceVersion (where a watch of
        the same collection starts from)."""
        data = self._json("GET", path, query={"labelSelector": selector})
        items = [item for item in data.get("items") or [] if isinstance(item, dict)]
        return items, str((data.get("metadata") or {}).get("resourceVersion") or "")

    def watch(self, path: str, *, selector: str | None = None, resource_version: str | None = None,
              timeout_seconds: int | None = None, bookmarks: bool = True) -> WatchStream:
        """Open a watch on a collection ``path`` (e.g. ``/apis/apps/v1/deployments``).

        Returns a `WatchStream` of events ``{"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR,
        "object": {...}}`` from ``resource_version`` on. ``timeout_seconds`` asks the server to end
        the stream (then watch again from the last resourceVersion seen); the socket read timeout
        is a little longer, so a silently dead connection ends the stream too. Opening is
        retried like any request; a 410 Gone (resourceVersion too old) comes back either as a
        `KubeError` with status 410 or as an ERROR event with code 410: list again.
        """
        query = {"watch": True, "labelSelector": selector, "resourceVersion": resource_version,
                 "timeoutSeconds": timeout_seconds, "allowWatchBookmarks": True if bookmarks else None}
        response = with_retries(lambda: self._send("GET", path, query=query, stream=True),
                                attempts=self.attempts, base_delay=self.base_delay)
        read_timeout = (timeout_seconds or self.timeout) + WATCH_READ_SLACK
        return WatchStream(response, read_timeout=read_timeout)


class WatchStream:
    """One open watch: iterate for events; `close()` (from any thread) ends the iteration."""

    def __init__(self, response: Any, *, read_timeout: float) -> None:
        self._response = response
        sock = getattr(getattr(response, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(read_timeout)  # opened without a read timeout (stream=True)
        self.closed = False

    def __iter__(self) -> Iterator[Obj]:
        try:
            for line in _lines(self._response):
                if not line.strip():
                    continue
                try:
                    event = json.loads(line)
                except ValueError as error:
                    raise KubeError(f"watch: the API sent a line that is not JSON: {line[:200]!r}") from error
                if isinstance(event, dict):
                    yield event
        except KubeError:
            raise
        except Exception as error:  # urllib3 ProtocolError / ReadTimeoutError mid-stream, or closed
            if self.closed:
                return
            raise translate(error) from error
        finally:
            self._response.release_conn()

    def close(self) -> None:
        """End the stream now, also when another thread is blocked reading it."""
        self.closed = True
        with contextlib.suppress(Exception):  # already closed or never fully opened: nothing to end
            self._response.shutdown()
        with contextlib.suppress(Exception):
            self._response.close()


def _lines(response: Any) -> Iterator[str]:
    pending = b""
    for chunk in response.stream(4096, decode_content=True):
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line.decode("utf-8", "replace")
    if pending:
        yield pending.decode("utf-8", "replace")


def _log_query(container: str | None, tail_lines: int | None, since_seconds: int | None,
               timestamps: bool, *, follow: bool) -> dict[str, Any]:
    return {"container": container, "tailLines": tail_lines, "sinceSeconds": since_seconds,
            "timestamps": timestamps, "follow": follow or None}


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _load_configuration(kubeconfig: str | None, context: str | None) -> tuple[Any, str]:
    """A client `Configuration` and the context name, from a kubeconfig (explicit, $KUBECONFIG,
    ~/.kube/config) or, when none exists and none was named, from the in-cluster service account.

    Raises `KubeConfigError` with a one-line message that says what is wrong and the fix (never
    the client library's own text: "Invalid kube-config file. No configuration found.")."""
    import yaml
    from kubernetes import client
    from kubernetes import config as kube_config

    config: Any = kube_config

    configuration = client.Configuration()
    # Read $KUBECONFIG now: the client reads it once, when first imported.
    path = kubeconfig or os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    try:
        config.load_kube_config(config_file=path, context=context,
                                client_configuration=configuration)
        if context is None:
            _, active = config.list_kube_config_contexts(config_file=path)
            context = str(active.get("name") or "kubeconfig")
        return configuration, context
    except (config.ConfigException, OSError, ValueError, TypeError, AttributeError, KeyError,
            yaml.YAMLError) as error:  # missing, unreadable or malformed file
        kube_error: Exception = error
    if kubeconfig is None and not os.environ.get("KUBECONFIG"):
        try:
            config.load_incluster_config(client_configuration=configuration)
            return configuration, "in-cluster"
        except config.ConfigException:
            pass
    raise KubeConfigError(kubeconfig_problem(path, kube_error)) from kube_error


#: The fix printed with every kubeconfig problem.
KUBECONFIG_FIX = "set KUBECONFIG to your cluster's kubeconfig (playground: make k8s_fake_cluster)"


def kubeconfig_problem(path: str, error: BaseException) -> str:
    """One line: which kubeconfig, what is wrong with it, and the fix."""
    paths = [part for part in path.split(os.pathsep) if part]
    if not any(os.path.exists(part) for part in paths):
        return f"no kubeconfig: {path} does not exist (and not running in a cluster); {KUBECONFIG_FIX}"
    mark = getattr(error, "problem_mark", None)
    if mark is not None:
        detail = f"not valid YAML (line {mark.line + 1})"
    elif isinstance(error, IsADirectoryError):
        detail = "a directory, not a file"
    elif isinstance(error, OSError):
        detail = f"unreadable ({error.strerror or type(error).__name__})"
    elif type(error).__name__ == "ConfigException":
        text = str(error).splitlines()[0] if str(error) else "invalid"
        detail = text.replace("Invalid kube-config file. ", "").replace("Invalid kube-config. ", "").strip()
        detail = detail.replace(f" in {path}/", " in ").replace(f" in {path}", "").replace(f"{path} ", "")
        detail = (detail[:1].lower() + detail[1:]).rstrip(".") or "invalid"
    else:  # the client tripped over an unexpected shape (a list where a mapping belongs...)
        detail = "not a kubeconfig (unexpected structure)"
    return f"kubeconfig {path} is not usable: {detail}; {KUBECONFIG_FIX}"
