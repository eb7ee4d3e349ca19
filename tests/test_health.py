"""The one health model, driven by fixture files of real-shaped API objects.

Covers: each fixture under tests/fixtures/health/ (mid-bounce, stuck bounce, crash loop, OOM,
image pull error, unschedulable, stopped, stopping, scaling, not observed yet, not applied, not
deployed...) gives the expected state, reason, healthy n/m and wait-for-deployment verdict; a
stopped instance never reads as a failure; the margin arithmetic; the JSON round trip; pod and
event details.
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
    assert scaling.done_message == "3/5 replicas of bbbbbbbb ready, waiting for 5"


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
    rs = json.loads(json.dumps(observed.replicasets[0]))
    rs["spec"]["replicas"] = expected
    rs["status"]["readyReplicas"] = ready
    desired = Desired(Version("b" * 40, "config22222222"), expected, "start", factor)
    health = assess(Observed(observed.deployment, [rs], [], []), desired)
    assert health.done is done, health.done_message


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
