"""enqueue_in: a job stored in the caller's transaction exists if and only if
that transaction commits (a SQLAlchemy connection or session, or psycopg)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import trio
from sqlalchemy import Engine, create_engine
from sqlalchemy.orm import Session

from runtime import JobNotFound, JobStatus, Registry, Runtime, enqueue_in
from tests.conftest import QUIET
from tests.runtime.jobs import Journal, register

pytestmark = pytest.mark.trio


@pytest.fixture
def jobs_registry(registry: Registry) -> Registry:
    register(registry, Journal())
    return registry


@pytest.fixture
def user_engine(store_url: str) -> Iterator[Engine]:
    """The application's own engine on the store's database."""
    engine = create_engine(store_url.replace("postgresql://", "postgresql+psycopg://"))
    yield engine
    engine.dispose()


async def _exists(rt: Runtime, job_id: object) -> bool:
    try:
        await rt.get(job_id)  # type: ignore[arg-type]
    except JobNotFound:
        return False
    return True


async def test_a_job_enqueued_in_a_sqlalchemy_transaction_exists_iff_it_commits(
    store_url: str, jobs_registry: Registry, user_engine: Engine
) -> None:
    async with Runtime(store_url, registry=jobs_registry, workers=False, **QUIET) as rt:  # type: ignore[arg-type]
        with user_engine.connect() as conn:
            conn.begin()
            kept = enqueue_in(conn, "echo", {"value": "kept"}, registry=jobs_registry)
            assert not await _exists(rt, kept.id)  # not before the commit
            conn.commit()
        assert (await rt.get(kept.id)).status is JobStatus.WAITING
        with Session(user_engine) as session:
            dropped = enqueue_in(session, "echo", {"value": "dropped"}, registry=jobs_registry)
            session.rollback()
        assert not await _exists(rt, dropped.id)


async def test_a_job_enqueued_on_a_psycopg_connection_is_the_callers_to_commit(
    postgres_url: str, jobs_registry: Registry
) -> None:
    async with Runtime(postgres_url, registry=jobs_registry, workers=False, **QUIET) as rt:  # type: ignore[arg-type]
        with psycopg.connect(postgres_url) as conn:
            dropped = enqueue_in(conn, "echo", {"value": 1}, registry=jobs_registry)
            assert conn.info.transaction_status is psycopg.pq.TransactionStatus.INTRANS
            conn.rollback()
            kept = enqueue_in(conn, "echo", {"value": 2}, registry=jobs_registry)
            again = enqueue_in(conn, "echo", {}, registry=jobs_registry, idempotency_key="k")
            same = enqueue_in(conn, "echo", {}, registry=jobs_registry, idempotency_key="k")
            conn.execute("SELECT 1")  # still the caller's connection, still open
            conn.commit()
        assert not await _exists(rt, dropped.id)
        assert await _exists(rt, kept.id) and same.id == again.id
        assert await rt.count() == 2


async def test_workers_run_a_job_once_its_transaction_commits(
    store_url: str, jobs_registry: Registry, user_engine: Engine
) -> None:
    settings: dict[str, Any] = {**QUIET, "poll_interval": 0.05, "grace_period": 5.0}
    async with Runtime(store_url, registry=jobs_registry, **settings) as rt:
        with user_engine.begin() as conn:
            job = enqueue_in(conn, "echo", {"value": "done"}, registry=jobs_registry)
        with trio.fail_after(10):
            done = await rt.wait(job.id)
    assert done.status is JobStatus.COMPLETED and done.result == "done"


async def test_a_commit_wakes_idle_workers_on_postgres_without_a_poll(
    postgres_url: str, jobs_registry: Registry
) -> None:
    settings: dict[str, Any] = {**QUIET, "grace_period": 5.0}  # the poll never comes
    engine = create_engine(postgres_url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        async with Runtime(postgres_url, registry=jobs_registry, **settings) as rt:
            with engine.begin() as conn:
                job = enqueue_in(conn, "echo", {"value": "woken"}, registry=jobs_registry)
            with trio.fail_after(10):
                done = await rt.wait(job.id)
    finally:
        engine.dispose()
    assert done.status is JobStatus.COMPLETED and done.result == "woken"


async def test_anything_else_is_refused(jobs_registry: Registry) -> None:
    with pytest.raises(TypeError, match="SQLAlchemy Connection or Session or a psycopg"):
        enqueue_in(object(), "echo", {}, registry=jobs_registry)
    engine = create_engine("sqlite://")
    with engine.connect() as conn, pytest.raises(TypeError, match="psycopg 3 or sqlite"):
        conn.dialect.driver = "pg8000"  # as if it were another driver
        enqueue_in(conn, "echo", {}, registry=jobs_registry)
