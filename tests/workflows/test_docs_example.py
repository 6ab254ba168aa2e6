"""docs/workflows.md's examples run as written (the first Python block of its
"Steps", "Dependencies", "Child jobs", "Fan-in (chords)" and "Watching a
workflow" sections)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.trio

DOC = Path(__file__).resolve().parents[2] / "docs" / "workflows.md"
EXPECTED = {
    "Dependencies": "ended failed",
    "Child jobs": "completed 18",
    "Fan-in (chords)": "squares: 332833500",
    "Watching a workflow": "children ended: 3",
}


def _example(title: str) -> str:
    section = DOC.read_text().split(f"## {title}\n", 1)[1].split("\n## ", 1)[0]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None, f"no python example under ## {title}"
    return found.group(1)


@pytest.mark.parametrize("title", list(EXPECTED))
async def test_the_workflow_examples_run(
    title: str, store_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace: dict[str, Any] = {"__name__": "workflows_example"}
    exec(compile(_example(title), str(DOC), "exec"), namespace)
    await namespace["main"](store_url)
    out = capsys.readouterr().out
    assert EXPECTED[title] in out


async def test_the_steps_example_runs(store_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {"__name__": "workflows_example"}
    exec(compile(_example("Steps"), str(DOC), "exec"), namespace)
    await namespace["main"](store_url)
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "['/home -> nightly', '/etc -> nightly', 7]",
        "backup completed 1",
        "backup completed 1",
        "prune completed 2",
    ]
