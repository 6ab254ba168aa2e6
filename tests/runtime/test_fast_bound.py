"""``fast.Prepared.bound``: one pass over the values gives what ``params`` then
``_statement`` give, whichever way the values are read."""

from __future__ import annotations

import time
import uuid

from sqlalchemy.dialects import postgresql, sqlite

from runtime import Registry
from runtime.jobs.enqueue import build_rows
from runtime.store import fast, ops
from runtime.store.tables import JOB_COLUMNS, jobs
from tests.runtime.jobs import Journal, register


def _row() -> dict[str, object]:
    registry = Registry()
    register(registry, Journal())
    return build_rows(registry.get("echo"), [{"value": "x"}], now=time.time())[0]


def test_a_complete_row_binds_as_the_two_steps_do() -> None:
    insert = fast.Prepared(fast.table_insert(jobs, JOB_COLUMNS)(), sqlite.dialect())
    row = _row()
    sql, params = insert.bound(row)
    assert (sql, params) == insert._statement(insert.params(row))
    assert "NULL" in sql and None not in params  # a new job's row has NULLs to spell
    assert params[JOB_COLUMNS.index("id")] == row["id"].hex  # type: ignore[attr-defined]


def test_values_missing_a_name_bind_it_as_none() -> None:
    finish = fast.Prepared(ops._finish_update(("status", "result")), sqlite.dialect())
    values = {"status": "completed", "w_id": uuid.uuid4(), "w_status": "running"}
    sql, params = finish.bound(values)  # no "result" and no "w_worker"
    assert (sql, params) == finish._statement(finish.params(values))
    assert sql.count("NULL") >= 1


def test_a_wide_postgres_statement_is_converted_once_to_dollar_placeholders() -> None:
    assert (
        fast._dollar_placeholders("SELECT %(a)s, %(b)s, '100%%', %(a)s", ("a", "b"))
        == "SELECT $1, $2, '100%', $1"
    )
    insert = fast.Prepared(fast.table_insert(jobs, JOB_COLUMNS)(), postgresql.psycopg.dialect())
    assert len(JOB_COLUMNS) > fast.PSYCOPG_CACHED_PARAMS_MAX  # else psycopg caches it
    row = _row()
    sql, params = insert.bound(row)
    assert "%(" not in sql and f"${len(JOB_COLUMNS)}" in sql
    # In the names' order (psycopg's Json wrappers compare by identity: their reprs).
    assert list(map(repr, params)) == list(map(repr, insert.params(row).values()))


def test_a_narrow_postgres_statement_keeps_psycopgs_placeholders() -> None:
    finish = fast.Prepared(ops._finish_update(("status",)), postgresql.psycopg.dialect())
    sql, params = finish.bound({"status": "completed", "w_id": uuid.uuid4()})
    assert "%(status)s" in sql and isinstance(params, dict)


def test_a_finish_with_every_value_reads_them_at_once() -> None:
    finish = fast.Prepared(ops._finish_update(("status", "result")), sqlite.dialect())
    values = {"status": "completed", "result": {"n": 1}, "w_id": uuid.uuid4()}
    values.update(w_status="running", w_worker="w")
    assert finish._getter is not None  # the statement binds no value of its own
    assert finish.bound(values) == finish._statement(finish.params(values))
    assert '{"n": 1}' in finish.bound(values)[1]  # the JSON column's processor ran
