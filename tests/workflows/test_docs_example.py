"""docs/workflows.md's example runs as written (the first Python block of
its "Dependencies" section)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.trio

DOC = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"


def _example() -> str:
    section = DOC.read_text().split("## Dependencies", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None, "no python example under ## Dependencies"
    return found.group(1)


async def test_the_dependencies_example_runs(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace: dict[str, Any] = {"__name__": "workflows_example"}
    exec(compile(_example(), str(DOC), "exec"), namespace)
    await namespace["main"](store_url)
    out = capsys.readouterr().out
    assert "ended failed" in out
