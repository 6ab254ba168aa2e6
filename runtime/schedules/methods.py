"""Schedules on the Runtime: add, list, pause, resume, trigger and remove them.
Mixed into :class:`runtime.Runtime`; see :mod:`runtime.schedules.model` for the rules.

::

    await rt.add_schedule("report", {"kind": "daily"}, cron="0 9 * * mon-fri",
                          tz="Europe/Berlin", name="daily-report")
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from anyio.abc import TaskStatus

from runtime.domain.clock import Clock
from runtime.domain.errors import InvalidSchedule, ScheduleNotFound
from runtime.domain.models import Job
from runtime.domain.steps import STEPS_TYPE
from runtime.domain.storable import check_text
from runtime.jobs.enqueue import build_rows, storable_params
from runtime.jobs.events import EventBus
from runtime.jobs.registry import JobType, Registry
from runtime.schedules.cron_seconds import CronSeconds
from runtime.schedules.model import (
    MAX_CATCH_UP_DEFAULT,
    MISFIRE_DEFAULT,
    OVERLAP_DEFAULT,
    TRIGGER_RULES,
    Misfire,
    Overlap,
    Schedule,
    build_trigger,
    check_options,
    dump_trigger,
    first_fire_at,
)
from runtime.schedules.scheduler import QUEUE_LOCK_PREFIX, Scheduler, SchedulerStatistics
from runtime.schedules.spec import FieldValue
from runtime.store import Store
from runtime.store.schedule_ops import FireNow, RemoveSchedule, SaveSchedule, SetSchedulePaused
from runtime.store.schedule_reads import SCHEDULE_LIST_LIMIT_MAX, find_schedule, list_schedules
from runtime.workflows.step_schedules import schedule_params, scheduled_steps_row
from runtime.workflows.step_specs import Step

ScheduleJobType = str | Callable[..., Any] | JobType


class ScheduleMethods:
    """Requires the Runtime's store, registry, clock, event bus and poll interval."""

    registry: Registry
    clock: Clock
    bus: EventBus
    _poll: float
    _scheduler: Scheduler | None = None  # set while the runtime runs workers

    if TYPE_CHECKING:  # provided by Runtime

        @property
        def store(self) -> Store: ...

        def _status_changed(self, row: Mapping[str, Any]) -> None: ...

        def _publish(self, row: Mapping[str, Any]) -> None: ...

    async def add_schedule(
        self,
        job_type: ScheduleJobType | None = None,
        params: Mapping[str, Any] | Any = None,
        *,
        steps: Sequence[Step | Mapping[str, Any]] | None = None,
        step_defaults: Mapping[str, Any] | None = None,
        every: str | float | timedelta | None = None,
        cron: str | None = None,
        cron_seconds: CronSeconds | None = None,
        at: datetime | None = None,
        fields: Mapping[str, FieldValue] | None = None,
        tz: str = "UTC",
        start: datetime | None = None,
        end: datetime | None = None,
        name: str | None = None,
        overlap: Overlap | str = OVERLAP_DEFAULT,
        misfire: Misfire | str = MISFIRE_DEFAULT,
        max_catch_up: int = MAX_CATCH_UP_DEFAULT,
        paused: bool = False,
        tenant_id: str | None = None,
        queue: str | None = None,
        user_id: str | None = None,
    ) -> Schedule:
        """Store a schedule that makes ``job_type`` jobs with ``params``; it is
        durable when this returns.

        Give exactly one of ``every`` (``"15 minutes"``, seconds, a timedelta
        or ``"continuous"``), ``cron`` (five fields, or six with
        ``cron_seconds="first"`` or ``"last"`` saying where the seconds are;
        read in ``tz``), ``at`` (one run) or ``fields`` (calendar fields such as
        ``{"day_of_week": "mon-fri", "hour": 9}``). Naive datetimes are read
        in ``tz``. Adding under a ``name`` the tenant already uses replaces
        that schedule's definition and keeps its id, state and history; an
        identical definition changes nothing. Its jobs go to ``queue`` (else
        their type's) and carry ``tenant_id`` and ``user_id``.

        Instead of ``job_type`` and ``params``, ``steps`` (and
        ``step_defaults``) make each firing a multi-step job, as
        :meth:`Runtime.enqueue_steps` takes them; the schedule's ``job_type``
        is then ``callboard.steps`` and its params hold the steps.

        Raises :class:`UnknownJobType`, :class:`InvalidParams` or
        :class:`InvalidSchedule` and stores nothing when the input is bad.
        """
        type_name, values = self._schedule_job(job_type, params, steps, step_defaults)
        check_options(
            overlap,
            misfire,
            max_catch_up,
            name=name,
            paused=paused,
            tenant_id=tenant_id,
            queue=queue,
            user_id=user_id,
        )
        now = self.clock.now()
        trigger = build_trigger(
            every=every,
            cron=cron,
            at=at,
            fields=fields,
            tz=tz,
            start=start,
            end=end,
            now=now,
            cron_seconds=cron_seconds,
        )
        next_fire_at = first_fire_at(trigger, now)
        if next_fire_at is None:
            raise InvalidSchedule(f"the schedule never fires: {trigger.model_dump_json()}")
        schedule_id = str(uuid.uuid4())
        row = {
            "id": schedule_id,
            "name": name if name is not None else schedule_id,
            "job_type": type_name,
            "params": values,
            "trigger": dump_trigger(trigger),
            "tz": tz,
            "overlap": Overlap(overlap).value,
            "misfire": Misfire(misfire).value,
            "max_catch_up": max_catch_up,
            "paused": paused,
            "last_fire_at": None,
            "next_fire_at": next_fire_at,
            "last_job_id": None,
            "created_at": now,
            "updated_at": now,
            "tenant_id": tenant_id,
            "revision": 1,
            "queue": queue,
            "user_id": user_id,
        }
        keep_anchor = every is not None and start is None
        stored, _created = await self.store.write(
            SaveSchedule(row, keep_anchor=keep_anchor, rules=TRIGGER_RULES)
        )
        self._schedule_written(stored)
        return Schedule.from_row(stored)

    async def schedules(
        self,
        *,
        tenant_id: str | None = None,
        job_type: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> list[Schedule]:
        """Schedules (of this tenant, of this job type), by name."""
        if not 0 < limit <= SCHEDULE_LIST_LIMIT_MAX:
            raise ValueError(f"limit must be within 1..{SCHEDULE_LIST_LIMIT_MAX}, got {limit}")
        if offset < 0:
            raise ValueError(f"offset must be >= 0, got {offset}")
        check_text("tenant_id", tenant_id)
        check_text("job_type", job_type)
        rows = await self.store.read(
            list_schedules, tenant_id=tenant_id, job_type=job_type, limit=limit, offset=offset
        )
        return [Schedule.from_row(row) for row in rows]

    async def get_schedule(self, schedule_id: str, *, tenant_id: str | None = None) -> Schedule:
        """The schedule with this id (or name); :class:`ScheduleNotFound` if none."""
        _check_key(schedule_id, tenant_id)
        row = await self.store.read(find_schedule, schedule_id, tenant_id)
        if row is None:
            raise ScheduleNotFound(schedule_id)
        return Schedule.from_row(row)

    async def pause_schedule(self, schedule_id: str, *, tenant_id: str | None = None) -> Schedule:
        """Stop making jobs; jobs already made are left alone. Pausing twice is fine."""
        return await self._set_paused(schedule_id, tenant_id, paused=True)

    async def resume_schedule(self, schedule_id: str, *, tenant_id: str | None = None) -> Schedule:
        """Make jobs again from the next slot on: slots passed while paused are skipped."""
        return await self._set_paused(schedule_id, tenant_id, paused=False)

    async def _set_paused(self, key: str, tenant_id: str | None, *, paused: bool) -> Schedule:
        _check_key(key, tenant_id)
        op = SetSchedulePaused(key, tenant_id, paused, self.clock.now(), rules=TRIGGER_RULES)
        row = await self.store.write(op)
        self._schedule_written(row)
        return Schedule.from_row(row)

    async def trigger_schedule(self, schedule_id: str, *, tenant_id: str | None = None) -> Job:
        """Make one job of the schedule now, outside its slots (``slot`` is None).

        It is never skipped: with ``overlap="queue"`` it waits its turn, with
        ``"skip"`` or ``"allow"`` it starts at once. Works on paused schedules.
        """
        found = await self.get_schedule(schedule_id, tenant_id=tenant_id)
        now = self.clock.now()
        if found.job_type == STEPS_TYPE:
            job = scheduled_steps_row(
                self.registry,
                found.params,
                now=now,
                tenant_id=found.tenant_id,
                queue=found.queue,
                user_id=found.user_id,
            )
        else:
            job = build_rows(
                self.registry.get(found.job_type),
                [found.params],
                now=now,
                tenant_id=found.tenant_id,
                queue=found.queue,
                user_id=found.user_id,
            )[0]
        if found.overlap is Overlap.QUEUE and job["lock_key"] is None:
            job["lock_key"] = QUEUE_LOCK_PREFIX + found.id
        row, stored = await self.store.write(FireNow(found.id, tenant_id, job, now))
        self._schedule_written(row)
        self._jobs_made([stored])
        return Job.from_row(stored)

    async def remove_schedule(self, schedule_id: str, *, tenant_id: str | None = None) -> None:
        """Delete the schedule; the jobs it made stay (their ``schedule_id`` too)."""
        _check_key(schedule_id, tenant_id)
        row = await self.store.write(RemoveSchedule(schedule_id, tenant_id))
        if self._scheduler is not None:
            self._scheduler.forget(row["id"])

    def scheduler_statistics(self) -> SchedulerStatistics | None:
        """The scheduler's counters; None when this runtime runs no scheduler."""
        return None if self._scheduler is None else self._scheduler.statistics()

    def _schedule_job(
        self,
        job_type: ScheduleJobType | None,
        params: Mapping[str, Any] | Any,
        steps: Sequence[Step | Mapping[str, Any]] | None,
        step_defaults: Mapping[str, Any] | None,
    ) -> tuple[str, dict[str, Any]]:
        """The job type a new schedule names and its stored params."""
        if (job_type is None) == (steps is None):
            raise ValueError("give job_type (with params) or steps, not both")
        if steps is not None:
            if params is not None:
                raise ValueError("a schedule of steps takes no params: give each step its own")
            return STEPS_TYPE, schedule_params(self.registry, steps, step_defaults)
        if step_defaults is not None:
            raise ValueError("step_defaults go with steps")
        assert job_type is not None  # one of the two, as checked above
        jt = job_type if isinstance(job_type, JobType) else self.registry.get(job_type)
        return jt.name, storable_params(jt, params)

    # -- wiring -------------------------------------------------------------------------

    def _schedule_written(self, row: Mapping[str, Any]) -> None:
        if self._scheduler is not None:
            self._scheduler.note(row)

    def _jobs_made(self, rows: Sequence[Mapping[str, Any]]) -> None:
        for row in rows:
            self._status_changed(row)
            self._publish(row)

    async def _run_scheduler(self, *, task_status: TaskStatus[None]) -> None:
        self._scheduler = Scheduler(
            store=self.store,
            registry=self.registry,
            clock=self.clock,
            on_jobs=self._jobs_made,
            bus=self.bus,
            recheck=self._poll,
        )
        await self._scheduler.run(task_status=task_status)


def _check_key(schedule_id: str, tenant_id: str | None) -> None:
    """A ``ValueError`` for an id or name no schedule can have (a NUL character,
    an unpaired surrogate): PostgreSQL would refuse even to look it up."""
    check_text("schedule_id", schedule_id)
    check_text("tenant_id", tenant_id)
