"""A job a queue of short jobs claimed ahead, as the store shows it: running
while it waits for a slot, and waiting again, its attempt not counted, when a
shutdown gives it back (see docs/design.md, claim-ahead)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
import trio.testing
from pydantic import BaseModel

from runtime import JobContext, JobStatus, Registry, Runtime

pytestmark = pytest.mark.trio


class Key(BaseModel):
    key: str


async def test_a_job_claimed_ahead_reads_running_and_a_shutdown_gives_it_back(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    ran: list[str] = []

    @registry.job(name="quick")
    async def quick(ctx: JobContext, params: Key) -> None:
        ran.append(params.key)

    @registry.job(name="hold")
    async def hold(ctx: JobContext, params: Key) -> None:
        ran.append(params.key)
        await trio.sleep_forever()

    with trio.fail_after(60):
        async with make_runtime(queues={"default": 1}, grace_period=5.0) as rt:
            first = await rt.enqueue("quick", {"key": "first"})
            await rt.wait(first.id)  # its run tells the queue that its jobs are short
            with rt.subscribe() as events:
                held = await rt.enqueue("hold", {"key": "held"})
                ahead = await rt.enqueue("quick", {"key": "ahead"})
                async for event in events:  # until ahead is claimed
                    if event.job_id == ahead.id and event.status is JobStatus.RUNNING:
                        break
            assert (await rt.get(ahead.id)).status is JobStatus.RUNNING
            assert (await rt.get(held.id)).status is JobStatus.RUNNING
            assert ran == ["first", "held"]  # the slot is held's: ahead only waits
        async with make_runtime(workers=False) as rt:
            given_back = await rt.get(ahead.id)
            interrupted = await rt.get(held.id)
    assert (given_back.status, given_back.attempt) == (JobStatus.WAITING, 0)
    assert (interrupted.status, interrupted.attempt) == (JobStatus.WAITING, 0)
    assert ran == ["first", "held"]
