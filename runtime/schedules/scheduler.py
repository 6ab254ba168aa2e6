"""The scheduler actor: fires schedules on their slots, exactly once per slot.

It keeps every schedule in memory with a heap of due times. A tick pops the
schedules that are due and touches no other, so its cost does not grow with
the number of schedules. Between ticks it sleeps on the event loop's clock
(tests drive it with trio's ``MockClock``) until the earliest due time, a
change this process made (:meth:`Scheduler.note`), or the next recheck,
which re-reads schedules changed by other processes and the jobs that
continuous schedules wait for.

Firing is planned here (which slots, which job rows, the next fire time:
see :func:`runtime.schedules.model.plan_slots`) and applied by
:class:`~runtime.store.schedule_ops.FireSchedules`, a compare-and-set in the
store. Several runtimes may run schedulers on one database: whoever commits
first fires the slot; the others find the schedule moved on and adopt it.
The unique index on the jobs' (schedule_id, slot) backs this up.
"""

from __future__ import annotations

import heapq
import logging
import math
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus

from runtime.domain.clock import Clock
from runtime.domain.errors import InvalidParams, StorageUnavailable, UnknownJobType
from runtime.domain.steps import STEPS_TYPE
from runtime.jobs.enqueue import build_rows, new_job_id
from runtime.jobs.events import EventBus, JobSubscription
from runtime.jobs.outages import through_outages
from runtime.jobs.registry import JobType, Registry
from runtime.schedules.model import Misfire, Overlap, is_continuous, parse_trigger, plan_slots
from runtime.schedules.spec import IntervalTrigger, Trigger
from runtime.store import Store
from runtime.store.schedule_ops import Fired, FireSchedules, Firing
from runtime.store.schedule_reads import changed_since, finished_jobs
from runtime.workflows.step_schedules import scheduled_job_type, scheduled_steps_row

Row = dict[str, Any]
JobsMade = Callable[[Sequence[Row]], None]

SCHEDULER_RECHECK_DEFAULT = 1.0
SCHEDULER_FULL_RELOAD_DEFAULT = 60.0
# A recheck re-reads rows updated since the previous one, less this margin
# (clock skew between hosts); the full reload catches anything older.
RELOAD_MARGIN_DEFAULT = 5.0
MISFIRE_GRACE_DEFAULT = 60.0
FIRE_BATCH_DEFAULT = 500
FIRE_RETRY_DELAY_DEFAULT = 1.0
QUEUE_LOCK_PREFIX = "schedule:"

log = logging.getLogger("callboard.scheduler")


@dataclass(frozen=True, slots=True)
class SchedulerStatistics:
    """Counts since the scheduler started."""

    schedules: int  # schedules known
    examined: int  # due schedules looked at, one per firing: the work of all ticks
    jobs: int  # jobs made
    busy: int  # slots that made no job: overlap "skip" found one unfinished
    missed: int  # firings that found missed slots (misfire policy applied)
    stale: int  # firings refused: the schedule had moved on (fired elsewhere, changed)
    rechecks: int


@dataclass(slots=True)
class _Entry:
    row: Row
    trigger: Trigger
    due: float | None = None
    seq: int = 0  # of its latest heap item; older items are stale
    template: Row | None = None  # its validated job row, while what it depends on holds
    template_of: tuple[Any, ...] = ()
    # The revision at which a continuous firing made no job (its params no longer
    # fit): not due again until the row changes, or it would re-fire at once.
    unfit_at: int | None = None


class Scheduler:
    """Fires the schedules of one store. Start it with ``await tg.start(s.run)``."""

    def __init__(
        self,
        *,
        store: Store,
        registry: Registry,
        clock: Clock,
        on_jobs: JobsMade | None = None,
        bus: EventBus | None = None,
        recheck: float = SCHEDULER_RECHECK_DEFAULT,
        misfire_grace: float = MISFIRE_GRACE_DEFAULT,
        batch: int = FIRE_BATCH_DEFAULT,
    ) -> None:
        if misfire_grace < 0:
            raise ValueError(f"misfire_grace must be >= 0, got {misfire_grace}")
        if batch < 1:
            raise ValueError(f"batch must be >= 1, got {batch}")
        self._store, self._registry, self._clock = store, registry, clock
        self._on_jobs = on_jobs
        self._bus = bus
        self._recheck_every = recheck if recheck > 0 else math.inf
        self._grace = misfire_grace
        self._batch = batch
        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[float, int, str]] = []
        self._seq = 0
        self._removed: set[str] = set()
        self._unknown: set[str] = set()  # schedules whose job type this process lacks
        self._watched: dict[uuid.UUID, str] = {}  # job -> its continuous schedule
        self._to_check: set[uuid.UUID] = set()  # watched jobs that may have ended
        self._watchers: list[tuple[uuid.UUID, JobSubscription]] = []
        self._tg: TaskGroup | None = None
        self._changed = anyio.Event()
        self._recheck_at = -math.inf
        self._full_at = -math.inf
        self._read_at: float | None = None
        self._examined = self._jobs = self._busy = self._missed = self._stale = 0
        self._rechecks = 0

    # -- changes made by this process ------------------------------------------

    def note(self, row: Mapping[str, Any]) -> None:
        """A schedule written by this process: fire it on its (new) time."""
        self._set(dict(row))
        self._changed.set()

    def forget(self, schedule_id: str) -> None:
        """A schedule removed by this process."""
        self._removed.add(schedule_id)
        self._entries.pop(schedule_id, None)

    def statistics(self) -> SchedulerStatistics:
        return SchedulerStatistics(
            schedules=len(self._entries),
            examined=self._examined,
            jobs=self._jobs,
            busy=self._busy,
            missed=self._missed,
            stale=self._stale,
            rechecks=self._rechecks,
        )

    # -- the actor ---------------------------------------------------------------

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        await self._recheck(self._clock.now())
        async with anyio.create_task_group() as tg:
            self._tg = tg
            for job_id, sub in self._watchers:
                tg.start_soon(self._await_end, job_id, sub)
            self._watchers.clear()
            task_status.started()
            await self._loop()

    async def _loop(self) -> None:
        while True:
            self._changed = anyio.Event()  # before the checks: a change after them is not lost
            now = self._clock.now()
            if now >= self._recheck_at:
                await self._recheck(now)
            elif self._to_check:
                job_ids, self._to_check = list(self._to_check), set()
                await self._check_watched(job_ids)
            elif due := self._pop_due(now):
                await self._fire(due, now)
            else:
                self._drop_stale_top()
                wake = min(self._heap[0][0] if self._heap else math.inf, self._recheck_at)
                with anyio.move_on_after(wake - now):
                    await self._changed.wait()

    # -- the heap ----------------------------------------------------------------

    def _set(self, row: Row) -> bool:
        """Adopt ``row`` unless what we hold is as new; schedule its next firing."""
        schedule_id = row["id"]
        entry = self._entries.get(schedule_id)
        if schedule_id in self._removed or (entry and entry.row["revision"] >= row["revision"]):
            return False
        if entry is None or entry.row["trigger"] != row["trigger"]:
            entry = _Entry(row, parse_trigger(row["trigger"]))
            self._entries[schedule_id] = entry
        entry.row = row
        self._unknown.discard(schedule_id)
        self._push(entry, self._due_of(entry))
        return True

    def _due_of(self, entry: _Entry) -> float | None:
        row, trigger = entry.row, entry.trigger
        if _idle(entry):
            return None
        if is_continuous(trigger) and row["last_job_id"] is not None:
            assert isinstance(trigger, IntervalTrigger)
            if trigger.end is None or self._clock.now() <= trigger.end.timestamp():
                self._watch(row["last_job_id"], row["id"])
            return None  # due when that job ends
        next_fire_at: float | None = row["next_fire_at"]
        return next_fire_at

    def _push(self, entry: _Entry, due: float | None, at: float | None = None) -> None:
        entry.due = due
        self._seq += 1
        entry.seq = self._seq
        if due is not None:
            heapq.heappush(self._heap, (due if at is None else at, entry.seq, entry.row["id"]))
        if len(self._heap) > 2 * len(self._entries) + 64:
            self._compact()

    def _valid(self, item: tuple[float, int, str]) -> _Entry | None:
        entry = self._entries.get(item[2])
        return entry if entry is not None and entry.seq == item[1] else None

    def _pop_due(self, now: float) -> list[_Entry]:
        due = []
        while self._heap and self._heap[0][0] <= now:
            entry = self._valid(heapq.heappop(self._heap))
            if entry is not None and entry.due is not None:
                due.append(entry)
        return due

    def _drop_stale_top(self) -> None:
        while self._heap and self._valid(self._heap[0]) is None:
            heapq.heappop(self._heap)

    def _compact(self) -> None:
        self._heap = [item for item in self._heap if self._valid(item) is not None]
        heapq.heapify(self._heap)

    # -- firing ------------------------------------------------------------------

    async def _fire(self, due: list[_Entry], now: float) -> None:
        self._examined += len(due)
        pending = []
        for entries in _chunks(due, self._batch):
            # Checked again: a change noted while we yielded may have moved it.
            live = [e for e in entries if self._entries.get(e.row["id"]) is e and _due(e, now)]
            chunk = [f for entry in live if (f := self._plan(entry, now)) is not None]
            if chunk:
                pending.append((chunk, self._store.submit(FireSchedules(chunk, now))))
                await anyio.lowlevel.checkpoint()  # the writer commits while we plan on
        made: list[Row] = []
        for chunk, result in pending:
            try:
                fired: list[Fired] = await result
            except StorageUnavailable as err:
                log.warning("firing %d schedules failed, retrying: %s", len(chunk), err)
                self._retry(chunk, now + FIRE_RETRY_DELAY_DEFAULT)
                continue
            except Exception:
                log.exception("firing %d schedules failed; retrying", len(chunk))
                self._retry(chunk, now + FIRE_RETRY_DELAY_DEFAULT)
                continue
            made.extend(self._adopt(fired))
        self._jobs += len(made)
        if made and self._on_jobs is not None:
            self._on_jobs(made)

    def _retry(self, chunk: list[Firing], at: float) -> None:
        for firing in chunk:
            entry = self._entries.get(firing.schedule_id)
            if entry is not None and entry.due is not None:
                self._push(entry, entry.due, at)

    def _adopt(self, fired: list[Fired]) -> list[Row]:
        made: list[Row] = []
        for result in fired:
            entry = self._entries.get(result.schedule_id)
            if result.outcome == "gone" or entry is None:
                self._entries.pop(result.schedule_id, None)
                continue
            self._busy += result.outcome == "busy"
            self._stale += result.outcome == "stale"
            made.extend(result.jobs)
            row = result.current if result.changes is None else {**entry.row, **result.changes}
            if row is None or not self._set(row):
                self._push(entry, self._due_of(entry))  # we hold a newer row already: go by it
        return made

    def _plan(self, entry: _Entry, now: float) -> Firing | None:
        row = entry.row
        assert entry.due is not None
        try:
            job_type = scheduled_job_type(self._registry, row["job_type"], row["params"])
        except UnknownJobType:
            self._skip_unknown(entry)
            return None
        trigger = entry.trigger
        if is_continuous(trigger):
            slots, next_fire_at = self._continuous_slot(trigger, entry.due)
            if slots and self._template(job_type, entry) is None:
                # Its slot comes again only when a job ends: with no job it would be
                # due again at once. Skip it until the row changes; write nothing.
                entry.unfit_at = row["revision"]
                self._push(entry, None)
                return None
        else:
            plan = plan_slots(
                trigger,
                entry.due,
                now,
                misfire=Misfire(row["misfire"]),
                max_catch_up=row["max_catch_up"],
                grace=self._grace,
            )
            if plan.missed:
                self._missed += 1
                log.info("schedule %r missed slots; misfire=%s", row["name"], row["misfire"])
            slots, next_fire_at = plan.slots, plan.next_fire_at
        return Firing(
            schedule_id=row["id"],
            revision=row["revision"],
            last_fire_at=row["last_fire_at"],
            last_job_id=row["last_job_id"],
            jobs=self._job_rows(job_type, entry, slots, now),
            next_fire_at=next_fire_at,
            skip_if_busy=row["overlap"] == Overlap.SKIP and not is_continuous(trigger),
        )

    def _continuous_slot(self, trigger: Trigger, due: float) -> tuple[tuple[float, ...], None]:
        """One slot, then none known until its job ends; nothing past the end."""
        assert isinstance(trigger, IntervalTrigger)
        if trigger.end is not None and due > trigger.end.timestamp():
            return (), None
        return (due,), None

    def _job_rows(
        self, job_type: JobType, entry: _Entry, slots: Sequence[float], now: float
    ) -> list[Row]:
        row = entry.row
        template = self._template(job_type, entry) if slots else None
        if template is None:
            return []
        return [
            {
                **template,
                "id": new_job_id(),
                "schedule_id": row["id"],
                "slot": slot,
                "scheduled_at": min(slot, now),
                "created_at": now,
                "updated_at": now,
            }
            for slot in slots
        ]

    def _template(self, job_type: JobType, entry: _Entry) -> Row | None:
        """The schedule's job row, validated once while its params stay the same."""
        row = entry.row
        queue, user_id = row.get("queue"), row.get("user_id")
        key = (job_type, row["params"], row["tenant_id"], row["overlap"], queue, user_id)
        if entry.template is not None and entry.template_of == key:
            return entry.template
        try:
            if row["job_type"] == STEPS_TYPE:
                template = scheduled_steps_row(
                    self._registry,
                    row["params"],
                    now=0.0,
                    tenant_id=row["tenant_id"],
                    queue=queue,
                    user_id=user_id,
                )
            else:
                template = build_rows(
                    job_type,
                    [row["params"]],
                    now=0.0,
                    tenant_id=row["tenant_id"],
                    queue=queue,
                    user_id=user_id,
                )[0]
        except (InvalidParams, UnknownJobType, ValueError, TypeError) as err:
            log.error("schedule %r made no job: its params no longer fit: %s", row["name"], err)
            return None
        if row["overlap"] == Overlap.QUEUE and template["lock_key"] is None:
            template["lock_key"] = QUEUE_LOCK_PREFIX + row["id"]
        entry.template, entry.template_of = template, key
        return template

    def _skip_unknown(self, entry: _Entry) -> None:
        """Leave the schedule to runtimes that know its job type."""
        schedule_id = entry.row["id"]
        if schedule_id not in self._unknown:
            self._unknown.add(schedule_id)
            log.warning(
                "schedule %r: job type %r is not registered here; another runtime may fire it",
                entry.row["name"],
                entry.row["job_type"],
            )
        self._push(entry, None)

    # -- continuous schedules: due when their last job ends ------------------------

    def _watch(self, job_id: uuid.UUID, schedule_id: str) -> None:
        if job_id in self._watched:
            return
        self._watched[job_id] = schedule_id
        self._to_check.add(job_id)  # it may have ended already (before a resume, say)
        self._changed.set()
        if self._bus is None:
            return  # rechecks will see it end
        # Subscribe now, not in the task: an end published meanwhile is not lost.
        sub = self._bus.subscribe(job_id, lambda event: event.is_final)
        if self._tg is None:
            self._watchers.append((job_id, sub))
        else:
            self._tg.start_soon(self._await_end, job_id, sub)

    async def _await_end(self, job_id: uuid.UUID, sub: JobSubscription) -> None:
        with sub:
            await sub.receive()
        self._to_check.add(job_id)
        self._changed.set()

    async def _check_watched(self, job_ids: list[uuid.UUID]) -> None:
        ended = await through_outages(
            "reading scheduled jobs", lambda: self._store.read(finished_jobs, job_ids)
        )
        now = self._clock.now()
        for job_id, finished_at in ended.items():
            schedule_id = self._watched.pop(job_id, None)
            entry = self._entries.get(schedule_id) if schedule_id else None
            if entry is None or entry.row["last_job_id"] != job_id or _idle(entry):
                continue
            self._push(entry, self._continuous_due(entry, finished_at, now))
            self._changed.set()

    def _continuous_due(self, entry: _Entry, finished_at: float | None, now: float) -> float:
        """The next slot: when the last job ended, or when the schedule was resumed
        after it, so every runtime computes the same one."""
        assert isinstance(entry.trigger, IntervalTrigger) and entry.trigger.start is not None
        resumed: float | None = entry.row["next_fire_at"]
        floor = entry.trigger.start.timestamp() if resumed is None else resumed
        return max(finished_at if finished_at is not None else now, floor)

    # -- rechecks: what other processes changed ------------------------------------

    async def _recheck(self, now: float) -> None:
        full = now >= self._full_at
        since = None if full or self._read_at is None else self._read_at - RELOAD_MARGIN_DEFAULT
        known = set(self._entries)
        rows = await through_outages(
            "reading schedules", lambda: self._store.read(changed_since, since)
        )
        self._read_at = now
        for row in rows:
            self._set(row)
        if full:
            for schedule_id in known - {row["id"] for row in rows}:
                self._entries.pop(schedule_id, None)  # removed elsewhere
            self._full_at = now + SCHEDULER_FULL_RELOAD_DEFAULT
        if self._watched:
            await self._check_watched(list(self._watched))
        self._rechecks += 1
        self._recheck_at = now + self._recheck_every


def _idle(entry: _Entry) -> bool:
    """Paused, or a continuous schedule skipped until its row changes."""
    return bool(entry.row["paused"]) or entry.unfit_at == entry.row["revision"]


def _due(entry: _Entry, now: float) -> bool:
    return entry.due is not None and entry.due <= now


def _chunks(items: list[_Entry], size: int) -> Iterator[list[_Entry]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
