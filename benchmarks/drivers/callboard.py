"""Callboard on SQLite or PostgreSQL (whichever store URL it is given), through its
public API only.

Handlers report to an in-process probe (start times, a finished counter) so
a step knows when to look; every figure is then confirmed by counting
finished jobs in the store with ``Runtime.count``, on either store.
"""

from __future__ import annotations

import importlib.metadata
import sqlite3
import time
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import psycopg
import trio
from pydantic import BaseModel

from benchmarks.probe import (
    JOBS,
    POLL_INTERVAL_S,
    VERIFIED,
    VERIFY_TIMEOUT_S,
    Counting,
    Metrics,
    Step,
    StepFunction,
    percentile,
    progress_budget,
    rss_mib,
    sleepy_metrics,
)
from runtime import JobContext, Registry, Runtime, freeze_startup_objects

QUEUE = "default"
HOLD_QUEUE = "hold"
"""The memory workload's sleeping jobs wait here, apart from the scheduled ones."""

SCHEDULED_DELAY_S = 3_600.0
START_TIMEOUT_S = 600.0
"""How long the memory workload waits for every sleeping job to be running."""

registry = Registry()


class Empty(BaseModel):
    pass


class Sleep(BaseModel):
    seconds: float


class Report(BaseModel):
    calls: int


@dataclass
class _Probe(Counting):
    """What handlers tell the step that runs them, in the same process."""

    all_finished: trio.Event = field(default_factory=trio.Event)
    all_started: trio.Event = field(default_factory=trio.Event)
    release: trio.Event = field(default_factory=trio.Event)
    reporting_s: list[float] = field(default_factory=list)


# Handlers are module-level functions registered once, so they reach the
# current step's probe through this global; each step sets it inside trio.run.
_probe = _Probe()


@registry.job(name="noop", queue=QUEUE)
async def noop(ctx: JobContext, params: Empty) -> None:
    _probe.start(ctx.id)
    _probe.finish()


@registry.job(name="sleep", queue=QUEUE)
async def sleep(ctx: JobContext, params: Sleep) -> None:
    await trio.sleep(params.seconds)
    _probe.finish()


@registry.job(name="report", queue=QUEUE)
async def report(ctx: JobContext, params: Report) -> None:
    started = time.perf_counter()
    for call in range(params.calls):
        await ctx.progress(current=call + 1, total=params.calls)
    _probe.reporting_s.append(time.perf_counter() - started)
    _probe.finish()


@registry.job(name="hold", queue=HOLD_QUEUE)
async def hold(ctx: JobContext, params: Empty) -> None:
    _probe.start(ctx.id)
    await _probe.release.wait()
    _probe.finish()


_store = ""
"""The URL of the store the step ran on, for ``versions()``."""


def versions() -> dict[str, str]:
    try:
        callboard = importlib.metadata.version("callboard")
    except importlib.metadata.PackageNotFoundError:  # run from a checkout, not installed
        callboard = "checkout"
    return {"callboard": callboard, **_store_version(_store)}


def _store_version(store: str) -> dict[str, str]:
    if store.startswith("postgresql"):
        # After the step, so this connection is not in any figure.
        with psycopg.connect(store) as connection:
            version = connection.info.server_version  # e.g. 150020 for 15.20
        return {"postgresql": f"{version // 10_000}.{version % 10_000}"}
    return {"sqlite": sqlite3.sqlite_version}


def _run(
    step: Step, main: Callable[[], Awaitable[Metrics]], target: int = 0, worker: bool = False
) -> Metrics:
    """Run ``main`` with a fresh probe. A ``worker`` step's process starts as
    ``callboard worker`` does, freezing its start-up objects (runtime.gcpause)
    before the clock starts, as it excludes imports."""
    if worker:
        freeze_startup_objects()

    async def with_probe() -> Metrics:
        global _probe
        _probe = _Probe(target=target)
        return await main()

    global _store
    _store = step.store
    return trio.run(with_probe)


def _client(step: Step) -> Runtime:
    return Runtime(step.store, registry=registry, workers=False)


def _worker(step: Step, queues: Mapping[str, int]) -> Runtime:
    return Runtime(step.store, registry=registry, queues=queues)


async def _count_until(rt: Runtime, status: str, target: int) -> int:
    """Re-count jobs with ``status`` in the store until ``target`` or a timeout."""
    seen = await rt.count(status=[status])
    with trio.move_on_after(VERIFY_TIMEOUT_S):
        while seen < target:
            await trio.sleep(POLL_INTERVAL_S)
            seen = await rt.count(status=[status])
    return seen


async def _enqueue_in_batches(
    rt: Runtime, job_type: str, params: Mapping[str, Any], jobs: int, **options: Any
) -> None:
    batch = 10_000
    for first in range(0, jobs, batch):
        await rt.enqueue_many(job_type, [params] * min(batch, jobs - first), **options)


def _throughput_metrics(jobs: int, verified: int, elapsed: float, cpu: float) -> Metrics:
    return {
        JOBS: jobs,
        VERIFIED: verified,
        "elapsed_s": elapsed,
        "jobs_per_s": jobs / elapsed,
        "cpu_us_per_job": cpu / jobs * 1e6,
    }


def _enqueue_single(step: Step) -> Metrics:
    jobs = step.size("jobs")

    async def main() -> Metrics:
        async with _client(step) as rt:
            started, cpu = time.perf_counter(), time.process_time()
            for _ in range(jobs):
                await rt.enqueue("noop", {})
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            verified = await rt.count()
        return _throughput_metrics(jobs, verified, elapsed, cpu)

    return _run(step, main)


def _enqueue_concurrent(step: Step) -> Metrics:
    """Producer tasks, each enqueuing its share one job at a time."""
    producers = step.size("producers")
    each = max(1, step.size("jobs") // producers)

    async def produce(rt: Runtime) -> None:
        for _ in range(each):
            await rt.enqueue("noop", {})

    async def main() -> Metrics:
        async with _client(step) as rt:
            started, cpu = time.perf_counter(), time.process_time()
            async with trio.open_nursery() as nursery:
                for _ in range(producers):
                    nursery.start_soon(produce, rt)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            verified = await rt.count()
        return _throughput_metrics(each * producers, verified, elapsed, cpu)

    return _run(step, main)


def _enqueue_bulk(step: Step) -> Metrics:
    jobs = step.size("jobs")

    async def main() -> Metrics:
        async with _client(step) as rt:
            started, cpu = time.perf_counter(), time.process_time()
            await rt.enqueue_many("noop", [{}] * jobs)
            elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
            verified = await rt.count()
        return _throughput_metrics(jobs, verified, elapsed, cpu)

    return _run(step, main)


def _prepare(job_type: str, params: Callable[[Step], Mapping[str, Any]]) -> StepFunction:
    """A step storing the workload's jobs of ``job_type``, with no worker running."""

    def prepare(step: Step) -> Metrics:
        async def main() -> Metrics:
            async with _client(step) as rt:
                await _enqueue_in_batches(rt, job_type, params(step), step.size("jobs"))
            return {}

        return _run(step, main)

    return prepare


async def _work_through(step: Step) -> tuple[int, float, int]:
    """Start workers on the stored jobs; time until the store shows them all completed.

    Returns the jobs counted completed, the seconds taken, and the progress
    rows the store writer had written by then.
    """
    jobs = step.size("jobs")
    started = time.perf_counter()
    async with _worker(step, {QUEUE: step.size("concurrency")}) as rt:
        await _probe.all_finished.wait()
        verified = await _count_until(rt, "completed", jobs)
        elapsed = time.perf_counter() - started
        progress_rows = rt.writer_statistics().progress_rows
    return verified, elapsed, progress_rows


def _drain(step: Step) -> Metrics:
    jobs = step.size("jobs")

    async def main() -> Metrics:
        cpu = time.process_time()
        verified, elapsed, _ = await _work_through(step)
        return _throughput_metrics(jobs, verified, elapsed, time.process_time() - cpu)

    return _run(step, main, target=jobs, worker=True)


def _sleepy(step: Step) -> Metrics:
    jobs = step.size("jobs")

    async def main() -> Metrics:
        verified, elapsed, _ = await _work_through(step)
        return sleepy_metrics(step, verified, elapsed)

    return _run(step, main, target=jobs, worker=True)


def _progress(step: Step) -> Metrics:
    jobs, calls = step.size("jobs"), step.size("calls")

    async def main() -> Metrics:
        verified, elapsed, rows = await _work_through(step)
        budget = progress_budget(_probe.reporting_s, step.setting("window_s"))
        return {
            JOBS: jobs,
            VERIFIED: verified,
            "elapsed_s": elapsed,
            "progress_calls": jobs * calls,
            "store_writes": rows,
            "writes_per_call": rows / (jobs * calls),
            "writes_per_window": rows / budget,
        }

    return _run(step, main, target=jobs, worker=True)


def _latency(step: Step) -> Metrics:
    jobs, interval = step.size("jobs"), step.setting("interval_s")

    async def main() -> Metrics:
        enqueued_at: dict[uuid.UUID, float] = {}
        async with _worker(step, {QUEUE: step.size("concurrency")}) as rt:
            await trio.sleep(step.setting("idle_s"))
            start = time.perf_counter()
            for index in range(jobs):
                await trio.sleep(max(0.0, start + index * interval - time.perf_counter()))
                before = time.perf_counter()
                job = await rt.enqueue("noop", {})
                enqueued_at[job.id] = before
            await _probe.all_finished.wait()
            verified = await _count_until(rt, "completed", jobs)
        latencies = [_probe.started_at[job_id] - at for job_id, at in enqueued_at.items()]
        return {
            JOBS: jobs,
            VERIFIED: verified,
            "p50_ms": percentile(latencies, 0.50) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
        }

    return _run(step, main, target=jobs, worker=True)


def _prepare_memory(step: Step) -> Metrics:
    async def main() -> Metrics:
        async with _client(step) as rt:
            await _enqueue_in_batches(rt, "noop", {}, step.size("stored"), delay=SCHEDULED_DELAY_S)
            await _enqueue_in_batches(rt, "hold", {}, step.size("running"))
        return {}

    return _run(step, main)


def _idle(step: Step) -> Metrics:
    stored = step.size("stored")

    async def main() -> Metrics:
        # Capacity 0 on the hold queue: its jobs wait for the "running" step.
        async with _worker(step, {QUEUE: step.size("concurrency"), HOLD_QUEUE: 0}) as rt:
            await trio.sleep(step.setting("settle_s"))
            rss = rss_mib()
            verified = await rt.count(status=["scheduled"])
        return {JOBS: stored, VERIFIED: verified, "rss_mib": rss}

    return _run(step, main, worker=True)


def _running(step: Step) -> Metrics:
    jobs = step.size("running")

    async def main() -> Metrics:
        async with _worker(step, {QUEUE: step.size("concurrency"), HOLD_QUEUE: jobs}) as rt:
            with trio.fail_after(START_TIMEOUT_S):
                await _probe.all_started.wait()
            rss = rss_mib()
            _probe.release.set()
            verified = await _count_until(rt, "completed", jobs)
        return {JOBS: jobs, VERIFIED: verified, "rss_mib": rss}

    return _run(step, main, target=jobs, worker=True)


STEPS: dict[str, StepFunction] = {
    "enqueue_single.enqueue": _enqueue_single,
    "enqueue_bulk.enqueue": _enqueue_bulk,
    "enqueue_concurrent.enqueue": _enqueue_concurrent,
    "drain.prepare": _prepare("noop", lambda step: {}),
    "drain.drain": _drain,
    "latency.latency": _latency,
    "sleepy.prepare": _prepare("sleep", lambda step: {"seconds": step.setting("sleep_s")}),
    "sleepy.sleepy": _sleepy,
    "progress.prepare": _prepare("report", lambda step: {"calls": step.size("calls")}),
    "progress.progress": _progress,
    "memory.prepare": _prepare_memory,
    "memory.idle": _idle,
    "memory.running": _running,
}
