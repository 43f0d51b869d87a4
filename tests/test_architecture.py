"""The package's shape: imports point down the pipeline, no circles, small modules.

Read from the source with ``ast`` (function-level imports count too: a lazy import is still a
dependency). The layers, bottom to top:

    errors, config_utils, atomic → data → models → evaluation, training, tracking → protocols
    → config (the schema and the checks before any work) → pipeline → cli;   serving, reports,
    bench and after_sweep (the sweep's end) sit on top and nothing below imports them.

The bottom three (errors, config_utils, and atomic, which writes files atomically) may be
imported by every layer and import no layer themselves.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "ncae_exp"
MAX_LINES = 350


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """module → the ncae_exp modules it imports (resolved to modules that exist)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("ncae_exp"):
                candidates = [f"{node.module}.{a.name}" for a in node.names] + [node.module]
            elif isinstance(node, ast.Import):
                candidates = [a.name for a in node.names if a.name.startswith("ncae_exp")]
            else:
                continue
            for cand in candidates:
                # the longest existing module prefix (``from pkg import name`` may name a module)
                while cand and cand not in modules:
                    cand = cand.rpartition(".")[0]
                if cand and cand != name and cand != "ncae_exp":
                    targets.add(cand)
        graph[name] = targets
    return graph


GRAPH = _imports()


def _layer(module: str) -> str:
    return module.split(".")[1] if module.count(".") else "ncae_exp"


def test_the_import_graph_has_no_circle():
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(GRAPH.get(node, ())):
            # a package's __init__ importing its own submodules is a re-export, not a circle
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                cycle = stack[stack.index(nxt):] + [nxt]
                pytest.fail("import circle: " + " -> ".join(cycle))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(GRAPH):
        if module not in state:
            visit(module)


# What each layer may import (besides itself and the bottom modules: errors, config_utils and
# atomic, the atomic file writes).
ALLOWED = {
    "data": set(),
    "models": {"data"},
    "evaluation": {"data", "models"},
    "training": {"models", "tracking"},
    "tracking": set(),
    "protocols": {"data", "models", "evaluation", "training", "tracking"},
    # the config's checks read dataset facts, model classes and protocols' split rules
    "config": {"data", "models", "protocols", "training"},
    "pipeline": {"data", "models", "protocols", "training", "tracking"},
    "cli": {"config", "pipeline", "tracking"},
}
TOP = {"serving", "reports", "bench", "after_sweep"}
BOTTOM = {"errors", "config_utils", "atomic"}  # every layer may import them; they import no layer


def test_the_bottom_modules_import_no_layer():
    for module, targets in GRAPH.items():
        if _layer(module) in BOTTOM:
            assert {_layer(t) for t in targets} <= BOTTOM, f"{module} imports {targets}"


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_imports_point_down_the_pipeline(layer):
    base = {*BOTTOM, "ncae_exp", layer}
    for module, targets in GRAPH.items():
        if _layer(module) != layer:
            continue
        for target in targets:
            assert _layer(target) in base | ALLOWED[layer], f"{module} imports {target}"


def test_nothing_below_imports_serving_reports_or_bench():
    for module, targets in GRAPH.items():
        if _layer(module) in TOP:
            continue
        bad = [t for t in targets if _layer(t) in TOP]
        assert not bad, f"{module} imports {bad}"


def test_evaluation_knows_only_the_model_interface():
    for module, targets in GRAPH.items():
        if _layer(module) == "evaluation":
            assert all(not t.startswith("ncae_exp.models.") or t == "ncae_exp.models.base" for t in targets), module


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_stay_small(path):
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.name} has {lines} lines: split it by job"
