"""The layers hold: ``recipe_lang`` <- ``compiler`` <- ``runtime`` <- ``kdr``.

Every import in the four packages, at module level or inside a function, is read from the
source (nothing is imported), resolved to a module of the project, and checked: no import
points up the list, no import cycle exists (lazy imports included), ``recipe_lang`` and
``compiler`` never import torch, and no module is over 400 lines.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

ROOT = Path(__file__).resolve().parents[2]
LAYERS = ("recipe_lang", "compiler", "runtime", "kdr")
RANK = {name: i for i, name in enumerate(LAYERS)}
MAX_LINES = 400


def _modules() -> dict[str, Path]:
    out = {}
    for package in LAYERS:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module ``name`` refers to (the longest known prefix), or None."""
    parts = name.split(".")
    while parts:
        candidate = ".".join(parts)
        if candidate in MODULES:
            return candidate
        parts.pop()
    return None


def imports(module: str) -> set[str]:
    """Every name ``module`` imports, anywhere in its body, as absolute dotted names."""
    path = MODULES[module]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            out.add(base)
            # `from pkg import sub` imports the submodule pkg.sub
            out.update(f"{base}.{alias.name}" for alias in node.names)
    return out


def import_graph() -> nx.DiGraph:
    g: nx.DiGraph = nx.DiGraph()
    g.add_nodes_from(MODULES)
    for module in MODULES:
        for name in imports(module):
            target = _resolve(name)
            if target is not None and target != module:
                # `from pkg import name` where name is not a submodule resolves to pkg itself;
                # a module importing its own package's __init__ is not an edge worth keeping.
                if module.startswith(target + "."):
                    continue
                g.add_edge(module, target)
    return g


def upward_edges(g: nx.DiGraph) -> list[str]:
    return [f"{a} -> {b}" for a, b in g.edges if RANK[b.split(".")[0]] > RANK[a.split(".")[0]]]


def cycles(g: nx.DiGraph) -> list[list[str]]:
    return [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]


GRAPH = import_graph()


def test_the_scan_sees_the_project():
    assert len(MODULES) > 50
    assert ("kdr.cli", "compiler.driver") in GRAPH.edges


def test_no_import_points_up_the_layers():
    assert upward_edges(GRAPH) == []


def test_no_import_cycle():
    assert cycles(GRAPH) == []


@pytest.mark.parametrize("package", ["recipe_lang", "compiler"])
def test_front_end_and_compiler_never_import_torch(package):
    heavy = ("torch", "torchvision", "numpy", "onnx", "runtime")
    found = [
        f"{m}: {name}"
        for m in MODULES
        if m.split(".")[0] == package
        for name in imports(m)
        if name.split(".")[0] in heavy
    ]
    assert found == []


def test_no_module_over_400_lines():
    long = {
        m: n
        for m, path in MODULES.items()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert long == {}


def test_the_checker_catches_a_cycle_and_an_upward_import():
    g: nx.DiGraph = nx.DiGraph()
    g.add_edge("compiler.plan", "runtime.run")
    g.add_edge("runtime.run", "compiler.plan")
    g.add_edge("kdr.cli", "compiler.driver")
    assert upward_edges(g) == ["compiler.plan -> runtime.run"]
    assert cycles(g) == [["compiler.plan", "runtime.run"]]


def test_lazy_and_relative_imports_are_seen(tmp_path):
    assert "runtime.run.dry_run" in imports("runtime.run")  # `from runtime.run.dry_run import`
    lazy = {name for name in imports("kdr.cli") if name.startswith("runtime")}
    assert lazy, "kdr.cli imports the runtime inside functions only; the scan must see it"
