"""Safe reading of config files, and atomic writing.

Config files are written by people, sometimes carelessly, sometimes hostilely. Everything read
here fails fast with a `ConfigError` naming the file: files that are too large, not UTF-8, not
regular files (directories, sockets), symlink loops, YAML with Python-object tags, duplicate keys,
alias bombs ("billion laughs") and recursive aliases. Memory and time stay bounded.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any

import yaml

from paasta_lite.errors import ConfigError, FileSystemError

#: No soa-config or system-config file has a reason to be larger than this.
MAX_FILE_BYTES = 4 * 1024 * 1024
#: Upper bound on the number of nodes a YAML document may expand to once aliases are followed.
MAX_EXPANDED_NODES = 500_000
#: Deeper YAML is refused before parsing (libyaml would overflow the C stack near 25,000).
MAX_NESTING_DEPTH = 500

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StrictLoader(_BaseLoader):  # type: ignore[valid-type,misc]
    """A safe loader (C speed when available) that refuses duplicate keys in a mapping and
    bounds the work `<<` merge keys do (PyYAML copies merged entries, doubling per level)."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._merge_budget = MAX_EXPANDED_NODES

    def flatten_mapping(self, node: yaml.MappingNode) -> None:
        super().flatten_mapping(node)
        self._merge_budget -= len(node.value)
        if self._merge_budget < 0:
            raise yaml.constructor.ConstructorError(
                None, None, f"merge keys (<<) expand to more than {MAX_EXPANDED_NODES} values "
                "(an alias bomb?)", node.start_mark,
            )

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge" or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


def _os_error_message(error: OSError) -> str:
    if error.errno == errno.ELOOP:
        return "is a symlink loop"
    if error.errno == errno.EISDIR:
        return "is a directory, expected a file"
    if error.errno == errno.ENOENT:
        return "does not exist"
    if error.errno == errno.EACCES:
        return "is not readable (permission denied)"
    return f"cannot be read: {error.strerror or error}"


def read_text(path: str | os.PathLike[str], *, max_bytes: int = MAX_FILE_BYTES) -> str:
    """Read a regular UTF-8 text file of bounded size."""
    name = str(path)
    try:
        # O_NONBLOCK: opening a FIFO for reading would otherwise wait forever for a writer
        with open(os.open(name, os.O_RDONLY | os.O_NONBLOCK), "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise ConfigError.single(name, "is not a regular file")
            data = handle.read(max_bytes + 1)
    except OSError as error:
        raise ConfigError.single(name, _os_error_message(error)) from error
    if len(data) > max_bytes:
        raise ConfigError.single(name, f"is larger than {max_bytes // 1024} KiB; refusing to read it")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError.single(
            name, f"is not valid UTF-8 (bad byte at offset {error.start})"
        ) from error


def _check_expanded_size(document: Any, name: str) -> None:
    """Refuse documents whose aliases expand beyond `MAX_EXPANDED_NODES`, or that refer to themselves.

    Sizes are memoised per object, so this is linear in the number of distinct nodes even for an
    alias bomb whose expansion is astronomically large.
    """
    sizes: dict[int, int] = {}
    in_progress: set[int] = set()

    def size(node: Any) -> int:
        if not isinstance(node, (dict, list)):
            return 1
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in in_progress:
            raise ConfigError.single(name, "contains a recursive YAML alias (a node that includes itself)")
        in_progress.add(key)
        children = list(node.keys()) + list(node.values()) if isinstance(node, dict) else node
        total = 1
        for child in children:
            total += size(child)
            if total > MAX_EXPANDED_NODES:
                raise ConfigError.single(
                    name,
                    f"expands to more than {MAX_EXPANDED_NODES} values once YAML aliases are followed "
                    "(an alias bomb?)",
                )
        in_progress.discard(key)
        sizes[key] = total
        return total

    size(document)


_NESTING_INDICATORS = ("[", "{", "-", "?", ":")
_OPENING_TOKENS = (
    yaml.BlockMappingStartToken, yaml.BlockSequenceStartToken,
    yaml.FlowMappingStartToken, yaml.FlowSequenceStartToken,
)
_CLOSING_TOKENS = (yaml.BlockEndToken, yaml.FlowMappingEndToken, yaml.FlowSequenceEndToken)


def _check_nesting_depth(text: str, name: str) -> None:
    """Refuse nesting deeper than `MAX_NESTING_DEPTH` before libyaml composes it.

    libyaml's composer recurses on the C stack, so ~25,000 levels (`[[[[...` or `- - - ...`)
    crash the process instead of raising. Every level needs its own indicator character, so
    their count bounds the depth: ordinary files skip the (iterative) token scan entirely.
    """
    if sum(text.count(c) for c in _NESTING_INDICATORS) <= MAX_NESTING_DEPTH:
        return
    scanner = _BaseLoader(text)
    depth = 0
    try:
        while scanner.check_token():
            token = scanner.get_token()  # type: ignore[no-untyped-call]
            if isinstance(token, _OPENING_TOKENS):
                depth += 1
                if depth > MAX_NESTING_DEPTH:
                    raise ConfigError.single(
                        name, f"is nested too deeply (more than {MAX_NESTING_DEPTH} levels)"
                    )
            elif isinstance(token, _CLOSING_TOKENS):
                depth -= 1
    except yaml.YAMLError:
        return  # a syntax error: the parser proper reports it with its line and column
    finally:
        scanner.dispose()


def parse_yaml(text: str, name: str) -> Any:
    """Parse YAML text safely (see module docstring); an empty document is `{}`."""
    _check_nesting_depth(text, name)
    try:
        document = yaml.load(text, Loader=_StrictLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = error.problem or error.context or "invalid YAML"
        tag = re.search(r"constructor for the tag '([^']+)'", problem)
        if tag:
            problem = f"uses the tag {tag.group(1).replace('tag:yaml.org,2002:', '!!')}, which is not allowed"
        raise ConfigError.single(name, f"is not valid YAML{where}: {problem}") from error
    except yaml.YAMLError as error:
        raise ConfigError.single(name, f"is not valid YAML: {error}") from error
    except RecursionError as error:
        raise ConfigError.single(name, "is nested too deeply") from error
    if document is None:
        return {}
    try:
        _check_expanded_size(document, name)
    except RecursionError as error:
        raise ConfigError.single(name, "is nested too deeply") from error
    return document


def load_yaml_file(path: str | os.PathLike[str]) -> Any:
    """Read and parse one YAML file; errors name the file (and line/column)."""
    return parse_yaml(read_text(path), str(path))


def load_json_file(path: str | os.PathLike[str]) -> Any:
    """Read and parse one JSON file; errors name the file and the line/column."""
    name = str(path)
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError.single(
            name, f"is not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}"
        ) from error
    except RecursionError as error:
        raise ConfigError.single(name, "is nested too deeply") from error


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write `text` to `path` so readers see the old or the new content, never a torn file.

    A temporary file in the same directory is written, flushed to disk and renamed over the
    target; permissions follow the umask (as a plain `open(..., "w")` would). A refusal of the
    file system (read-only directory, full disk, the target is a directory) raises
    `FileSystemError` naming the target, and the old content stays.
    """
    target = Path(path)
    umask = os.umask(0)
    os.umask(umask)
    try:
        fd, temp_name = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    except OSError as error:
        raise FileSystemError(str(target), f"cannot be written: {error.strerror or error}") from error
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp_name, 0o666 & ~umask)
        os.replace(temp_name, target)
    except BaseException as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        if isinstance(error, OSError):
            raise FileSystemError(str(target), f"cannot be written: {error.strerror or error}") from error
        raise
