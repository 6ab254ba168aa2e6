"""Hot statements, compiled once from the Core tables and run on the DBAPI cursor.

SQLAlchemy Core spends tens of microseconds building, caching and binding
each statement; the hot paths (insert jobs, claim, finish, append logs) run
thousands of them a second. A :class:`Prepared` statement is compiled once
per dialect from the same Core statement the slow path would use (the
tables stay the single source of truth), keeps the type processors of its
bound parameters and result columns (UUIDs, JSON, booleans), and executes on
the raw DBAPI connection inside the writer's transaction.

It serves both drivers the store supports: Python's ``sqlite3`` (positional
"qmark" parameters) and psycopg 3 (named "pyformat" parameters; it decodes
UUIDs, JSON, floats and booleans itself, so its rows need no result
processing).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from operator import itemgetter
from typing import Any

from sqlalchemy import Table
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql import ClauseElement

Row = dict[str, Any]
Processor = Callable[[Any], Any] | None

_CACHE: dict[tuple[str, Hashable], Prepared] = {}


def dbapi(conn: Connection) -> Any:
    """The DBAPI connection under ``conn`` (inside its current transaction)."""
    return conn.connection.driver_connection


def prepared(
    conn: Connection,
    key: Hashable,
    build: Callable[[], ClauseElement],
    column_keys: Sequence[str] | None = None,
) -> Prepared:
    """The statement ``build()`` compiled for ``conn``'s dialect, cached under ``key``.

    ``column_keys`` names the columns an INSERT or UPDATE sets from the
    parameters (as Core does for ``conn.execute(stmt, {...})``).
    """
    return prepared_for(conn.dialect, key, build, column_keys)


def prepared_for(
    dialect: Dialect,
    key: Hashable,
    build: Callable[[], ClauseElement],
    column_keys: Sequence[str] | None = None,
) -> Prepared:
    """:func:`prepared` for a dialect, outside any connection."""
    found = _CACHE.get((dialect.name, key))
    if found is None:
        found = Prepared(build(), dialect, column_keys)
        _CACHE[(dialect.name, key)] = found
    return found


_VARIANTS_MAX = 256
"""Spellings of one statement kept, by which of its parameters are None."""


class Executed:
    """What an ``executemany`` did."""

    __slots__ = ("rowcount",)

    def __init__(self, rowcount: int) -> None:
        self.rowcount = rowcount


class Prepared:
    """One compiled statement: SQL text, parameter order and type processors."""

    __slots__ = (
        "_binds",
        "_decode",
        "_dollar",
        "_getter",
        "_named",
        "_names",
        "_pieces",
        "_processed",
        "_results",
        "_variants",
        "sql",
    )

    def __init__(
        self, stmt: ClauseElement, dialect: Dialect, column_keys: Sequence[str] | None = None
    ) -> None:
        compiled = stmt.compile(
            dialect=dialect, column_keys=list(column_keys) if column_keys is not None else None
        )
        self.sql = str(compiled)
        binds = compiled.binds  # type: ignore[attr-defined]
        if "POSTCOMPILE" in self.sql:
            raise ValueError(f"IN lists cannot be prepared: {self.sql}")
        # Unchecked: most parameters have no value until execution.
        constants = compiled.construct_params(_check=False) or {}  # type: ignore[call-arg]
        positions: Sequence[str] | None = compiled.positiontup  # type: ignore[attr-defined]
        # Named parameters (psycopg) go as a dict, positional ones (sqlite3) as a list.
        self._named = positions is None
        names: Sequence[str] = list(constants) if positions is None else positions
        self._names = tuple(names)
        # Per parameter: its name, the statement's own value, its processor and
        # what that makes of None (computed once: JSON turns None into 'null').
        self._binds: tuple[tuple[str, Any, Processor, Any], ...] = tuple(
            (n, constants.get(n), proc, None if proc is None else proc(None))
            for n in names
            for proc in (binds[n].type._cached_bind_processor(dialect),)
        )
        # psycopg converts a statement of more than 50 parameters (a job row's
        # INSERT has 51) from its own placeholders anew on every run: about 160 us.
        # Such a one is converted here once, to PostgreSQL's, for a raw cursor.
        wide = self._named and len(names) > PSYCOPG_CACHED_PARAMS_MAX
        self._dollar = _dollar_placeholders(self.sql, self._names) if wide else None
        # The SQL split at its placeholders, to spell a None parameter as NULL
        # (see ``_statement``); None when a '?' could be something else.
        pieces = self.sql.split("?")
        self._pieces = pieces if not self._named and len(pieces) == len(names) + 1 else None
        # Every value read in one call when the statement has no values of its own:
        # the positions that need processing, and what each makes of None.
        no_defaults = all(default is None for _, default, _, _ in self._binds)
        self._getter = itemgetter(*names) if no_defaults and len(names) > 1 else None
        self._processed = tuple(
            (index, proc, none)
            for index, (_, _, proc, none) in enumerate(self._binds)
            if proc is not None
        )
        self._variants: dict[tuple[int, ...], str] = {}
        self._results: dict[str, Callable[[Any], Any]] = {}
        self._decode: tuple[tuple[str, ...], tuple[tuple[int, str, Any], ...]] | None = None
        if dialect.name == "postgresql":
            return  # psycopg returns every column type of ours decoded
        for column in getattr(stmt, "_returning", ()) or getattr(stmt, "selected_columns", ()):
            if hasattr(column, "type") and hasattr(column, "name"):
                proc = column.type._cached_result_processor(dialect, None)
                if proc is not None:
                    self._results[column.name] = proc

    def params(self, values: Mapping[str, Any]) -> Any:
        """The parameters for ``values`` (missing names take the statement's): a
        list in the statement's order, or for named parameters a dict."""
        out: list[Any] = []
        append = out.append
        get = values.get
        for name, default, proc, none in self._binds:
            value = get(name, default)
            if proc is None:
                append(value)
            elif value is None:
                append(none)
            else:
                append(proc(value))
        return dict(zip(self._names, out, strict=True)) if self._named else out

    def bound(self, values: Mapping[str, Any]) -> tuple[str, Any]:
        """The SQL and parameters that :meth:`execute` runs for ``values``: those of
        :meth:`params`, with every None written as NULL in the SQL (see
        :meth:`_statement`), in one pass over them."""
        if self._dollar is not None:  # run on a raw cursor (see ``execute``)
            return self._dollar, list(self.params(values).values())
        if self._pieces is None:
            return self.sql, self.params(values)
        if self._getter is not None:
            try:
                return self._bound_at_once(values)
            except KeyError:  # a name missing from ``values``: read one by one
                pass
        out: list[Any] = []
        append = out.append
        get = values.get
        nulls: list[int] = []
        for index, (name, default, proc, none) in enumerate(self._binds):
            value = get(name, default)
            if value is None:
                value = none
                if value is None:
                    nulls.append(index)
                    continue
            elif proc is not None:
                value = proc(value)
            append(value)
        if not nulls:
            return self.sql, out
        key = tuple(nulls)
        sql = self._variants.get(key)
        return (self._spell_nulls(key) if sql is None else sql), out

    def _bound_at_once(self, values: Mapping[str, Any]) -> tuple[str, Any]:
        """:meth:`bound` for ``values`` holding every name, read in one call."""
        assert self._getter is not None
        out = list(self._getter(values))
        for index, proc, none in self._processed:
            value = out[index]
            out[index] = none if value is None else proc(value)
        if None not in out:
            return self.sql, out
        key = tuple([index for index, value in enumerate(out) if value is None])
        sql = self._variants.get(key)
        return (self._spell_nulls(key) if sql is None else sql), [
            value for value in out if value is not None
        ]

    def template(self, values: Mapping[str, Any], varying: Sequence[str]) -> Template:
        """The statement bound for ``values`` (see :meth:`bound`), ready to bind
        again for values that differ only in ``varying``, none of them None
        (positional parameters only)."""
        if self._named or self._getter is None:
            raise ValueError("templates are for positional statements reading every value")
        sql, params = self.bound(values)
        full = list(self._getter(values))
        for index, _, none in self._processed:
            if full[index] is None:
                full[index] = none
        kept = [index for index, value in enumerate(full) if value is not None]
        slots = []
        for name in varying:
            index = self._names.index(name)
            if full[index] is None:
                raise ValueError(f"a varying parameter may not be None: {name}")
            slots.append((kept.index(index), self._binds[index][2]))
        return Template(sql, params, tuple(slots))

    def execute(self, conn: Connection, values: Mapping[str, Any]) -> Any:
        """Run once; returns the DBAPI cursor (``rowcount``, rows)."""
        sql, params = self.bound(values)
        if self._dollar is not None:
            cursor = _raw_cursor(dbapi(conn))
            cursor.execute(sql, params)
            return cursor
        return dbapi(conn).execute(sql, params)

    def executemany(self, conn: Connection, rows: Iterable[Mapping[str, Any]]) -> Executed:
        """Run for each of ``rows``; returns how many rows the runs changed."""
        groups: dict[str, list[Any]] = {}
        for row in rows:
            sql, params = self.bound(row)
            groups.setdefault(sql, []).append(params)
        raw = dbapi(conn)
        changed = 0
        for sql, group in groups.items():
            # psycopg's connection has no executemany
            cursor = _raw_cursor(raw) if self._dollar is not None else raw.cursor()
            try:
                cursor.executemany(sql, group)  # psycopg pipelines it
                changed += cursor.rowcount
            finally:
                cursor.close()
        return Executed(changed)

    def _statement(self, params: Any) -> tuple[str, Any]:
        """The SQL and parameters to run, with every None parameter written as NULL.

        Python's sqlite3 binds None by way of its adapter lookup, which fails
        with an exception each time: a hot statement with many NULLs (a new
        job row has dozens) spends most of its time there. ``x = NULL`` in
        SQL is what binding None to ``x = ?`` gives, so nothing else changes.
        """
        if self._pieces is None or None not in params:
            return self.sql, params
        nulls = tuple(i for i, value in enumerate(params) if value is None)
        sql = self._variants.get(nulls)
        if sql is None:
            sql = self._spell_nulls(nulls)
        return sql, [value for value in params if value is not None]

    def _spell_nulls(self, nulls: tuple[int, ...]) -> str:
        assert self._pieces is not None
        marks = ["?"] * (len(self._pieces) - 1)
        for index in nulls:
            marks[index] = "NULL"
        sql = "".join(piece + mark for piece, mark in zip(self._pieces, [*marks, ""], strict=True))
        if len(self._variants) < _VARIANTS_MAX:
            self._variants[nulls] = sql
        return sql

    def rows(self, cursor: Any) -> list[Row]:
        """The cursor's rows as dicts, with result processing (UUIDs, JSON, booleans);
        NULL and JSON 'null' (most JSON columns of a job hold it) stay None."""
        fetched = cursor.fetchall()
        if not fetched:
            return []
        names, procs = self._columns(cursor)
        out = []
        for raw in fetched:
            row = dict(zip(names, raw, strict=True))
            for index, name, proc in procs:
                value = raw[index]
                if value is None:
                    continue
                row[name] = proc(value) if value != "null" else None
            out.append(row)
        return out

    def _columns(self, cursor: Any) -> tuple[tuple[str, ...], tuple[tuple[int, str, Any], ...]]:
        """The result's column names and, for those that need it, their position
        and processor: read from the first result, the same for every run."""
        if self._decode is None:
            names = tuple(d[0] for d in cursor.description)
            procs = tuple(
                (i, n, p) for i, n in enumerate(names) if (p := self._results.get(n)) is not None
            )
            self._decode = (names, procs)
        return self._decode

    def all(self, conn: Connection, values: Mapping[str, Any]) -> list[Row]:
        return self.rows(self.execute(conn, values))


PSYCOPG_CACHED_PARAMS_MAX = 50
"""psycopg caches the conversion of statements of at most this many parameters."""


def _dollar_placeholders(sql: str, names: Sequence[str]) -> str:
    """``sql`` with psycopg's ``%(name)s`` written as PostgreSQL's ``$n`` (n: the
    name's place in ``names``, from 1) and ``%%`` as ``%``."""
    places = {name: index for index, name in enumerate(names, start=1)}

    def placeholder(match: re.Match[str]) -> str:
        name = match.group(1)
        return "%" if name is None else f"${places[name]}"

    return re.sub(r"%\((\w+)\)s|%%", placeholder, sql)


def _raw_cursor(raw: Any) -> Any:
    """A psycopg cursor that takes ``$n`` placeholders as they are."""
    import psycopg  # PostgreSQL only: the postgres extra

    return psycopg.RawCursor(raw)


class Template:
    """A statement bound once, whose parameters at ``slots`` (position and type
    processor) are set anew for each run: what :meth:`Prepared.bound` would give,
    without reading and spelling every value again."""

    __slots__ = ("_params", "_slots", "sql")

    def __init__(
        self, sql: str, params: list[Any], slots: tuple[tuple[int, Processor], ...]
    ) -> None:
        self.sql = sql
        self._params = params
        self._slots = slots

    def params(self, values: Sequence[Any]) -> list[Any]:
        """The parameters with ``values`` (in the template's ``varying`` order) set."""
        out = self._params.copy()
        for (position, proc), value in zip(self._slots, values, strict=True):
            out[position] = value if proc is None else proc(value)
        return out


def table_insert(table: Table, columns: Sequence[str]) -> Callable[[], ClauseElement]:
    """A builder for ``INSERT INTO table (columns) VALUES (?, ...)``."""
    from sqlalchemy import bindparam, insert

    def build() -> ClauseElement:
        return insert(table).values({c: bindparam(c) for c in columns})

    return build
