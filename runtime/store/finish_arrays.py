"""PostgreSQL: a batch of plain finishes as one ``UPDATE ... FROM unnest(...)``.

A batch of finishes sent as one statement per job costs psycopg a bind, a
send and a result per job, and the server a statement per job: about half
of a worker's CPU per no-op job went to them. One statement whose every
column is an array (one value per job) is one bind and one execution. It
sets the same values, each processed as the per-job statement's would be
(``fast.Prepared.params``), under the same compare-and-set (the job is still
``running`` on this worker) and with the same ``revision`` bump.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any

from sqlalchemy.dialects import postgresql

from runtime.store.tables import jobs

_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]
_CACHED_STATEMENTS = 64  # one per set of columns a finish sets; a few in practice


@lru_cache(maxsize=_CACHED_STATEMENTS)
def statement(keys: tuple[str, ...]) -> str:
    """The statement setting the columns ``keys`` from arrays named as they are,
    with ``w_id`` and ``w_worker`` (arrays) and ``w_status`` (one value) to match
    on. Returns ``id`` and ``has_dependents`` of each job it recorded."""
    names = ("w_id", "w_worker", *keys)
    types = ("UUID", "VARCHAR", *(_array_type(key) for key in keys))
    arrays = ", ".join(f"%({n})s::{t}[]" for n, t in zip(names, types, strict=True))
    aliases = ", ".join(f"c{index}" for index in range(len(names)))
    sets = ", ".join(f"{key} = v.c{index + 2}" for index, key in enumerate(keys))
    table = jobs.name
    return (
        f"UPDATE {table} SET {sets}, revision = {table}.revision + 1 "
        f"FROM unnest({arrays}) AS v({aliases}) "
        f"WHERE {table}.id = v.c0 AND {table}.status = %(w_status)s AND {table}.worker_id = v.c1 "
        f"RETURNING {table}.id, {table}.has_dependents"
    )


def _array_type(key: str) -> str:
    return str(jobs.c[key].type.compile(dialect=_DIALECT))


def parameters(keys: tuple[str, ...], params: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One array per column of the per-job parameters ``params`` (each as
    ``fast.Prepared.params`` made it for the per-job statement), and the status
    to match on."""
    out: dict[str, Any] = {name: [p[name] for p in params] for name in ("w_id", "w_worker", *keys)}
    out["w_status"] = params[0]["w_status"]
    return out
