"""The one health model, driven by fixture files of real-shaped API objects.

Covers: each fixture under tests/fixtures/health/ (mid-bounce, stuck bounce, crash loop, OOM,
image pull error, unschedulable, stopped, stopping, scaling, not observed yet, not applied, not
deployed, and two captured from a real v1.28.4 API server: minReadySeconds not yet elapsed, a
rollout past its progress deadline...) gives the expected state, reason, healthy n/m and
wait-for-deployment verdict; a stopped instance never reads as a failure; the margin arithmetic;
the JSON round trip; pod and event details.

The Deployment controller's report decides (issue 11): observedGeneration first, then a failed
rollout (ProgressDeadlineExceeded, said so), paused, updated replicas, old replicas, available
replicas (minReadySeconds) and the Available condition, each named when it blocks; config drift
through the soa hash annotation, and a plain note when it cannot be judged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from paasta_lite.status.health import Desired, InstanceHealth, Observed, State, Version, assess

FIXTURES = Path(__file__).parent / "fixtures" / "health"
CASES = sorted(FIXTURES.glob("*.yaml"))


def load_case(path: Path) -> tuple[Observed, Desired, dict[str, Any]]:
    doc = yaml.safe_load(path.read_text())
    want = doc["desired"]
    version = None
    if want["git_sha"] is not None:
        version = Version(want["git_sha"], want["config_sha"], want.get("image_version"))
    desired = Desired(
        version=version,
        replicas=want["replicas"],
        desired_state=want["desired_state"],
        bounce_margin_factor=want["bounce_margin_factor"],
    )
    observed = Observed(doc["deployment"], doc["replicasets"], doc["pods"], doc["events"])
    return observed, desired, doc["expect"]


def test_fixture_set_covers_the_required_situations() -> None:
    names = {path.stem for path in CASES}
    required = {
        "mid_bounce",
        "stuck_bounce",
        "crash_loop",
        "image_pull_error",
        "stopped",
        "scaling",
        "not_observed_yet",
        "min_ready_seconds",
        "progress_deadline_exceeded",
    }
    assert required <= names


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_fixture(path: Path) -> None:
    observed, desired, expect = load_case(path)
    health = assess(observed, desired)
    assert health.state.value == expect["state"], health.message
    if "reason" in expect:
        assert health.reason == expect["reason"], health.message
    assert health.healthy is expect["healthy"]
    assert (health.ready, health.expected) == (expect["ready"], expect["expected"])
    assert health.done is expect["done"], health.done_message
    assert health.message
    if "versions" not in expect:
        return
    for got, wanted in zip(health.versions, expect["versions"], strict=True):
        assert got.version.git_sha == wanted["git_sha"]
        for key in ("ready", "replicas", "target"):
            if key in wanted:
                assert getattr(got, key) == wanted[key]
        if "config_sha" in wanted:
            assert got.version.config_sha == wanted["config_sha"]


def test_stopped_is_not_critical() -> None:
    health = assess(*load_case(FIXTURES / "stopped.yaml")[:2])
    assert health.state is State.STOPPED
    assert health.healthy and health.done
    assert "Critical" not in health.message
    assert "stop" in health.message


def test_versions_newest_first_and_target_marked() -> None:
    health = assess(*load_case(FIXTURES / "mid_bounce.yaml")[:2])
    assert [v.target for v in health.versions] == [True, False]
    first, second = health.versions
    assert first.created is not None and second.created is not None and first.created > second.created
    assert first.names == ("example--happyhour-main-new1",)


def test_failure_messages_name_the_pod_and_cause() -> None:
    crash = assess(*load_case(FIXTURES / "crash_loop.yaml")[:2])
    assert "example--happyhour-main-new1-" in crash.message
    assert "CrashLoopBackOff" in crash.message
    unschedulable = assess(*load_case(FIXTURES / "unschedulable.yaml")[:2])
    assert "Insufficient cpu" in unschedulable.message
    oom = assess(*load_case(FIXTURES / "oom_killed.yaml")[:2])
    assert "OOMKilled" in oom.message


def test_pod_details() -> None:
    health = assess(*load_case(FIXTURES / "crash_loop.yaml")[:2])
    pod = health.pods[0]
    assert pod.reason == "CrashLoopBackOff"
    assert pod.restarts == 7 and not pod.ready and pod.node == "node-0"
    assert pod.containers == ("main",)
    assert health.events[0].reason == "BackOff" and health.events[0].count == 30


def test_done_messages_explain_why_not() -> None:
    mid = assess(*load_case(FIXTURES / "mid_bounce.yaml")[:2])
    assert mid.done_message.startswith("still bouncing to bbbbbbbb")
    pending = assess(*load_case(FIXTURES / "not_applied.yaml")[:2])
    assert "hasn't started bouncing" in pending.done_message
    scaling = assess(*load_case(FIXTURES / "scaling.yaml")[:2])
    assert scaling.done_message == "3/5 replicas available, waiting for 5"


@pytest.mark.parametrize(
    ("factor", "expected", "ready", "done"),
    [
        (0.95, 3, 2, False),
        (0.95, 3, 3, True),
        (0.95, 20, 19, True),
        (0.95, 20, 18, False),
        (1.0, 10, 10, True),
        (0.5, 4, 2, True),
        (1.1, 10, 10, False),
    ],
)
def test_bounce_margin(factor: float, expected: int, ready: int, done: bool) -> None:
    observed, _, _ = load_case(FIXTURES / "scaling.yaml")
    rs, deployment = copied(observed.replicasets[0]), copied(observed.deployment)
    rs["spec"]["replicas"] = deployment["spec"]["replicas"] = expected
    rs["status"]["readyReplicas"] = rs["status"]["availableReplicas"] = ready
    deployment["status"].update(replicas=expected, updatedReplicas=expected)
    deployment["status"].update(readyReplicas=ready, availableReplicas=ready)
    desired = Desired(Version("b" * 40, "config22222222"), expected, "start", factor)
    health = assess(Observed(deployment, [rs], [], []), desired)
    assert health.done is done, health.done_message


def copied(data: Any) -> Any:
    return json.loads(json.dumps(data))


def case(name: str, **desired: Any) -> tuple[Observed, Desired]:
    """A fixture's objects (deep copies, to edit) and its desired state with `desired` changes."""
    observed, want, _ = load_case(FIXTURES / f"{name}.yaml")
    return (
        Observed(copied(observed.deployment), copied(observed.replicasets), copied(observed.pods), []),
        Desired(**{**want.__dict__, **desired}),
    )


def test_min_ready_seconds_is_not_done_until_the_controller_counts_pods_available() -> None:
    observed, desired = case("min_ready_seconds")
    health = assess(observed, desired)
    assert (health.ready, health.available, health.done) == (2, 0, False)
    assert health.state is State.STARTING and health.reason == "MinReadySeconds"
    assert "minReadySeconds 60s" in health.done_message
    assert "Available=False (MinimumReplicasUnavailable)" in health.done_message
    assert "2/2 ready, 0 available" in health.message
    assert observed.deployment is not None
    status = observed.deployment["status"]
    status["availableReplicas"] = 2  # 60 s later, as the real controller reported it
    status["conditions"][0].update(status="True", reason="MinimumReplicasAvailable")
    later = assess(observed, desired)
    assert (later.state, later.done, later.available) == (State.RUNNING, True, 2), later.done_message


def test_a_rollout_past_its_progress_deadline_is_a_failure_and_says_so() -> None:
    health = assess(*case("progress_deadline_exceeded"))
    assert health.state is State.DEGRADED and not health.done
    assert health.message.startswith("rollout failed: no progress for 20s")
    assert "Progressing=False (ProgressDeadlineExceeded)" in health.message
    assert health.done_message.startswith("rollout failed")
    stuck = assess(*case("stuck_bounce"))
    assert stuck.reason == "ProgressDeadlineExceeded" and stuck.done_message.startswith("rollout failed")


def test_unobserved_generation_comes_first() -> None:
    observed, desired = case("crash_loop")
    assert observed.deployment is not None
    observed.deployment["metadata"]["generation"] = 3  # the counts below describe generation 2
    health = assess(observed, desired)
    assert (health.state, health.reason, health.done) == (State.PENDING, "NotObservedYet", False)
    assert health.done_message == "Pending: waiting for the controller to observe generation 3 (observed: 2)"


def test_available_false_blocks_and_is_named() -> None:
    observed, desired = case("running")
    assert observed.deployment is not None
    observed.deployment["status"]["conditions"] = [
        {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
         "message": "Deployment does not have minimum availability."},
    ]  # fmt: skip
    health = assess(observed, desired)
    assert not health.done and health.reason == "MinimumReplicasUnavailable"
    assert health.done_message.startswith("Available=False (MinimumReplicasUnavailable)")


@pytest.mark.parametrize(
    ("status", "paused", "reason", "words"),
    [
        ({"updatedReplicas": 1}, False, "UpdatingReplicas", "1/3 replicas run the new pod template"),
        ({"replicas": 4}, False, "OldReplicas", "1 old replica(s) pending termination"),
        ({}, True, "Paused", "kubectl rollout resume deployment/example--happyhour-main"),
    ],
)
def test_controller_counts_block(status: dict[str, int], paused: bool, reason: str, words: str) -> None:
    observed, desired = case("running")
    assert observed.deployment is not None
    observed.deployment["status"].update(status)
    observed.deployment["spec"]["paused"] = paused
    health = assess(observed, desired)
    assert not health.done and words in health.done_message
    assert health.reason == reason or words in health.message


def test_config_only_bounce_without_config_hash_is_seen_through_the_controller() -> None:
    """Direct mode has no config hash for the versions: the controller's old replicas still tell."""
    observed, desired = case("config_only_bounce", version=Version("a" * 40))
    health = assess(observed, desired)
    assert all(v.target for v in health.versions)
    assert health.state is State.BOUNCING and not health.done
    assert "3 old replica(s)" in health.message


def test_a_matching_soa_hash_tells_the_target_replicaset_in_a_config_bounce() -> None:
    """Direct mode: the applied template's config hash becomes the target once the soa hash matches."""
    observed, desired = case("config_only_bounce", version=Version("a" * 40), soa_config_sha="soa11111111")
    assert observed.deployment is not None
    observed.deployment["metadata"]["annotations"] = {"paasta.yelp.com/soa_config_sha": "soa11111111"}
    health = assess(observed, desired)
    assert health.desired_version == Version("a" * 40, "config22222222")
    assert {v.version.config_sha: v.target for v in health.versions} == {
        "config22222222": True, "config11111111": False}
    assert health.state is State.BOUNCING and health.config_note is None


def annotated(soa_sha: str | None) -> Observed:
    observed, _ = case("running")
    assert observed.deployment is not None
    if soa_sha is not None:
        observed.deployment["metadata"]["annotations"] = {"paasta.yelp.com/soa_config_sha": soa_sha}
    return observed


def test_soa_hash_decides_config_drift_without_the_system_config() -> None:
    direct = Desired(Version("b" * 40), 3, soa_config_sha="soa11111111")
    same = assess(annotated("soa11111111"), direct)
    assert (same.state, same.done, same.config_note) == (State.RUNNING, True, None)
    other = assess(annotated("soa22222222"), direct)
    assert (other.state, other.reason, other.done) == (State.PENDING, "NotApplied", False)
    words = "differs from soa-configs (soa hash soa22222222, soa-configs give soa11111111); not applied"
    assert words in other.message


def test_config_drift_that_cannot_be_judged_is_said_plainly() -> None:
    direct = Desired(Version("b" * 40), 3, soa_config_sha="soa11111111")
    old_reconciler = assess(annotated(None), direct)
    assert old_reconciler.state is State.RUNNING and old_reconciler.done
    assert old_reconciler.config_note is not None
    assert old_reconciler.config_note.startswith("cannot judge config drift from here")
    assert "soa_config_sha annotation" in old_reconciler.config_note
    full_hash = assess(annotated(None), Desired(Version("b" * 40, "config22222222"), 3))
    assert full_hash.config_note is None


def test_instances_zero_counts_as_stopped() -> None:
    observed, _, _ = load_case(FIXTURES / "stopped.yaml")
    health = assess(observed, Desired(Version("b" * 40), 0))
    assert health.state is State.STOPPED and health.done and "0 instances" in health.message


def test_unknown_config_hash_matches_on_sha_only() -> None:
    observed, _, _ = load_case(FIXTURES / "running.yaml")
    health = assess(observed, Desired(Version("b" * 40, None), 3))
    assert health.state is State.RUNNING and health.done


@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_json_round_trip(path: Path) -> None:
    health = assess(*load_case(path)[:2])
    text = json.dumps(health.to_dict())
    assert InstanceHealth.from_dict(json.loads(text)) == health
