"""companions: planning an app's HPA and PDB from the record on its Deployment (pure).

Covers: the record's format; a matching record means no reads and no writes; only the kinds
whose hash differs are read; once read, missing companions are applied with an ownerReference
to the live Deployment and the record comes last; an unwanted managed HPA is deleted with the
read uid/resourceVersion as preconditions; an object we do not manage blocks the app (wanted)
or is left alone (unwanted); a companion owned by a previous Deployment is applied again;
`--full` (listed kinds) compares without the record; `plan_app` creates the Deployment alone
and re-plans, and reads before it writes anything.
"""

from __future__ import annotations

from typing import Any

from paasta_lite.kube import labels
from paasta_lite.kube.companions import (
    HPA,
    PDB,
    owner_reference,
    parse_record,
    plan_companions,
    record,
)
from paasta_lite.kube.reconcile_plan import Action, Purpose, plan_app

Obj = dict[str, Any]
NS, NAME = "paastasvc-web", "web-main"


def companion(kind: str, digest: str, **spec: Any) -> Obj:
    return {"apiVersion": "x/v1", "kind": kind,
            "metadata": {"name": NAME, "namespace": NS,
                         "labels": {labels.MANAGED: "true", labels.CONFIG_SHA: digest}},
            "spec": spec or {"maxUnavailable": 0}}


WANTED: dict[str, Obj | None] = {HPA: companion(HPA, "confighpa1", maxReplicas=5),
                                 PDB: companion(PDB, "configpdb1")}


def live_deployment(record_value: str | None = None, uid: str = "uid-1") -> Obj:
    annotations = {} if record_value is None else {labels.COMPANIONS: record_value}
    return {"apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": NAME, "namespace": NS, "uid": uid, "resourceVersion": "7",
                         "annotations": annotations, "labels": {labels.MANAGED: "true"}}}


def live_copy(obj: Obj, owner: Obj, **metadata: Any) -> Obj:
    return {**obj, "metadata": {**obj["metadata"], "ownerReferences": [owner_reference(owner)],
                                "uid": "c-uid", "resourceVersion": "9", **metadata}}


def keys(*kinds: str) -> set[tuple[str, str, str]]:
    return {(kind, NS, NAME) for kind in kinds}


def test_the_record_names_each_kind_and_none() -> None:
    assert record(WANTED) == "hpa=confighpa1,pdb=configpdb1"
    assert record({HPA: None, PDB: WANTED[PDB]}) == "hpa=none,pdb=configpdb1"
    assert record({}) == ""
    assert parse_record("hpa=none, pdb=configpdb1,garbage") == {"hpa": "none", "pdb": "configpdb1"}


def test_a_matching_record_needs_neither_reads_nor_writes() -> None:
    plan = plan_companions(WANTED, live_deployment("hpa=confighpa1,pdb=configpdb1"), {})
    assert plan.reads == () and plan.changes == () and plan.record is None


def test_only_the_kinds_recorded_differently_are_read() -> None:
    plan = plan_companions(WANTED, live_deployment("hpa=confighpa0,pdb=configpdb1"), {})
    assert plan.reads == ((HPA, NS, NAME),)
    assert plan.reasons == ("HorizontalPodAutoscaler changed per the companions record "
                            "(confighpa0 -> confighpa1; to read)",)
    assert plan_companions(WANTED, live_deployment(None), {}).reads == ((HPA, NS, NAME), (PDB, NS, NAME))


def test_missing_companions_are_applied_owned_by_the_deployment_then_recorded() -> None:
    deployment = live_deployment(None)
    plan = plan_companions(WANTED, deployment, {}, known=keys(HPA, PDB))
    assert [(c.kind, c.reason) for c in plan.changes] == [(HPA, "does not exist yet"),
                                                          (PDB, "does not exist yet")]
    for change in plan.changes:
        assert change.body is not None
        assert change.body["metadata"]["ownerReferences"] == [
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": NAME, "uid": "uid-1",
             "controller": False, "blockOwnerDeletion": True}]
        assert change.body["spec"] == WANTED[change.kind]["spec"]  # type: ignore[index]
    assert plan.record == {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
        "name": NAME, "namespace": NS, "uid": "uid-1",
        "annotations": {labels.COMPANIONS: "hpa=confighpa1,pdb=configpdb1"}}}


def test_up_to_date_companions_only_need_the_record() -> None:
    deployment = live_deployment(None)
    live = {(kind, NS, NAME): live_copy(obj, deployment) for kind, obj in WANTED.items() if obj}
    plan = plan_companions(WANTED, deployment, live, known=keys(HPA, PDB))
    assert plan.changes == () and plan.record is not None
    assert plan.reasons == ("companions record missing -> hpa=confighpa1,pdb=configpdb1",)


def test_an_unwanted_hpa_is_deleted_with_preconditions() -> None:
    deployment = live_deployment("hpa=confighpa1,pdb=configpdb1")
    wanted = {HPA: None, PDB: WANTED[PDB]}
    hpa = WANTED[HPA]
    assert hpa is not None
    plan = plan_companions(wanted, deployment, {(HPA, NS, NAME): live_copy(hpa, deployment)}, known=keys(HPA))
    (change,) = plan.changes
    assert change.body is None and change.live is not None and change.reason == "no longer wanted: deleted"
    app = FakeApp(wanted)
    unchanged = {**app.deployment, "metadata": {**app.deployment["metadata"], **deployment["metadata"],
                                                "labels": app.deployment["metadata"]["labels"]}}
    live = {("Deployment", NS, NAME): unchanged, (HPA, NS, NAME): live_copy(hpa, deployment)}
    app_step = plan_app(app, live, known=keys(HPA))
    delete, record_write = app_step.writes  # the Deployment itself is unchanged
    assert (delete.purpose, delete.kind) == (Purpose.DELETE, HPA)
    assert delete.body == {"uid": "c-uid", "resourceVersion": "9"}
    assert record_write.purpose is Purpose.RECORD and record_write.field_manager == "paasta_lite-companions"


def test_objects_we_do_not_manage_are_never_touched() -> None:
    deployment = live_deployment(None)
    pdb = WANTED[PDB]
    assert pdb is not None
    foreign = {**pdb, "metadata": {**pdb["metadata"], "labels": {"team": "x"}}}
    blocked = plan_companions(WANTED, deployment, {(PDB, NS, NAME): foreign}, known=keys(HPA, PDB))
    assert blocked.blocked.startswith('PodDisruptionBudget "web-main" already exists in paastasvc-web')
    hpa = WANTED[HPA]
    assert hpa is not None
    theirs = {**hpa, "metadata": {**hpa["metadata"], "labels": {}}}
    plan = plan_companions({HPA: None, PDB: pdb}, deployment, {(HPA, NS, NAME): theirs}, known=keys(HPA, PDB))
    assert [c.kind for c in plan.changes] == [PDB]  # their HPA is left alone


def test_a_companion_of_a_previous_deployment_is_applied_again() -> None:
    old, new = live_deployment(None, uid="old"), live_deployment(None, uid="new")
    pdb = WANTED[PDB]
    assert pdb is not None
    plan = plan_companions({PDB: pdb}, new, {(PDB, NS, NAME): live_copy(pdb, old)}, known=keys(PDB))
    (change,) = plan.changes
    assert change.reason == "not owned by its Deployment"
    assert change.body is not None and change.body["metadata"]["ownerReferences"][0]["uid"] == "new"


def test_listed_kinds_are_compared_whatever_the_record_says() -> None:
    deployment = live_deployment("hpa=confighpa1,pdb=configpdb1")
    plan = plan_companions(WANTED, deployment, {}, listed_kinds={HPA, PDB})
    assert plan.reads == ()
    assert [c.kind for c in plan.changes] == [HPA, PDB] and plan.record is None  # the record was right


class FakeApp:
    """A stand-in for render.RenderedApp with companions."""

    service, instance, namespace = "web", "main", NS
    config_hash, git_sha, replicas, autoscaled = "config11111111", "a" * 40, 2, False

    def __init__(self, companions: dict[str, Obj | None]) -> None:
        self.companions = companions

    @property
    def deployment(self) -> Obj:
        return {"apiVersion": "apps/v1", "kind": "Deployment",
                "metadata": {"name": NAME, "namespace": NS, "labels": {
                    labels.CONFIG_SHA: self.config_hash, labels.GIT_SHA: self.git_sha}},
                "spec": {"replicas": self.replicas}}


def test_a_new_deployment_is_created_alone_then_planned_again() -> None:
    step = plan_app(FakeApp(WANTED), {})
    (write,) = step.writes
    assert step.action is Action.CREATE and write.kind == "Deployment" and write.replan


def test_reads_come_before_any_write() -> None:
    app = FakeApp(WANTED)
    live = {("Deployment", NS, NAME): {**app.deployment, "metadata": {
        **app.deployment["metadata"], "uid": "uid-1", "resourceVersion": "3"}}}
    step = plan_app(app, live)
    assert step.action is Action.UPDATE and step.writes == ()
    assert step.reads == ((HPA, NS, NAME), (PDB, NS, NAME))
    step = plan_app(app, live, known=keys(HPA, PDB))
    assert [(w.kind, w.purpose) for w in step.writes] == [(HPA, Purpose.APPLY), (PDB, Purpose.APPLY),
                                                          ("Deployment", Purpose.RECORD)]
