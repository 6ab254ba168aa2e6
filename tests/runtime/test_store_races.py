"""Two runtimes on one PostgreSQL database, their writers' transactions
interleaved by hand on two connections (READ COMMITTED, as the writers run).

SQLite needs no such tests: its writers take the write lock before they read
(``BEGIN IMMEDIATE``), so their transactions never interleave.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from pydantic import BaseModel
from sqlalchemy import Engine, event, func, select, update
from sqlalchemy.engine import Connection

from runtime import JobContext, JobStatus, Registry
from runtime.domain.errors import IllegalTransition
from runtime.jobs.enqueue import build_rows
from runtime.jobs.sweeper import PruneBeyond, PruneOlder
from runtime.schedules.model import TRIGGER_RULES, IntervalTrigger, dump_trigger
from runtime.store.claim import (
    CONTENDED_RETRY_DEFAULT,
    KEY_LOCK_CLASS,
    LIMIT_LOCK_PREFIX,
    Claim,
    TypeLimit,
)
from runtime.store.engine import open_engine
from runtime.store.ops import DeleteJob, InsertJobs, Transition
from runtime.store.schedule_ops import SaveSchedule
from runtime.store.tables import jobs, schedules
from runtime.store.worker_ops import Heartbeat, Rescue


class Numbered(BaseModel):
    n: int = 0


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = open_engine(postgres_url)
    yield engine
    engine.dispose()


def _registry(**options: Any) -> Registry:
    registry = Registry()

    @registry.job(name="t", **options)
    async def t(ctx: JobContext, params: Numbered) -> None: ...

    return registry


def _store(engine: Engine, registry: Registry, count: int) -> list[dict[str, Any]]:
    rows = build_rows(registry.get("t"), [{"n": i} for i in range(count)], now=time.time())
    with engine.begin() as conn:
        InsertJobs(rows).apply(conn)
    return rows


def _running(engine: Engine) -> list[tuple[Any, Any]]:
    with engine.connect() as conn:
        return list(
            conn.execute(select(jobs.c.id, jobs.c.worker_id).where(jobs.c.status == "running"))
        )


def _wait_until_blocked_on_a_lock(conn: Connection) -> None:
    """Return once the backend of ``conn`` (used by another thread) waits on a lock."""
    pid = conn.connection.driver_connection.info.backend_pid
    url = conn.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(url, autocommit=True) as watcher:
        for _ in range(10_000):
            waiting = watcher.execute(
                "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = %s", (pid,)
            ).fetchone()
            if waiting and waiting[0]:
                return
            time.sleep(0.001)  # polls the server's view; asserts no timing
    raise AssertionError("the second claim never waited for the first")


def test_a_limited_type_never_runs_over_its_concurrency_across_runtimes(engine: Engine) -> None:
    # More waiting jobs than one claim reads: the second claim would find candidates
    # the first did not lock, and before the fix both counted 0 running.
    registry = _registry(max_concurrency=1)
    _store(engine, registry, 40)
    limits = {"t": TypeLimit(max_concurrency=1)}
    now = time.time()
    second: list[Any] = []
    with engine.connect() as a, engine.connect() as b:
        first = a.begin()
        claimed_a = Claim("default", 1, "worker-a", now, limits).apply(a)

        def claim_b() -> None:
            with b.begin():
                second.append(Claim("default", 1, "worker-b", now, limits).apply(b))

        thread = threading.Thread(target=claim_b)
        thread.start()
        _wait_until_blocked_on_a_lock(b)
        first.commit()
        thread.join()
    assert len(claimed_a.rows) == 1 and second[0].rows == []
    assert [worker for _, worker in _running(engine)] == ["worker-a"]


def _hold_limit_lock(conn: Connection, type_name: str) -> None:
    """Take the advisory lock a claim takes for ``type_name``, as another claim would."""
    key = func.hashtext(f"{LIMIT_LOCK_PREFIX}{type_name}")
    conn.execute(select(func.pg_advisory_xact_lock(key)))


def _hold_key_lock(conn: Connection, lock_key: str, tenant: str = "") -> None:
    """Take the advisory lock a claim takes for a picked lock key."""
    name = f"{tenant}\x1f{lock_key}"
    conn.execute(select(func.pg_advisory_xact_lock(KEY_LOCK_CLASS, func.hashtext(name))))


def _store_keyed(engine: Engine, registry: Registry, key: str, count: int) -> list[Any]:
    rows = build_rows(
        registry.get("t"), [{"n": i} for i in range(count)], now=time.time() - 1, lock_key=key
    )
    with engine.begin() as conn:
        InsertJobs(rows).apply(conn)
    return [row["id"] for row in rows]


def test_a_claim_of_unlimited_jobs_takes_no_limit_lock(engine: Engine) -> None:
    # A limited type merely registered: another claim holding its lock must not
    # make a claim of other types' jobs wait (before, every claim took them all).
    _store(engine, _registry(), 3)
    limits = {"capped": TypeLimit(max_concurrency=1)}
    with engine.connect() as holder, engine.connect() as other, holder.begin():
        _hold_limit_lock(holder, "capped")
        with other.begin():
            other.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
            claimed = Claim("default", 3, "worker-b", time.time(), limits).apply(other)
    assert len(claimed.rows) == 3 and claimed.retry_at is None


def test_a_claim_meeting_a_locked_type_out_of_order_skips_it_and_retries_soon(
    engine: Engine,
) -> None:
    # The claim locks "t" first (its candidates come first), then meets "a_late",
    # which sorts before "t": it only tries that lock, and another claim holds it.
    registry = _registry(max_concurrency=5, priority=10)

    @registry.job(name="a_late", max_concurrency=5)
    async def a_late(ctx: JobContext, params: Numbered) -> None: ...

    _store(engine, registry, 1)
    late = build_rows(registry.get("a_late"), [{"n": 1}], now=time.time())
    with engine.begin() as conn:
        InsertJobs(late).apply(conn)
    limits = {"t": TypeLimit(max_concurrency=5), "a_late": TypeLimit(max_concurrency=5)}
    now = time.time()
    with engine.connect() as holder, engine.connect() as other, holder.begin():
        _hold_limit_lock(holder, "a_late")
        with other.begin():
            other.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
            claimed = Claim("default", 5, "worker-b", now, limits).apply(other)
    assert [r["type"] for r in claimed.rows] == ["t"]
    assert claimed.retry_at == pytest.approx(now + CONTENDED_RETRY_DEFAULT)


def test_a_claim_leaves_a_lock_key_another_claim_is_taking_and_retries_soon(
    engine: Engine,
) -> None:
    registry = _registry()
    _store_keyed(engine, registry, "k", 2)
    _store(engine, registry, 1)
    now = time.time()
    with engine.connect() as holder, engine.connect() as other, holder.begin():
        _hold_key_lock(holder, "k")  # another claim picked a job of "k", not committed yet
        with other.begin():
            other.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
            claimed = Claim("default", 5, "worker-b", now, {}).apply(other)
    assert [r["lock_key"] for r in claimed.rows] == [None]
    assert claimed.retry_at == pytest.approx(now + CONTENDED_RETRY_DEFAULT)


def test_a_pick_read_before_another_claim_took_its_key_does_not_start(engine: Engine) -> None:
    # The claim's read of candidates saw "k" free; another claim's start of a job
    # of "k" committed since. The start checks the key afresh and leaves it.
    registry = _registry()
    first, second = _store_keyed(engine, registry, "k", 2)
    with engine.begin() as conn:
        conn.execute(update(jobs).where(jobs.c.id == first).values(status="running"))
    with engine.begin() as conn:
        claim = Claim("default", 1, "worker-b", time.time(), {})
        assert claim._start(conn, [second], postgres=True) == []
    with engine.connect() as conn:
        status = conn.execute(select(jobs.c.status).where(jobs.c.id == second)).scalar_one()
    assert status == "waiting"


def test_parking_leaves_rows_another_claim_holds_and_never_waits(engine: Engine) -> None:
    registry = _registry()
    ids = _store_keyed(engine, registry, "k", 3)
    with engine.connect() as holder, engine.connect() as other, holder.begin():
        # Another claim's read of candidates locked the last job of "k".
        holder.execute(select(jobs.c.id).where(jobs.c.id == ids[2]).with_for_update())
        with other.begin():
            other.exec_driver_sql("SET LOCAL lock_timeout = '2s'")
            claimed = Claim("default", 1, "worker-b", time.time(), {}).apply(other)
    assert [r["id"] for r in claimed.rows] == [ids[0]]
    assert [r["id"] for r in claimed.parked] == [ids[1]]  # the held one is left waiting
    with engine.connect() as conn:
        status = conn.execute(select(jobs.c.status).where(jobs.c.id == ids[2])).scalar_one()
    assert status == "waiting"


def test_a_rescue_leaves_alone_a_job_another_runtime_rescued_and_claimed_meanwhile(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _registry(max_retries=3)
    (row,) = _store(engine, registry, 1)
    now = time.time()
    with engine.begin() as conn:  # a worker that died while running the job
        Heartbeat("dead", "other-host", 1, now - 1000, now - 1000).apply(conn)
        Heartbeat("worker-a", "host-a", 1, now, now).apply(conn)
        Heartbeat("worker-b", "host-b", 1, now, now).apply(conn)
        Claim("default", 1, "dead", now - 999).apply(conn)

    original = Rescue._rescue
    interleaved: list[bool] = []

    def rescue_after_a(self: Rescue, conn: Connection, lost: Any) -> Any:
        # Between worker-b's read of the lost job and its update, worker-a
        # rescues the job and claims it again, both committed.
        if self.worker == "worker-b" and not interleaved:
            interleaved.append(True)
            with engine.connect() as a:
                with a.begin():
                    Rescue("worker-a", "host-a", now, 30.0).apply(a)
                with a.begin():
                    Claim("default", 1, "worker-a", now).apply(a)
        return original(self, conn, lost)

    monkeypatch.setattr(Rescue, "_rescue", rescue_after_a)
    with engine.connect() as b, b.begin():
        rescued_by_b = Rescue("worker-b", "host-b", now, 30.0).apply(b)
    assert interleaved and rescued_by_b == []
    assert _running(engine) == [(row["id"], "worker-a")]


def _failed_job_and_its_retry(engine: Engine) -> tuple[dict[str, Any], Transition]:
    """A stored failed job, and the retry another runtime's ``rt.retry()`` would write."""
    (row,) = _store(engine, _registry(max_retries=0), 1)
    _fail(engine, row["id"])
    waiting_again = {"status": "waiting", "scheduled_at": time.time(), "finished_at": None}
    return row, Transition(row["id"], "retry", {JobStatus.FAILED: waiting_again})


def _fail(engine: Engine, job_id: Any) -> None:
    with engine.begin() as conn:
        conn.execute(
            update(jobs).where(jobs.c.id == job_id).values(status="failed", finished_at=time.time())
        )


def test_a_delete_spares_a_job_another_runtime_retried_after_the_delete_read_it(
    engine: Engine,
) -> None:
    row, retry = _failed_job_and_its_retry(engine)

    class RetriedAfterTheRead:
        """A connection on which another runtime's retry commits after the first read."""

        def __init__(self, conn: Connection) -> None:
            self.conn, self.calls = conn, 0

        def execute(self, *args: Any, **kwargs: Any) -> Any:
            result = self.conn.execute(*args, **kwargs)
            self.calls += 1
            if self.calls == 1:
                with engine.begin() as other:
                    retry.apply(other)
            return result

    with engine.begin() as conn, pytest.raises(IllegalTransition, match="waiting"):
        DeleteJob(row["id"]).apply(RetriedAfterTheRead(conn))  # type: ignore[arg-type]
    with engine.connect() as conn:
        status = conn.execute(select(jobs.c.status).where(jobs.c.id == row["id"])).scalar()
    assert status == "waiting"


def test_retention_spares_a_job_another_runtime_retried_after_the_prune_read_it(
    engine: Engine,
) -> None:
    row, retry = _failed_job_and_its_retry(engine)
    retried: list[bool] = []

    def retry_before_the_delete(conn: Any, cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("DELETE FROM CALLBOARD_JOBS") and not retried:
            retried.append(True)
            with engine.begin() as other:  # another runtime's rt.retry(), committed now
                retry.apply(other)

    with engine.connect() as pruner:
        event.listen(pruner, "before_cursor_execute", retry_before_the_delete)
        with pruner.begin():
            older = PruneOlder(JobStatus.FAILED, before=time.time() + 1).apply(pruner)
        retried.clear()
        _fail(engine, row["id"])  # failed again, for the other prune
        with pruner.begin():
            beyond = PruneBeyond(keep=0).apply(pruner)
    assert (older, beyond) == (0, {})
    with engine.connect() as conn:
        status = conn.execute(select(jobs.c.status).where(jobs.c.id == row["id"])).scalar()
    assert status == "waiting"


def _schedule_row(name: str, tenant_id: str | None, every: float, now: float) -> dict[str, Any]:
    trigger = IntervalTrigger(every=every, start=datetime.fromtimestamp(now, UTC))
    return {
        "id": str(uuid.uuid4()),
        "name": name,
        "job_type": "t",
        "params": {},
        "trigger": dump_trigger(trigger),
        "tz": "UTC",
        "overlap": "skip",
        "misfire": "run_once",
        "max_catch_up": 100,
        "paused": False,
        "last_fire_at": None,
        "next_fire_at": now + every,
        "last_job_id": None,
        "created_at": now,
        "updated_at": now,
        "tenant_id": tenant_id,
        "revision": 1,
        "queue": None,
        "user_id": None,
    }


@pytest.mark.parametrize("tenant_id", [None, "acme"])
@pytest.mark.parametrize("every", [60.0, 120.0])
def test_two_runtimes_declaring_one_new_schedule_at_once_store_it_once(
    engine: Engine, tenant_id: str | None, every: float
) -> None:
    # Both find no row (FOR UPDATE locks nothing then); the second's insert waits
    # for the first and, before the fix, failed on the unique name index.
    now = time.time()
    mine = _schedule_row("nightly", tenant_id, 60.0, now)
    theirs = _schedule_row("nightly", tenant_id, every, now)
    second: list[tuple[dict[str, Any], bool]] = []
    with engine.connect() as a, engine.connect() as b:
        first = a.begin()
        stored_a, created_a = SaveSchedule(mine, keep_anchor=True, rules=TRIGGER_RULES).apply(a)

        def declare_b() -> None:
            with b.begin():
                second.append(SaveSchedule(theirs, keep_anchor=True, rules=TRIGGER_RULES).apply(b))

        thread = threading.Thread(target=declare_b)
        thread.start()
        _wait_until_blocked_on_a_lock(b)
        first.commit()
        thread.join()
    assert created_a
    assert second, "the second declaration failed"
    stored_b, created_b = second[0]
    assert not created_b and stored_b["id"] == stored_a["id"]
    # An identical definition changed nothing; another one replaced the first's.
    assert stored_b["revision"] == (1 if every == 60.0 else 2)
    with engine.connect() as conn:
        rows = conn.execute(select(schedules.c.id, schedules.c.trigger)).all()
    assert [(row.id, row.trigger["every"]) for row in rows] == [(stored_a["id"], every)]
