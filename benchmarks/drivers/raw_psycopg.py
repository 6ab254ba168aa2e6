"""The store's limit on PostgreSQL: the least a job queue must do, with psycopg 3 alone.

The PostgreSQL twin of ``raw_sqlite``: the same table and index, one
autocommit INSERT per enqueue, claims of 100 jobs per transaction (here with
``FOR UPDATE SKIP LOCKED``, as a queue shared by workers needs) and their
completion in a second transaction. Bulk enqueue is one COPY: about four
times faster than ``executemany`` (pipeline mode) on the development machine.
"""

from __future__ import annotations

import datetime
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from benchmarks.probe import JOBS, VERIFIED, Metrics, Step, StepFunction, rss_mib

CLAIM_BATCH = 100
"""Jobs claimed, and then completed, per transaction (issue 3)."""

QUEUE = "default"
SCHEDULED_DELAY = datetime.timedelta(hours=1)

_SCHEMA = """
create table if not exists jobs (
    id bigint generated always as identity primary key,
    queue text not null,
    name text not null,
    params jsonb not null,
    status text not null default 'waiting',
    run_at timestamptz not null,
    finished_at timestamptz
);
create index if not exists jobs_due on jobs (queue, status, run_at);
"""
_INSERT = "insert into jobs (queue, name, params, run_at) values (%s, 'noop', '{}', %s)"
_COPY = "copy jobs (queue, name, params, run_at) from stdin"
_CLAIM = """
update jobs set status = 'running'
where id in (
    select id from jobs where queue = %s and status = 'waiting' and run_at <= now()
    order by run_at, id limit %s
    for update skip locked
)
returning id
"""
_COMPLETE = "update jobs set status = 'completed', finished_at = now() where id = any(%s)"

Connection = psycopg.Connection[tuple[Any, ...]]

_server_version = ""
"""The server's version, noted by the step's first connection for ``versions()``."""


def versions() -> dict[str, str]:
    found = {"psycopg": psycopg.__version__}
    return {**found, "postgresql": _server_version} if _server_version else found


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


@contextmanager
def _connect(step: Step) -> Iterator[Connection]:
    # Autocommit: every transaction below is opened explicitly.
    global _server_version
    with psycopg.connect(step.store, autocommit=True) as connection:
        connection.execute(_SCHEMA)
        version = connection.info.server_version  # e.g. 150020 for 15.20
        _server_version = f"{version // 10_000}.{version % 10_000}"
        yield connection


def _count(connection: Connection, status: str) -> int:
    row = connection.execute("select count(*) from jobs where status = %s", (status,)).fetchone()
    return 0 if row is None else int(row[0])


def _copy_many(connection: Connection, jobs: int, run_at: datetime.datetime) -> None:
    with connection.transaction(), connection.cursor().copy(_COPY) as copy:
        for _ in range(jobs):
            copy.write_row((QUEUE, "noop", "{}", run_at))


def _throughput(jobs: int, verified: int, elapsed: float) -> Metrics:
    return {JOBS: jobs, VERIFIED: verified, "elapsed_s": elapsed, "jobs_per_s": jobs / elapsed}


def _enqueue_single(step: Step) -> Metrics:
    jobs = step.size("jobs")
    with _connect(step) as connection:
        started = time.perf_counter()
        for _ in range(jobs):
            # One autocommit statement: its own durable transaction.
            connection.execute(_INSERT, (QUEUE, _now()))
        elapsed = time.perf_counter() - started
        return _throughput(jobs, _count(connection, "waiting"), elapsed)


def _enqueue_bulk(step: Step) -> Metrics:
    jobs = step.size("jobs")
    with _connect(step) as connection:
        started = time.perf_counter()
        _copy_many(connection, jobs, _now())
        elapsed = time.perf_counter() - started
        return _throughput(jobs, _count(connection, "waiting"), elapsed)


def _prepare_due(step: Step) -> Metrics:
    with _connect(step) as connection:
        _copy_many(connection, step.size("jobs"), _now())
    return {}


def _noop() -> None:
    return None


def _claim(connection: Connection) -> list[int]:
    with connection.transaction():
        return [row[0] for row in connection.execute(_CLAIM, (QUEUE, CLAIM_BATCH))]


def _claim_and_complete(connection: Connection, run: Callable[[], None]) -> int:
    """Claim a batch, run it, complete it: two transactions. Return the batch size."""
    claimed = _claim(connection)
    for _ in claimed:
        run()
    if claimed:
        with connection.transaction():
            connection.execute(_COMPLETE, (claimed,))
    return len(claimed)


def _drain(step: Step) -> Metrics:
    jobs = step.size("jobs")
    started = time.perf_counter()
    with _connect(step) as connection:
        while _claim_and_complete(connection, _noop):
            pass
        elapsed = time.perf_counter() - started
        return _throughput(jobs, _count(connection, "completed"), elapsed)


def _prepare_scheduled(step: Step) -> Metrics:
    with _connect(step) as connection:
        _copy_many(connection, step.size("stored"), _now() + SCHEDULED_DELAY)
    return {}


def _idle(step: Step) -> Metrics:
    stored = step.size("stored")
    with _connect(step) as connection:
        # What an idle worker does: look for due jobs, find none, wait.
        claimed = _claim(connection)
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
