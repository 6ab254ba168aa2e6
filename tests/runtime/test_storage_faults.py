"""Storage faults at the unit level: the writer, its checkpoint, opening a store, outcomes.

A full disk is simulated on a real SQLite file by lowering ``max_page_count``
on the writer's connection (SQLite then answers ``SQLITE_FULL`` itself); the
chaos tests (``tests/chaos/test_storage.py``) fill a real filesystem.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
from pydantic import BaseModel
from sqlalchemy.engine import Engine

from actors import Claimed, Ended, Outcome
from runtime import JobContext, Registry, Runtime, StorageUnavailable, StoreUnusable
from runtime.jobs.outcomes import decide
from runtime.store import Store, writer
from tests.chaos.storage_support import PageCap, QueryOnly, corrupt_store
from tests.runtime.jobs import Journal, register


class Empty(BaseModel):
    pass


@pytest.mark.trio
async def test_a_full_store_fails_writes_clearly_and_takes_them_again_once_space_returns(
    registry: Registry, make_runtime: Callable[..., Runtime], tmp_path: Path
) -> None:
    register(registry, Journal())
    async with make_runtime() as rt:
        kept = await rt.enqueue("echo", {"value": "kept"}, delay=3600)
        await PageCap(tmp_path).fill(rt)
        with pytest.raises(StorageUnavailable, match="database or disk is full") as caught:
            for n in range(500):  # pages already free may take a few first
                await rt.enqueue("echo", {"value": "x" * 4000 + str(n)}, delay=3600)
        assert caught.value.retry_after > 0
        assert rt.writer_statistics().faults >= 1
        assert (await rt.get(kept.id)).params == {"value": "kept"}  # reads go on

        await PageCap(tmp_path).free(rt)
        # The failed COMMIT was rolled back: SQLAlchemy statements run again too.
        await rt._promote()
        again = await rt.enqueue("echo", {"value": "again"}, delay=3600)
        assert (await rt.get(again.id)).params == {"value": "again"}
        assert not rt.store.writer.storage_fault


@pytest.mark.trio
async def test_a_failing_wal_checkpoint_is_logged_not_fatal(
    registry: Registry,
    make_runtime: Callable[..., Runtime],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def full(engine: Engine) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(writer, "_checkpoint", full)
    monkeypatch.setattr(writer, "CHECKPOINT_INTERVAL_MIN", 0.0)
    register(registry, Journal())
    async with make_runtime() as rt:
        for n in range(2 * writer.CHECKPOINT_EVERY_DEFAULT + 1):
            await rt.enqueue("echo", {"value": n}, delay=3600)
        assert await rt.count() == 2 * writer.CHECKPOINT_EVERY_DEFAULT + 1
    failed = [r for r in caplog.records if "WAL checkpoint failed" in r.getMessage()]
    assert failed and failed[0].levelno == logging.WARNING


def test_a_corrupt_file_is_refused_at_open(tmp_path: Path) -> None:
    path = tmp_path / "corrupt.db"
    corrupt_store(path)
    with pytest.raises(StoreUnusable, match=r"is corrupt \(Page \d+: .*\.recover"):
        Store(f"sqlite:///{path}")


def test_a_handler_that_overran_its_deadline_ends_timeout() -> None:
    row = {"timeout": 2.0, "attempt": 1, "max_retries": 0, "retry_delay": 1.0}
    outcome = Outcome(Claimed("j", "q", 2.0), Ended.OVERRAN, value="late", duration=30.0)
    values = decide(outcome, row, now=100.0, blocked=29.5)
    assert values["status"] == "timeout" and "result" not in values
    assert values["error"] == (
        "timeout could not fire: the handler blocked the event loop for 29.5 s "
        "(timeout 2s, attempt 1)"
    )
    # Without the watchdog: how long it ran past its deadline, at least.
    unknown = decide(outcome, row, now=100.0)
    assert "blocked the event loop for 28.0 s" in unknown["error"]


@pytest.mark.trio
async def test_an_outcome_that_meets_a_fault_is_kept_and_lands_once_writes_work_again(
    registry: Registry, make_runtime: Callable[..., Runtime]
) -> None:
    release = anyio.Event()
    started = anyio.Event()

    @registry.job(name="waits", max_retries=0)
    async def waits(ctx: JobContext, params: Empty) -> str:
        started.set()
        await release.wait()
        return "landed"

    async with make_runtime() as rt:
        job = await rt.enqueue("waits")
        await started.wait()
        await rt.store.write(QueryOnly(True))
        release.set()
        with anyio.fail_after(10):
            while rt.writer_statistics().held == 0:  # the outcome met the fault
                await rt.store.writer.submit(QueryOnly(True)).settled()
        assert (await rt.get(job.id)).status == "running"  # nothing lost, nothing made up
        with pytest.raises(StorageUnavailable, match="readonly"):
            await rt.enqueue("waits")

        # A write that works (the kept one follows it): alone in its batch, that is,
        # not beside the kept outcome tried again.
        with anyio.fail_after(10):
            while True:
                turned = rt.store.writer.submit(QueryOnly(False))
                await turned.settled()
                if turned.error is None:
                    break
        with anyio.fail_after(10):
            done = await rt.wait(job.id)
        assert (done.status, done.result) == ("completed", "landed")
        assert rt.writer_statistics().held == 0
