"""Gather what the health model needs for one service.instance, from a cluster or its API.

Two sources, one result. `status_from_cluster` reads the Deployment, ReplicaSets, pods (and, when
asked, events and log tails) through `kube_client`; `status_from_api` asks a cluster's paasta
API (`api_endpoints[cluster]` in the system config), which runs `status_from_cluster` on its side
and returns `InstanceStatus.to_dict()`. Either way the verdict comes from `health.assess`, so
`paasta status`, the API and `wait-for-deployment` agree.

`fetch_instance_health(...)` picks the source the way `paasta status` does (API endpoint when
configured, else the cluster in KUBECONFIG) and is what the wait loop calls.

Config drift: the API renders the desired config hash with its own (the cluster's) system config.
The direct path does not: the local /etc/paasta may not be the cluster's (other volumes, another
registry), and a hash rendered with it would call a finished deploy "not applied". It compares
the soa hash (`kube.config_hash.soa_config_hash`, no system config in it) with the annotation the
reconciler wrote, and the health says plainly when neither can be compared.

Failures (`failure_kind`): what `paasta status` and the wait loops do when a status cannot be
read. PERMANENT (no or malformed kubeconfig, a cluster this host cannot reach, 401/403, an API
404 for an unknown service or instance, invalid configs): the same every time, so waiting ends at
once with exit 2 and the fix. UNREACHABLE (connection refused: nothing listens there) is retried
for `UNREACHABLE_GIVE_UP_S` only. TRANSIENT (timeouts, 5xx, 429) is retried while waiting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from enum import Enum
from typing import Any, Protocol

from paasta_lite.config.deployments_json import Control, DeploymentsJson
from paasta_lite.config.instance_config import InstanceConfig
from paasta_lite.config.naming import app_name, label_value
from paasta_lite.config.soa_config import ServiceConfig
from paasta_lite.config.system_config import SystemConfig
from paasta_lite.errors import PaastaLiteError
from paasta_lite.kube import labels
from paasta_lite.kube.config_hash import soa_config_hash
from paasta_lite.kube.errors import Forbidden, KubeError, NotFound, Unauthorized, Unreachable
from paasta_lite.kube.render import desired_replicas, render_instance
from paasta_lite.kube.render_scaling import kept_replicas
from paasta_lite.status.health import Desired, InstanceHealth, Observed, Version, assess

JsonDict = dict[str, Any]


class KubeReader(Protocol):
    """The part of `kube_client.KubeClient` we read with (raw API dicts).

    `get_deployment` raises `kube_errors.NotFound` when there is none.
    """

    def get_deployment(self, namespace: str, name: str) -> JsonDict: ...

    def list_replicasets(self, namespace: str, selector: str | None = None) -> list[JsonDict]: ...

    def list_pods(self, namespace: str, selector: str | None = None) -> list[JsonDict]: ...

    def list_events(self, namespace: str, field_selector: str | None = None) -> list[JsonDict]: ...

    def read_pod_log(
        self,
        namespace: str,
        pod: str,
        *,
        container: str | None = None,
        tail_lines: int | None = None,
        since_seconds: int | None = None,
        timestamps: bool = True,
    ) -> str: ...


#: How long "connection refused" is retried before a wait gives up on it (an API or cluster
#: being restarted comes back within this; one that was stopped for good does not).
UNREACHABLE_GIVE_UP_S = 60.0


class Failure(str, Enum):
    """What a failed status read means for whoever waits (see the module docstring)."""

    PERMANENT = "permanent"
    UNREACHABLE = "unreachable"
    TRANSIENT = "transient"


class StatusUnavailable(PaastaLiteError):
    """The status could not be fetched from an API; says where, why and (when known) the fix."""

    def __init__(self, message: str, *, status: int = 0, failure: Failure = Failure.TRANSIENT) -> None:
        super().__init__(message)
        self.status = status
        self.failure = failure
        if failure is Failure.PERMANENT:
            self.exit_code = 2


class CannotGetStatus(PaastaLiteError):
    """A status read that will fail the same way every time: fix something, then run again."""

    exit_code = 2


def failure_kind(error: PaastaLiteError) -> Failure:
    """PERMANENT, UNREACHABLE or TRANSIENT (see the module docstring)."""
    if isinstance(error, StatusUnavailable):
        return error.failure
    if isinstance(error, Unreachable):
        return Failure.TRANSIENT if error.timed_out else Failure.UNREACHABLE
    if isinstance(error, KubeError) and error.retryable:
        return Failure.TRANSIENT
    return Failure.PERMANENT


def explained(error: PaastaLiteError) -> str:
    """The error's message, plus the fix when the error type alone implies one."""
    if isinstance(error, Unauthorized):
        return f"{error} (401: the kubeconfig's credentials were refused; refresh them)"
    if isinstance(error, Forbidden):
        rbac = "may not read Deployments, ReplicaSets, pods or events here"
        return f"{error} (403: the kubeconfig's user {rbac}; ask for RBAC read access)"
    return str(error)


@dataclass(frozen=True)
class ContainerLog:
    pod: str
    container: str
    lines: tuple[str, ...]


@dataclass(frozen=True)
class InstanceStatus:
    """The health of one instance plus where it came from (and log tails at -vv)."""

    service: str
    instance: str
    cluster: str
    source: str
    health: InstanceHealth
    logs: tuple[ContainerLog, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "instance": self.instance,
            "cluster": self.cluster,
            "source": self.source,
            "health": self.health.to_dict(),
            "logs": [asdict(log) for log in self.logs],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, source: str | None = None) -> InstanceStatus:
        return cls(
            service=data["service"],
            instance=data["instance"],
            cluster=data["cluster"],
            source=source or data["source"],
            health=InstanceHealth.from_dict(data["health"]),
            logs=tuple(
                ContainerLog(log["pod"], log["container"], tuple(log["lines"]))
                for log in data.get("logs", ())
            ),
        )


def tail_lines_for(verbose: int) -> int:
    """How many log lines -v levels show: none below -vv, then 10, 100... (PaaSTA's rule)."""
    return 0 if verbose < 2 else 10 ** (verbose - 1)


def desired_for(
    service: ServiceConfig,
    instance: InstanceConfig,
    *,
    config_sha: str | None = None,
    live_replicas: int | None = None,
) -> Desired:
    """What we want for `instance`: version from deployments.json, replicas, desired_state.

    Replicas follow the reconciler (`render.desired_replicas`: `max_instances` for an autoscaled
    instance with no Deployment yet); once it exists the autoscaler owns the count, so the live
    Deployment's replicas, kept within [min, max] (`render_scaling.kept_replicas`), are expected.
    """
    deployments = service.deployments or DeploymentsJson()
    deployed = deployments.version_for(instance.deploy_group)
    control = deployments.control_for(instance.service, instance.cluster, instance.instance)
    soa_sha = soa_config_hash(instance, deployed, force_bounce=control.force_bounce) if deployed else None
    # Compared with label values, so built the way render writes them (odd image versions get hashed).
    version = (
        Version(
            label_value(deployed.git_sha),
            config_sha,
            label_value(deployed.image_version) if deployed.image_version else None,
        )
        if deployed
        else None
    )
    replicas = desired_replicas(instance, Control())
    if instance.is_autoscaled and live_replicas is not None:
        replicas = kept_replicas(instance, live_replicas)
    return Desired(
        version=version,
        replicas=replicas,
        desired_state=control.desired_state,
        bounce_margin_factor=instance.bounce_margin_factor,
        soa_config_sha=soa_sha,
    )


def desired_config_sha(
    service: ServiceConfig, instance: InstanceConfig, system: SystemConfig | None
) -> str | None:
    """The config hash the reconciler would put on the instance (None when it cannot render).

    None (no system config, no docker registry, not deployed, invalid config) makes the health
    model compare git shas only.
    """
    if system is None:
        return None
    try:
        return render_instance(instance, service.deployments, system).config_hash
    except PaastaLiteError:
        return None


def gather(kube: KubeReader, instance: InstanceConfig, *, events: bool = False) -> Observed:
    """Read the instance's objects; events (one namespace list, filtered to ours) only if asked.

    A missing namespace reads as "nothing there" (the real API answers lists in a missing
    namespace with an empty list; some servers answer 404).
    """
    namespace, selector = instance.namespace, labels.instance_selector(instance.service, instance.instance)
    try:
        deployment: JsonDict | None = kube.get_deployment(
            namespace, app_name(instance.service, instance.instance)
        )
    except NotFound:
        deployment = None
    replicasets = _listed(lambda: kube.list_replicasets(namespace, selector))
    pods = _listed(lambda: kube.list_pods(namespace, selector))
    found: list[JsonDict] = []
    if events:
        ours = {obj.get("metadata", {}).get("name") for obj in [deployment or {}, *replicasets, *pods]}
        everything = _listed(lambda: kube.list_events(namespace))
        found = [e for e in everything if (e.get("involvedObject") or {}).get("name") in ours]
    return Observed(deployment, replicasets, pods, found)


def _listed(read: Callable[[], list[JsonDict]]) -> list[JsonDict]:
    try:
        return read()
    except NotFound:
        return []


def status_from_cluster(
    kube: KubeReader,
    service: ServiceConfig,
    instance: InstanceConfig,
    *,
    verbose: int = 0,
    source: str = "cluster",
    system: SystemConfig | None = None,
) -> InstanceStatus:
    """Status of one instance read directly from the cluster (what the API serves).

    The soa hash is always compared. Pass `system` only when it is the cluster's own system
    config (the API's): the desired config hash is then rendered too, so a system-config change
    the reconciler has not applied yet also reads as Pending.
    """
    observed = gather(kube, instance, events=verbose >= 2)
    live = (observed.deployment or {}).get("spec", {}).get("replicas")
    config_sha = desired_config_sha(service, instance, system)
    desired = desired_for(service, instance, config_sha=config_sha, live_replicas=live)
    health = assess(observed, desired)
    logs = _log_tails(kube, instance.namespace, health, tail_lines_for(verbose))
    return InstanceStatus(instance.service, instance.instance, instance.cluster, source, health, logs)


def _log_tails(
    kube: KubeReader, namespace: str, health: InstanceHealth, lines: int
) -> tuple[ContainerLog, ...]:
    """Last `lines` lines of every container of every pod that is not ready."""
    if lines <= 0:
        return ()
    tails = []
    for pod in health.pods:
        if pod.ready or pod.deleting:
            continue
        for container in pod.containers:
            try:
                text = kube.read_pod_log(
                    namespace, pod.name, container=container, tail_lines=lines, timestamps=False
                )
            except KubeError as error:  # e.g. the container has not started: say so, keep the rest
                text = f"(no log: {error})"
            tails.append(ContainerLog(pod.name, container, tuple(text.splitlines()[-lines:])))
    return tuple(tails)


def status_from_api(
    url: str, service: str, instance: str, *, verbose: int = 0, timeout: float = 10.0, cluster: str = ""
) -> InstanceStatus:
    """Ask a paasta API (`GET /v1/services/<s>/<i>/status`) and rebuild its answer.

    Raises `StatusUnavailable` with its `Failure` kind and, for the permanent ones, the fix.
    """
    import requests  # lazy: `paasta --help` must not pay for it

    api = f"the paasta API of cluster {cluster} at {url}" if cluster else f"API {url}"
    endpoint = f"{url.rstrip('/')}/v1/services/{service}/{instance}/status"
    try:
        response = requests.get(endpoint, params={"verbose": str(verbose)}, timeout=timeout)
    except requests.Timeout as error:
        raise StatusUnavailable(f"{api} did not answer within {timeout:g} s (timed out)") from error
    except requests.RequestException as error:
        what = "connection refused" if "refused" in str(error) else type(error).__name__
        raise StatusUnavailable(
            f"{api} does not answer ({what}); if that API was stopped, remove its api_endpoints entry"
            " (playground: make playground-forget-api)",
            failure=Failure.UNREACHABLE,
        ) from error
    try:
        body = response.json()
    except ValueError:
        body = None
    if response.status_code != 200:
        message = body.get("message") if isinstance(body, dict) else response.text.strip()[:300]
        code = response.status_code
        said_final = isinstance(body, dict) and body.get("retryable") is False  # our API says so on a 503
        retry = (code in (408, 429) or code >= 500) and not said_final
        failure = Failure.TRANSIENT if retry else Failure.PERMANENT
        fix = _API_FIXES.get(code, "") if not retry else ""
        raise StatusUnavailable(f"{api} answered {code}: {message}{fix}", status=code, failure=failure)
    if not isinstance(body, dict):
        raise StatusUnavailable(
            f"{api} answered with something that is not a status object", failure=Failure.PERMANENT
        )
    try:
        return InstanceStatus.from_dict(body, source=f"API {url}")
    except (KeyError, TypeError, ValueError) as error:
        raise StatusUnavailable(
            f"{api} sent a status this client does not understand: {error}", failure=Failure.PERMANENT
        ) from error


#: The fix for an API's permanent refusals (appended to its message).
_API_FIXES = {
    401: " (the API refused us: check the credentials in front of it)",
    403: " (the API refused us: check the credentials in front of it)",
    404: " (the API reads other soa-configs than you: compare its -d/--soa-dir with yours)",
    422: " (fix the soa-configs it names, then run again)",
}


def fetch_instance_status(
    system_config: SystemConfig,
    service: ServiceConfig,
    instance: InstanceConfig,
    *,
    verbose: int = 0,
    kube: KubeReader | None = None,
    timeout: float | None = None,
) -> InstanceStatus:
    """Status of one instance: via `api_endpoints[cluster]` if configured, else the cluster itself.

    `kube` is the client for the direct path; when None, one is built from KUBECONFIG. The direct
    path reads only this host's own cluster (the system config's `cluster`, when it names one):
    KUBECONFIG cannot be assumed to reach any other, so another cluster without an API endpoint
    is a `CannotGetStatus`.
    """
    cluster = instance.cluster
    url = system_config.api_endpoints.get(cluster)
    if url:
        wait = timeout if timeout is not None else system_config.api_client_timeout
        return status_from_api(
            url, instance.service, instance.instance, verbose=verbose, timeout=wait, cluster=cluster
        )
    require_direct_cluster(system_config, cluster)
    if kube is None:
        kube, where = kube_from_kubeconfig()
        source = f"KUBECONFIG {where}"
    else:
        source = "cluster (direct)"
    return status_from_cluster(kube, service, instance, verbose=verbose, source=source)


def require_direct_cluster(system_config: SystemConfig, cluster: str) -> None:
    """Raise `CannotGetStatus` when `cluster` cannot be read from here (see `fetch_instance_status`)."""
    own = system_config.cluster
    if own and own != cluster:
        known = ", ".join(sorted(system_config.api_endpoints)) or "none"
        raise CannotGetStatus(
            f"cannot read cluster {cluster} from here: it has no api_endpoints entry (entries: {known})"
            f" and KUBECONFIG is for this host's cluster {own} (`cluster` in {system_config.directory});"
            f" add api_endpoints[{cluster}] to the system config, or run where KUBECONFIG reaches {cluster}"
        )


def fetch_instance_health(
    system_config: SystemConfig,
    service: ServiceConfig,
    instance: InstanceConfig,
    *,
    kube: KubeReader | None = None,
    timeout: float | None = None,
) -> InstanceHealth:
    """The health of one instance, for the wait-for-deployment loop.

    ``health.done`` / ``health.done_message`` is the "deploy finished" verdict; an error means
    "could not tell": `failure_kind` says whether trying again can help.
    """
    return fetch_instance_status(system_config, service, instance, kube=kube, timeout=timeout).health


def kube_from_kubeconfig(*, timeout: float = 30.0) -> tuple[KubeReader, str]:
    """A client for the cluster named by KUBECONFIG, and where it points (for -v output).

    Raises `kube_errors.KubeConfigError` when there is no usable kubeconfig.
    """
    from paasta_lite.kube.client import KubeClient

    client = KubeClient(timeout=timeout)
    return client, client.description


def versions_summary(versions: Sequence[Any]) -> list[list[Any]]:
    """`[[git_sha, image_version, config_sha], ...]` as PaaSTA's bounce_status lists them."""
    return [[v.version.git_sha, v.version.image_version, v.version.config_sha] for v in versions]
