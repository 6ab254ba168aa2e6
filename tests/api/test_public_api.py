from __future__ import annotations

import runtime.api
from tests.sorting import isort_key


def test_api_all_is_sorted_and_every_name_exists() -> None:
    assert runtime.api.__all__ == sorted(runtime.api.__all__, key=isort_key)
    for name in runtime.api.__all__:
        assert hasattr(runtime.api, name), name


def test_the_api_layer_is_not_imported_by_the_runtime_below_it() -> None:
    import ast
    from pathlib import Path

    root = Path(runtime.__file__).parent
    for path in root.rglob("*.py"):
        if path.parts[-2] in {"api", "cli"} or path.name == "demo.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                # runtime.client is not runtime.cli: whole package names only.
                package = ".".join(node.module.split(".")[:2])
                assert package not in ("runtime.api", "runtime.cli"), path
