"""The event bus: subscriptions indexed by job and tenant, each a bounded channel
with a stated overflow policy (status never dropped, progress coalesced, a
subscriber that cannot keep up closed with a reason)."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import anyio
import pytest
import trio
import trio.testing
from pydantic import BaseModel

from runtime import JobContext, JobStatus, Registry, Runtime
from runtime.domain.models import EventKind, JobEvent
from runtime.jobs.events import EVERY_TENANT, EventBus, SubscriberTooSlow, Subscription

pytestmark = pytest.mark.trio

A, B = uuid.uuid4(), uuid.uuid4()


def event(
    job: uuid.UUID,
    kind: EventKind = "status",
    *,
    progress: float | None = None,
    status: JobStatus = JobStatus.RUNNING,
    tenant: str | None = None,
) -> JobEvent:
    return JobEvent(
        job_id=job, kind=kind, status=status, at=None, progress=progress, tenant_id=tenant
    )


def unread(sub: Subscription[JobEvent]) -> list[tuple[uuid.UUID, str, float | None]]:
    return [(e.job_id, e.kind, e.progress) for e in sub._items]


async def drain(sub: Subscription[JobEvent]) -> list[JobEvent]:
    got: list[JobEvent] = []
    with pytest.raises(SubscriberTooSlow) as closed:
        while True:
            got.append(await sub.receive())
    assert "subscriber too slow" in closed.value.reason
    return got


async def test_a_full_buffer_coalesces_progress_to_each_jobs_latest() -> None:
    bus = EventBus()
    sub = bus.subscribe(buffer=3)
    bus.publish(event(A, "progress", progress=10))
    bus.publish(event(B, "progress", progress=5))
    bus.publish(event(A))  # a status change: kept, in its place
    bus.publish(event(A, "progress", progress=20))  # full: replaces A's unread progress
    bus.publish(event(A, "progress", progress=30))
    assert unread(sub) == [(B, "progress", 5), (A, "status", None), (A, "progress", 30)]
    assert not sub.closed
    assert [e.progress for e in [await sub.receive() for _ in range(3)]] == [5, None, 30]


async def test_a_buffer_full_of_status_changes_closes_the_subscriber_with_a_reason() -> None:
    bus = EventBus()
    sub = bus.subscribe(buffer=2)
    bus.publish(event(A))
    bus.publish(event(B))
    bus.publish(event(A, status=JobStatus.COMPLETED))  # never dropped: the reader is closed
    assert sub.closed and not bus.wants(A)
    # What was buffered is still delivered, then the reason, never a silent gap.
    assert [e.job_id for e in await drain(sub)] == [A, B]
    bus.publish(event(B))  # closed: nothing more is buffered
    assert sub._items == type(sub._items)()


async def test_progress_of_a_job_with_none_unread_does_not_push_others_out() -> None:
    bus = EventBus()
    sub = bus.subscribe(buffer=2)
    bus.publish(event(A, "progress", progress=1))
    bus.publish(event(A))
    bus.publish(event(B, "progress", progress=1))  # full, and nothing of B to replace
    assert [e.kind for e in await drain(sub)] == ["progress", "status"]


def counting(calls: list[JobEvent]) -> Callable[[JobEvent], bool]:
    def accept(e: JobEvent) -> bool:
        calls.append(e)
        return True

    return accept


async def test_subscribers_get_only_what_they_may_see_and_cost_nothing_otherwise() -> None:
    bus = EventBus()
    seen: dict[str, list[JobEvent]] = {name: [] for name in ("a", "b", "none", "job", "all")}
    subs = [
        bus.subscribe(tenant_id="a", accept=counting(seen["a"])),
        bus.subscribe(tenant_id="b", accept=counting(seen["b"]), buffer=2_000),
        bus.subscribe(tenant_id=None, accept=counting(seen["none"])),
        bus.subscribe(A, accept=counting(seen["job"])),
        bus.subscribe(tenant_id=EVERY_TENANT, accept=counting(seen["all"]), buffer=2_000),
    ]
    for _ in range(1_000):
        bus.publish(event(B, tenant="b"))
    bus.publish(event(A, tenant="a"))
    bus.publish(event(uuid.uuid4()))
    # Tenant a's subscriber was never even asked about tenant b's 1,000 events.
    assert [len(seen[n]) for n in ("a", "b", "none", "job", "all")] == [1, 1_000, 1, 1, 1_002]
    assert {e.tenant_id for e in seen["a"]} == {"a"}
    assert bus.wants(B, "b")
    for sub in subs[:-1]:
        sub.close()
    assert bus.wants(uuid.uuid4(), "c")  # the every-tenant subscriber is still there
    subs[-1].close()
    assert not bus.wants(A, "a") and not bus.wants(B, "b")


async def test_a_closed_subscriber_ends_iteration_and_wakes_its_reader() -> None:
    bus = EventBus()
    sub = bus.subscribe()
    got: list[JobEvent] = []

    async def read() -> None:
        async for e in sub:
            got.append(e)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(read)
        await trio.testing.wait_all_tasks_blocked()
        bus.publish(event(A))
        await trio.testing.wait_all_tasks_blocked()
        bus.close_all()
    assert [e.job_id for e in got] == [A]
    with pytest.raises(anyio.EndOfStream):
        await sub.receive()


async def test_buffer_must_be_positive() -> None:
    with pytest.raises(ValueError, match="buffer must be >= 1"):
        EventBus().subscribe(buffer=0)


class NoParams(BaseModel):
    pass


async def test_runtime_subscription_of_one_tenant_sees_only_its_jobs(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    @registry.job(name="tenanted")
    async def tenanted(ctx: JobContext, params: NoParams) -> None:
        await ctx.progress(50)

    async with make_runtime() as rt:
        with rt.subscribe(tenant_id="a") as mine:
            theirs = await rt.enqueue("tenanted", tenant_id="b")
            job = await rt.enqueue("tenanted", tenant_id="a")
            await rt.wait(theirs.id, timeout=30)
            await rt.wait(job.id, timeout=30)
            got = []
            while mine._items:
                got.append(await mine.receive())
    assert {e.job_id for e in got} == {job.id}
    assert [e.kind for e in got].count("progress") == 1
    assert got[-1].status is JobStatus.COMPLETED
