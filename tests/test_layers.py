"""The layers of docs/design.md, as the imports must keep them.

Top to bottom::

    interfaces   runtime.api, runtime.client, runtime.cli, runtime.dashboard
    facade       runtime (the public names), runtime.runtime and the other
                 top-level modules of runtime/
    concepts     runtime.schedules, runtime.workflows (built on jobs)
                 runtime.jobs
    persistence  runtime.store
    domain       runtime.domain
    engine       actors (imports nothing of runtime)

Interfaces import the facade, the facade imports the concepts, the concepts
import the store and the engine, never upward: a module may import its own
layer and the layers below it. Imports under ``TYPE_CHECKING`` count like
any other, since a module must be readable (and movable) without the layers
above it; and no module may import itself back through others, even within
a layer. Where a lower layer needs something of a higher one, it declares a
protocol and the higher layer hands it an implementation.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

import actors
import runtime

ROOTS = (Path(runtime.__file__).parent, Path(actors.__file__).parent)

# Rank of each package, highest first; a module may import only modules
# of its own rank or below. The top-level modules of runtime/ are the facade.
RANKS = {
    "runtime.api": 6,
    "runtime.client": 6,
    "runtime.cli": 6,
    "runtime.dashboard": 6,
    "runtime": 5,
    "runtime.schedules": 4,
    "runtime.workflows": 4,
    "runtime.jobs": 3,
    "runtime.store": 2,
    "runtime.domain": 1,
    "actors": 0,
}


def module_name(path: Path) -> str:
    root = next(r for r in ROOTS if path.is_relative_to(r))
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for root in ROOTS for path in sorted(root.rglob("*.py"))}


def imports_of(name: str) -> set[str]:
    """Modules ``name`` imports from runtime or actors, wherever the import is."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                submodule = f"{node.module}.{alias.name}"
                found.add(submodule if submodule in MODULES else node.module)
    return {m for m in found if m in MODULES and m != name}


def package_of(name: str) -> str:
    """The longest entry of RANKS that ``name`` lives in."""
    return max((p for p in RANKS if name == p or name.startswith(p + ".")), key=len)


GRAPH = {name: imports_of(name) for name in MODULES}


def test_every_module_has_a_layer() -> None:
    assert all(package_of(name) in RANKS for name in MODULES)


@pytest.mark.parametrize("name", sorted(MODULES))
def test_imports_point_down(name: str) -> None:
    here = package_of(name)
    upward = sorted(m for m in GRAPH[name] if RANKS[package_of(m)] > RANKS[here])
    assert upward == []


def test_no_import_circles() -> None:
    graphlib.TopologicalSorter(GRAPH).prepare()  # raises CycleError, naming the circle
