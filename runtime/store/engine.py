"""Engines for the supported databases, tuned for a job store.

A store that cannot be opened (read-only, not a database, corrupt,
unreachable) raises :class:`StoreUnusable`, whose message says what is wrong
and how to fix it: nothing starts on a store it could not use.
"""

from __future__ import annotations

import sqlite3
import weakref
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, make_url

from runtime.domain.errors import StoreUnusable
from runtime.domain.extras import require
from runtime.store.faults import describe
from runtime.store.migrate import check_current, current, head, upgrade

SQLITE_BUSY_TIMEOUT_MS_DEFAULT = 5000
POSTGRES_POOL_SIZE_DEFAULT = 10
SQLITE_STATEMENT_CACHE = 512
# The URL's own setting of psycopg's server-side prepared statements: a number
# (prepare a statement once it ran that many times; psycopg's default is 5),
# or "none" for never, which pgbouncer before 1.21 in transaction mode needs.
PREPARE_THRESHOLD_PARAM = "prepare_threshold"

# The connect arguments each PostgreSQL engine was made with, for connections
# made outside its pool (the leader's).
_CONNECT_ARGS: weakref.WeakKeyDictionary[Engine, dict[str, Any]] = weakref.WeakKeyDictionary()


def open_engine(url: str, *, migrate: bool = True) -> Engine:
    """Create the engine for ``url``, and create or upgrade its schema
    (:mod:`runtime.store.migrate`); with ``migrate=False`` a schema that is not
    current raises :class:`SchemaNotCurrent` instead.

    ``sqlite:///path`` (the embedded default) or ``postgresql://...`` (psycopg 3;
    several runtimes on several hosts may share it; ``?prepare_threshold=none``
    turns prepared statements off, for pgbouncer in transaction mode).
    """
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "postgresql":
        require("postgres", "a PostgreSQL store")
        return _open_postgres(parsed.set(drivername="postgresql+psycopg"), migrate)
    if backend != "sqlite":
        raise ValueError(
            f"unsupported database URL {url!r}: use sqlite:///PATH or postgresql://..."
        )
    if parsed.database in (None, "", ":memory:"):
        raise ValueError(f"{url!r}: an in-memory SQLite database cannot be shared; use a file")
    # A larger statement cache: hot statements come in a few spellings each
    # (see ``fast.Prepared``), and a miss means compiling the SQL again.
    engine = create_engine(
        url,
        connect_args={"check_same_thread": False, "cached_statements": SQLITE_STATEMENT_CACHE},
    )
    _tune_sqlite(engine)
    path = Path(parsed.database)
    try:
        with engine.begin() as conn:
            _check_sqlite(conn, path)
            _create_schema(conn, migrate, url)
    except (sa_exc.DBAPIError, sqlite3.Error) as err:
        engine.dispose()
        raise _sqlite_unusable(path, err) from err
    except StoreUnusable:
        engine.dispose()
        raise
    return engine


def _check_sqlite(conn: Connection, path: Path) -> None:
    """Refuse a corrupt file before anything runs on it. ``quick_check`` reads
    every page once (0.7 s for a 100 MB store of 200,000 jobs) but skips the
    index cross-checks that make ``integrity_check`` slow."""
    found = [row[0] for row in conn.exec_driver_sql("PRAGMA quick_check(1)")]
    if found != ["ok"]:
        first = str(found[0]).replace("*** in database main ***", "") if found else "no answer"
        problem = " ".join(first.split())
        raise StoreUnusable(_corrupt(path, problem))


def _corrupt(path: Path, problem: str) -> str:
    return (
        f"the SQLite file {path} is corrupt ({problem}): restore it from a backup, "
        f"or salvage what is left with `sqlite3 {path} .recover | sqlite3 NEW.db`"
    )


def _sqlite_unusable(path: Path, err: BaseException) -> StoreUnusable:
    """What is wrong with the SQLite file, in one line, and how to fix it."""
    orig = getattr(err, "orig", err)
    name = getattr(orig, "sqlite_errorname", "") or ""
    if name.startswith("SQLITE_NOTADB"):
        text = f"{path} is not an SQLite database: point --db at a Callboard store or a new file"
    elif name.startswith("SQLITE_CORRUPT"):
        text = _corrupt(path, describe(err))
    elif name.startswith("SQLITE_READONLY") or (
        name.startswith("SQLITE_CANTOPEN") and path.exists()
    ):
        text = (
            f"the SQLite file {path} cannot be written ({describe(err)}): the store needs "
            "write access to the file and its folder (for its -wal and -shm files)"
        )
    elif name.startswith("SQLITE_CANTOPEN"):
        text = (
            f"cannot create the SQLite file {path} ({describe(err)}): "
            "check that its folder exists and is writable"
        )
    elif name.startswith("SQLITE_FULL"):
        text = f"no space left for the SQLite file {path}: free some disk space"
    else:
        text = f"cannot open the SQLite file {path}: {describe(err)}"
    return StoreUnusable(text)


def _open_postgres(url: URL, migrate: bool) -> Engine:
    connect_args = _postgres_connect_args(url)
    engine = create_engine(
        url.difference_update_query([PREPARE_THRESHOLD_PARAM]),
        pool_size=POSTGRES_POOL_SIZE_DEFAULT,
        pool_pre_ping=True,
        connect_args=connect_args,
    )
    _CONNECT_ARGS[engine] = connect_args
    try:
        with engine.begin() as conn:
            # One schema creation at a time when several runtimes start together.
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(727274)")
            _create_schema(conn, migrate, url.render_as_string(hide_password=True))
    except sa_exc.DBAPIError as err:
        engine.dispose()
        where = url.render_as_string(hide_password=True).replace("+psycopg", "")
        raise StoreUnusable(
            f"cannot use PostgreSQL at {where}: {describe(err)}; check that the server "
            "runs, that the URL (--db) is right and that the user may create tables"
        ) from err
    return engine


def _postgres_connect_args(url: URL) -> dict[str, Any]:
    value = url.query.get(PREPARE_THRESHOLD_PARAM)
    if value is None:
        return {}
    if isinstance(value, tuple):
        value = value[-1]
    if value.lower() in ("none", "off", ""):
        return {"prepare_threshold": None}
    try:
        threshold = int(value)
    except ValueError:
        raise ValueError(
            f"{PREPARE_THRESHOLD_PARAM}={value!r} in the database URL: "
            "use a whole number >= 0, or none (never prepare)"
        ) from None
    if threshold < 0:
        raise ValueError(f"{PREPARE_THRESHOLD_PARAM} must be >= 0 or none, got {threshold}")
    return {"prepare_threshold": threshold}


def dedicated_connection(engine: Engine) -> Any:
    """A new DBAPI connection with ``engine``'s settings, outside its pool."""
    cargs, cparams = engine.dialect.create_connect_args(engine.url)
    cparams.update(_CONNECT_ARGS.get(engine, {}))
    return engine.dialect.connect(*cargs, **cparams)


def migrate_store(url: str) -> tuple[str | None, str]:
    """Create or upgrade the schema of the store at ``url``: (revision before, after)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "postgresql":
        require("postgres", "a PostgreSQL store")
        parsed = parsed.set(drivername="postgresql+psycopg")
    elif parsed.get_backend_name() != "sqlite":
        open_engine(url)  # refuses it with a clear error
    engine = create_engine(parsed.difference_update_query([PREPARE_THRESHOLD_PARAM]))
    try:
        with engine.connect() as conn:
            before = current(conn)
    finally:
        engine.dispose()
    open_engine(url).dispose()
    return before, head()


def _create_schema(conn: Connection, migrate: bool, url: str) -> None:
    """Upgrade the schema to this version's (create it in an empty database),
    or with ``migrate=False`` check that it is current."""
    if migrate:
        upgrade(conn)
    else:
        check_current(conn, url)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS_DEFAULT}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def begin(conn: Connection) -> None:
        if conn.connection.driver_connection.in_transaction:  # type: ignore[union-attr]
            return  # the store writer began it on the DBAPI connection: join it
        # Writers take the write lock up front: upgrading a read transaction
        # later could fail with SQLITE_BUSY without waiting.
        mode = conn.get_execution_options().get("callboard_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")


def writer_connection(engine: Engine) -> Connection:
    return engine.connect().execution_options(callboard_begin="IMMEDIATE")
