"""Dependency edge cases: a manual retry of a dependency that a blocked job
still counts, and, on PostgreSQL, a dependent released in one process
starting in another without waiting for its poll."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
from pydantic import BaseModel
from sqlalchemy import update

from runtime import Fail, JobContext, JobStatus, Registry, Runtime
from runtime.store.claim import Claim
from runtime.store.engine import open_engine
from runtime.store.tables import jobs
from runtime.store.worker_ops import Heartbeat
from tests.conftest import QUIET

pytestmark = pytest.mark.trio

S = JobStatus


class Named(BaseModel):
    name: str


@pytest.fixture
def gates(registry: Registry) -> dict[str, trio.Event]:
    gates: dict[str, trio.Event] = {}

    @registry.job(name="flaky", max_retries=0)
    async def flaky(ctx: JobContext, params: Named) -> str:
        if ctx.attempt == 1:
            raise Fail("first attempt fails")
        await gates.setdefault(f"{params.name}-again", trio.Event()).wait()
        return params.name

    @registry.job(name="gated", max_retries=0)
    async def gated(ctx: JobContext, params: Named) -> str:
        await gates.setdefault(params.name, trio.Event()).wait()
        return params.name

    @registry.job(name="plain", max_retries=0)
    async def plain(ctx: JobContext, params: Named) -> str:
        return params.name

    return gates


@pytest.fixture
def on_store(store_url: str, registry: Registry) -> Callable[..., Runtime]:
    def make(**options: object) -> Runtime:
        return Runtime(store_url, registry=registry, **{**QUIET, **options})  # type: ignore[arg-type]

    return make


async def test_a_blocked_dependent_waits_for_a_retried_dependency_to_end_again(
    on_store: Callable[..., Runtime], gates: dict[str, trio.Event]
) -> None:
    with trio.fail_after(30):
        async with on_store() as rt:
            a = await rt.enqueue("flaky", {"name": "a"})
            b = await rt.enqueue("gated", {"name": "b"})
            d = await rt.enqueue(
                "plain", {"name": "d"}, depends_on=[a.id, b.id], run_on_failure=True
            )
            assert (await rt.wait(a.id)).status is S.FAILED
            await rt.retry(a.id)  # runs again, and waits at its gate
            gates.setdefault("b", trio.Event()).set()
            assert (await rt.wait(b.id)).status is S.COMPLETED
            # Its dependencies have each ended once, but the retried one runs.
            assert (await rt.get(d.id)).status is S.BLOCKED
            gates.setdefault("a-again", trio.Event()).set()
            done = await rt.wait(d.id)
    assert done.status is S.COMPLETED


async def test_a_retry_does_not_revive_a_skipped_dependent(
    on_store: Callable[..., Runtime], gates: dict[str, trio.Event]
) -> None:
    with trio.fail_after(30):
        async with on_store() as rt:
            a = await rt.enqueue("flaky", {"name": "a"})
            d = await rt.enqueue("plain", {"name": "d"}, depends_on=[a.id])
            assert (await rt.wait(d.id)).status is S.SKIPPED
            await rt.retry(a.id)
            gates.setdefault("a-again", trio.Event()).set()
            assert (await rt.wait(a.id)).status is S.COMPLETED
            assert (await rt.get(d.id)).status is S.SKIPPED


async def test_a_dependent_released_by_another_process_starts_without_its_poll(
    postgres_url: str, registry: Registry, gates: dict[str, trio.Event]
) -> None:
    """The runtime serving the dependent's queue polls once an hour: only the
    notice the dependency's ending sends can wake it."""
    registry.job(name="later", queue="later", max_retries=0)(_later)
    slow: dict[str, object] = {**QUIET, "poll_interval": 3600.0}
    with trio.fail_after(30):
        async with (
            Runtime(postgres_url, registry=registry, queues={"later": 1}, **slow) as waiter,  # type: ignore[arg-type]
            Runtime(postgres_url, registry=registry, queues={"default": 1}, **QUIET) as runner,  # type: ignore[arg-type]
        ):
            first = await runner.enqueue("gated", {"name": "first"})
            after = await runner.enqueue("later", {"name": "after"}, depends_on=[first.id])
            assert after.status is S.BLOCKED
            gates.setdefault("first", trio.Event()).set()
            done = await waiter.wait(after.id)
            assert done.status is S.COMPLETED
            assert done.worker_id == waiter.worker_id


async def _later(ctx: JobContext, params: Named) -> str:
    return params.name


async def test_a_dependent_a_rescue_releases_for_later_wakes_the_due_timer(
    store_url: str, registry: Registry, gates: dict[str, trio.Event]
) -> None:
    """A job lost with its worker, out of attempts, ends ``failed`` by the rescue;
    its dependent (run on failure, due a moment later) is released ``scheduled``.
    This runtime polls once an hour: only its due timer can start the dependent."""
    settings: dict[str, object] = {
        **QUIET,
        "heartbeat_interval": 0.2,
        "lease": 1.0,
        "poll_interval": 3600.0,
    }
    engine = open_engine(store_url)
    try:
        with trio.fail_after(30):
            async with Runtime(
                store_url, registry=registry, queues={"default": 1}, **settings
            ) as rt:  # type: ignore[arg-type]
                lost = await rt.enqueue("plain", {"name": "lost"}, queue="elsewhere")
                after = await rt.enqueue(
                    "plain", {"name": "after"}, depends_on=[lost.id], run_on_failure=True, delay=1.0
                )
                now = rt.clock.now()
                with engine.begin() as conn:  # a worker that died running it, twice over
                    Heartbeat("dead", "other-host", 1, now - 1000, now - 1000).apply(conn)
                    Claim("elsewhere", 1, "dead", now).apply(conn)
                    conn.execute(update(jobs).where(jobs.c.id == lost.id).values(attempt=3))
                done = await rt.wait(after.id)
                assert (await rt.get(lost.id)).status is S.FAILED
    finally:
        engine.dispose()
    assert done.status is S.COMPLETED


async def test_an_idempotency_key_with_depends_on_returns_the_job_it_stored_first(
    on_store: Callable[..., Runtime], gates: dict[str, trio.Event]
) -> None:
    async with on_store(workers=False) as rt:
        a = await rt.enqueue("plain", {"name": "a"})
        b = await rt.enqueue("plain", {"name": "b"})
        first = await rt.enqueue("plain", {"name": "d"}, depends_on=[a.id], idempotency_key="k")
        assert first.status is S.BLOCKED
        again = await rt.enqueue("plain", {"name": "d"}, depends_on=[b.id], idempotency_key="k")
        assert again.id == first.id
        assert await rt.dependencies(first.id) == [a.id]  # as it was stored
        assert await rt.count() == 3
        # Only the stored job counts as a dependent: b has none.
        assert await rt.count(status="blocked") == 1
    async with on_store() as rt:
        assert (await rt.wait(first.id, timeout=30)).status is S.COMPLETED


async def test_depends_on_refuses_a_unique_type_and_says_why(
    on_store: Callable[..., Runtime], registry: Registry, gates: dict[str, trio.Event]
) -> None:
    registry.job(name="single", unique=True)(_later)
    async with on_store(workers=False) as rt:
        a = await rt.enqueue("plain", {"name": "a"})
        with pytest.raises(ValueError, match="does not cover blocked jobs"):
            await rt.enqueue("single", {"name": "s"}, depends_on=[a.id])
