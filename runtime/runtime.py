"""The ``Runtime`` facade: wires the store, the registry and the actors.

::

    async with Runtime("sqlite:///callboard.db", queues={"compute": 4}) as rt:
        job = await rt.enqueue("resize", {"path": "a.png"})
        done = await rt.wait(job.id, timeout=30)
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Mapping
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from actors import (
    GRACE_PERIOD_DEFAULT,
    POLL_INTERVAL_DEFAULT,
    Control,
    DueTimer,
    Supervisor,
    Ticker,
    check_capacity,
)
from runtime.domain.clock import Clock
from runtime.domain.errors import RuntimeNotRunning, StorageUnavailable, UnknownJobType
from runtime.domain.logs import JOB_LOG_LIMIT_DEFAULT
from runtime.domain.models import Job, event_from_row
from runtime.domain.status import ACTIVE, PENDING, TERMINAL, JobStatus
from runtime.domain.storable import check_text
from runtime.enqueueing import EnqueueMethods
from runtime.jobs.control import ControlMethods
from runtime.jobs.enqueue import check_cancel_reason
from runtime.jobs.events import (
    EVERY_TENANT,
    SUBSCRIBER_BUFFER_DEFAULT,
    EventBus,
    EventFilter,
    JobSubscription,
    TenantKey,
)
from runtime.jobs.execution import Executor
from runtime.jobs.flusher import PROGRESS_FLUSH_INTERVAL_DEFAULT, Flusher
from runtime.jobs.lone_enqueue import LonePlans
from runtime.jobs.outages import through_outages
from runtime.jobs.reading import ReadMethods, job_uuid
from runtime.jobs.registry import JobType, Registry, default_registry
from runtime.jobs.subscriptions import JobEvents
from runtime.jobs.sweeper import SWEEP_INTERVAL_DEFAULT, JobRetention
from runtime.jobs.wakeups import Wakeups
from runtime.schedules.methods import ScheduleMethods
from runtime.settings import check_settings
from runtime.store import Store, WriterStatistics, notifier, threads
from runtime.store.child_ops import CancelTree
from runtime.store.ops import DeleteJob, Promote, Transition
from runtime.store.worker_ops import Unregister
from runtime.upkeep import UpkeepMethods
from runtime.watchdog import LOOP_WATCHDOG_DEFAULT, LoopWatchdog
from runtime.workflows.children import ChildMethods, Children
from runtime.workflows.chords import ChordMethods
from runtime.workflows.step_methods import StepMethods
from runtime.workflows.steps import StepRunner

if TYPE_CHECKING:  # the otel extra's: imported only when tracing is on
    from opentelemetry.trace import TracerProvider

    from runtime.jobs.tracing import JobTracing

log = logging.getLogger("callboard.runtime")

DATABASE_URL_DEFAULT = "sqlite:///callboard.db"
# A killed worker's jobs are rescued within lease + heartbeat_interval (8 s)
# from any host; on its own host, at the next heartbeat of another runtime.
LEASE_DEFAULT = 6.0
HEARTBEAT_INTERVAL_DEFAULT = 2.0
POSTGRES_POLL_INTERVAL_DEFAULT = 30.0
"""The safety poll on PostgreSQL, where LISTEN/NOTIFY wakes runtimes at once
(``POLL_INTERVAL_DEFAULT``, 1 s, on SQLite: other processes wake us only so)."""
_WAITING = JobStatus.WAITING.value
_SCHEDULED = JobStatus.SCHEDULED.value
_LEFT_A_RUN = frozenset(
    s.value for s in (*TERMINAL, JobStatus.SUSPENDED, JobStatus.SCHEDULED, JobStatus.WAITING)
)
"""What a job may be once an attempt ends (a retry waits, at once or after a
backoff): its type's concurrency slot is free again."""


class Runtime(
    EnqueueMethods,
    UpkeepMethods,
    ReadMethods,
    ControlMethods,
    ScheduleMethods,
    StepMethods,
    ChildMethods,
    ChordMethods,
):
    """A job runtime on one database. Use it as ``async with Runtime(...) as rt``.

    ``loop_watchdog``: seconds the event loop may go without running (a
    handler that blocks it) before a watchdog thread logs which job blocks
    it; None turns the watchdog off.

    ``queues`` maps the queues this runtime serves to their capacities (jobs
    of that queue running at once here); without it, it serves every queue
    of the registry at the queue's registered capacity
    (``QUEUE_CAPACITY_DEFAULT`` unless registered otherwise). With
    ``workers=False`` the runtime only enqueues and reads (a client): it runs
    no jobs. The database's schema is created or upgraded on entry
    (``migrate=False``: refused with :class:`SchemaNotCurrent` unless current).

    ``otel``: OpenTelemetry spans for each enqueue and each attempt, the
    trace carried from one to the other through the job (the ``otel`` extra;
    docs/operations.md, "Traces"). True uses OpenTelemetry's global tracer
    provider; a ``TracerProvider``, that one. Off by default, and then
    OpenTelemetry is never imported.
    """

    def __init__(
        self,
        url: str = DATABASE_URL_DEFAULT,
        *,
        registry: Registry | None = None,
        queues: Mapping[str, int] | None = None,
        workers: bool = True,
        grace_period: float = GRACE_PERIOD_DEFAULT,
        poll_interval: float | None = None,
        lease: float = LEASE_DEFAULT,
        heartbeat_interval: float = HEARTBEAT_INTERVAL_DEFAULT,
        progress_interval: float = PROGRESS_FLUSH_INTERVAL_DEFAULT,
        log_limit: int = JOB_LOG_LIMIT_DEFAULT,
        retention: JobRetention | None = None,
        sweep_interval: float = SWEEP_INTERVAL_DEFAULT,
        migrate: bool = True,
        loop_watchdog: float | None = LOOP_WATCHDOG_DEFAULT,
        otel: bool | TracerProvider = False,
    ) -> None:
        for name, capacity in (queues or {}).items():
            check_capacity(name, capacity)
        if poll_interval is None:
            postgres = url.startswith(("postgresql:", "postgresql+", "postgres:"))
            poll_interval = POSTGRES_POLL_INTERVAL_DEFAULT if postgres else POLL_INTERVAL_DEFAULT
        check_settings(
            grace_period=grace_period,
            poll_interval=poll_interval,
            lease=lease,
            heartbeat_interval=heartbeat_interval,
            progress_interval=progress_interval,
            log_limit=log_limit,
            sweep_interval=sweep_interval,
            loop_watchdog=loop_watchdog,
        )
        self.url = url
        self.registry = registry if registry is not None else default_registry
        self._queue_config = dict(queues or {})
        self._workers = workers
        self._grace = grace_period
        self._poll = poll_interval
        self._lease = lease
        self._heartbeat = heartbeat_interval
        self._progress_interval = progress_interval
        self._log_limit = log_limit
        self.retention = retention if retention is not None else JobRetention()
        self._sweep_interval = sweep_interval
        self._migrate = migrate
        self._tracing = _tracing(otel)
        self._unserved_told: set[str] = set()  # queues already warned of
        self.watchdog = (
            LoopWatchdog(loop_watchdog, lease=lease) if loop_watchdog is not None else None
        )
        self._services_tg: TaskGroup | None = None
        self._wake_pending: dict[str, float] = {}
        self._flusher: Flusher | None = None
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._wakeups = Wakeups(uuid.uuid4().hex[:12])
        self._listening = anyio.CancelScope()
        self._listener: notifier.Listener | None = None
        self.clock = Clock()
        self.bus = EventBus()
        self._store: Store | None = None
        self._lone_plans: LonePlans | None = None
        self._tg: TaskGroup | None = None
        self._supervisor: Supervisor | None = None
        self._due: DueTimer | None = None
        self._executor: Executor | None = None
        self._services = anyio.CancelScope()
        self._services_done = anyio.Event()
        self._supervisor_done = anyio.Event()
        self._started_at = 0.0
        self.leading = False  # whether this runtime fires schedules and sweeps now

    # -- lifecycle ----------------------------------------------------------

    async def __aenter__(self) -> Runtime:
        self.clock.anchor()
        self._started_at = self.clock.now()
        self._store = await threads.run_sync(partial(Store, self.url, migrate=self._migrate))
        dialect = self._store.engine.dialect
        # Lone enqueues commit at once only on SQLite (StoreWriter.write_alone).
        self._lone_plans = LonePlans(dialect) if dialect.name == "sqlite" else None
        self._tg = anyio.create_task_group()
        await self._tg.__aenter__()
        try:
            await self._tg.start(self._run_tree)
        except BaseException:
            self._store.writer.close()
            if self.watchdog is not None:
                self.watchdog.close()
            self._tg.cancel_scope.cancel()
            await self._tg.__aexit__(None, None, None)
            self._tg = None
            if self._flusher is not None:
                self._flusher.close()
            raise
        return self

    async def _run_tree(self, *, task_status: TaskStatus[None]) -> None:
        """The actor tree, shielded from the host's cancellation.

        Cancelling the code around ``async with Runtime`` must not tear jobs
        down mid-write: the host's cancellation reaches the runtime only
        through ``__aexit__``, which shuts down gracefully.
        """
        assert self._store is not None
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tree:
                await tree.start(self._store.writer.run)
                if self.watchdog is not None:
                    await tree.start(self.watchdog.run)
                if self._workers:
                    await self._start_workers(tree)
                task_status.started()

    async def _start_workers(self, tg: TaskGroup) -> None:
        await self._renew_lease()
        await self._rescue()
        self._flusher = Flusher(
            self.store, self.clock, self.worker_id, self._progress_interval, self._log_limit
        )
        self._executor = Executor(
            store=self.store,
            registry=self.registry,
            bus=self.bus,
            clock=self.clock,
            worker_id=self.worker_id,
            flusher=self._flusher,
            on_status=self._status_changed,
            on_rate_limited=self._wake_later,
            blocked_for=self.watchdog.blocked_for if self.watchdog is not None else None,
            capacities=self._capacities,
            wakeups=self._wakeups,
            on_slot_freed=self._slot_freed,
            steps=StepRunner(
                registry=self.registry, store=self.store, bus=self.bus, worker_id=self.worker_id
            ),
            workflows=Children(
                store=lambda: self.store,
                resolve=self._job_type,
                clock=self.clock,
                worker_id=self.worker_id,
                on_stored=self._announce,
                wakeups=self._wakeups,
            ),
            tracing=self._tracing,
        )
        self._supervisor = Supervisor(
            self._capacities(),
            source=self._executor,
            runner=self._executor,
            sink=self._executor,
            poll_interval=self._poll,
        )
        self._due = DueTimer(self._promote, now=self.clock.now, recheck=self._poll)
        if self.store.channel is not None:  # before the first claim: no notice is missed
            await tg.start(self._listen, self.store.channel)
        await tg.start(self._run_supervisor)
        await tg.start(self._run_services)

    def _capacities(self) -> dict[str, int]:
        """The queues this runtime serves: those given, else every registered one."""
        if self._queue_config:
            return dict(self._queue_config)
        return {q.name: q.capacity for q in self.registry.queues()}

    def _known_queues(self) -> set[str]:
        return {q.name for q in self.registry.queues()} | set(self._queue_config)

    async def _run_supervisor(self, *, task_status: TaskStatus[None]) -> None:
        assert self._supervisor is not None
        try:
            await self._supervisor.run(task_status=task_status)
        finally:
            self._supervisor_done.set()

    async def _listen(self, channel: str, *, task_status: TaskStatus[None]) -> None:
        self._listener = notifier.Listener(
            notifier.libpq_url(self.store.engine.url), channel, self._noticed, self._catch_up
        )
        with self._listening:
            await self._listener.run(task_status=task_status)

    def _noticed(self, payload: str) -> None:
        """Act on another runtime's notice (see ``runtime.jobs.wakeups``)."""
        notice = notifier.decode(payload)
        if notice is None or notice.sender == self._wakeups.sender:
            return  # ours: this runtime woke itself already
        supervisor = self._supervisor
        if notice.kind == notifier.WAKE and supervisor is not None:
            supervisor.wake(notice.argument)
        elif notice.kind == notifier.DUE and self._due is not None:
            self._due.note(float(notice.argument))
        elif notice.kind == notifier.CONTROL and self._services_tg is not None:
            job_id, _, action = notice.argument.partition(" ")
            control = Control.CANCEL if action == "cancel" else Control.SUSPEND
            self._services_tg.start_soon(self._tell, uuid.UUID(job_id), control)

    def _catch_up(self) -> None:
        """The listening connection came back: notices sent meanwhile are lost,
        so look once for whatever they would have said."""
        if self._supervisor is not None:
            self._supervisor.wake_all()
        if self._due is not None:
            self._due.note(self.clock.now())

    async def _run_services(self, *, task_status: TaskStatus[None]) -> None:
        assert self._flusher is not None and self._due is not None
        try:
            with self._services:
                async with anyio.create_task_group() as tg:
                    self._services_tg = tg
                    await tg.start(self._due.run)
                    await tg.start(self._flusher.run)
                    await tg.start(Ticker(self._tick, self._heartbeat).run)
                    await tg.start(self._lead)
                    task_status.started()
        finally:
            self._services_done.set()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        assert self._tg is not None and self._store is not None
        try:
            if not self._tg.cancel_scope.cancel_called:  # else a child crashed: no grace
                with anyio.CancelScope(shield=True):  # a cancelled host still shuts down
                    await self._shutdown()
        finally:
            self._store.writer.close()
            if self.watchdog is not None:
                self.watchdog.close()
            # Exit the task group with no exception of the body: on trio it
            # would come back wrapped in an ExceptionGroup. The body's own
            # exception propagates by itself once this returns.
            await self._tg.__aexit__(None, None, None)
            self._tg = None
            if self._flusher is not None:
                self._flusher.close()
            with anyio.CancelScope(shield=True):
                await threads.run_sync(self._store.dispose)

    async def _shutdown(self) -> None:
        """Stop claiming, drain within the grace period, interrupt the rest, persist."""
        if self._supervisor is None or self._flusher is None:
            return
        self._supervisor.stop(self._grace)
        await self._supervisor_done.wait()
        self._services.cancel()
        await self._services_done.wait()
        self._listening.cancel()
        try:
            await self._flusher.flush()
            await self.store.write(Unregister(self.worker_id))
        except StorageUnavailable as err:  # the lease lapses; the next start rescues
            log.error("stopping without the last progress and worker record: %s", err)

    # -- background work ------------------------------------------------------

    async def _promote(self) -> float | None:
        async def promote() -> Any:
            pending = self.store.submit(Promote(self.clock.now()), self._wakeups.for_promote)
            pending.on_settled(self._publish_promoted)
            return await pending.wait()

        rows, nxt = await through_outages("promoting due jobs", promote)
        for row in rows:
            self._status_changed(row)
        return nxt  # type: ignore[no-any-return]

    def _publish_promoted(self, result: Any, error: BaseException | None) -> None:
        if error is None:
            for row in result[0]:
                self._publish(row)

    def _serves(self, queue: str) -> bool:
        """Whether this runtime runs jobs of ``queue``. An enqueue to a queue it
        does not serve commits in the caller's task when the writer is idle
        (``StoreWriter.submit``'s ``lead``); one to a queue it serves goes through
        the writer, whose commit the queue's claim joins."""
        supervisor = self._supervisor
        return supervisor is not None and queue in supervisor.queues

    def _status_changed(self, row: Mapping[str, Any]) -> None:
        """Wake whoever a committed status change concerns."""
        status = row["status"]
        supervisor = self._supervisor
        if status == _WAITING and supervisor is not None:
            supervisor.wake(row["queue"])
        elif status == _SCHEDULED and self._due is not None:
            self._due.note(row["scheduled_at"])
        if supervisor is not None and status in _LEFT_A_RUN and row.get("started_at") is not None:
            limited = self._limited(row.get("type"))
            if limited is not None:  # a held-back job of its type may start now
                supervisor.wake(row["queue"])
                supervisor.wake(limited.queue)

    def _slot_freed(self, queue: str, type_queue: str) -> None:
        """A job of a limited type is ending: its held-back peers may start."""
        if self._supervisor is not None:
            self._supervisor.wake(queue)
            self._supervisor.wake(type_queue)

    def _limited(self, type_name: str | None) -> JobType | None:
        """The job type named, if a concurrency limit holds its jobs back."""
        try:
            job_type = self.registry.get(type_name) if type_name else None
        except UnknownJobType:
            return None
        return job_type if job_type is not None and job_type.max_concurrency is not None else None

    def _wake_later(self, queue: str, at: float) -> None:
        """Wake ``queue`` at epoch ``at`` (a rate-limited type may start again)."""
        known = self._wake_pending.get(queue)
        if self._services_tg is None or (known is not None and known <= at):
            return
        self._wake_pending[queue] = at
        self._services_tg.start_soon(self._wake_at, queue, at)

    async def _wake_at(self, queue: str, at: float) -> None:
        await anyio.sleep(max(0.0, at - self.clock.now()))
        if self._wake_pending.get(queue) == at:
            del self._wake_pending[queue]
        if self._supervisor is not None:
            self._supervisor.wake(queue)

    # -- enqueue ----------------------------------------------------------------

    # -- reading ------------------------------------------------------------------

    @property
    def store(self) -> Store:
        if self._store is None or self._tg is None:
            raise RuntimeNotRunning()
        return self._store

    def events(self, job_id: uuid.UUID | str) -> JobEvents:
        """An async iterator of the job's events (status, progress) until it finishes."""
        return JobEvents(self, job_uuid(job_id))

    def subscribe(
        self,
        job_id: uuid.UUID | str | None = None,
        *,
        tenant_id: TenantKey = EVERY_TENANT,
        accept: EventFilter | None = None,
        buffer: int = SUBSCRIBER_BUFFER_DEFAULT,
    ) -> JobSubscription:
        """A raw subscription to events of one job, else of one tenant's jobs
        (``tenant_id``), else of all jobs. Only the events it may see reach it;
        ``accept`` filters further. Past ``buffer`` unread events, progress is
        coalesced per job and then the subscription is closed
        (:class:`~runtime.jobs.events.SubscriberTooSlow`)."""
        key = None if job_id is None else job_uuid(job_id)
        return self.bus.subscribe(key, accept, tenant_id=tenant_id, buffer=buffer)

    def writer_statistics(self) -> WriterStatistics:
        return self.store.writer.statistics()

    # -- control ---------------------------------------------------------------------

    async def cancel(
        self, job_id: uuid.UUID | str, *, reason: str | None = None, tenant_id: str | None = None
    ) -> Job:
        """Cancel a job: pending jobs end ``canceled`` at once, running ones via ``canceling``.

        ``reason`` (free text, at most 2,000 characters) is
        kept on the job as ``cancel_reason``, written to its log, and carried by
        its events and status hooks. Raises :class:`IllegalTransition` for a
        finished job and changes nothing.
        """
        key = job_uuid(job_id)
        check_text("tenant_id", tenant_id)
        check_cancel_reason(reason)
        now = self.clock.now()
        ended = {
            "status": JobStatus.CANCELED.value,
            "finished_at": now,
            "updated_at": now,
            "cancel_reason": reason,
        }
        moves = {
            s: ended for s in (*PENDING, JobStatus.BLOCKED, JobStatus.SUSPENDED, JobStatus.RESUMING)
        }
        stopping = {"status": JobStatus.CANCELING.value, "updated_at": now, "cancel_reason": reason}
        moves.update({s: stopping for s in ACTIVE if s is not JobStatus.CANCELING})
        # Its unfinished children too, in the same transaction (runtime.workflows).
        op = CancelTree(Transition(key, "cancel", moves, tenant_id, reason), now)
        row = await self._transition(op)
        if row["status"] == JobStatus.CANCELING.value:
            await self._tell(key, Control.CANCEL)
        for child in row.get("children_changed", ()):
            if child["status"] == JobStatus.CANCELING.value:
                await self._tell(child["id"], Control.CANCEL)
        return Job.from_row(row)

    async def _transition(self, op: Transition | CancelTree) -> dict[str, Any]:
        """Apply a requested status change, published as its commit settles.

        Not once the caller resumes: a claim or an outcome committed in the same
        batch would be announced first (the tasks one commit wakes run in any
        order), and subscribers would see the job go back to a status it left.
        """
        # Its notices tell other processes: wake a queue, stop a job running there.
        pending = self.store.submit(op, partial(_transition_notices, self._wakeups))
        pending.on_settled(self._publish_settled)
        row: dict[str, Any] = await pending.wait()
        return row

    def _publish_settled(self, row: Any, error: BaseException | None) -> None:
        if error is None:
            self._publish(row)
            # Released or skipped by its ending; its children a cancel moved.
            for moved in (*row.get("dependents", ()), *row.get("children_changed", ())):
                self._status_changed(moved)
                self._publish(moved)

    async def _tell(self, job_id: uuid.UUID, control: Control) -> None:
        """Send a control request to the job if it runs here, also if its claim
        committed but has not reached its queue actor yet."""
        supervisor, executor = self._supervisor, self._executor
        if supervisor is None or executor is None or await supervisor.tell(job_id, control):
            return
        if await executor.handed_over(job_id):
            await supervisor.tell(job_id, control)

    async def delete(self, job_id: uuid.UUID | str, *, tenant_id: str | None = None) -> None:
        """Delete a finished job; :class:`IllegalTransition` if it is not finished."""
        check_text("tenant_id", tenant_id)
        await self.store.write(DeleteJob(job_uuid(job_id), tenant_id))

    def _publish(self, row: Mapping[str, Any]) -> None:
        if self.bus.wants_status(row["id"], row.get("tenant_id"), row.get("parent_id")):
            if row["status"] in _RUNNING_HERE and self._executor is not None:
                # A stored row lags the live progress by up to a flush interval.
                live = self._executor.flusher.unsaved(row["id"])
                if live is not None:
                    row = {**row, "progress": live.progress, "progress_details": live.details}
                    row["eta"] = live.eta
            self.bus.publish(event_from_row(row, self.clock.now()))


def _transition_notices(wakeups: Wakeups, row: Any) -> list[str]:
    """A transition's notices: its job's, and those of the jobs it moved."""
    moved = [*row.get("dependents", ()), *row.get("children_changed", ())]
    return wakeups.for_rows([row, *moved])


def _tracing(otel: object) -> JobTracing | None:
    if otel is False:
        return None  # and opentelemetry stays unimported
    from runtime.jobs.tracing import make_tracing

    return make_tracing(otel)


_RUNNING_HERE = frozenset(s.value for s in ACTIVE)
