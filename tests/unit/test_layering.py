"""The walls between ftbench's packages, held by reading the source (AST), not by importing it.

The rule (ARCHITECTURE.md, "Layers"):
- `core` and `catalog` are the bottom: they import only `core` and `catalog`.
- `tui` runs in the light process: it imports only `core`, `catalog`, `chat` (the client side; the heavy
  chat backends are kept out by test_import_hygiene.py) and itself - never `train`, `export` or any other
  job-side package (a new `serve/`, `evaluate/`, ... included). It reaches them through jobs and files, or
  through a light entry point listed in TUI_ENTRY_POINTS (starting a job, describing its result).
- Nothing but `tui` itself and the CLI (`cli.py`, `commands/`, which open the TUI) imports `tui`.
- No import cycles among ftbench modules.

How imports count: every `import` in a module is a dependency of that module - at module level, inside a
function, or under `if TYPE_CHECKING:`. A function-local import only delays the same dependency (it is how a
cycle hides until the function runs), and a type-only import still ties the two modules' designs together;
so all three take part in both the layer rule and the cycle rule.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "ftbench"

BOTTOM = {"core", "catalog"}
# What each layer may import (besides itself); a layer not listed here may import anything but `tui`.
ALLOWED: dict[str, set[str]] = {
    "core": BOTTOM,
    "catalog": BOTTOM,
    "tui": BOTTOM | {"chat"},
}
TUI_IMPORTERS = {"tui", "cli", "commands"}
# The light entry points of job-side packages that the TUI may call: they start a job and describe its result
# without importing the package's heavy parts (test_import_hygiene.py holds that after every screen mounts).
TUI_ENTRY_POINTS = {
    "ftbench.serve.launch",
    "ftbench.serve.connect",
    "ftbench.evaluate.report",
    "ftbench.hub.launch",
    "ftbench.evaluate.retention",  # check_eval_file, before the TUI starts an export with --eval
}


@dataclass(frozen=True)
class Edge:
    source: str  # importing module, dotted
    target: str  # imported ftbench module, dotted
    path: Path  # file of the importing module
    line: int

    def where(self) -> str:
        return f"{self.path}:{self.line}"


def module_files(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the package (a package is its __init__.py)."""
    modules = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = list(path.relative_to(package_dir.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        modules[".".join(parts)] = path
    return modules


def _owning_module(name: str, modules: dict[str, Path]) -> str | None:
    """The longest known module that `name` names or lies inside (`ftbench.core.jobs.Job` -> `ftbench.core.jobs`)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def import_edges(package_dir: Path) -> list[Edge]:
    root = package_dir.name
    modules = module_files(package_dir)
    edges = []
    for source, path in modules.items():
        package = source if path.name == "__init__.py" else source.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    module = ".".join(base + ([node.module] if node.module else []))
                else:
                    module = node.module or ""
                # `from pkg import mod` depends on pkg.mod; `from mod import name` on mod.
                names = [f"{module}.{alias.name}" for alias in node.names]
            for name in names:
                if name != root and not name.startswith(root + "."):
                    continue
                target = _owning_module(name, modules)
                if target and target != source:
                    edges.append(Edge(source, target, path.relative_to(package_dir.parent), node.lineno))
    return edges


def layer_of(module: str) -> str:
    """`ftbench.core.jobs` -> `core`; `ftbench.cli` -> `cli`; `ftbench` -> ``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_violations(edges: list[Edge]) -> list[str]:
    problems = []
    for edge in edges:
        src, dst = layer_of(edge.source), layer_of(edge.target)
        if src == dst or dst == "" or (src == "tui" and edge.target in TUI_ENTRY_POINTS):
            continue
        allowed = ALLOWED.get(src)
        if allowed is not None and dst not in allowed:
            problems.append(
                f"{edge.where()}: {edge.source} imports {edge.target}; "
                f"`{src}` may import only {', '.join(sorted(allowed))}."
            )
        elif dst == "tui" and src not in TUI_IMPORTERS:
            problems.append(
                f"{edge.where()}: {edge.source} imports {edge.target}; only the CLI may import `tui` "
                "(talk to the TUI through jobs and files instead)."
            )
    return problems


def import_cycles(edges: list[Edge]) -> list[str]:
    """One message per strongly connected group of modules, showing one concrete loop with file:line."""
    graph: dict[str, dict[str, Edge]] = {}
    for edge in edges:
        graph.setdefault(edge.source, {}).setdefault(edge.target, edge)
        graph.setdefault(edge.target, {})
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; the module graph is small enough to recurse
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph[node]:
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return [_describe_cycle(group, graph) for group in groups]


def _describe_cycle(group: list[str], graph: dict[str, dict[str, Edge]]) -> str:
    """Walk from the group's first module back to itself (breadth first, so the loop shown is a short one)."""
    members = set(group)
    start = group[0]
    came_from: dict[str, Edge] = {}
    frontier = [start]
    while frontier and start not in came_from:
        nxt_frontier = []
        for node in frontier:
            for target, edge in graph[node].items():
                if target in members and target not in came_from:
                    came_from[target] = edge
                    nxt_frontier.append(target)
        frontier = nxt_frontier
    loop = []
    node = start
    while True:
        edge = came_from[node]
        loop.append(edge)
        node = edge.source
        if node == start:
            break
    loop.reverse()
    chain = " -> ".join([start] + [e.target for e in loop])
    return f"import cycle: {chain} ({'; '.join(e.where() for e in loop)})"


def layering_problems(package_dir: Path) -> list[str]:
    edges = import_edges(package_dir)
    return layer_violations(edges) + import_cycles(edges)


def test_ftbench_keeps_its_layers_and_has_no_import_cycles():
    problems = layering_problems(PACKAGE_DIR)
    assert not problems, "\n".join(problems)


def test_the_graph_sees_function_local_and_type_checking_imports():
    edges = {(e.source, e.target) for e in import_edges(PACKAGE_DIR)}
    # cli.py opens the TUI only when no subcommand is given: a function-local import.
    assert ("ftbench.cli", "ftbench.tui.app") in edges
    assert len(edges) > 150  # the whole package was read, not one folder


def _write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root / "ftbench"


def test_a_new_forbidden_import_or_cycle_fails_with_file_line_and_rule(tmp_path):
    pkg = _write(
        tmp_path,
        {
            "ftbench/__init__.py": "",
            "ftbench/core/__init__.py": "",
            "ftbench/core/jobs.py": "import json\n\n\ndef sync():\n    from ftbench.core.registry import Registry\n",
            "ftbench/core/registry.py": "from ftbench.core.jobs import sync\n",
            "ftbench/core/card.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from ftbench.export import merge\n",
            "ftbench/export/__init__.py": "",
            "ftbench/export/merge.py": "from ..tui.app import App\n",
            "ftbench/tui/__init__.py": "",
            "ftbench/tui/app.py": "App = 1\n\n\ndef go():\n    from ftbench.train import worker\n",
            "ftbench/train/__init__.py": "",
            "ftbench/train/worker.py": "",
            "ftbench/serve/__init__.py": "",
            "ftbench/serve/api.py": "import ftbench.core.jobs\n",
            "ftbench/tui/chat.py": "from ftbench.serve import api\nfrom ftbench.chat import client\n",
            "ftbench/chat/__init__.py": "",
            "ftbench/chat/client.py": "from ftbench.core import jobs\n",
        },
    )
    problems = layering_problems(pkg)
    assert sorted(problems) == sorted(
        [
            "ftbench/core/card.py:3: ftbench.core.card imports ftbench.export.merge; `core` may import only catalog, core.",
            "ftbench/export/merge.py:1: ftbench.export.merge imports ftbench.tui.app; only the CLI may import `tui` "
            "(talk to the TUI through jobs and files instead).",
            "ftbench/tui/app.py:5: ftbench.tui.app imports ftbench.train.worker; `tui` may import only catalog, chat, core.",
            "ftbench/tui/chat.py:1: ftbench.tui.chat imports ftbench.serve.api; `tui` may import only catalog, chat, core.",
            "import cycle: ftbench.core.jobs -> ftbench.core.registry -> ftbench.core.jobs "
            "(ftbench/core/jobs.py:5; ftbench/core/registry.py:1)",
        ]
    )
    with pytest.raises(AssertionError, match="import cycle: ftbench.core.jobs"):
        assert not problems, "\n".join(problems)


def test_a_clean_tree_passes(tmp_path):
    pkg = _write(
        tmp_path,
        {
            "ftbench/__init__.py": "",
            "ftbench/core/__init__.py": "",
            "ftbench/core/jobs.py": "from . import atomic\n",
            "ftbench/core/atomic.py": "",
            "ftbench/tui/__init__.py": "",
            "ftbench/tui/app.py": "from ftbench.core.jobs import x\n",
            "ftbench/cli.py": "def main():\n    from ftbench.tui.app import App\n",
        },
    )
    assert layering_problems(pkg) == []
