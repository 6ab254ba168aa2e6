"""A lone enqueue with no options (``runtime.jobs.lone_enqueue``), committed at
once in its caller's task (``StoreWriter.write_alone``)."""

from __future__ import annotations

import math
import os
import sqlite3
import time

import pytest
import trio
import trio.testing
from sqlalchemy import Engine, create_engine

from runtime import Runtime
from runtime.domain.errors import InvalidParams
from runtime.domain.models import Job
from runtime.jobs import enqueue as enqueue_module
from runtime.jobs.enqueue import build_rows
from runtime.jobs.lone_enqueue import LoneEnqueue
from runtime.store import writer, writer_lead
from runtime.store.bound_insert import insert_jobs_statement
from tests.runtime.test_writer_lead import _registry, sqlite_url

__all__ = ["sqlite_url"]  # the fixture, shared with the lead's tests


def _stored(url: str, job_id: str) -> dict[str, object]:
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("SELECT * FROM callboard_jobs WHERE id = ?", (job_id,)).fetchone()
    return dict(row)


def test_the_plan_makes_what_build_rows_and_from_row_make(sqlite_url: str) -> None:
    registry = _registry()
    job_type = registry.get("echo")
    engine = create_engine(sqlite_url)
    first = build_rows(job_type, [{"value": "first"}], now=1_000.0)[0]
    plan = LoneEnqueue(job_type, first, engine.dialect)
    row, insert = plan.job({"value": "second"}, 2_000.5)
    expected = build_rows(job_type, [{"value": "second"}], now=2_000.5)[0]
    expected["id"] = row["id"]
    assert row == expected
    assert (insert.sql, insert.params) == insert_jobs_statement(engine.dialect).bound(expected)
    assert plan.snapshot(row) == Job.from_row(expected)
    # Its containers are its own: a snapshot never shares a mutable value.
    assert plan.snapshot(row).errors is not plan.snapshot(row).errors
    engine.dispose()


def test_the_plan_validates_params() -> None:
    registry = _registry()
    job_type = registry.get("echo")
    first = build_rows(job_type, [{"value": "first"}], now=1_000.0)[0]
    plan = LoneEnqueue(job_type, first, create_engine("sqlite://").dialect)
    with pytest.raises(InvalidParams, match="not a JSON number"):
        plan.job({"value": math.nan}, 2_000.0)


@pytest.mark.trio
async def test_a_lone_enqueue_commits_at_once_and_stores_the_general_paths_row(
    sqlite_url: str,
) -> None:
    async with Runtime(sqlite_url, registry=_registry(), workers=False) as rt:
        general = await rt.enqueue("echo", {"value": "a"})  # the type's first: its plan
        before = rt.writer_statistics()
        lone = await rt.enqueue("echo", {"value": "b"})
        after = rt.writer_statistics()
        # Durable: another connection reads it as soon as enqueue returns.
        stored, other = _stored(sqlite_url, lone.id.hex), _stored(sqlite_url, general.id.hex)
        assert lone == await rt.get(lone.id)
    assert (after.alone, after.led, after.transactions) == (
        before.alone + 1,
        before.led,
        before.transactions + 1,
    )
    differ = {"id", "params", "scheduled_at", "created_at", "updated_at"}
    assert {k: v for k, v in stored.items() if k not in differ} == {
        k: v for k, v in other.items() if k not in differ
    }


@pytest.mark.trio
async def test_an_enqueue_with_options_takes_the_general_path(sqlite_url: str) -> None:
    async with Runtime(sqlite_url, registry=_registry(), workers=False) as rt:
        await rt.enqueue("echo", {"value": "a"})
        alone = rt.writer_statistics().alone
        job = await rt.enqueue("echo", {"value": "b"}, priority=3)
        await rt.enqueue("echo", {"value": "c"}, idempotency_key="k")
        assert job.priority == 3
        assert rt.writer_statistics().alone == alone


@pytest.mark.trio
async def test_a_lone_enqueue_waits_for_another_process_holding_the_write_lock(
    sqlite_url: str,
) -> None:
    async with Runtime(sqlite_url, registry=_registry(), workers=False) as rt:
        await rt.enqueue("echo", {"value": "a"})
        other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        stored: list[Job] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: _append(stored, rt.enqueue("echo", {"value": "b"})))
            await trio.sleep(0.05)  # the enqueue waits in a thread for the lock
            assert not stored
            other.rollback()
        other.close()
        assert await rt.count() == 2
        assert stored[0] == await rt.get(stored[0].id)


async def _append(out: list[Job], call: object) -> None:
    out.append(await call)  # type: ignore[misc]


@pytest.mark.trio
async def test_a_cancelled_lone_enqueue_stores_nothing(sqlite_url: str) -> None:
    async with Runtime(sqlite_url, registry=_registry(), workers=False) as rt:
        await rt.enqueue("echo", {"value": "a"})
        with trio.CancelScope() as scope:
            scope.cancel()
            await rt.enqueue("echo", {"value": "b"})
        assert scope.cancelled_caught
        assert await rt.count() == 1


@pytest.mark.trio
@pytest.mark.parametrize(("every", "yields"), [(0.0, True), (math.inf, False)])
async def test_lone_enqueues_let_other_tasks_run_once_per_slice(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch, every: float, yields: bool
) -> None:
    monkeypatch.setattr(writer_lead, "ALONE_PASS_EVERY", every)
    async with Runtime(sqlite_url, registry=_registry(), workers=False) as rt:
        await rt.enqueue("echo", {"value": "first"})  # the plan
        await rt.enqueue("echo", {"value": "second"})  # the first pass
        await trio.testing.wait_all_tasks_blocked()
        ran = trio.Event()
        seen: list[bool] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_set, ran)
            for n in range(20):
                await rt.enqueue("echo", {"value": n})
                seen.append(ran.is_set())
            await ran.wait()
        # A pass runs every runnable task once, in any order: after two, the
        # other task has run if the enqueues yielded; with no pass, never.
        assert seen[1] is yields
        assert any(seen) is yields
        assert rt.writer_statistics().alone >= 20


async def _set(event: trio.Event) -> None:
    event.set()


def test_a_forked_child_never_repeats_its_parents_random_bits() -> None:
    enqueue_module._random_bytes(10)  # the parent's buffer is full now
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next bits, to the parent
        try:
            os.write(write, enqueue_module._random_bytes(10))
        finally:
            os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 10)
    os.close(read)
    assert child != enqueue_module._random_bytes(10)
    assert len(child) == 10


@pytest.mark.trio
async def test_wal_checkpoints_are_spaced_in_time(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    started: list[float] = []

    def counted(engine: Engine) -> None:
        started.append(time.monotonic())

    monkeypatch.setattr(writer, "_checkpoint", counted)
    monkeypatch.setattr(writer, "CHECKPOINT_INTERVAL_MIN", 3600.0)
    async with Runtime(sqlite_url, registry=_registry(), workers=False) as rt:
        for n in range(3 * writer.CHECKPOINT_EVERY_DEFAULT):
            await rt.enqueue("echo", {"value": n})
        await trio.testing.wait_all_tasks_blocked()
    assert len(started) == 1  # the first after 50 transactions; the rest within the hour
