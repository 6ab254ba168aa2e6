"""The engine's limit: what trio alone costs to start and run tasks, with no store."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

import trio

from benchmarks.probe import (
    JOBS,
    VERIFIED,
    Metrics,
    Step,
    StepFunction,
    percentile,
    rss_mib,
    sleepy_metrics,
)


def versions() -> dict[str, str]:
    return {"trio": trio.__version__}


async def _spawn_all(jobs: int, concurrency: int, body: Callable[[], Awaitable[None]]) -> int:
    """Run ``body`` ``jobs`` times, at most ``concurrency`` at once; return how many finished.

    A slot is taken before each task starts, as a queue with a capacity would:
    this is about three times faster than starting every task and letting
    them queue on the limiter.
    """
    limiter = trio.CapacityLimiter(concurrency)
    finished = 0

    async def run(token: object) -> None:
        nonlocal finished
        try:
            await body()
            finished += 1
        finally:
            limiter.release_on_behalf_of(token)

    async with trio.open_nursery() as nursery:
        for _ in range(jobs):
            token = object()
            await limiter.acquire_on_behalf_of(token)
            nursery.start_soon(run, token)
    return finished


async def _noop() -> None:
    return None


def _drain(step: Step) -> Metrics:
    jobs = step.size("jobs")

    async def main() -> tuple[int, float]:
        started = time.perf_counter()
        finished = await _spawn_all(jobs, step.size("concurrency"), _noop)
        return finished, time.perf_counter() - started

    verified, elapsed = trio.run(main)
    return {JOBS: jobs, VERIFIED: verified, "elapsed_s": elapsed, "jobs_per_s": jobs / elapsed}


def _sleepy(step: Step) -> Metrics:
    jobs, concurrency, sleep_s = (
        step.size("jobs"),
        step.size("concurrency"),
        step.setting("sleep_s"),
    )

    async def nap() -> None:
        await trio.sleep(sleep_s)

    async def main() -> tuple[int, float]:
        started = time.perf_counter()
        finished = await _spawn_all(jobs, concurrency, nap)
        return finished, time.perf_counter() - started

    verified, elapsed = trio.run(main)
    return sleepy_metrics(step, verified, elapsed)


def _latency(step: Step) -> Metrics:
    jobs, interval = step.size("jobs"), step.setting("interval_s")
    latencies: list[float] = []

    async def consume(receive: trio.MemoryReceiveChannel[float]) -> None:
        limiter = trio.CapacityLimiter(step.size("concurrency"))

        async def run(enqueued_at: float) -> None:
            async with limiter:
                latencies.append(time.perf_counter() - enqueued_at)

        async with trio.open_nursery() as nursery, receive:
            async for enqueued_at in receive:
                nursery.start_soon(run, enqueued_at)

    async def main() -> None:
        send, receive = trio.open_memory_channel[float](jobs)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(consume, receive)
            await trio.sleep(step.setting("idle_s"))
            async with send:
                start = time.perf_counter()
                for index in range(jobs):
                    await trio.sleep(_until(start, index, interval))
                    send.send_nowait(time.perf_counter())

    trio.run(main)
    return {
        JOBS: jobs,
        VERIFIED: len(latencies),
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
    }


def _until(start: float, index: int, interval: float) -> float:
    """Seconds from now until the ``index``-th enqueue of a steady pace is due."""
    return max(0.0, start + index * interval - time.perf_counter())


def _running(step: Step) -> Metrics:
    jobs = step.size("running")

    async def main() -> tuple[int, float]:
        started = finished = 0
        all_started, release = trio.Event(), trio.Event()
        limiter = trio.CapacityLimiter(jobs)

        async def hold() -> None:
            nonlocal started, finished
            async with limiter:
                started += 1
                if started == jobs:
                    all_started.set()
                await release.wait()
                finished += 1

        async with trio.open_nursery() as nursery:
            for _ in range(jobs):
                nursery.start_soon(hold)
            await all_started.wait()
            rss = rss_mib()
            release.set()
        return finished, rss

    verified, rss = trio.run(main)
    return {JOBS: jobs, VERIFIED: verified, "rss_mib": rss}


STEPS: dict[str, StepFunction] = {
    "drain.drain": _drain,
    "latency.latency": _latency,
    "sleepy.sleepy": _sleepy,
    "memory.running": _running,
}
