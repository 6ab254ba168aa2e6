"""``--lease`` and ``--heartbeat-interval`` reach the runtime of ``serve`` and ``worker``."""

from __future__ import annotations

import importlib
import io
from pathlib import Path
from typing import Any

import pytest

from runtime import Registry
from runtime.cli.client import EXIT_USAGE
from runtime.cli.service import ServeOptions

cli = importlib.import_module("runtime.cli.main")  # the package exports main, the function


def test_worker_passes_lease_and_heartbeat_to_its_runtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[ServeOptions] = []

    async def fake_run_service(registry: Any, hooks: Any, options: ServeOptions) -> int:
        seen.append(options)
        return 0

    monkeypatch.setattr(cli, "run_service", fake_run_service)
    monkeypatch.setattr(cli, "freeze_startup_objects", lambda: None)
    monkeypatch.setattr(cli, "default_registry", Registry())  # the hooks register in it
    db = f"sqlite:///{tmp_path / 'cb.db'}"
    args = ["worker", "--db", db, "--lease", "12", "--heartbeat-interval", "3"]
    assert cli.main(args, out=io.StringIO()) == 0
    assert (seen[0].lease, seen[0].heartbeat_interval) == (12.0, 3.0)


def test_a_lease_shorter_than_the_heartbeat_is_a_usage_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(cli, "freeze_startup_objects", lambda: None)
    monkeypatch.setattr(cli, "default_registry", Registry())  # the hooks register in it
    db = f"sqlite:///{tmp_path / 'cb.db'}"
    args = ["worker", "--db", db, "--lease", "1", "--heartbeat-interval", "2"]
    assert cli.main(args, out=io.StringIO()) == EXIT_USAGE
    error = capsys.readouterr().err
    assert "lease (1.0) must be finite and longer than heartbeat_interval" in error
    assert not (tmp_path / "cb.db").exists()  # refused before anything was made
