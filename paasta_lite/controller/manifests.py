"""The Kubernetes objects that run paasta_deployd in the cluster it manages (`--print-manifests`).

Pure: parameters in, plain dicts out (`manifests`), YAML text out (`to_yaml`).

- A ServiceAccount, and least-privilege RBAC: a ClusterRole with only the verbs deployd's code
  paths use on the resources it manages (Deployments in every service namespace, namespaces it
  creates; HPAs and PDBs, which the reconcilers manage with their Deployments), bound cluster-wide
  because service namespaces come and go; a Role in the run lock's namespace
  (`run_lock.LEASE_NAMESPACE`) for its one Lease, the one the cron entry points take too. Nothing
  may read Secrets or touch pods.
- A Deployment of 2 replicas (one leads, one is warm; ``--leader-elect``), spread over nodes,
  with liveness on /healthz and readiness on /readyz, a read-only root filesystem and no
  privileges; ``terminationGracePeriodSeconds`` leaves time to finish in-flight writes.

soa-configs come from a **hostPath** volume (``/nail/etc/services``, read-only), as in PaaSTA,
where every host gets the soa-configs (and ``/etc/paasta``) synced onto it. A ConfigMap was the
alternative: it updates atomically, but holds at most 1 MiB, flat (a 2,000-instance tree is
several MiB in 1,500 files), and makes every config change a second deploy. Clusters without
host-synced configs should swap the volume for an emptyDir filled by a git-sync sidecar; the
container only needs a directory.
"""

from __future__ import annotations

from typing import Any

import yaml

from paasta_lite.kube.run_lock import LEASE_NAME, LEASE_NAMESPACE

Obj = dict[str, Any]

NAME = "paasta-deployd"
DEFAULT_NAMESPACE = LEASE_NAMESPACE  # deployd runs next to its Lease (any other namespace works too)
DEFAULT_IMAGE = "paasta-lite:latest"
METRICS_PORT = 9102
SOA_DIR = "/nail/etc/services"
SYSTEM_CONFIG_DIR = "/etc/paasta"
#: Not the paasta.yelp.com/managed label: cleanup must never consider deployd itself.
LABELS = {"app.kubernetes.io/name": NAME, "app.kubernetes.io/part-of": "paasta_lite"}

#: The verbs of every kind an app is written as (`plan_writer`): informers list and watch;
#: server-side apply is a PATCH, and creating an object by apply also needs ``create``; ``get``
#: re-reads an app after a 409 and checks that nothing unmanaged is in the way of a create; the
#: upgrade of pre-apply objects is a merge PATCH; cleanup deletes. No ``update``: nothing PUTs them.
APP_VERBS = ("get", "list", "watch", "create", "patch", "delete")
#: (API group, resources, verbs) for the ClusterRole; each verb is one a code path calls.
CLUSTER_RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = (
    ("apps", ("deployments",), APP_VERBS),
    # managed with their Deployment by the reconcilers (HPA for autoscaled instances, PDB per instance)
    ("autoscaling", ("horizontalpodautoscalers",), APP_VERBS),
    ("policy", ("poddisruptionbudgets",), APP_VERBS),
    # plan_writer creates a service's namespace before its first app, run_lock its own when
    # missing (POST; 409 = already there)
    ("", ("namespaces",), ("create",)),
    # an HPA/PDB is applied with an ownerReference to its Deployment, blockOwnerDeletion: true;
    # where the OwnerReferencesPermissionEnforcement admission plugin is on, that needs this
    ("apps", ("deployments/finalizers",), ("update",)),
)
#: The run lock (`run_lock.RunLock`): read, take, renew and give back (GET, PUT) the one Lease,
#: create it when missing (a create cannot be limited to a name).
LEASE_RULES: tuple[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]], ...] = (
    ("coordination.k8s.io", ("leases",), ("get", "update"), (LEASE_NAME,)),
    ("coordination.k8s.io", ("leases",), ("create",), ()),
)


def _rule(group: str, resources: tuple[str, ...], verbs: tuple[str, ...], names: tuple[str, ...] = ()) -> Obj:
    rule: Obj = {"apiGroups": [group], "resources": list(resources), "verbs": list(verbs)}
    if names:
        rule["resourceNames"] = list(names)
    return rule


def _meta(name: str, namespace: str | None = None) -> Obj:
    meta: Obj = {"name": name, "labels": dict(LABELS)}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


RBAC = "rbac.authorization.k8s.io"


def rbac(namespace: str) -> list[Obj]:
    subject = [{"kind": "ServiceAccount", "name": NAME, "namespace": namespace}]
    return [
        {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(NAME, namespace)},
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRole", "metadata": _meta(NAME),
         "rules": [_rule(*rule) for rule in CLUSTER_RULES]},
        {"apiVersion": f"{RBAC}/v1", "kind": "ClusterRoleBinding", "metadata": _meta(NAME),
         "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": NAME}, "subjects": subject},
        {"apiVersion": f"{RBAC}/v1", "kind": "Role", "metadata": _meta(NAME, LEASE_NAMESPACE),
         "rules": [_rule(*rule) for rule in LEASE_RULES]},
        {"apiVersion": f"{RBAC}/v1", "kind": "RoleBinding", "metadata": _meta(NAME, LEASE_NAMESPACE),
         "roleRef": {"apiGroup": RBAC, "kind": "Role", "name": NAME}, "subjects": subject},
    ]


def _probe(path: str, *, period: int, failures: int) -> Obj:
    return {"httpGet": {"path": path, "port": "metrics"}, "periodSeconds": period,
            "timeoutSeconds": 5, "failureThreshold": failures}


def container(image: str, cluster: str | None) -> Obj:
    args = ["-d", SOA_DIR, "--leader-elect", "--metrics-port", str(METRICS_PORT)]
    if cluster:
        args += ["-c", cluster]
    return {
        "name": "deployd",
        "image": image,
        "command": ["paasta_deployd"],
        "args": args,
        "env": [{"name": "PAASTA_SYSTEM_CONFIG_DIR", "value": SYSTEM_CONFIG_DIR},
                {"name": "HOME", "value": "/tmp"}],  # the deploy event log's default directory
        "ports": [{"name": "metrics", "containerPort": METRICS_PORT}],
        "livenessProbe": {**_probe("/healthz", period=10, failures=6), "initialDelaySeconds": 10},
        "readinessProbe": _probe("/readyz", period=5, failures=1),
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}},
        "volumeMounts": [{"name": "soa-configs", "mountPath": SOA_DIR, "readOnly": True},
                         {"name": "system-config", "mountPath": SYSTEM_CONFIG_DIR, "readOnly": True},
                         {"name": "tmp", "mountPath": "/tmp"}],
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
    }


def deployment(namespace: str, image: str, cluster: str | None) -> Obj:
    selector = {"app.kubernetes.io/name": NAME}
    spread = {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"topologyKey": "kubernetes.io/hostname",
                                            "labelSelector": {"matchLabels": selector}}}]}
    volumes = [{"name": "soa-configs", "hostPath": {"path": SOA_DIR, "type": "Directory"}},
               {"name": "system-config", "hostPath": {"path": SYSTEM_CONFIG_DIR, "type": "Directory"}},
               {"name": "tmp", "emptyDir": {}}]
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": _meta(NAME, namespace),
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": selector},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}},
            "template": {
                "metadata": {"labels": dict(LABELS)},
                "spec": {
                    "serviceAccountName": NAME,
                    "terminationGracePeriodSeconds": 60,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 65534, "runAsGroup": 65534,
                                        "seccompProfile": {"type": "RuntimeDefault"}},
                    "affinity": {"podAntiAffinity": spread},
                    "containers": [container(image, cluster)],
                    "volumes": volumes,
                },
            },
        },
    }


def manifests(*, namespace: str = DEFAULT_NAMESPACE, image: str = DEFAULT_IMAGE,
              cluster: str | None = None) -> list[Obj]:
    """Namespaces, ServiceAccount, RBAC and the Deployment, in the order to apply them."""
    namespaces = [{"apiVersion": "v1", "kind": "Namespace", "metadata": _meta(name)}
                  for name in dict.fromkeys((namespace, LEASE_NAMESPACE))]
    return [*namespaces, *rbac(namespace), deployment(namespace, image, cluster)]


def to_yaml(objects: list[Obj]) -> str:
    """A multi-document YAML stream for ``kubectl apply -f -``."""
    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False)
