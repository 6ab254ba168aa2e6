"""Fan-out / fan-in (``rt.enqueue_chord``) on every store: the callback waits
for every member, reads their outcomes page by page, is skipped by a failed
member unless it runs on failure, and a large chord is stored in bulk."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import trio
from pydantic import BaseModel
from sqlalchemy import func, select

from runtime import Fail, JobContext, JobStatus, Registry, Runtime
from runtime.store.tables import job_dependencies
from tests.conftest import QUIET

pytestmark = pytest.mark.trio

S = JobStatus


class Item(BaseModel):
    i: int
    fail: bool = False


class Page(BaseModel):
    page: int = 7


@pytest.fixture
def seen(registry: Registry) -> list[object]:
    seen: list[object] = []

    @registry.job(name="square", max_retries=0)
    async def square(ctx: JobContext, params: Item) -> int:
        if params.fail:
            raise Fail(f"item {params.i} failed")
        return params.i * params.i

    @registry.job(name="total", max_retries=0)
    async def total(ctx: JobContext, params: Page) -> int:
        out = 0
        async for member in ctx.iter_dependency_results(page=params.page):
            seen.append((member.status.value, member.result, member.error))
            out += member.result or 0
        return out

    return seen


@pytest.fixture
def on_store(store_url: str, registry: Registry) -> Callable[..., Runtime]:
    def make(**options: object) -> Runtime:
        return Runtime(store_url, registry=registry, **{**QUIET, **options})  # type: ignore[arg-type]

    return make


async def test_the_callback_runs_after_every_member_and_reads_their_results(
    on_store: Callable[..., Runtime], seen: list[object]
) -> None:
    with trio.fail_after(60):
        async with on_store() as rt:
            chord = await rt.enqueue_chord("square", [{"i": i} for i in range(30)], "total")
            assert chord.callback.status is S.BLOCKED
            assert [m.params["i"] for m in chord.members] == list(range(30))
            done = await rt.wait(chord.callback.id)
    assert done.status is S.COMPLETED
    assert done.result == sum(i * i for i in range(30))
    # In the order given, each once (read seven at a time).
    assert seen == [("completed", i * i, None) for i in range(30)]


async def test_a_failed_member_skips_the_callback_unless_it_runs_on_failure(
    on_store: Callable[..., Runtime], seen: list[object]
) -> None:
    items = [{"i": 1}, {"i": 2, "fail": True}, {"i": 3}]
    with trio.fail_after(60):
        async with on_store() as rt:
            skipped = await rt.enqueue_chord("square", items, "total")
            done = await rt.wait(skipped.callback.id)
            assert done.status is S.SKIPPED
            assert done.error == f"dependency {skipped.members[1].id} ended failed"
            assert seen == []
            anyway = await rt.enqueue_chord("square", items, "total", run_on_failure=True)
            done = await rt.wait(anyway.callback.id)
    assert done.status is S.COMPLETED
    assert done.result == 1 + 9
    assert seen == [
        ("completed", 1, None),
        ("failed", None, "item 2 failed"),
        ("completed", 9, None),
    ]


async def test_a_large_chord_is_stored_in_one_write_and_fans_in(
    on_store: Callable[..., Runtime], seen: list[object]
) -> None:
    """2,000 members: past the bulk thresholds (COPY on PostgreSQL, one JSON
    statement on SQLite) for the members and the callback's dependency rows."""
    count = 2000
    with trio.fail_after(120):
        async with on_store(workers=False) as client:  # nothing else writes
            before = client.writer_statistics().transactions
            chord = await client.enqueue_chord(
                "square", [{"i": i} for i in range(count)], "total", {"page": 500}
            )
            assert client.writer_statistics().transactions - before == 1

            def edges(conn: object) -> int:
                query = select(func.count()).select_from(job_dependencies)
                query = query.where(job_dependencies.c.job_id == chord.callback.id)
                return int(conn.execute(query).scalar_one())  # type: ignore[attr-defined]

            assert await client.store.read(edges) == count
        async with on_store(queues={"default": 50}) as rt:
            done = await rt.wait(chord.callback.id)
    assert done.status is S.COMPLETED
    assert done.result == sum(i * i for i in range(count))
    assert len(seen) == count


async def test_a_chord_with_no_members_or_unknown_types_stores_nothing(
    on_store: Callable[..., Runtime], seen: list[object]
) -> None:
    async with on_store(workers=False) as rt:
        with pytest.raises(ValueError, match=r"a chord has 1\.\.100000 members, got 0"):
            await rt.enqueue_chord("square", [], "total")
        with pytest.raises(LookupError):
            await rt.enqueue_chord("square", [{"i": 1}], "nope")
        assert await rt.count() == 0
