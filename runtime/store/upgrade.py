"""Adding the columns a newer version gave a known table to a store made before.

Opening a store creates missing tables and indexes; a table that exists is
left as it is, so a column added since would be missing. This adds each such
column with ``ALTER TABLE ... ADD COLUMN``, which SQLite and PostgreSQL both
do in place without rewriting rows. Only nullable columns and columns with a
constant default can be added so; a column without either is an error that
names it (it needs a real migration).
"""

from __future__ import annotations

from sqlalchemy import Column, MetaData, inspect
from sqlalchemy.engine import Connection


class UnupgradableColumn(RuntimeError):
    """A new column that has no default and may not be NULL: existing rows
    would have no value for it."""


def add_missing_columns(conn: Connection, metadata: MetaData) -> list[str]:
    """Add the columns of ``metadata``'s tables that their stored tables lack;
    return them as ``table.column``. Tables that do not exist yet are skipped."""
    inspector = inspect(conn)
    present_tables = set(inspector.get_table_names())
    added = []
    for table in metadata.sorted_tables:
        if table.name not in present_tables:
            continue
        present = {c["name"] for c in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present:
                conn.exec_driver_sql(_add_column_sql(conn, table.name, column))
                added.append(f"{table.name}.{column.name}")
    return added


def _add_column_sql(conn: Connection, table: str, column: Column[object]) -> str:
    quote = conn.dialect.identifier_preparer.quote
    kind = column.type.compile(dialect=conn.dialect)
    sql = f"ALTER TABLE {quote(table)} ADD COLUMN {quote(column.name)} {kind}"
    if column.nullable:
        return sql
    default = column.default
    value = getattr(default, "arg", None)
    if default is None or not getattr(default, "is_scalar", False):
        raise UnupgradableColumn(
            f"column {table}.{column.name} is NOT NULL without a constant default:"
            " an existing store cannot gain it in place"
        )
    literal = column.type.literal_processor(conn.dialect)
    rendered = literal(value) if literal is not None else repr(value)
    return f"{sql} NOT NULL DEFAULT {rendered}"
