"""Versioned migrations: from empty, from the last release's store, data kept."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import uuid
import warnings
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect
from sqlalchemy.engine import make_url
from sqlmodel import SQLModel

from runtime import JobStatus, Runtime, SchemaNotCurrent
from runtime.store.engine import open_engine
from runtime.store.migrate import BASELINE, VERSION_TABLE, current, head, upgrade

FIXTURE = Path(__file__).with_name("data") / "store_b295512.db"
COMPLETED = uuid.UUID("01a24c53-2752-7292-92fd-e027632bee91")


def schema_differences(url: str) -> list[object]:
    """What Alembic's autogenerate would change to make the store match the tables."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed)
    try:
        with engine.connect() as conn, warnings.catch_warnings():
            warnings.simplefilter("ignore")  # reflection skips expression indexes
            context = MigrationContext.configure(
                conn, opts={"version_table": VERSION_TABLE, "compare_type": True}
            )
            return list(compare_metadata(context, SQLModel.metadata))
    finally:
        engine.dispose()


def revision_of(url: str) -> str | None:
    engine = open_engine(url)
    try:
        with engine.connect() as conn:
            return current(conn)
    finally:
        engine.dispose()


def old_store(tmp_path: Path) -> str:
    path = tmp_path / "old.db"
    shutil.copy(FIXTURE, path)
    return f"sqlite:///{path}"


def test_the_revisions_run_from_empty_build_exactly_the_tables(store_url: str) -> None:
    parsed = make_url(store_url)
    if parsed.get_backend_name() == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    engine = create_engine(parsed)
    with engine.begin() as conn:
        assert upgrade(conn, from_empty=True) == ["0001", *_after_baseline()]
        assert current(conn) == head()
    engine.dispose()
    assert schema_differences(store_url) == []


def _after_baseline() -> list[str]:
    from runtime.store.migrate import _scripts

    revisions = [s.revision for s in _scripts().walk_revisions()]
    return list(reversed(revisions))[1:]


def test_an_empty_database_opens_at_the_head_revision(store_url: str) -> None:
    assert revision_of(store_url) == head()
    assert schema_differences(store_url) == []
    assert revision_of(store_url) == head()  # a second open changes nothing


@pytest.mark.trio
async def test_the_last_release_store_is_upgraded_with_its_data_kept(tmp_path: Path) -> None:
    url = old_store(tmp_path)
    async with Runtime(url, workers=False) as rt:
        done = await rt.get(COMPLETED, tenant_id="acme")
        later = await rt.get_by_idempotency_key("later", tenant_id="acme")
        schedule = await rt.get_schedule("hourly")
        assert later is not None  # a column added since the release takes values
        canceled = await rt.cancel(later.id, reason="after the upgrade", tenant_id="acme")
    assert canceled.cancel_reason == "after the upgrade"
    assert done.status is JobStatus.COMPLETED and done.result == 3
    assert (
        later is not None
        and later.status is JobStatus.SCHEDULED
        and later.params == {"a": 3, "b": 4}
    )
    assert schedule.job_type == "fixture.add" and schedule.params == {"a": 7, "b": 8}
    assert revision_of(url) == head()
    assert schema_differences(url) == []
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        names = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
    assert "ux_callboard_jobs_tenant_lock" in names and "ux_callboard_jobs_lock_holder" not in names


def test_a_store_from_before_versions_with_later_changes_is_stamped_then_upgraded(
    store_url: str,
) -> None:
    engine = open_engine(store_url)
    with engine.begin() as conn:  # as a pre-Alembic build after the release left it
        conn.exec_driver_sql(f"DROP TABLE {VERSION_TABLE}")
        conn.exec_driver_sql("CREATE INDEX ix_callboard_jobs_status ON callboard_jobs (status)")
    engine.dispose()
    assert revision_of(store_url) == head()
    assert schema_differences(store_url) == []
    engine = open_engine(store_url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        names = {ix["name"] for ix in inspect(engine).get_indexes("callboard_jobs")}
    engine.dispose()
    assert "ix_callboard_jobs_status" not in names


def test_without_migrate_a_store_behind_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    url = old_store(tmp_path)
    with pytest.raises(SchemaNotCurrent, match=r"callboard migrate --db sqlite:///"):
        open_engine(url, migrate=False)
    with sqlite3.connect(url.removeprefix("sqlite:///")) as conn:
        tables = {n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert VERSION_TABLE not in tables
    open_engine(url).dispose()
    open_engine(url, migrate=False).dispose()  # current now: accepted


def test_a_store_a_newer_version_migrated_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    open_engine(url).dispose()
    with sqlite3.connect(tmp_path / "s.db") as conn:
        conn.execute(f"UPDATE {VERSION_TABLE} SET version_num = '9999'")
    for migrate in (True, False):
        with pytest.raises(SchemaNotCurrent, match="a newer callboard migrated it"):
            open_engine(url, migrate=migrate)


def callboard(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "runtime.cli", *args],
        cwd=cwd,
        env={**os.environ, "CALLBOARD_HOOK_SECRET": "s"},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_callboard_migrate_upgrades_and_serve_no_migrate_refuses_in_one_line(
    tmp_path: Path,
) -> None:
    url = old_store(tmp_path)
    refused = callboard("worker", "--db", url, "--no-migrate", cwd=tmp_path)
    assert refused.returncode == 7, refused.stderr
    assert refused.stderr.count("\n") == 1 and "run `callboard migrate --db" in refused.stderr
    done = callboard("migrate", "--db", url, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"schema upgraded from revision none to {head()}\n"
    again = callboard("migrate", "--db", url, cwd=tmp_path)
    assert again.stdout == f"schema already at revision {head()}\n"
    assert revision_of(url) == head() != BASELINE
