"""docs/workflows.md's examples run as written (the first Python block of
its "Steps" and "Dependencies" sections)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.trio

DOC = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"


def _example(heading: str = "## Dependencies") -> str:
    section = DOC.read_text().split(heading + "\n", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None, f"no python example under {heading}"
    return found.group(1)


async def test_the_dependencies_example_runs(
    store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace: dict[str, Any] = {"__name__": "workflows_example"}
    exec(compile(_example(), str(DOC), "exec"), namespace)
    await namespace["main"](store_url)
    out = capsys.readouterr().out
    assert "ended failed" in out


async def test_the_steps_example_runs(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {"__name__": "workflows_example"}
    exec(compile(_example("## Steps"), str(DOC), "exec"), namespace)
    await namespace["main"](store_url)
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "['/home -> nightly', '/etc -> nightly', 7]",
        "backup completed 1",
        "backup completed 1",
        "prune completed 2",
    ]
