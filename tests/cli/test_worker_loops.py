"""``callboard worker --loop asyncio``: handlers that need asyncio run under the service."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import anyio

from runtime import Registry, Runtime
from tests.cli import asyncio_app
from tests.cli.test_serve import callboard, lines_until


async def _enqueue(db: str) -> str:
    registry = Registry()
    asyncio_app.register(registry)
    # No workers here: the worker under test, alone, runs the job.
    async with Runtime(db, registry=registry, workers=False) as rt:
        return str((await rt.enqueue("asyncio_only", {})).id)


def _run_worker(tmp_path: Path, db: str, *loop: str) -> str:
    app = ["--app", "tests.cli.asyncio_app", "--queues", asyncio_app.QUEUE, "--log-level", "debug"]
    proc = callboard("worker", "--db", db, *app, *loop, cwd=tmp_path)
    try:
        "".join(lines_until(proc, r"worker .* Ctrl-C stops"))  # it logs status changes at debug
        job_id = anyio.run(_enqueue, db)
        lines = "".join(lines_until(proc, rf"{job_id} asyncio_only +(completed|failed)"))
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    return re.findall(rf"{job_id} asyncio_only +(\w+)", lines)[-1]


def test_a_worker_on_asyncio_runs_asyncio_handlers(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    assert _run_worker(tmp_path, db, "--loop", "asyncio") == "completed"


def test_the_default_loop_is_trio(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'w.db'}"
    assert _run_worker(tmp_path, db) == "failed"  # asyncio.sleep outside asyncio


def test_serve_refuses_asyncio_plainly(tmp_path: Path) -> None:
    proc = callboard("serve", "--loop", "asyncio", "--bind", "127.0.0.1:0", cwd=tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "serve runs on trio only" in err
    assert "callboard worker --loop asyncio" in err
    proc = callboard("worker", "--loop", "uvloop", cwd=tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "invalid choice: 'uvloop'" in err
