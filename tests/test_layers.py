"""Layering rules a tool can check (STYLE.md practice 11).

- The pure core imports neither click, nor the Kubernetes client, nor anything that does I/O
  over the network or runs processes.
- Only `kube_client` / `kube_errors` import the `kubernetes` package.
- Entry points do not import each other.
- No module or subpackage is named after a dependency (PaaSTA's `kubernetes/` shadows the client).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "paasta_lite"

CORE = [
    "merge", "naming", "labels", "config_hash", "instance_config", "validation",
    "git_tags", "render", "render_pod", "reconcile_plan", "health", "pod_logs", "volumes", "config_keys",
    "errors",
]
FORBIDDEN_IN_CORE = {"click", "kubernetes", "requests", "urllib3", "subprocess", "socket", "waitress"}
#: paasta_lite's own I/O modules. (`system_config` and `deployments_json` pair a pure `parse_*` with a
#: thin `load_*`, STYLE practice 9: the core may use their types and parsers.)
IO_MODULES = {
    "paasta_lite.files", "paasta_lite.soa_config", "paasta_lite.kube_client", "paasta_lite.git_remote",
    "paasta_lite.event_log", "paasta_lite.instance_status",
}
ENTRY_POINTS = {
    "setup_kubernetes_job", "cleanup_kubernetes_jobs", "generate_deployments_for_service", "paasta_api",
}
DEPENDENCIES = {"kubernetes", "yaml", "jsonschema", "requests", "click", "waitress"}


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node except those under `if TYPE_CHECKING:` (type-only imports cost nothing at run time)."""
    nodes: list[ast.AST] = []
    pending = [tree]
    while pending:
        node = pending.pop()
        nodes.append(node)
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            pending.extend(node.orelse)
            continue
        pending.extend(ast.iter_child_nodes(node))
    return nodes


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def module_path(name: str) -> Path:
    return PACKAGE / f"{name}.py"


@pytest.mark.parametrize("name", CORE)
def test_core_module_does_no_io(name: str) -> None:
    path = module_path(name)
    if not path.exists():
        pytest.skip(f"{name}.py does not exist yet")
    modules = imported_modules(path)
    roots = {module.split(".")[0] for module in modules}
    assert not roots & FORBIDDEN_IN_CORE, f"{name}.py imports {roots & FORBIDDEN_IN_CORE}"
    assert not modules & IO_MODULES, f"{name}.py imports {modules & IO_MODULES}"


def test_only_the_kube_modules_import_the_kubernetes_client() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.stem not in {"kube_client", "kube_errors"}
        and any(module.split(".")[0] == "kubernetes" for module in imported_modules(path))
    ]
    assert offenders == []


def test_entry_points_do_not_import_each_other() -> None:
    for name in ENTRY_POINTS:
        path = module_path(name)
        if not path.exists():
            continue
        imported = {module.removeprefix("paasta_lite.") for module in imported_modules(path)}
        assert not imported & (ENTRY_POINTS - {name}), f"{name} imports {imported & ENTRY_POINTS}"


def test_no_module_shadows_a_dependency() -> None:
    names = {path.stem for path in PACKAGE.rglob("*.py")} | {p.name for p in PACKAGE.rglob("*") if p.is_dir()}
    assert not names & DEPENDENCIES
