"""Bulk control (runtime.jobs.bulk) on both stores: each job by its own compare-and-set."""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable

import pytest
from pydantic import BaseModel

import runtime.jobs.bulk as bulk
from runtime import Fail, JobContext, Registry, Runtime
from runtime.jobs.bulk import BULK_LIMIT_MAX, BulkAction, bulk_control
from runtime.store.control_reads import finished_history
from tests.conftest import QUIET

pytestmark = pytest.mark.trio


class Empty(BaseModel):
    pass


@pytest.fixture
def on_store(store_url: str, registry: Registry) -> Callable[..., Runtime]:
    @registry.job(name="ok")
    async def ok(ctx: JobContext, params: Empty) -> None:
        return None

    @registry.job(name="bad", max_retries=0)
    async def bad(ctx: JobContext, params: Empty) -> None:
        raise Fail("bad")

    def make() -> Runtime:
        return Runtime(store_url, registry=registry, **{**QUIET, "grace_period": 5.0})  # type: ignore[arg-type]

    return make


async def failed(rt: Runtime, n: int, tenant: str | None = None) -> list[uuid.UUID]:
    jobs = [await rt.enqueue("bad", {}, tenant_id=tenant) for _ in range(n)]
    return [(await rt.wait(j.id, timeout=30)).id for j in jobs]


async def test_bulk_retry_moves_the_matching_jobs_and_skips_the_rest(
    on_store: Callable[..., Runtime],
) -> None:
    async with on_store() as rt:
        bad = await failed(rt, 3)
        done = await rt.wait((await rt.enqueue("ok", {})).id, timeout=30)
        result = await bulk_control(rt, "retry", {"status": ["failed", "completed"]})
        assert (result.matched, result.selected, result.changed) == (4, 4, 3)
        assert (result.skipped, result.skipped_by_status) == (1, {"completed": 1})
        assert result.action is BulkAction.RETRY and result.remaining == 0
        for job_id in bad:
            assert (await rt.wait(job_id, timeout=30)).attempt == 2
        assert (await rt.get(done.id)).status == "completed"


async def test_bulk_acts_on_one_tenant_only(on_store: Callable[..., Runtime]) -> None:
    async with on_store() as rt:
        mine = [await rt.enqueue("ok", {}, delay=3600, tenant_id="acme") for _ in range(2)]
        theirs = await rt.enqueue("ok", {}, delay=3600, tenant_id="globex")
        result = await bulk_control(rt, "cancel", {"status": "scheduled", "tenant_id": "acme"})
        assert (result.matched, result.changed) == (2, 2)
        assert {(await rt.get(j.id)).status for j in mine} == {"canceled"}
        assert (await rt.get(theirs.id)).status == "scheduled"


async def test_bulk_takes_the_newest_up_to_the_limit_and_dry_run_changes_nothing(
    on_store: Callable[..., Runtime],
) -> None:
    async with on_store() as rt:
        jobs = [await rt.enqueue("ok", {}, delay=3600) for _ in range(5)]
        counted = await bulk_control(rt, "cancel", {"type": "ok"}, dry_run=True)
        assert (counted.matched, counted.selected, counted.changed) == (5, 5, 0)
        assert {(await rt.get(j.id)).status for j in jobs} == {"scheduled"}
        result = await bulk_control(rt, "cancel", {"type": "ok"}, limit=2, batch=1)
        assert (result.matched, result.selected, result.changed, result.remaining) == (5, 2, 2, 3)
        newest = {j.id for j in (await rt.list(type="ok", limit=2))}
        assert {j.id for j in jobs if (await rt.get(j.id)).status == "canceled"} == newest


async def test_bulk_skips_jobs_that_moved_or_went_after_the_ids_were_read(
    on_store: Callable[..., Runtime], monkeypatch: pytest.MonkeyPatch
) -> None:
    async with on_store() as rt:
        moved, gone, first = [await rt.enqueue("ok", {}, delay=3600) for _ in range(3)]
        real = bulk._mover

        def racing(
            rt_: Runtime, action: BulkAction, tenant: str | None, reason: str | None
        ) -> bulk.Move:
            move = real(rt_, action, tenant, reason)

            async def wrapped(job_id: uuid.UUID) -> object:
                if job_id == first.id:  # the newest, moved first; then another client acts
                    await rt.cancel(moved.id)
                    await rt.cancel(gone.id)
                    await rt.delete(gone.id)
                return await move(job_id)

            return wrapped

        monkeypatch.setattr(bulk, "_mover", racing)
        result = await bulk_control(rt, "cancel", {"status": "scheduled"}, batch=1)
        assert (result.matched, result.selected, result.changed, result.skipped) == (3, 3, 1, 2)
        assert result.skipped_by_status == {"canceled": 1, "gone": 1}
        assert (await rt.get(first.id)).status == "canceled"


async def test_bulk_refuses_bad_limits_unknown_filters_and_actions(
    on_store: Callable[..., Runtime],
) -> None:
    async with on_store() as rt:
        for limit in (0, BULK_LIMIT_MAX + 1, True, 1.5):
            with pytest.raises(ValueError, match="limit must be an int within"):
                await bulk_control(rt, "retry", {"type": "ok"}, limit=limit)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="unknown bulk filter colour"):
            await bulk_control(rt, "retry", {"colour": "red"})
        with pytest.raises(ValueError, match=r"search .* cannot be stored"):
            await bulk_control(rt, "retry", {"search": "a\x00b"})
        with pytest.raises(ValueError, match="'explode' is not a valid BulkAction"):
            await bulk_control(rt, "explode", {"type": "ok"})


async def test_search_finds_ids_by_prefix_and_keys_by_their_start(
    on_store: Callable[..., Runtime],
) -> None:
    async with on_store() as rt:
        a = await rt.enqueue("ok", {}, delay=3600, idempotency_key="order-17_x")
        b = await rt.enqueue("ok", {}, delay=3600, idempotency_key="order-170")
        await rt.enqueue("ok", {}, delay=3600, idempotency_key="other")
        assert {j.id for j in await rt.list(search=str(a.id))} == {a.id}
        assert {j.id for j in await rt.list(search=a.id.hex[:8])} >= {a.id}
        assert {j.id for j in await rt.list(search=a.id.hex[-8:])} == {a.id}
        assert {j.id for j in await rt.list(search="order-17")} == {a.id, b.id}
        # LIKE's wildcards are literal: "_" matches only "_"
        assert {j.id for j in await rt.list(search="order-17_")} == {a.id}
        assert await rt.count(search="order%") == 0


async def test_finished_history_counts_outcomes_per_bucket(
    on_store: Callable[..., Runtime],
) -> None:
    async with on_store() as rt:
        bad = await failed(rt, 2, tenant="acme")
        good = [(await rt.wait((await rt.enqueue("ok", {})).id, timeout=30)) for _ in range(3)]
        since = rt.clock.now() - 97.0  # 9.7 buckets ago: floor is 9, rounding 10
        rows = await rt.store.read(finished_history, since, 10.0)
        jobs = [*[await rt.get(j) for j in bad], *good]
        expected: dict[tuple[str, str, int], int] = {}
        for job in jobs:
            assert job.finished_at is not None
            slot = math.floor((job.finished_at.timestamp() - since) / 10.0)
            key = (job.queue, job.status.value, slot)
            expected[key] = expected.get(key, 0) + 1
        assert {(q, s, b): n for q, s, b, n in rows} == expected
        assert all(b == 9 for _, _, b, _ in rows)
        mine = await rt.store.read(finished_history, since, 10.0, "acme")
        assert sum(n for *_, n in mine) == 2
