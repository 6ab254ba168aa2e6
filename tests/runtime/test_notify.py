"""Wake-ups across runtimes on PostgreSQL (LISTEN/NOTIFY), two runtimes in one
process on one schema: nothing polls (the poll is hours), so only a notice
can wake the other runtime. Real time, with generous bounds."""

from __future__ import annotations

from collections.abc import Callable
from uuid import UUID

import pytest
import trio
from pydantic import BaseModel

from actors import POLL_INTERVAL_DEFAULT
from runtime import JobContext, JobStatus, Registry, Runtime
from runtime.jobs.wakeups import Wakeups
from runtime.runtime import POSTGRES_POLL_INTERVAL_DEFAULT
from runtime.store import Store, notifier
from runtime.store.notifier import decode
from runtime.store.ops import FinishResult
from tests.conftest import _postgres_schema
from tests.runtime.control_jobs import Trace, register

pytestmark = pytest.mark.trio


class Who(BaseModel):
    who: str


BOUND = 5.0  # seconds: far above what a notice takes, far below the poll


def _runtimes(
    make_runtime: Callable[..., Runtime], url: str, **worker: object
) -> tuple[Runtime, Runtime]:
    """A worker and a client (``workers=False``) on one store."""
    return make_runtime(url=url, **worker), make_runtime(url=url, workers=False)


async def _reaches(rt: Runtime, job_id: UUID, status: JobStatus) -> None:
    """Return once the job has ``status``, as ``rt`` (which runs it) announces."""
    with rt.subscribe(job_id) as events:
        if (await rt.get(job_id)).status is status:
            return
        while (await events.receive()).status is not status:
            pass


async def test_a_job_enqueued_elsewhere_wakes_an_idle_worker(
    postgres_url: str, make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    register(registry, Trace())
    worker, client = _runtimes(make_runtime, postgres_url)
    async with worker, client:
        job = await client.enqueue("work", {"name": "a", "steps": 0})
        with trio.fail_after(BOUND):
            done = await worker.wait(job.id)
        delayed = await client.enqueue("work", {"name": "b", "steps": 0}, delay=0.2)
        with trio.fail_after(BOUND):  # its due time reached the worker's due timer
            later = await worker.wait(delayed.id)
    assert done.status is JobStatus.COMPLETED and later.status is JobStatus.COMPLETED


async def test_cancel_and_suspend_reach_a_job_running_in_another_runtime(
    postgres_url: str, make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    register(registry, Trace(), suspendable=True)
    worker, client = _runtimes(make_runtime, postgres_url)
    async with worker, client:
        jobs = [await client.enqueue("work", {"name": n, "steps": 1000}) for n in "ab"]
        for job in jobs:
            await _reaches(worker, job.id, JobStatus.RUNNING)
        await client.cancel(jobs[0].id)
        await client.suspend(jobs[1].id)
        with trio.fail_after(BOUND):  # not the heartbeat's: that is hours away
            canceled = await worker.wait(jobs[0].id)
            await _reaches(worker, jobs[1].id, JobStatus.SUSPENDED)
        await client.resume(jobs[1].id)
        with trio.fail_after(BOUND):
            await _reaches(worker, jobs[1].id, JobStatus.RUNNING)
        await client.cancel(jobs[1].id)
        with trio.fail_after(BOUND):
            await worker.wait(jobs[1].id)
    assert canceled.status is JobStatus.CANCELED


async def test_a_slot_freed_in_one_runtime_starts_a_held_back_job_in_another(
    postgres_url: str, make_runtime: Callable[..., Runtime], registry: Registry
) -> None:
    release = trio.Event()

    @registry.job(name="limited", max_concurrency=1, max_retries=0)
    async def limited(ctx: JobContext, params: Who) -> str:
        if params.who == "first":
            await release.wait()
        return params.who

    first_worker = make_runtime(url=postgres_url, queues={"other": 1})
    second_worker = make_runtime(url=postgres_url, queues={"default": 1})
    async with first_worker, second_worker:
        first = await first_worker.enqueue("limited", {"who": "first"}, queue="other")
        await _reaches(first_worker, first.id, JobStatus.RUNNING)
        held = await second_worker.enqueue("limited", {"who": "held"})
        assert (await second_worker.get(held.id)).status is JobStatus.WAITING
        release.set()
        with trio.fail_after(BOUND):
            done = await second_worker.wait(held.id)
    assert done.status is JobStatus.COMPLETED


async def test_a_lost_listening_connection_reconnects_and_catches_up_once(
    postgres_url: str,
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(notifier, "RECONNECT_DELAY_DEFAULT", 0.3)
    register(registry, Trace())
    worker, client = _runtimes(make_runtime, postgres_url)
    async with worker, client:
        listener = worker._listener
        assert listener is not None and listener.connection is not None
        pid = listener.connection.info.backend_pid
        await client.store.read(_terminate, pid)
        with trio.fail_after(BOUND):
            # The listener's thread drops its connection: no event to wait on.
            while listener.connection is not None and listener.reconnects == 0:  # noqa: ASYNC110
                await trio.sleep(0.005)
        # Sent while nobody listens: only the catch-up claim finds it.
        job = await client.enqueue("work", {"name": "a", "steps": 0})
        with trio.fail_after(BOUND):
            done = await worker.wait(job.id)
    assert done.status is JobStatus.COMPLETED
    assert listener.reconnects == 1


def _terminate(conn: object, pid: int) -> None:
    conn.exec_driver_sql(f"SELECT pg_terminate_backend({int(pid)})")  # type: ignore[attr-defined]


async def test_each_schema_has_its_own_channel(postgres_url: str) -> None:
    # A second fresh schema (not the server's shared public one, whose state
    # is whatever an earlier run left).
    schemas = _postgres_schema()
    other = next(schemas)
    first, second = Store(postgres_url), Store(other)
    try:
        assert first.channel is not None and second.channel is not None
        assert first.channel != second.channel
        assert first.channel.startswith("callboard_cb_test_")
        assert second.channel.startswith("callboard_cb_test_")
    finally:
        first.dispose()
        second.dispose()
        schemas.close()


async def test_notices_name_what_to_wake_and_who_sent_them() -> None:
    wakeups = Wakeups("me")
    rows = [
        {"id": "j1", "status": "waiting", "queue": "q"},
        {"id": "j2", "status": "waiting", "queue": "q"},
        {"id": "j3", "status": "scheduled", "queue": "q", "scheduled_at": 12.5},
        {"id": "j4", "status": "scheduled", "queue": "q", "scheduled_at": 10.0},
        {"id": "j5", "status": "canceling", "queue": "q"},
        {"id": "j6", "status": "completed", "queue": "r"},
    ]
    notices = [decode(p) for p in wakeups.for_rows(rows)]
    assert [(n.sender, n.kind, n.argument) for n in notices if n is not None] == [
        ("me", "c", "j5 cancel"),
        ("me", "w", "q"),
        ("me", "d", "10.0"),
    ]
    assert decode("not a notice") is None
    # Unlimited, nothing released by it: silent.
    silent = wakeups.for_finish("q", "completed", None, None)
    assert silent(FinishResult(True)) == []
    # What its ending released is told (a dependent, a parent it was the last child of).
    released = FinishResult(True, dependents=[{"id": "j7", "status": "waiting", "queue": "r"}])
    assert silent(released) == ["me|w|r"]
    # A parent whose children ended while it ran is released as it ends its run.
    parent = wakeups.for_finish("q", "blocked", None, None)
    assert parent(FinishResult(True, values={"status": "waiting"})) == ["me|w|q"]
    freed = wakeups.for_finish("q", "completed", "limits", None)
    assert freed is not None and freed(None) == ["me|w|q", "me|w|limits"]
    # A lock key's end wakes its queue: a concurrent claim may have left jobs of
    # the key waiting rather than parked (Claim._park_on_locks).
    keyed = wakeups.for_finish("q", "completed", None, "k")
    assert keyed is not None and keyed(None) == ["me|w|q"]


async def test_the_poll_is_a_safety_net_on_postgresql_only(registry: Registry) -> None:
    postgres = Runtime("postgresql://nobody@127.0.0.1:1/none", registry=registry)
    sqlite = Runtime("sqlite:///unused.db", registry=registry)
    assert postgres._poll == POSTGRES_POLL_INTERVAL_DEFAULT >= 30
    assert sqlite._poll == POLL_INTERVAL_DEFAULT == 1.0
    assert Runtime("postgresql://x@h/db", registry=registry, poll_interval=0.5)._poll == 0.5


async def test_notices_share_a_round_trip_with_their_write_or_its_commit(
    postgres_url: str,
    make_runtime: Callable[..., Runtime],
    registry: Registry,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A lone enqueue: one round trip and one implicit transaction, the notice
    # queued in the pipeline that holds the INSERT, in autocommit (before, a
    # second round trip).
    register(registry, Trace())
    seen: list[tuple[bool, bool]] = []
    send = notifier.send

    def spy(conn: object, channel: str, payloads: object) -> None:
        raw = conn.connection.driver_connection  # type: ignore[attr-defined]
        seen.append((raw.autocommit, raw.pgconn.pipeline_status != 0))
        send(conn, channel, payloads)  # type: ignore[arg-type]

    monkeypatch.setattr(notifier, "send", spy)
    async with make_runtime(url=postgres_url, workers=False) as client:
        await client.enqueue("work", {"name": "a", "steps": 0})
        # In a transaction, the notices go in one pipeline with its COMMIT.
        await client.enqueue_many("work", [{"name": "b", "steps": 0}, {"name": "c", "steps": 0}])
        assert await client.count() == 3
    assert seen == [(True, True), (False, True)]
