"""The store's limit: the least a job queue on SQLite must do, with sqlite3 alone."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from benchmarks.probe import JOBS, VERIFIED, Metrics, Step, StepFunction, rss_mib

CLAIM_BATCH = 100
"""Jobs claimed, and then completed, per transaction (issue 3)."""

QUEUE = "default"
SCHEDULED_DELAY_S = 3_600.0

_SCHEMA = """
create table if not exists jobs (
    id integer primary key,
    queue text not null,
    name text not null,
    params text not null,
    status text not null default 'waiting',
    run_at real not null,
    finished_at real
);
create index if not exists jobs_due on jobs (queue, status, run_at);
"""
_INSERT = "insert into jobs (queue, name, params, run_at) values (?, 'noop', '{}', ?)"
_CLAIM = """
update jobs set status = 'running'
where id in (
    select id from jobs where queue = ? and status = 'waiting' and run_at <= ?
    order by run_at, id limit ?
)
returning id
"""
_COMPLETE = "update jobs set status = 'completed', finished_at = ? where id = ?"


def versions() -> dict[str, str]:
    return {"sqlite": sqlite3.sqlite_version}


@contextmanager
def _connect(step: Step) -> Iterator[sqlite3.Connection]:
    # Autocommit mode: every transaction below is opened explicitly.
    connection = sqlite3.connect(step.sqlite_path, isolation_level=None)
    try:
        connection.execute("pragma journal_mode = wal")
        connection.execute("pragma synchronous = normal")
        connection.execute("pragma busy_timeout = 5000")
        connection.executescript(_SCHEMA)
        yield connection
    finally:
        connection.close()


def _count(connection: sqlite3.Connection, status: str) -> int:
    row = connection.execute("select count(*) from jobs where status = ?", (status,)).fetchone()
    return int(row[0])


def _insert_many(connection: sqlite3.Connection, jobs: int, run_at: float) -> None:
    connection.execute("begin")
    connection.executemany(_INSERT, ((QUEUE, run_at) for _ in range(jobs)))
    connection.execute("commit")


def _enqueue_single(step: Step) -> Metrics:
    jobs = step.size("jobs")
    with _connect(step) as connection:
        started = time.perf_counter()
        for _ in range(jobs):
            # One autocommit statement: its own durable transaction.
            connection.execute(_INSERT, (QUEUE, time.time()))
        elapsed = time.perf_counter() - started
        verified = _count(connection, "waiting")
    return {JOBS: jobs, VERIFIED: verified, "elapsed_s": elapsed, "jobs_per_s": jobs / elapsed}


def _enqueue_bulk(step: Step) -> Metrics:
    jobs = step.size("jobs")
    with _connect(step) as connection:
        started = time.perf_counter()
        _insert_many(connection, jobs, time.time())
        elapsed = time.perf_counter() - started
        verified = _count(connection, "waiting")
    return {JOBS: jobs, VERIFIED: verified, "elapsed_s": elapsed, "jobs_per_s": jobs / elapsed}


def _prepare_due(step: Step) -> Metrics:
    with _connect(step) as connection:
        _insert_many(connection, step.size("jobs"), time.time())
    return {}


def _noop() -> None:
    return None


def _claim_and_complete(connection: sqlite3.Connection, run: Callable[[], None]) -> int:
    """Claim a batch, run it, complete it: two transactions. Return the batch size."""
    connection.execute("begin immediate")
    claimed = [row[0] for row in connection.execute(_CLAIM, (QUEUE, time.time(), CLAIM_BATCH))]
    connection.execute("commit")
    for _ in claimed:
        run()
    connection.execute("begin immediate")
    now = time.time()
    connection.executemany(_COMPLETE, ((now, job_id) for job_id in claimed))
    connection.execute("commit")
    return len(claimed)


def _drain(step: Step) -> Metrics:
    jobs = step.size("jobs")
    started = time.perf_counter()
    with _connect(step) as connection:
        while _claim_and_complete(connection, _noop):
            pass
        elapsed = time.perf_counter() - started
        verified = _count(connection, "completed")
    return {JOBS: jobs, VERIFIED: verified, "elapsed_s": elapsed, "jobs_per_s": jobs / elapsed}


def _prepare_scheduled(step: Step) -> Metrics:
    with _connect(step) as connection:
        _insert_many(connection, step.size("stored"), time.time() + SCHEDULED_DELAY_S)
    return {}


def _idle(step: Step) -> Metrics:
    stored = step.size("stored")
    with _connect(step) as connection:
        # What an idle worker does: look for due jobs, find none, wait.
        connection.execute("begin immediate")
        claimed = connection.execute(_CLAIM, (QUEUE, time.time(), CLAIM_BATCH)).fetchall()
        connection.execute("commit")
        if claimed:
            raise RuntimeError(f"scheduled jobs were due: claimed {len(claimed)}")
        time.sleep(step.setting("settle_s"))
        rss = rss_mib()
        verified = _count(connection, "waiting")
    return {JOBS: stored, VERIFIED: verified, "rss_mib": rss}


STEPS: dict[str, StepFunction] = {
    "enqueue_single.enqueue": _enqueue_single,
    "enqueue_bulk.enqueue": _enqueue_bulk,
    "drain.prepare": _prepare_due,
    "drain.drain": _drain,
    "memory.prepare": _prepare_scheduled,
    "memory.idle": _idle,
}
