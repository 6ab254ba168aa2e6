"""Job logs, manual retry, statistics and retention."""

from __future__ import annotations

import logging
from collections.abc import Callable
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


async def test_log_is_bounded_and_notes_the_drop(
    make_runtime: Callable[..., Runtime], chatty: None
) -> None:
    async with make_runtime(log_limit=10) as rt:
        job = await rt.enqueue("chatty", {"lines": 30})
        await rt.wait(job.id, timeout=10)
        entries = await rt.logs(job.id)
    assert len(entries) == 10
    assert entries[0].message == "24 older log records dropped (limit 10)"  # of 33
    assert entries[0].level_name == "WARNING"
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
    assert "retry: failed -> waiting" in story
    assert story.count("attempt 1 ended: failed: RuntimeError: broke") == 1


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
