"""A type's concurrency limit holds across real worker processes on PostgreSQL.

Three worker processes serve one store; a type limited to 2 at once has 40
jobs. Each job, as it starts, counts the active jobs of its type in the
store (a connection of its own, so it sees what every process committed)
and returns the count; the client counts them too while it waits. No count
may exceed 2. The workers never poll within the test (their poll is hours):
every held-back job starts because a finish elsewhere woke its queue.
"""

from __future__ import annotations

import textwrap
from contextlib import AsyncExitStack

import pytest
import trio

from runtime import JobStatus, Registry, Runtime
from tests.conftest import QUIET
from tests.runtime.limits_support import LIMIT, TYPE, register
from tests.runtime.processes import worker_process

pytestmark = pytest.mark.trio

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


async def test_a_limited_type_never_runs_over_its_limit_across_processes(
    postgres_url: str,
) -> None:
    registry = Registry()
    register(registry, postgres_url)
    async with Runtime(postgres_url, registry=registry, workers=False, **QUIET) as client:
        async with AsyncExitStack() as stack:
            for _ in range(PROCESSES):
                await stack.enter_async_context(
                    worker_process(WORKER, postgres_url, ready_within=60)
                )
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
