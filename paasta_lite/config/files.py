"""Safe reading of config files, and atomic writing.

Config files are written by people, sometimes carelessly, sometimes hostilely. Everything read
here fails fast with a `ConfigError` naming the file: files that are too large, not UTF-8, not
regular files (directories, sockets), symlink loops, YAML with Python-object or unknown tags,
duplicate keys, alias bombs ("billion laughs"), merge-key bombs and recursive aliases. Memory
and time stay bounded.

YAML goes through PyYAML's public API only: `yaml.compose` builds the node graph (with libyaml
when available), then one memoised pass of ours over that graph checks it, applies `<<` merge
keys with the YAML merge spec's precedence and builds plain Python data. PyYAML's own merge
handling changed between releases (6.0.4 lets a merge list's LAST mapping win for keys of two
or more characters, yaml/pyyaml#953), so what we deploy must not depend on it.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

import yaml

from paasta_lite.errors import ConfigError, FileSystemError

#: No soa-config or system-config file has a reason to be larger than this.
MAX_FILE_BYTES = 4 * 1024 * 1024
#: Upper bound on the number of nodes a YAML document may expand to once aliases are followed,
#: and on the entries `<<` merge keys may copy in one document.
MAX_EXPANDED_NODES = 500_000
#: Deeper YAML is refused: as written, before libyaml parses it (its composer would overflow the
#: C stack near 25,000 levels), and once aliases are followed (for the recursive code downstream).
MAX_NESTING_DEPTH = 500

_Built = TypeVar("_Built", list[Any], dict[Any, Any])

_BaseLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

_TAG = "tag:yaml.org,2002:"
_STR, _MAP, _SEQ, _MERGE = _TAG + "str", _TAG + "map", _TAG + "seq", _TAG + "merge"
#: `=` (the "value" key) and a `<<` that is not a key are plain strings, as in PyYAML's keys.
_TEXT_TAGS = {_STR, _TAG + "value", _MERGE}
#: PyYAML's public per-tag scalar constructors (stateless, so one instance serves every call).
_SCALARS = yaml.constructor.SafeConstructor()
_CONVERTERS: dict[str, Callable[[yaml.ScalarNode], Any]] = {
    _TAG + "null": _SCALARS.construct_yaml_null, _TAG + "bool": _SCALARS.construct_yaml_bool,
    _TAG + "int": _SCALARS.construct_yaml_int, _TAG + "float": _SCALARS.construct_yaml_float,
    _TAG + "timestamp": _SCALARS.construct_yaml_timestamp,
}
#: What a value with an explicit tag must look like (as PyYAML's implicit resolver reads it),
#: so `!!int x` is refused with a line instead of failing inside the constructor.
_TAG_ACCEPTS: dict[str, tuple[str, ...]] = {
    _TAG + "bool": (_TAG + "bool",), _TAG + "int": (_TAG + "int",),
    _TAG + "float": (_TAG + "int", _TAG + "float"), _TAG + "timestamp": (_TAG + "timestamp",),
}
_implicit_tag: Callable[[type[yaml.Node], str, tuple[bool, bool]], str] = yaml.resolver.Resolver().resolve


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


def _short(tag: str) -> str:
    return tag.replace(_TAG, "!!")


def _where(node: yaml.Node) -> str:
    mark = node.start_mark
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown line"


class _DocumentBuilder:
    """Turns one composed YAML node graph into plain Python data in one memoised pass.

    Each node is built once, by identity (an alias IS the node its anchor named), in post-order
    with an explicit stack (no recursion limit to hit): a node's children, including the
    mappings its `<<` merges, are built before it, so a merged mapping's own merges are already
    resolved. Every built list and dict carries its expanded size (each alias counted as a copy)
    and its depth, so an alias bomb is refused after a few thousand steps instead of being
    expanded; merging has its own budget.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self.built: dict[yaml.Node, Any] = {}
        #: id(built list or dict) -> (expanded size, depth); a scalar is (1, 0). Merged entries
        #: are looked up by value, hence ids: every value stays referenced from `built` until
        #: the end, so no id is reused meanwhile.
        self.measures: dict[int, tuple[int, int]] = {}
        self.merge_budget = MAX_EXPANDED_NODES

    def build(self, root: yaml.Node) -> Any:
        if isinstance(root, yaml.ScalarNode):
            return self._scalar(root)
        built = self.built
        open_nodes: set[yaml.Node] = set()  # expanded, not yet built: meeting one again is a cycle
        stack: list[tuple[yaml.Node, bool]] = [(root, False)]
        while stack:
            node, children_built = stack.pop()
            if children_built:
                open_nodes.discard(node)
                built[node] = self._finish(node)
            elif node not in built:
                if node in open_nodes:
                    raise self._refused(node, "contains a recursive YAML alias (a node that includes itself)")
                open_nodes.add(node)
                stack.append((node, True))
                stack.extend((child, False) for child in reversed(self._unbuilt_collections(node)))
        return built[root]

    def _unbuilt_collections(self, node: yaml.Node) -> list[yaml.Node]:
        """Check `node`'s tag, build its scalar children now, and return the rest in order."""
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            self._check_tag(node, _MAP, "mapping")
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    raise self._invalid(key_node, f"a mapping key must be a plain value, not a {key_node.id}")
                children += (key_node, value_node)
        else:
            self._check_tag(node, _SEQ, "sequence")
            children = node.value
        built = self.built
        unbuilt = []
        for child in children:
            if child in built:
                continue
            if isinstance(child, yaml.ScalarNode):
                built[child] = self._scalar(child)
            else:
                unbuilt.append(child)
        return unbuilt

    def _check_tag(self, node: yaml.Node, expected: str, kind: str) -> None:
        if node.tag != expected:
            known = node.tag in _CONVERTERS or node.tag in (_STR, _MAP, _SEQ)
            where = f" on a {kind}" if known else ""
            raise self._invalid(node, f"uses the tag {_short(node.tag)}{where}, which is not allowed")

    def _scalar(self, node: yaml.ScalarNode) -> Any:
        tag = node.tag
        if tag in _TEXT_TAGS:
            return node.value
        if tag not in _CONVERTERS:  # !!python/..., !!binary, !!set, !custom, ...
            raise self._invalid(node, f"uses the tag {_short(tag)}, which is not allowed")
        accepts = _TAG_ACCEPTS.get(tag)
        if accepts and _implicit_tag(yaml.ScalarNode, node.value, (True, False)) not in accepts:
            raise self._invalid(node, f"{node.value!r} is not a valid {_short(tag)}")
        try:
            return _CONVERTERS[tag](node)
        except (ValueError, KeyError) as error:  # the date 2024-13-45 has the form, but no such day
            raise self._invalid(node, f"{node.value!r} is not a valid {_short(tag)}") from error

    def _finish(self, node: yaml.Node) -> Any:
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node)
        items = [self.built[item] for item in node.value]
        return self._measured(node, items, items, 1)

    def _mapping(self, node: yaml.MappingNode) -> dict[Any, Any]:
        """Explicit keys (no duplicates), then the `<<` merge under them."""
        built = self.built
        mapping: dict[Any, Any] = {}
        merge: tuple[yaml.Node, yaml.Node] | None = None
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE and merge is None:
                merge = (key_node, value_node)
                continue
            key = built[key_node]
            if key in mapping or key_node.tag == _MERGE:
                raise self._invalid(key_node, f"duplicate key {key!r}")
            mapping[key] = built[value_node]
        if merge is not None:
            mapping = self._merged(*merge, explicit=mapping)
        return self._measured(node, mapping, mapping.values(), 1 + len(mapping))

    def _merged(
        self, key_node: yaml.Node, value_node: yaml.Node, *, explicit: dict[Any, Any]
    ) -> dict[Any, Any]:
        """The YAML merge spec: explicit keys win; in a merge list, earlier mappings win.

        The sources are already built, hence already merged themselves. Later sources are
        applied first and earlier ones overwrite them, which also keeps PyYAML 6.0.3's key order.
        """
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode):
                kind = "sequence" if isinstance(source, yaml.SequenceNode) else "scalar"
                raise self._invalid(
                    source, f"the merge key (<<) takes a mapping or a list of mappings, not a {kind}"
                )
        merged: dict[Any, Any] = {}
        for source in reversed(sources):
            entries = self.built[source]
            self.merge_budget -= len(entries)
            if self.merge_budget < 0:
                raise self._refused(
                    key_node,
                    f"merge keys (<<) expand to more than {MAX_EXPANDED_NODES} values (an alias bomb?)",
                )
            merged.update(entries)
        merged.update(explicit)
        return merged

    def _measured(self, node: yaml.Node, value: _Built, children: Iterable[Any], size: int) -> _Built:
        """Record `value`'s expanded size and depth (from its children's), refusing too much of either."""
        measures = self.measures
        depth = 0
        for child in children:
            child_size, child_depth = measures.get(id(child), (1, 0))
            size += child_size
            depth = max(depth, child_depth)
        if size > MAX_EXPANDED_NODES:
            raise self._refused(
                node,
                f"expands to more than {MAX_EXPANDED_NODES} values once YAML aliases are followed "
                "(an alias bomb?)",
            )
        if depth >= MAX_NESTING_DEPTH:
            raise self._refused(
                node, f"is nested too deeply (more than {MAX_NESTING_DEPTH} levels once aliases are followed)"
            )
        measures[id(value)] = (size, depth + 1)
        return value

    def _invalid(self, node: yaml.Node, problem: str) -> ConfigError:
        return ConfigError.single(self.name, f"is not valid YAML ({_where(node)}): {problem}")

    def _refused(self, node: yaml.Node, problem: str) -> ConfigError:
        return ConfigError.single(self.name, f"{problem}, at {_where(node)}")


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
        root = yaml.compose(text, Loader=_BaseLoader)
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = error.problem or error.context or "invalid YAML"
        raise ConfigError.single(name, f"is not valid YAML{where}: {problem}") from error
    except yaml.YAMLError as error:
        raise ConfigError.single(name, f"is not valid YAML: {error}") from error
    except RecursionError as error:  # the pure-Python composer (no libyaml) recurses per level
        raise ConfigError.single(name, "is nested too deeply") from error
    document = None if root is None else _DocumentBuilder(name).build(root)
    return {} if document is None else document


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
