"""The writer's batched paths: finishes applied together, NULL spelling, settle callbacks."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import anyio
import pytest
import trio
import trio.testing
from sqlalchemy import (
    Column,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Connection

from runtime import Registry, Runtime
from runtime.store import Store, fast
from runtime.store.claim import Claim
from runtime.store.engine import open_engine
from runtime.store.ops import CheckIn, Finish, SaveCheckpoint, SaveProgress
from runtime.store.tables import job_logs, jobs
from tests.runtime.jobs import Journal, register

WORKER = "worker-1"


def _completed(now: float) -> dict[str, Any]:
    return {
        "status": "completed",
        "finished_at": now,
        "result": None,
        "progress": 100.0,
        "progress_details": None,
        "eta": now,
        "errors": None,
        "updated_at": now,
        "resumed": False,
    }


async def _stored(db_url: str, count: int) -> Store:
    """A store holding ``count`` waiting echo jobs, its writer not started yet."""
    registry = Registry()
    register(registry, Journal())
    async with Runtime(db_url, registry=registry, workers=False) as rt:
        await rt.enqueue_many("echo", [{"value": str(i)} for i in range(count)])
    return Store(db_url)


@pytest.mark.trio
async def test_a_batch_of_finishes_falls_back_when_one_job_moved_on(store_url: str) -> None:
    store = await _stored(store_url, 4)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.writer.run)
        claimed = (await store.write(Claim("default", 4, WORKER, now=10.0))).rows
        taken, stopping = claimed[1]["id"], claimed[2]["id"]
        await store.write(_Set(taken, worker_id="another-worker"))  # rescued elsewhere
        await store.write(_Set(stopping, status="canceling"))  # a cancel request arrived
        # Submitted together, so the writer applies them as one run of finishes.
        pendings = [
            store.submit(
                Finish(row["id"], WORKER, _completed(11.0), logs=[_log(row["id"], "done")])
            )
            for row in claimed
        ]
        results = [await pending.wait() for pending in pendings]
        store.writer.close()
    assert [r.done for r in results] == [True, False, True, True]
    # The request is seen, and a job that did complete stays completed.
    assert results[2].values["status"] == "completed"
    assert results[2].revision == claimed[2]["revision"] + 1
    rows = store.read_sync(lambda conn: {r.id: r for r in conn.execute(select(jobs))})
    for row in claimed:
        bumps = 0 if row["id"] == taken else 1  # rolled back, then recorded once
        assert rows[row["id"]].revision == row["revision"] + bumps
    assert rows[taken].status == "running" and rows[taken].worker_id == "another-worker"
    assert store.read_sync(_log_messages).count("done") == 4  # each finish's log, once
    store.dispose()


@pytest.mark.trio
async def test_a_batch_of_plain_finishes_records_each_job_once(store_url: str) -> None:
    store = await _stored(store_url, 5)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.writer.run)
        claimed = (await store.write(Claim("default", 5, WORKER, now=10.0))).rows
        pendings = [store.submit(Finish(row["id"], WORKER, _completed(11.0))) for row in claimed]
        results = [await pending.wait() for pending in pendings]
        # A finish for a job this worker no longer owns is refused, not recorded twice.
        again = await store.write(Finish(claimed[0]["id"], WORKER, _completed(12.0)))
        store.writer.close()
    assert all(r.done for r in results)
    assert not again.done
    revisions = store.read_sync(lambda conn: {r.id: r.revision for r in conn.execute(select(jobs))})
    assert revisions == {row["id"]: row["revision"] + 1 for row in claimed}  # one bump each
    store.dispose()


@pytest.mark.trio
async def test_a_finished_job_keeps_its_worker_but_takes_no_more_writes_from_it(
    store_url: str,
) -> None:
    store = await _stored(store_url, 1)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.writer.run)
        job_id = (await store.write(Claim("default", 1, WORKER, now=10.0))).rows[0]["id"]
        assert (await store.write(Finish(job_id, WORKER, _completed(11.0)))).done
        # Late writes of the attempt (a progress flush, a checkpoint, a check-in).
        late = {"job_id": job_id, "progress": 5.0, "progress_details": None, "eta": None}
        progress = SaveProgress(WORKER, [{**late, "errors": None, "updated_at": 12.0}])
        assert await store.write(progress) == 0
        assert not await store.write(SaveCheckpoint(job_id, WORKER, {"at": 1}, 1, 12.0))
        assert await store.write(CheckIn(job_id, WORKER, "late", 12.0)) is None
        store.writer.close()
    row = store.read_sync(lambda conn: conn.execute(select(jobs)).one())
    assert (row.status, row.worker_id, row.progress) == ("completed", WORKER, 100.0)
    assert (row.checkpoint, row.check_in, row.updated_at) == (None, None, 11.0)
    store.dispose()


@pytest.mark.trio
async def test_a_settle_callback_that_raises_does_not_stop_the_writer(store_url: str) -> None:
    store = await _stored(store_url, 1)
    async with trio.open_nursery() as nursery:
        await nursery.start(store.writer.run)
        pending = store.submit(Claim("default", 1, WORKER, now=10.0))

        def broken(result: Any, error: BaseException | None) -> None:
            raise RuntimeError("boom")

        pending.on_settled(broken)
        assert len((await pending.wait()).rows) == 1
        assert (await store.write(Claim("default", 1, WORKER, now=10.0))).rows == []
        store.writer.close()
    store.dispose()


@pytest.mark.trio
async def test_writes_from_tasks_runnable_in_the_same_tick_share_a_commit(store_url: str) -> None:
    store = await _stored(store_url, 1)
    job_id = None

    async def write_after(checkpoints: int) -> None:
        for _ in range(checkpoints):
            await trio.lowlevel.checkpoint()
        await store.write(_Set(job_id, check_in="x"))

    async with trio.open_nursery() as nursery:
        await nursery.start(store.writer.run)
        job_id = (await store.write(Claim("default", 1, WORKER, now=10.0))).rows[0]["id"]
        # Trio runs the tasks of one tick in random order: repeat, so a writer
        # that committed as soon as it woke would be caught splitting the pair.
        for _ in range(20):
            before = store.writer.statistics().transactions
            async with trio.open_nursery() as pair:
                pair.start_soon(write_after, 0)
                pair.start_soon(write_after, 1)
            assert store.writer.statistics().transactions == before + 1
        store.writer.close()
    store.dispose()


def test_none_parameters_are_spelled_null_with_the_same_meaning(tmp_path: Path) -> None:
    """``x = NULL`` in the SQL behaves as binding None to ``x = ?`` would."""
    path = tmp_path / "t.db"
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("create table t (a text, b text)")
    conn.close()
    engine = open_engine(f"sqlite:///{path}")
    table = Table("t", MetaData(), Column("a", String), Column("b", String))
    with engine.begin() as core:
        prepared = fast.prepared(core, "t-insert", lambda: insert(table), ("a", "b"))
        prepared.executemany(core, [{"a": "x", "b": None}, {"a": None, "b": "y"}])
        matching = fast.prepared(
            core,
            "t-update",
            lambda: update(table).where(table.c.b == bindparam("w_b")).values(a="z"),
        )
        assert matching.execute(core, {"w_b": None}).rowcount == 0  # NULL = NULL is unknown
        rows = sorted(core.execute(select(table)).all(), key=lambda r: str(r.a))
    assert [tuple(r) for r in rows] == [(None, "y"), ("x", None)]
    sql, params = matching._statement([None])
    assert "NULL" in sql and params == []
    engine.dispose()


class _Set:
    """A test write: change a job's columns, as another process would."""

    inline_weight = 1

    def __init__(self, job_id: Any, **values: Any) -> None:
        self.job_id, self.values = job_id, values

    def apply(self, conn: Connection) -> None:
        conn.execute(update(jobs).where(jobs.c.id == self.job_id).values(**self.values))


def _log(job_id: Any, message: str) -> dict[str, Any]:
    return {"job_id": job_id, "at": 11.0, "level": 20, "message": message, "extra": None}


def _log_messages(conn: Connection) -> list[str]:
    return [r.message for r in conn.execute(select(job_logs.c.message))]


@pytest.mark.trio
async def test_a_lone_enqueue_waits_out_another_process_holding_the_write_lock(
    tmp_path: Path,
) -> None:
    """A lone single-statement write runs in SQLite's autocommit mode on the loop
    thread, where it never waits: if another process holds the write lock it
    moves to a worker thread, which waits for the lock as usual."""
    registry = Registry()
    register(registry, Journal())
    db = tmp_path / "busy.db"
    async with Runtime(f"sqlite:///{db}", registry=registry, workers=False) as rt:
        other = sqlite3.connect(db, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        stored: list[Any] = []

        async def enqueue() -> None:
            stored.append(await rt.enqueue("echo", {"value": 1}))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(enqueue)
            await trio.testing.wait_all_tasks_blocked()
            assert stored == []  # waiting for the lock, in a thread: the loop runs on
            other.execute("COMMIT")
        other.close()
        assert [job.id for job in await rt.list()] == [stored[0].id]


@pytest.mark.trio
async def test_the_writer_takes_writes_queued_before_it_runs_and_refuses_them_once_closed(
    store_url: str,
) -> None:
    store = await _stored(store_url, 2)
    early = store.submit(Claim("default", 1, WORKER, now=10.0))  # before the writer runs
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            await nursery.start(store.writer.run)
            assert len((await early).rows) == 1
            later = await store.write(Claim("default", 1, WORKER, now=11.0))  # it waited idle
            assert len(later.rows) == 1
            await trio.testing.wait_all_tasks_blocked()
            store.writer.close()  # wakes the idle writer, which returns
    assert store.writer.statistics().queued == 0
    with pytest.raises(anyio.ClosedResourceError, match="writer is closed"):
        store.submit(Claim("default", 1, WORKER, now=12.0))
    store.dispose()
