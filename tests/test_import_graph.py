"""The import graph of `rlvr/`, `verifiers/` and `sandbox/` has no circles.

Every ``import`` statement counts, at module level or inside a function (an import inside a
function is a circle that waits for its first call), except those under ``if TYPE_CHECKING:``. ``import a.b`` and ``from a.b import c``
are edges to ``a.b`` (or to ``a.b.c`` where ``c`` is a submodule); ``from a import b`` is an
edge to the package ``a`` itself (its ``__init__``) unless ``b`` is a submodule, so a
submodule that imports names back from its own package's ``__init__`` while that
``__init__`` imports it is a circle too. Relative imports are resolved against the module.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("rlvr", "verifiers", "sandbox")


def module_files() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the three packages (``pkg`` for ``pkg/__init__.py``)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _owner(name: str, modules: dict[str, Path]) -> str | None:
    """The longest prefix of a dotted name that is one of our modules."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def _type_checking_only(tree: ast.AST) -> set[int]:
    """Ids of the import nodes under ``if TYPE_CHECKING:``: they never run, so they cannot close a circle."""
    skipped: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(inner) for stmt in node.body for inner in ast.walk(stmt))
    return skipped


def import_edges(modules: dict[str, Path]) -> dict[str, set[str]]:
    """Module -> the modules it imports; importing ``a.b.c`` also runs the ``__init__`` of each package
    on the way (``a.b``) that the importer is not itself inside."""
    edges: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(), str(path))
        skipped = _type_checking_only(tree)
        for node in ast.walk(tree):
            if id(node) in skipped:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(name, is_package, node)
                targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                           for alias in node.names]
            for target in targets:
                owner = _owner(target, modules)
                if owner is None or owner == name:
                    continue
                edges[name].add(owner)
                own_packages = {".".join(name.split(".")[:i]) for i in range(1, name.count(".") + 2)}
                for i in range(1, owner.count(".") + 1):
                    package = ".".join(owner.split(".")[:i])
                    if package not in own_packages and package in modules:
                        edges[name].add(package)
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_walk_sees_every_package_and_function_level_imports():
    modules = module_files()
    edges = import_edges(modules)
    assert {"rlvr", "verifiers", "sandbox"} <= set(modules)
    assert sum(len(targets) for targets in edges.values()) > 100


def test_the_cycle_finder_finds_a_circle_through_a_package_init():
    edges = {"pkg": {"pkg.a"}, "pkg.a": {"pkg.b"}, "pkg.b": {"pkg"}, "other": {"pkg"}}
    assert cycles(edges) == [["pkg", "pkg.a", "pkg.b"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_circles():
    found = cycles(import_edges(module_files()))
    assert not found, "import circles (break each by moving the shared piece down):\n" + "\n".join(
        " <-> ".join(component) for component in found)


def test_dependencies_point_one_way():
    """rlvr -> verifiers -> sandbox: nothing below imports what sits above it."""
    edges = import_edges(module_files())
    above = {"sandbox": ("verifiers", "rlvr"), "verifiers": ("rlvr",)}
    wrong = [f"{source} -> {target}" for source, targets in edges.items() for target in targets
             if any(target.split(".")[0] == up for up in above.get(source.split(".")[0], ()))]
    assert not wrong, wrong


def test_at_most_12_modules_at_the_root_of_rlvr():
    """Each part has its room (docs/architecture.md); the package root keeps only the shared pieces."""
    root = sorted(p.name for p in (ROOT / "rlvr").glob("*.py"))
    assert len(root) <= 12, root
