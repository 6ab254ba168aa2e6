"""The README's tour runs as written, under trio.run and under asyncio.run."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _tour() -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A 30-second tour", 1)[1]
    found = re.search(r"```python\n(.*?)```", section, re.S)
    assert found is not None
    return found.group(1)


def test_the_tour_ends_with_its_entry_point() -> None:
    assert _tour().rstrip().splitlines()[-1].startswith("anyio.run(main)")


@pytest.mark.parametrize(
    "entry", ["anyio.run(main)", "trio.run(main)", "import asyncio; asyncio.run(main())"]
)
def test_the_tour_runs(tmp_path: Path, entry: str) -> None:
    code = _tour().rstrip().splitlines()
    code[-1] = f"import trio; {entry}" if entry.startswith("trio") else entry
    script = tmp_path / "tour.py"
    script.write_text("\n".join(code) + "\n")
    # As a user runs it: their own script, its database beside them (cwd).
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "completed" in done.stdout, done.stdout
