from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import trio

from runtime import InvalidParams, JobStatus, Registry, Runtime, UnknownJobType
from tests.runtime.jobs import Journal, Steps, register

pytestmark = pytest.mark.trio


@pytest.fixture
def journal(registry: Registry) -> Journal:
    journal = Journal()
    register(registry, journal)
    return journal


def stored_count(tmp_path: Path) -> int:
    with sqlite3.connect(tmp_path / "callboard.db") as conn:
        return int(conn.execute("select count(*) from callboard_jobs").fetchone()[0])


async def test_enqueue_is_durable_before_it_returns(
    make_runtime: Callable[..., Runtime], journal: Journal, tmp_path: Path
) -> None:
    async with make_runtime(workers=False) as rt:
        job = await rt.enqueue("steps", {"steps": 2})
        # Another connection (another process, in effect) already sees it.
        with sqlite3.connect(tmp_path / "callboard.db") as conn:
            status = conn.execute(
                "select status from callboard_jobs where id = ?", (job.id.hex,)
            ).fetchone()
    assert status == ("waiting",)
    assert job.status is JobStatus.WAITING and job.params == {"steps": 2, "seconds": 1.0}


async def test_enqueue_takes_a_model_or_the_handler(
    make_runtime: Callable[..., Runtime], registry: Registry, journal: Journal
) -> None:
    handler = registry.get("steps").handler
    async with make_runtime(workers=False) as rt:
        job = await rt.enqueue(handler, Steps(steps=5), priority=3, tenant_id="t1", user_id="u1")
    assert (job.type, job.params["steps"], job.priority, job.tenant_id, job.user_id) == (
        "steps",
        5,
        3,
        "t1",
        "u1",
    )


async def test_unknown_type_and_invalid_params_store_nothing(
    make_runtime: Callable[..., Runtime], journal: Journal, tmp_path: Path
) -> None:
    async with make_runtime(workers=False) as rt:
        with pytest.raises(UnknownJobType):
            await rt.enqueue("nope", {})
        with pytest.raises(InvalidParams) as caught:
            await rt.enqueue("steps", {"steps": "many"})
        with pytest.raises(InvalidParams, match="item 2"):
            await rt.enqueue_many("steps", [{}, {}, {"seconds": "x"}])
    assert caught.value.errors[0]["loc"] == ["steps"]
    assert stored_count(tmp_path) == 0


async def test_enqueue_many_stores_a_batch_in_one_transaction(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime(workers=False) as rt:
        before = rt.writer_statistics().transactions
        jobs = await rt.enqueue_many("steps", [{"steps": i} for i in range(1, 501)])
        assert rt.writer_statistics().transactions == before + 1
        assert await rt.count() == 500
    assert [j.params["steps"] for j in jobs] == list(range(1, 501))


async def test_idempotency_key_returns_the_existing_job(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime(workers=False) as rt:
        first = await rt.enqueue("steps", {}, idempotency_key="k")
        again = await rt.enqueue("steps", {"steps": 9}, idempotency_key="k")
        other_tenant = await rt.enqueue("steps", {}, idempotency_key="k", tenant_id="t2")
        found = await rt.get_by_idempotency_key("k")
        assert await rt.count() == 2
    assert again.id == first.id and again.params == first.params
    assert other_tenant.id != first.id
    assert found is not None and found.id == first.id


async def test_racing_enqueues_with_one_key_store_one_job(
    make_runtime: Callable[..., Runtime], journal: Journal, db_url: str, registry: Registry
) -> None:
    results = []
    async with (
        make_runtime(workers=False) as rt,
        Runtime(db_url, registry=registry, workers=False) as other,
    ):

        async def enqueue(r: Runtime) -> None:
            results.append(await r.enqueue("steps", {}, idempotency_key="race"))

        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(enqueue, rt)
                nursery.start_soon(enqueue, other)  # a second writer on the same file
        assert await rt.count() == 1
    assert len({j.id for j in results}) == 1


async def test_concurrent_enqueues_share_commits(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime(workers=False) as rt:
        before = rt.writer_statistics().transactions
        async with trio.open_nursery() as nursery:
            for _ in range(200):
                nursery.start_soon(rt.enqueue, "steps", {})
        used = rt.writer_statistics().transactions - before
        assert await rt.count() == 200
    assert used < 200  # group commit: many enqueues per transaction


async def test_delay_and_at_schedule_for_later(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime(workers=False) as rt:
        later = await rt.enqueue("steps", {}, delay=60)
        with pytest.raises(ValueError, match="delay or at, not both"):
            await rt.enqueue("steps", {}, delay=1, at=later.created_at)
        with pytest.raises(ValueError, match="naive datetime"):
            await rt.enqueue("steps", {}, at=later.created_at.replace(tzinfo=None))
    assert later.status is JobStatus.SCHEDULED
    assert later.scheduled_at is not None and later.created_at is not None
    assert (later.scheduled_at - later.created_at).total_seconds() == pytest.approx(60)


BAD_OPTIONS = [
    # Before, these were stored and then failed, or stored as given.
    ({"delay": float("inf")}, ValueError, "is due after the year 9000"),
    ({"delay": 1e300}, ValueError, "is due after the year 9000"),
    ({"delay": float("nan")}, ValueError, "delay must be >= 0"),
    ({"delay": "soon"}, TypeError, "delay must be seconds or a timedelta"),
    (
        {"at": datetime(9999, 12, 31, 23, tzinfo=timezone(timedelta(hours=-5)))},
        ValueError,
        "at must",
    ),
    ({"at": datetime(1, 1, 1, 1, tzinfo=timezone(timedelta(hours=5)))}, ValueError, "at must"),
    ({"timeout": float("nan")}, ValueError, "timeout must be a finite number"),
    ({"timeout": float("inf")}, ValueError, "timeout must be a finite number"),
    ({"priority": "high"}, ValueError, "priority must be an int"),
    ({"priority": 1.5}, ValueError, "priority must be an int"),
    ({"priority": 2**63}, ValueError, "priority must be an int"),
    ({"max_retries": 1.5}, ValueError, "max_retries must be an int"),
    ({"max_retries": 2**63}, ValueError, "max_retries must be an int"),
    ({"queue": 5}, ValueError, "queue must be a non-empty name"),
    ({"queue": ""}, ValueError, "queue must be a non-empty name"),
    ({"tenant_id": 5}, TypeError, "tenant_id must be a string"),
]


@pytest.mark.parametrize(("options", "error", "message"), BAD_OPTIONS)
async def test_a_bad_option_is_a_clear_error_and_stores_nothing(
    make_runtime: Callable[..., Runtime],
    journal: Journal,
    options: dict[str, Any],
    error: type[Exception],
    message: str,
) -> None:
    async with make_runtime(workers=False) as rt:
        with pytest.raises(error, match=re.escape(message)):
            await rt.enqueue("steps", {}, **options)
        with pytest.raises(ValueError, match="offset must be within"):
            await rt.list(offset=2**63)
        assert await rt.count() == 0


async def test_an_enqueue_into_an_idle_queue_shares_its_commit_with_the_claim(
    make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    """The runtime wakes its queue as it submits the insert, so the claim joins
    the insert's transaction: a job that runs once costs two commits (stored and
    claimed; finished), not three."""
    async with make_runtime(queues={"default": 4}) as rt:
        await rt.wait((await rt.enqueue("steps", {"steps": 0})).id, timeout=10)  # warmed up
        before = rt.writer_statistics().transactions
        for _ in range(10):
            job = await rt.enqueue("steps", {"steps": 0})
            assert (await rt.wait(job.id, timeout=10)).status is JobStatus.COMPLETED
        used = rt.writer_statistics().transactions - before
    assert used <= 2 * 10 + 2  # two per job, and room for a periodic write or two


async def test_job_ids_are_version_7_unique_and_ordered_by_their_millisecond(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import time
    import uuid

    from runtime.jobs import enqueue

    now = [1_700_000_000_000_000_000]
    monkeypatch.setattr(time, "time_ns", lambda: now[0])
    first = enqueue.new_job_ids(1_000)
    now[0] += 1_000_000  # one millisecond later
    later = [enqueue.new_job_id(), *enqueue.new_job_ids(3)]
    ids = first + later
    assert all(i.version == 7 and i.variant == uuid.RFC_4122 for i in ids)
    assert len(set(ids)) == len(ids)
    assert {i.int >> 80 for i in first} == {now[0] // 1_000_000 - 1}
    assert max(first) < min(later)  # ids of a later millisecond sort after


async def test_a_jobs_own_retry_delay_replaces_its_types(
    make_runtime: Callable[..., Runtime], journal: Journal, mock_clock: trio.testing.MockClock
) -> None:
    async with make_runtime() as rt:
        job = await rt.enqueue(
            "behave", {"fail_times": 1}, retry_delay=1000.0, description="try twice"
        )
        events = rt.events(job.id)
        async for event in events:
            if event.status is JobStatus.SCHEDULED and event.attempt == 1:
                break
        retrying = await rt.get(job.id)
        await events.aclose()
    assert retrying.retry_delay == 1000.0 and retrying.description == "try twice"
    assert retrying.scheduled_at is not None and retrying.updated_at is not None
    # The type says 10 s; the job 1,000 s, jittered +-20 %.
    wait = (retrying.scheduled_at - retrying.updated_at).total_seconds()
    assert 800.0 <= wait <= 1200.0


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"retry_delay": -1.0}, "retry_delay must be finite seconds >= 0"),
        ({"retry_delay": float("nan")}, "retry_delay must be finite seconds >= 0"),
        ({"description": 5}, "description must be a string"),
        ({"description": "x" * 2001}, "description must be a string of at most 2000"),
        ({"description": "a\x00b"}, "description "),
    ],
)
async def test_a_bad_retry_delay_or_description_stores_nothing(
    make_runtime: Callable[..., Runtime], journal: Journal, options: dict[str, Any], message: str
) -> None:
    async with make_runtime(workers=False) as rt:
        with pytest.raises(ValueError, match=re.escape(message)):
            await rt.enqueue("steps", {}, **options)
        assert await rt.count() == 0


async def test_a_bulk_enqueue_stores_the_description_and_retry_delay_of_every_job(
    store_url: str, make_runtime: Callable[..., Runtime], journal: Journal
) -> None:
    async with make_runtime(url=store_url, workers=False) as rt:
        made = await rt.enqueue_many(
            "echo", [{"value": i} for i in range(100)], description="batch 7", retry_delay=2.5
        )
        stored = await rt.list(limit=1000)
    assert len(stored) == len(made) == 100
    assert {(j.description, j.retry_delay) for j in (*made, *stored)} == {("batch 7", 2.5)}
