"""Job logs, manual retry, statistics and retention."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable
from contextlib import closing
from datetime import timedelta

import pytest
import trio
import trio.testing
from pydantic import BaseModel

from runtime import IllegalTransition, JobContext, JobRetention, JobStatus, Registry, Runtime
from tests.runtime.jobs import Journal
from tests.runtime.jobs import register as register_basic

pytestmark = pytest.mark.trio


class Chatty(BaseModel):
    lines: int = 3
    fail: bool = False


@pytest.fixture
def chatty(registry: Registry) -> None:
    @registry.job(name="chatty", params=Chatty, max_retries=0)
    async def chatty(ctx: JobContext, params: Chatty) -> int:
        for i in range(params.lines):
            ctx.log.info("line %d", i, extra={"index": i, "obj": object()})
        ctx.log.warning("careful")
        if params.fail:
            raise RuntimeError("broke")
        return params.lines


async def test_log_keeps_handler_records_and_status_changes(
    make_runtime: Callable[..., Runtime], chatty: None
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("chatty", {"lines": 2})
        await rt.wait(job.id, timeout=10)
        entries = await rt.logs(job.id)
        warnings = await rt.logs(job.id, level="warning")
    messages = [e.message for e in entries]
    assert messages == [
        f"attempt 1 started on {rt.worker_id}",
        "line 0",
        "line 1",
        "careful",
        "attempt 1 ended: completed",
    ]
    assert entries[1].extra is not None and entries[1].extra["index"] == 0
    assert entries[1].extra["obj"].startswith("<object object")  # made JSON-safe
    assert entries[1].level_name == "INFO"
    assert [e.message for e in warnings] == ["careful"]


class Flaky(BaseModel):
    fail_times: int = 1
    chatty_attempt: int = 1  # the attempt that logs a line


@pytest.fixture
def flaky(registry: Registry) -> None:
    @registry.job(name="flaky", params=Flaky, max_retries=2, retry_delay=0.0)
    async def flaky(ctx: JobContext, params: Flaky) -> None:
        if ctx.attempt == params.chatty_attempt:
            ctx.log.info("trying")
        if ctx.attempt <= params.fail_times:
            raise RuntimeError(f"attempt {ctx.attempt} broke")


def stored_log_rows(db_url: str, job_id: object) -> list[str]:
    with closing(sqlite3.connect(db_url.removeprefix("sqlite:///"))) as conn:
        rows = conn.execute(
            "SELECT message FROM callboard_job_logs WHERE job_id = ? ORDER BY id",
            (job_id.hex if isinstance(job_id, uuid.UUID) else job_id,),
        )
        return [message for (message,) in rows]


async def test_a_job_that_runs_once_stores_no_status_record(
    make_runtime: Callable[..., Runtime], flaky: None, db_url: str
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("flaky", {"fail_times": 0, "chatty_attempt": 0})
        done = await rt.wait(job.id, timeout=10)
        entries = await rt.logs(job.id)
    assert stored_log_rows(db_url, job.id) == []
    assert [(e.id, e.message, e.extra) for e in entries] == [
        (None, f"attempt 1 started on {rt.worker_id}", {"status": "running", "attempt": 1}),
        (None, "attempt 1 ended: completed", {"status": "completed", "attempt": 1}),
    ]
    assert done.worker_id == rt.worker_id  # a finished job keeps its worker's name
    assert entries[0].at == done.started_at and entries[1].at == done.finished_at


async def test_every_attempt_of_a_retried_job_is_told_in_order(
    make_runtime: Callable[..., Runtime],
    flaky: None,
    db_url: str,
    mock_clock: trio.testing.MockClock,
) -> None:
    async with make_runtime() as rt:
        # Attempt 1 logs a line and fails, 2 fails quietly, 3 succeeds quietly,
        # all at one moment of the mock clock.
        job = await rt.enqueue("flaky", {"fail_times": 2, "chatty_attempt": 1})
        await rt.wait(job.id, timeout=10)
        messages = [e.message for e in await rt.logs(job.id)]
    worker = rt.worker_id
    told = [
        f"attempt 1 started on {worker}",
        "trying",
        "attempt 1 ended: waiting: RuntimeError: attempt 1 broke (next attempt in 0s)",
        f"attempt 2 started on {worker}",
        "attempt 2 ended: waiting: RuntimeError: attempt 2 broke (next attempt in 0s)",
    ]
    assert messages == [*told, f"attempt 3 started on {worker}", "attempt 3 ended: completed"]
    assert stored_log_rows(db_url, job.id) == told  # the last attempt is in the job's record


async def test_log_is_bounded_and_notes_the_drop(
    make_runtime: Callable[..., Runtime], chatty: None
) -> None:
    async with make_runtime(log_limit=10) as rt:
        job = await rt.enqueue("chatty", {"lines": 30})
        await rt.wait(job.id, timeout=10)
        entries = await rt.logs(job.id)
    # The store keeps 10 (the note and the last 9 of the start, 30 lines and a
    # warning); the job's record still tells the attempt's start and end.
    assert len(entries) == 12
    assert entries[0].message == "23 older log records dropped (limit 10)"  # of 32
    assert entries[0].level_name == "WARNING"
    assert entries[1].message == f"attempt 1 started on {rt.worker_id}"  # at the same time
    assert entries[1].id is None
    assert [e.message for e in entries[2:4]] == ["line 22", "line 23"]
    assert entries[-1].message == "attempt 1 ended: completed"


async def test_log_since_filters_by_time(
    make_runtime: Callable[..., Runtime], chatty: None, mock_clock: trio.testing.MockClock
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("chatty", {"lines": 1}, delay=60)
        await rt.wait(job.id)
        created = (await rt.get(job.id)).created_at
        assert created is not None
        assert await rt.logs(job.id, since=created + timedelta(seconds=120)) == []
        assert len(await rt.logs(job.id, since=created)) == 4
        with pytest.raises(ValueError, match="unknown log level 'loud'"):
            await rt.logs(job.id, level="loud")


async def test_manual_retry_requeues_as_the_next_attempt_with_history(
    make_runtime: Callable[..., Runtime], chatty: None
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("chatty", {"lines": 0, "fail": True})
        failed = await rt.wait(job.id, timeout=10)
        again = await rt.retry(job.id)
        done = await rt.wait(job.id, timeout=10)
        story = [e.message for e in await rt.logs(job.id) if e.level == logging.INFO]
    assert failed.status is JobStatus.FAILED and again.status is JobStatus.WAITING
    assert again.id == job.id and done.attempt == 2
    worker = rt.worker_id
    assert story == [
        f"attempt 1 started on {worker}",
        "attempt 1 ended: failed: RuntimeError: broke",  # stored before the retry
        "retry: failed -> waiting",
        f"attempt 2 started on {worker}",
        "attempt 2 ended: failed: RuntimeError: broke",
    ]


async def test_retry_of_a_completed_job_is_illegal(
    make_runtime: Callable[..., Runtime], chatty: None
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("chatty", {"lines": 0})
        await rt.wait(job.id, timeout=10)
        with pytest.raises(IllegalTransition, match="its status is 'completed'"):
            await rt.retry(job.id)


async def test_statistics_count_per_queue(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    register_basic(registry, Journal())
    async with make_runtime(queues={"default": 1, "other": 1}) as rt:
        await rt.enqueue("steps", {"steps": 100})
        await rt.enqueue_many("steps", [{}] * 3)
        await rt.enqueue("steps", {}, delay=3600)
        done = await rt.enqueue("echo", {}, queue="other")
        await rt.wait(done.id)
        await trio.sleep(1)
        stats = await rt.statistics()
    default, other = stats["default"], stats["other"]
    assert (default.running, default.waiting, default.scheduled, default.capacity) == (1, 3, 1, 1)
    assert (other.completed_last_minute, other.waiting, other.paused) == (1, 0, False)


async def test_prune_deletes_only_old_finished_jobs_and_their_logs(
    make_runtime: Callable[..., Runtime], chatty: None, mock_clock: trio.testing.MockClock
) -> None:
    async with make_runtime(sweep_interval=1e9) as rt:  # prune by hand here
        old_ok = await rt.enqueue("chatty", {"lines": 1})
        old_bad = await rt.enqueue("chatty", {"lines": 1, "fail": True})
        await rt.wait(old_ok.id)
        await rt.wait(old_bad.id)
        pending = await rt.enqueue("chatty", {}, delay=30 * 86400)
        await trio.sleep(8 * 86400)
        fresh = await rt.enqueue("chatty", {"lines": 1})
        await rt.wait(fresh.id)
        counts = await rt.prune()
        assert counts == {"completed": 1}  # failed jobs stay 30 days
        with pytest.raises(Exception, match="no job with id"):
            await rt.logs(old_ok.id)
        assert (await rt.get(pending.id)).status is JobStatus.SCHEDULED
        assert (await rt.get(old_bad.id)).status is JobStatus.FAILED
        assert await rt.prune(JobRetention(max_finished=1)) == {"failed": 1}
        assert await rt.count() == 2  # the newest finished one and the pending one


async def test_max_finished_keeps_exactly_the_newest_even_when_they_finished_together(
    make_runtime: Callable[..., Runtime], chatty: None, mock_clock: trio.testing.MockClock
) -> None:
    async with make_runtime(sweep_interval=1e9, queues={"default": 3}) as rt:
        jobs = await rt.enqueue_many("chatty", [{"lines": 0}] * 3)
        done = [await rt.wait(job.id) for job in jobs]
        assert len({job.finished_at for job in done}) == 1  # one instant of the clock
        assert await rt.prune(JobRetention(completed=None, max_finished=2)) == {"completed": 1}
        kept = {job.id for job in await rt.list()}
    assert kept == {job.id for job in sorted(done, key=lambda j: j.id)[1:]}  # the newest ids


async def test_sweeper_prunes_on_its_own(
    make_runtime: Callable[..., Runtime], chatty: None, mock_clock: trio.testing.MockClock
) -> None:
    retention = JobRetention(completed=timedelta(hours=1))
    async with make_runtime(retention=retention, sweep_interval=600) as rt:
        job = await rt.enqueue("chatty", {"lines": 0})
        await rt.wait(job.id)
        await trio.sleep(3600 + 601)
        assert await rt.count() == 0


async def test_retention_policy_validates() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        JobRetention(completed=-1)
    assert JobRetention(failed=timedelta(days=2)).failed == 172800


async def test_max_finished_per_type_keeps_the_newest_of_each_type(
    store_url: str,
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    chatty: None,
    mock_clock: trio.testing.MockClock,
) -> None:
    register_basic(registry, Journal())
    policy = JobRetention(completed=None, max_finished_per_type=2)
    async with make_runtime(url=store_url, sweep_interval=1e9) as rt:
        made: dict[str, list[uuid.UUID]] = {"chatty": [], "echo": []}
        for _ in range(4):  # one at a time: each finishes later than the last
            for kind, params in (("chatty", {"lines": 0}), ("echo", {"value": 1})):
                job = await rt.enqueue(kind, params)
                await rt.wait(job.id)
                made[kind].append(job.id)
                await trio.sleep(1)
        once = await rt.enqueue("chatty", {"lines": 0}, delay=600)  # pending: never pruned
        assert await rt.prune(policy) == {"completed": 4}
        assert await rt.prune(policy) == {}
        kept = {job.id for job in await rt.list()}
    assert kept == {*made["chatty"][-2:], *made["echo"][-2:], once.id}
