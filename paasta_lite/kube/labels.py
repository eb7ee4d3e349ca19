"""The one place for label and annotation keys paasta_lite puts on Kubernetes objects.

We keep PaaSTA's `paasta.yelp.com/*` keys so existing tooling (dashboards, kubectl habits)
recognises our objects, plus the standard `app.kubernetes.io/*` ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from paasta_lite.config.naming import app_name, label_value

if TYPE_CHECKING:
    from paasta_lite.config.instance_config import InstanceConfig

PREFIX = "paasta.yelp.com"

SERVICE = f"{PREFIX}/service"
INSTANCE = f"{PREFIX}/instance"
GIT_SHA = f"{PREFIX}/git_sha"
IMAGE_VERSION = f"{PREFIX}/image_version"
CONFIG_SHA = f"{PREFIX}/config_sha"
DEPLOY_GROUP = f"{PREFIX}/deploy_group"
CLUSTER = f"{PREFIX}/cluster"
MANAGED = f"{PREFIX}/managed"
AUTOSCALED = f"{PREFIX}/autoscaled"
#: Pod-template annotation set from `force_bounce` (paasta restart): a new value replaces every pod.
FORCE_BOUNCE = f"{PREFIX}/force_bounce"
#: Deployment annotation (not on the pod template, so adding it restarts nothing): the hash of the
#: soa-configs side of what was applied (`config_hash.soa_config_hash`). `paasta status` compares
#: it without the cluster's system config, which a laptop does not have.
SOA_CONFIG_SHA = f"{PREFIX}/soa_config_sha"
#: Deployment annotation: the config hash of each companion (HPA, PDB) as last applied, e.g.
#: `hpa=none,pdb=config1a2b3c4d` (`companions.record`). Written only after every companion write
#: succeeded, so a matching record lets a no-op run skip reading them.
COMPANIONS = f"{PREFIX}/companions"

APP_NAME = "app.kubernetes.io/name"
APP_INSTANCE = "app.kubernetes.io/instance"
APP_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "paasta_lite"

#: Selector for every object paasta_lite manages (cleanup never touches anything else).
MANAGED_SELECTOR = f"{MANAGED}=true"


def match_labels(service: str, instance: str) -> dict[str, str]:
    """The pods of one service.instance: the Deployment's (immutable) selector, and the PDB's."""
    return {SERVICE: service, INSTANCE: instance}


def instance_labels(instance: InstanceConfig) -> dict[str, str]:
    """Labels of every object of one instance (Deployment, pod template, HPA, PDB), minus the
    version (git sha, image version: only the Deployment and its pods carry those) and the
    config hash (added after hashing)."""
    return {
        SERVICE: instance.service,
        INSTANCE: instance.instance,
        DEPLOY_GROUP: label_value(instance.deploy_group),
        CLUSTER: label_value(instance.cluster),
        AUTOSCALED: "true" if instance.is_autoscaled else "false",
        MANAGED: "true",
        APP_NAME: instance.service,
        APP_INSTANCE: app_name(instance.service, instance.instance),
        APP_MANAGED_BY: MANAGED_BY_VALUE,
    }


def instance_selector(service: str, instance: str) -> str:
    """Label selector for the Deployment, ReplicaSets and pods of one service.instance."""
    return f"{SERVICE}={service},{INSTANCE}={instance}"


def service_selector(service: str) -> str:
    """Label selector for every object of one service, all instances."""
    return f"{SERVICE}={service}"
