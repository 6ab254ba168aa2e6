"""Unique jobs, should_run, checkpoint versions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio
import trio.testing

from runtime import JobContext, JobStatus, Registry, Runtime
from tests.conftest import QUIET
from tests.runtime.control_jobs import Trace, Work, register

pytestmark = pytest.mark.trio


async def test_unique_type_returns_the_unfinished_equal_job(
    make_runtime: Callable[..., Runtime], registry: Registry, db_url: str
) -> None:
    register(registry, Trace(), unique=True)
    async with make_runtime(workers=False) as rt:
        first = await rt.enqueue("work", {"name": "x"})
        again = await rt.enqueue("work", {"name": "x"})
        other = await rt.enqueue("work", {"name": "y"})
        other_tenant = await rt.enqueue("work", {"name": "x"}, tenant_id="t")
        await rt.cancel(first.id)
        after_finish = await rt.enqueue("work", {"name": "x"})
    assert again.id == first.id and other.id != first.id and other_tenant.id != first.id
    assert after_finish.id != first.id  # a finished job no longer blocks


async def test_a_unique_job_with_an_idempotency_key_returns_the_equal_unfinished_job(
    store_url: str, registry: Registry
) -> None:
    # The new job's key is unused: the unique key is what skipped its insert.
    register(registry, Trace(), unique=True)
    async with Runtime(store_url, registry=registry, workers=False, **QUIET) as rt:
        first = await rt.enqueue("work", {"name": "x"})
        keyed = await rt.enqueue("work", {"name": "x"}, idempotency_key="k")
        assert await rt.count() == 1
        fresh = await rt.enqueue("work", {"name": "y"}, idempotency_key="k2")
        again = await rt.enqueue("work", {"name": "x"}, idempotency_key="k2")
    assert keyed.id == first.id
    assert again.id == fresh.id  # a used idempotency key wins over the unique key


async def test_unique_is_enforced_by_the_store_under_races(
    make_runtime: Callable[..., Runtime], registry: Registry, db_url: str
) -> None:
    register(registry, Trace(), unique=True)
    ids = set()
    async with (
        make_runtime(workers=False) as a,
        Runtime(db_url, registry=registry, workers=False) as b,
    ):

        async def enqueue(rt: Runtime) -> None:
            ids.add((await rt.enqueue("work", {"name": "race"})).id)

        async with trio.open_nursery() as nursery:
            for _ in range(8):
                nursery.start_soon(enqueue, a)
                nursery.start_soon(enqueue, b)
        assert await a.count() == 1
    assert len(ids) == 1


async def test_should_run_false_skips_with_reason(
    make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    trace = Trace()

    async def only_named(ctx: JobContext) -> bool:
        return ctx.job.params["name"] != "skip-me"

    register(registry, trace, should_run=only_named)
    async with make_runtime() as rt:
        skipped = await rt.enqueue("work", {"name": "skip-me", "steps": 0})
        ran = await rt.enqueue("work", {"name": "run-me", "steps": 0})
        skipped_done = await rt.wait(skipped.id, timeout=10)
        ran_done = await rt.wait(ran.id, timeout=10)
    assert skipped_done.status is JobStatus.SKIPPED
    assert skipped_done.error == "should_run of job type 'work' returned False"
    assert ran_done.status is JobStatus.COMPLETED and trace.started == ["run-me"]


def version_two(registry: Registry, trace: list[Any], upgrade: Any) -> None:
    @registry.job(name="work", params=Work, version=2, upgrade=upgrade, max_retries=0)
    async def work(ctx: JobContext, params: Work) -> Any:
        trace.append(ctx.checkpoint_state)
        return ctx.checkpoint_state


async def suspended_v1_job(make_runtime: Callable[..., Runtime], registry: Registry) -> Any:
    register(registry, Trace())
    async with make_runtime() as rt:
        job = await rt.enqueue("work", {"steps": 10})
        await trio.sleep(2.5)
        await rt.suspend(job.id)
        async for event in rt.events(job.id):
            if event.status is JobStatus.SUSPENDED:
                break
        stored = await rt.get(job.id)
    assert stored.checkpoint == {"done": 2} and stored.checkpoint_version == 1
    return job.id


async def test_older_checkpoint_is_upgraded_before_the_handler_sees_it(
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    db_url: str,
    mock_clock: trio.testing.MockClock,
) -> None:
    job_id = await suspended_v1_job(make_runtime, registry)
    seen: list[Any] = []
    registry = Registry()  # the same type, one version on
    version_two(registry, seen, lambda old, state: {"steps_done": state["done"], "from": old})
    async with Runtime(db_url, registry=registry, **QUIET) as rt:
        await rt.resume(job_id)
        done = await rt.wait(job_id)
    assert seen == [{"steps_done": 2, "from": 1}]
    assert done.status is JobStatus.COMPLETED


@pytest.mark.parametrize(
    ("upgrade", "message"),
    [
        (
            None,
            "checkpoint version 1 is older than job type 'work' version 2, which has no upgrade()",
        ),
        (
            lambda old, state: state["nope"],
            "cannot upgrade the checkpoint of job type 'work' from version 1 to 2: "
            "KeyError: 'nope'",
        ),
    ],
)
async def test_checkpoint_that_cannot_be_upgraded_fails_the_job(
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    db_url: str,
    mock_clock: trio.testing.MockClock,
    upgrade: Any,
    message: str,
) -> None:
    job_id = await suspended_v1_job(make_runtime, registry)
    seen: list[Any] = []
    registry = Registry()  # the same type, one version on
    version_two(registry, seen, upgrade)
    async with Runtime(db_url, registry=registry, **QUIET) as rt:
        await rt.resume(job_id)
        done = await rt.wait(job_id)
    assert done.status is JobStatus.FAILED and done.error == message
    assert seen == []  # the handler never ran on state it does not understand
