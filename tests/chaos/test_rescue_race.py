"""The rescuer against a late completion of the same jobs, on one database.

A worker that misses its heartbeats is taken for dead and its running jobs
are rescued (back to waiting) by another runtime; if it was only slow, it
then finishes them. Whichever write commits first must win outright: a
completion that committed is never overwritten by the rescue, and a
completion that comes after the rescue is fenced off (not recorded).

Each iteration stores two jobs, lets the "dead" worker claim both, and races
its batch of completions (one ``Finish.apply_many``, as its writer would send
them) against another runtime's ``Rescue``, in turn: one order, the other,
forced interleavings on PostgreSQL (one transaction open and holding the row
while the other waits for it, observed in ``pg_stat_activity``), and a free
race of two threads. 200 iterations per database in CI, 10,000 under
``--long``.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel
from sqlalchemy import Engine, delete, select
from sqlalchemy.engine import Connection

from runtime import JobContext, Registry
from runtime.jobs.enqueue import build_rows
from runtime.store.claim import Claim
from runtime.store.engine import open_engine, writer_connection
from runtime.store.ops import Finish, FinishResult, InsertJobs
from runtime.store.tables import jobs
from runtime.store.worker_ops import Heartbeat, Rescue, Rescued
from tests.chaos.battery_support import chaos_timeout

ITERATIONS_CI = 200
ITERATIONS_LONG = 10_000
LEASE = 30.0
SCENARIOS = ("finish-first", "rescue-first", "rescue-holds", "finish-holds", "free-race")


class Numbered(BaseModel):
    n: int = 0


@dataclass
class Tally:
    """What the iterations saw, for the assertion and the report."""

    iterations: int = 0
    finish_won: int = 0
    rescue_won: int = 0
    overwritten: list[str] = field(default_factory=list)  # completed, then changed
    late_writes: list[str] = field(default_factory=list)  # recorded after a rescue
    lost: list[str] = field(default_factory=list)  # neither recorded


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    engine = open_engine(store_url)
    yield engine
    engine.dispose()


def _registry() -> Registry:
    registry = Registry()

    @registry.job(name="t", max_retries=1_000_000)
    async def t(ctx: JobContext, params: Numbered) -> None: ...

    return registry


def _claimed_by_a_dead_worker(engine: Engine, registry: Registry, n: int) -> list[uuid.UUID]:
    now = time.time()
    rows = build_rows(registry.get("t"), [{"n": n}, {"n": n + 1}], now=now - 10)
    with writer_connection(engine) as conn, conn.begin():
        InsertJobs(rows).apply(conn)
        # Its last heartbeat is older than the lease: any other runtime rescues its jobs.
        Heartbeat("slow", "elsewhere", 1, now - 2 * LEASE, now - 3 * LEASE).apply(conn)
        Heartbeat("rescuer", "here", 2, now, now).apply(conn)
        claimed = Claim("default", 2, "slow", now - 2 * LEASE).apply(conn).rows
    assert len(claimed) == 2
    return [row["id"] for row in claimed]


def _finishes(ids: list[uuid.UUID]) -> list[Finish]:
    now = time.time()
    return [
        Finish(
            job_id,
            "slow",
            {
                "status": "completed",
                "finished_at": now,
                "updated_at": now,
                "result": {"done": True},
                "progress": 100.0,
                "eta": now,
                "errors": None,
                "resumed": False,
            },
        )
        for job_id in ids
    ]


def _rescue() -> Rescue:
    return Rescue("rescuer", "here", time.time(), LEASE)


def _finish_in(conn: Connection, ids: list[uuid.UUID]) -> list[FinishResult]:
    return Finish.apply_many(conn, _finishes(ids))


def _wait_until_blocked(engine: Engine, conn: Connection) -> None:
    """Return once the PostgreSQL backend of ``conn`` (used by a thread) waits on a lock."""
    pid = conn.connection.driver_connection.info.backend_pid  # type: ignore[union-attr]
    url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as watcher:
        for _ in range(20_000):
            row = watcher.execute(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.0005)  # polls the server's view; asserts no timing
    raise AssertionError("the second transaction never waited for the first")


def _holding(
    engine: Engine,
    first: Callable[[Connection], Any],
    second: Callable[[Connection], Any],
) -> tuple[Any, Any]:
    """``first`` applied in an open transaction; ``second`` started on another
    connection and left waiting for first's row locks; then first commits."""
    results: list[Any] = []
    errors: list[BaseException] = []
    with engine.connect() as a, engine.connect() as b:
        tx = a.begin()
        first_result = first(a)

        def run_second() -> None:
            try:
                with b.begin():
                    results.append(second(b))
            except BaseException as err:  # reported by the main thread
                errors.append(err)

        thread = threading.Thread(target=run_second)
        thread.start()
        _wait_until_blocked(engine, b)
        tx.commit()
        thread.join()
    if errors:
        raise errors[0]
    return first_result, results[0]


def _free_race(
    engine: Engine,
    first: Callable[[Connection], Any],
    second: Callable[[Connection], Any],
) -> tuple[Any, Any]:
    barrier = threading.Barrier(2, timeout=60)  # a failed partner breaks it, not hangs it
    results: dict[int, Any] = {}
    errors: list[BaseException] = []

    def run(index: int, op: Callable[[Connection], Any]) -> None:
        try:
            with writer_connection(engine) as conn:
                barrier.wait()
                with conn.begin():
                    results[index] = op(conn)
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    threads = [
        threading.Thread(target=run, args=(i, op), daemon=True)
        for i, op in enumerate((first, second))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results[0], results[1]


def _race(
    engine: Engine, scenario: str, ids: list[uuid.UUID]
) -> tuple[list[FinishResult], list[Rescued]]:
    def finish(conn: Connection) -> list[FinishResult]:
        return _finish_in(conn, ids)

    def rescue(conn: Connection) -> list[Rescued]:
        return _rescue().apply(conn)

    if scenario == "finish-first":
        with writer_connection(engine) as conn, conn.begin():
            finished = finish(conn)
        with writer_connection(engine) as conn, conn.begin():
            return finished, rescue(conn)
    if scenario == "rescue-first":
        with writer_connection(engine) as conn, conn.begin():
            rescued = rescue(conn)
        with writer_connection(engine) as conn, conn.begin():
            return finish(conn), rescued
    if scenario == "rescue-holds":
        rescued, finished = _holding(engine, rescue, finish)
        return finished, rescued
    if scenario == "finish-holds":
        return _holding(engine, finish, rescue)
    return _free_race(engine, finish, rescue)


def _check(engine: Engine, scenario: str, ids: list[uuid.UUID], tally: Tally) -> None:
    finished, rescued = _race(engine, scenario, ids)
    rescued_ids = {r.job_id for r in rescued}
    with engine.connect() as conn:
        found = conn.execute(select(jobs.c.id, jobs.c.status).where(jobs.c.id.in_(ids)))
        stored = {row.id: row.status for row in found}
    for job_id, result in zip(ids, finished, strict=True):
        where = f"{scenario} #{tally.iterations}: job {job_id}"
        if result.done:
            tally.finish_won += 1
            if stored[job_id] != "completed" or job_id in rescued_ids:
                tally.overwritten.append(f"{where} completed, then {stored[job_id]}")
        elif job_id in rescued_ids:
            tally.rescue_won += 1
            if stored[job_id] != "waiting":
                tally.late_writes.append(f"{where} rescued, then {stored[job_id]}")
        else:
            tally.lost.append(f"{where} neither completed nor rescued: {stored[job_id]}")


def _postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@chaos_timeout
def test_a_completion_and_a_rescue_never_both_win(engine: Engine, long_run: bool) -> None:
    registry = _registry()
    scenarios = SCENARIOS if _postgres(engine) else ("finish-first", "rescue-first", "free-race")
    tally = Tally()
    for i in range(ITERATIONS_LONG if long_run else ITERATIONS_CI):
        ids = _claimed_by_a_dead_worker(engine, registry, 2 * i)
        _check(engine, scenarios[i % len(scenarios)], ids, tally)
        tally.iterations += 1
        if tally.iterations % 1000 == 0:
            print(f"rescue race: {tally.iterations} iterations", flush=True)
        with engine.begin() as conn:
            conn.execute(delete(jobs))
    print(
        f"rescue race on {engine.dialect.name}: {tally.iterations} iterations, "
        f"{tally.finish_won} completions won, {tally.rescue_won} rescues won, "
        f"{len(tally.overwritten)} completed jobs overwritten, "
        f"{len(tally.late_writes)} late writes recorded"
    )
    assert tally.overwritten == []
    assert tally.late_writes == []
    assert tally.lost == []
    assert tally.finish_won > 0 and tally.rescue_won > 0
