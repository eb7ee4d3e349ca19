"""reconcile_plan: pure pairing and decisions, with plain dicts in and plans out.

Covers: create / update (hash, sha, replicas, hand edits) / unchanged; autoscaled replicas kept;
quantities compared by value; objects being deleted; failures and not-deployed instances in the
plan; namespaces to create; the update body carries the live resourceVersion. Cleanup: only
unconfigured apps go, unlabelled/other-cluster/unreadable-service apps stay, namespace moves
wait for readiness, the kill threshold and --force.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from paasta_lite.kube import labels
from paasta_lite.kube.compare import first_difference, owned_view, quantity
from paasta_lite.kube.reconcile_plan import (
    Action,
    CleanupDecision,
    Purpose,
    configured_from,
    plan_cleanup,
    plan_setup,
)

Obj = dict[str, Any]


@dataclass(frozen=True)
class App:
    """A stand-in for render.RenderedApp with just the fields planning reads."""

    service: str = "web"
    instance: str = "main"
    config_hash: str = "config11111111"
    git_sha: str = "a" * 40
    replicas: int = 2
    autoscaled: bool = False
    extra_env: tuple[tuple[str, str], ...] = field(default=())

    @property
    def namespace(self) -> str:
        return f"paastasvc-{self.service}"

    @property
    def deployment(self) -> Obj:
        app_labels = {labels.SERVICE: self.service, labels.INSTANCE: self.instance,
                      labels.GIT_SHA: self.git_sha, labels.CONFIG_SHA: self.config_hash,
                      labels.MANAGED: "true"}
        return {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": f"{self.service}-{self.instance}", "namespace": self.namespace,
                         "labels": app_labels},
            "spec": {"replicas": self.replicas,
                     "selector": {"matchLabels": {labels.SERVICE: self.service,
                                                  labels.INSTANCE: self.instance}},
                     "template": {"metadata": {"labels": app_labels}, "spec": {"containers": [{
                         "name": "main", "image": "r/web:1",
                         "env": [{"name": k, "value": v} for k, v in self.extra_env],
                         "resources": {"requests": {"cpu": "500m", "memory": "1024Mi"}}}]}}},
        }


    @property
    def companions(self) -> dict[str, Obj | None]:
        return {}  # none: the planning of companions is covered in test_companions.py


def live_of(app: App, **changes: Any) -> Obj:
    """What the API server would return for ``app``: our fields plus server-side additions."""
    obj = copy.deepcopy(app.deployment)
    obj["metadata"].update({"resourceVersion": "42", "uid": "u-1", "generation": 3})
    obj["metadata"]["labels"]["added-by-someone"] = "x"
    obj["spec"]["progressDeadlineSeconds"] = 600
    obj["spec"]["template"]["spec"]["dnsPolicy"] = "ClusterFirst"
    obj["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
    obj["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["memory"] = "1Gi"
    obj["status"] = {"replicas": app.replicas}
    for path, value in changes.items():
        target = obj
        *parents, last = path.split("__")
        for part in parents:
            target = target[int(part)] if isinstance(target, list) else target[part]
        target[last] = value
    return obj


def only_step(plan: Any) -> Any:
    (step,) = plan.steps
    return step


def test_missing_app_is_created_and_its_namespace_planned() -> None:
    plan = plan_setup([App()], [])
    step = only_step(plan)
    assert (step.action, step.job_id, step.namespace, step.name) == (Action.CREATE, "web.main",
                                                                     "paastasvc-web", "web-main")
    assert step.body == App().deployment
    assert plan.namespaces == ("paastasvc-web",)


def test_identical_app_is_unchanged_despite_server_defaults() -> None:
    plan = plan_setup([App()], [live_of(App())])
    assert only_step(plan).action is Action.UNCHANGED
    assert plan.writes == [] and plan.namespaces == ()


def test_hash_change_is_an_update_applied_without_preconditions() -> None:
    step = only_step(plan_setup([App(config_hash="config22222222")], [live_of(App())]))
    assert step.action is Action.UPDATE
    assert step.reasons == ("config changed (config11111111 -> config22222222)",)
    (write,) = step.writes
    assert write.purpose is Purpose.APPLY and write.force and write.field_manager == "paasta_lite"
    assert write.body == App(config_hash="config22222222").deployment  # nothing from the live object


def test_git_sha_and_replicas_are_reasons() -> None:
    new = App(git_sha="b" * 40, config_hash="config33333333", replicas=5)
    step = only_step(plan_setup([new], [live_of(App())]))
    assert step.reasons[1:] == ("git sha aaaaaaaa -> bbbbbbbb", "replicas 2 -> 5")


def test_autoscaled_apps_leave_replicas_to_the_autoscaler() -> None:
    scaled = live_of(App(autoscaled=True), spec__replicas=7)
    assert only_step(plan_setup([App(autoscaled=True)], [scaled])).action is Action.UNCHANGED
    step = only_step(plan_setup([App(autoscaled=True, config_hash="config99999999")], [scaled]))
    assert step.action is Action.UPDATE and "replicas" not in step.writes[0].body["spec"]


def owned_by(obj: Obj, *managers: tuple[str, str, Obj]) -> Obj:
    obj["metadata"]["managedFields"] = [
        {"manager": manager, "operation": operation, "apiVersion": "apps/v1", "fieldsType": "FieldsV1",
         "fieldsV1": fields} for manager, operation, fields in managers]
    return obj


REPLICAS_AND_IMAGE = {"f:spec": {"f:replicas": {}, "f:template": {"f:spec": {"f:containers": {
    'k:{"name":"main"}': {".": {}, "f:image": {}}}}}}}


def test_replicas_we_own_alone_are_handed_over_before_we_stop_sending_them() -> None:
    scaled = owned_by(live_of(App(autoscaled=True), spec__replicas=7),
                      ("paasta_lite", "Apply", REPLICAS_AND_IMAGE))
    step = only_step(plan_setup([App(autoscaled=True, config_hash="config99999999")], [scaled]))
    (handover,) = step.writes  # alone: the plan is made again from its answer
    assert handover.purpose is Purpose.HANDOVER and handover.replan and not handover.force
    assert handover.field_manager == "paasta_lite-handover"
    assert handover.body["spec"] == {"replicas": 7} and handover.body["metadata"]["resourceVersion"] == "42"
    shared = owned_by(scaled, ("paasta_lite", "Apply", REPLICAS_AND_IMAGE),
                      ("paasta_lite-handover", "Apply", {"f:spec": {"f:replicas": {}}}))
    (apply,) = only_step(plan_setup([App(autoscaled=True, config_hash="config99999999")], [shared])).writes
    assert apply.purpose is Purpose.APPLY and "replicas" not in apply.body["spec"]


def test_objects_written_before_server_side_apply_are_upgraded_first() -> None:
    legacy = owned_by(live_of(App()), ("OpenAPI-Generator", "Update", REPLICAS_AND_IMAGE),
                      ("kube-controller-manager", "Update", {"f:status": {"f:replicas": {}}}))
    (upgrade,) = only_step(plan_setup([App(config_hash="config22222222")], [legacy])).writes
    assert upgrade.purpose is Purpose.UPGRADE and upgrade.replan
    entries = upgrade.body["metadata"]["managedFields"]
    assert [(e["manager"], e["operation"]) for e in entries] == [
        ("paasta_lite", "Apply"), ("kube-controller-manager", "Update")]
    assert entries[0]["fieldsV1"] == REPLICAS_AND_IMAGE
    assert upgrade.body["metadata"]["resourceVersion"] == "42"


def test_extra_list_items_count_only_when_they_are_ours() -> None:
    env = [{"name": "FROM_SOMEONE", "value": "1"}]
    theirs = owned_by(live_of(App(), spec__template__spec__containers__0__env=env),
                      ("paasta_lite", "Apply", REPLICAS_AND_IMAGE))
    assert only_step(plan_setup([App()], [theirs])).action is Action.UNCHANGED
    ours = copy.deepcopy(REPLICAS_AND_IMAGE)
    ours["f:spec"]["f:template"]["f:spec"]["f:containers"]['k:{"name":"main"}']["f:env"] = {
        'k:{"name":"FROM_SOMEONE"}': {".": {}}}
    mine = owned_by(live_of(App(), spec__template__spec__containers__0__env=env),
                    ("paasta_lite", "Apply", ours))
    assert "edited by hand" in only_step(plan_setup([App()], [mine])).message


def test_hand_edits_of_owned_fields_are_updates() -> None:
    edited = live_of(App(), spec__template__spec__containers__0__image="r/web:hacked")
    step = only_step(plan_setup([App()], [edited]))
    assert step.action is Action.UPDATE
    assert step.reasons == ("edited by hand (spec.template.spec.containers[0].image differs)",)
    extra_env = live_of(App(), spec__template__spec__containers__0__env=[{"name": "DEBUG", "value": "1"}])
    assert only_step(plan_setup([App()], [extra_env])).action is Action.UPDATE
    relabelled = live_of(App())
    del relabelled["metadata"]["labels"][labels.MANAGED]
    assert "metadata.labels" in only_step(plan_setup([App()], [relabelled])).message


def test_object_being_deleted_is_a_failure_not_a_write() -> None:
    dying = live_of(App(), metadata__deletionTimestamp="2024-01-01T00:00:00Z")
    step = only_step(plan_setup([App(config_hash="config22222222")], [dying]))
    assert step.action is Action.FAILED and "being deleted" in step.message


def test_pairing_is_by_namespace_and_name() -> None:
    elsewhere = live_of(App(), metadata__namespace="legacy")
    plan = plan_setup([App()], [elsewhere, live_of(App(service="api"))])
    assert only_step(plan).action is Action.CREATE  # the copy in `legacy` is cleanup's business
    assert plan.namespaces == ("paastasvc-web",)


def test_failures_and_not_deployed_are_part_of_the_plan() -> None:
    plan = plan_setup([App()], [live_of(App())], failures={"web.bad": "instances: must be >= 0"},
                      not_deployed={"web.canary": "not deployed yet"})
    assert [(s.job_id, s.action) for s in plan.steps] == [
        ("web.bad", Action.FAILED), ("web.canary", Action.NOT_DEPLOYED), ("web.main", Action.UNCHANGED)]
    assert [a.is_failure for a in (Action.FAILED, Action.NOT_DEPLOYED)] == [True, False]


def test_quantities_and_differences() -> None:
    assert quantity("1Gi") == quantity("1024Mi") == 2**30
    assert quantity("500m") == quantity(0.5) and quantity("1e3") == 1000 and quantity("lots") is None
    assert first_difference({"a": [1, {"b": 2}]}, {"a": [1, {"b": 2, "c": 3}], "z": 0}) is None
    assert first_difference({"a": [1, 2]}, {"a": [1]}) == "a"
    assert first_difference({"env": {"x": "1k"}}, {"env": {"x": "1000"}}) == "env.x"  # not a resource
    assert owned_view({"a": 1, "b": {"c": 2, "d": 3}}, {"b": {"c": 0}}) == {"b": {"c": 2}}


# --------------------------------------------------------------------------- cleanup

def managed(service: str, instance: str, *, namespace: str | None = None, cluster: str | None = "c1",
            ready: int = 1) -> Obj:
    obj_labels = {labels.SERVICE: service, labels.INSTANCE: instance, labels.MANAGED: "true"}
    if cluster:
        obj_labels[labels.CLUSTER] = cluster
    return {"metadata": {"name": f"{service}-{instance}", "namespace": namespace or f"paastasvc-{service}",
                         "labels": obj_labels},
            "spec": {"replicas": 1}, "status": {"readyReplicas": ready} if ready else {}}


CONFIGURED = configured_from("c1", [("web", "main", "paastasvc-web"), ("api", "main", "paastasvc-api"),
                                    ("db", "main", None)])


def test_only_unconfigured_apps_are_deleted() -> None:
    live = [managed("web", "main"), managed("api", "main"), managed("db", "main"), managed("old", "main")]
    plan = plan_cleanup(live, CONFIGURED, kill_threshold=0.5, force=False)
    assert plan.decision is CleanupDecision.PROCEED
    victims = [(v.job_id, v.namespace, v.name) for v in plan.delete]
    assert victims == [("old.main", "paastasvc-old", "old-main")]
    assert plan.delete[0].reason == "old.main is no longer configured for cluster c1"
    assert plan.managed_apps == 4


def test_nothing_to_do() -> None:
    plan = plan_cleanup([managed("web", "main")], CONFIGURED, kill_threshold=0.5, force=False)
    assert plan.decision is CleanupDecision.NOTHING_TO_DO and plan.delete == ()


def test_unlabelled_other_cluster_and_unreadable_services_are_kept() -> None:
    unlabelled = managed("x", "y")
    del unlabelled["metadata"]["labels"][labels.SERVICE]
    unmanaged = managed("gone", "main")
    unmanaged["metadata"]["labels"][labels.MANAGED] = "false"
    configured = configured_from("c1", [("web", "main", "paastasvc-web")], unreadable_services=["broken"])
    live = [unlabelled, unmanaged, managed("other", "main", cluster="c2"), managed("broken", "main"),
            managed("web", "main")]
    plan = plan_cleanup(live, configured, kill_threshold=1.0, force=False)
    assert plan.delete == ()
    assert plan.kept == (("paastasvc-other/other-main", "belongs to cluster c2"),)
    assert plan.held == (("paastasvc-broken/broken-main",
                          "service broken has a configuration error; none of its apps is deleted"),)
    assert plan.warnings == ("paastasvc-x/x-y: managed but without service/instance labels; not touched",)


def test_namespace_move_waits_for_the_new_copy_to_be_ready() -> None:
    old_copy = managed("web", "main", namespace="legacy")
    not_ready = [old_copy, managed("web", "main", ready=0)]
    assert plan_cleanup(not_ready, CONFIGURED, kill_threshold=1, force=False).delete == ()
    ready = [old_copy, managed("web", "main")]
    (victim,) = plan_cleanup(ready, CONFIGURED, kill_threshold=1, force=False).delete
    assert victim.namespace == "legacy"
    assert victim.reason == "moved to namespace paastasvc-web, where it is ready"


def test_kill_threshold_and_force() -> None:
    live = [managed("old1", "main"), managed("old2", "main"), managed("web", "main")]
    refused = plan_cleanup(live, CONFIGURED, kill_threshold=0.5, force=False)
    assert refused.decision is CleanupDecision.REFUSED
    assert "2 of 3 managed apps (67%)" in refused.message and "--force" in refused.message
    assert plan_cleanup(live, CONFIGURED, kill_threshold=0.7, force=False).decision is CleanupDecision.PROCEED
    forced = plan_cleanup(live, CONFIGURED, kill_threshold=0.5, force=True)
    assert forced.decision is CleanupDecision.PROCEED and len(forced.delete) == 2


def test_stop_and_start_reach_autoscaled_apps() -> None:
    running = live_of(App(autoscaled=True), spec__replicas=3)
    stop = only_step(plan_setup([App(autoscaled=True, replicas=0)], [running]))
    assert stop.action is Action.UPDATE and stop.body["spec"]["replicas"] == 0
    stopped = live_of(App(autoscaled=True), spec__replicas=0)
    start = only_step(plan_setup([App(autoscaled=True, replicas=1)], [stopped]))
    assert start.action is Action.UPDATE and start.body["spec"]["replicas"] == 1


def test_fields_the_server_omits_when_empty_are_not_hand_edits() -> None:
    wanted = App()
    desired = wanted.deployment
    desired["spec"]["minReadySeconds"] = 0
    desired["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "EMPTY", "value": ""}]

    class Zeroes(App):
        @property
        def deployment(self) -> Obj:
            return copy.deepcopy(desired)

    served = live_of(wanted)
    served["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "EMPTY"}]
    assert only_step(plan_setup([Zeroes()], [served])).action is Action.UNCHANGED


def test_other_clusters_apps_do_not_dilute_the_kill_threshold() -> None:
    live = [managed("old1", "main"), managed("web", "main")] + [
        managed(f"elsewhere{i}", "main", cluster="c2") for i in range(10)
    ]
    refused = plan_cleanup(live, CONFIGURED, kill_threshold=0.4, force=False)
    assert refused.decision is CleanupDecision.REFUSED and "1 of 2 managed apps" in refused.message
