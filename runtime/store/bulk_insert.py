"""Many new rows in one SQLite statement: the varying columns travel as one JSON document.

``executemany`` binds every column of every row through Python's ``sqlite3``,
which for a 39-column job row costs more than SQLite's own work of storing
it. The rows of a bulk enqueue differ in a few columns only (the id and the
params, say). So the statement binds the shared columns once and reads the
varying ones from a JSON array of arrays that SQLite walks itself::

    INSERT INTO t (a, b, c) SELECT ?, value ->> 0, value -> 1 FROM json_each(?)

A varying value goes in the document as its bind processor makes it (a
UUID as its hex text) and comes out as an SQL value (``->>``); a JSON
column's value goes in as it is and comes out as its JSON text (``->``), which
is what the column stores. SQLite reads JSON numbers back as the same
doubles Python wrote, and keeps a nested number's digits (both checked in
the tests).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, Table
from sqlalchemy.engine import Connection, Dialect

Row = dict[str, Any]
Processor = Callable[[Any], Any] | None

# Only SQLite has json_each: keyed by table and columns, not by dialect.
_SQL_CACHE: dict[tuple[str, tuple[str, ...], tuple[str, ...]], str] = {}
_PROCESSORS: dict[tuple[str, str], Processor] = {}


def insert_rows(
    conn: Connection, table: Table, columns: Sequence[str], rows: list[Row], varying: Sequence[str]
) -> bool:
    """Insert ``rows`` (each with every name in ``columns``) in one statement.

    ``varying`` names the only columns whose values may differ between rows:
    every other column is taken from the first row, once. The caller vouches
    for that (``runtime.jobs.enqueue.PER_JOB_COLUMNS`` says which columns a bulk
    enqueue sets per job). Returns False, having stored nothing, when a
    varying value is one the document cannot carry (NaN or an infinity, which
    JSON cannot spell; a lone surrogate, which UTF-8 cannot): the caller then
    stores the rows another way.
    """
    return execute(conn, statement(conn.dialect, table, columns, rows, varying))


def execute(conn: Connection, found: tuple[str, list[Any]] | None) -> bool:
    """Run a statement of :func:`statement` or :func:`columns_statement`; False,
    having stored nothing, when there is none or its document cannot be bound."""
    if found is None:
        return False
    sql, params = found
    try:
        conn.connection.driver_connection.execute(sql, params)  # type: ignore[union-attr]
    except UnicodeEncodeError:
        # A lone surrogate (ensure_ascii=False leaves it raw) has no UTF-8: sqlite3
        # refuses to bind the document before running anything; the row-by-row
        # path's JSON processor escapes it. Caught here, it costs the fast path nothing.
        return False
    return True


def statement(
    dialect: Dialect, table: Table, columns: Sequence[str], rows: list[Row], varying: Sequence[str]
) -> tuple[str, list[Any]] | None:
    """The statement :func:`insert_rows` runs and its parameters, or None when a
    varying value is one the document cannot carry (NaN, an infinity)."""
    # A varying column that is NULL in every row (no keys, no lock) is shared.
    moving = [c for c in columns if c in varying and any(row[c] is not None for row in rows)]
    per_job = {c: [row[c] for row in rows] for c in moving}
    return columns_statement(dialect, table, columns, rows[0], per_job)


def columns_statement(
    dialect: Dialect,
    table: Table,
    columns: Sequence[str],
    shared: Row,
    per_job: Mapping[str, Sequence[Any]],
) -> tuple[str, list[Any]] | None:
    """As :func:`statement`, for rows given as the values they share (``shared``,
    every name in ``columns``) and the columns set per row (``per_job``, in the
    order of ``columns``, each as long as the others): no row is built."""
    moving = tuple(per_job)
    shared_names = tuple(c for c in columns if c not in per_job)
    params = [_processed(table, c, dialect, shared[c]) for c in shared_names]
    # JSON columns go in as they are (``->`` gives their JSON text), others processed.
    documented = []
    for name, values in per_job.items():
        proc = None if _is_json(table, name) else _processor(table, name, dialect)
        documented.append(values if proc is None else list(map(proc, values)))
    try:
        # json encodes the tuples zip makes as arrays: one per row.
        document = json.dumps(
            list(zip(*documented, strict=True)), ensure_ascii=False, allow_nan=False
        )
    except ValueError:  # NaN or an infinity: SQLite's JSON has no spelling for them
        return None
    return _statement(dialect, table, shared_names, moving), [*params, document]


def _statement(
    dialect: Dialect, table: Table, shared: tuple[str, ...], moving: tuple[str, ...]
) -> str:
    key = (table.name, shared, moving)
    sql = _SQL_CACHE.get(key)
    if sql is None:
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(c) for c in (*shared, *moving))
        reads = [f"value {'->' if _is_json(table, c) else '->>'} {i}" for i, c in enumerate(moving)]
        values = ", ".join(["?"] * len(shared) + reads)
        sql = f"INSERT INTO {quote(table.name)} ({names}) SELECT {values} FROM json_each(?)"
        _SQL_CACHE[key] = sql
    return sql


def _is_json(table: Table, column: str) -> bool:
    return isinstance(table.c[column].type, JSON)


def _processor(table: Table, column: str, dialect: Any) -> Processor:
    key = (table.name, column)
    if key not in _PROCESSORS:
        _PROCESSORS[key] = table.c[column].type._cached_bind_processor(dialect)
    return _PROCESSORS[key]


def _processed(table: Table, column: str, dialect: Any, value: Any) -> Any:
    proc = _processor(table, column, dialect)
    return value if proc is None else proc(value)
