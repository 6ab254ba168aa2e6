"""Schedule writes, one small class each, applied by the store writer.

Firing is a compare-and-set: :class:`FireSchedules` fires a schedule only if
its stored revision (bumped by every write) is still the one the scheduler
planned from, so two runtimes that both saw a slot come make one job. The
unique index on the jobs' (schedule_id, slot) backs that up: the insert
ignores a conflicting row instead of making a second job for a slot.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from sqlalchemy import Select, bindparam, delete, func, literal_column, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from runtime.domain.errors import AmbiguousSchedule, ScheduleNotFound
from runtime.domain.status import TERMINAL, JobStatus
from runtime.store.lock_keys import holder_of
from runtime.store.tables import jobs, schedules

Row = dict[str, Any]
DEFINITION = (
    *("job_type", "params", "trigger", "tz", "overlap", "misfire", "max_catch_up"),
    *("queue", "user_id"),
)
_UNFINISHED = tuple(s.value for s in JobStatus if s not in TERMINAL)


def find_schedule(
    conn: Connection, key: str, tenant_id: str | None, *, for_update: bool = False
) -> Row | None:
    """The schedule whose id (or else name) is ``key``, within the tenant if given.

    Names are unique per tenant only: without a tenant, a name that several
    tenants use raises :class:`AmbiguousSchedule` rather than pick one."""
    for column in (schedules.c.id, schedules.c.name):
        query = select(schedules).where(column == key)
        if tenant_id is not None:
            query = query.where(schedules.c.tenant_id == tenant_id)
        found = conn.execute(_locked(conn, query, for_update)).all()
        if len(found) > 1:
            raise AmbiguousSchedule(key, len(found))
        if found:
            return dict(found[0]._mapping)
    return None


def _locked(conn: Connection, query: Select[Any], for_update: bool) -> Select[Any]:
    # SQLite's writer holds the database lock already; PostgreSQL locks the rows.
    if for_update and conn.dialect.name == "postgresql":
        return query.with_for_update()
    return query


def _require(conn: Connection, key: str, tenant_id: str | None) -> Row:
    found = find_schedule(conn, key, tenant_id, for_update=True)
    if found is None:
        raise ScheduleNotFound(key)
    return found


def _insert_jobs(conn: Connection, rows: list[Row]) -> set[uuid.UUID]:
    """Insert, skipping rows that conflict (a slot already fired); the ids stored."""
    if not rows:
        return set()
    for row in rows:
        if row["status"] == JobStatus.LOCKED.value:
            # Parked by an earlier apply of this op (the writer retries an op alone
            # after its batch failed): a new job is never made locked, so decide again.
            row.update(status=JobStatus.WAITING.value, locked_by=None)
        if row["lock_key"] is not None and row["status"] == JobStatus.WAITING.value:
            holder = holder_of(conn, row["lock_key"], row["tenant_id"])
            if holder is not None:
                row.update(status=JobStatus.LOCKED.value, locked_by=holder)
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    inserted = conn.execute(dialect.insert(jobs).on_conflict_do_nothing(), rows).rowcount
    ids = [row["id"] for row in rows]
    if inserted == len(rows):
        return set(ids)
    # Some conflicted (rare): ask which of ours are there. Ids are new, so ours.
    stored: set[uuid.UUID] = set()
    for start in range(0, len(ids), 500):
        query = select(jobs.c.id).where(jobs.c.id.in_(ids[start : start + 500]))
        stored.update(conn.execute(query).scalars())
    return stored


class TriggerRules(Protocol):
    """When a trigger (as stored, JSON) fires next: what the schedule writes
    compute inside their transaction. The store knows no trigger kinds; its
    caller hands it the rules (``runtime.schedules.model.TRIGGER_RULES``)."""

    def first_fire_at(self, trigger: Row, now: float) -> float | None: ...

    def resume_fire_at(
        self, trigger: Row, next_fire_at: float | None, now: float
    ) -> float | None: ...


@dataclass(slots=True)
class SaveSchedule:
    """Add a schedule, or replace the definition of the one with its name.

    Replacing keeps the id, the paused state, the last fire and the last
    job. An identical definition changes nothing, so declaring schedules at
    every start is safe. With ``keep_anchor``, an interval that only differs
    in its (automatic) start keeps the stored one.
    """

    row: Row
    keep_anchor: bool = False
    rules: TriggerRules = field(kw_only=True)

    def apply(self, conn: Connection) -> tuple[Row, bool]:
        existing = self._existing(conn)
        while existing is None:
            # FOR UPDATE locks nothing when no row exists: another runtime declaring
            # the same name may insert first. Insert only if the name is free, and
            # else compare with the row it stored (committed by then, and now locked).
            dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
            statement = dialect.insert(schedules).values(**self.row)
            statement = statement.on_conflict_do_nothing(index_elements=_NAME_KEY)
            # RETURNING, not rowcount: SQLAlchemy drops an INSERT's rowcount unless asked.
            if conn.execute(statement.returning(schedules.c.id)).first() is not None:
                return dict(self.row), True
            existing = self._existing(conn)  # None only if removed meanwhile: try again
        new = {name: self.row[name] for name in DEFINITION}
        if self.keep_anchor and _same_interval(existing["trigger"], new["trigger"]):
            new["trigger"] = existing["trigger"]
        if all(existing[name] == new[name] for name in DEFINITION):
            return existing, False
        now = self.row["updated_at"]
        new.update(
            next_fire_at=self.rules.first_fire_at(new["trigger"], now),
            updated_at=now,
            revision=existing["revision"] + 1,
        )
        conn.execute(update(schedules).where(schedules.c.id == existing["id"]).values(**new))
        return {**existing, **new}, False

    def _existing(self, conn: Connection) -> Row | None:
        tenant = self.row["tenant_id"] or ""
        query = select(schedules).where(
            func.coalesce(schedules.c.tenant_id, "") == tenant,
            schedules.c.name == self.row["name"],
        )
        found = conn.execute(_locked(conn, query, True)).first()
        return None if found is None else dict(found._mapping)


# The expressions of ux_callboard_schedules_name, as an ON CONFLICT target; the
# empty string is literal so that PostgreSQL infers the index from it.
_NAME_KEY = [func.coalesce(schedules.c.tenant_id, literal_column("''")), schedules.c.name]


def _same_interval(old: dict[str, Any], new: dict[str, Any]) -> bool:
    unanchored = {**new, "start": old.get("start")}
    return bool(old.get("kind") == "interval" and unanchored == old)


@dataclass(slots=True)
class SetSchedulePaused:
    """Pause or resume. Resuming skips the slots that passed while paused."""

    key: str
    tenant_id: str | None
    paused: bool
    now: float
    rules: TriggerRules = field(kw_only=True)

    def apply(self, conn: Connection) -> Row:
        row = _require(conn, self.key, self.tenant_id)
        if row["paused"] == self.paused:
            return row
        values: Row = {
            "paused": self.paused,
            "updated_at": self.now,
            "revision": row["revision"] + 1,
        }
        if not self.paused:
            resumed = self.rules.resume_fire_at(row["trigger"], row["next_fire_at"], self.now)
            values["next_fire_at"] = resumed
        conn.execute(update(schedules).where(schedules.c.id == row["id"]).values(**values))
        return {**row, **values}


@dataclass(slots=True)
class RemoveSchedule:
    """Delete a schedule; its jobs stay (they keep its id)."""

    key: str
    tenant_id: str | None

    def apply(self, conn: Connection) -> Row:
        row = _require(conn, self.key, self.tenant_id)
        conn.execute(delete(schedules).where(schedules.c.id == row["id"]))
        return row


@dataclass(slots=True)
class FireNow:
    """A manual run of a schedule: one job now, with no slot (never skipped)."""

    key: str
    tenant_id: str | None
    job: Row
    now: float

    def apply(self, conn: Connection) -> tuple[Row, Row]:
        row = _require(conn, self.key, self.tenant_id)
        job = {**self.job, "schedule_id": row["id"], "slot": None}
        _insert_jobs(conn, [job])
        values = {
            "last_job_id": job["id"],
            "last_fire_at": self.now,
            "updated_at": self.now,
            "revision": row["revision"] + 1,
        }
        conn.execute(update(schedules).where(schedules.c.id == row["id"]).values(**values))
        return {**row, **values}, job


@dataclass(slots=True)
class Firing:
    """One schedule's planned firing: the jobs of its due slots and what comes next.

    Planned from the schedule's row at ``revision`` (every write bumps it),
    it holds only if the stored row is still that one.
    """

    schedule_id: str
    revision: int
    last_fire_at: float | None  # as planned from: kept when no job is made
    last_job_id: uuid.UUID | None
    jobs: list[Row]  # oldest slot first, schedule_id and slot set
    next_fire_at: float | None
    skip_if_busy: bool  # overlap "skip": no job while one of the schedule's is unfinished


FireOutcome = Literal["fired", "busy", "stale", "gone"]


@dataclass(slots=True)
class Fired:
    """What became of one firing. ``changes`` apply to the row planned from
    (fired, busy); ``current`` is the stored row that moved on (stale)."""

    schedule_id: str
    outcome: FireOutcome
    changes: Row | None = None
    current: Row | None = None
    jobs: list[Row] = field(default_factory=list)  # the jobs this firing stored


@dataclass(slots=True)
class FireSchedules:
    """Fire many schedules in a handful of statements, whatever their number."""

    firings: list[Firing]
    now: float

    def apply(self, conn: Connection) -> list[Fired]:
        revisions = self._revisions(conn)
        results: dict[str, Fired] = {}
        valid: list[Firing] = []
        for firing in self.firings:
            stored = revisions.get(firing.schedule_id)
            if stored is None:
                results[firing.schedule_id] = Fired(firing.schedule_id, "gone")
            elif stored != firing.revision:
                results[firing.schedule_id] = Fired(firing.schedule_id, "stale")
            else:
                valid.append(firing)
        self._read_stale(conn, results)
        busy = _busy(conn, [f.schedule_id for f in valid if f.skip_if_busy])
        kept = {f.schedule_id: [] if f.schedule_id in busy else _kept(f) for f in valid}
        stored_ids = _insert_jobs(conn, [job for jobs_ in kept.values() for job in jobs_])
        updates = []
        for firing in valid:
            made = [job for job in kept[firing.schedule_id] if job["id"] in stored_ids]
            changes = self._changes(firing, made)
            updates.append({"b_id": firing.schedule_id, **{f"b_{k}": changes[k] for k in changes}})
            outcome: FireOutcome = "busy" if firing.schedule_id in busy else "fired"
            results[firing.schedule_id] = Fired(firing.schedule_id, outcome, changes, jobs=made)
        if updates:
            conn.execute(_UPDATE_FIRED, updates)
        return [results[f.schedule_id] for f in self.firings]

    def _revisions(self, conn: Connection) -> dict[str, int]:
        ids = [f.schedule_id for f in self.firings]
        found: dict[str, int] = {}
        for chunk in _chunks(ids, 500):
            query = select(schedules.c.id, schedules.c.revision).where(schedules.c.id.in_(chunk))
            found.update({r.id: r.revision for r in conn.execute(_locked(conn, query, True))})
        return found

    def _read_stale(self, conn: Connection, results: dict[str, Fired]) -> None:
        stale = [r for r in results.values() if r.outcome == "stale"]
        for chunk in _chunks([r.schedule_id for r in stale], 500):
            rows = conn.execute(select(schedules).where(schedules.c.id.in_(chunk)))
            for row in rows:
                results[row.id].current = dict(row._mapping)

    def _changes(self, firing: Firing, made: list[Row]) -> Row:
        last = made[-1] if made else None
        return {
            "next_fire_at": firing.next_fire_at,
            "last_fire_at": firing.last_fire_at if last is None else last["slot"],
            "last_job_id": firing.last_job_id if last is None else last["id"],
            "updated_at": self.now,
            "revision": firing.revision + 1,
        }


_UPDATE_FIRED = (
    update(schedules)
    .where(schedules.c.id == bindparam("b_id"))
    .values(
        next_fire_at=bindparam("b_next_fire_at"),
        last_fire_at=bindparam("b_last_fire_at"),
        last_job_id=bindparam("b_last_job_id"),
        updated_at=bindparam("b_updated_at"),
        revision=bindparam("b_revision"),
    )
)


def _kept(firing: Firing) -> list[Row]:
    # With overlap "skip" the first job is unfinished when the next slot comes.
    return firing.jobs[:1] if firing.skip_if_busy else firing.jobs


def _busy(conn: Connection, schedule_ids: list[str]) -> set[str]:
    """The schedules among these with an unfinished job."""
    busy: set[str] = set()
    for chunk in _chunks(schedule_ids, 500):
        query = (
            select(jobs.c.schedule_id)
            .where(jobs.c.schedule_id.in_(chunk), jobs.c.status.in_(_UNFINISHED))
            .distinct()
        )
        busy.update(conn.execute(query).scalars())
    return busy


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
