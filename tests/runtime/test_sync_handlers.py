"""Plain ``def`` handlers: worker threads, a sync ctx, cooperative stops (trio and asyncio)."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import anyio
import anyio.lowlevel
import anyio.to_thread
import pytest
from pydantic import BaseModel

from runtime import InvalidJobType, JobStatus, Registry, Runtime
from runtime.jobs import sync_handlers
from runtime.jobs.sync_handlers import SyncJobContext

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["trio", "asyncio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Work(BaseModel):
    n: int = 3


class Gate:
    """Threads and the test meet here: no sleeps."""

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        self.saw: list[str] = []

    async def wait_started(self) -> None:
        assert await anyio.to_thread.run_sync(self.started.wait, 10)


async def test_a_plain_def_runs_in_a_thread_with_a_sync_ctx(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    threads: list[int] = []

    @registry.job(name="count")
    def count(ctx: SyncJobContext, params: Work) -> int:
        threads.append(threading.get_ident())
        for i in range(params.n):
            ctx.progress(current=i + 1, total=params.n)
            ctx.checkpoint({"done": i + 1})
        ctx.check_in("counted")
        ctx.warn("just so you know")
        ctx.log.info("counted to %d", params.n)
        assert not ctx.cancelled
        return params.n * 10 + ctx.attempt

    async with make_runtime() as rt:
        job = await rt.enqueue("count", {"n": 4})
        done = await rt.wait(job.id, timeout=10)
        logs = await rt.logs(job.id)
    assert done.status is JobStatus.COMPLETED and done.result == 41
    assert done.progress == 100 and done.checkpoint == {"done": 4}
    assert done.check_in == "counted" and done.errors == ["just so you know"]
    assert any(entry.message == "counted to 4" for entry in logs)
    assert threads and threads[0] != threading.get_ident()


async def test_cancel_and_timeout_reach_the_thread(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    gate = Gate()

    @registry.job(name="loop")
    def loop(ctx: SyncJobContext, params: Work) -> None:
        gate.started.set()
        try:
            while True:
                ctx.check_cancelled()
                gate.release.wait(0.001)  # a unit of blocking work
        except BaseException as err:
            gate.saw.append(type(err).__name__)
            raise

    async with make_runtime() as rt:
        job = await rt.enqueue("loop", {})
        await gate.wait_started()
        await rt.cancel(job.id)
        cancelled = await rt.wait(job.id, timeout=10)
        timed = await rt.wait(
            (await rt.enqueue("loop", {}, timeout=0.05, max_retries=0)).id, timeout=10
        )
    assert cancelled.status is JobStatus.CANCELED
    assert timed.status is JobStatus.TIMEOUT
    assert gate.saw == [anyio.get_cancelled_exc_class().__name__] * 2


async def test_suspend_reaches_the_thread_and_keeps_its_checkpoint(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    gate = Gate()

    @registry.job(name="steps")
    def steps(ctx: SyncJobContext, params: Work) -> int:
        done = (ctx.checkpoint_state or {}).get("done", 0)
        if ctx.resumed:
            return int(done)
        ctx.checkpoint({"done": 7})
        gate.started.set()
        while True:
            try:
                ctx.check_cancelled()
            except BaseException:
                gate.saw.append("stopped")
                raise
            gate.release.wait(0.001)

    async with make_runtime() as rt:
        job = await rt.enqueue("steps", {})
        await gate.wait_started()
        await rt.suspend(job.id)
        while (await rt.get(job.id)).status is not JobStatus.SUSPENDED:
            await anyio.lowlevel.checkpoint()  # the job's task records it as the thread ends
        await rt.resume(job.id)
        done = await rt.wait(job.id, timeout=10)
    assert gate.saw == ["stopped"] and done.status is JobStatus.COMPLETED and done.result == 7


async def test_a_thread_that_ignores_the_stop_is_reported(
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setattr(sync_handlers, "THREAD_GRACE", 0.05)
    gate = Gate()

    @registry.job(name="stubborn")
    def stubborn(ctx: SyncJobContext, params: Work) -> None:
        gate.started.set()
        gate.release.wait(10)  # never looks at ctx

    try:
        async with make_runtime() as rt:
            job = await rt.enqueue("stubborn", {})
            await gate.wait_started()
            await rt.cancel(job.id)
            done = await rt.wait(job.id, timeout=10)
    finally:
        gate.release.set()
    assert done.status is JobStatus.CANCELED
    [record] = [r for r in caplog.records if "ignored the request to stop" in r.getMessage()]
    assert record.levelno == logging.ERROR and str(job.id) in record.getMessage()


async def test_sync_jobs_use_their_queue_s_threads(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    gate = Gate()
    running: list[int] = []
    lock = threading.Lock()

    @registry.job(name="block", queue="sync")
    def block(ctx: SyncJobContext, params: Work) -> None:
        with lock:
            running.append(1)
            if len(running) == 2:
                gate.started.set()
        gate.release.wait(10)

    async with make_runtime(queues={"sync": 2}) as rt:
        jobs = [await rt.enqueue("block", {}) for _ in range(3)]
        await gate.wait_started()
        # anyio's default limiter (the store's threads) lends them nothing.
        assert anyio.to_thread.current_default_thread_limiter().borrowed_tokens == 0
        gate.release.set()
        done = [await rt.wait(j.id, timeout=10) for j in jobs]
    assert [d.status for d in done] == [JobStatus.COMPLETED] * 3


def test_generators_are_refused(registry: Registry) -> None:
    def gen(ctx: Any, params: Work) -> Any:
        yield 1

    with pytest.raises(InvalidJobType, match="async def or a plain def"):
        registry.job(name="gen")(gen)
    assert [t.name for t in registry.types()] == []
