"""Cancel, delete and reading jobs back."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import pytest
import trio
import trio.lowlevel
import trio.testing
from pydantic import BaseModel

from runtime import IllegalTransition, Job, JobContext, JobNotFound, JobStatus, Registry, Runtime
from runtime.store import threads
from tests.runtime.jobs import Journal, register

pytestmark = pytest.mark.trio

T = TypeVar("T")


@pytest.fixture
def journal(registry: Registry) -> Journal:
    journal = Journal()
    register(registry, journal)
    return journal


async def test_cancel_waiting_or_scheduled_job_ends_it_at_once(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime(workers=False) as rt:
        waiting = await rt.enqueue("echo", {})
        later = await rt.enqueue("echo", {}, delay=600)
        assert (await rt.cancel(waiting.id)).status is JobStatus.CANCELED
        assert (await rt.cancel(later.id)).status is JobStatus.CANCELED
        stored = await rt.get(waiting.id)
    assert stored.status is JobStatus.CANCELED and stored.finished_at is not None


async def test_cancel_running_job_goes_through_canceling_and_runs_finally(
    make_runtime: Callable[..., Runtime], journal: Journal, mock_clock: trio.testing.MockClock
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("steps", {"steps": 100})
        events = rt.events(job.id)
        async for event in events:
            if event.kind == "progress" and event.progress and event.progress >= 3:
                break
        canceling = await rt.cancel(job.id)
        statuses = [e.status async for e in events if e.kind == "status"]
        done = await rt.get(job.id)
    assert canceling.status is JobStatus.CANCELING
    assert statuses == ["canceling", "canceled"]
    assert done.status is JobStatus.CANCELED and journal.finally_ran == ["steps"]


async def test_cancel_finished_job_is_illegal_and_changes_nothing(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("echo", {"value": 1})
        done = await rt.wait(job.id, timeout=10)
        with pytest.raises(IllegalTransition, match="its status is 'completed'"):
            await rt.cancel(job.id)
        after = await rt.get(job.id)
    assert after == done


async def test_unknown_ids_raise_job_not_found(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    import uuid

    async with make_runtime(workers=False) as rt:
        for call in (rt.get, rt.cancel, rt.delete):
            with pytest.raises(JobNotFound):
                await call(uuid.uuid4())
        with pytest.raises(JobNotFound, match="'not-a-uuid'"):
            await rt.get("not-a-uuid")


async def test_tenant_cannot_read_or_cancel_another_tenants_job(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime(workers=False) as rt:
        job = await rt.enqueue("echo", {}, tenant_id="acme")
        with pytest.raises(JobNotFound):
            await rt.get(job.id, tenant_id="globex")
        with pytest.raises(JobNotFound):
            await rt.cancel(job.id, tenant_id="globex")
        assert (await rt.get(job.id, tenant_id="acme")).tenant_id == "acme"


async def test_list_filters_and_pages(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime(workers=False) as rt:
        await rt.enqueue_many("echo", [{"value": i} for i in range(5)], tenant_id="a")
        await rt.enqueue("steps", {}, queue="other")
        later = await rt.enqueue("echo", {}, delay=60)
        assert len(await rt.list()) == 7
        assert [j.id for j in await rt.list(status=["scheduled"])] == [later.id]
        assert len(await rt.list(status=["waiting", "scheduled"], type="echo")) == 6
        assert [j.type for j in await rt.list(queue="other")] == ["steps"]
        assert len(await rt.list(tenant_id="a", limit=2)) == 2
        assert len(await rt.list(tenant_id="a", limit=2, offset=4)) == 1
        assert await rt.count(status="waiting") == 6
        with pytest.raises(ValueError, match="limit must be within"):
            await rt.list(limit=0)
        with pytest.raises(ValueError, match="unknown status 'bogus'; known: scheduled, waiting"):
            await rt.list(status=["bogus"])


async def test_wait_times_out_with_timeout_error(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime(workers=False) as rt:
        job = await rt.enqueue("echo", {})
        with pytest.raises(TimeoutError):
            await rt.wait(job.id, timeout=0.05)


async def test_events_stop_after_the_final_status(
    make_runtime: Callable[..., Runtime], journal: Journal, mock_clock: trio.testing.MockClock
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue("steps", {"steps": 2})
        events = [(e.kind, e.status, e.progress) async for e in rt.events(job.id)]
        finished = [(e.kind, e.status) async for e in rt.events(job.id)]
    assert events[0][0] == "status" and events[0][1] in ("waiting", "running")
    assert ("progress", "running", 50.0) in events
    assert events[-1][:2] == ("status", "completed")
    assert finished == [("status", "completed")]  # a finished job: one event, then done


async def test_delete_only_finished_jobs(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime() as rt:
        done = await rt.wait((await rt.enqueue("echo", {})).id, timeout=10)
        await rt.delete(done.id)
        with pytest.raises(JobNotFound):
            await rt.get(done.id)
    async with make_runtime(workers=False) as rt:
        pending = await rt.enqueue("echo", {})
        with pytest.raises(IllegalTransition, match="cannot delete"):
            await rt.delete(pending.id)
        assert (await rt.get(pending.id)).status is JobStatus.WAITING


async def test_using_a_runtime_outside_async_with_is_a_clear_error(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    from runtime import RuntimeNotRunning

    rt = make_runtime()
    with pytest.raises(RuntimeNotRunning, match="inside ``async with Runtime"):
        await rt.enqueue("echo", {})


async def _until(condition: Callable[[], bool]) -> None:
    """Yield to the loop until ``condition`` holds (states no event announces)."""
    while not condition():
        await trio.lowlevel.checkpoint()


class Named(BaseModel):
    name: str


async def test_cancel_of_a_just_claimed_job_is_not_lost(
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    mock_clock: trio.testing.MockClock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A cancel committed after b's claim, before b's task had started, found no
    # mailbox and was dropped: b ran and ended completed though cancel() said
    # canceling. The writer's thread hop is held (as a sweep holds it) while the
    # claim and then the cancel queue behind it, so one transaction has both.
    go = trio.Event()
    entered, release = trio.Event(), trio.Event()
    armed = False
    ran: list[str] = []

    @registry.job(name="j", max_retries=0)
    async def j(ctx: JobContext, params: Named) -> str:
        ran.append(params.name)
        if params.name == "a":
            await go.wait()
        else:
            await trio.sleep(5)
        return params.name

    inner = threads.run_sync  # the mock_clock fixture's

    async def held_run_sync(fn: Callable[..., T], *args: object) -> T:
        nonlocal armed
        if armed and getattr(fn, "__name__", "") == "_commit_in_thread":
            armed = False
            entered.set()
            await release.wait()
        return await inner(fn, *args)

    monkeypatch.setattr(threads, "run_sync", held_run_sync)
    result: dict[str, Job] = {}
    async with make_runtime(queues={"default": 1}) as rt:
        await rt.enqueue("j", {"name": "a"})
        b = await rt.enqueue("j", {"name": "b"})  # waits for the only slot
        await _until(lambda: ran == ["a"])

        async def cancel_b() -> None:
            result["job"] = await rt.cancel(b.id)

        async with trio.open_nursery() as nursery:
            armed = True
            nursery.start_soon(rt.prune)  # a sweep batch: the writer hops to a thread
            await entered.wait()
            go.set()  # a ends: its finish and b's claim queue behind the sweep
            await _until(lambda: rt.writer_statistics().queued >= 2)
            nursery.start_soon(cancel_b)
            await _until(lambda: rt.writer_statistics().queued >= 3)
            release.set()
        assert result["job"].status is JobStatus.CANCELING  # cancel() accepted it
        done = await rt.wait(b.id)
    assert done.status is JobStatus.CANCELED


async def test_cancel_reason_is_kept_logged_and_cleared_by_a_retry(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime(workers=False) as rt:
        job = await rt.enqueue("echo", {}, delay=600)
        with pytest.raises(ValueError, match="reason must be a string"):
            await rt.cancel(job.id, reason="x" * 2001)
        assert (await rt.get(job.id)).status is JobStatus.SCHEDULED
        events = rt.subscribe(job.id)
        canceled = await rt.cancel(job.id, reason="superseded by v2")
        event = await events.receive()
        log = await rt.logs(job.id)
        again = await rt.retry(job.id)
    assert canceled.cancel_reason == "superseded by v2"
    assert (event.status, event.message, event.cancel_reason) == (
        JobStatus.CANCELED,
        "superseded by v2",
        "superseded by v2",
    )
    assert log[-1].message == "cancel: scheduled -> canceled (superseded by v2)"
    assert again.cancel_reason is None


async def test_list_and_count_take_status_aliases(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime(workers=False) as rt:
        later = await rt.enqueue("echo", {}, delay=60)
        now = await rt.enqueue("echo", {})
        gone = await rt.cancel((await rt.enqueue("echo", {})).id)
        pending = {j.id for j in await rt.list(status="pending")}
        assert [j.id for j in await rt.list(status="cancelled")] == [gone.id]
        assert await rt.count(status=["pending", "waiting"]) == 2
    assert pending == {later.id, now.id}
