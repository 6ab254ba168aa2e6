"""When a schedule fires: trigger models and pure fire-time arithmetic.

Three kinds of trigger, all frozen pydantic models told apart by ``kind``
(:data:`Trigger` is their discriminated union):

* :class:`DateTrigger` fires once, at ``at``.
* :class:`IntervalTrigger` fires at ``start + k * every`` for k = 0, 1, ...
  Intervals are elapsed time, so daylight saving never affects them. The
  caller anchors ``start`` (normally at the schedule's creation time, see
  :meth:`IntervalTrigger.anchored`); computing fire times without it is an
  error. ``every=None`` ("continuous") has no slots: the schedule is due
  again as soon as it may run, so :func:`next_fire_time` answers
  ``max(after, start)`` and :func:`fire_times_between` answers ``[]``.
* :class:`CronTrigger` fires on the slots of a croniter expression, read as
  wall-clock time in the trigger's time zone. Field order is croniter's:
  ``minute hour day month day_of_week [second [year]]``; in the expression,
  day_of_week is cron's (0 or 7 = Sunday). Build one from calendar fields
  with :meth:`CronTrigger.from_fields` (or :func:`fields_to_cron`).

Every trigger's ``start`` and ``end`` are inclusive bounds on fire times.
All functions take and return aware datetimes; results are in UTC.

Calendar fields (:func:`fields_to_cron`)
-----------------------------------------

Each field takes an int, a list of ints, or a string of comma-separated
parts such as ``"1-6, 9-12"``, ``"*/15"``, ``"10-50/20"``, ``"mon, wed"``.
``day_of_week`` counts **0 = Monday ... 6 = Sunday** (Python's
``weekday()``) or takes the names ``mon`` ... ``sun``; it is converted to
cron's numbering in the expression. Unset fields follow APScheduler's rule:
fields less significant than the least significant set field default to
their minimum (``hour=3`` means 03:00:00 every day), more significant ones
to ``*``; ``week`` and ``day_of_week`` always default to ``*``. ``week``
(ISO week number) has no cron field, so :meth:`CronTrigger.from_fields`
keeps it as a filter (``iso_weeks``) on the local date of each slot.
Calendar fields combine with AND, but cron fires when *either* a restricted
day or a restricted day_of_week matches; ``from_fields`` therefore asks
croniter for AND (``day_or=False``) when both are set.
:func:`fields_to_cron` refuses both cases, since a bare expression cannot
say them.

Daylight saving (cron triggers)
-------------------------------

Like Vixie cron, a trigger is read one of two ways, decided by whether its
hour field matches every hour:

* **Every hour** (``0 * * * *``, ``*/15 * * * *``): the schedule is about
  elapsed time. Slots in a spring-forward gap do not exist and are skipped;
  slots in a fall-back overlap fire at both occurrences. An hourly trigger
  fires 23 times on the spring-forward day and 25 on the fall-back day,
  always one hour apart.
* **Fixed hours** (``30 2 * * *``, ``0 9-17 * * mon-fri``): the schedule is
  about the wall clock. A slot in a gap fires once, at the instant the
  clocks jump (03:00 for a 02:30 slot in Europe/Berlin); slots that land on
  the same instant fire once. A slot in an overlap fires once, at its first
  occurrence.
"""

from __future__ import annotations

import heapq
import math
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from itertools import islice
from typing import Annotated, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from runtime.schedules.calendar import WEEK, FieldValue, cron_parts, fields_to_cron

__all__ = [
    "SEARCH_YEARS_DEFAULT",
    "CronTrigger",
    "DateTrigger",
    "FieldValue",
    "IntervalTrigger",
    "Trigger",
    "fields_to_cron",
    "fire_times_between",
    "next_fire_time",
    "parse_interval",
    "validate_timezone",
]

# How far ahead a cron search looks before deciding a trigger never fires
# again (an expression like "0 0 30 2 *", or a week filter no slot meets).
SEARCH_YEARS_DEFAULT = 50

_SECOND = timedelta(seconds=1)
_TICK = timedelta(microseconds=1)


# -- time zones and intervals -------------------------------------------------


def validate_timezone(name: str) -> ZoneInfo:
    """Return the IANA time zone ``name``; ``ValueError`` if there is none."""
    try:
        return ZoneInfo(name)
    # ZoneInfo reports a bad key as ValueError, KeyError or, for names like
    # "Europe" that are directories in the database, OSError.
    except (ZoneInfoNotFoundError, ValueError, OSError, TypeError) as err:
        raise ValueError(
            f"unknown time zone {name!r}; expected an IANA name such as 'Europe/Berlin'"
        ) from err


_UNITS: Mapping[str, timedelta] = {
    "ms": timedelta(milliseconds=1),
    "millisecond": timedelta(milliseconds=1),
    "s": _SECOND,
    "sec": _SECOND,
    "second": _SECOND,
    "m": timedelta(minutes=1),
    "min": timedelta(minutes=1),
    "minute": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "hr": timedelta(hours=1),
    "hour": timedelta(hours=1),
    "d": timedelta(days=1),
    "day": timedelta(days=1),
    "w": timedelta(weeks=1),
    "wk": timedelta(weeks=1),
    "week": timedelta(weeks=1),
}
_NUMBER = r"\d+(?:\.\d*)?|\.\d+"
_TERM = re.compile(rf"({_NUMBER})\s*([a-z]+)")
_TERMS = re.compile(rf"(?:{_TERM.pattern})(?:[\s,]*(?:{_TERM.pattern}))*")
_CONTINUOUS = "continuous"


def _unit(word: str, text: str) -> timedelta:
    # Accept plurals ("minutes", "hrs") by trying the word without its "s".
    for candidate in (word, word.removesuffix("s")):
        if candidate in _UNITS:
            return _UNITS[candidate]
    raise ValueError(f"unknown unit {word!r} in interval {text!r}")


def _parse_interval_text(text: str) -> timedelta | None:
    normalized = text.strip().lower()
    if normalized == _CONTINUOUS:
        return None
    if re.fullmatch(_NUMBER, normalized):
        return _seconds(float(normalized), text)
    if not _TERMS.fullmatch(normalized):
        raise ValueError(
            f"cannot read interval {text!r}; expected e.g. '15 minutes', '30s', "
            f"'1 hour 30 minutes' or 'continuous'"
        )
    total = timedelta(0)
    for amount, word in _TERM.findall(normalized):
        total += _unit(word, text) * float(amount)
    return total


def _seconds(amount: float, value: object) -> timedelta:
    if not math.isfinite(amount):
        raise ValueError(f"interval must be a finite number of seconds, got {value!r}")
    try:
        return timedelta(seconds=amount)
    except OverflowError as err:
        raise ValueError(f"interval {value!r} is too long") from err


def parse_interval(value: str | int | float | timedelta) -> timedelta | None:
    """Read an interval: seconds as a number, a timedelta, or text.

    Text is one or more ``<number> <unit>`` terms ("15 minutes", "30s",
    "1 hour 30 minutes", "1.5h"; units ms, s, m/min, h, d, w and their long
    forms), a bare number of seconds, or "continuous", which gives ``None``.
    Zero, negative and unreadable intervals raise ``ValueError``.
    """
    if isinstance(value, timedelta):
        interval: timedelta | None = value
    elif isinstance(value, str):
        try:
            interval = _parse_interval_text(value)
        except OverflowError as err:
            raise ValueError(f"interval {value!r} is too long") from err
    elif isinstance(value, int | float) and not isinstance(value, bool):
        interval = _seconds(float(value), value)
    else:
        raise ValueError(f"interval must be seconds, a timedelta or text, got {value!r}")
    if interval is not None and interval <= timedelta(0):
        raise ValueError(f"interval must be positive, got {value!r}")
    return interval


# -- trigger models -----------------------------------------------------------


class DateTrigger(BaseModel):
    """Fire once, at ``at``."""

    # Written out per model (not shared) so that mypy's pydantic plugin sees frozen=True.
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["date"] = "date"
    at: AwareDatetime


class _Windowed(BaseModel):
    """A repeating trigger that fires only between ``start`` and ``end`` (inclusive)."""

    # Written out per model (not shared) so that mypy's pydantic plugin sees
    # frozen=True. Timedeltas go to JSON as seconds, which parse_interval reads back.
    model_config = ConfigDict(frozen=True, extra="forbid", ser_json_timedelta="float")

    start: AwareDatetime | None = None
    end: AwareDatetime | None = None

    @model_validator(mode="after")
    def _end_not_before_start(self) -> Self:
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(f"end {self.end.isoformat()} is before start {self.start.isoformat()}")
        return self


class IntervalTrigger(_Windowed):
    """Fire at ``start + k * every``; ``every=None`` means continuously."""

    kind: Literal["interval"] = "interval"
    every: timedelta | None

    @field_validator("every", mode="before")
    @classmethod
    def _read_every(cls, value: object) -> timedelta | None:
        if value is None:
            return None
        if isinstance(value, str | int | float | timedelta):
            return parse_interval(value)
        raise ValueError(f"interval must be seconds, a timedelta or text, got {value!r}")

    def anchored(self, at: datetime) -> IntervalTrigger:
        """This trigger with ``start`` set to ``at`` unless it already has one."""
        if self.start is not None:
            return self
        return self.model_copy(update={"start": _require_aware(at, "at")})


@lru_cache(maxsize=256)
def _expand_cron(expression: str) -> tuple[tuple[object, ...], ...]:
    try:
        expanded, _ = croniter.expand(expression)
    except CroniterBadCronError as err:
        # croniter sometimes puts a whole traceback in its message; its last
        # line is the part that explains the problem.
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else "malformed"
        raise ValueError(f"invalid cron expression {expression!r}: {reason}") from err
    return tuple(tuple(values) for values in expanded)


def _fires_every_hour(expression: str) -> bool:
    hours = _expand_cron(expression)[1]
    return hours == ("*",) or set(hours) == set(range(24))


class CronTrigger(_Windowed):
    """Fire on a croniter expression's slots, as wall-clock time in ``tz``.

    ``iso_weeks`` restricts slots to those ISO week numbers of the local
    date. ``day_or`` is croniter's: True fires when either a restricted
    day-of-month or a restricted day-of-week matches (cron), False needs both.
    """

    kind: Literal["cron"] = "cron"
    expression: str
    tz: str = "UTC"
    iso_weeks: frozenset[int] | None = None
    day_or: bool = True

    @field_validator("expression")
    @classmethod
    def _check_expression(cls, value: str) -> str:
        _expand_cron(value)
        return value

    @field_validator("tz")
    @classmethod
    def _check_tz(cls, value: str) -> str:
        validate_timezone(value)
        return value

    @field_validator("iso_weeks")
    @classmethod
    def _check_iso_weeks(cls, value: frozenset[int] | None) -> frozenset[int] | None:
        if value is not None and (not value or not value <= WEEK.every):
            raise ValueError(f"iso_weeks must be a non-empty set of 1-53, got {sorted(value)}")
        return value

    @classmethod
    def from_fields(
        cls,
        *,
        year: FieldValue | None = None,
        month: FieldValue | None = None,
        day: FieldValue | None = None,
        week: FieldValue | None = None,
        day_of_week: FieldValue | None = None,
        hour: FieldValue | None = None,
        minute: FieldValue | None = None,
        second: FieldValue | None = None,
        tz: str = "UTC",
        start: datetime | None = None,
        end: datetime | None = None,
    ) -> CronTrigger:
        """A trigger from calendar fields, as :func:`fields_to_cron` reads them.

        ``week`` becomes the ``iso_weeks`` filter, and ``day`` with
        ``day_of_week`` must both match.
        """
        parts = cron_parts((year, month, day, week, day_of_week, hour, minute, second))
        return cls(
            expression=parts.expression,
            iso_weeks=parts.iso_weeks,
            day_or=parts.day_or,
            tz=tz,
            start=start,
            end=end,
        )


Trigger = Annotated[DateTrigger | IntervalTrigger | CronTrigger, Field(discriminator="kind")]
"""Any trigger; pydantic picks the model by ``kind``."""


# -- fire times -----------------------------------------------------------------


def _require_aware(moment: datetime, name: str) -> datetime:
    if moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime, got naive {moment!r}")
    return moment.astimezone(UTC)


def _offset(moment: datetime) -> timedelta:
    offset = moment.utcoffset()
    assert offset is not None, "only called on datetimes with a ZoneInfo"
    return offset


def _exclusive_floor(trigger: _Windowed, after: datetime) -> datetime:
    """Fire times must be later than this; folds ``start`` (inclusive) into ``after``."""
    if trigger.start is not None and trigger.start > after:
        return trigger.start.astimezone(UTC) - _TICK
    return after


def _clocks_jump(before: datetime, after: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant in (before, after] at which ``zone``'s offset changes.

    ``before`` and ``after`` are whole-second UTC instants either side of one
    transition; transitions fall on whole seconds, so bisecting seconds finds
    it. (Arithmetic stays in UTC: adding to a zoned datetime moves its wall
    clock, not the instant.)
    """
    old_offset = _offset(before.astimezone(zone))
    while after - before > _SECOND:
        middle = before + _SECOND * ((after - before) // _SECOND // 2)
        if _offset(middle.astimezone(zone)) == old_offset:
            before = middle
        else:
            after = middle
    return after


def _slot_instants(
    slot: datetime, zone: ZoneInfo, every_hour: bool
) -> tuple[datetime, tuple[datetime, ...]]:
    """When the naive local ``slot`` fires: (a lower bound for this and all
    later slots, the UTC instants themselves). See the module docstring."""
    first = slot.replace(tzinfo=zone, fold=0)
    second = slot.replace(tzinfo=zone, fold=1)
    if _offset(first) == _offset(second):
        instant = first.astimezone(UTC)
        return instant, (instant,)
    if _offset(first) > _offset(second):
        # Clocks went back: fold=0 is the first of the slot's two occurrences.
        both = (first.astimezone(UTC), second.astimezone(UTC))
        return both[0], both if every_hour else both[:1]
    # Clocks went forward: the slot never shows on the clock. Read with the
    # new offset (fold=1) it is an instant before the jump, read with the old
    # one (fold=0) an instant after it.
    jump = _clocks_jump(second.astimezone(UTC), first.astimezone(UTC), zone)
    return jump, () if every_hour else (jump,)


def _search_start(floor: datetime, zone: ZoneInfo) -> datetime:
    """The naive local time from which to ask croniter for slots."""
    wall = floor.astimezone(zone).replace(tzinfo=None, fold=0)
    # Inside a repeated hour, slots earlier on the wall clock still have
    # their second occurrence ahead, so start the search a repeat earlier.
    repeat = _offset(wall.replace(tzinfo=zone, fold=0)) - _offset(wall.replace(tzinfo=zone, fold=1))
    wall -= max(repeat, timedelta(0))
    # croniter returns slots strictly after its start.
    return wall.replace(microsecond=0) - _SECOND


def _local_slots(trigger: CronTrigger, start: datetime) -> Iterator[datetime]:
    """The trigger's naive wall-clock slots after ``start``, in order."""
    horizon = start.year + SEARCH_YEARS_DEFAULT
    slots = croniter(
        trigger.expression,
        start,
        day_or=trigger.day_or,
        max_years_between_matches=SEARCH_YEARS_DEFAULT,
    )
    while True:
        try:
            slot: datetime = slots.get_next(datetime)
        except CroniterBadDateError:
            return
        if slot.year > horizon:
            return
        if trigger.iso_weeks is None or slot.isocalendar().week in trigger.iso_weeks:
            yield slot
        else:
            # Skip the rest of a filtered-out week in one step, not slot by slot.
            monday = datetime.combine(
                slot.date() - timedelta(days=slot.weekday()), datetime.min.time()
            )
            slots.set_current(monday + timedelta(weeks=1) - _SECOND, force=True)


def _cron_instants(trigger: CronTrigger, floor: datetime) -> Iterator[datetime]:
    """UTC fire instants in ascending order (possibly repeated), from about ``floor``."""
    zone = validate_timezone(trigger.tz)
    every_hour = _fires_every_hour(trigger.expression)
    # A slot's second occurrence comes after later slots' first ones, so
    # hold instants in a heap until no later slot can fire before them.
    pending: list[datetime] = []
    try:
        for slot in _local_slots(trigger, _search_start(floor, zone)):
            lower, instants = _slot_instants(slot, zone, every_hour)
            for instant in instants:
                heapq.heappush(pending, instant)
            while pending and pending[0] <= lower:
                yield heapq.heappop(pending)
    except OverflowError:
        pass  # the search ran off the years datetime can hold (1-9999)
    while pending:
        yield heapq.heappop(pending)


def _interval_instants(trigger: IntervalTrigger, floor: datetime) -> Iterator[datetime]:
    if trigger.start is None:
        raise ValueError(
            f"interval trigger every={trigger.every} has no start; anchor it with "
            f".anchored(created_at) before computing fire times"
        )
    assert trigger.every is not None
    start = trigger.start.astimezone(UTC)
    index = 0 if floor < start else (floor - start) // trigger.every + 1
    try:
        while True:
            yield start + trigger.every * index
            index += 1
    except OverflowError:
        return  # past year 9999


def _fire_times(trigger: Trigger, after: datetime) -> Iterator[datetime]:
    """Distinct fire times later than ``after`` and within the trigger's window."""
    if isinstance(trigger, DateTrigger):
        instants: Iterator[datetime] = iter([trigger.at.astimezone(UTC)])
        floor, end = after, None
    else:
        floor, end = _exclusive_floor(trigger, after), trigger.end
        if isinstance(trigger, IntervalTrigger):
            instants = _interval_instants(trigger, floor)
        else:
            instants = _cron_instants(trigger, floor)
    previous = floor
    for instant in instants:
        if end is not None and instant > end:
            return
        if instant > previous:
            previous = instant
            yield instant


def _is_continuous(trigger: Trigger) -> bool:
    return isinstance(trigger, IntervalTrigger) and trigger.every is None


def _next_continuous(trigger: IntervalTrigger, after: datetime) -> datetime | None:
    due = after if trigger.start is None else max(after, trigger.start.astimezone(UTC))
    return None if trigger.end is not None and due > trigger.end else due


def next_fire_time(trigger: Trigger, after: datetime) -> datetime | None:
    """The first fire time strictly after ``after`` (UTC), or None if there is
    none (within :data:`SEARCH_YEARS_DEFAULT` years for cron triggers).

    A continuous interval trigger is due at once: ``max(after, start)``.
    """
    after = _require_aware(after, "after")
    if isinstance(trigger, IntervalTrigger) and trigger.every is None:
        return _next_continuous(trigger, after)
    return next(_fire_times(trigger, after), None)


def fire_times_between(
    trigger: Trigger, start: datetime, end: datetime, *, limit: int
) -> list[datetime]:
    """Fire times ``t`` with ``start < t <= end``, earliest first, at most ``limit``.

    For catching up on missed runs: pass the last fire time and now. A
    continuous trigger has no slots to miss, so it gives ``[]``.
    """
    start, end = _require_aware(start, "start"), _require_aware(end, "end")
    if limit < 0:
        raise ValueError(f"limit must be zero or more, got {limit}")
    if _is_continuous(trigger) or end <= start:
        return []
    return list(islice(_until(_fire_times(trigger, start), end), limit))


def _until(moments: Iterator[datetime], end: datetime) -> Iterator[datetime]:
    for moment in moments:
        if moment > end:
            return
        yield moment
