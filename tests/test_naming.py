"""naming: PaaSTA's sanitise rules, DNS-label limits with a stable hash, job ids, and the reasons
a service or instance name is refused. Property tests: every produced Kubernetes name is a valid
DNS label and the same input always gives the same name."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paasta_lite.config.naming import (
    app_name,
    app_name_collisions,
    container_name,
    instance_name_problem,
    is_dns_label,
    job_id,
    limit_with_hash,
    namespace_for,
    sanitise_name,
    service_name_problem,
    split_job_id,
)

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
valid_names = st.from_regex(r"\A[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?\Z")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("my_svc", "my--svc"), ("_main", "underscore-main"), ("a__b", "a----b"), ("Main", "main"),
     ("plain", "plain")],
)
def test_sanitise_name(name: str, expected: str) -> None:
    assert sanitise_name(name) == expected


def test_namespace_and_app_name() -> None:
    assert namespace_for("my_svc") == "paastasvc-my--svc"
    assert app_name("my_svc", "canary_1") == "my--svc-canary--1"
    assert container_name("main") == "main"


def test_limit_with_hash_keeps_short_names_and_shortens_long_ones_stably() -> None:
    assert limit_with_hash("short") == "short"
    assert limit_with_hash("x" * 63) == "x" * 63
    long_a = limit_with_hash("x" * 64)
    assert len(long_a) == 63 and long_a.startswith("x" * 54 + "-")
    assert long_a == limit_with_hash("x" * 64)
    assert limit_with_hash("x" * 64) != limit_with_hash("x" * 65)
    assert len(limit_with_hash("y" * 300, limit=20)) == 20


def test_long_namespace_is_a_valid_label() -> None:
    service = "s" * 63
    namespace = namespace_for(service)
    assert len(namespace) == 63 and is_dns_label(namespace)
    assert namespace.startswith("paastasvc-s")


def test_hash_prefix_never_ends_in_a_dash() -> None:
    name = "a" * 53 + "-" + "b" * 20  # the cut falls right after the dash
    limited = limit_with_hash(name)
    assert limited == "a" * 53 + "-" + limited[-8:]
    assert re.fullmatch(r"[0-9a-f]{8}", limited[-8:])
    assert DNS_LABEL.match(limited)


@given(valid_names, valid_names)
def test_every_kubernetes_name_is_a_valid_dns_label(service: str, instance: str) -> None:
    for name in (namespace_for(service), app_name(service, instance), container_name(instance)):
        assert len(name) <= 63
        assert DNS_LABEL.match(name), name
        assert is_dns_label(name)


@given(valid_names, valid_names)
def test_names_are_stable(service: str, instance: str) -> None:
    assert app_name(service, instance) == app_name(service, instance)
    assert namespace_for(service) == namespace_for(service)


@given(valid_names, valid_names)
def test_generated_valid_names_pass_validation(service: str, instance: str) -> None:
    assert service_name_problem(service) is None
    assert instance_name_problem(instance) is None


def test_job_id_roundtrip_and_split_errors() -> None:
    assert job_id("svc", "main") == "svc.main"
    assert split_job_id("svc.main") == ("svc", "main")
    for bad in ("svc", "svc.", ".main", "a.b.c", ""):
        with pytest.raises(ValueError, match=r"service\.instance"):
            split_job_id(bad)


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("Main", "must be lower case (try 'main')"),
        ("CANARY_1", "must be lower case (try 'canary_1')"),
        ("a.b", "must not contain '.'"),
        ("", "is empty"),
        ("x" * 64, "64 characters long; the limit is 63"),
        ("-lead", "must start and end with a letter or digit"),
        ("trail_", "must start and end with a letter or digit"),
        ("sp ace", "may only contain"),
        ("ünï", "may only contain"),
        (5, "must be text, got int 5"),
        (None, "must be text"),
    ],
)
def test_instance_name_problems(name: object, fragment: str) -> None:
    problem = instance_name_problem(name)
    assert problem is not None and fragment in problem
    assert "Additional properties" not in problem


@pytest.mark.parametrize("name", ["..", ".", "../etc", "a/b", "a\\b", "/abs"])
def test_path_like_service_names_are_refused(name: str) -> None:
    problem = service_name_problem(name)
    assert problem is not None and "looks like a path" in problem


def test_app_name_collisions() -> None:
    assert app_name_collisions("svc", ["main_1", "main--1", "main", "a_b", "a--b", "a-b"]) == {
        "svc-a--b": ["a--b", "a_b"],
        "svc-main--1": ["main--1", "main_1"],
    }
    assert app_name_collisions("svc", ["main", "canary"]) == {}
