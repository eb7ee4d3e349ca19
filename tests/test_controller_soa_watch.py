"""Change detection over the soa dir (`soa_watch`) and the config cache deployd reconciles from.

Covers: snapshots stamp exactly the files loading reads; a missing, empty or non-directory soa
dir gives no snapshot; the pure diff names appeared, vanished and edited services; the pure
instance diff finds changed instances (config, deploy-group version, control, problems of an
invalid instance), added and removed ones, and nothing for an unrelated edit; the cache's
first scan queues everything and allows no deletion before a second scan; an edit queues only
the affected instances; a broken service queues nothing, keeps its apps and gets all its
instances queued once fixed; a removed instance or service is unsettled in the scan that saw it
go, settled in the next; an empty or missing soa dir changes nothing and deletes nothing.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from soa_builders import deployments_doc, write_tree

from paasta_lite.config.soa_config import SoaDir
from paasta_lite.controller.config_cache import ConfigCache
from paasta_lite.controller.soa_watch import affected_instances, changed_services, take_snapshot

CLUSTER = "c1"
SHA, NEW_SHA = "a" * 40, "b" * 40


def service_files(name: str, instances: dict[str, Any], *, sha: str = SHA,
                  controls: dict[str, Any] | None = None) -> dict[str, Any]:
    doc = deployments_doc({f"{CLUSTER}.{i}": sha for i in instances}, service=name)
    doc["v2"]["controls"] = controls or {}
    return {f"{name}/service.yaml": {"description": name},
            f"{name}/kubernetes-{CLUSTER}.yaml": instances,
            f"{name}/deployments.json": doc}


def rewrite(path: Path, content: Any) -> None:
    """Write ``content`` and move the mtime a second on, so the change is seen whatever the size."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    text = content if isinstance(content, str) else (
        json.dumps(content) if path.suffix == ".json" else yaml.safe_dump(content))
    path.write_text(text)
    os.utime(path, ns=(before + 10**9, before + 10**9))


@pytest.fixture
def soa(tmp_path: Path) -> Path:
    files = {**service_files("web", {"main": {"instances": 2}, "canary": {"instances": 1}}),
             **service_files("api", {"main": {"instances": 3}})}
    return write_tree(tmp_path / "soa", files)


# --------------------------------------------------------------------------- snapshots


def test_snapshot_stamps_the_files_loading_reads(soa: Path) -> None:
    snapshot = take_snapshot(soa, CLUSTER)
    assert snapshot is not None and set(snapshot) == {"api", "web"}
    service, deploy, instances, deployments = snapshot["web"]
    assert deploy is None  # no deploy.yaml
    assert service is not None and instances is not None and deployments is not None
    (soa / "web" / "kubernetes-other.yaml").write_text("x: {}\n")  # another cluster: not ours
    (soa / "web" / "notes.txt").write_text("hello")
    assert take_snapshot(soa, CLUSTER) == snapshot


@pytest.mark.parametrize("make", ["missing", "empty", "file"])
def test_no_snapshot_for_a_doubtful_soa_dir(tmp_path: Path, make: str) -> None:
    path = tmp_path / "soa"
    if make == "empty":
        path.mkdir()
    elif make == "file":
        path.write_text("not a directory")
    assert take_snapshot(path, CLUSTER) is None


def test_changed_services_names_appeared_vanished_and_edited() -> None:
    old = {"a": ((1, 1), None, None, None), "b": ((1, 1), None, None, None), "c": (None, None, None, None)}
    new = {"a": ((1, 1), None, None, None), "b": ((2, 1), None, None, None), "d": (None, None, None, None)}
    assert changed_services(old, new) == {"b", "c", "d"}
    assert changed_services(None, new) == {"a", "b", "d"}
    assert changed_services(new, new) == set()


# --------------------------------------------------------------------------- affected instances


def load(soa: Path, name: str) -> Any:
    return SoaDir(soa).load_service(name, clusters=[CLUSTER])


def test_affected_instances_by_kind_of_change(soa: Path) -> None:
    before = load(soa, "web")
    write_tree(soa, service_files("web", {"main": {"instances": 5}, "canary": {"instances": 1},
                                          "batch": {"instances": 1}}))
    after = load(soa, "web")
    affected = affected_instances(before, after, CLUSTER)
    assert (affected.changed, affected.added, affected.removed) == ({"web.main"}, {"web.batch"}, set())
    assert affected_instances(after, before, CLUSTER).removed == {"web.batch"}
    assert affected_instances(after, None, CLUSTER).removed == {"web.main", "web.canary", "web.batch"}
    assert affected_instances(None, after, CLUSTER).added == {"web.main", "web.canary", "web.batch"}


def test_a_new_version_or_control_affects_only_its_instance(soa: Path) -> None:
    before = load(soa, "web")
    path = soa / "web" / "deployments.json"
    doc = json.loads(path.read_text())
    doc["v2"]["deployments"][f"{CLUSTER}.canary"]["git_sha"] = NEW_SHA
    rewrite(path, doc)
    assert affected_instances(before, load(soa, "web"), CLUSTER).changed == {"web.canary"}
    doc["v2"]["controls"] = {f"web:{CLUSTER}.main": {"desired_state": "stop", "force_bounce": None}}
    middle = load(soa, "web")
    rewrite(path, doc)
    assert affected_instances(middle, load(soa, "web"), CLUSTER).changed == {"web.main"}


def test_unrelated_edits_and_invalid_instances(soa: Path) -> None:
    before = load(soa, "web")
    rewrite(soa / "web" / "service.yaml", {"description": "new words"})
    assert affected_instances(before, load(soa, "web"), CLUSTER).all == set()
    instances = soa / "web" / f"kubernetes-{CLUSTER}.yaml"
    rewrite(instances, {"main": {"instances": 2}, "canary": {"instances": -1}})
    broken = load(soa, "web")
    assert affected_instances(before, broken, CLUSTER).changed == {"web.canary"}
    rewrite(instances, {"main": {"instances": 2}, "canary": {"instances": -2}})
    assert affected_instances(broken, load(soa, "web"), CLUSTER).changed == {"web.canary"}


# --------------------------------------------------------------------------- the cache


def test_first_scan_loads_everything_and_deletes_nothing_before_a_second(soa: Path) -> None:
    cache = ConfigCache(soa, CLUSTER)
    assert cache.view().doubt is not None
    assert cache.scan() == {"web.main", "web.canary", "api.main"}
    view = cache.view()
    assert view.doubt is not None and view.is_configured("web.main")
    assert cache.scan() == set()
    assert cache.view().doubt is None and cache.view().unsettled == set()


def test_an_edit_queues_only_the_affected_instances(soa: Path) -> None:
    cache = ConfigCache(soa, CLUSTER)
    cache.scan()
    rewrite(soa / "api" / f"kubernetes-{CLUSTER}.yaml", {"main": {"instances": 4}, "extra": {}})
    assert cache.scan() == {"api.main", "api.extra"}
    assert cache.view().unsettled == {"api"}
    assert cache.scan() == set()


def test_a_broken_service_keeps_its_apps_until_fixed(soa: Path) -> None:
    cache = ConfigCache(soa, CLUSTER)
    cache.scan()
    path = soa / "web" / f"kubernetes-{CLUSTER}.yaml"
    rewrite(path, "main: {instances: 2\n")  # torn YAML, as in a half-written file
    assert cache.scan() == set()
    view = cache.view()
    assert set(view.errors) == {"web"} and not view.is_configured("web.main")
    assert view.job_ids() == {"web.main", "web.canary", "api.main"}
    assert "web" in view.configured().unreadable_services
    rewrite(path, {"main": {"instances": 2}})
    assert cache.scan() == {"web.main", "web.canary"}  # all of it once more; canary is now removed
    assert cache.view().errors == {}


def test_removals_are_unsettled_for_one_scan(soa: Path) -> None:
    cache = ConfigCache(soa, CLUSTER)
    cache.scan()
    cache.scan()
    rewrite(soa / "web" / f"kubernetes-{CLUSTER}.yaml", {"main": {"instances": 2}})
    assert cache.scan() == {"web.canary"}
    view = cache.view()
    assert not view.is_configured("web.canary")
    assert ("web", "canary") not in view.configured().instances
    assert "web" in view.configured().unreadable_services  # unsettled: cleanup keeps its apps
    cache.scan()
    assert "web" not in cache.view().configured().unreadable_services


def test_a_vanished_service_is_removed_after_it_settles(soa: Path) -> None:
    cache = ConfigCache(soa, CLUSTER)
    cache.scan()
    cache.scan()
    shutil.rmtree(soa / "api")
    assert cache.scan() == {"api.main"}
    assert cache.view().unsettled == {"api"}
    assert cache.scan() == set()
    view = cache.view()
    assert view.unsettled == set() and view.doubt is None and "api" not in view.services


@pytest.mark.parametrize("damage", ["empty", "missing"])
def test_a_doubtful_soa_dir_changes_nothing(soa: Path, damage: str) -> None:
    cache = ConfigCache(soa, CLUSTER)
    cache.scan()
    cache.scan()
    for child in soa.iterdir():
        shutil.rmtree(child)
    if damage == "missing":
        soa.rmdir()
    assert cache.scan() == set()
    view = cache.view()
    assert view.doubt is not None and "missing, unreadable or empty" in view.doubt
    assert view.job_ids() == {"web.main", "web.canary", "api.main"}  # last loaded configs kept
    write_tree(soa, service_files("web", {"main": {"instances": 2}, "canary": {"instances": 1}}))
    assert cache.scan() == {"api.main"}  # back: api is gone, but only a second scan settles it
    assert cache.view().doubt is not None
    cache.scan()
    assert cache.view().doubt is None


def test_a_change_found_by_a_full_reload_is_unsettled_until_the_next_scan(soa: Path) -> None:
    cache = ConfigCache(soa, CLUSTER)
    cache.scan()
    cache.scan()
    path = soa / "web" / f"kubernetes-{CLUSTER}.yaml"
    stat = path.stat()
    path.write_text(yaml.safe_dump({"main": {"instances": 9}, "canary": {"instances": 1}}))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # a change the stats cannot see
    assert cache.scan() == set()
    assert cache.reload_all() == {"web.main"}
    assert cache.view().unsettled == {"web"}
    cache.scan()
    assert cache.view().unsettled == set()


def test_a_full_reload_goes_a_slice_at_a_time(soa: Path) -> None:
    cache = ConfigCache(soa, CLUSTER)
    cache.scan()
    path = soa / "web" / f"kubernetes-{CLUSTER}.yaml"
    stat = path.stat()
    path.write_text(yaml.safe_dump({"main": {"instances": 9}, "canary": {"instances": 1}}))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    cache.start_full_reload()
    assert cache.continue_reload(1) == set()  # api (sorted first): unchanged
    assert cache.reloading
    assert cache.continue_reload(5) == {"web.main"}
    assert not cache.reloading
