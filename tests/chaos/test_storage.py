"""Storage faults: a full disk, a corrupt or unusable store, a lost connection, a blocked loop."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import pytest
from pydantic import BaseModel

from runtime import Job, JobContext, Registry, Runtime
from runtime.api import create_app
from runtime.api.hooks import HOOK_TYPE, Hooks, HookSettings
from tests.api.hook_receiver import running
from tests.api.jobs import Gates, register
from tests.chaos.storage_support import (
    PostgresOutage,
    QueryOnly,
    corrupt_store,
    read_only_folder,
    small_disk,
)
from tests.conftest import POSTGRES_ENV

if TYPE_CHECKING:
    from quart.typing import TestClientProtocol

JOBS = "/api/v1/jobs"


async def _post(client: TestClientProtocol, value: Any) -> tuple[int, Any, Any]:
    response = await client.post(JOBS, json={"type": "echo", "params": {"value": value}})
    return response.status_code, await response.get_json(), response.headers


@pytest.mark.trio
async def test_disk_full_answers_503_keeps_reads_and_resumes_losing_nothing(
    tmp_path: Path,
    registry: Registry,
    make_runtime: Callable[..., Runtime],
    caplog: pytest.LogCaptureFixture,
    long_run: bool,
) -> None:
    gates = Gates()
    register(registry, gates)
    for _ in range(20 if long_run else 1):
        with small_disk(tmp_path) as disk:
            await _fill_and_free(disk, make_runtime, gates, caplog)


async def _fill_and_free(
    disk: Any, make_runtime: Callable[..., Runtime], gates: Gates, caplog: Any
) -> None:
    caplog.set_level(logging.INFO)
    url = f"sqlite:///{disk.directory / 'store.db'}"
    async with make_runtime(url=url) as rt:
        app = create_app(rt)
        async with app.test_app() as test_app:
            client = test_app.test_client()
            acknowledged = []
            for n in range(5):
                status, body, _ = await _post(client, f"before-{n}")
                assert status == 201, body
                acknowledged.append(body["id"])
            running = await rt.enqueue("gate", {"name": "held"})
            later = await rt.enqueue("echo", {"value": "later"}, delay=0.5)
            await gates.wait_reached("held")

            await disk.fill(rt)
            # Writes that fit in pages already allocated may still land: the fault
            # shows once the file must grow. Every 201 is a write that must survive.
            refused = None
            for n in range(2000):
                status, body, headers = await _post(client, "x" * 2000 + str(n))
                if status == 201:
                    acknowledged.append(body["id"])
                    continue
                refused = (status, body, headers)
                break
            assert refused is not None, "the disk never filled"
            status, body, headers = refused
            assert status == 503, body
            assert body["error"] == "storage_unavailable"
            assert "full" in body["message"]
            assert int(headers["Retry-After"]) >= 1
            # Still full: refused again, and clearly.
            status, body, _ = await _post(client, "y" * 2000)
            assert (status, body["error"]) == (503, "storage_unavailable")

            # Reads keep working, and a job's outcome waits for the disk.
            listed = await client.get(JOBS, query_string={"page_size": 200})
            assert listed.status_code == 200
            assert (await listed.get_json())["total"] >= len(acknowledged)
            gates.open("held")
            await anyio.sleep(1.0)  # past ``later``'s due time: its promotion meets the fault
            assert (await client.get(f"{JOBS}/{acknowledged[0]}")).status_code == 200

            await disk.free(rt)
            status, body, _ = await _post(client, "after")
            assert status == 201, body
            acknowledged.append(body["id"])
            with anyio.fail_after(30):
                done = await rt.wait(running.id)
                assert done.status == "completed"
                assert (await rt.wait(later.id)).status == "completed"
                for job_id in acknowledged:
                    assert (await rt.wait(job_id)).status == "completed"
    messages = [r.getMessage() for r in caplog.records]
    assert any("storage fault" in m and "full" in m for m in messages), messages
    assert any("takes writes again" in m for m in messages), messages


# -- start-up on a store that cannot be used -------------------------------------

EXIT_STORE = 7


def _serve(db: str, cwd: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CALLBOARD_")}
    env["CALLBOARD_HOOK_SECRET"] = "test-secret"
    return subprocess.Popen(
        [sys.executable, "-m", "runtime.cli", "serve", "--db", db, "--bind", "127.0.0.1:0"],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_start_up_on_an_unusable_store_says_so_in_one_line_and_exits_7(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("shopping list: milk, eggs, a new disk\n" * 50)
    corrupt_store(tmp_path / "corrupt.db")
    expected = {
        "notes.txt": "is not an SQLite database",
        "corrupt.db": "is corrupt (",
        "missing/store.db": "check that its folder exists",
        "postgresql://postgres@127.0.0.1:1/none": "cannot use PostgreSQL at",
    }
    with read_only_folder(tmp_path) as folder:
        if folder is not None:
            expected[str(folder / "store.db")] = "cannot be written"
        procs = {}
        for where in expected:
            db = where if "://" in where else f"sqlite:///{tmp_path / where}"
            procs[where] = _serve(db, tmp_path)  # all at once: each takes a second to start
        for where, proc in procs.items():
            out, err = proc.communicate(timeout=60)
            lines = err.splitlines()
            assert proc.returncode == EXIT_STORE, (where, err)
            assert len(lines) == 1, (where, err)
            assert lines[0].startswith("callboard: ") and expected[where] in lines[0], lines
            assert "Traceback" not in err and out == ""
    if folder is None:
        pytest.skip("no read-only filesystem here: the other stores were checked")


# -- a handler that blocks the event loop ------------------------------------------


class _Nothing(BaseModel):
    pass


@pytest.mark.trio
async def test_a_handler_blocking_the_loop_is_reported_and_ends_timeout(
    registry: Registry,
    make_runtime: Callable[..., Runtime],
    caplog: pytest.LogCaptureFixture,
    long_run: bool,
) -> None:
    @registry.job(name="blocker", max_retries=0)
    async def blocker(ctx: JobContext, params: _Nothing) -> str:
        time.sleep(BLOCK)  # noqa: ASYNC251  # on purpose: the bug this test is about
        return "done, too late"

    caplog.set_level(logging.INFO)
    settings = {"loop_watchdog": 0.2, "lease": 0.7, "heartbeat_interval": 0.5}
    async with make_runtime(**settings) as rt:
        for _ in range(5 if long_run else 1):
            caplog.clear()
            job = await rt.enqueue("blocker", timeout=0.3)
            with anyio.fail_after(10):
                done = await rt.wait(job.id)
            assert done.status == "timeout"
            assert done.result is None
            assert done.error is not None
            held = float(done.error.split(" for ")[1].split(" s ")[0])
            assert done.error.startswith("timeout could not fire: the handler blocked")
            assert BLOCK - 0.3 <= held <= BLOCK + 0.5, done.error
            messages = [r.getMessage() for r in caplog.records]
            stalled = [m for m in messages if "has not run for" in m and str(job.id) in m]
            assert stalled and "(type 'blocker') blocks it at" in stalled[0], messages
            assert "test_storage.py" in stalled[0]
            assert any("longer than the lease" in m for m in messages), messages
            # Told by the watchdog thread as the probe it posted during the block runs.
            assert any("runs again after" in m for m in messages), messages


BLOCK = 1.2


# -- PostgreSQL connection loss ----------------------------------------------------


@pytest.mark.trio
async def test_postgres_connection_loss_answers_503_then_recovers(
    registry: Registry, make_runtime: Callable[..., Runtime], long_run: bool
) -> None:
    base = os.environ.get(POSTGRES_ENV)
    if not base:
        pytest.skip(f"{POSTGRES_ENV} is not set: no PostgreSQL to test against")
    register(registry, Gates())
    seen: list[int] = []
    with PostgresOutage(base) as pg:
        settings = {"url": pg.url, "heartbeat_interval": 0.5, "poll_interval": 0.5}
        async with make_runtime(**settings) as rt:
            app = create_app(rt)
            async with app.test_app() as test_app:
                client = test_app.test_client()
                before = await rt.enqueue("echo", {"value": "before"})
                with anyio.fail_after(10):
                    await rt.wait(before.id)
                for _ in range(10 if long_run else 2):
                    assert await anyio.to_thread.run_sync(pg.cut) >= 1
                    for path in (JOBS, f"{JOBS}/{before.id}"):
                        response = await client.get(path)
                        seen.append(response.status_code)
                        body = await response.get_json()
                        assert response.status_code == 503, body
                        assert body["error"] == "storage_unavailable"
                        assert int(response.headers["Retry-After"]) >= 1
                    status, body, _ = await _post(client, "during")
                    seen.append(status)
                    assert (status, body["error"]) == (503, "storage_unavailable")

                    await anyio.to_thread.run_sync(pg.restore)
                    response = await client.get(JOBS)  # the pool's pre-ping reconnects
                    seen.append(response.status_code)
                    assert response.status_code == 200
                    status, body, _ = await _post(client, "after")
                    seen.append(status)
                    assert status == 201, body
                    with anyio.fail_after(15):  # the writer reconnected, the workers claim
                        assert (await rt.wait(body["id"])).status == "completed"
    assert 500 not in seen


@pytest.mark.trio
async def test_status_hooks_wait_out_a_storage_fault(
    registry: Registry, make_runtime: Callable[..., Runtime], caplog: pytest.LogCaptureFixture
) -> None:
    register(registry, Gates())
    hooks = Hooks(registry, HookSettings(b"test-secret"))
    async with running(make_runtime, hooks) as rt, anyio.create_task_group() as tg:
        hooked: list[Job] = []

        async def enqueue() -> None:
            hooked.append(await rt.enqueue("echo", {}, delay=3600, status_hook=HOOK_URL))

        tg.start_soon(enqueue)
        with anyio.fail_after(5):
            while rt.writer_statistics().queued == 0:  # until its insert is queued
                await anyio.lowlevel.checkpoint()
        # Committed with the insert: the store refuses writes from the moment the
        # job's event reaches the hook dispatcher, which enqueues its delivery.
        # Settled, not awaited for success: a claim sharing its batch may meet the
        # refusal first and fail the batch (the loop below turns it on again).
        await rt.store.writer.submit(QueryOnly(True)).settled()
        with anyio.fail_after(10):
            while not any("status hook failed" in r.getMessage() for r in caplog.records):
                await rt.store.writer.submit(QueryOnly(True)).settled()
            turned = rt.store.writer.submit(QueryOnly(False))
            while (await turned.settled()) is None and turned.error is not None:
                turned = rt.store.writer.submit(QueryOnly(False))  # met a kept write
            with rt.subscribe() as events:
                while await rt.count(type=HOOK_TYPE) == 0:
                    await events.receive()
        assert hooked and (await rt.get(hooked[0].id)).status == "scheduled"


HOOK_URL = "http://127.0.0.1:9/hook"
