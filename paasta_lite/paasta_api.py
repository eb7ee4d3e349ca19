"""`paasta_api`: serve the API (`api_app`) for one cluster on a production WSGI server (waitress).

    paasta_api [--host 127.0.0.1] [--port N] [-d SOA_DIR] [-c CLUSTER]
    python -m paasta_lite.paasta_api ...

Binds 127.0.0.1 unless told otherwise and logs one line when ready. Without ``--port`` it
picks a port that is stable per user (a hash of the user name into 33000-57999, PaaSTA's
playground rule) or, if that one is taken, any free one, and records its URL for the cluster
in ``api_endpoints.json`` in the system config directory (atomically, keeping other keys), so
``paasta status`` finds it. Kubernetes is read with the cluster in KUBECONFIG.

One recorded API per cluster: when ``api_endpoints.json`` already names another URL for the
cluster and a paasta API for that cluster answers there, a second ``paasta_api`` (without
``--port``) refuses to start (exit 2) rather than take the entry over; an entry whose server is
gone is replaced (and logged). On exit it removes the entry only if it still holds its own URL.
(Two APIs starting in the same instant can still both pass the check; the last one recorded wins.)
"""

from __future__ import annotations

import getpass
import hashlib
import json
import logging
import os
import signal
import socket
from pathlib import Path
from typing import Any

import click

from paasta_lite.api.app import ApiSettings, make_app
from paasta_lite.cli.base import CONTEXT_SETTINGS, PaastaCommand
from paasta_lite.cli.options import cluster_option, soa_dir_option
from paasta_lite.config.files import atomic_write_text, load_json_file
from paasta_lite.config.system_config import load_system_config, system_config_dir
from paasta_lite.errors import ConfigError, FileSystemError, PaastaLiteError, UsageError
from paasta_lite.status.instance_status import KubeReader

PORT_BASE, PORT_SPAN = 33000, 25000
ENDPOINTS_FILE = "api_endpoints.json"

log = logging.getLogger("paasta_lite.api")


def preferred_port(name: str = "paasta-dev-api", user: str | None = None) -> int:
    """A port in 33000-57999 that is the same every time for the same user."""
    user = user if user is not None else getpass.getuser()
    digest = hashlib.sha1(f"{name},{user}".encode()).hexdigest()
    return PORT_BASE + int(digest, 16) % PORT_SPAN


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on `port`; raises OSError when it is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def bind_preferred(host: str, preferred: int) -> socket.socket:
    """Bind `preferred` if free, else any free port (bound, so nobody can take it meanwhile)."""
    try:
        return bind(host, preferred)
    except OSError:
        return bind(host, 0)


def record_endpoint(directory: str | os.PathLike[str], cluster: str, url: str) -> Path:
    """Set ``api_endpoints[cluster] = url`` in `directory`/api_endpoints.json, keeping other keys."""
    path = Path(directory) / ENDPOINTS_FILE
    data: dict[str, Any] = {}
    if path.exists():
        loaded = load_json_file(path)
        if not isinstance(loaded, dict):
            raise ConfigError.single(str(path), "must contain a JSON object")
        data = loaded
    endpoints = data.get("api_endpoints") or {}
    if not isinstance(endpoints, dict):
        raise ConfigError.single(str(path), "api_endpoints must be an object", field="api_endpoints")
    data["api_endpoints"] = {**endpoints, cluster: url}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise FileSystemError(str(path.parent), f"cannot be created: {error.strerror or error}") from error
    atomic_write_text(path, _dump(data))
    return path


def recorded_endpoint(directory: str | os.PathLike[str], cluster: str) -> str | None:
    """The URL `api_endpoints.json` in `directory` records for `cluster`, if any."""
    path = Path(directory) / ENDPOINTS_FILE
    if not path.exists():
        return None
    data = load_json_file(path)
    endpoints = data.get("api_endpoints") if isinstance(data, dict) else None
    url = endpoints.get(cluster) if isinstance(endpoints, dict) else None
    return url if isinstance(url, str) else None


def api_answers(url: str, cluster: str, timeout: float = 2.0) -> bool:
    """Does a paasta API serving `cluster` answer ``GET <url>/v1/version``?"""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/v1/version", timeout=timeout) as response:
            body = json.loads(response.read(4096))
    except (urllib.error.URLError, OSError, ValueError):
        return False
    return isinstance(body, dict) and body.get("cluster") == cluster


def check_endpoint_free(directory: str | os.PathLike[str], cluster: str) -> str | None:
    """Refuse (`UsageError`) when a live API already holds the cluster's entry; else return the
    stale URL being replaced (None when there is none)."""
    current = recorded_endpoint(directory, cluster)
    if current is None:
        return None
    if api_answers(current, cluster):
        path = Path(directory) / ENDPOINTS_FILE
        raise UsageError(
            f"a paasta API for cluster {cluster} already answers at {current} (recorded in {path}); "
            "stop that one first, or start this one with --port N (it is then not recorded)"
        )
    return current


def forget_endpoint(directory: str | os.PathLike[str], cluster: str, url: str) -> None:
    """Remove ``api_endpoints[cluster]`` if it is still `url` (a stopped API must not stay listed:
    `paasta status` would keep asking it instead of reading the cluster directly)."""
    path = Path(directory) / ENDPOINTS_FILE
    try:
        data = load_json_file(path)
    except ConfigError:
        return
    endpoints = data.get("api_endpoints") if isinstance(data, dict) else None
    if isinstance(endpoints, dict) and endpoints.get(cluster) == url:
        del endpoints[cluster]
        atomic_write_text(path, _dump(data))


def _dump(data: Any) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def url_for(host: str, port: int) -> str:
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::", "::1") else host
    return f"http://{shown}:{port}"


def kube_factory() -> KubeReader:
    from paasta_lite.status.instance_status import kube_from_kubeconfig

    return kube_from_kubeconfig()[0]


@click.command(cls=PaastaCommand, context_settings=CONTEXT_SETTINGS)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Port (default: stable per user).")
@click.option("--threads", type=click.IntRange(1, 64), default=8, show_default=True, help="Worker threads.")
@soa_dir_option
@cluster_option("Cluster this API serves (default: `cluster` from the system config).")
def main(host: str, port: int | None, threads: int, soa_dir: str, cluster: str | None) -> None:
    """Serve the paasta_lite API for one cluster."""
    import waitress

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    system_config = load_system_config(missing_ok=cluster is not None)
    cluster = system_config.require_cluster(cluster)
    stale = check_endpoint_free(system_config_dir(), cluster) if port is None else None
    try:
        sock = bind(host, port) if port is not None else bind_preferred(host, preferred_port())
    except OSError as error:
        raise PaastaLiteError(f"cannot listen on {host}:{port}: {error.strerror or error}") from error
    url = url_for(host, sock.getsockname()[1])
    recorded = ""
    if port is None:
        if stale is not None and stale != url:
            log.warning("replacing the api_endpoints entry of %s: nothing answers at %s", cluster, stale)
        recorded = f" (recorded in {record_endpoint(system_config_dir(), cluster, url)})"
    app = make_app(
        ApiSettings(soa_dir=soa_dir, cluster=cluster, kube_factory=kube_factory, system=system_config)
    )
    server = waitress.create_server(app, sockets=[sock], threads=threads, ident="paasta_lite")
    log.info("paasta_api ready: serving cluster %s from %s at %s%s", cluster, soa_dir, url, recorded)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    try:
        server.run()
    except KeyboardInterrupt:
        log.info("paasta_api stopped")
    finally:
        server.close()
        if recorded:
            forget_endpoint(system_config_dir(), cluster, url)


def _stop_on_sigterm(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    main()
