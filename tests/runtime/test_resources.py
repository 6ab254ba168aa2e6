"""Each attempt records its wall time, its handler's CPU time and the peak memory."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import pytest
import trio
import trio.lowlevel
from pydantic import BaseModel

from runtime import JobContext, JobStatus, Registry, Runtime
from runtime.jobs.resources import metered

pytestmark = pytest.mark.trio


class Work(BaseModel):
    busy: float = 0.0  # seconds of CPU
    nap: float = 0.0  # seconds asleep
    fail: bool = False


def spin(seconds: float) -> None:
    end = time.thread_time() + seconds
    while time.thread_time() < end:
        pass


async def test_an_attempt_records_its_wall_time_cpu_time_and_peak_memory(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    @registry.job(name="work", max_retries=1, retry_delay=0.0)
    async def work(ctx: JobContext, params: Work) -> None:
        for _ in range(5):  # in steps, so that the sleeper runs in between
            spin(params.busy / 5)
            await trio.lowlevel.checkpoint()
        await trio.sleep(params.nap)
        if params.fail and ctx.attempt == 1:
            raise RuntimeError("once")

    async with make_runtime(queues={"default": 2}) as rt:
        events = rt.subscribe()
        busy = await rt.enqueue("work", {"busy": 0.2, "fail": True})
        sleeper = await rt.enqueue("work", {"nap": 0.3})
        busy_done, sleeper_done = await rt.wait(busy.id), await rt.wait(sleeper.id)
        events.close()
        ended = [e async for e in events if e.ended_attempt and e.job_id == busy.id]
    assert busy_done.status is JobStatus.COMPLETED and busy_done.attempt == 2
    assert busy_done.cpu_time is not None and busy_done.cpu_time >= 0.18
    assert busy_done.wall_time is not None and busy_done.wall_time >= busy_done.cpu_time * 0.9
    # The sleeper ran beside the busy job: none of its CPU is counted as the sleeper's.
    assert sleeper_done.cpu_time is not None and sleeper_done.cpu_time < 0.05
    assert sleeper_done.wall_time is not None and sleeper_done.wall_time >= 0.3
    if sys.platform != "win32":
        assert busy_done.peak_memory is not None and busy_done.peak_memory > 1_000_000
    # Both attempts of the retried job announced their figures, once each.
    assert [e.status for e in ended] == [JobStatus.WAITING, JobStatus.COMPLETED]
    assert all(e.cpu_time is not None and e.cpu_time >= 0.18 for e in ended)


async def test_metered_relays_results_errors_and_cancellation() -> None:
    class Meter:
        cpu_time = 0.0

    async def answer() -> int:
        await trio.lowlevel.checkpoint()
        return 42

    async def broken() -> None:
        await trio.lowlevel.checkpoint()
        raise KeyError("k")

    async def forever() -> None:
        await trio.sleep_forever()

    meter = Meter()
    assert await metered(answer(), meter) == 42
    with pytest.raises(KeyError):
        await metered(broken(), meter)
    with trio.move_on_after(0.01) as scope:
        await metered(forever(), meter)
    assert scope.cancelled_caught and meter.cpu_time > 0
