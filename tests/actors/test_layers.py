"""actors/ is the engine core: it must never import runtime (layers point down)."""

from __future__ import annotations

import ast
from pathlib import Path

import actors
from tests.sorting import isort_key

ACTORS = Path(actors.__file__).parent


def imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_actors_never_import_runtime() -> None:
    offenders = {
        str(path.relative_to(ACTORS)): sorted(
            m for m in imported_modules(path) if m.split(".")[0] == "runtime"
        )
        for path in ACTORS.rglob("*.py")
    }
    assert {k: v for k, v in offenders.items() if v} == {}


def test_actors_exports_are_sorted_and_real() -> None:
    assert actors.__all__ == sorted(actors.__all__, key=isort_key)
    for name in actors.__all__:
        assert hasattr(actors, name), name
