"""The paasta API as a plain WSGI application: JSON in and out, errors as JSON with a message.

Endpoints (documented in `openapi.yaml` beside this module, served at ``/v1/openapi.yaml``):

- ``GET /v1/version`` -> ``{"version", "cluster"}``
- ``GET /v1/services/<service>/<instance>/status[?verbose=N]`` -> `InstanceStatus.to_dict()`
- ``GET /v1/services/<service>/<instance>/bounce_status`` -> PaaSTA's bounce_status fields plus
  our ``state``/``done`` verdict

Errors: 404 for an unknown route, service or instance (with a message saying which), 400 for a
bad parameter, 405 for another method, 422 when the service's soa-configs are invalid, 503 when
the cluster cannot be read (with the reason, and ``"retryable": false`` when asking again cannot
help: the API has no usable kubeconfig, or its credentials are refused), 500 for a bug (logged
with its traceback). PaaSTA answers errors in plain text that its CLI then hides; every answer
here is JSON.

The app holds no state besides its settings; it loads the service's soa-configs per request
(cheap: one service) so edits show up without a restart.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any
from urllib.parse import parse_qs

from paasta_lite import __version__
from paasta_lite.config.soa_config import SoaDir
from paasta_lite.config.system_config import SystemConfig
from paasta_lite.errors import ConfigError, PaastaLiteError
from paasta_lite.kube.errors import KubeError
from paasta_lite.status.instance_status import (
    InstanceStatus,
    KubeReader,
    status_from_cluster,
    versions_summary,
)

log = logging.getLogger("paasta_lite.api")

StartResponse = Callable[..., Any]
Environ = dict[str, Any]

_INSTANCE_ROUTE = re.compile(
    r"^/v1/services/(?P<service>[^/]+)/(?P<instance>[^/]+)/(?P<what>status|bounce_status)$"
)


class HttpError(Exception):
    """An answer other than 200, with the message the client will read (and, for a 503 that
    asking again cannot fix, ``retryable=False``)."""

    def __init__(self, status: int, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retryable = retryable

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"message": self.message}
        if self.retryable is not None:
            body["retryable"] = self.retryable
        return body


@dataclass
class ApiSettings:
    """What the app serves: one cluster, from one soa_dir, read with one Kubernetes client.

    `kube_factory` builds the client on first use (so a missing kubeconfig is a 503 on the
    request that needs it, not a crash at start-up).
    """

    soa_dir: str
    cluster: str
    kube_factory: Callable[[], KubeReader]
    #: the reconciler's system config, to render the desired config hash (None: compare shas only)
    system: SystemConfig | None = None
    _kube: KubeReader | None = field(default=None, repr=False)

    def kube(self) -> KubeReader:
        if self._kube is None:
            self._kube = self.kube_factory()
        return self._kube


_STATUS_TEXT = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    422: "Unprocessable Entity",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


def make_app(settings: ApiSettings) -> Callable[[Environ, StartResponse], Iterable[bytes]]:
    """The WSGI callable serving `settings`."""

    def app(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        try:
            if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
                raise HttpError(
                    405, f"{environ.get('REQUEST_METHOD')} is not supported; this API is read-only (GET)"
                )
            content_type, body = route(settings, path, parse_qs(environ.get("QUERY_STRING") or ""))
            status = 200
        except HttpError as error:
            status, content_type, body = error.status, "application/json", _json(error.body())
        except Exception as error:  # a bug: answer JSON, keep the traceback in the server log
            log.exception("internal error serving %s", path)
            message = f"internal error: {type(error).__name__}: {error}"
            status, content_type, body = 500, "application/json", _json({"message": message})
        headers = [("Content-Type", content_type), ("Content-Length", str(len(body)))]
        start_response(f"{status} {_STATUS_TEXT.get(status, 'Error')}", headers)
        return [b""] if environ.get("REQUEST_METHOD") == "HEAD" else [body]

    return app


def _json(data: Any) -> bytes:
    return (json.dumps(data, sort_keys=True) + "\n").encode()


def route(settings: ApiSettings, path: str, query: dict[str, list[str]]) -> tuple[str, bytes]:
    """Dispatch one GET; returns (content type, body) or raises `HttpError`."""
    if path == "/v1/version":
        return "application/json", _json({"version": __version__, "cluster": settings.cluster})
    if path == "/v1/openapi.yaml":
        return "application/yaml", openapi_document().encode()
    match = _INSTANCE_ROUTE.match(path)
    if match is None:
        raise HttpError(404, f"no such endpoint: {path} (see /v1/openapi.yaml)")
    verbose = _int_param(query, "verbose", default=0, low=0, high=3)
    status = instance_status(settings, match["service"], match["instance"], verbose=verbose)
    if match["what"] == "status":
        return "application/json", _json(status.to_dict())
    return "application/json", _json(bounce_status(status))


def _int_param(query: dict[str, list[str]], name: str, *, default: int, low: int, high: int) -> int:
    values = query.get(name)
    if not values:
        return default
    try:
        value = int(values[-1])
    except ValueError:
        raise HttpError(400, f"query parameter {name} must be an integer, got {values[-1]!r}") from None
    if not low <= value <= high:
        raise HttpError(400, f"query parameter {name} must be between {low} and {high}, got {value}")
    return value


def instance_status(settings: ApiSettings, service: str, instance: str, *, verbose: int) -> InstanceStatus:
    """Load the instance's config and read its status from the cluster, mapping errors to HTTP."""
    soa = SoaDir(settings.soa_dir)
    if service not in soa.list_services():
        raise HttpError(404, f"no service named '{service}' in {settings.soa_dir}")
    try:
        config = soa.load_service(service, clusters=[settings.cluster])
    except ConfigError as error:
        raise HttpError(422, f"soa-configs of '{service}' are invalid: {error}") from error
    invalid = config.invalid_instances.get(settings.cluster, {})
    if instance in invalid:
        raise HttpError(422, f"instance '{service}.{instance}' is invalid: {invalid[instance]}")
    instance_config = config.instances.get(settings.cluster, {}).get(instance)
    if instance_config is None:
        raise HttpError(
            404,
            f"no instance named '{service}.{instance}' has been configured to run"
            f" in the {settings.cluster} cluster",
        )
    try:
        kube = settings.kube()
        source = f"cluster {settings.cluster}"
        return status_from_cluster(
            kube, config, instance_config, verbose=verbose, source=source, system=settings.system
        )
    except KubeError as error:
        message = f"cluster {settings.cluster} could not be read: {error}"
        raise HttpError(503, message, retryable=error.retryable) from error
    except PaastaLiteError as error:  # e.g. no usable kubeconfig when the client is first built
        message = f"cluster {settings.cluster} is not reachable: {error}"
        raise HttpError(503, message, retryable=False) from error


def bounce_status(status: InstanceStatus) -> dict[str, Any]:
    """PaaSTA's bounce_status fields (so its habits carry over) plus our verdict."""
    health = status.health
    versions = versions_summary(health.versions)
    return {
        "service": status.service,
        "instance": status.instance,
        "cluster": status.cluster,
        "expected_instance_count": health.expected,
        "running_instance_count": health.ready,
        "desired_state": health.desired_state,
        "deploy_status": health.state.value,
        "active_versions": versions,
        "active_shas": [[sha, config] for sha, _, config in versions],
        "app_count": len(versions),
        "state": health.state.value,
        "reason": health.reason,
        "message": health.message,
        "done": health.done,
        "done_message": health.done_message,
    }


def openapi_document() -> str:
    """The OpenAPI document shipped in the package (`paasta_lite/api/openapi.yaml`)."""
    return resources.files("paasta_lite.api").joinpath("openapi.yaml").read_text(encoding="utf-8")
