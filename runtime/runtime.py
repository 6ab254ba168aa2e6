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
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, Unpack

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
from runtime.domain.models import Job, JobId, event_from_row
from runtime.domain.status import ACTIVE, PENDING, TERMINAL, JobStatus
from runtime.domain.storable import check_text
from runtime.gcpause import collector_paused
from runtime.jobs.control import ControlMethods
from runtime.jobs.enqueue import PER_JOB_COLUMNS, EnqueueOptions, build_rows, check_cancel_reason
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
from runtime.store.dependency_ops import dependencies_of
from runtime.store.leader import LEADER_CHECK_DEFAULT, Leadership
from runtime.store.ops import PARKED_COLUMNS, DeleteJob, InsertJobs, Promote, Transition
from runtime.store.worker_ops import Heartbeat, Rescue, Unregister
from runtime.store.worker_reads import unserved_queues
from runtime.watchdog import LOOP_WATCHDOG_DEFAULT, LoopWatchdog
from runtime.workflows.children import ChildMethods, Children
from runtime.workflows.chords import ChordMethods
from runtime.workflows.dependencies import dependency_ids, insert_dependent
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
JobTypeRef = str | Callable[..., Any] | JobType
_WAITING = JobStatus.WAITING.value
_SCHEDULED = JobStatus.SCHEDULED.value
_LEFT_A_RUN = frozenset(
    s.value for s in (*TERMINAL, JobStatus.SUSPENDED, JobStatus.SCHEDULED, JobStatus.WAITING)
)
"""What a job may be once an attempt ends (a retry waits, at once or after a
backoff): its type's concurrency slot is free again."""
Params = Mapping[str, Any] | Any


class Runtime(
    ReadMethods, ControlMethods, ScheduleMethods, StepMethods, ChildMethods, ChordMethods
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

    async def _lead(self, *, task_status: TaskStatus[None]) -> None:
        """Fire schedules and sweep while this runtime leads its store; try for
        the lead every ``LEADER_CHECK_DEFAULT`` seconds while another does.

        Started once the first try is decided, so a runtime that may lead
        leads as ``async with`` returns (on SQLite, always: no more checks).
        """
        leadership = Leadership(self.store.engine)
        started = False

        def start() -> None:
            nonlocal started
            if not started:
                started = True
                task_status.started()

        try:
            while True:
                if await threads.run_sync(leadership.try_lead):
                    await self._run_as_leader(leadership, start)
                start()
                await anyio.sleep(LEADER_CHECK_DEFAULT)
        finally:
            with anyio.CancelScope(shield=True):
                await threads.run_sync(leadership.resign)

    async def _run_as_leader(self, leadership: Leadership, started: Callable[[], None]) -> None:
        log.info("runtime %s leads: it fires schedules and sweeps", self.worker_id)
        self.leading = True
        try:
            async with anyio.create_task_group() as tg:
                await tg.start(Ticker(self._sweep, self._sweep_interval).run)
                await tg.start(self._run_scheduler)
                started()
                if leadership.permanent:
                    await anyio.sleep_forever()
                while True:  # the lock lives in the server: asking is the only way
                    await anyio.sleep(LEADER_CHECK_DEFAULT)
                    if not await threads.run_sync(leadership.still_leading):
                        break
                tg.cancel_scope.cancel()
        except Exception:
            if leadership.permanent:
                raise
            # The server went away under a read (a restart, say): step down and
            # try again, rather than take the workers down with the scheduler.
            log.exception("leading failed: stepping down, trying again in a while")
            await threads.run_sync(leadership.resign)
        finally:
            self.leading = False
            self._scheduler = None

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

    async def _sweep(self) -> None:
        counts = await through_outages("pruning finished jobs", self.prune)
        if counts:
            log.info("pruned finished jobs: %s", counts)

    async def _tick(self) -> None:
        await through_outages("renewing the worker lease", self._renew_lease)
        await through_outages("rescuing the jobs of lost workers", self._rescue)
        await through_outages("looking for queues no worker serves", self._warn_unserved)

    async def _renew_lease(self) -> None:
        stopping = await self.store.write(
            Heartbeat(
                self.worker_id,
                socket.gethostname(),
                os.getpid(),
                self.clock.now(),
                self._started_at,
                self._served_queues(),
            )
        )
        for job_id, status in stopping:
            control = Control.CANCEL if status == JobStatus.CANCELING.value else Control.SUSPEND
            if self._supervisor is not None:
                await self._supervisor.tell(job_id, control)

    def _served_queues(self) -> list[str]:
        """The queues this runtime runs jobs of now (capacity > 0, changes included)."""
        if self._supervisor is not None:
            actors = self._supervisor.queues
            return sorted(name for name, actor in actors.items() if actor.capacity > 0)
        return sorted(name for name, capacity in self._capacities().items() if capacity > 0)

    async def unserved_queues(self) -> dict[str, int]:
        """Queues whose waiting jobs no live worker serves, with how many wait:
        they wait until a worker that serves the queue starts."""
        since = self.clock.now() - self._lease
        return await self.store.read(unserved_queues, since)

    async def _warn_unserved(self) -> None:
        found = await self.unserved_queues()
        for queue in sorted(found.keys() - self._unserved_told):
            log.warning(
                "%d jobs wait on queue %r, which no live worker serves: start a worker "
                "that serves it (callboard worker --queues %s)",
                found[queue],
                queue,
                queue,
            )
        self._unserved_told = set(found)

    async def _rescue(self) -> None:
        pending = self.store.submit(
            Rescue(self.worker_id, socket.gethostname(), self.clock.now(), self._lease),
            self._wakeups.for_rescue,
        )
        pending.on_settled(self._publish_rescued)
        for job in await pending.wait():
            if job.status is JobStatus.WAITING and self._supervisor is not None:
                self._supervisor.wake(job.queue)
            elif job.status is JobStatus.SCHEDULED and job.row is not None:
                self._status_changed(job.row)  # a dependent released, due later

    def _publish_rescued(self, rescued: Any, error: BaseException | None) -> None:
        if error is None:
            for job in rescued:
                if job.row is not None:
                    self._publish(job.row)

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

    async def enqueue(
        self,
        job_type: JobTypeRef,
        params: Params = None,
        *,
        idempotency_key: str | None = None,
        depends_on: Iterable[JobId] | None = None,
        run_on_failure: bool = False,
        **options: Unpack[EnqueueOptions],
    ) -> Job:
        """Validate and store one job; it is durable when this returns.

        ``options``: ``queue``, ``priority``, ``delay`` (seconds or a
        timedelta) or ``at`` (an aware datetime), ``tenant_id``,
        ``user_id``, ``timeout``, ``max_retries``, ``retry_delay`` (overrides
        the type's), ``status_hook`` (a URL), ``lock_key`` (overrides the
        type's lock template), ``description`` (free text). With an
        ``idempotency_key`` already used by the same tenant, or for a unique
        type with an equal unfinished job, the existing job is returned and
        nothing new is stored.

        ``depends_on`` (job ids): the job waits ``blocked`` until all of them
        completed, and ends ``skipped`` if one fails, is canceled, times out
        or is skipped, unless ``run_on_failure`` (then it runs once they all
        ended). :class:`JobNotFound` for an id of no job (of this tenant),
        and nothing is stored. See docs/workflows.md.
        """
        jobs = await self.enqueue_many(
            job_type,
            [params],
            idempotency_keys=[idempotency_key],
            depends_on=depends_on,
            run_on_failure=run_on_failure,
            **options,
        )
        return jobs[0]

    async def enqueue_many(
        self,
        job_type: JobTypeRef,
        params: Iterable[Params],
        *,
        idempotency_keys: Sequence[str | None] | None = None,
        depends_on: Iterable[JobId] | None = None,
        run_on_failure: bool = False,
        **options: Unpack[EnqueueOptions],
    ) -> list[Job]:
        """Validate and store many jobs of one type in one transaction.

        Takes the options of :meth:`enqueue`, applied to every job. If any
        params fail validation, :class:`InvalidParams` names the first bad
        item (``errors`` carry its index) and nothing is stored. For 1,000
        jobs or more, Python's cyclic garbage collector is paused while the
        rows and the returned snapshots are built (see ``runtime.gcpause``).
        ``depends_on`` and ``run_on_failure`` as for :meth:`enqueue`, shared
        by every job.
        """
        jt = self._job_type(job_type)
        items = params if isinstance(params, Sequence) else list(params)
        if self._tracing is None:
            return await self._enqueue_rows(
                jt, items, idempotency_keys, depends_on, run_on_failure, None, options
            )
        store = partial(self._enqueue_rows, jt, items, idempotency_keys, depends_on, run_on_failure)
        queue = options.get("queue") or jt.queue
        traced = await self._tracing.enqueue(
            jt.name, queue, options.get("tenant_id"), lambda context: store(context, options)
        )
        return list(traced)

    async def _enqueue_rows(
        self,
        jt: JobType,
        items: Sequence[Params],
        idempotency_keys: Sequence[str | None] | None,
        depends_on: Iterable[JobId] | None,
        run_on_failure: bool,
        trace_context: dict[str, str] | None,
        options: EnqueueOptions,
    ) -> list[Job]:
        now = self.clock.now()
        with collector_paused(len(items)):
            rows = build_rows(
                jt,
                items,
                now=now,
                idempotency_keys=idempotency_keys,
                trace_context=trace_context,
                **options,
            )
        if depends_on is not None:
            return await self._enqueue_dependent(rows, depends_on, run_on_failure, options)
        pending = self.store.submit(
            InsertJobs(rows, varying=PER_JOB_COLUMNS),
            partial(_notices_of_rows, self._wakeups, rows) if self.store.channel else None,
            lead=not self._serves(rows[0]["queue"]) if rows else False,
        )
        pending.on_settled(partial(self._publish_stored, rows))
        # Wake this runtime's queues now, not once the insert is durable: a claim
        # they ask for joins the insert's commit (the writer applies it after the
        # insert, in the same transaction), one commit from enqueue to start.
        # The rows of one call share their status, queue and due time: one will do.
        for row in rows[:1]:
            self._status_changed(row)
        replaced = await pending.wait()
        with collector_paused(len(rows)):
            if replaced:  # some keys had jobs already: those are returned instead
                return [Job.from_row(replaced.get(row["id"], row)) for row in rows]
            return Job.from_similar_rows(rows, (*PER_JOB_COLUMNS, *PARKED_COLUMNS))

    def _job_type(self, job_type: JobTypeRef) -> JobType:
        return job_type if isinstance(job_type, JobType) else self.registry.get(job_type)

    def _announce(self, row: Mapping[str, Any]) -> None:
        """A job stored by a committed write: wake its queue or timer, publish it."""
        self._status_changed(row)
        self._publish(row)

    async def _enqueue_dependent(
        self,
        rows: list[dict[str, Any]],
        depends_on: Iterable[JobId],
        run_on_failure: bool,
        options: EnqueueOptions,
    ) -> list[Job]:
        ids = dependency_ids(depends_on)
        op = insert_dependent(rows, ids, run_on_failure, options.get("tenant_id"))
        stored = await self.store.write(op)
        for row in stored:
            self._status_changed(row)
            self._publish(row)
        return [Job.from_row(row) for row in stored]

    async def dependencies(self, job_id: JobId, *, tenant_id: str | None = None) -> list[uuid.UUID]:
        """The ids of the jobs this job depends on (``depends_on``), sorted."""
        job = await self.get(job_id, tenant_id=tenant_id)
        return await self.store.read(dependencies_of, job.id)

    def _publish_stored(
        self, rows: list[dict[str, Any]], replaced: Any, error: BaseException | None
    ) -> None:
        """Publish the jobs an insert stored, in the writer as its commit settles
        (so even if the caller was cancelled meanwhile)."""
        if error is not None or self.bus.is_idle():
            return
        for row in rows:
            if row["id"] not in replaced:
                self._publish(row)

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


def _notices_of_rows(wakeups: Wakeups, rows: list[dict[str, Any]], _result: Any) -> list[str]:
    return wakeups.for_rows(rows)


_RUNNING_HERE = frozenset(s.value for s in ACTIVE)
