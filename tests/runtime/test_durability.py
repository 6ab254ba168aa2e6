"""Crashes lose nothing; shutdown is graceful; restarts resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest
import trio
import trio.testing

from runtime import JobStatus, Registry, Runtime
from tests.runtime.jobs import Journal, register

pytestmark = pytest.mark.trio

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import sys, trio
    from runtime import Registry, Runtime
    from tests.runtime.jobs import Journal, register

    async def main(url):
        registry = Registry()
        register(registry, Journal())
        async with Runtime(url, registry=registry) as rt:
            done = await rt.enqueue("echo", {"value": "once"})
            await rt.wait(done.id, timeout=30)
            job = await rt.enqueue("steps", {"steps": 40, "seconds": 0.05})
            while ((await rt.get(job.id)).checkpoint or {}).get("done", 0) < 3:
                await trio.sleep(0.02)
            print(done.id, job.id, flush=True)
            await trio.sleep_forever()

    trio.run(main, sys.argv[1])
    """
)


@pytest.fixture
def journal(registry: Registry) -> Journal:
    journal = Journal()
    register(registry, journal)
    return journal


async def test_sigkilled_worker_loses_nothing_and_reruns_from_checkpoint(
    make_runtime: Callable[..., Runtime], journal: Journal, db_url: str
) -> None:
    child = await trio.lowlevel.open_process(
        [sys.executable, "-c", CHILD, db_url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        line = b""
        while not line.endswith(b"\n"):
            chunk = await child.stdout.receive_some()
            assert chunk, "the child exited before its jobs were running"
            line += chunk
        echo_id, steps_id = line.decode().split()
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
        if child.stdout is not None:
            await child.stdout.aclose()
    async with make_runtime() as rt:
        done = await rt.wait(steps_id, timeout=30)
        echo = await rt.get(echo_id)
        story = [e.message for e in await rt.logs(steps_id)]
        echo_story = [e.message for e in await rt.logs(echo_id)]
    assert done.status is JobStatus.COMPLETED and done.attempt == 2
    # The rescue stored what the job's record said of the lost attempt.
    dead = echo.worker_id  # a finished job keeps its worker's name
    assert dead is not None and dead != rt.worker_id
    assert story == [
        f"attempt 1 started on {dead}",
        "attempt 1 lost: its worker stopped without finishing it: now waiting",
        f"attempt 2 started on {rt.worker_id}",
        "attempt 2 ended: completed",
    ]
    assert echo_story == [f"attempt 1 started on {dead}", "attempt 1 ended: completed"]
    assert journal.checkpoints[0]["done"] >= 3  # resumed from its checkpoint, not from zero
    assert echo.status is JobStatus.COMPLETED and echo.attempt == 1
    assert [name for name, _ in journal.started] == ["steps"]  # the completed job did not rerun


async def test_shutdown_lets_jobs_finish_within_grace_and_interrupts_the_rest(
    make_runtime: Callable[..., Runtime], journal: Journal, mock_clock: trio.testing.MockClock
) -> None:
    async with make_runtime(grace_period=5.0) as rt:
        quick = await rt.enqueue("steps", {"steps": 3})
        slow = await rt.enqueue("steps", {"steps": 100})
        await trio.sleep(0.5)
    async with make_runtime(workers=False) as rt:
        quick_after = await rt.get(quick.id)
        slow_after = await rt.get(slow.id)
    assert quick_after.status is JobStatus.COMPLETED
    assert slow_after.status is JobStatus.WAITING  # ready for the next start
    assert slow_after.attempt == 0  # the interrupted attempt does not count
    assert slow_after.checkpoint == {"done": 5}  # its last checkpoint is kept
    assert journal.finally_ran == ["steps", "steps"]

    journal.checkpoints.clear()
    async with make_runtime() as rt:
        resumed = await rt.wait(slow.id)
    assert resumed.status is JobStatus.COMPLETED and resumed.attempt == 1
    assert journal.checkpoints == [{"done": 5}]


async def test_cancelled_host_still_shuts_down_cleanly(
    make_runtime: Callable[..., Runtime], journal: Journal, mock_clock: trio.testing.MockClock
) -> None:
    with trio.move_on_after(2):
        async with make_runtime(grace_period=0.5) as rt:
            job = await rt.enqueue("steps", {"steps": 100})
            await trio.sleep_forever()
    async with make_runtime(workers=False) as rt:
        after = await rt.get(job.id)
    assert after.status is JobStatus.WAITING and after.checkpoint == {"done": 2}


async def test_body_exception_propagates_unwrapped(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    with pytest.raises(KeyError, match="mine"):
        async with make_runtime():
            raise KeyError("mine")
