"""A write whose caller leads (``submit(lead=True)``): committed in the caller's
task when the writer is idle, with group commit kept under concurrency."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
import trio
import trio.testing

from runtime import Registry, Runtime
from runtime.jobs.enqueue import PER_JOB_COLUMNS, build_rows
from runtime.store import Store
from runtime.store.ops import InsertJobs
from tests.runtime.jobs import Journal, register


def _registry() -> Registry:
    registry = Registry()
    register(registry, Journal())
    return registry


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'lead.db'}"


def _stored_ids(store_url: str) -> set[str]:
    path = store_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as conn:
        return {row[0] for row in conn.execute("SELECT id FROM callboard_jobs")}


@pytest.mark.trio
async def test_a_lone_enqueue_commits_in_its_own_task_and_is_durable(sqlite_url: str) -> None:
    async with Runtime(sqlite_url, registry=_registry(), workers=False) as rt:
        before = rt.writer_statistics()
        job = await rt.enqueue("echo", {"value": "a"})
        after = rt.writer_statistics()
        # Readable from another connection as soon as enqueue returns.
        assert job.id.hex in _stored_ids(sqlite_url)
    assert after.led == before.led + 1
    assert after.transactions == before.transactions + 1


@pytest.mark.trio
async def test_concurrent_enqueues_still_share_commits(sqlite_url: str) -> None:
    producers, each = 20, 20
    async with Runtime(sqlite_url, registry=_registry(), workers=False) as rt:
        before = rt.writer_statistics()

        async def produce(index: int) -> None:
            for turn in range(each):
                await rt.enqueue("echo", {"value": f"{index}-{turn}"})

        async with trio.open_nursery() as nursery:
            for index in range(producers):
                nursery.start_soon(produce, index)
        after = rt.writer_statistics()
        assert await rt.count() == producers * each
    # Every producer's next enqueue joins the commit another one leads.
    assert after.transactions - before.transactions == each


@pytest.mark.trio
async def test_an_enqueue_to_a_served_queue_goes_through_the_writer(sqlite_url: str) -> None:
    async with Runtime(sqlite_url, registry=_registry(), queues={"other": 1}) as rt:
        led = rt.writer_statistics().led
        await rt.enqueue("echo", {"value": "x"}, queue="other")
        # Its queue's claim joins the writer's commit: nobody led it.
        assert rt.writer_statistics().led == led


@pytest.mark.trio
async def test_a_leader_cancelled_before_its_commit_leaves_the_write_to_the_writer(
    sqlite_url: str,
) -> None:
    registry = _registry()
    async with Runtime(sqlite_url, registry=registry, workers=False):
        pass  # creates the schema
    store = Store(sqlite_url)
    rows = build_rows(registry.get("echo"), [{"value": "c"}], now=time.time())
    async with trio.open_nursery() as nursery:
        await nursery.start(store.writer.run)
        await trio.testing.wait_all_tasks_blocked()  # the writer waits for writes
        pending = store.submit(InsertJobs(rows, varying=PER_JOB_COLUMNS), lead=True)
        with trio.CancelScope() as scope:
            scope.cancel()
            await pending.wait()
        assert scope.cancelled_caught
        await pending.wait()  # the writer committed it
        assert store.writer.statistics().led == 0
        store.writer.close()
    assert rows[0]["id"].hex in _stored_ids(sqlite_url)


@pytest.mark.trio
async def test_closing_the_writer_while_a_caller_leads_commits_its_write(sqlite_url: str) -> None:
    registry = _registry()
    async with Runtime(sqlite_url, registry=registry, workers=False):
        pass
    store = Store(sqlite_url)
    rows = build_rows(registry.get("echo"), [{"value": "d"}], now=time.time())
    async with trio.open_nursery() as nursery:
        await nursery.start(store.writer.run)
        await trio.testing.wait_all_tasks_blocked()
        pending = store.submit(InsertJobs(rows, varying=PER_JOB_COLUMNS), lead=True)
        store.writer.close()  # the writer stays parked until the leader is done
        await pending.wait()
        assert store.writer.statistics().led == 1
    assert rows[0]["id"].hex in _stored_ids(sqlite_url)
