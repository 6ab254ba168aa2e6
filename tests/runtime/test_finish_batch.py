"""A writer's batch of finishes (``Finish.apply_many``) on both stores.

On PostgreSQL the batch's updates return whether each job has dependents,
and only those jobs' dependency rows are read: a dependent of any finish of
the batch, not only the last, is settled, and a batch without dependents
settles nothing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

import pytest
from pydantic import BaseModel
from sqlalchemy import String, cast, select, update

from runtime import JobContext, JobStatus, Registry, Runtime
from runtime.store.claim import Claim
from runtime.store.engine import open_engine, writer_connection
from runtime.store.ops import Finish, FinishResult
from runtime.store.tables import jobs

pytestmark = pytest.mark.trio


class Empty(BaseModel):
    pass


def _finish_together(url: str, count: int) -> tuple[list[uuid.UUID], list[FinishResult]]:
    """Claim ``count`` jobs and record their ends in one batch; the claimed ids
    (in claim order) and the batch's results."""
    engine = open_engine(url)
    try:
        with writer_connection(engine) as conn:
            with conn.begin():
                claimed = Claim("default", count, "w", time.time()).apply(conn).rows
            ids = [row["id"] for row in claimed]
            now = time.time()
            values = {"status": "completed", "finished_at": now, "updated_at": now}
            with conn.begin():
                results = Finish.apply_many(conn, [Finish(i, "w", dict(values)) for i in ids])
        return ids, results
    finally:
        engine.dispose()


def _status(url: str, job_id: uuid.UUID) -> str:
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            return str(conn.execute(select(jobs.c.status).where(jobs.c.id == job_id)).scalar_one())
    finally:
        engine.dispose()


async def test_a_batch_settles_the_dependents_of_its_first_finish(
    make_runtime: Callable[..., Runtime], registry: Registry, store_url: str
) -> None:
    @registry.job(name="t", max_retries=0)
    async def t(ctx: JobContext, params: Empty) -> None: ...

    async with make_runtime(url=store_url, workers=False) as rt:
        first = await rt.enqueue("t", {}, priority=2)
        second = await rt.enqueue("t", {}, priority=1)
        dependent = await rt.enqueue("t", {}, depends_on=[first.id])
    ids, results = _finish_together(store_url, 2)
    assert ids == [first.id, second.id]
    assert all(r.done for r in results)
    # Announced with the last of the batch, though the first had the dependent.
    assert [d["id"] for d in results[-1].dependents] == [dependent.id]
    assert _status(store_url, dependent.id) == JobStatus.WAITING.value


async def test_a_batch_without_dependents_settles_nothing(
    make_runtime: Callable[..., Runtime], registry: Registry, store_url: str
) -> None:
    await _store_jobs(make_runtime, registry, store_url, 3)
    ids, results = _finish_together(store_url, 3)
    assert len(ids) == 3
    assert [r.done for r in results] == [True, True, True]
    assert all(r.dependents == [] for r in results)
    assert all(_status(store_url, i) == JobStatus.COMPLETED.value for i in ids)


async def _store_jobs(
    make_runtime: Callable[..., Runtime], registry: Registry, url: str, count: int
) -> None:
    """``count`` waiting jobs of a type ``t`` (registered here) in the store at ``url``."""

    @registry.job(name="t", max_retries=0)
    async def t(ctx: JobContext, params: Empty) -> None: ...

    async with make_runtime(url=url, workers=False) as rt:
        for _ in range(count):
            await rt.enqueue("t", {})


def _claim(url: str, count: int) -> list[uuid.UUID]:
    engine = open_engine(url)
    try:
        with writer_connection(engine) as conn, conn.begin():
            return [row["id"] for row in Claim("default", count, "w", time.time()).apply(conn).rows]
    finally:
        engine.dispose()


def _stored(url: str, ids: list[uuid.UUID]) -> list[tuple[object, ...]]:
    """Each job's recorded ending, its JSON as the database's text (a JSON
    ``null`` is not SQL NULL), in the order of ``ids``."""
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            columns = (jobs.c.status, jobs.c.revision, jobs.c.worker_id, jobs.c.wall_time)
            json = (jobs.c.result, jobs.c.errors)
            query = select(jobs.c.id, *columns, *(cast(c, String) for c in json))
            rows = {row[0]: tuple(row[1:]) for row in conn.execute(query)}
            return [rows[i] for i in ids]
    finally:
        engine.dispose()


def _ending(result: object, wall_time: float | None) -> dict[str, object]:
    now = time.time()
    return {
        "status": "completed",
        "finished_at": now,
        "result": result,
        "errors": None,
        "updated_at": now,
        "wall_time": wall_time,
    }


async def test_a_batch_records_what_each_finish_alone_would(
    make_runtime: Callable[..., Runtime], registry: Registry, store_url: str
) -> None:
    await _store_jobs(make_runtime, registry, store_url, 6)
    endings = [_ending({"n": 1, "s": "x"}, 0.5), _ending(None, None), _ending([1, "a"], 2.0)]
    together, alone = _claim(store_url, 3), _claim(store_url, 3)
    engine = open_engine(store_url)
    try:
        with writer_connection(engine) as conn:
            with conn.begin():
                finishes = [Finish(i, "w", dict(e)) for i, e in zip(together, endings, strict=True)]
                assert all(r.done for r in Finish.apply_many(conn, finishes))
            for job_id, ending in zip(alone, endings, strict=True):
                with conn.begin():
                    assert Finish(job_id, "w", dict(ending)).apply(conn).done
    finally:
        engine.dispose()
    # The same status, revision (one bump past the claim's), worker, time and JSON.
    assert _stored(store_url, together) == _stored(store_url, alone)


async def test_a_batch_with_a_job_taken_elsewhere_records_the_others(
    make_runtime: Callable[..., Runtime], registry: Registry, store_url: str
) -> None:
    await _store_jobs(make_runtime, registry, store_url, 3)
    ids = _claim(store_url, 3)
    engine = open_engine(store_url)
    try:
        with writer_connection(engine) as conn:
            with conn.begin():
                conn.execute(update(jobs).where(jobs.c.id == ids[1]).values(worker_id="other"))
            with conn.begin():
                finishes = [Finish(i, "w", _ending(None, 1.0)) for i in ids]
                results = Finish.apply_many(conn, finishes)
    finally:
        engine.dispose()
    assert [r.done for r in results] == [True, False, True]
    assert [row[0] for row in _stored(store_url, ids)] == ["completed", "running", "completed"]
    assert _stored(store_url, ids)[1][2] == "other"
