"""One suite, every store: the core guarantees on SQLite and on PostgreSQL.

PostgreSQL comes from ``CALLBOARD_TEST_POSTGRES_URL`` (each test gets a
schema of its own); without it those cases skip and say why.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest
import trio
import trio.testing
from pydantic import BaseModel
from sqlalchemy import select

from runtime import JobContext, JobStatus, Registry, Runtime
from runtime.jobs.enqueue import build_rows
from runtime.store import Store, bulk_insert, new_jobs
from runtime.store.ops import InsertJobs
from runtime.store.tables import jobs
from tests.conftest import QUIET
from tests.runtime.control_jobs import Trace
from tests.runtime.control_jobs import register as register_work
from tests.runtime.jobs import Journal, register

pytestmark = pytest.mark.trio


@pytest.fixture
def on_store(store_url: str, registry: Registry) -> Callable[..., Runtime]:
    def make(**options: object) -> Runtime:
        return Runtime(store_url, registry=registry, **{**QUIET, "grace_period": 5.0, **options})  # type: ignore[arg-type]

    return make


async def test_jobs_run_in_priority_order_and_complete(
    on_store: Callable[..., Runtime], registry: Registry
) -> None:
    register(registry, Journal())
    async with on_store(workers=False) as rt:
        for value, priority in [("low", 0), ("high", 9), ("mid", 5)]:
            await rt.enqueue("echo", {"value": value}, priority=priority)
    order: list[str] = []
    worker = on_store(queues={"default": 1})
    with worker.subscribe() as events, trio.fail_after(30):  # before the first claim
        async with worker as rt:
            async for event in events:
                if event.kind == "status" and event.status is JobStatus.COMPLETED:
                    order.append((await rt.get(event.job_id)).result)
                if len(order) == 3:
                    break
    assert order == ["high", "mid", "low"]


async def test_idempotency_and_unique_hold_across_two_runtimes(
    on_store: Callable[..., Runtime], registry: Registry
) -> None:
    register(registry, Journal())
    register_work(registry, Trace(), name="once", unique=True)
    keyed: set[uuid.UUID] = set()
    unique: set[uuid.UUID] = set()
    async with on_store(workers=False) as a, on_store(workers=False) as b:

        async def enqueue(rt: Runtime) -> None:
            keyed.add((await rt.enqueue("echo", {}, idempotency_key="k")).id)
            unique.add((await rt.enqueue("once", {"name": "same"})).id)

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(enqueue, a)
                nursery.start_soon(enqueue, b)
        assert await a.count() == 2
    assert len(keyed) == 1 and len(unique) == 1


async def test_lock_key_is_never_held_twice(
    on_store: Callable[..., Runtime], registry: Registry
) -> None:
    trace = Trace()
    register_work(registry, trace, lock="{path}")
    async with on_store(queues={"default": 4}) as rt:
        jobs = await rt.enqueue_many(
            "work", [{"name": str(i), "path": "/p", "seconds": 0.01} for i in range(6)]
        )
        for job in jobs:
            assert (await rt.wait(job.id, timeout=30)).status is JobStatus.COMPLETED
    assert trace.peak == {"/p": 1}


async def test_retry_timeout_and_cancel(
    on_store: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    journal = Journal()
    register(registry, journal)
    async with on_store() as rt:
        retried = await rt.enqueue("behave", {"how": "raise", "fail_times": 1})
        timed = await rt.enqueue("steps", {"steps": 100}, timeout=2.5)
        assert (await rt.wait(retried.id)).attempt == 2
        assert (await rt.wait(timed.id)).status is JobStatus.TIMEOUT
        running = await rt.enqueue("steps", {"steps": 100})
        await trio.sleep(1.5)
        await rt.cancel(running.id)
        assert (await rt.wait(running.id)).status is JobStatus.CANCELED


class NoParams(BaseModel):
    pass


async def test_a_job_log_reads_the_same_story_from_stored_and_rendered_records(
    on_store: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    register(registry, Journal())

    @registry.job(name="chatty", max_retries=0)
    async def chatty(ctx: JobContext, params: NoParams) -> None:
        ctx.log.info("hello")  # stores the attempt's start with it

    async with on_store() as rt:
        talked = await rt.enqueue("chatty", {})
        retried = await rt.enqueue("behave", {"how": "raise", "fail_times": 1})
        await rt.wait(talked.id)
        await rt.wait(retried.id)
        talk = [(e.id is None, e.message) for e in await rt.logs(talked.id)]
        story = [e.message for e in await rt.logs(retried.id)]
    worker = rt.worker_id
    assert talk == [
        (False, f"attempt 1 started on {worker}"),  # stored once, not rendered again
        (False, "hello"),
        (True, "attempt 1 ended: completed"),
    ]
    assert story[0] == f"attempt 1 started on {worker}"
    assert story[1].startswith("attempt 1 ended: scheduled: RuntimeError: boom 1 (next attempt in")
    assert story[2:] == [f"attempt 2 started on {worker}", "attempt 2 ended: completed"]


async def test_shutdown_keeps_checkpoint_and_next_start_resumes(
    on_store: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    journal = Journal()
    register(registry, journal)
    async with on_store(grace_period=0.5) as rt:
        job = await rt.enqueue("steps", {"steps": 6})
        await trio.sleep(2.2)
    async with on_store() as rt:
        done = await rt.wait(job.id)
    assert done.status is JobStatus.COMPLETED
    assert journal.checkpoints[-1] == {"done": 2}


async def test_each_schedule_slot_fires_once_with_two_runtimes(
    on_store: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    register(registry, Journal())
    async with on_store() as a, on_store() as b:
        schedule = await a.add_schedule("echo", {"value": 1}, every="1 minute")
        await trio.sleep(10 * 60 + 1)
        count = await b.count(schedule_id=schedule.id)
    assert 10 <= count <= 11  # one per minute, never two for a slot


class _InsertThenFail:
    """A write of two statements whose second fails: the first must not stay."""

    def __init__(self, rows: list[dict[str, object]]) -> None:
        self.rows = rows

    def apply(self, conn: object) -> None:
        InsertJobs(self.rows).apply(conn)  # type: ignore[arg-type]
        raise RuntimeError("the second statement failed")


async def test_lone_single_statement_writes_commit_and_others_stay_atomic(
    store_url: str, registry: Registry
) -> None:
    register(registry, Journal())
    job_type = registry.get("echo")
    lone = build_rows(job_type, [{"value": "lone"}], now=1.0)
    pair = build_rows(job_type, [{"value": "a"}, {"value": "b"}], now=1.0)
    assert InsertJobs(lone).single_statement and not InsertJobs(pair).single_statement
    store = await trio.to_thread.run_sync(Store, store_url)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.writer.run)
            await store.write(InsertJobs(lone))  # on PostgreSQL, in autocommit mode
            with pytest.raises(RuntimeError, match="second statement"):
                await store.write(_InsertThenFail(pair))  # back in a transaction
            # The same id again: refused (each store's own integrity error).
            with pytest.raises(Exception, match=r"(?i)unique|duplicate"):
                await store.write(InsertJobs(lone))
            store.writer.close()
        ids = await store.read(lambda conn: [r.id for r in conn.execute(select(jobs.c.id))])
        assert ids == [lone[0]["id"]]
    finally:
        store.dispose()


async def test_a_bulk_enqueue_stores_every_job_exactly_and_they_run(
    on_store: Callable[..., Runtime],
    registry: Registry,
    store_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register(registry, Journal())
    copies: list[int] = []
    copy_job_values = new_jobs.copy_job_values
    monkeypatch.setattr(
        new_jobs,
        "copy_job_values",
        lambda conn, rows: copies.append(len(rows)) or copy_job_values(conn, rows),
    )
    columns_statement = bulk_insert.columns_statement
    monkeypatch.setattr(
        bulk_insert,
        "columns_statement",
        lambda *args: copies.append(-len(args[4]["id"])) or columns_statement(*args),
    )
    # Enough jobs for PostgreSQL's COPY path (SQLite's JSON document, negative
    # here), with values their formats escape.
    values = [f"job {i}: tab\t, newline\n, quote ', backslash \\, ünïcode ✓" for i in range(150)]
    async with on_store(workers=False) as rt:
        stored = await rt.enqueue_many("echo", [{"value": v} for v in values], priority=3)
        assert [job.params for job in stored] == [{"value": v} for v in values]
        for job in (stored[0], stored[-1]):
            again = await rt.get(job.id)
            assert again.params == job.params and again.priority == 3
            assert again.result is None and again.errors == [] and again.checkpoint is None
    assert copies == ([150] if store_url.startswith("postgresql") else [-150])
    async with on_store(queues={"default": 10}) as rt:
        done = [await rt.wait(job.id, timeout=30) for job in stored]
    assert [job.result for job in done] == values
