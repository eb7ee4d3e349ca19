"""files: safe reading of hostile or broken config files, and atomic writing.

Covers: empty files, invalid YAML/JSON with line and column, duplicate keys, Python-object tags,
very deep nesting (no crash of the C parser), non-UTF-8 bytes, size limit, symlink loops,
directories and FIFOs where a file should be, unreadable files; atomic_write_text leaves no temp
files and follows the umask. Merge keys, alias and merge bombs, recursive aliases, nesting through
aliases and generated garbage: test_yaml_merge.py.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from paasta_lite.config.files import (
    MAX_FILE_BYTES,
    atomic_write_text,
    load_json_file,
    load_yaml_file,
    parse_yaml,
    read_text,
)
from paasta_lite.errors import ConfigError


def error_text(excinfo: pytest.ExceptionInfo[ConfigError]) -> str:
    return str(excinfo.value)


def test_empty_yaml_file_is_an_empty_mapping(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text("")
    assert load_yaml_file(path) == {}
    path.write_text("# only a comment\n")
    assert load_yaml_file(path) == {}


def test_anchors_and_merge_keys_work() -> None:
    text = "_base: &base {cpus: 1, env: {A: '1'}}\nmain:\n  <<: *base\n  cpus: 2\n"
    assert parse_yaml(text, "f.yaml")["main"] == {"cpus": 2, "env": {"A": "1"}}


def test_invalid_yaml_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "kubernetes-c1.yaml"
    path.write_text("main:\n  cpus: 1\n   mem: [\n")
    with pytest.raises(ConfigError) as excinfo:
        load_yaml_file(path)
    assert str(path) in error_text(excinfo)
    assert "is not valid YAML (line 3, column" in error_text(excinfo)


def test_duplicate_keys_are_an_error_with_line() -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_yaml("main:\n  cpus: 1\n  cpus: 2\n", "f.yaml")
    assert "duplicate key 'cpus'" in error_text(excinfo)
    assert "line 3" in error_text(excinfo)


def test_duplicate_top_level_instance_is_an_error() -> None:
    with pytest.raises(ConfigError, match="duplicate key 'main'"):
        parse_yaml("main: {}\nmain: {}\n", "f.yaml")


def test_merge_key_overridden_by_own_key_is_not_a_duplicate() -> None:
    assert parse_yaml("a: &a {x: 1}\nb: {<<: *a, x: 2}\n", "f")["b"] == {"x": 2}


@pytest.mark.parametrize(
    "text",
    [
        "x: !!python/object/apply:os.system ['echo hi']\n",
        "x: !!python/object:builtins.dict {}\n",
        "x: !!python/name:os.system\n",
    ],
)
def test_python_tags_are_refused(text: str) -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_yaml(text, "f.yaml")
    assert "which is not allowed" in error_text(excinfo)
    assert "!!python/" in error_text(excinfo)


def test_shared_aliases_below_the_limit_load() -> None:
    text = "a: &a [1, 2, 3]\nb: [*a, *a, *a]\n"
    assert parse_yaml(text, "f")["b"] == [[1, 2, 3]] * 3


@pytest.mark.parametrize("text_expr", ["'[' * 60000", "'- ' * 60000 + 'x'", "'{a: ' * 60000"])
def test_very_deep_nesting_does_not_crash_the_process(text_expr: str) -> None:
    # libyaml's composer recurses on the C stack: ~25k levels is a segfault, not an exception.
    # Run in a child process so a crash is reported as a failure instead of killing pytest.
    code = (
        "from paasta_lite.config.files import parse_yaml\n"
        "from paasta_lite.errors import ConfigError\n"
        f"text = {text_expr}\n"
        "try:\n    parse_yaml(text, 'deep.yaml')\nexcept ConfigError as e:\n    print('ConfigError', e)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, f"child died with {result.returncode}: {result.stderr[-300:]}"
    assert "ConfigError deep.yaml" in result.stdout


def test_non_utf8_bytes_are_an_error_with_offset(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_bytes(b"description: caf\xe9\n")
    with pytest.raises(ConfigError) as excinfo:
        load_yaml_file(path)
    assert f"{path}: is not valid UTF-8 (bad byte at offset 16)" in error_text(excinfo)


def test_file_over_the_size_limit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * (MAX_FILE_BYTES + 1))
    with pytest.raises(ConfigError, match="is larger than"):
        read_text(path)
    small = tmp_path / "small.yaml"
    small.write_text("a: 1\n")
    with pytest.raises(ConfigError, match="is larger than 0 KiB"):
        read_text(small, max_bytes=3)
    assert read_text(small, max_bytes=5) == "a: 1\n"


def test_symlink_loop_is_an_error(tmp_path: Path) -> None:
    loop = tmp_path / "service.yaml"
    os.symlink(loop, loop)
    with pytest.raises(ConfigError, match="is a symlink loop"):
        load_yaml_file(loop)


def test_directory_where_a_file_should_be(tmp_path: Path) -> None:
    directory = tmp_path / "service.yaml"
    directory.mkdir()
    with pytest.raises(ConfigError, match="is a directory, expected a file"):
        load_yaml_file(directory)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_json_file(tmp_path / "nope.json")


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "service.yaml"
    os.mkfifo(fifo)
    outcome: list[BaseException | None] = []

    def read() -> None:
        try:
            read_text(fifo)
            outcome.append(None)
        except ConfigError as error:
            outcome.append(error)

    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    thread.join(timeout=2)
    if thread.is_alive():  # unblock the reader so the test process can exit
        with open(fifo, "w"):
            pass
        thread.join(timeout=2)
        pytest.fail("read_text blocked on a FIFO")
    assert outcome and "is not a regular file" in str(outcome[0])


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "service.yaml"
    path.write_text("a: 1\n")
    path.chmod(0)
    try:
        with pytest.raises(ConfigError, match="is not readable"):
            load_yaml_file(path)
    finally:
        path.chmod(0o600)


def test_invalid_json_names_file_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "00-base.json"
    path.write_text('{\n  "cluster": "c1",\n  "oops"\n}\n')
    with pytest.raises(ConfigError) as excinfo:
        load_json_file(path)
    assert f"{path}: is not valid JSON (line 4, column 1)" in error_text(excinfo)


def test_deep_json_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "deep.json"
    path.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(ConfigError, match="nested too deeply"):
        load_json_file(path)


def test_atomic_write_replaces_content_and_leaves_no_temp_files(tmp_path: Path) -> None:
    target = tmp_path / "deployments.json"
    target.write_text("old")
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deployments.json"]


def test_atomic_write_follows_umask(tmp_path: Path) -> None:
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "f", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o640


def test_atomic_write_failure_keeps_old_file_and_cleans_up(tmp_path: Path) -> None:
    target = tmp_path / "f"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError):
        atomic_write_text(target, "bad \udcff surrogate")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f"]
