"""The package's layout: data flows one way, and the core never imports lesson or widget code.

Read from the source (``ast``), not by importing: a module-level import of one
package of mtlkit by another is an edge; the graph of mtlkit's top-level packages
and modules must have no cycle, and no module of the core may import
``mtlkit.experiments`` (lesson helpers) or ``mtlkit.widgets`` (panels).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "mtlkit"
LESSON_AND_WIDGET = {"experiments", "widgets"}


def unit_of(module: str) -> str:
    """'mtlkit.models.base' -> 'models' (a top-level package or module of mtlkit)."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Absolute names of the mtlkit modules ``path`` imports (any depth, inside functions too)."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.startswith("mtlkit"):
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mtlkit"))
    return found


def edges() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in ROOT.rglob("*.py"):
        src = unit_of(module_name(path)) if path.parent != ROOT or path.name != "__init__.py" else "__init__"
        targets = {unit_of(t) for t in imports_of(path) if t != "mtlkit"}
        graph.setdefault(src, set()).update(t for t in targets
                                            if t != src and ((ROOT / t).is_dir() or (ROOT / f"{t}.py").exists()))
    for units in graph.values():
        units.discard("__init__")
    graph.pop("__init__", None)   # the package's front door imports everything it re-exports
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return path + [node, nxt]
            if nxt not in state and (cycle := visit(nxt, path + [node])):
                return cycle
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node, [])):
            return cycle
    return None


def test_no_import_cycle_between_mtlkits_packages():
    cycle = find_cycle(edges())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


@pytest.mark.parametrize("path", sorted(p for p in ROOT.rglob("*.py")
                                        if unit_of(module_name(p)) not in LESSON_AND_WIDGET | {"__init__"}),
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_imports_no_lesson_or_widget_code(path):
    bad = sorted(t for t in imports_of(path) if unit_of(t) in LESSON_AND_WIDGET)
    assert not bad, f"{path.relative_to(ROOT.parent)} imports {bad}"


def test_the_checks_find_what_they_look_for():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    # relative imports resolve to absolute names: "from ..models import MODELS" in experiments/architectures.py
    assert {"mtlkit.models", "mtlkit.models.MODELS"} <= imports_of(ROOT / "experiments" / "architectures.py")
    assert {"balancers", "models", "data"} <= edges()["train"]
    assert unit_of("mtlkit.models.base") == "models"
