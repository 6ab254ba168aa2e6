"""A user's own ``actors.py`` or ``runtime.py`` beside their script: a plain error."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run_script(folder: Path) -> subprocess.CompletedProcess[str]:
    (folder / "main.py").write_text("from runtime import Runtime\nprint(Runtime.__name__)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}  # as if installed: after the script's folder
    return subprocess.run(
        [sys.executable, "main.py"], cwd=folder, env=env, capture_output=True, text=True, timeout=60
    )


def test_without_clashes_the_script_imports(tmp_path: Path) -> None:
    done = _run_script(tmp_path)
    assert done.returncode == 0 and done.stdout == "Runtime\n", done.stderr


def test_a_user_actors_py_gets_an_error_that_names_it(tmp_path: Path) -> None:
    (tmp_path / "actors.py").write_text("ACTORS = ['Alice']\n")
    done = _run_script(tmp_path)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: your module ") and str(tmp_path / "actors.py") in last
    assert "hides Callboard's engine package 'actors'" in last and "rename your module" in last


def test_a_user_runtime_py_is_named_by_python(tmp_path: Path) -> None:
    # It hides the whole package, so no code of Callboard's runs: Python's own
    # error names the file (docs/tutorial.md tells the two names to avoid).
    (tmp_path / "runtime.py").write_text("SETTINGS = {}\n")
    done = _run_script(tmp_path)
    assert done.returncode == 1
    assert "cannot import name 'Runtime' from 'runtime'" in done.stderr
    assert str(tmp_path / "runtime.py") in done.stderr
