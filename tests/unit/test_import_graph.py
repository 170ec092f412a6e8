"""The package's import graph, read from the source with ast: no cycles, and the folders'
direction of flow (docs/architecture.md) holds.

Every import counts, including those inside functions: a lazy import that closes a cycle
still ties the two modules together."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "harness"


def module_name(path: Path, package: Path = PACKAGE) -> str:
    parts = list(path.relative_to(package.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = module.split(".")
    if not is_package:
        base = base[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """module -> the package's modules it imports (an import of a name inside a module, or of
    a package's submodule, counts as an import of that module)."""
    paths = {module_name(p, package): p for p in package.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in paths}
    for module, path in paths.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                wanted = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = _resolve(module, path.name == "__init__.py", node)
                wanted = [base] + [f"{base}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in wanted:
                while name and name not in paths:
                    name = name.rpartition(".")[0]
                # a package's own __init__ importing its submodules is not a dependency back
                if name and name != module and not module.startswith(name + "."):
                    graph[module].add(name)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
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
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
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


def test_harness_has_no_import_cycle() -> None:
    found = cycles(import_graph())
    assert not found, "import cycles in harness/: " + "; ".join(" <-> ".join(c) for c in found)


def test_the_cycle_finder_finds_a_planted_cycle(tmp_path: Path) -> None:
    """The check above can fail: a two-module cycle through a function-level import is found."""
    package = tmp_path / "harness"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("from . import a\n")  # a package face: not a cycle
    (package / "sub" / "a.py").write_text("from harness.sub.b import thing\n")
    (package / "sub" / "b.py").write_text("def thing():\n    from ..sub import a\n    return a\n")
    (package / "c.py").write_text("import harness.sub.a\n")
    assert cycles(import_graph(package)) == [["harness.sub.a", "harness.sub.b"]]


# The direction of flow: the agent is shipped alone to devices, so it imports nothing of the
# host; what decides (analysis) and what is declared (config) never reach into running a
# session, the plugin, the report or the lab.
FORBIDDEN = [
    ("harness.agent", ("harness.",), "the agent runs alone on the device (only relative imports of itself)"),
    ("harness.analysis", ("harness.run", "harness.plugin", "harness.report", "harness.lab", "harness.transport",
                          "harness.cli", "harness.zoo"), "analysis is pure: it reads values, it runs nothing"),
    ("harness.config", ("harness.run", "harness.plugin", "harness.report", "harness.lab", "harness.transport",
                        "harness.cli", "harness.store", "harness.zoo"), "configuration is read, never run"),
    ("harness.store", ("harness.run", "harness.plugin", "harness.report", "harness.lab", "harness.analysis"),
     "the store knows nothing of measuring or rendering"),
    ("harness.report", ("harness.run", "harness.plugin", "harness.lab", "harness.transport"),
     "a report is built from the store alone"),
]


@pytest.mark.parametrize("layer, forbidden, why", FORBIDDEN, ids=[f[0] for f in FORBIDDEN])
def test_imports_flow_one_way(layer: str, forbidden: tuple[str, ...], why: str) -> None:
    graph = import_graph()
    wrong = sorted((module, target) for module, targets in graph.items()
                   if module == layer or module.startswith(layer + ".")
                   for target in targets
                   if any(target == f.rstrip(".") or target.startswith(f if f.endswith(".") else f + ".")
                          for f in forbidden)
                   and not (target == layer or target.startswith(layer + ".")))
    assert not wrong, f"{why}: " + ", ".join(f"{m} imports {t}" for m, t in wrong)
