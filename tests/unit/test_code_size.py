"""Small modules with one job: no ftbench module over 500 lines, no function over 80 (ARCHITECTURE.md).

Counted from the source (AST line spans), tests excluded. A failure lists every offender with its size, so
the report doubles as the "what is too big" list: `pytest tests/unit/test_code_size.py -q`.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[2] / "ftbench"
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 80


def oversized(package_dir: Path) -> list[str]:
    problems = []
    for path in sorted(package_dir.rglob("*.py")):
        rel = path.relative_to(package_dir.parent).as_posix()
        text = path.read_text(encoding="utf-8")
        lines = len(text.splitlines())
        if lines > MAX_MODULE_LINES:
            problems.append(f"{rel}: {lines} lines (at most {MAX_MODULE_LINES}; split it by job)")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                span = node.end_lineno - node.lineno + 1
                if span > MAX_FUNCTION_LINES:
                    problems.append(f"{rel}:{node.lineno} {node.name}(): {span} lines (at most {MAX_FUNCTION_LINES})")
    return problems


def test_no_module_or_function_is_too_big():
    problems = oversized(PACKAGE_DIR)
    assert not problems, "\n".join(problems)


def test_the_check_reports_a_big_module_and_a_long_function(tmp_path):
    pkg = tmp_path / "ftbench"
    pkg.mkdir()
    body = "\n".join(f"    x{i} = {i}" for i in range(85))
    (pkg / "big.py").write_text("def long():\n" + body + "\n" + "\n" * 420, encoding="utf-8")
    (pkg / "fine.py").write_text("def short():\n    return 1\n", encoding="utf-8")
    assert oversized(pkg) == [
        "ftbench/big.py: 506 lines (at most 500; split it by job)",
        "ftbench/big.py:1 long(): 86 lines (at most 80)",
    ]
