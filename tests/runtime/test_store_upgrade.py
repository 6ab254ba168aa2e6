"""Opening a store made before a version added columns adds them, keeping the data."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from runtime import JobStatus, Registry, Runtime
from runtime.store.upgrade import UnupgradableColumn, add_missing_columns
from tests.runtime.jobs import Journal, register

# The columns added after the first release, as a store made before lacks them.
ADDED = {
    "callboard_jobs": (
        "description",
        "cancel_reason",
        "check_in_at",
        "wall_time",
        "cpu_time",
        "peak_memory",
        "has_dependents",  # NOT NULL with a default: added as false
    ),
    "callboard_schedules": ("queue", "user_id"),
}


def _drop_added_columns(url: str) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as conn:
        for table, columns in ADDED.items():
            for column in columns:
                conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {column}")
    engine.dispose()


@pytest.mark.trio
async def test_an_older_store_gains_the_new_columns_and_keeps_its_jobs(
    store_url: str, registry: Registry, make_runtime: Callable[..., Runtime]
) -> None:
    register(registry, Journal())
    async with make_runtime(url=store_url, workers=False) as rt:
        old = await rt.enqueue("echo", {"value": 1}, delay=600, tenant_id="t")
        await rt.add_schedule("echo", {"value": 2}, every=60, name="tick")
    _drop_added_columns(store_url)
    async with make_runtime(url=store_url, workers=False) as rt:
        kept = await rt.get(old.id)
        dependent = await rt.enqueue("echo", {}, depends_on=[old.id])
        canceled = await rt.cancel(old.id, reason="after the upgrade")
        skipped = await rt.get(dependent.id)
        schedules = await rt.schedules()
    assert (kept.params, kept.tenant_id, kept.status) == ({"value": 1}, "t", JobStatus.SCHEDULED)
    assert kept.description is None and kept.cancel_reason is None
    assert canceled.cancel_reason == "after the upgrade"
    assert (dependent.status, skipped.status) == (JobStatus.BLOCKED, JobStatus.SKIPPED)
    assert [s.name for s in schedules] == ["tick"]


def test_a_new_column_without_a_default_is_refused_by_name(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path}/old.db")
    old, new = sa.MetaData(), sa.MetaData()
    sa.Table("t", old, sa.Column("id", sa.Integer, primary_key=True))
    sa.Table(
        "t",
        new,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("n", sa.Integer, nullable=False, default=3),
        sa.Column("s", sa.String, nullable=True),
    )
    with engine.begin() as conn:
        old.create_all(conn)
        conn.exec_driver_sql("INSERT INTO t (id) VALUES (1)")
        assert add_missing_columns(conn, new) == ["t.n", "t.s"]
        assert conn.exec_driver_sql("SELECT id, n, s FROM t").all() == [(1, 3, None)]
        sa.Table("t", new, sa.Column("m", sa.Integer, nullable=False), extend_existing=True)
        with pytest.raises(UnupgradableColumn, match=r"t\.m is NOT NULL without a constant"):
            add_missing_columns(conn, new)
    engine.dispose()
