"""The claim's order on every store: rescued jobs go ahead of the backlog of
their priority, and jobs enqueued together run in the order given."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
from sqlalchemy import update

from runtime import JobStatus, Registry, Runtime
from runtime.store.tables import jobs
from tests.conftest import QUIET
from tests.runtime.jobs import Journal, register

pytestmark = pytest.mark.trio


@pytest.fixture
def on_store(store_url: str, registry: Registry) -> Callable[..., Runtime]:
    def make(**options: object) -> Runtime:
        return Runtime(store_url, registry=registry, **{**QUIET, "grace_period": 5.0, **options})  # type: ignore[arg-type]

    return make


async def _completed_in_order(worker: Runtime, count: int) -> list[object]:
    order: list[object] = []
    with worker.subscribe() as events, trio.fail_after(30):  # before the first claim
        async with worker as rt:
            async for event in events:
                if event.kind == "status" and event.status is JobStatus.COMPLETED:
                    order.append((await rt.get(event.job_id)).result)
                if len(order) == count:
                    break
    return order


async def test_jobs_enqueued_together_run_in_the_order_given(
    on_store: Callable[..., Runtime], registry: Registry
) -> None:
    register(registry, Journal())
    values = list(range(40))
    async with on_store(workers=False) as rt:
        await rt.enqueue_many("echo", [{"value": v} for v in values])
    assert await _completed_in_order(on_store(queues={"default": 1}), len(values)) == values


async def test_a_rescued_job_runs_before_the_backlog_of_its_priority(
    on_store: Callable[..., Runtime], registry: Registry
) -> None:
    register(registry, Journal())
    async with on_store(workers=False) as rt:
        lost = await rt.enqueue("echo", {"value": "lost"})
        await rt.enqueue_many("echo", [{"value": i} for i in range(5)])
        await rt.enqueue("echo", {"value": "urgent"}, priority=5)
        # A worker claimed it and vanished without a trace (no lease row left).
        await rt.store.write(_Orphan(lost.id))
    order = await _completed_in_order(on_store(queues={"default": 1}), 7)
    assert order == ["urgent", "lost", 0, 1, 2, 3, 4]


class _Orphan:
    def __init__(self, job_id: object) -> None:
        self.job_id = job_id

    def apply(self, conn: object) -> None:
        conn.execute(  # type: ignore[attr-defined]
            update(jobs)
            .where(jobs.c.id == self.job_id)
            .values(status=JobStatus.RUNNING.value, worker_id="gone:1:x", attempt=1)
        )
