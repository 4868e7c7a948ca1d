"""pyproject's dependencies are exactly what ftbench imports, read from the source (AST), not by importing it.

Both directions matter: an import whose distribution is not declared works on a developer's box (it came in
with something else) and fails on a fresh install; a declared dependency that nothing imports costs every
user a download. Imports count wherever they are written - module level or inside a function (heavy and
optional packages are imported lazily, in the job that needs them).

Optional features live in extras: an import that belongs to one is allowed only in the modules of that
feature (OPTIONAL below), so an optional package cannot quietly become a runtime requirement.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import re
import sys
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the backport pyproject declares for it
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]
PACKAGE_DIR = ROOT / "ftbench"

# Import name -> (extra, where ftbench may import it). Listed by hand because the distribution of an optional
# package is usually not installed, so packages_distributions() cannot name it.
OPTIONAL: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "vllm": ("vllm", "vllm", ("ftbench/serve/",)),
}
# Imported but deliberately not declared.
UNDECLARED_OK = {"torch": "scripts/bootstrap.sh installs a pinned CPU build only when torch is missing"}
# Declared but never imported by ftbench itself.
DECLARED_UNIMPORTED = {
    "protobuf": "transformers converts SentencePiece tokenizers (export, chat) with it",
}


def canonical(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def requirement_name(req: str) -> str:
    return canonical(re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", req.strip()).group(0))


def third_party_imports(package_dir: Path) -> dict[str, set[str]]:
    """Top-level import name -> the files (relative to the repo) importing it, at any depth in the module."""
    found: dict[str, set[str]] = {}
    for path in package_dir.rglob("*.py"):
        rel = path.relative_to(package_dir.parent).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.partition(".")[0]
                if top != package_dir.name and top not in sys.stdlib_module_names:
                    found.setdefault(top, set()).add(rel)
    return found


@pytest.fixture(scope="module")
def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]


@pytest.fixture(scope="module")
def runtime(pyproject: dict) -> set[str]:
    return {requirement_name(r) for r in pyproject["dependencies"]}


@pytest.fixture(scope="module")
def imports() -> dict[str, set[str]]:
    return third_party_imports(PACKAGE_DIR)


@functools.cache
def installed_distributions() -> dict[str, list[str]]:
    return importlib.metadata.packages_distributions()


def distributions_of(import_name: str) -> set[str]:
    """The distributions providing `import_name`; one not installed here (a backport behind a python_version
    marker, like tomli) is taken to share its import name."""
    dists = installed_distributions().get(import_name)
    return {canonical(d) for d in dists} if dists else {canonical(import_name)}


def test_scan_sees_function_local_imports(imports: dict[str, set[str]]) -> None:
    # vllm and sentencepiece are only imported inside functions; a module-level-only scan would miss them.
    assert "ftbench/serve/engines.py" in imports["vllm"]
    assert "ftbench/export/gguf/tokenizer.py" in imports["sentencepiece"]
    assert "ftbench" not in imports and "json" not in imports


def test_every_import_is_declared(imports: dict[str, set[str]], runtime: set[str], pyproject: dict) -> None:
    extras = {name: {requirement_name(r) for r in reqs} for name, reqs in pyproject["optional-dependencies"].items()}
    problems = []
    for name, files in sorted(imports.items()):
        if name in UNDECLARED_OK:
            continue
        if name in OPTIONAL:
            extra, dist, homes = OPTIONAL[name]
            if dist not in extras.get(extra, set()):
                problems.append(f"{name}: the `{extra}` extra does not list {dist}")
            outside = sorted(f for f in files if not f.startswith(homes))
            if outside:
                problems.append(f"{name} belongs to the `{extra}` extra but is imported by {outside}")
            continue
        dists = distributions_of(name)
        if not dists & runtime:
            problems.append(
                f"{name} (distribution {sorted(dists)}, imported by {sorted(files)}) is not in dependencies"
            )
    assert not problems, "\n".join(problems)


def test_every_runtime_dependency_is_imported(imports: dict[str, set[str]], runtime: set[str]) -> None:
    imported = {dist for name in imports for dist in distributions_of(name)}
    unused = sorted(runtime - imported - set(DECLARED_UNIMPORTED))
    assert not unused, f"declared in pyproject but never imported by ftbench/: {unused}"


def test_documented_exceptions_still_hold(imports: dict[str, set[str]], runtime: set[str]) -> None:
    # The exception lists must not outlive their reason.
    assert set(DECLARED_UNIMPORTED) <= runtime
    assert not any(dist in DECLARED_UNIMPORTED for name in imports for dist in distributions_of(name))
    assert set(UNDECLARED_OK) <= set(imports) and not set(UNDECLARED_OK) & runtime
