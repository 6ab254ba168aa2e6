"""procrastinate on PostgreSQL: an ``App`` on its ``PsycopgConnector``, with an
async worker (``App.run_worker_async``) in the measuring process.

Runs in procrastinate's own virtualenv. Its defaults are kept: one job fetched
per query, LISTEN/NOTIFY with a 5 s polling fallback, jobs kept in
``procrastinate_jobs`` after they finish (``delete_jobs="never"``), which is
where every figure is verified: finished means status ``succeeded`` there.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

# procrastinate lives only in its own virtualenv, not in the one type checks run in.
import procrastinate  # type: ignore[import-not-found]
import psycopg

from benchmarks.probe import (
    JOBS,
    POLL_INTERVAL_S,
    VERIFIED,
    VERIFY_TIMEOUT_S,
    AsyncioProbe,
    Metrics,
    Step,
    StepFunction,
    percentile,
    rss_mib,
    sleepy_metrics,
)

QUEUE = "default"
HOLD_QUEUE = "hold"
"""The memory workload's sleeping jobs wait here, apart from the scheduled ones."""

SCHEDULED_IN = {"hours": 1}
BATCH = 10_000
"""Jobs per ``batch_defer_async`` call when a prepare step stores many."""

START_TIMEOUT_S = 600.0
"""How long the memory workload waits for every sleeping job to be running."""


# Tasks are module-level functions, so they reach the current step's probe
# through this global; each step sets it inside its event loop.
_probe = AsyncioProbe()


async def _noop(context: Any) -> None:
    _probe.start(context.job.id)
    _probe.finish()


async def _sleep(seconds: float) -> None:
    await asyncio.sleep(seconds)
    _probe.finish()


async def _hold(context: Any) -> None:
    _probe.start(context.job.id)
    await _probe.release.wait()
    _probe.finish()


@dataclass
class _Tasks:
    app: Any
    noop: Any
    sleep: Any
    hold: Any


_server_version = ""
"""The server's version, noted when a step opens its app, for ``versions()``."""


def versions() -> dict[str, str]:
    found = {"procrastinate": procrastinate.__version__, "psycopg": psycopg.__version__}
    return {**found, "postgresql": _server_version} if _server_version else found


@contextlib.asynccontextmanager
async def _open(step: Step) -> AsyncIterator[_Tasks]:
    """An open app on this run's database, its schema applied, with the tasks."""
    global _server_version
    app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=step.store))
    tasks = _Tasks(
        app=app,
        noop=app.task(name="noop", queue=QUEUE, pass_context=True)(_noop),
        sleep=app.task(name="sleep", queue=QUEUE)(_sleep),
        hold=app.task(name="hold", queue=HOLD_QUEUE, pass_context=True)(_hold),
    )
    async with app.open_async():
        row = await app.connector.execute_query_one_async(
            "SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS installed, "
            "current_setting('server_version') AS version"
        )
        _server_version = str(row["version"]).split()[0]
        if not row["installed"]:
            await app.schema_manager.apply_schema_async()
        yield tasks


async def _count(app: Any, status: str, queue: str = QUEUE, scheduled: bool = False) -> int:
    row = await app.connector.execute_query_one_async(
        "SELECT count(*) AS n FROM procrastinate_jobs "
        "WHERE status = %(status)s::procrastinate_job_status AND queue_name = %(queue)s "
        "AND (NOT %(scheduled)s OR scheduled_at > now())",
        status=status,
        queue=queue,
        scheduled=scheduled,
    )
    return int(row["n"])


async def _count_until(app: Any, target: int, queue: str = QUEUE) -> int:
    """Re-count succeeded jobs in the store until ``target`` or a timeout."""
    seen = await _count(app, "succeeded", queue)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(VERIFY_TIMEOUT_S):
            while seen < target:
                await asyncio.sleep(POLL_INTERVAL_S)
                seen = await _count(app, "succeeded", queue)
    return seen


@contextlib.asynccontextmanager
async def _worker(app: Any, queue: str, concurrency: int) -> AsyncIterator[None]:
    """A worker running in this event loop, stopped (gracefully) on exit."""
    task = asyncio.create_task(
        app.run_worker_async(
            queues=[queue],
            concurrency=concurrency,
            # Run inside this program rather than as the process's main loop.
            install_signal_handlers=False,
        )
    )
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def _run(main: Callable[[], Awaitable[Metrics]], target: int = 0) -> Metrics:
    async def with_probe() -> Metrics:
        global _probe
        _probe = AsyncioProbe(target=target)
        return await main()

    return asyncio.run(with_probe())


async def _defer_in_batches(task: Any, jobs: int, kwargs: dict[str, Any] | None = None) -> None:
    for first in range(0, jobs, BATCH):
        await task.batch_defer_async(*[kwargs or {}] * min(BATCH, jobs - first))


def _throughput(jobs: int, verified: int, elapsed: float) -> Metrics:
    return {JOBS: jobs, VERIFIED: verified, "elapsed_s": elapsed, "jobs_per_s": jobs / elapsed}


def _enqueue_single(step: Step) -> Metrics:
    jobs = step.size("jobs")

    async def main() -> Metrics:
        async with _open(step) as tasks:
            started = time.perf_counter()
            for _ in range(jobs):
                await tasks.noop.defer_async()
            elapsed = time.perf_counter() - started
            return _throughput(jobs, await _count(tasks.app, "todo"), elapsed)

    return _run(main)


def _enqueue_bulk(step: Step) -> Metrics:
    jobs = step.size("jobs")

    async def main() -> Metrics:
        async with _open(step) as tasks:
            started = time.perf_counter()
            await tasks.noop.batch_defer_async(*[{}] * jobs)
            elapsed = time.perf_counter() - started
            return _throughput(jobs, await _count(tasks.app, "todo"), elapsed)

    return _run(main)


def _prepare_noops(step: Step) -> Metrics:
    async def main() -> Metrics:
        async with _open(step) as tasks:
            await _defer_in_batches(tasks.noop, step.size("jobs"))
        return {}

    return _run(main)


def _prepare_sleeps(step: Step) -> Metrics:
    async def main() -> Metrics:
        async with _open(step) as tasks:
            await _defer_in_batches(
                tasks.sleep, step.size("jobs"), {"seconds": step.setting("sleep_s")}
            )
        return {}

    return _run(main)


async def _work_through(step: Step) -> tuple[int, float]:
    """Start a worker on the stored jobs; time until the store shows them all succeeded."""
    jobs = step.size("jobs")
    async with _open(step) as tasks:
        started = time.perf_counter()
        async with _worker(tasks.app, QUEUE, step.size("concurrency")):
            await _probe.all_finished.wait()
            verified = await _count_until(tasks.app, jobs)
            elapsed = time.perf_counter() - started
    return verified, elapsed


def _drain(step: Step) -> Metrics:
    jobs = step.size("jobs")

    async def main() -> Metrics:
        verified, elapsed = await _work_through(step)
        return _throughput(jobs, verified, elapsed)

    return _run(main, target=jobs)


def _sleepy(step: Step) -> Metrics:
    async def main() -> Metrics:
        verified, elapsed = await _work_through(step)
        return sleepy_metrics(step, verified, elapsed)

    return _run(main, target=step.size("jobs"))


def _latency(step: Step) -> Metrics:
    jobs, interval = step.size("jobs"), step.setting("interval_s")

    async def main() -> Metrics:
        enqueued_at: dict[int, float] = {}
        async with _open(step) as tasks, _worker(tasks.app, QUEUE, step.size("concurrency")):
            await asyncio.sleep(step.setting("idle_s"))
            start = time.perf_counter()
            for index in range(jobs):
                await asyncio.sleep(max(0.0, start + index * interval - time.perf_counter()))
                before = time.perf_counter()
                enqueued_at[await tasks.noop.defer_async()] = before
            await _probe.all_finished.wait()
            verified = await _count_until(tasks.app, jobs)
        latencies = [_probe.started_at[job_id] - at for job_id, at in enqueued_at.items()]
        return {
            JOBS: jobs,
            VERIFIED: verified,
            "p50_ms": percentile(latencies, 0.50) * 1000,
            "p99_ms": percentile(latencies, 0.99) * 1000,
        }

    return _run(main, target=jobs)


def _prepare_memory(step: Step) -> Metrics:
    async def main() -> Metrics:
        async with _open(step) as tasks:
            scheduled = tasks.noop.configure(schedule_in=SCHEDULED_IN)
            await _defer_in_batches(scheduled, step.size("stored"))
            await _defer_in_batches(tasks.hold, step.size("running"))
        return {}

    return _run(main)


def _idle(step: Step) -> Metrics:
    stored = step.size("stored")

    async def main() -> Metrics:
        # Only the scheduled jobs' queue: the hold queue waits for "running".
        async with _open(step) as tasks, _worker(tasks.app, QUEUE, step.size("concurrency")):
            await asyncio.sleep(step.setting("settle_s"))
            rss = rss_mib()
            verified = await _count(tasks.app, "todo", scheduled=True)
        return {JOBS: stored, VERIFIED: verified, "rss_mib": rss}

    return _run(main)


def _running(step: Step) -> Metrics:
    jobs = step.size("running")

    async def main() -> Metrics:
        async with _open(step) as tasks, _worker(tasks.app, HOLD_QUEUE, jobs):
            async with asyncio.timeout(START_TIMEOUT_S):
                await _probe.all_started.wait()
            rss = rss_mib()
            _probe.release.set()
            verified = await _count_until(tasks.app, jobs, queue=HOLD_QUEUE)
        return {JOBS: jobs, VERIFIED: verified, "rss_mib": rss}

    return _run(main, target=jobs)


STEPS: dict[str, StepFunction] = {
    "enqueue_single.enqueue": _enqueue_single,
    "enqueue_bulk.enqueue": _enqueue_bulk,
    "drain.prepare": _prepare_noops,
    "drain.drain": _drain,
    "latency.latency": _latency,
    "sleepy.prepare": _prepare_sleeps,
    "sleepy.sleepy": _sleepy,
    "memory.prepare": _prepare_memory,
    "memory.idle": _idle,
    "memory.running": _running,
}
