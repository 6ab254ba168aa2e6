"""A type's concurrency limit holds across real worker processes on PostgreSQL.

Three worker processes serve one store; a type limited to 2 at once has 40
jobs. Each job, as it starts, counts the active jobs of its type in the
store (a connection of its own, so it sees what every process committed)
and returns the count; the client counts them too while it waits. No count
may exceed 2. The workers never poll within the test (their poll is hours):
every held-back job starts because a finish elsewhere woke its queue.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import pytest
import trio

from runtime import JobStatus, Registry, Runtime
from tests.conftest import QUIET
from tests.runtime.limits_support import LIMIT, TYPE, register

pytestmark = pytest.mark.trio

ROOT = Path(__file__).resolve().parents[2]
PROCESSES = 3
JOBS = 40

WORKER = textwrap.dedent(
    """
    import sys, trio
    from runtime import Registry, Runtime
    from tests.conftest import QUIET
    from tests.runtime.limits_support import register

    async def main(url):
        registry = Registry()
        register(registry, url)
        async with Runtime(url, registry=registry, queues={"default": 10}, **QUIET):
            print("ready", flush=True)
            await trio.sleep_forever()

    trio.run(main, sys.argv[1])
    """
)


@asynccontextmanager
async def _worker(url: str) -> AsyncIterator[None]:
    child = await trio.lowlevel.open_process(
        [sys.executable, "-c", WORKER, url],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert child.stdout is not None
        line = b""
        with trio.fail_after(60):
            while not line.endswith(b"\n"):
                chunk = await child.stdout.receive_some()
                assert chunk, "the worker exited before it was ready"
                line += chunk
        yield
    finally:
        child.send_signal(signal.SIGKILL)
        await child.wait()
        if child.stdout is not None:
            await child.stdout.aclose()


async def test_a_limited_type_never_runs_over_its_limit_across_processes(
    postgres_url: str,
) -> None:
    registry = Registry()
    register(registry, postgres_url)
    async with Runtime(postgres_url, registry=registry, workers=False, **QUIET) as client:
        async with AsyncExitStack() as stack:
            for _ in range(PROCESSES):
                await stack.enter_async_context(_worker(postgres_url))
            handles = await client.enqueue_many(TYPE, [{}] * JOBS)
            sampled: list[int] = []
            with trio.fail_after(120):
                while await client.count(status=JobStatus.COMPLETED) < JOBS:
                    sampled.append(await client.count(type=TYPE, status=JobStatus.RUNNING))
                    await trio.sleep(0.005)
        jobs = [await client.get(handle.id) for handle in handles]
    seen_at_starts = [job.result for job in jobs]
    assert all(job.status is JobStatus.COMPLETED for job in jobs)
    assert all(isinstance(n, int) and 1 <= n <= LIMIT for n in seen_at_starts), seen_at_starts
    assert max(sampled, default=0) <= LIMIT
    assert len({job.worker_id for job in jobs}) > 1  # the processes shared the work
