"""Schedules: what users see, what ``add_schedule`` accepts, and the firing rules.

A schedule names a job type, its params and a trigger (see
:mod:`runtime.schedules.spec`). Its *slots* are the instants its trigger
fires; each slot makes at most one job, linked to the schedule and the slot.

Two policies shape what a firing does:

* ``overlap`` (:class:`Overlap`), when a slot comes while a job of the
  schedule is unfinished (any status but a terminal one):

  - ``skip``: the slot makes no job.
  - ``queue``: the slot makes a job that waits (status ``locked``) until the
    earlier ones finished: the schedule's jobs share one resource lock key,
    so they run one at a time, in slot order.
  - ``allow``: the slot makes a job that may run beside the earlier ones.

* ``misfire`` (:class:`Misfire`), for slots *missed*: a slot is missed when
  the scheduler reaches it more than the misfire grace after it (the
  runtime was down, or the host slept). When the scheduler looks at a
  schedule, the latest due slot fires normally if it is within the grace;
  every other due slot is missed, and:

  - ``skip``: missed slots make no job.
  - ``run_once``: all due slots together make one job, for the latest slot.
  - ``run_all``: each due slot makes a job, the latest ``max_catch_up`` of
    them (older ones are dropped).

An interval of ``"continuous"`` has no slots: the next job is made as soon
as the previous one finished (its slot is that job's finish time), so it
never overlaps and never misfires.
"""

from __future__ import annotations

import enum
import sys
import uuid
from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from runtime.domain.checks import is_int
from runtime.domain.clock import to_datetime
from runtime.domain.errors import InvalidSchedule
from runtime.domain.storable import check_text, text_problem
from runtime.jobs.enqueue import DUE_YEAR_MAX, DUE_YEAR_MIN
from runtime.schedules.cron_seconds import CronSeconds, croniter_order
from runtime.schedules.spec import (
    CronTrigger,
    DateTrigger,
    FieldValue,
    IntervalTrigger,
    Trigger,
    fire_times_between,
    next_fire_time,
    validate_timezone,
)

__all__ = [
    "CALENDAR_FIELDS",
    "MAX_CATCH_UP_DEFAULT",
    "MAX_CATCH_UP_MAX",
    "MISFIRE_DEFAULT",
    "OVERLAP_DEFAULT",
    "Misfire",
    "Overlap",
    "Schedule",
    "SlotPlan",
    "build_trigger",
    "first_fire_at",
    "is_continuous",
    "plan_slots",
    "resume_fire_at",
]


class Overlap(enum.StrEnum):
    """What a slot does while an earlier job of its schedule is unfinished."""

    SKIP = "skip"
    QUEUE = "queue"
    ALLOW = "allow"


class Misfire(enum.StrEnum):
    """What happens to slots missed while no scheduler was running."""

    SKIP = "skip"
    RUN_ONCE = "run_once"
    RUN_ALL = "run_all"


OVERLAP_DEFAULT = Overlap.SKIP
MISFIRE_DEFAULT = Misfire.RUN_ONCE
MAX_CATCH_UP_DEFAULT = 100
CALENDAR_FIELDS = ("year", "month", "day", "week", "day_of_week", "hour", "minute", "second")

_TRIGGER: TypeAdapter[Trigger] = TypeAdapter(Trigger)
_MICROSECOND = timedelta(microseconds=1)


class Schedule(BaseModel):
    """A snapshot of one schedule as the store had it when it was read."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    job_type: str
    params: dict[str, Any] = {}
    trigger: Trigger
    tz: str = "UTC"
    overlap: Overlap = OVERLAP_DEFAULT
    misfire: Misfire = MISFIRE_DEFAULT
    max_catch_up: int = MAX_CATCH_UP_DEFAULT
    paused: bool = False
    last_fire_at: datetime | None = None
    next_fire_at: datetime | None = None
    last_job_id: uuid.UUID | None = None
    created_at: datetime
    updated_at: datetime
    tenant_id: str | None = None
    queue: str | None = None  # its jobs' queue; None: their type's
    user_id: str | None = None  # the user its jobs carry

    @property
    def kind(self) -> Literal["date", "interval", "cron"]:
        return self.trigger.kind

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Schedule:
        return cls(
            **{name: row[name] for name in _PLAIN},
            trigger=parse_trigger(row["trigger"]),
            **{name: to_datetime(row[name]) for name in _TIMES},
        )


_TIMES = ("last_fire_at", "next_fire_at", "created_at", "updated_at")
_PLAIN = tuple(n for n in Schedule.model_fields if n not in _TIMES and n != "trigger")


def parse_trigger(data: Mapping[str, Any]) -> Trigger:
    """A trigger back from its stored JSON."""
    return _TRIGGER.validate_python(data)


def dump_trigger(trigger: Trigger) -> dict[str, Any]:
    dumped: dict[str, Any] = trigger.model_dump(mode="json")
    return dumped


def is_continuous(trigger: Trigger) -> bool:
    return isinstance(trigger, IntervalTrigger) and trigger.every is None


# -- building a trigger from add_schedule's arguments ---------------------------


def build_trigger(
    *,
    every: str | float | timedelta | None = None,
    cron: str | None = None,
    at: datetime | None = None,
    fields: Mapping[str, FieldValue] | None = None,
    tz: str = "UTC",
    start: datetime | None = None,
    end: datetime | None = None,
    now: float,
    cron_seconds: CronSeconds | None = None,
) -> Trigger:
    """The trigger that ``add_schedule`` describes; :class:`InvalidSchedule` if none.

    Exactly one of ``every``, ``cron``, ``at`` and ``fields`` must be given.
    Naive datetimes are read in ``tz``. An interval without ``start`` first
    fires one interval after ``now``; ``"continuous"`` fires at once. A
    six-field ``cron`` needs ``cron_seconds`` ("first" or "last", see
    :mod:`runtime.schedules.cron_seconds`); it is stored with its seconds last.
    """
    if cron_seconds is not None and cron is None:
        raise InvalidSchedule("cron_seconds= applies to cron= only")
    kinds = {"every": every, "cron": cron, "at": at, "fields": fields}
    given = [name for name, value in kinds.items() if value is not None]
    if len(given) != 1:
        got = ", ".join(f"{name}=" for name in given) or "none"
        raise InvalidSchedule(f"give exactly one of every=, cron=, at= or fields=; got {got}")
    zone = _zone(tz)
    for field, moment in (("at", at), ("start", start), ("end", end)):
        # Near year 1 or 9999, reading a moment in UTC or adding an interval overflows.
        if moment is not None and not DUE_YEAR_MIN <= moment.year <= DUE_YEAR_MAX:
            raise InvalidSchedule(
                f"{field} must be between the years {DUE_YEAR_MIN} and {DUE_YEAR_MAX}"
            )
    try:
        start, end = _aware(start, zone), _aware(end, zone)
        if every is not None:
            return _interval(every, start, end, now)
        if cron is not None:
            expression = croniter_order(cron, cron_seconds)
            return CronTrigger(expression=expression, tz=tz, start=start, end=end)
        if at is not None:
            if start is not None or end is not None:
                raise ValueError("start= and end= apply to repeating schedules, not at=")
            return DateTrigger(at=_aware(at, zone))
        assert fields is not None
        return CronTrigger.from_fields(**_calendar(fields), tz=tz, start=start, end=end)
    except ValidationError as err:
        raise InvalidSchedule(_describe(err)) from err
    except (ValueError, TypeError) as err:
        raise InvalidSchedule(str(err)) from err


def _zone(tz: str) -> ZoneInfo:
    try:
        return validate_timezone(tz)
    except ValueError as err:
        raise InvalidSchedule(str(err)) from err


def _aware(moment: datetime | None, zone: ZoneInfo) -> datetime | None:
    if moment is None or moment.utcoffset() is not None:
        return moment
    return moment.replace(tzinfo=zone)


def _interval(
    every: str | float | timedelta, start: datetime | None, end: datetime | None, now: float
) -> IntervalTrigger:
    trigger = IntervalTrigger(every=every, start=start, end=end)
    created = datetime.fromtimestamp(now, UTC)
    if trigger.every is None:
        return trigger.anchored(created)
    try:
        first = created + trigger.every
    except OverflowError:
        first = None  # past year 9999
    # Its slots must be moments a job may be made at, as for at= and start=.
    if first is None or first.year > DUE_YEAR_MAX:
        raise ValueError(
            f"interval {every!r} is too long: one interval from now is past the year {DUE_YEAR_MAX}"
        )
    return trigger.anchored(first)


def _calendar(fields: Mapping[str, FieldValue]) -> dict[str, FieldValue]:
    unknown = sorted(set(fields) - set(CALENDAR_FIELDS))
    if unknown:
        raise ValueError(
            f"unknown calendar field {unknown[0]!r}; fields are {', '.join(CALENDAR_FIELDS)}"
        )
    return dict(fields)


def _describe(err: ValidationError) -> str:
    parts = []
    for error in err.errors(include_url=False):
        message = str(error["msg"]).removeprefix("Value error, ")
        where = ".".join(str(p) for p in error["loc"])
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


MAX_CATCH_UP_MAX = 100_000
"""The most missed slots ``run_all`` may catch up on (as the HTTP API allows)."""


def check_options(
    overlap: Overlap | str,
    misfire: Misfire | str,
    max_catch_up: int,
    *,
    name: str | None = None,
    paused: bool = False,
    tenant_id: str | None = None,
    queue: str | None = None,
    user_id: str | None = None,
) -> None:
    """Raise :class:`InvalidSchedule` naming a bad option: checked before the
    schedule is stored, since a stored bad value would fail every later read."""
    for enum_type, value, field in ((Overlap, overlap, "overlap"), (Misfire, misfire, "misfire")):
        if not isinstance(value, str) or value not in {m.value for m in enum_type}:
            choices = ", ".join(repr(m.value) for m in enum_type)
            raise InvalidSchedule(f"{field}={value!r}: expected one of {choices}")
    if not (is_int(max_catch_up) and 1 <= max_catch_up <= MAX_CATCH_UP_MAX):
        raise InvalidSchedule(
            f"max_catch_up must be an int >= 1 and <= {MAX_CATCH_UP_MAX}, got {max_catch_up!r}"
        )
    if name is not None and not isinstance(name, str):
        raise InvalidSchedule(f"name must be a str (or None), got {name!r}")
    if name is not None and not name.strip():
        raise InvalidSchedule("name must not be empty")
    if tenant_id is not None and not isinstance(tenant_id, str):
        raise InvalidSchedule(f"tenant_id must be a str (or None), got {tenant_id!r}")
    for field, text in (("name", name), ("tenant_id", tenant_id)):
        problem = text_problem(text) if text is not None else None
        if problem is not None:
            raise InvalidSchedule(f"{field} {problem}, which cannot be stored: {text!r}")
    if not isinstance(paused, bool):
        raise InvalidSchedule(f"paused must be a bool, got {paused!r}")
    if queue is not None and not (isinstance(queue, str) and queue):
        raise InvalidSchedule(f"queue must be a non-empty name (or None), got {queue!r}")
    if user_id is not None and not isinstance(user_id, str):
        raise InvalidSchedule(f"user_id must be a str (or None), got {user_id!r}")
    for field, text in (("queue", queue), ("user_id", user_id)):
        try:
            check_text(field, text)
        except ValueError as err:
            raise InvalidSchedule(str(err)) from None


# -- fire times ------------------------------------------------------------------------


def _moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def first_fire_at(trigger: Trigger, now: float) -> float | None:
    """When a new schedule first fires: its first slot at or after ``now``.

    A date in the past is still due (the misfire policy decides), and a
    continuous interval is due at its start.
    """
    if isinstance(trigger, DateTrigger):
        return trigger.at.timestamp()
    if is_continuous(trigger):
        assert trigger.start is not None, "build_trigger anchors intervals"
        due = next_fire_time(trigger, trigger.start)
        return None if due is None else due.timestamp()
    due = next_fire_time(trigger, _moment(now) - _MICROSECOND)
    return None if due is None else due.timestamp()


def resume_fire_at(trigger: Trigger, next_fire_at: float | None, now: float) -> float | None:
    """The next fire time of a resumed schedule: slots passed while paused are not
    missed, they are skipped; a date not yet fired stays due. A continuous
    interval is due at once, but never before its start nor after its end."""
    if isinstance(trigger, DateTrigger):
        return next_fire_at
    after = _moment(now) if is_continuous(trigger) else _moment(now) - _MICROSECOND
    due = next_fire_time(trigger, after)
    return None if due is None else due.timestamp()


class StoredTriggerRules:
    """:func:`first_fire_at` and :func:`resume_fire_at` on triggers as the
    store keeps them (JSON), for the store's schedule writes
    (``runtime.store.schedule_ops.TriggerRules``)."""

    def first_fire_at(self, trigger: Mapping[str, Any], now: float) -> float | None:
        return first_fire_at(parse_trigger(trigger), now)

    def resume_fire_at(
        self, trigger: Mapping[str, Any], next_fire_at: float | None, now: float
    ) -> float | None:
        return resume_fire_at(parse_trigger(trigger), next_fire_at, now)


TRIGGER_RULES = StoredTriggerRules()


# Upcoming slots per trigger, a run at a time: a cron search costs about as
# much for a dozen slots as for one, and schedules that share a trigger (many
# fire "0 * * * *") share the work. Runs start short and grow with reuse, so
# thousands of distinct triggers cost little more than a slot each.
_UPCOMING_FIRST = 2
_UPCOMING_MAX = 64
_UPCOMING_TRIGGERS_MAX = 4096
_FAR_FUTURE = datetime(9999, 1, 1, tzinfo=UTC)


@dataclass(slots=True)
class _Upcoming:
    since: float  # the slots are every slot after this, in order
    slots: tuple[float, ...]
    complete: bool  # no slots after the last


_upcoming: OrderedDict[Trigger, _Upcoming] = OrderedDict()


def _next_after(trigger: Trigger, epoch: float) -> float | None:
    """The first slot strictly after ``epoch`` (not for continuous triggers)."""
    run = _upcoming.get(trigger)
    if run is not None and run.since <= epoch and (run.complete or epoch < run.slots[-1]):
        _upcoming.move_to_end(trigger)
        index = bisect_right(run.slots, epoch)
        return run.slots[index] if index < len(run.slots) else None
    grown = 0 if run is None else min(4 * len(run.slots), _UPCOMING_MAX)
    count = max(_UPCOMING_FIRST, grown)
    found = fire_times_between(trigger, _moment(epoch), _FAR_FUTURE, limit=count)
    slots = tuple(moment.timestamp() for moment in found)
    _upcoming[trigger] = _Upcoming(epoch, slots, len(slots) < count)
    _upcoming.move_to_end(trigger)
    if len(_upcoming) > _UPCOMING_TRIGGERS_MAX:
        _upcoming.popitem(last=False)
    return slots[0] if slots else None


@dataclass(frozen=True, slots=True)
class SlotPlan:
    """What firing a due schedule does: one job per slot in ``slots`` (oldest
    first), then wait for ``next_fire_at`` (None: never again)."""

    slots: tuple[float, ...]
    next_fire_at: float | None
    missed: bool  # some due slots were missed (later than the grace)


def plan_slots(
    trigger: Trigger,
    due: float,
    now: float,
    *,
    misfire: Misfire,
    max_catch_up: int,
    grace: float,
) -> SlotPlan:
    """Apply the misfire rule (module docstring) to the slots from ``due`` to ``now``.

    ``due`` is the schedule's first unfired slot. The work grows with the
    number of slots kept (``max_catch_up``), not with the length of the
    downtime. Not for continuous triggers, which have no slots.
    """
    several = False  # more than one slot is due
    if isinstance(trigger, DateTrigger):
        slots, following = [due], None
    else:
        following = _next_after(trigger, due)
        if following is not None and following <= now:
            several = True
            wanted = max_catch_up if misfire is Misfire.RUN_ALL else 1
            spacing = timedelta(seconds=following - due)
            slots = _latest_slots(trigger, due, now, wanted, spacing) or [due]
            following = _next_after(trigger, now)
        else:
            slots = [due]
    next_fire_at = following
    latest = slots[-1]
    on_time = now - latest <= grace
    if on_time and not several:
        return SlotPlan((latest,), next_fire_at, missed=False)
    if misfire is Misfire.SKIP:
        return SlotPlan((latest,) if on_time else (), next_fire_at, missed=True)
    if misfire is Misfire.RUN_ONCE:
        return SlotPlan((latest,), next_fire_at, missed=True)
    return SlotPlan(tuple(slots), next_fire_at, missed=True)


def _latest_slots(
    trigger: Trigger, first: float, now: float, count: int, spacing: timedelta
) -> list[float]:
    """The latest ``count`` slots in [first, now], searching back from ``now`` in
    widening windows so a long downtime costs no more than a short one."""
    floor, until = _moment(first) - _MICROSECOND, _moment(now)
    window = max(spacing, _MICROSECOND) * (count + 1)
    while True:
        low = floor if window >= until - floor else until - window
        found = fire_times_between(trigger, low, until, limit=sys.maxsize)
        if len(found) >= count or low == floor:
            return [moment.timestamp() for moment in found[-count:]]
        window *= 4
