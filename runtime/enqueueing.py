"""Enqueueing: ``enqueue``, ``enqueue_many`` and jobs that depend on others,
mixed into the Runtime. An enqueue is durable when it returns; the jobs it
stores wake this runtime's queues before the commit, so a claim joins it."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any, Unpack

from runtime.domain.clock import Clock
from runtime.domain.models import Job, JobId
from runtime.gcpause import collector_paused
from runtime.jobs.enqueue import PER_JOB_COLUMNS, EnqueueOptions, build_new_jobs
from runtime.jobs.events import EventBus
from runtime.jobs.lone_enqueue import LoneEnqueue, LonePlans, lone_plan_fits
from runtime.jobs.registry import JobType, Registry
from runtime.jobs.wakeups import Wakeups
from runtime.store import Store
from runtime.store.bound_insert import InsertBoundJob
from runtime.store.dependency_ops import dependencies_of
from runtime.store.new_jobs import InsertNewJobs, NewJobs, insert_new_jobs
from runtime.store.ops import PARKED_COLUMNS, InsertJobs
from runtime.workflows.dependencies import dependency_ids, insert_dependent

if TYPE_CHECKING:
    from runtime.jobs.tracing import JobTracing

JobTypeRef = str | Callable[..., Any] | JobType
Params = Mapping[str, Any] | Any


class EnqueueMethods:
    """The Runtime's enqueue methods (see the module's docstring)."""

    if TYPE_CHECKING:  # provided by Runtime and its other mixins
        registry: Registry
        clock: Clock
        bus: EventBus
        _wakeups: Wakeups
        _tracing: JobTracing | None
        _lone_plans: LonePlans | None  # SQLite without a channel: see _enqueue_lone

        @property
        def store(self) -> Store: ...

        def _serves(self, queue: str) -> bool: ...

        def _status_changed(self, row: Mapping[str, Any]) -> None: ...

        def _publish(self, row: Mapping[str, Any]) -> None: ...

        async def get(self, job_id: uuid.UUID | str, *, tenant_id: str | None = None) -> Job: ...

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
        plans = self._lone_plans
        if (
            plans is not None
            and not options
            and idempotency_key is None
            and depends_on is None
            and self._tracing is None
        ):
            # The usual call: straight to the type's lone plan, if it has one.
            plan = plans.get(self._job_type(job_type))
            if plan is not None and not self._serves(plan.job_type.queue):
                return await self._enqueue_lone(plan, params)
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
        plans = self._lone_plans
        # The type's first lone enqueue makes its plan (see ``enqueue``).
        learn = (
            trace_context is None
            and depends_on is None
            and plans is not None
            and lone_plan_fits(jt, items, idempotency_keys, options)
            and not self._serves(jt.queue)
        )
        now = self.clock.now()
        with collector_paused(len(items)):
            new = build_new_jobs(
                jt,
                items,
                now=now,
                idempotency_keys=idempotency_keys,
                trace_context=trace_context,
                **options,
            )
            if depends_on is not None:
                rows = new.rows()
            else:
                op = insert_new_jobs(new)
        if depends_on is not None:
            return await self._enqueue_dependent(rows, depends_on, run_on_failure, options)
        if isinstance(op, InsertNewJobs):
            return await self._insert_new(op)
        if not op.rows:  # nothing to store (the options were checked all the same)
            return []
        if learn and plans is not None and plans.get(jt) is None:
            plans.learn(jt, op.rows[0])
        return await self._insert_rows(op, op.rows)

    async def _enqueue_lone(self, lone: LoneEnqueue, params: Params) -> Job:
        """One job with no option for a queue this runtime does not run (a web
        process, a client): committed at once when no batch is forming
        (``StoreWriter.write_alone``), else as any other enqueue."""
        row, op = lone.job(params, self.clock.now())
        taken, _ = await self.store.writer.write_alone(op)
        if not taken:
            return (await self._insert_rows(op, [row]))[0]
        self._status_changed(row)
        if not self.bus.is_idle():
            self._publish(row)
        return lone.snapshot(row)

    async def _insert_rows(
        self, op: InsertJobs | InsertBoundJob, rows: list[dict[str, Any]]
    ) -> list[Job]:
        """Store new jobs' ``rows`` with ``op`` through the writer; their snapshots."""
        pending = self.store.submit(
            op,
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

    async def _insert_new(self, op: InsertNewJobs) -> list[Job]:
        """As :meth:`_insert_rows`, for new jobs that carry no key: every job
        keeps the status, queue and due time they share, so the shared row
        stands for them all in notices and wake-ups; their rows are made only
        for subscribers."""
        new = op.jobs
        shared = new.shared
        pending = self.store.submit(
            op,
            partial(_notices_of_rows, self._wakeups, [shared]) if self.store.channel else None,
            lead=not self._serves(shared["queue"]),
        )
        pending.on_settled(partial(self._publish_new, new))
        self._status_changed(shared)  # now, as in _insert_rows: a claim joins the commit
        await pending.wait()
        with collector_paused(len(new)):
            return Job.from_columns(shared, new.per_job)

    def _publish_new(self, new: NewJobs, _result: Any, error: BaseException | None) -> None:
        if error is None and not self.bus.is_idle():
            for row in new.rows():
                self._publish(row)

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


def _notices_of_rows(wakeups: Wakeups, rows: list[dict[str, Any]], _result: Any) -> list[str]:
    return wakeups.for_rows(rows)
