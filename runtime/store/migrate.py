"""Versioned schema migrations (Alembic), for SQLite and PostgreSQL alike.

The revisions live in ``runtime/store/migrations/versions`` (inside the
package, so an installed callboard can migrate its store). The store's
revision is kept in ``callboard_schema_version``. A store made before
migrations existed (tables but no version table) is stamped with the
baseline, the schema of the first release, and upgraded from there.

Opening a store checks the revision first and runs nothing when it is
current: most opens cost one small read. An empty database gets the tables
of :mod:`runtime.store.tables` at once and is stamped with the head (the
Alembic cookbook's way: running every revision costs 30 ms more per new
store, and the tests make hundreds); tests/runtime/test_migrations.py checks
that the revisions, run from empty, build exactly that schema.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from alembic.config import Config
from alembic.runtime.environment import EnvironmentContext
from alembic.runtime.migration import MigrationContext, RevisionStep
from alembic.script import ScriptDirectory
from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from runtime.domain.errors import SchemaNotCurrent
from runtime.store import tables  # noqa: F401  (the tables, in SQLModel.metadata)

VERSION_TABLE = "callboard_schema_version"
BASELINE = "0001"
_MIGRATIONS = Path(__file__).with_name("migrations")
_OPTIONS = {"version_table": VERSION_TABLE}


@cache
def _scripts() -> ScriptDirectory:
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    return ScriptDirectory.from_config(config)


def head() -> str:
    """The revision this version of callboard needs."""
    found = _scripts().get_current_head()
    assert found is not None
    return found


def current(conn: Connection) -> str | None:
    """The store's revision; None for an empty database (or one from before
    migrations: see :func:`upgrade`)."""
    return MigrationContext.configure(conn, opts=_OPTIONS).get_current_revision()


def upgrade(conn: Connection, *, from_empty: bool = False) -> list[str]:
    """Bring the store on ``conn`` to :func:`head`, in the caller's transaction;
    return the revisions applied (none when it was current). An empty database
    gets the current tables directly, unless ``from_empty`` (tests)."""
    found = current(conn)
    if found == head():
        return []
    if found is None and not from_empty and not _has_tables(conn):
        SQLModel.metadata.create_all(conn)
        MigrationContext.configure(conn, opts=_OPTIONS).stamp(_scripts(), head())
        return [head()]
    scripts = _scripts()
    if found is not None and found not in _known():
        check_current(conn, "")  # newer than this version: raises
    config = Config()
    config.set_main_option("script_location", str(_MIGRATIONS))
    applied: list[str] = []

    def steps(rev: Any, _context: MigrationContext) -> list[RevisionStep]:
        planned = scripts._upgrade_revs(head(), rev)
        applied.extend(step.revision.revision for step in planned)
        return planned

    with EnvironmentContext(config, scripts, fn=steps, destination_rev=head()) as env:
        env.configure(connection=conn, version_table=VERSION_TABLE)
        if current(conn) is None and _has_tables(conn):
            env.get_context().stamp(scripts, BASELINE)  # made before migrations existed
        env.run_migrations()
    return applied


def check_current(conn: Connection, url: str) -> None:
    """Raise :class:`SchemaNotCurrent` unless the store is at :func:`head`."""
    found = current(conn)
    if found == head():
        return
    if found is None and not _has_tables(conn):
        what = "the database has no callboard tables yet"
    elif found is None:
        what = "the store was made before schema versions"
    else:
        what = f"the store's schema is at revision {found}"
    if found is not None and found not in _known():
        raise SchemaNotCurrent(
            f"{what}, which this callboard does not know (it needs {head()}): "
            "a newer callboard migrated it; run that version"
        )
    raise SchemaNotCurrent(
        f"{what}; this callboard needs revision {head()}: "
        f"run `callboard migrate --db {url}` (or start without --no-migrate)"
    )


def _known() -> set[str]:
    return {script.revision for script in _scripts().walk_revisions()}


def _has_tables(conn: Connection) -> bool:
    return "callboard_jobs" in inspect(conn).get_table_names()
