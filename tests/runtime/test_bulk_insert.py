"""Bulk enqueues on SQLite: one statement reading the varying columns from JSON.

The rows it stores must be the rows ``executemany`` would have stored, and
the snapshots ``enqueue_many`` returns the snapshots ``Job.from_row`` makes.
"""

from __future__ import annotations

import json
import math
import random
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing
from sqlalchemy import select

from runtime import Job, JobStatus, Registry, Runtime
from runtime.domain.errors import InvalidParams, JobNotFound
from runtime.jobs.enqueue import PER_JOB_COLUMNS, build_rows
from runtime.store import Store, bulk_insert
from runtime.store.claim import Claim
from runtime.store.ops import BULK_MIN_ROWS, PARKED_COLUMNS, DeleteJob, InsertJobs
from runtime.store.tables import JOB_COLUMNS, jobs
from tests.runtime.control_jobs import Trace
from tests.runtime.control_jobs import register as register_work
from tests.runtime.jobs import Journal, register


def _stored(db: Path) -> list[dict[str, Any]]:
    with sqlite3.connect(db) as conn:
        conn.row_factory = sqlite3.Row
        rows = conn.execute("SELECT *, typeof(priority) AS t_priority FROM callboard_jobs")
        return [dict(r) for r in rows]


def _params() -> list[dict[str, Any]]:
    rng = random.Random(7)
    return [
        {
            "value": {
                "x": rng.random() * 10 ** rng.randint(-300, 300),
                "text": f'{i}: tab\t newline\n quote " backslash \\ ünïcode ✓ 🎉',
                "list": [1, 2.5, None, True, "a"],
                "big": 123456789012345678901234567890,
            }
        }
        for i in range(BULK_MIN_ROWS + 36)
    ]


@pytest.mark.trio
async def test_bulk_rows_are_the_rows_one_at_a_time_stores(
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    register(registry, Journal())
    calls: list[int] = []
    columns_statement = bulk_insert.columns_statement
    monkeypatch.setattr(
        bulk_insert,
        "columns_statement",
        lambda dialect, table, columns, shared, per_job: (
            calls.append(len(per_job["id"]))
            or columns_statement(dialect, table, columns, shared, per_job)
        ),
    )
    params = _params()
    async with make_runtime(workers=False, url=f"sqlite:///{tmp_path / 'bulk.db'}") as rt:
        bulk = await rt.enqueue_many("echo", params, priority=4, tenant_id="t")
    async with make_runtime(workers=False, url=f"sqlite:///{tmp_path / 'one.db'}") as rt:
        one = [await rt.enqueue("echo", p, priority=4, tenant_id="t") for p in params[:3]]
    assert calls == [len(params)]
    stored_bulk, stored_one = _stored(tmp_path / "bulk.db"), _stored(tmp_path / "one.db")
    by_id = {row["id"]: row for row in stored_bulk}
    assert sorted(by_id) == sorted(job.id.hex for job in bulk)
    for job, expected in zip(bulk, params, strict=True):
        assert json.loads(by_id[job.id.hex]["params"]) == expected  # floats and text exact
    ignored = {"id", "params", "created_at", "scheduled_at", "updated_at"}
    for mine, theirs in zip(stored_bulk, stored_one, strict=False):
        assert {k: v for k, v in mine.items() if k not in ignored} == {
            k: v for k, v in theirs.items() if k not in ignored
        }
    assert stored_bulk[0]["t_priority"] == "integer" and stored_bulk[0]["result"] == "null"
    assert [job.params for job in bulk] == params
    assert [
        job.model_dump(exclude={"id", "params", "created_at", "scheduled_at", "updated_at"})
        for job in bulk[:3]
    ] == [
        job.model_dump(exclude={"id", "params", "created_at", "scheduled_at", "updated_at"})
        for job in one
    ]


@pytest.mark.trio
async def test_bulk_jobs_parked_on_a_held_lock_are_stored_locked(
    make_runtime: Callable[..., Runtime], registry: Registry, mock_clock: trio.testing.MockClock
) -> None:
    trace = Trace()
    register_work(registry, trace, lock="{path}")
    async with make_runtime(queues={"default": 1}) as rt:
        holder = await rt.enqueue("work", {"name": "holder", "path": "/x", "steps": 5})
        await trio.sleep(0.5)
        assert (await rt.get(holder.id)).status is JobStatus.RUNNING
        items = [{"name": str(i), "path": "/x" if i % 2 else "/y"} for i in range(BULK_MIN_ROWS)]
        jobs = await rt.enqueue_many("work", items)
        parked = [await rt.get(job.id) for job in jobs[1::2]]
        assert {(j.status, j.locked_by) for j in parked} == {(JobStatus.LOCKED, str(holder.id))}
        assert {j.status for j in jobs[1::2]} == {JobStatus.LOCKED}
        for job in [holder, *jobs]:
            assert (await rt.wait(job.id)).status is JobStatus.COMPLETED
    assert trace.peak["/x"] == 1


def test_similar_rows_make_the_snapshots_rows_make_one_by_one(registry: Registry) -> None:
    register(registry, Journal())
    rows = build_rows(registry.get("echo"), [{"value": i} for i in range(5)], now=1_700_000_000.5)
    rows[2].update(status="locked", locked_by="someone")
    similar = Job.from_similar_rows(rows, (*PER_JOB_COLUMNS, *PARKED_COLUMNS))
    one_by_one = [Job.from_row(row) for row in rows]
    assert [j.model_dump() for j in similar] == [j.model_dump() for j in one_by_one]
    assert [repr(j) for j in similar] == [repr(j) for j in one_by_one]
    assert similar[2].status is JobStatus.LOCKED
    # No two snapshots share a mutable value.
    assert len({id(j.errors) for j in similar}) == len({id(j.params) for j in similar}) == 5
    assert Job.from_similar_rows([], PER_JOB_COLUMNS) == []


def test_every_column_a_bulk_enqueue_varies_is_declared(registry: Registry) -> None:
    register(registry, Journal())
    rows = build_rows(
        registry.get("echo"),
        [{"value": i} for i in range(3)],
        now=5.0,
        idempotency_keys=["a", "b", None],
        lock_key=None,
    )
    varying = {c for c in JOB_COLUMNS if len({json.dumps(r[c], default=str) for r in rows}) > 1}
    assert varying <= set(PER_JOB_COLUMNS)


@pytest.mark.trio
async def test_bulk_rows_with_a_value_json_cannot_carry_are_stored_all_the_same(
    registry: Registry, tmp_path: Path
) -> None:
    # Enqueues never store NaN (params are dumped as JSON by pydantic, which
    # makes it null), but a store op may be handed one.
    register(registry, Journal())
    rows = build_rows(registry.get("echo"), [{"value": i} for i in range(BULK_MIN_ROWS)], now=1.0)
    rows[0]["params"] = {"value": math.nan}
    rows[1]["params"] = {"value": -math.inf}
    store = await trio.to_thread.run_sync(Store, f"sqlite:///{tmp_path / 'nan.db'}")
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.writer.run)
            await store.write(InsertJobs(rows, varying=PER_JOB_COLUMNS))
            store.writer.close()
        stored = await store.read(lambda conn: {r.id: r.params for r in conn.execute(select(jobs))})
    finally:
        store.dispose()
    assert len(stored) == BULK_MIN_ROWS
    assert (
        math.isnan(stored[rows[0]["id"]]["value"]) and stored[rows[1]["id"]]["value"] == -math.inf
    )
    assert stored[rows[2]["id"]] == {"value": 2}


@pytest.mark.trio
async def test_a_bulk_insert_retried_alone_parks_only_the_jobs_whose_lock_is_held(
    registry: Registry, tmp_path: Path
) -> None:
    # A failing neighbour makes the writer apply the insert again on its own;
    # the retry must not take the first row's parking for every row's.
    trace = Trace()
    register_work(registry, trace, lock="{path}")
    work = registry.get("work")
    store = await trio.to_thread.run_sync(Store, f"sqlite:///{tmp_path / 'retry.db'}")
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(store.writer.run)
            await store.write(InsertJobs(build_rows(work, [{"name": "h", "path": "/k"}], now=1.0)))
            started = await store.write(Claim("default", 1, "w1", now=2.0))
            assert [r["lock_key"] for r in started.rows] == ["/k"]
            items = [{"name": "0", "path": "/k"}]
            items += [{"name": str(i), "path": f"/free{i}"} for i in range(1, BULK_MIN_ROWS)]
            rows = build_rows(work, items, now=3.0)
            insert = store.submit(InsertJobs(rows, varying=PER_JOB_COLUMNS))
            bad = store.submit(DeleteJob(uuid.uuid4()))  # fails in the same batch
            await insert.wait()
            with pytest.raises(JobNotFound):
                await bad.wait()
            store.writer.close()
        query = select(jobs.c.id, jobs.c.status, jobs.c.locked_by)
        stored = await store.read(lambda conn: {r.id: r for r in conn.execute(query)})
    finally:
        store.dispose()
    holder = str(started.rows[0]["id"])
    assert (stored[rows[0]["id"]].status, stored[rows[0]["id"]].locked_by) == ("locked", holder)
    assert {(stored[r["id"]].status, stored[r["id"]].locked_by) for r in rows[1:]} == {
        ("waiting", None)
    }
    # The rows (which enqueue_many returns as jobs) say what was stored.
    assert [r["status"] for r in rows] == [stored[r["id"]].status for r in rows]


@pytest.mark.trio
@pytest.mark.parametrize("count", [BULK_MIN_ROWS - 1, BULK_MIN_ROWS])
async def test_bulk_params_with_a_lone_surrogate_are_refused_as_a_few_jobs_are(
    make_runtime: Callable[..., Runtime], registry: Registry, count: int
) -> None:
    # Python strings may hold one; UTF-8 (the bulk path's JSON document) cannot,
    # and a job read back with one could not be answered over HTTP.
    register(registry, Journal())
    async with make_runtime(workers=False) as rt:
        items = [{"value": "a"}] * (count - 1) + [{"value": "a\ud800b"}]
        with pytest.raises(InvalidParams, match=f"item {count - 1}: .*value: holds an unpaired"):
            await rt.enqueue_many("echo", items)
        assert await rt.list() == []
