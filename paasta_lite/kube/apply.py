"""deployd's copy of the setup write path from before server-side apply: create, replace.

`setup_kubernetes_job` now writes through `plan_writer.write_setup_plan`; this goes when deployd does.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from paasta_lite.kube import labels
from paasta_lite.kube.client import KubeClient
from paasta_lite.kube.errors import AlreadyExists, KubeError
from paasta_lite.kube.reconcile_plan import Action, SetupPlan, Step

Obj = dict[str, Any]


def apply_plan(plan: SetupPlan, client: KubeClient, namespace_labels: dict[str, Obj]) -> Iterator[Step]:
    """Carry out the plan's writes; yield every step with its final outcome, as it happens."""
    broken_namespaces: dict[str, str] = {}
    for namespace in plan.namespaces:
        try:
            client.create_namespace(namespace, namespace_labels.get(namespace))
        except KubeError as error:
            broken_namespaces[namespace] = f"cannot create namespace {namespace}: {error}"
    for step in plan.steps:
        if step.action not in (Action.CREATE, Action.UPDATE):
            yield step
        elif step.namespace in broken_namespaces:
            yield replace(step, action=Action.FAILED, reasons=(broken_namespaces[step.namespace],))
        else:
            yield _write(step, client)


def _write(step: Step, client: KubeClient) -> Step:
    assert step.body is not None
    try:
        if step.action is Action.CREATE:
            try:
                client.create_deployment(step.namespace, step.body)
            except AlreadyExists:
                # A retried create whose first attempt landed (the answer was lost): fine if the
                # object now there is ours, by config hash; anything else is a real conflict.
                live = client.get_deployment(step.namespace, step.name)
                if _hash_of(live) is None or _hash_of(live) != _hash_of(step.body):
                    raise
        else:
            client.replace_deployment(step.namespace, step.name, step.body)
    except KubeError as error:
        verb = "create" if step.action is Action.CREATE else "update"
        return replace(step, action=Action.FAILED, reasons=(f"{verb} refused by the API: {error}",))
    return step


def _hash_of(obj: Obj) -> str | None:
    value = ((obj.get("metadata") or {}).get("labels") or {}).get(labels.CONFIG_SHA)
    return str(value) if value else None
