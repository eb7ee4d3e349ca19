"""Parity: a soa tree assembled the way PaaSTA documents it renders to the same fields.

One service whose instance file uses `_templates` with anchors, templates nested in templates,
`<<` merge lists in both orders, service.yaml defaults overlaid by the instance, env overrides
(of a service default and of a PAASTA_* variable), a list default replaced by the instance's
list and a formatted deploy group. It goes through the real loader (`SoaDir`) and renderer
(`render_service_instances`), and each rendered field is compared with a value written by hand
from PaaSTA's documented rules (paasta_reference.md; the rule each value follows is named next
to it):

- YAML: the merge spec. Explicit keys win over merged ones; in `<<: [*a, *b]` the FIRST mapping
  wins (for keys of any length); a merge is shallow: a mapping written in the instance replaces
  the template's mapping of the same key, whole.
- §2.2: the instance is deep-merged over service.yaml's keys (dicts merge recursively, lists and
  scalars are replaced); `_`-prefixed top-level keys are templates, never instances;
  `deploy_group` is formatted with {cluster}/{instance}/{service}; the image comes from the
  deployments.json entry of the instance's deploy group.
- §2.3: code defaults (instances 1, disk 1024, cpu_burst_add 1, container_port 8888,
  deploy_group "<cluster>.<instance>"), cpus -> cpu request, cpus + cpu_burst_add -> cpu limit,
  mem -> "<mem>Mi" request = limit, a string cmd runs through `sh -c`.
- §5.6: env = PAASTA_* variables, then the user's env over them; probes from healthcheck_mode
  (readiness = liveness outside the mesh, none without a mode).

PaaSTA sets more variables (PAASTA_RESOURCE_*, PAASTA_INSTANCE_TYPE, AWS_SDK_UA_APP_ID, downward
API) that paasta_lite does not render; the env compared here is the one paasta_lite renders.
"""

from __future__ import annotations

from typing import Any

import pytest
from soa_builders import deployments_doc, write_tree

from paasta_lite.config.soa_config import SoaDir
from paasta_lite.config.system_config import SystemConfig
from paasta_lite.kube.render import RenderedApp, render_service_instances

CLUSTER = "parity"
SERVICE = "parity_svc"
REGISTRY = "registry.parity:5000"
SHAS = {"parity.main": "1" * 40, "parity.canary": "2" * 40, "parity.all": "3" * 40, "parity.plain": "4" * 40}

SERVICE_YAML = """\
description: Parity fixture
git_url: git@example.invalid:services/parity_svc.git
# defaults for every instance (§2.2 "general config")
cpus: 0.25
mem: 512
env:
  TEAM: parity
  LOG_LEVEL: info
  REGION: default-region
extra_volumes:
  - {containerPath: /srv/default, hostPath: /srv/default, mode: RO}
"""

INSTANCES_YAML = """\
_base: &base
  cpus: 1
  deploy_group: "{cluster}.all"
  env:
    LOG_LEVEL: warning
    FROM_BASE: "yes"

_web: &web            # a template built on a template
  <<: *base
  deploy_group: "{cluster}.{instance}"
  healthcheck_mode: http
  healthcheck_uri: /web-status
  env:
    SERVER: gunicorn

_big: &big
  cpus: 4
  mem: 2048
  instances: 10

main:
  <<: [*web, *big]
  instances: 3
  env:
    FEATURE: "on"
    PAASTA_PORT: "9999"

canary:
  <<: [*big, *web]
  instances: 1
  args: ["--canary"]

worker:
  <<: *base
  cmd: ./worker --queue default
  env:
    LOG_LEVEL: debug
  extra_volumes:
    - {containerPath: /srv/worker, hostPath: /srv/worker, mode: RW}

plain: {}
"""


def paasta_env(instance: str, group: str, **user: str) -> dict[str, str]:
    """§5.6: the PAASTA_* variables paasta_lite renders, then the user's env over them."""
    sha = SHAS[group]
    return {
        "PAASTA_SERVICE": SERVICE,
        "PAASTA_INSTANCE": instance,
        "PAASTA_CLUSTER": CLUSTER,
        "PAASTA_DEPLOY_GROUP": group,
        "PAASTA_DOCKER_IMAGE": f"services-{SERVICE}:paasta-{sha}",
        "PAASTA_GIT_SHA": sha[:8],
        "PAASTA_PORT": "8888",  # §2.3 container_port default
        **user,
    }


def http_probe(path: str) -> dict[str, Any]:
    """§5.6 http probe on container_port 8888 (§2.3), with the §2.3 timing defaults."""
    return {
        "httpGet": {"path": path, "port": 8888, "scheme": "HTTP"},
        "initialDelaySeconds": 60, "periodSeconds": 10, "timeoutSeconds": 10, "failureThreshold": 30,
    }


EXPECTED: dict[str, dict[str, Any]] = {
    "main": {
        # _web's own "{cluster}.{instance}" beats the one it merges from _base; formatted (§2.2)
        "deploy_group": "parity.main",
        # the image of that group's deployments.json entry (§2.2)
        "image": f"{REGISTRY}/services-{SERVICE}:paasta-{SHAS['parity.main']}",
        "replicas": 3,  # explicit `instances: 3` wins over _big's 10 (YAML merge)
        "cpu_request": "1",  # _web (first in the merge list) wins over _big's 4; _web got it from _base
        "cpu_limit": "2",  # cpus + cpu_burst_add default 1 (§2.3)
        "memory": "2048Mi",  # _big's mem (_web has none), over service.yaml's 512 (§2.2)
        "disk": "1024Mi",  # code default (§2.3)
        "command": None, "args": None,  # no cmd, no args anywhere
        "env": paasta_env(
            "main", "parity.main",
            # the instance's own env replaces _web's whole env (shallow YAML merge): no SERVER,
            # then it is deep-merged over service.yaml's env (§2.2): TEAM, LOG_LEVEL, REGION stay
            TEAM="parity", LOG_LEVEL="info", REGION="default-region", FEATURE="on",
            PAASTA_PORT="9999",  # the user's env overrides a PAASTA_* variable (§5.6)
        ),
        "liveness": http_probe("/web-status"),  # healthcheck_* from _web
        "readiness": http_probe("/web-status"),  # not in the mesh: same as liveness (§5.6)
        "mounts": ["/srv/default"],  # service.yaml's extra_volumes, no instance list (§2.2)
    },
    "canary": {
        "deploy_group": "parity.canary",  # from _web; _big has none
        "image": f"{REGISTRY}/services-{SERVICE}:paasta-{SHAS['parity.canary']}",
        "replicas": 1,  # explicit wins over _big's 10
        "cpu_request": "4",  # _big is first in this merge list: its cpus win over _web's 1
        "cpu_limit": "5",  # 4 + 1 (§2.3)
        "memory": "2048Mi",  # _big
        "disk": "1024Mi",  # code default
        "command": None, "args": ["--canary"],  # args used verbatim, no cmd (§2.3)
        "env": paasta_env(
            "canary", "parity.canary",
            # _web's env ({SERVER}) reaches canary through the merge, then deep-merges over
            # service.yaml's env (§2.2)
            TEAM="parity", LOG_LEVEL="info", REGION="default-region", SERVER="gunicorn",
        ),
        "liveness": http_probe("/web-status"),
        "readiness": http_probe("/web-status"),
        "mounts": ["/srv/default"],
    },
    "worker": {
        "deploy_group": "parity.all",  # _base's "{cluster}.all" formatted (§2.2)
        "image": f"{REGISTRY}/services-{SERVICE}:paasta-{SHAS['parity.all']}",
        "replicas": 1,  # no instances anywhere: code default 1 (§2.3)
        "cpu_request": "1",  # _base's cpus over service.yaml's 0.25
        "cpu_limit": "2",
        "memory": "512Mi",  # service.yaml default (§2.2)
        "disk": "1024Mi",
        "command": ["sh", "-c", "./worker --queue default"], "args": None,  # string cmd -> sh -c (§2.3)
        "env": paasta_env(
            "worker", "parity.all",
            # the instance's env replaces _base's (shallow merge: no FROM_BASE, not "warning"),
            # then deep-merges over service.yaml's env, overriding its LOG_LEVEL (§2.2)
            TEAM="parity", LOG_LEVEL="debug", REGION="default-region",
        ),
        "liveness": None, "readiness": None,  # no healthcheck mode: no probes (§5.6)
        "mounts": ["/srv/worker"],  # the instance's list replaces service.yaml's list (§2.2)
    },
    "plain": {
        "deploy_group": "parity.plain",  # code default "<cluster>.<instance>" (§2.3)
        "image": f"{REGISTRY}/services-{SERVICE}:paasta-{SHAS['parity.plain']}",
        "replicas": 1,
        "cpu_request": "250m",  # service.yaml's 0.25 (§2.2)
        "cpu_limit": "1250m",  # 0.25 + 1 (§2.3)
        "memory": "512Mi",
        "disk": "1024Mi",
        "command": None, "args": None,
        "env": paasta_env("plain", "parity.plain", TEAM="parity", LOG_LEVEL="info", REGION="default-region"),
        "liveness": None, "readiness": None,
        "mounts": ["/srv/default"],
    },
}


def fields(app: RenderedApp) -> dict[str, Any]:
    """The fields of a rendered Deployment that the config assembly decides."""
    deployment = app.deployment
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    resources = container["resources"]
    assert resources["requests"]["memory"] == resources["limits"]["memory"]  # §2.3: request = limit
    assert resources["requests"]["ephemeral-storage"] == resources["limits"]["ephemeral-storage"]
    return {
        "deploy_group": deployment["metadata"]["labels"]["paasta.yelp.com/deploy_group"],
        "image": container["image"],
        "replicas": deployment["spec"]["replicas"],
        "cpu_request": resources["requests"]["cpu"],
        "cpu_limit": resources["limits"]["cpu"],
        "memory": resources["requests"]["memory"],
        "disk": resources["requests"]["ephemeral-storage"],
        "command": container.get("command"),
        "args": container.get("args"),
        "env": {variable["name"]: variable["value"] for variable in container["env"]},
        "liveness": container.get("livenessProbe"),
        "readiness": container.get("readinessProbe"),
        "mounts": [mount["mountPath"] for mount in container.get("volumeMounts", [])],
    }


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Any]]:
    soa = write_tree(tmp_path_factory.mktemp("soa"), {
        f"{SERVICE}/service.yaml": SERVICE_YAML,
        f"{SERVICE}/kubernetes-{CLUSTER}.yaml": INSTANCES_YAML,
        f"{SERVICE}/deployments.json": deployments_doc(SHAS, service=SERVICE),
    })
    system = SystemConfig(directory=str(soa), cluster=CLUSTER, docker_registry=REGISTRY)
    apps, errors = render_service_instances(SoaDir(soa).load_service(SERVICE), CLUSTER, system)
    assert errors == {}
    return {app.instance: fields(app) for app in apps}


def test_templates_are_not_instances(rendered: dict[str, dict[str, Any]]) -> None:
    assert sorted(rendered) == sorted(EXPECTED)  # §2.2: `_base`, `_web`, `_big` are not rendered


@pytest.mark.parametrize("instance", sorted(EXPECTED))
@pytest.mark.parametrize("field", sorted(EXPECTED["main"]))
def test_field_follows_paasta_rules(rendered: dict[str, dict[str, Any]], instance: str, field: str) -> None:
    assert rendered[instance][field] == EXPECTED[instance][field]
