"""``--loop asyncio``: handlers that need asyncio run under the service (worker and serve)."""

from __future__ import annotations

import re
import signal
from pathlib import Path

import anyio
import httpx

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


def test_serve_on_asyncio_runs_asyncio_handlers_enqueued_over_http(tmp_path: Path) -> None:
    """The whole service on asyncio: the API takes the job and streams its
    events, the workers run a handler that needs asyncio (asyncio.sleep,
    asyncio.get_running_loop)."""
    db = f"sqlite:///{tmp_path / 's.db'}"
    app = ["--app", "tests.cli.asyncio_app", "--bind", "127.0.0.1:0", "--db", db]
    proc = callboard("serve", "--loop", "asyncio", *app, cwd=tmp_path)
    try:
        started = "".join(lines_until(proc, r"API on http://127\.0\.0\.1:\d+"))
        url = re.findall(r"API on (http://127\.0\.0\.1:\d+)", started)[0]
        with httpx.stream("GET", f"{url}/api/v1/events", timeout=30) as stream:
            lines = stream.iter_lines()
            assert next(lines).startswith("retry:")  # subscribed: no event is missed now
            made = httpx.post(f"{url}/api/v1/jobs", json={"type": "asyncio_only"}, timeout=10)
            assert made.status_code == 201, made.text
            job_id = made.json()["id"]
            for line in lines:
                if line.startswith("data:") and job_id in line and '"completed"' in line:
                    break
        done = httpx.get(f"{url}/api/v1/jobs/{job_id}/wait", params={"timeout": 30}, timeout=40)
        assert done.status_code == 200, done.text
        assert done.json()["status"] == "completed", done.json()
        assert "EventLoop" in done.json()["result"]  # the handler's asyncio loop
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert "stopped" in err


def test_an_unknown_loop_is_refused_plainly(tmp_path: Path) -> None:
    proc = callboard("worker", "--loop", "uvloop", cwd=tmp_path)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "invalid choice: 'uvloop'" in err
