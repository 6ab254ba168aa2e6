"""Jobs waiting on a queue that no live worker serves are told of, once."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest
from pydantic import BaseModel

from runtime import JobContext, Registry, Runtime
from runtime.jobs.registry import Queue
from runtime.store.worker_ops import Heartbeat, Unregister


class NoParams(BaseModel):
    pass


def register_side(registry: Registry) -> None:
    registry.add_queue(Queue("side", capacity=2))

    @registry.job(name="side.work", queue="side")
    async def work(ctx: JobContext, params: NoParams) -> None:
        return None


@pytest.mark.trio
async def test_jobs_on_a_queue_no_live_worker_serves_are_warned_of_once(
    make_runtime: Callable[..., Runtime], registry: Registry, caplog: pytest.LogCaptureFixture
) -> None:
    register_side(registry)
    caplog.set_level(logging.WARNING, logger="callboard")
    async with make_runtime(queues={"default": 1}) as rt:
        await rt.enqueue("side.work", {})
        await rt.enqueue("side.work", {})
        for _ in range(2):  # two heartbeats: one warning
            await rt._tick()
        assert await rt.unserved_queues() == {"side": 2}
    told = [r.getMessage() for r in caplog.records if "no live worker serves" in r.getMessage()]
    assert told == [
        "2 jobs wait on queue 'side', which no live worker serves: start a worker that "
        "serves it (callboard worker --queues side)"
    ]


@pytest.mark.trio
async def test_only_live_workers_count_and_one_from_before_serves_every_queue(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    register_side(registry)
    async with make_runtime(queues={"default": 1}) as rt:
        await rt.enqueue("side.work", {})
        await rt._tick()
        now, lease = rt.clock.now(), 10_000.0  # QUIET's lease

        async def other(worker: str, at: float, queues: list[str] | None) -> dict[str, int]:
            await rt.store.write(Heartbeat(worker, "elsewhere", 1, at, at, queues))
            return await rt.unserved_queues()

        assert await other("stale", now - 2 * lease, ["side"]) == {"side": 1}
        assert await other("live", now, ["side", "default"]) == {}
        await rt.store.write(Unregister("live"))
        assert await other("older-version", now, None) == {}
