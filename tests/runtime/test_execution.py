from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import trio
import trio.testing
from pydantic import BaseModel
from sqlalchemy import update
from sqlalchemy.engine import Connection

from runtime import JobContext, JobEvent, JobLost, JobStatus, Registry, Runtime
from runtime.store.tables import jobs
from tests.runtime.jobs import Journal, register


class Many(BaseModel):
    calls: int


class Nothing(BaseModel):
    pass


pytestmark = pytest.mark.trio


@pytest.fixture
def journal(registry: Registry) -> Journal:
    journal = Journal()
    register(registry, journal)
    return journal


async def test_issue_example_runs_to_completion(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime(queues={"default": 4}) as rt:
        job = await rt.enqueue("steps", {"steps": 3, "seconds": 0.001})
        done = await rt.wait(job.id, timeout=30)
    assert done.status is JobStatus.COMPLETED and done.result == 3
    assert done.attempt == 1 and done.progress == 100.0
    assert done.started_at is not None and done.finished_at is not None


async def test_enqueue_wakes_the_queue_without_polling(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    # The poll interval is hours long: only the in-process wake-up can start the job.
    async with make_runtime(poll_interval=3600.0) as rt:
        await trio.testing.wait_all_tasks_blocked()
        job = await rt.enqueue("echo", {"value": 1})
        done = await rt.wait(job.id, timeout=10)
    assert done.result == 1


async def test_higher_priority_runs_first_then_oldest(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime(workers=False) as rt:
        for value, priority in [("low-1", 0), ("high", 9), ("low-2", 0), ("mid", 5)]:
            await rt.enqueue("echo", {"value": value}, priority=priority)
    order: list[str] = []
    rt = make_runtime(queues={"default": 1})
    # Subscribed before the start: the first claim may commit before ``async with`` returns.
    with rt.subscribe() as events:
        async with rt:
            async for event in events:
                if event.status is JobStatus.RUNNING and event.kind == "status":
                    job = await rt.get(event.job_id)
                    order.append(job.params["value"])
                if len(order) == 4:
                    break
    assert order == ["high", "mid", "low-1", "low-2"]


async def test_queue_capacity_bounds_concurrency(
    make_runtime: Callable[..., Runtime], journal: Journal, mock_clock: trio.testing.MockClock
) -> None:
    async with make_runtime(queues={"default": 3}) as rt:
        jobs = await rt.enqueue_many("steps", [{"steps": 2}] * 8)
        for job in jobs:
            await rt.wait(job.id)
    assert journal.peak == 3


async def test_delayed_job_runs_when_due(
    make_runtime: Callable[..., Runtime], journal: Journal, mock_clock: trio.testing.MockClock
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("echo", {"value": "later"}, delay=3600)
        await trio.sleep(3599)
        assert (await rt.get(job.id)).status is JobStatus.SCHEDULED
        done = await rt.wait(job.id)
    assert done.status is JobStatus.COMPLETED
    assert done.started_at is not None and done.scheduled_at is not None
    assert done.started_at >= done.scheduled_at


async def test_progress_reaches_every_subscriber_but_store_is_throttled(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    @registry.job(name="many", params=Many)
    async def many(ctx: JobContext, params: Many) -> None:
        for i in range(params.calls):
            await ctx.progress(current=i + 1, total=params.calls)
            await trio.sleep(0.001)  # 1,000 calls over one second

    async with make_runtime(progress_interval=0.5) as rt:
        job = await rt.enqueue("many", {"calls": 1000})
        seen = [e async for e in rt.events(job.id) if e.kind == "progress"]
        writes = rt.writer_statistics().progress_rows
    assert len(seen) == 1000
    assert [e.progress for e in seen][-1] == 100.0
    assert writes <= 3  # one write per half second of reporting, not one per call


async def test_progress_forms_details_and_eta(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    gate = trio.Event()

    @registry.job(name="forms", params=Nothing)
    async def forms(ctx: JobContext, params: Nothing) -> None:
        await trio.sleep(10)
        await ctx.progress(25)
        await ctx.progress(bytes_done=512, bytes_total=1024, details={"file": "a.bin"})
        with pytest.raises(ValueError, match="one of percent"):
            await ctx.progress(50, current=1, total=2)
        with pytest.raises(ValueError, match=r"within 0\.\.100"):
            await ctx.progress(140)
        await gate.wait()

    async with make_runtime(progress_interval=0.1) as rt:
        job = await rt.enqueue("forms", {})
        await trio.sleep(11)
        mid = await rt.get(job.id)
        gate.set()
        await rt.wait(job.id)
    assert mid.progress == 50.0
    assert mid.progress_details == {"file": "a.bin", "bytes_done": 512, "bytes_total": 1024}
    assert mid.eta is not None and mid.started_at is not None
    # Half done after ten seconds: ten more to go.
    assert (mid.eta - mid.started_at).total_seconds() == pytest.approx(20, abs=0.5)


async def test_a_delayed_job_announces_when_it_becomes_due(
    make_runtime: Callable[..., Runtime], journal: Journal, mock_clock: trio.testing.MockClock
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("echo", {"value": 1}, delay=60)
        statuses = [e.status async for e in rt.events(job.id) if e.kind == "status"]
    assert statuses == ["scheduled", "waiting", "running", "completed"]


async def events_of(rt: Runtime, job_type: str) -> list[JobEvent]:
    """Every event of a new ``job_type`` job, until its final one: subscribed before
    the enqueue, which may start the job before ``enqueue`` returns."""
    seen: list[JobEvent] = []
    with rt.subscribe() as events:
        job = await rt.enqueue(job_type, {})
        async for event in events:
            if event.job_id == job.id:
                seen.append(event)
                if event.is_final:
                    return seen
    return seen


@dataclass
class _TakeAway:
    """What a rescue and a claim elsewhere do to a running job's row, in one write."""

    job_id: object

    def apply(self, conn: Connection) -> None:
        conn.execute(update(jobs).where(jobs.c.id == self.job_id).values(worker_id="elsewhere"))


async def test_a_checkpoint_of_a_job_taken_from_this_worker_raises_and_stores_nothing(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    started, taken, done = trio.Event(), trio.Event(), trio.Event()
    seen: dict[str, object] = {}

    @registry.job(name="saver", max_retries=0)
    async def saver(ctx: JobContext, params: Nothing) -> None:
        started.set()
        await taken.wait()
        try:
            await ctx.checkpoint({"step": 7})
        except JobLost as lost:
            seen["lost"] = lost
        seen["local"] = ctx.checkpoint_state
        done.set()

    async with make_runtime() as rt:
        job = await rt.enqueue("saver", {})
        events = rt.subscribe(job.id)
        await started.wait()
        await rt.store.write(_TakeAway(job.id))
        taken.set()
        await done.wait()
        stored = await rt.get(job.id)
        events.close()
        kinds = [event.kind async for event in events]
    assert isinstance(seen["lost"], JobLost) and seen["local"] is None
    assert stored.checkpoint is None and stored.worker_id == "elsewhere"
    assert "checkpoint" not in kinds


async def test_every_live_event_carries_the_jobs_current_progress(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    @registry.job(name="reporter", params=Nothing)
    async def reporter(ctx: JobContext, params: Nothing) -> None:
        await ctx.progress(10, details={"step": "a"})
        await ctx.checkpoint({"step": 1})
        await ctx.progress(20, details={"step": "b"})
        ctx.warn("slow disk")
        await ctx.progress(30, details={"step": "c"})
        await ctx.check_in("copying")

    async with make_runtime() as rt:
        seen = [e for e in await events_of(rt, "reporter") if e.kind != "status"]
    assert [(e.kind, e.progress) for e in seen] == [
        ("progress", 10.0),
        ("checkpoint", 10.0),
        ("progress", 20.0),
        ("warning", 20.0),
        ("progress", 30.0),
        ("check_in", 30.0),
    ]
    assert [e.progress_details for e in seen][-2:] == [{"step": "c"}, {"step": "c"}]


async def test_a_check_in_records_when_it_happened(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    gate = trio.Event()

    @registry.job(name="checker", params=Nothing)
    async def checker(ctx: JobContext, params: Nothing) -> None:
        await trio.sleep(10)
        await ctx.check_in("halfway")
        await gate.wait()

    async with make_runtime() as rt:
        job = await rt.enqueue("checker", {})
        events = rt.subscribe(job.id)
        await trio.sleep(11)
        mid = await rt.get(job.id)
        gate.set()
        done = await rt.wait(job.id)
        events.close()
        told = [e async for e in events if e.kind == "check_in"]
    assert mid.check_in == "halfway" and mid.check_in_at is not None
    assert mid.started_at is not None
    assert (mid.check_in_at - mid.started_at).total_seconds() == pytest.approx(10, abs=0.01)
    assert done.check_in_at == mid.check_in_at
    assert [e.check_in_at for e in told] == [mid.check_in_at]


async def test_progress_as_a_fraction_is_scaled_to_percent(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    @registry.job(name="fractions", params=Nothing)
    async def fractions(ctx: JobContext, params: Nothing) -> None:
        await ctx.progress(fraction=0.75)
        with pytest.raises(ValueError, match=r"fraction must be within 0\.\.1, got 75"):
            await ctx.progress(fraction=75)
        with pytest.raises(ValueError, match="one of percent, fraction"):
            await ctx.progress(0.5, fraction=0.5)
        await ctx.progress(0.75)  # a percent: three quarters of one percent

    async with make_runtime() as rt:
        told = await events_of(rt, "fractions")
    assert [e.progress for e in told if e.kind == "progress"] == [75.0, 0.75]
    assert told[-1].status is JobStatus.COMPLETED


async def test_a_cancel_or_suspend_event_carries_the_live_progress_not_the_stored(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    reached: list[object] = []
    both = trio.Event()

    @registry.job(name="halfway", params=Nothing)
    async def halfway(ctx: JobContext, params: Nothing) -> None:
        await ctx.progress(40, details={"at": "half"})
        reached.append(ctx.id)
        if len(reached) == 2:
            both.set()
        await trio.sleep_forever()

    async with make_runtime(progress_interval=1000.0, queues={"default": 2}) as rt:
        first = await rt.enqueue("halfway", {})
        second = await rt.enqueue("halfway", {})
        await both.wait()  # both reported 40 %, and the store still says 0
        events = rt.subscribe()
        await rt.cancel(first.id)
        await rt.suspend(second.id)
        events.close()
        told = [(e.status, e.progress, e.progress_details) async for e in events]
    assert (JobStatus.CANCELING, 40.0, {"at": "half"}) in told
    assert (JobStatus.SUSPENDING, 40.0, {"at": "half"}) in told
    assert all(progress == 40.0 for _, progress, _ in told), told
