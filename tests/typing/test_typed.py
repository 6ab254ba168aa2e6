"""A user's type checker sees Callboard's hints: ``py.typed`` ships, and the
public API (enqueue, get, wait, ``@job``, ``JobContext``) leaks no ``Any``."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = Path(__file__).with_name("user_jobs.py")


def test_py_typed_is_package_data() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    package_data = project["tool"]["setuptools"]["package-data"]
    for package in ("runtime", "actors"):
        assert (ROOT / package / "py.typed").is_file()
        assert "py.typed" in package_data[package]


def _mypy_strict(tmp_path: Path, example: Path) -> str:
    """mypy --strict's output on ``example``, copied into a project of its own."""
    # The packages as an installed copy would be: on the path, outside the
    # checked project, so mypy reads them only because of py.typed.
    site = tmp_path / "site"
    site.mkdir()
    for package in ("runtime", "actors"):
        (site / package).symlink_to(ROOT / package, target_is_directory=True)
    work = tmp_path / "work"
    work.mkdir()
    (work / example.name).write_text(example.read_text())
    env = {**os.environ, "PYTHONPATH": str(site)}
    cache = ROOT / ".mypy_cache" / "user-example"  # warm on the second run
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(cache), example.name],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout + done.stderr


@pytest.mark.timeout(300)
def test_mypy_strict_on_a_user_file(tmp_path: Path) -> None:
    out = _mypy_strict(tmp_path, EXAMPLE)
    assert "import-untyped" not in out, out
    assert "Success: no issues found" in out, out
    revealed = re.findall(r'Revealed type is "(.*)"', out)
    assert len(revealed) == 9, out
    for text in revealed:
        # An async def's coroutine is Coroutine[Any, Any, T]: that Any is Python's.
        plain = text.replace("typing.Coroutine[Any, Any, ", "Coroutine[")
        returns = plain.rsplit("->", 1)[-1]
        assert "Any" not in returns, text
    enqueue, get, wait, job, resize = revealed[:5]
    assert enqueue.endswith("-> typing.Coroutine[Any, Any, runtime.domain.models.Job]")
    assert get.endswith("runtime.domain.models.Job]") and wait.endswith("models.Job]")
    assert "**kwargs: Any" not in job and "timeout: float | None" in job, job
    assert "params: user_jobs.Resize" in resize and resize.endswith("dict[str, int]]")
    assert revealed[7] == "runtime.domain.models.Job" and revealed[8] in ("int", "builtins.int")


@pytest.mark.timeout(300)
def test_mypy_strict_on_a_user_file_of_the_http_client(tmp_path: Path) -> None:
    out = _mypy_strict(tmp_path, Path(__file__).with_name("user_client.py"))
    assert "Success: no issues found" in out, out
    revealed = re.findall(r'Revealed type is "(.*)"', out)
    wait, jobs, schedule_id, enqueue, schedules = revealed
    assert wait.endswith("-> runtime.domain.models.Job") and "Any" not in wait, wait
    assert jobs.removeprefix("builtins.") == "list[runtime.domain.models.Job]"
    assert schedule_id.removeprefix("builtins.") == "str"
    assert enqueue.endswith("-> typing.Coroutine[Any, Any, runtime.domain.models.Job]")
    assert "**fields: **TypedDict(runtime.client.calls.EnqueueFields" in enqueue, enqueue
    assert schedules.endswith("list[runtime.schedules.model.Schedule]]"), schedules
