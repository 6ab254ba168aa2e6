"""The floor on SQLite: plain ``sqlite3`` running Callboard's own schema and statements.

Where ``raw_sqlite`` is a store's limit (a five-column table with one
index), this is what Callboard's own work in the store costs with Python
and the runtime taken away: the schema Callboard's migrations create, the
statements Callboard compiles (``runtime.store.fast``, ``bulk_insert``, the
claim's pick and start, the finishes' compare-and-set), the same pragmas
(WAL, ``synchronous=NORMAL``), and every parameter built before the clock
starts. Jobs are stored by Callboard itself in ``prepare`` steps, so the
rows are the ones Callboard writes.

Besides throughput, each step reports the process's CPU time per job, which
stays steady on a loaded machine where wall-clock time does not.
"""

from __future__ import annotations

import sqlite3
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine

from benchmarks.drivers import callboard
from benchmarks.probe import JOBS, VERIFIED, Metrics, Step, StepFunction
from runtime.domain.status import JobStatus
from runtime.jobs.enqueue import build_new_jobs, build_rows
from runtime.store import claim, fast, ops
from runtime.store.engine import open_engine
from runtime.store.new_jobs import InsertNewJobs
from runtime.store.tables import JOB_COLUMNS, jobs

WORKER = "floor"
_START_SHAPE = 16
"""The claim pads a start of 10 ids to 16 (``Claim._start``)."""


def versions() -> dict[str, str]:
    return {"sqlite": sqlite3.sqlite_version}


def _schema(step: Step) -> Engine:
    """Callboard's schema, as its migrations make it; the engine only compiles."""
    engine = open_engine(step.store)
    engine.dispose()
    return engine


@contextmanager
def _connect(step: Step) -> Iterator[sqlite3.Connection]:
    """A connection set up as Callboard's writer is (autocommit mode: the
    transactions below are explicit)."""
    connection = sqlite3.connect(step.sqlite_path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA busy_timeout=5000")
        yield connection
    finally:
        connection.close()


def _count(connection: sqlite3.Connection, status: str | None = None) -> int:
    if status is None:
        row = connection.execute("SELECT count(*) FROM callboard_jobs").fetchone()
    else:
        sql = "SELECT count(*) FROM callboard_jobs WHERE status = ?"
        row = connection.execute(sql, (status,)).fetchone()
    return int(row[0])


def _rows(count: int) -> list[dict[str, Any]]:
    """``count`` new no-op jobs, as Callboard's enqueue builds them."""
    job_type = callboard.registry.get("noop")
    return build_rows(job_type, [{}] * count, now=time.time())


def _timed(jobs_done: int, run: Any) -> tuple[float, float]:
    """Run ``run()``; return (seconds, CPU seconds)."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def _metrics(jobs_done: int, verified: int, elapsed: float, cpu: float) -> Metrics:
    return {
        JOBS: jobs_done,
        VERIFIED: verified,
        "elapsed_s": elapsed,
        "jobs_per_s": jobs_done / elapsed,
        "cpu_us_per_job": cpu / jobs_done * 1e6,
    }


def _enqueue_single(step: Step) -> Metrics:
    count = step.size("jobs")
    engine = _schema(step)
    insert = fast.Prepared(fast.table_insert(jobs, JOB_COLUMNS)(), engine.dialect)
    # One statement each, NULLs spelled as Callboard spells them.
    statements = [insert.bound(row) for row in _rows(count)]
    with _connect(step) as connection:
        execute = connection.execute

        def run() -> None:
            for sql, params in statements:
                execute(sql, params)  # autocommit: its own durable transaction

        elapsed, cpu = _timed(count, run)
        verified = _count(connection)
    return _metrics(count, verified, elapsed, cpu)


def _enqueue_bulk(step: Step) -> Metrics:
    count = step.size("jobs")
    engine = _schema(step)
    job_type = callboard.registry.get("noop")
    new = build_new_jobs(job_type, [{}] * count, now=time.time())
    found = InsertNewJobs(new).sqlite_statement(engine.dialect)
    if found is None:
        raise RuntimeError("the bulk statement refused its rows")
    sql, params = found
    with _connect(step) as connection:

        def run() -> None:
            connection.execute("BEGIN IMMEDIATE")
            connection.execute(sql, params)
            connection.execute("COMMIT")

        elapsed, cpu = _timed(count, run)
        verified = _count(connection)
    return _metrics(count, verified, elapsed, cpu)


def _finish_values(now: float) -> dict[str, Any]:
    """What Callboard's executor records for a no-op job that returned."""
    return {
        "status": JobStatus.COMPLETED.value,
        "finished_at": now,
        "result": None,
        "progress": 100.0,
        "eta": now,
        "progress_details": None,
        "errors": None,
        "updated_at": now,
        "resumed": False,
        "wall_time": 0.0,
        "cpu_time": 0.0,
        "peak_memory": 0,
    }


def _drain(step: Step) -> Metrics:
    """Claims of ``concurrency`` jobs, each transaction also finishing the claim
    before it, as Callboard's drain does at that capacity: the pick, the start's
    ``UPDATE ... RETURNING``, the finishes' ``executemany`` and the commit."""
    count, batch = step.size("jobs"), step.size("concurrency")
    engine = _schema(step)
    dialect = engine.dialect
    pick = fast.Prepared(claim._candidates(True, False), dialect)
    start = fast.Prepared(claim._start_update(_START_SHAPE, True), dialect)
    values = _finish_values(time.time())
    finish = fast.Prepared(ops._finish_update(tuple(values)), dialect)
    pick_sql, pick_params = pick.bound({"q": callboard.QUEUE, "n": batch * 3 + 10})
    where = {"w_status": JobStatus.RUNNING.value, "w_worker": WORKER}
    with _connect(step) as connection:
        stored = [row[0] for row in connection.execute("SELECT id FROM callboard_jobs")]
        # Every finish's parameters, by the id as the start returns it.
        finishes = {
            job_id: finish.bound({**values, **where, "w_id": uuid.UUID(job_id)})
            for job_id in stored
        }
        finish_sql = next(iter(finishes.values()))[0]
        execute, executemany = connection.execute, connection.executemany

        def run() -> None:
            finishing: list[str] = []
            while True:
                execute("BEGIN IMMEDIATE")
                if finishing:
                    executemany(finish_sql, [finishes[job_id][1] for job_id in finishing])
                cursor = execute(pick_sql, pick_params)
                ids = [row[0] for _, row in zip(range(batch), cursor, strict=False)]
                cursor.close()
                finishing = []
                if ids:
                    padded = {f"id{i}": ids[min(i, len(ids) - 1)] for i in range(_START_SHAPE)}
                    sql, bound = start.bound({**padded, "now": time.time(), "worker": WORKER})
                    finishing = [row[0] for row in execute(sql, bound).fetchall()]
                execute("COMMIT")
                if not ids:
                    return

        elapsed, cpu = _timed(count, run)
        verified = _count(connection, JobStatus.COMPLETED.value)
    return _metrics(count, verified, elapsed, cpu)


STEPS: dict[str, StepFunction] = {
    "enqueue_single.enqueue": _enqueue_single,
    "enqueue_bulk.enqueue": _enqueue_bulk,
    "drain.prepare": callboard.STEPS["drain.prepare"],
    "drain.drain": _drain,
}
