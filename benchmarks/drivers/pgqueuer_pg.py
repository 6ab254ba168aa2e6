"""pgqueuer on PostgreSQL: ``PgQueuer`` on one asyncpg connection (``AsyncpgDriver``),
run in the measuring process on uvloop, as its ``pgq run`` command runs it.

Runs in pgqueuer's own virtualenv. A worker's ``batch_size`` and each
entrypoint's ``concurrency_limit`` are the workload's concurrency; everything
else is pgqueuer's default (LISTEN/NOTIFY with a 30 s dequeue timeout,
completions written in batches). pgqueuer deletes a finished job from its
queue table and logs it in ``pgqueuer_log`` in the same statement: a job
counts as finished when that log has its ``successful`` row.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any

# pgqueuer lives only in its own virtualenv, not in the one type checks run in.
import asyncpg  # type: ignore[import-not-found]
import pgqueuer  # type: ignore[import-not-found]
import uvloop  # type: ignore[import-not-found]
from pgqueuer import AsyncpgDriver, PgQueuer, Queries

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

SCHEDULED_DELAY = datetime.timedelta(hours=1)
BATCH = 10_000
"""Jobs per ``enqueue`` call when a prepare step stores many."""

START_TIMEOUT_S = 600.0
"""How long the memory workload waits for every sleeping job to be running."""

# pgqueuer's default table names (no PGQUEUER_ prefix is set).
_QUEUE_TABLE = "pgqueuer"
_LOG_TABLE = "pgqueuer_log"

Handler = Callable[[Any], Awaitable[None]]


# Entrypoints are module-level functions, so they reach the current step's
# probe through this global; each step sets it inside its event loop.
_probe = AsyncioProbe()


async def _noop(job: Any) -> None:
    _probe.start(job.id)
    _probe.finish()


async def _sleep(job: Any) -> None:
    await asyncio.sleep(float(job.payload))
    _probe.finish()


async def _hold(job: Any) -> None:
    _probe.start(job.id)
    await _probe.release.wait()
    _probe.finish()


_server_version = ""
"""The server's version, noted when a step connects, for ``versions()``."""


def versions() -> dict[str, str]:
    found = {"pgqueuer": pgqueuer.__version__, "asyncpg": asyncpg.__version__}
    return {**found, "postgresql": _server_version} if _server_version else found


@contextlib.asynccontextmanager
async def _open(step: Step) -> AsyncIterator[Queries]:
    """pgqueuer's queries on one connection to this run's database, its schema installed."""
    global _server_version
    connection = await asyncpg.connect(step.store)
    try:
        _server_version = str(await connection.fetchval("SHOW server_version")).split()[0]
        queries = Queries(AsyncpgDriver(connection))
        if not await queries.schema_is_installed():
            await queries.install()
        yield queries
    finally:
        await connection.close()


async def _scalar(queries: Queries, sql: str, *args: object) -> int:
    rows = await queries.driver.fetch(sql, *args)
    return int(next(iter(rows[0].values())))


async def _count_queued(queries: Queries, entrypoint: str, scheduled: bool = False) -> int:
    return await _scalar(
        queries,
        f"SELECT count(*) FROM {_QUEUE_TABLE} WHERE entrypoint = $1 AND status = 'queued' "
        "AND (NOT $2 OR execute_after > now())",
        entrypoint,
        scheduled,
    )


async def _count_successful(queries: Queries, entrypoint: str) -> int:
    return await _scalar(
        queries,
        f"SELECT count(*) FROM {_LOG_TABLE} WHERE entrypoint = $1 AND status = 'successful'",
        entrypoint,
    )


async def _count_until(queries: Queries, entrypoint: str, target: int) -> int:
    """Re-count successful jobs in the store until ``target`` or a timeout."""
    seen = await _count_successful(queries, entrypoint)
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(VERIFY_TIMEOUT_S):
            while seen < target:
                await asyncio.sleep(POLL_INTERVAL_S)
                seen = await _count_successful(queries, entrypoint)
    return seen


@contextlib.asynccontextmanager
async def _worker(
    queries: Queries, entrypoints: Mapping[str, Handler], concurrency: int
) -> AsyncIterator[None]:
    """A worker on ``entrypoints`` only, running in this event loop; shut down on exit."""
    pgq = PgQueuer(queries.driver)
    for name, handler in entrypoints.items():
        pgq.entrypoint(name, concurrency_limit=concurrency)(handler)
    task = asyncio.create_task(pgq.run(batch_size=concurrency))
    try:
        yield
    finally:
        pgq.shutdown.set()
        await task


def _run(main: Callable[[], Awaitable[Metrics]], target: int = 0) -> Metrics:
    async def with_probe() -> Metrics:
        global _probe
        _probe = AsyncioProbe(target=target)
        return await main()

    result: Metrics = uvloop.run(with_probe())
    return result


async def _enqueue_many(
    queries: Queries,
    entrypoint: str,
    jobs: int,
    payload: bytes | None = None,
    execute_after: datetime.timedelta | None = None,
) -> None:
    for first in range(0, jobs, BATCH):
        count = min(BATCH, jobs - first)
        await queries.enqueue(
            [entrypoint] * count, [payload] * count, [0] * count, [execute_after] * count
        )


def _throughput(jobs: int, verified: int, elapsed: float) -> Metrics:
    return {JOBS: jobs, VERIFIED: verified, "elapsed_s": elapsed, "jobs_per_s": jobs / elapsed}


def _enqueue_single(step: Step) -> Metrics:
    jobs = step.size("jobs")

    async def main() -> Metrics:
        async with _open(step) as queries:
            started = time.perf_counter()
            for _ in range(jobs):
                await queries.enqueue("noop", None)
            elapsed = time.perf_counter() - started
            return _throughput(jobs, await _count_queued(queries, "noop"), elapsed)

    return _run(main)


def _enqueue_bulk(step: Step) -> Metrics:
    jobs = step.size("jobs")

    async def main() -> Metrics:
        async with _open(step) as queries:
            started = time.perf_counter()
            await queries.enqueue(["noop"] * jobs, [None] * jobs, [0] * jobs)
            elapsed = time.perf_counter() - started
            return _throughput(jobs, await _count_queued(queries, "noop"), elapsed)

    return _run(main)


def _prepare(entrypoint: str, payload: Callable[[Step], bytes | None]) -> StepFunction:
    """A step storing the workload's jobs for ``entrypoint``, with no worker running."""

    def prepare(step: Step) -> Metrics:
        async def main() -> Metrics:
            async with _open(step) as queries:
                await _enqueue_many(queries, entrypoint, step.size("jobs"), payload(step))
            return {}

        return _run(main)

    return prepare


async def _work_through(step: Step, entrypoint: str, handler: Handler) -> tuple[int, float]:
    """Start a worker on the stored jobs; time until the store logs them all successful."""
    jobs = step.size("jobs")
    async with _open(step) as queries:
        started = time.perf_counter()
        async with _worker(queries, {entrypoint: handler}, step.size("concurrency")):
            await _probe.all_finished.wait()
            verified = await _count_until(queries, entrypoint, jobs)
            elapsed = time.perf_counter() - started
    return verified, elapsed


def _drain(step: Step) -> Metrics:
    jobs = step.size("jobs")

    async def main() -> Metrics:
        verified, elapsed = await _work_through(step, "noop", _noop)
        return _throughput(jobs, verified, elapsed)

    return _run(main, target=jobs)


def _sleepy(step: Step) -> Metrics:
    async def main() -> Metrics:
        verified, elapsed = await _work_through(step, "sleep", _sleep)
        return sleepy_metrics(step, verified, elapsed)

    return _run(main, target=step.size("jobs"))


def _latency(step: Step) -> Metrics:
    jobs, interval = step.size("jobs"), step.setting("interval_s")

    async def main() -> Metrics:
        enqueued_at: dict[int, float] = {}
        async with (
            _open(step) as queries,
            _worker(queries, {"noop": _noop}, step.size("concurrency")),
        ):
            await asyncio.sleep(step.setting("idle_s"))
            start = time.perf_counter()
            for index in range(jobs):
                await asyncio.sleep(max(0.0, start + index * interval - time.perf_counter()))
                before = time.perf_counter()
                (job_id,) = await queries.enqueue("noop", None)
                enqueued_at[job_id] = before
            await _probe.all_finished.wait()
            verified = await _count_until(queries, "noop", jobs)
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
        async with _open(step) as queries:
            await _enqueue_many(queries, "noop", step.size("stored"), None, SCHEDULED_DELAY)
            await _enqueue_many(queries, "hold", step.size("running"))
        return {}

    return _run(main)


def _idle(step: Step) -> Metrics:
    stored = step.size("stored")

    async def main() -> Metrics:
        # Only the scheduled jobs' entrypoint: the hold jobs wait for "running".
        async with (
            _open(step) as queries,
            _worker(queries, {"noop": _noop}, step.size("concurrency")),
        ):
            await asyncio.sleep(step.setting("settle_s"))
            rss = rss_mib()
            verified = await _count_queued(queries, "noop", scheduled=True)
        return {JOBS: stored, VERIFIED: verified, "rss_mib": rss}

    return _run(main)


def _running(step: Step) -> Metrics:
    jobs = step.size("running")

    async def main() -> Metrics:
        async with _open(step) as queries, _worker(queries, {"hold": _hold}, jobs):
            async with asyncio.timeout(START_TIMEOUT_S):
                await _probe.all_started.wait()
            rss = rss_mib()
            _probe.release.set()
            verified = await _count_until(queries, "hold", jobs)
        return {JOBS: jobs, VERIFIED: verified, "rss_mib": rss}

    return _run(main, target=jobs)


STEPS: dict[str, StepFunction] = {
    "enqueue_single.enqueue": _enqueue_single,
    "enqueue_bulk.enqueue": _enqueue_bulk,
    "drain.prepare": _prepare("noop", lambda step: None),
    "drain.drain": _drain,
    "latency.latency": _latency,
    "sleepy.prepare": _prepare("sleep", lambda step: str(step.setting("sleep_s")).encode()),
    "sleepy.sleepy": _sleepy,
    "memory.prepare": _prepare_memory,
    "memory.idle": _idle,
    "memory.running": _running,
}
