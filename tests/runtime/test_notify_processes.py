"""Wake-ups and control across real processes on PostgreSQL (LISTEN/NOTIFY).

A worker runs in a subprocess that never polls within the test (its poll
and heartbeat are hours); this process enqueues, cancels and suspends as a
client. The bounds are generous: the tight figures are the benchmark's."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest
import trio

from runtime import JobStatus, Registry, Runtime
from tests.runtime.control_jobs import Trace, register
from tests.runtime.processes import worker_process

pytestmark = pytest.mark.trio

BOUND = 2.0  # seconds from the request to its effect in the other process

WORKER = textwrap.dedent(
    """
    import sys, trio
    from runtime import Registry, Runtime
    from tests.conftest import QUIET
    from tests.runtime.control_jobs import Trace, register

    async def main(url):
        registry = Registry()
        register(registry, Trace(), suspendable=True)
        async with Runtime(url, registry=registry, **QUIET):
            print("ready", flush=True)
            await trio.sleep_forever()

    trio.run(main, sys.argv[1])
    """
)


async def _until(rt: Runtime, job_id: object, status: JobStatus) -> float:
    """Wait (reading the store: the job runs elsewhere) until the job has
    ``status``; return the time it took."""
    started = trio.current_time()
    with trio.fail_after(BOUND * 5):
        while (await rt.get(job_id)).status is not status:  # type: ignore[arg-type]  # noqa: ASYNC110
            await trio.sleep(0.005)
    return trio.current_time() - started


async def test_a_worker_process_picks_up_and_obeys_controls_at_once(
    postgres_url: str, make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    register(registry, Trace(), suspendable=True)
    client = make_runtime(url=postgres_url, workers=False)
    async with client, worker_process(WORKER, postgres_url, ready_within=30):
        quick = await client.enqueue("work", {"name": "quick", "steps": 0})
        picked = await _until(client, quick.id, JobStatus.COMPLETED)
        long = await client.enqueue("work", {"name": "long", "steps": 1000})
        await _until(client, long.id, JobStatus.RUNNING)
        await client.suspend(long.id)
        suspended = await _until(client, long.id, JobStatus.SUSPENDED)
        await client.resume(long.id)
        resumed = await _until(client, long.id, JobStatus.RUNNING)
        await client.cancel(long.id)
        canceled = await _until(client, long.id, JobStatus.CANCELED)
    assert picked < BOUND
    assert suspended < BOUND and resumed < BOUND and canceled < BOUND
