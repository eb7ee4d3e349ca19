"""Layering rules a tool can check (STYLE.md practice 11), stated once in docs/architecture.md.

- Packages form a DAG: a package imports only the packages below it (`ALLOWED`); the shared
  leaves (`errors`, `timestamps`) are below everything; entry points sit on top and do not import
  each other.
- The pure core imports neither click, nor the Kubernetes client, nor anything that does I/O
  over the network or runs processes, nor paasta_lite's own I/O modules.
- Only `kube.client` / `kube.errors` import the `kubernetes` package.
- No module or subpackage is named after a dependency (PaaSTA's `kubernetes/` shadows the client).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "paasta_lite"

#: Leaf modules every layer may use.
SHARED = {"errors", "timestamps", "__init__"}
#: package -> the packages it may import (besides itself and SHARED). Mirrors docs/architecture.md.
ALLOWED: dict[str, set[str]] = {
    "config": set(),
    "gitflow": set(),
    "kube": {"config"},
    "status": {"config", "kube"},
    "api": {"config", "kube", "status"},
    "cli": {"config", "kube", "gitflow", "status"},
    "controller": {"config", "kube", "status"},
}
ENTRY_POINTS = {
    "setup_kubernetes_job", "cleanup_kubernetes_jobs", "generate_deployments_for_service", "paasta_api",
    "paasta_deployd", "__main__",
}

CORE = [
    "config/merge", "config/naming", "config/instance_config", "config/validation", "config/volumes",
    "config/config_keys", "config/autoscaling", "config/deploy_yaml", "kube/labels", "kube/config_hash",
    "kube/render", "kube/render_pod", "kube/render_scaling", "kube/reconcile_plan", "kube/managed_fields",
    "kube/compare", "kube/companions",
    "gitflow/tags", "status/health", "status/objects", "status/rollout", "status/pod_logs", "errors",
    "timestamps",
]
FORBIDDEN_IN_CORE = {"click", "kubernetes", "requests", "urllib3", "subprocess", "socket", "waitress"}
#: paasta_lite's own I/O modules. (`system_config` and `deployments_json` pair a pure `parse_*` with a
#: thin `load_*`, STYLE practice 9: the core may use their types and parsers.)
IO_MODULES = {
    "paasta_lite.config.files", "paasta_lite.config.soa_config", "paasta_lite.kube.client",
    "paasta_lite.gitflow.remote", "paasta_lite.status.event_log", "paasta_lite.status.instance_status",
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
    """Absolute module names imported at run time (`from paasta_lite.kube import labels` counts as
    `paasta_lite.kube.labels`)."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def own_packages(path: Path) -> set[str]:
    """The first component under paasta_lite of everything `path` imports from paasta_lite."""
    parts = [module.split(".") for module in imported_modules(path)]
    return {
        part[1] for part in parts
        if part[0] == "paasta_lite" and len(part) > 1 and (part[1] in ALLOWED or part[1] in ENTRY_POINTS)
    }


def test_every_module_lives_in_a_known_place() -> None:
    top = {p.stem for p in PACKAGE.glob("*.py")}
    stray = top - SHARED - ENTRY_POINTS
    assert not stray, f"new top-level modules belong in a package: {stray}"
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages == set(ALLOWED), "a new package needs its row in ALLOWED and in docs/architecture.md"


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_only_the_packages_below_it(package: str) -> None:
    allowed = ALLOWED[package] | {package}
    offenders = {
        str(path.relative_to(PACKAGE)): sorted(own_packages(path) - allowed)
        for path in (PACKAGE / package).rglob("*.py")
        if own_packages(path) - allowed
    }
    assert offenders == {}


def test_the_package_graph_has_no_cycles() -> None:
    def below(package: str, seen: tuple[str, ...] = ()) -> None:
        assert package not in seen, f"cycle: {' -> '.join((*seen, package))}"
        for lower in ALLOWED[package]:
            below(lower, (*seen, package))

    for package in ALLOWED:
        below(package)


@pytest.mark.parametrize("name", sorted(SHARED - {"__init__"}))
def test_shared_leaves_import_nothing_of_ours(name: str) -> None:
    modules = imported_modules(PACKAGE / f"{name}.py")
    assert not {m for m in modules if m.startswith("paasta_lite.")}


@pytest.mark.parametrize("name", CORE)
def test_core_module_does_no_io(name: str) -> None:
    modules = imported_modules(PACKAGE / f"{name}.py")
    roots = {module.split(".")[0] for module in modules}
    assert not roots & FORBIDDEN_IN_CORE, f"{name}.py imports {roots & FORBIDDEN_IN_CORE}"
    assert not modules & IO_MODULES, f"{name}.py imports {modules & IO_MODULES}"


def test_only_the_kube_modules_import_the_kubernetes_client() -> None:
    offenders = [
        str(path.relative_to(PACKAGE))
        for path in PACKAGE.rglob("*.py")
        if path.relative_to(PACKAGE).as_posix() not in {"kube/client.py", "kube/errors.py"}
        and any(module.split(".")[0] == "kubernetes" for module in imported_modules(path))
    ]
    assert offenders == []


def test_entry_points_do_not_import_each_other() -> None:
    for name in ENTRY_POINTS:
        modules = imported_modules(PACKAGE / f"{name}.py")
        imported = {module.removeprefix("paasta_lite.") for module in modules}
        assert not imported & (ENTRY_POINTS - {name}), f"{name} imports {imported & ENTRY_POINTS}"


def test_no_module_shadows_a_dependency() -> None:
    names = {path.stem for path in PACKAGE.rglob("*.py")} | {p.name for p in PACKAGE.rglob("*") if p.is_dir()}
    assert not names & DEPENDENCIES
